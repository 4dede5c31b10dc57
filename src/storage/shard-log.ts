import {
  StorageCorruptionError,
  decodeEntry,
  encodeEntry,
  EntryType,
  type LogEntry,
} from './entry-codec.js';
import type { KvOp, KvStore } from './kv-store.js';
import { ProducerTable, type ProducerDecision, type ProducerHeader } from './producer-table.js';
import { sealChildren } from './raft-entry.js';
import { recordBatchCount, recordBatchProducer } from './record-batch.js';
import {
  arrivalKey,
  arrivalKeyParts,
  indexKey,
  logKey,
  logKeyIndex,
  readU64,
  shardSpaceEnd,
  shardSpaceStart,
  shardStateKey,
  SPACE_ARRIVAL,
  SPACE_LOG,
  SPACE_MARKER,
  SPACE_PRODUCER,
  SPACE_REFUSED,
  SPACE_SHARD_STATE,
  STATE_APPLIED,
  STATE_HARD,
  STATE_SEAL,
  STATE_SNAPSHOT_PAYLOAD,
  STATE_TRIM,
  writeU64,
} from './keys.js';

/**
 * One shard's log in the broker's LevelDB: entries keyed by (shard, index), the arrival-time index
 * written at apply, and three small state records (Raft hard state, trim pointer, applied index).
 * Writes are returned as KvOps for the caller to put into the broker's group-commit batch; reads
 * go straight to LevelDB and verify every entry's checksum.
 *
 * Applying is also where idempotent producers' retries are caught: the producer table decides
 * each batch that carries a producer header; a refused entry stays in the log (Raft's log is not
 * ours to edit) but gets no arrival key and is listed as refused, so readers skip it.
 */

/** The group of a coordinator's metadata: its entries are not record batches. */
const METADATA_GROUP = 0;

export interface HardState {
  readonly term: number;
  readonly vote: number;
  readonly commit: number;
}

/**
 * Everything up to and including `index` has been removed by retention. The trimmed entry's term
 * and arrival time are kept so the log continues from them even when nothing is left in it.
 */
export interface TrimPoint {
  readonly index: number;
  readonly term: number;
  readonly arrivalMs: number;
}

export interface RecoveredShardState {
  readonly hardState: HardState;
  readonly trimPoint: TrimPoint;
  readonly appliedIndex: number;
  /** The last entry on disk, or the trim point if the log is empty. */
  readonly lastIndex: number;
  readonly seal: ShardSeal | undefined;
}

/** Where a split or merge closed the shard: its applied SEAL entry. */
export interface ShardSeal {
  readonly index: number;
  readonly children: readonly string[];
}

export interface RecoveredShardLog extends RecoveredShardState {
  readonly lastTerm: number;
  readonly lastArrivalMs: number;
}

const EMPTY_HARD_STATE: HardState = { term: 0, vote: 0, commit: 0 };

/** Large trims are followed by a compaction so deleted entries stop costing disk space. */
const COMPACT_AFTER_TRIMMED_ENTRIES = 10_000;

/** What applying entries writes, and the producer table's decision for each batch it decided. */
export interface AppliedEntries {
  readonly ops: KvOp[];
  readonly decisions: ReadonlyMap<number, ProducerDecision>;
}

export class ShardLog {
  private sealed: ShardSeal | undefined;
  /** The producer table as of the last applied entry. */
  private producers = new ProducerTable();
  /** The producer table as of the trim point (a snapshot's payload). */
  private trimProducers = new ProducerTable();
  private trimIndex = 0;
  /** Entries after the trim point refused at apply. Rare: only producers' retries. */
  private readonly refused = new Set<number>();
  private readonly holdsRecords: boolean;

  constructor(
    private readonly kv: KvStore,
    readonly shard: number,
  ) {
    this.holdsRecords = shard !== METADATA_GROUP;
  }

  /**
   * The applied (so committed, so final) SEAL, if any: reads end there, and Records entries after
   * it are never applied. Known from the moment its apply ops are made.
   */
  get seal(): ShardSeal | undefined {
    return this.sealed;
  }

  /** The shard's state records and last index, finishing a trim a crash interrupted. */
  async recoverState(): Promise<RecoveredShardState> {
    const hardState = decodeHardState(await this.kv.get(shardStateKey(this.shard, STATE_HARD)));
    const trimPoint = decodeTrimPoint(await this.kv.get(shardStateKey(this.shard, STATE_TRIM)));
    const appliedRaw = await this.kv.get(shardStateKey(this.shard, STATE_APPLIED));
    const appliedIndex = Math.max(
      appliedRaw === undefined ? 0 : readU64(appliedRaw, 0),
      trimPoint.index,
    );
    const logRange = {
      gte: shardSpaceStart(SPACE_LOG, this.shard),
      lt: shardSpaceEnd(SPACE_LOG, this.shard),
    };
    const [first] = await this.kv.keys({ ...logRange, limit: 1 });
    if (first !== undefined && logKeyIndex(first) <= trimPoint.index) {
      // A crash between writing the trim pointer and deleting the entries: finish the trim.
      await this.removeTrimmed(trimPoint, trimPoint.index);
    }
    const [last] = await this.kv.keys({ ...logRange, reverse: true, limit: 1 });
    const sealRaw = await this.kv.get(shardStateKey(this.shard, STATE_SEAL));
    this.sealed = sealRaw === undefined ? undefined : decodeSeal(this.shard, sealRaw);
    if (this.holdsRecords) await this.recoverProducers(trimPoint.index);
    return {
      hardState,
      trimPoint,
      appliedIndex,
      lastIndex: last === undefined ? trimPoint.index : logKeyIndex(last),
      seal: this.sealed,
    };
  }

  /** recoverState(), plus the last entry's term and arrival time (decoded, so checksummed). */
  async recover(): Promise<RecoveredShardLog> {
    const state = await this.recoverState();
    if (state.lastIndex === state.trimPoint.index) {
      return { ...state, lastTerm: state.trimPoint.term, lastArrivalMs: state.trimPoint.arrivalMs };
    }
    const entry = await this.entryAt(state.lastIndex);
    return { ...state, lastTerm: entry.term, lastArrivalMs: entry.arrivalMs };
  }

  appendOps(entries: readonly LogEntry[]): KvOp[] {
    return entries.map((entry) => ({
      type: 'put',
      key: logKey(this.shard, entry.index),
      value: encodeEntry(entry),
    }));
  }

  hardStateOp(state: HardState): KvOp {
    const value = Buffer.allocUnsafe(24);
    writeU64(value, state.term, 0);
    writeU64(value, state.vote, 8);
    writeU64(value, state.commit, 16);
    return { type: 'put', key: shardStateKey(this.shard, STATE_HARD), value };
  }

  /** Applying entries adds their arrival-time index keys and moves the applied pointer. */
  applyOps(entries: readonly LogEntry[]): KvOp[] {
    return this.applyEntries(entries).ops;
  }

  /** applyOps, with the producer table's decision for each batch that had a producer header. */
  applyEntries(entries: readonly LogEntry[]): AppliedEntries {
    const ops: KvOp[] = [];
    const decisions = new Map<number, ProducerDecision>();
    let applied = -1;
    for (const entry of entries) {
      if (entry.type === EntryType.Seal && this.sealed === undefined) {
        this.sealed = { index: entry.index, children: sealChildren(entry.index, entry.payload) };
        ops.push({
          type: 'put',
          key: shardStateKey(this.shard, STATE_SEAL),
          value: encodeSeal(this.sealed),
        });
      }
      // Records committed after the seal are refused at apply: never indexed, never read.
      const afterSeal = this.sealed !== undefined && entry.index > this.sealed.index;
      if (
        entry.type === EntryType.Records &&
        !afterSeal &&
        this.acceptRecords(entry, ops, decisions)
      ) {
        ops.push({
          type: 'put',
          key: arrivalKey(this.shard, entry.arrivalMs, entry.index),
          value: Buffer.alloc(0),
        });
      }
      applied = Math.max(applied, entry.index);
    }
    if (applied >= 0) {
      const value = Buffer.allocUnsafe(8);
      writeU64(value, applied, 0);
      ops.push({ type: 'put', key: shardStateKey(this.shard, STATE_APPLIED), value });
    }
    return { ops, decisions };
  }

  /** Decides a Records entry of an idempotent producer; true if its records count. */
  private acceptRecords(
    entry: LogEntry,
    ops: KvOp[],
    decisions: Map<number, ProducerDecision>,
  ): boolean {
    const header = this.holdsRecords ? recordBatchProducer(entry.payload) : undefined;
    if (header === undefined) return true;
    const count = recordBatchCount(entry.payload);
    const decision = this.producers.decide(header, count, entry.arrivalMs);
    decisions.set(entry.index, decision);
    if (decision.kind === 'accept') {
      this.producers.record(header, count, entry.index, entry.arrivalMs);
      ops.push({
        type: 'put',
        key: indexKey(SPACE_PRODUCER, this.shard, entry.index),
        value: encodeAccepted(header, count, entry.arrivalMs),
      });
      return true;
    }
    this.refused.add(entry.index);
    ops.push({ type: 'put', key: indexKey(SPACE_REFUSED, this.shard, entry.index), value: EMPTY });
    return false;
  }

  /** Whether applying refused the Records entry at `index` (readers skip it). */
  isRefused(index: number): boolean {
    return this.refused.size > 0 && this.refused.has(index);
  }

  /**
   * A sealed shard's answer to a producer's batch: a duplicate (with the original positions) or
   * fenced; 'accept' means it was never stored here and belongs to the children.
   */
  decideSealed(header: ProducerHeader, count: number): ProducerDecision {
    return this.producers.decideSealed(header, count);
  }

  /** How many producers the table holds (for tests and metrics). */
  get producerCount(): number {
    return this.producers.size;
  }

  /**
   * The producer table as of applied entry `index` (at or after the trim point), encoded: the
   * table at the trim point with the batches accepted since folded in. A snapshot at `index`
   * carries it, so a replica that installs the snapshot decides later batches as everyone else.
   */
  async producerTableAt(index: number): Promise<Buffer> {
    const table = this.trimProducers.clone();
    for await (const [key, value] of this.kv.iterate({
      gt: indexKey(SPACE_PRODUCER, this.shard, this.trimIndex),
      lte: indexKey(SPACE_PRODUCER, this.shard, index),
    })) {
      foldAccepted(table, logKeyIndex(key), value);
    }
    return table.encode();
  }

  /** The write that keeps a trim point's producer table (the single node's; Raft's is the snapshot payload). */
  producerTableOp(table: Buffer): KvOp {
    return { type: 'put', key: shardStateKey(this.shard, STATE_SNAPSHOT_PAYLOAD), value: table };
  }

  /** The trim point moved to `index`, where the producer table was `table` (a snapshot's payload). */
  trimmedTo(index: number, table: Uint8Array | undefined): void {
    if (!this.holdsRecords) return;
    this.trimProducers = decodeTable(table);
    this.trimIndex = index;
    for (const refused of this.refused) if (refused <= index) this.refused.delete(refused);
  }

  /** A snapshot replaced the whole log: the table is the snapshot's, nothing after it applied. */
  installedSnapshot(index: number, table: Uint8Array | undefined): void {
    if (!this.holdsRecords) return;
    this.trimProducers = decodeTable(table);
    this.producers = this.trimProducers.clone();
    this.trimIndex = index;
    this.refused.clear();
  }

  private async recoverProducers(trimIndex: number): Promise<void> {
    const raw = await this.kv.get(shardStateKey(this.shard, STATE_SNAPSHOT_PAYLOAD));
    this.trimProducers = decodeTable(raw);
    this.trimIndex = trimIndex;
    this.producers = this.trimProducers.clone();
    for await (const [key, value] of this.kv.iterate({
      gt: indexKey(SPACE_PRODUCER, this.shard, trimIndex),
      lt: shardSpaceEnd(SPACE_PRODUCER, this.shard),
    })) {
      foldAccepted(this.producers, logKeyIndex(key), value);
    }
    this.refused.clear();
    for (const key of await this.kv.keys({
      gt: indexKey(SPACE_REFUSED, this.shard, trimIndex),
      lt: shardSpaceEnd(SPACE_REFUSED, this.shard),
    })) {
      this.refused.add(logKeyIndex(key));
    }
  }

  trimPointOp(point: TrimPoint): KvOp {
    const value = Buffer.allocUnsafe(24);
    writeU64(value, point.index, 0);
    writeU64(value, point.term, 8);
    writeU64(value, point.arrivalMs, 16);
    return { type: 'put', key: shardStateKey(this.shard, STATE_TRIM), value };
  }

  /**
   * Yields entries from..to in order. Every entry is checksummed and the indexes must be
   * contiguous from `from`: a hole is corruption (or a concurrent trim, which the caller can tell
   * by re-reading its trim point), never the end of the log.
   */
  async *entries(from: number, to: number): AsyncGenerator<LogEntry> {
    if (to < from) return;
    let expected = from;
    for await (const [key, value] of this.kv.iterate({
      gte: logKey(this.shard, from),
      lte: logKey(this.shard, to),
    })) {
      const index = logKeyIndex(key);
      if (index !== expected) throw new LogGapError(this.shard, expected, index);
      yield decodeEntry(index, value);
      expected++;
    }
    if (expected <= to) throw new LogGapError(this.shard, expected, undefined);
  }

  /** Yields entries to..from, newest first, with the same checks as entries(). */
  async *entriesBackward(from: number, to: number): AsyncGenerator<LogEntry> {
    if (to < from) return;
    let expected = to;
    for await (const [key, value] of this.kv.iterate({
      gte: logKey(this.shard, from),
      lte: logKey(this.shard, to),
      reverse: true,
    })) {
      const index = logKeyIndex(key);
      if (index !== expected) throw new LogGapError(this.shard, expected, index);
      yield decodeEntry(index, value);
      expected--;
    }
    if (expected >= from) throw new LogGapError(this.shard, expected, undefined);
  }

  async entryAt(index: number): Promise<LogEntry> {
    const value = await this.kv.get(logKey(this.shard, index));
    if (value === undefined) throw new LogGapError(this.shard, index, undefined);
    return decodeEntry(index, value);
  }

  /** The first applied Records entry with arrival >= ms, among entries <= maxIndex. */
  async firstIndexArrivedAtOrAfter(ms: number, maxIndex: number): Promise<number | undefined> {
    const [key] = await this.kv.keys({
      gte: arrivalKey(this.shard, Math.max(0, Math.floor(ms)), 0),
      lt: shardSpaceEnd(SPACE_ARRIVAL, this.shard),
      limit: 1,
    });
    if (key === undefined) return undefined;
    const { index } = arrivalKeyParts(key);
    return index <= maxIndex ? index : undefined;
  }

  /** The last applied Records entry that arrived strictly before `ms`. */
  async lastArrivedBefore(ms: number): Promise<{ index: number; arrivalMs: number } | undefined> {
    const [key] = await this.kv.keys({
      gte: shardSpaceStart(SPACE_ARRIVAL, this.shard),
      lt: arrivalKey(this.shard, Math.max(0, Math.floor(ms)), 0),
      reverse: true,
      limit: 1,
    });
    return key === undefined ? undefined : arrivalKeyParts(key);
  }

  /**
   * Removes entries up to `point.index` (and their index keys) after the trim pointer has been
   * durably written. Idempotent, so a crash in the middle is finished on the next trim.
   */
  async removeTrimmed(point: TrimPoint, previousTrimIndex: number): Promise<void> {
    await this.kv.clear({
      gte: shardSpaceStart(SPACE_LOG, this.shard),
      lte: logKey(this.shard, point.index),
    });
    await this.kv.clear({
      gte: shardSpaceStart(SPACE_ARRIVAL, this.shard),
      lte: arrivalKey(this.shard, point.arrivalMs, point.index),
    });
    // Raft markers at or below the trim point are no longer needed: the trim point's term stands
    // for them (see ShardRaftStore.recover). Accepted batches and refusals there are folded into
    // the trim point's producer table, or gone with their entries.
    for (const space of [SPACE_MARKER, SPACE_PRODUCER, SPACE_REFUSED]) {
      await this.kv.clear({
        gte: shardSpaceStart(space, this.shard),
        lte: indexKey(space, this.shard, point.index),
      });
    }
    if (point.index - previousTrimIndex >= COMPACT_AFTER_TRIMMED_ENTRIES) {
      await this.kv.compact(
        shardSpaceStart(SPACE_LOG, this.shard),
        logKey(this.shard, point.index + 1),
      );
    }
  }

  /** Deletes every key of the shard (its stream was deleted). */
  async destroy(): Promise<void> {
    for (const space of [
      SPACE_LOG,
      SPACE_ARRIVAL,
      SPACE_PRODUCER,
      SPACE_REFUSED,
      SPACE_SHARD_STATE,
      SPACE_MARKER,
    ]) {
      await this.kv.clear({
        gte: shardSpaceStart(space, this.shard),
        lt: shardSpaceEnd(space, this.shard),
      });
    }
    await this.kv.compact(
      shardSpaceStart(SPACE_LOG, this.shard),
      shardSpaceEnd(SPACE_LOG, this.shard),
    );
  }
}

const EMPTY = Buffer.alloc(0);

/** An accepted batch's P value: producer id u64 | epoch u32 | first sequence u64 | count u32 | arrivalMs u64. */
function encodeAccepted(header: ProducerHeader, count: number, arrivalMs: number): Buffer {
  const value = Buffer.allocUnsafe(32);
  writeU64(value, header.producerId, 0);
  value.writeUInt32BE(header.epoch, 8);
  writeU64(value, header.firstSequence, 12);
  value.writeUInt32BE(count, 20);
  writeU64(value, arrivalMs, 24);
  return value;
}

function foldAccepted(table: ProducerTable, index: number, value: Buffer): void {
  if (value.length !== 32) throw new StorageCorruptionError(`producer batch ${index}: bad record`);
  const header: ProducerHeader = {
    producerId: readU64(value, 0),
    epoch: value.readUInt32BE(8),
    firstSequence: readU64(value, 12),
  };
  table.record(header, value.readUInt32BE(20), index, readU64(value, 24));
}

function decodeTable(raw: Uint8Array | undefined): ProducerTable {
  if (raw === undefined || raw.byteLength === 0) return new ProducerTable();
  return ProducerTable.decode(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength));
}

function encodeSeal(seal: ShardSeal): Buffer {
  const json = Buffer.from(JSON.stringify(seal.children), 'utf8');
  const value = Buffer.allocUnsafe(8 + json.length);
  writeU64(value, seal.index, 0);
  json.copy(value, 8);
  return value;
}

function decodeSeal(shard: number, value: Buffer): ShardSeal {
  if (value.length < 8) throw new StorageCorruptionError(`shard ${shard}: truncated seal record`);
  return { index: readU64(value, 0), children: sealChildren(readU64(value, 0), value.subarray(8)) };
}

export class LogGapError extends StorageCorruptionError {
  constructor(shard: number, expected: number, found: number | undefined) {
    super(
      `shard ${shard}: log entry ${expected} is missing` +
        (found === undefined ? '' : ` (next entry found is ${found})`),
    );
  }
}

function decodeHardState(raw: Buffer | undefined): HardState {
  if (raw === undefined) return EMPTY_HARD_STATE;
  if (raw.length !== 24) throw new StorageCorruptionError(`hard state has ${raw.length} bytes`);
  return { term: readU64(raw, 0), vote: readU64(raw, 8), commit: readU64(raw, 16) };
}

function decodeTrimPoint(raw: Buffer | undefined): TrimPoint {
  if (raw === undefined) return { index: 0, term: 0, arrivalMs: 0 };
  if (raw.length !== 24) throw new StorageCorruptionError(`trim point has ${raw.length} bytes`);
  return { index: readU64(raw, 0), term: readU64(raw, 8), arrivalMs: readU64(raw, 16) };
}

/**
 * The groups (shard incarnations, and 0 for a coordinator's metadata) that have state stored in
 * `kv`: a broker deletes those no longer placed on it. A destroy interrupted by a crash leaves
 * state or markers behind (log and index keys go first), so both spaces are listed.
 */
export async function storedGroups(kv: KvStore): Promise<number[]> {
  const groups = new Set<number>();
  for (const space of [SPACE_SHARD_STATE, SPACE_MARKER]) {
    let from: Buffer = Buffer.of(space);
    for (;;) {
      const [key] = await kv.keys({ gte: from, lt: Buffer.of(space + 1), limit: 1 });
      if (key === undefined) break;
      const group = readU64(key, 1);
      groups.add(group);
      // Skip the rest of this group's keys in one seek.
      from = shardSpaceEnd(space, group);
    }
  }
  return [...groups].sort((a, b) => a - b);
}
