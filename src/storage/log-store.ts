import { join } from 'node:path';
import { assert } from '../common/assert.js';
import { StorageCorruptionError } from './entry-codec.js';
import {
  logKey,
  readU64,
  SEGMENT_CHECKPOINT_KEY,
  SEGMENT_SUMMARIES_END,
  SEGMENT_SUMMARIES_START,
  segmentSummaryKey,
  segmentSummaryKeySegment,
  shardSpaceEnd,
  shardSpaceStart,
  SPACE_LOG,
  writeU64,
} from './keys.js';
import {
  openKvStore,
  type KvOp,
  type KvRange,
  type KvStore,
  type KvWriteOptions,
  type OpenKvOptions,
} from './kv-store.js';
import { openSegmentDisk, type SegmentDisk, type SegmentFile } from './segment-disk.js';
import {
  decodeFrameBody,
  decodeFrameHeader,
  encodeFrame,
  FRAME_HEADER_BYTES,
  frameBodyIntact,
  type FrameOp,
} from './segment-frame.js';

/**
 * The broker's store: log entries in append-only segment files, everything else in LevelDB.
 *
 * Through LevelDB every record byte reached the disk four to seven times (its WAL, the memtable
 * flush, then compactions of interleaved shards). Here a synced write becomes one frame appended
 * to the active segment and fdatasync'd: that frame is the write's only durable copy, as Kafka's
 * and raft-engine's logs are. LevelDB then gets the same ops with each log entry replaced by a
 * 13-byte pointer into the frame, written *without* sync: it is an index that the segments can
 * rebuild. After a crash, every frame from the checkpoint (the last point at which LevelDB was
 * synced) on is replayed into it, whatever LevelDB kept; replaying a frame twice is harmless,
 * because frames are replayed in order and each op sets or deletes a whole key.
 *
 * Rules that keep replay exact:
 *  - clear() deletes straight in LevelDB, so it is followed by a synced checkpoint: no frame
 *    before the clear is ever replayed over it;
 *  - an unsynced write (a cache) that bypasses the frames makes the next frame's LevelDB write
 *    synced, so it is never lost while a later synced write survives;
 *  - a segment is deleted only once it lies before the checkpoint and no pointer refers to it.
 * A torn tail (a frame that fails its CRC at the end of the last segment) was never acknowledged
 * and is cut off at open; a bad frame anywhere else is corruption and stops the broker.
 */

const POINTER_TAG = 0xb0; // entry-codec's versions start at 1; a pointer is never an entry
const POINTER_BYTES = 13;
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Replayed ops are written to LevelDB in batches of about this size. */
const REPLAY_BATCH_BYTES = 4 * 1024 * 1024;

export interface LogStoreOptions {
  /** A segment that reaches this size is sealed and a new one started. */
  readonly segmentBytes?: number;
  /** Told when open() cuts a torn tail or replays frames (for the broker's log). */
  readonly onRecovery?: (report: LogStoreRecovery) => void;
}

export interface LogStoreRecovery {
  readonly replayedFrames: number;
  /** Bytes cut from the end of the last segment: a write that was never acknowledged. */
  readonly tornBytes: number;
  readonly segments: number;
}

export interface LogStoreStats {
  /** Bytes appended to segments (frames) since open. */
  segmentBytesWritten: number;
  frames: number;
  segmentsDeleted: number;
}

interface Position {
  readonly segment: number;
  readonly offset: number;
}

/** The log index range of each shard's entries in one segment. */
type Summary = Map<number, { min: number; max: number }>;

function isLogPut(op: KvOp): boolean {
  return op.type === 'put' && op.key[0] === SPACE_LOG;
}

function pointer(segment: number, offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(POINTER_BYTES);
  out[0] = POINTER_TAG;
  out.writeUInt32BE(segment, 1);
  out.writeUInt32BE(offset, 5);
  out.writeUInt32BE(length, 9);
  return out;
}

function isPointer(key: Buffer, value: Buffer): boolean {
  return key[0] === SPACE_LOG && value.length === POINTER_BYTES && value[0] === POINTER_TAG;
}

function positionOp(at: Position): KvOp {
  const value = Buffer.allocUnsafe(16);
  writeU64(value, at.segment, 0);
  writeU64(value, at.offset, 8);
  return { type: 'put', key: SEGMENT_CHECKPOINT_KEY, value };
}

function after(a: Position, b: Position): boolean {
  return a.segment > b.segment || (a.segment === b.segment && a.offset > b.offset);
}

function noteLogPut(summary: Summary, key: Buffer): void {
  const shard = readU64(key, 1);
  const index = readU64(key, 9);
  const range = summary.get(shard);
  if (range === undefined) summary.set(shard, { min: index, max: index });
  else {
    range.min = Math.min(range.min, index);
    range.max = Math.max(range.max, index);
  }
}

function encodeSummary(summary: Summary): Buffer {
  return Buffer.from(JSON.stringify([...summary].map(([s, r]) => [s, r.min, r.max])), 'utf8');
}

function decodeSummary(raw: Buffer): Summary {
  try {
    const rows = JSON.parse(raw.toString('utf8')) as Array<[number, number, number]>;
    return new Map(rows.map(([s, min, max]) => [s, { min, max }]));
  } catch (error) {
    throw new StorageCorruptionError('a segment summary is not JSON', { cause: error });
  }
}

export class LogStore implements KvStore {
  readonly stats: LogStoreStats = { segmentBytesWritten: 0, frames: 0, segmentsDeleted: 0 };
  private writeChain: Promise<void> = Promise.resolve();
  private checkpointChain: Promise<void> = Promise.resolve();
  private gcChain: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;
  /** An unsynced write went straight to LevelDB since its last synced write. */
  private indexUnsynced = false;
  /** Reads between their index lookup and their segment read; deletions wait for zero. */
  private readers = 0;
  private readonly removable = new Set<number>();
  /** Sealed segments holding entries of each shard. */
  private readonly shardSegments = new Map<number, Set<number>>();
  private closed = false;

  private constructor(
    private readonly index: KvStore,
    private readonly disk: SegmentDisk,
    private active: SegmentFile,
    private activeId: number,
    /** End of the last frame whose LevelDB write completed. */
    private appliedEnd: Position,
    /** The checkpoint LevelDB holds durably: replay after a crash starts here. */
    private durable: Position,
    private readonly summaries: Map<number, Summary>,
    private readonly segmentBytes: number,
  ) {
    for (const [segment, summary] of summaries) {
      if (segment !== activeId) this.indexSegment(segment, summary);
    }
  }

  /**
   * Opens the store over `index` (the broker's LevelDB) and `disk`: rebuilds the index from the
   * frames after the checkpoint, cuts a torn tail, and deletes segments nothing refers to.
   */
  static async open(
    index: KvStore,
    disk: SegmentDisk,
    options: LogStoreOptions = {},
  ): Promise<LogStore> {
    const ids = await disk.list();
    const rawCheckpoint = await index.get(SEGMENT_CHECKPOINT_KEY);
    const checkpoint: Position =
      rawCheckpoint === undefined
        ? { segment: ids[0] ?? 1, offset: 0 }
        : { segment: readU64(rawCheckpoint, 0), offset: readU64(rawCheckpoint, 8) };
    const summaries = new Map<number, Summary>();
    const staleSummaries: KvOp[] = [];
    for (const [key, value] of await index.entries({
      gte: SEGMENT_SUMMARIES_START,
      lt: SEGMENT_SUMMARIES_END,
    })) {
      const segment = segmentSummaryKeySegment(key);
      if (ids.includes(segment)) summaries.set(segment, decodeSummary(value));
      else staleSummaries.push({ type: 'del', key });
    }
    let replayedFrames = 0;
    let tornBytes = 0;
    let active: SegmentFile | undefined;
    const lastId = ids[ids.length - 1];
    if (rawCheckpoint !== undefined && checkpoint.segment > (lastId ?? 0)) {
      throw new StorageCorruptionError(
        `the index replays from segment ${checkpoint.segment}, which is missing (newest: ${String(lastId)})`,
      );
    }
    for (const id of ids) {
      const sealedWithSummary = id < checkpoint.segment && summaries.has(id);
      if (sealedWithSummary) continue;
      const file = await disk.open(id);
      const replayFrom =
        id < checkpoint.segment ? Infinity : id > checkpoint.segment ? 0 : checkpoint.offset;
      const scan = await scanSegment(index, disk, id, file.sizeBytes, replayFrom);
      summaries.set(id, scan.summary);
      replayedFrames += scan.replayedFrames;
      // A torn write was never acknowledged, so it lies after every frame the index holds
      // durably (the checkpoint); a bad or missing frame before that is corruption.
      if (id === checkpoint.segment && scan.validBytes < checkpoint.offset) {
        await file.close();
        throw new StorageCorruptionError(
          `segment ${id}: intact frames end at byte ${scan.validBytes}, before the checkpoint at ${checkpoint.offset}`,
        );
      }
      if (scan.validBytes < file.sizeBytes) {
        if (id !== lastId) {
          await file.close();
          throw new StorageCorruptionError(
            `segment ${id}: a bad frame at byte ${scan.validBytes} of ${file.sizeBytes}, not at the end of the log`,
          );
        }
        tornBytes = file.sizeBytes - scan.validBytes;
        await file.truncate(scan.validBytes);
      }
      if (id === lastId) active = file;
      else await file.close();
    }
    const activeId = lastId ?? 1;
    if (active === undefined) active = await disk.create(activeId);
    if (!summaries.has(activeId)) summaries.set(activeId, new Map());
    if (staleSummaries.length > 0) await index.write(staleSummaries, { sync: false });
    const end: Position = { segment: activeId, offset: active.sizeBytes };
    // Everything replayed is made durable in LevelDB now, so the next crash replays none of it.
    await index.write([positionOp(end)], { sync: true });
    const store = new LogStore(
      index,
      disk,
      active,
      activeId,
      end,
      end,
      summaries,
      options.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
    );
    options.onRecovery?.({ replayedFrames, tornBytes, segments: ids.length });
    await store.collect([...store.shardSegments.keys()]);
    return store;
  }

  async write(ops: readonly KvOp[], options: KvWriteOptions): Promise<void> {
    if (ops.length === 0) return;
    this.throwIfFailed();
    if (!options.sync && !ops.some(isLogPut)) {
      this.indexUnsynced = true;
      await this.index.write(ops, { sync: false });
      return;
    }
    // Frames are always synced, even if not asked: an index pointer must never outlive the bytes
    // it points to, and nothing writes log entries unsynced anyway.
    await this.serially(() => this.writeFrame(ops));
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    this.readers++;
    try {
      const value = await this.index.get(key);
      return value !== undefined && isPointer(key, value) ? await this.resolve(value) : value;
    } finally {
      this.releaseReader();
    }
  }

  async entries(range: KvRange): Promise<Array<[Buffer, Buffer]>> {
    this.readers++;
    try {
      const rows = await this.index.entries(range);
      return await Promise.all(
        rows.map(async ([key, value]): Promise<[Buffer, Buffer]> =>
          isPointer(key, value) ? [key, await this.resolve(value)] : [key, value],
        ),
      );
    } finally {
      this.releaseReader();
    }
  }

  keys(range: KvRange): Promise<Buffer[]> {
    return this.index.keys(range);
  }

  async *iterate(range: KvRange): AsyncIterable<[Buffer, Buffer]> {
    this.readers++;
    try {
      for await (const [key, value] of this.index.iterate(range)) {
        yield isPointer(key, value) ? [key, await this.resolve(value)] : [key, value];
      }
    } finally {
      this.releaseReader();
    }
  }

  async clear(range: KvRange): Promise<void> {
    this.throwIfFailed();
    await this.index.clear(range);
    // The deletions must be durable before any frame from before them could be replayed.
    await this.checkpoint();
    const from = range.gte ?? range.gt;
    if (from !== undefined && from[0] === SPACE_LOG && from.length >= 9) {
      await this.collect([readU64(from, 1)]);
    }
  }

  compact(start: Buffer, end: Buffer): Promise<void> {
    return this.index.compact(start, end);
  }

  /** Segment files present (sealed and active). */
  get segmentCount(): number {
    return this.summaries.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writeChain.catch(() => undefined);
    await this.gcChain.catch(() => undefined);
    if (this.failure === undefined) await this.checkpoint().catch(() => undefined);
    await this.active.close();
    await this.disk.close();
    await this.index.close();
  }

  private serially(task: () => Promise<void>): Promise<void> {
    const run = this.writeChain.then(task);
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  private async writeFrame(ops: readonly KvOp[]): Promise<void> {
    this.throwIfFailed();
    try {
      const frame = encodeFrame(ops, isLogPut);
      const start = this.active.sizeBytes;
      assert(start + frame.sizeBytes < 2 ** 32, 'a segment stays below 4 GiB');
      await this.active.append(frame.chunks);
      await this.active.sync();
      this.stats.segmentBytesWritten += frame.sizeBytes;
      this.stats.frames++;
      const indexOps = ops.slice();
      const summary = this.summaries.get(this.activeId) as Summary;
      for (const span of frame.spans) {
        const op = ops[span.opIndex] as KvOp;
        noteLogPut(summary, op.key);
        indexOps[span.opIndex] = {
          type: 'put',
          key: op.key,
          value: pointer(this.activeId, start + span.offset, span.length),
        };
      }
      const syncIndex = this.indexUnsynced;
      this.indexUnsynced = false;
      await this.index.write(indexOps, { sync: syncIndex });
      this.appliedEnd = { segment: this.activeId, offset: start + frame.sizeBytes };
      if (this.active.sizeBytes >= this.segmentBytes) await this.roll();
    } catch (error) {
      this.failure ??= { error };
      throw error;
    }
  }

  /** Seals the active segment and starts the next (inside the write chain). */
  private async roll(): Promise<void> {
    const sealed = this.activeId;
    const next = await this.disk.create(sealed + 1);
    await this.active.close();
    this.active = next;
    this.activeId = sealed + 1;
    this.summaries.set(this.activeId, new Map());
    const summary = this.summaries.get(sealed) as Summary;
    await this.index.write(
      [{ type: 'put', key: segmentSummaryKey(sealed), value: encodeSummary(summary) }],
      {
        sync: false,
      },
    );
    this.appliedEnd = { segment: this.activeId, offset: 0 };
    await this.checkpoint();
    this.indexSegment(sealed, summary);
  }

  /** A synced LevelDB write of the checkpoint: all LevelDB writes before it become durable. */
  private checkpoint(): Promise<void> {
    const run = this.checkpointChain.then(async () => {
      const at = after(this.appliedEnd, this.durable) ? this.appliedEnd : this.durable;
      await this.index.write([positionOp(at)], { sync: true });
      this.durable = at;
    });
    this.checkpointChain = run.catch((error: unknown) => {
      this.failure ??= { error };
    });
    return run;
  }

  private indexSegment(segment: number, summary: Summary): void {
    for (const shard of summary.keys()) {
      let set = this.shardSegments.get(shard);
      if (set === undefined) this.shardSegments.set(shard, (set = new Set()));
      set.add(segment);
    }
    if (summary.size === 0 && segment !== this.activeId) this.removable.add(segment);
  }

  /** Drops `shards` from the summaries of sealed segments they no longer use; deletes the empty. */
  private collect(shards: readonly number[]): Promise<void> {
    const run = this.gcChain.then(async () => {
      for (const shard of shards) {
        const segments = this.shardSegments.get(shard);
        if (segments === undefined) continue;
        for (const segment of [...segments]) {
          if (segment >= this.durable.segment) continue;
          if (await this.references(segment, shard)) continue;
          segments.delete(segment);
          const summary = this.summaries.get(segment);
          summary?.delete(shard);
          if (summary !== undefined && summary.size === 0) this.removable.add(segment);
        }
        if (segments.size === 0) this.shardSegments.delete(shard);
      }
      await this.removeUnreferenced();
    });
    this.gcChain = run.catch(() => undefined);
    return run;
  }

  /** Whether any of `shard`'s log keys still points into `segment`. */
  private async references(segment: number, shard: number): Promise<boolean> {
    const range = this.summaries.get(segment)?.get(shard);
    if (range === undefined) return false;
    const [first] = await this.index.keys({
      gte: shardSpaceStart(SPACE_LOG, shard),
      lt: shardSpaceEnd(SPACE_LOG, shard),
      limit: 1,
    });
    if (first === undefined || readU64(first, 9) > range.max) return false;
    for await (const [key, value] of this.index.iterate({
      gte: logKey(shard, range.min),
      lte: logKey(shard, range.max),
    })) {
      if (isPointer(key, value) && value.readUInt32BE(1) === segment) return true;
    }
    return false;
  }

  private async removeUnreferenced(): Promise<void> {
    if (this.readers > 0 || this.closed) return;
    for (const segment of [...this.removable]) {
      this.removable.delete(segment);
      this.summaries.delete(segment);
      await this.disk.remove(segment);
      await this.index.write([{ type: 'del', key: segmentSummaryKey(segment) }], { sync: false });
      this.stats.segmentsDeleted++;
    }
  }

  private releaseReader(): void {
    this.readers--;
    if (this.readers === 0 && this.removable.size > 0) {
      const run = this.gcChain.then(() => this.removeUnreferenced());
      this.gcChain = run.catch(() => undefined);
    }
  }

  private resolve(value: Buffer): Promise<Buffer> {
    return this.disk.read(value.readUInt32BE(1), value.readUInt32BE(5), value.readUInt32BE(9));
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) {
      throw new Error('the log store has failed', { cause: this.failure.error });
    }
  }
}

interface SegmentScan {
  readonly summary: Summary;
  /** Bytes of whole, intact frames from the start of the segment. */
  readonly validBytes: number;
  readonly replayedFrames: number;
}

/**
 * Reads a segment's frames in order: builds its summary, and writes the ops of every frame at or
 * after `replayFrom` into the index. Stops at the first frame that is not whole and intact.
 */
async function scanSegment(
  index: KvStore,
  disk: SegmentDisk,
  segment: number,
  sizeBytes: number,
  replayFrom: number,
): Promise<SegmentScan> {
  const summary: Summary = new Map();
  let at = 0;
  let replayedFrames = 0;
  let pending: KvOp[] = [];
  let pendingBytes = 0;
  while (at + FRAME_HEADER_BYTES <= sizeBytes) {
    const header = decodeFrameHeader(await disk.read(segment, at, FRAME_HEADER_BYTES));
    if (header === undefined || at + FRAME_HEADER_BYTES + header.bodyLength > sizeBytes) break;
    const body = await disk.read(segment, at + FRAME_HEADER_BYTES, header.bodyLength);
    if (!frameBodyIntact(header, body)) break;
    const ops: FrameOp[] = decodeFrameBody(body);
    for (const op of ops) {
      if (op.type === 'put' && op.key[0] === SPACE_LOG) noteLogPut(summary, op.key);
    }
    if (at >= replayFrom) {
      for (const op of ops) {
        if (op.type === 'del') pending.push({ type: 'del', key: Buffer.from(op.key) });
        else if (op.key[0] === SPACE_LOG) {
          const value = pointer(segment, at + op.valueOffset, op.value.length);
          pending.push({ type: 'put', key: Buffer.from(op.key), value });
        } else {
          pending.push({ type: 'put', key: Buffer.from(op.key), value: Buffer.from(op.value) });
        }
        pendingBytes += op.key.length + (op.type === 'put' ? op.value.length : 0);
      }
      replayedFrames++;
      if (pendingBytes >= REPLAY_BATCH_BYTES) {
        await index.write(pending, { sync: false });
        pending = [];
        pendingBytes = 0;
      }
    }
    at += FRAME_HEADER_BYTES + header.bodyLength;
  }
  if (pending.length > 0) await index.write(pending, { sync: false });
  return { summary, validBytes: at, replayedFrames };
}

/**
 * A broker's store in `dataDir`: the LevelDB index in broker.db (where the log itself lived
 * before segments: such entries are still read in place) and the segments in broker.segments.
 */
export async function openBrokerStore(
  dataDir: string,
  options: LogStoreOptions & OpenKvOptions = {},
): Promise<LogStore> {
  const index = await openKvStore(join(dataDir, 'broker.db'), options);
  try {
    const disk = await openSegmentDisk(join(dataDir, 'broker.segments'));
    return await LogStore.open(index, disk, options);
  } catch (error) {
    await index.close();
    throw error;
  }
}
