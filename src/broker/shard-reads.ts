import type { LogPosition } from '../common/sequence-number.js';
import { EntryType } from '../storage/entry-codec.js';
import { LogGapError, type ShardLog } from '../storage/shard-log.js';
import { ReadableEntry, type CommittedTail } from './committed-tail.js';
import type { ReadLimits, ReadRecord, ReadResult } from './replica.js';

/**
 * Reads of a shard's committed log, shared by every kind of replica. The caller says how far the
 * log is readable (committed, durable and applied on this replica) and where it starts.
 */

export interface ReadableLog {
  readonly log: ShardLog;
  /** The oldest position still stored. */
  trimHorizon(): LogPosition;
  /** The last index a reader may see. */
  readableIndex(): number;
  /** Arrival time of the newest readable record (millisBehindLatest). */
  tipArrivalMs(): number;
  /** The newest readable entries in memory; reads from before it go to storage. */
  readonly tail?: CommittedTail;
}

export async function readRecords(
  shard: ReadableLog,
  from: LogPosition,
  limits: ReadLimits,
): Promise<ReadResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await readOnce(shard, from, limits);
    } catch (error) {
      // A retention trim may delete entries under a reader that checked the trim point just
      // before; then the read restarts from the new trim horizon. Any other hole is corruption.
      if (!(error instanceof LogGapError) || attempt > 2) throw error;
      if (shard.trimHorizon().index <= from.index) throw error;
    }
  }
}

async function readOnce(
  shard: ReadableLog,
  from: LogPosition,
  limits: ReadLimits,
): Promise<ReadResult> {
  const horizon = shard.trimHorizon();
  const start = from.index < horizon.index ? horizon : from;
  const seal = shard.log.seal;
  // A sealed shard ends at its SEAL: records committed after it were refused at apply.
  const last =
    seal === undefined ? shard.readableIndex() : Math.min(shard.readableIndex(), seal.index);
  const tipArrivalMs = shard.tipArrivalMs();
  const records: ReadRecord[] = [];
  let bytes = 0;
  let next: LogPosition = { index: Math.max(start.index, last + 1), offset: 0 };
  if (start.index <= last) {
    next = { index: last + 1, offset: 0 };
    scan: for await (const entry of readableEntries(shard, start.index, last)) {
      // Refused at apply (an idempotent producer's retry): its records were never stored.
      if (entry.type !== EntryType.Records || shard.log.isRefused(entry.index)) continue;
      const batch = entry.records();
      const firstOffset = entry.index === start.index ? start.offset : 0;
      for (let offset = firstOffset; offset < batch.length; offset++) {
        const record = batch[offset] as (typeof batch)[number];
        const size = record.data.length + Buffer.byteLength(record.partitionKey, 'utf8');
        if (
          records.length >= limits.maxRecords ||
          (records.length > 0 && bytes + size > limits.maxBytes)
        ) {
          next = { index: entry.index, offset };
          break scan;
        }
        records.push({
          position: { index: entry.index, offset },
          arrivalMs: entry.arrivalMs,
          partitionKey: record.partitionKey,
          data: record.data,
        });
        bytes += size;
      }
    }
  }
  const endOfShard = seal !== undefined && next.index > seal.index;
  if (endOfShard) next = { index: seal.index + 1, offset: 0 };
  return { records, next, tipArrivalMs, caughtUp: next.index > last, endOfShard };
}

/**
 * Entries from..to in order: from the in-memory tail where it holds them, from storage before it.
 * The tail moves on while storage is read, so where it starts is looked at again each time.
 */
async function* readableEntries(
  shard: ReadableLog,
  from: number,
  to: number,
): AsyncGenerator<ReadableEntry> {
  let next = from;
  while (next <= to) {
    const first = shard.tail?.firstIndex;
    if (shard.tail !== undefined && first !== undefined && next >= first) {
      // Taken as one list, so appends while the reader works cannot shift it.
      const held = shard.tail.range(next, to);
      yield* held;
      next = (held[held.length - 1]?.index ?? next - 1) + 1;
      // The tail reaches the readable index; should it not, storage has the rest.
      for await (const entry of shard.log.entries(next, to)) yield new ReadableEntry(entry);
      return;
    }
    const end = first === undefined || first > to ? to : first - 1;
    for await (const entry of shard.log.entries(next, end)) {
      yield new ReadableEntry(entry);
      next = entry.index + 1;
    }
    next = end + 1;
  }
}

/**
 * The first position whose record arrived at or after `ms`. `indexedUpTo` is how far arrival-time
 * keys are written; readable entries after it are scanned.
 */
export async function positionAtTimestamp(
  shard: ReadableLog,
  ms: number,
  indexedUpTo: number,
): Promise<LogPosition> {
  const indexed = await shard.log.firstIndexArrivedAtOrAfter(ms, indexedUpTo);
  if (indexed !== undefined) return { index: indexed, offset: 0 };
  // Entries readable but not yet indexed arrived after every indexed entry, so scanning them
  // finishes the search.
  const last = shard.readableIndex();
  const from = Math.max(indexedUpTo + 1, shard.trimHorizon().index);
  for await (const entry of shard.log.entries(from, last)) {
    if (
      entry.type === EntryType.Records &&
      !shard.log.isRefused(entry.index) &&
      entry.arrivalMs >= ms
    )
      return { index: entry.index, offset: 0 };
  }
  return { index: last + 1, offset: 0 };
}
