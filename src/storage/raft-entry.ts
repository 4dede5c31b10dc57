import { EntryType as RaftEntryType, type Entry } from '../raft/types.js';
import { EntryType, StorageCorruptionError, type LogEntry } from './entry-codec.js';
import { readU64, writeU64 } from './keys.js';
import type { ProducerHeader } from './producer-table.js';
import { encodeRecordBatch, type BatchRecord } from './record-batch.js';

/**
 * How a shard's Raft entries map to stored log entries. A Raft Normal entry is a record batch
 * with its arrival time in front (the leader stamps it at proposal, so every replica stores the
 * same bytes):
 *
 *   arrivalMs u64 | record batch (record-batch.ts)
 *
 * A SEAL is a Normal entry too, told apart by a record count no batch can have:
 *
 *   arrivalMs u64 | 0xFFFFFFFF u32 | children's shard ids (JSON)
 *
 * A new leader's Empty entries and membership changes carry no arrival time (stored as 0).
 */

const ARRIVAL_BYTES = 8;
const SEAL_MARK = 0xffffffff;
const SEAL_HEADER_BYTES = ARRIVAL_BYTES + 4;

/** The data of a Raft Normal entry that seals the shard for `children`. */
export function encodeSealCommand(arrivalMs: number, children: readonly string[]): Buffer {
  const json = Buffer.from(JSON.stringify(children), 'utf8');
  const out = Buffer.allocUnsafe(SEAL_HEADER_BYTES + json.length);
  writeU64(out, arrivalMs, 0);
  out.writeUInt32BE(SEAL_MARK, ARRIVAL_BYTES);
  json.copy(out, SEAL_HEADER_BYTES);
  return out;
}

/** Whether a Raft entry is a SEAL. */
export function isSealEntry(entry: Entry): boolean {
  return (
    entry.type === RaftEntryType.Normal &&
    entry.data.length >= SEAL_HEADER_BYTES &&
    asBuffer(entry.data).readUInt32BE(ARRIVAL_BYTES) === SEAL_MARK
  );
}

/** The children a SEAL entry's payload names. */
export function sealChildren(index: number, payload: Buffer): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch (error) {
    throw new StorageCorruptionError(`seal entry ${index}: bad payload`, { cause: error });
  }
  if (!Array.isArray(parsed) || !parsed.every((c) => typeof c === 'string')) {
    throw new StorageCorruptionError(`seal entry ${index}: bad payload`);
  }
  return parsed as string[];
}

/** The data of a Raft Normal entry holding `records`, stamped `arrivalMs`; one allocation. */
export function encodeRecordsCommand(
  arrivalMs: number,
  records: readonly BatchRecord[],
  producer?: ProducerHeader,
): Buffer {
  const out = encodeRecordBatch(records, ARRIVAL_BYTES, producer);
  writeU64(out, arrivalMs, 0);
  return out;
}

/**
 * The data of a Raft Normal entry of a group that is not a shard (the coordinator's metadata):
 * the same arrival-time header, then `payload` (stored as is; nothing reads it as records).
 */
export function encodeStampedCommand(arrivalMs: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(ARRIVAL_BYTES + payload.byteLength);
  writeU64(out, arrivalMs, 0);
  out.set(payload, ARRIVAL_BYTES);
  return out;
}

/** The payload of an entry made by encodeStampedCommand. */
export function stampedPayload(entry: Entry): Buffer {
  const data = asBuffer(entry.data);
  if (data.length < ARRIVAL_BYTES) {
    throw new StorageCorruptionError(`raft entry ${entry.index}: no arrival time`);
  }
  return data.subarray(ARRIVAL_BYTES);
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The stored form of a Raft entry (payload is a view, not a copy). */
export function toLogEntry(entry: Entry): LogEntry {
  const data = asBuffer(entry.data);
  switch (entry.type) {
    case RaftEntryType.Normal:
      if (data.length < ARRIVAL_BYTES) {
        throw new StorageCorruptionError(`raft entry ${entry.index}: no arrival time`);
      }
      if (isSealEntry(entry)) {
        return {
          index: entry.index,
          term: entry.term,
          type: EntryType.Seal,
          arrivalMs: readU64(data, 0),
          payload: data.subarray(SEAL_HEADER_BYTES),
        };
      }
      return {
        index: entry.index,
        term: entry.term,
        type: EntryType.Records,
        arrivalMs: readU64(data, 0),
        payload: data.subarray(ARRIVAL_BYTES),
      };
    case RaftEntryType.Empty:
      return {
        index: entry.index,
        term: entry.term,
        type: EntryType.Empty,
        arrivalMs: 0,
        payload: data,
      };
    case RaftEntryType.ConfChange:
      return {
        index: entry.index,
        term: entry.term,
        type: EntryType.ConfChange,
        arrivalMs: 0,
        payload: data,
      };
  }
}

/** The Raft entry a stored entry came from (Records entries are re-framed: one copy). */
export function fromLogEntry(entry: LogEntry): Entry {
  switch (entry.type) {
    case EntryType.Records: {
      const data = Buffer.allocUnsafe(ARRIVAL_BYTES + entry.payload.length);
      writeU64(data, entry.arrivalMs, 0);
      entry.payload.copy(data, ARRIVAL_BYTES);
      return { index: entry.index, term: entry.term, type: RaftEntryType.Normal, data };
    }
    case EntryType.Seal: {
      const data = Buffer.allocUnsafe(SEAL_HEADER_BYTES + entry.payload.length);
      writeU64(data, entry.arrivalMs, 0);
      data.writeUInt32BE(SEAL_MARK, ARRIVAL_BYTES);
      entry.payload.copy(data, SEAL_HEADER_BYTES);
      return { index: entry.index, term: entry.term, type: RaftEntryType.Normal, data };
    }
    case EntryType.Empty:
      return {
        index: entry.index,
        term: entry.term,
        type: RaftEntryType.Empty,
        data: entry.payload,
      };
    case EntryType.ConfChange:
      return {
        index: entry.index,
        term: entry.term,
        type: RaftEntryType.ConfChange,
        data: entry.payload,
      };
  }
}

/** The arrival time a Raft entry carries, or undefined if it holds no records. */
export function arrivalOf(entry: Entry): number | undefined {
  if (entry.type !== RaftEntryType.Normal || entry.data.length < ARRIVAL_BYTES) return undefined;
  return readU64(asBuffer(entry.data), 0);
}
