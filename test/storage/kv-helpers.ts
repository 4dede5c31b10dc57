import { rm } from 'node:fs/promises';
import { decodeEntry, EntryType, type LogEntry } from '../../src/storage/entry-codec.js';
import {
  logKeyIndex,
  shardSpaceEnd,
  shardSpaceStart,
  SPACE_ARRIVAL,
  SPACE_LOG,
  SPACE_SHARD_STATE,
} from '../../src/storage/keys.js';
import {
  openKvStore,
  type KvOp,
  type KvRange,
  type KvStore,
  type KvWriteOptions,
} from '../../src/storage/kv-store.js';
import { openBrokerStore } from '../../src/storage/log-store.js';
import { decodeRecordBatch, type BatchRecord } from '../../src/storage/record-batch.js';
import { tempDir } from '../helpers/node.js';

/** Cleanup actions run in reverse order of registration (afterEach / afterAll). */
export class Cleanup {
  private readonly actions: Array<() => Promise<void>> = [];

  add(action: () => Promise<void>): void {
    this.actions.push(action);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    while (this.actions.length > 0) {
      const action = this.actions.pop() as () => Promise<void>;
      try {
        await action();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}

/** A temporary folder removed by `cleanup`. */
export async function tempFolder(cleanup: Cleanup, prefix = 'rheos-storage-'): Promise<string> {
  const dir = await tempDir(prefix);
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const SMALL_CACHES = { cacheSizeBytes: 1024 * 1024, writeBufferSizeBytes: 1 << 20 };

/**
 * The broker's real store in `dir` (log segments and the LevelDB index), closed by `cleanup`
 * (closing twice is harmless). Segments are small so that tests seal, replay and delete them.
 */
export async function openStore(cleanup: Cleanup, dir: string): Promise<KvStore> {
  const kv = await openBrokerStore(dir, { ...SMALL_CACHES, segmentBytes: 256 * 1024 });
  cleanup.add(() => kv.close());
  return kv;
}

/** A bare LevelDB in `dir` (for the LevelDB wrapper's own tests). */
export async function openLevelStore(cleanup: Cleanup, dir: string): Promise<KvStore> {
  const kv = await openKvStore(dir, SMALL_CACHES);
  cleanup.add(() => kv.close());
  return kv;
}

export interface RecordedWrite {
  readonly ops: readonly KvOp[];
  readonly sync: unknown;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Wraps a real KvStore and records every write, counts writes in flight (with a few event-loop
 * turns spent inside each write so overlapping writes would be seen), and can hold writes behind
 * a gate or make them fail.
 */
export class RecordingKvStore implements KvStore {
  readonly writes: RecordedWrite[] = [];
  readonly clears: KvRange[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Iterators opened (reads that went to storage). */
  iterations = 0;
  /** Event-loop turns each write spends before reaching the store. */
  turnsPerWrite = 0;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private failure: { error: unknown } | undefined;
  private clearFailure: { error: unknown } | undefined;
  private startedWaiters: Array<() => void> = [];

  constructor(readonly inner: KvStore) {}

  /** Writes that arrive from now on wait until release(). */
  hold(): void {
    if (this.gate !== undefined) return;
    this.gate = new Promise((resolve) => {
      this.openGate = resolve;
    });
  }

  release(): void {
    const open = this.openGate;
    this.gate = undefined;
    this.openGate = undefined;
    open?.();
  }

  /** Every write from now on rejects with `error` (after the gate, if held). */
  failWrites(error: unknown): void {
    this.failure = { error };
  }

  /** Every clear() from now on rejects with `error` without deleting anything. */
  failClears(error: unknown): void {
    this.clearFailure = { error };
  }

  /** Resolves when the write count reaches `count`. */
  async writeStarted(count: number): Promise<void> {
    while (this.writes.length < count) {
      await new Promise<void>((resolve) => this.startedWaiters.push(resolve));
    }
  }

  async write(ops: readonly KvOp[], options: KvWriteOptions): Promise<void> {
    this.writes.push({ ops: [...ops], sync: options.sync });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const waiters = this.startedWaiters;
    this.startedWaiters = [];
    for (const resolve of waiters) resolve();
    try {
      for (let i = 0; i < this.turnsPerWrite; i++) await nextTurn();
      while (this.gate !== undefined) await this.gate;
      if (this.failure !== undefined) throw this.failure.error;
      await this.inner.write(ops, options);
    } finally {
      this.inFlight--;
    }
  }

  get(key: Buffer): Promise<Buffer | undefined> {
    return this.inner.get(key);
  }

  entries(range: KvRange): Promise<Array<[Buffer, Buffer]>> {
    return this.inner.entries(range);
  }

  keys(range: KvRange): Promise<Buffer[]> {
    return this.inner.keys(range);
  }

  iterate(range: KvRange): AsyncIterable<[Buffer, Buffer]> {
    this.iterations++;
    return this.inner.iterate(range);
  }

  async clear(range: KvRange): Promise<void> {
    this.clears.push(range);
    if (this.clearFailure !== undefined) throw this.clearFailure.error;
    await this.inner.clear(range);
  }

  compact(start: Buffer, end: Buffer): Promise<void> {
    return this.inner.compact(start, end);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface RawEntry extends LogEntry {
  /** Decoded records of a Records entry; empty for an Empty entry. */
  readonly records: BatchRecord[];
}

/** Every stored log entry of a shard, checksum-verified and decoded, in index order. */
export async function rawLog(kv: KvStore, shard: number): Promise<RawEntry[]> {
  const out: RawEntry[] = [];
  for (const [key, value] of await kv.entries({
    gte: shardSpaceStart(SPACE_LOG, shard),
    lt: shardSpaceEnd(SPACE_LOG, shard),
  })) {
    const entry = decodeEntry(logKeyIndex(key), value);
    out.push({
      ...entry,
      records:
        entry.type === EntryType.Records ? decodeRecordBatch(entry.index, entry.payload) : [],
    });
  }
  return out;
}

/** Every key of a shard in all of its key spaces (log, arrival index, shard state). */
export async function shardKeys(kv: KvStore, shard: number): Promise<Buffer[]> {
  const keys: Buffer[] = [];
  for (const space of [SPACE_LOG, SPACE_ARRIVAL, SPACE_SHARD_STATE]) {
    keys.push(
      ...(await kv.keys({ gte: shardSpaceStart(space, shard), lt: shardSpaceEnd(space, shard) })),
    );
  }
  return keys;
}
