import { ClassicLevel } from 'classic-level';

/**
 * The broker's one LevelDB, behind a narrow interface. This is the only file that imports `level`:
 * everything else sees KvStore, so tests can wrap it (to check that every batch is synced) and the
 * simulator can replace it with a disk that loses unsynced writes.
 */

export type KvOp =
  | { readonly type: 'put'; readonly key: Buffer; readonly value: Buffer }
  | { readonly type: 'del'; readonly key: Buffer };

export interface KvRange {
  readonly gte?: Buffer;
  readonly gt?: Buffer;
  readonly lte?: Buffer;
  readonly lt?: Buffer;
  readonly reverse?: boolean;
  readonly limit?: number;
}

export interface KvWriteOptions {
  /** true: return only once the batch is on stable storage (fsync). */
  readonly sync: boolean;
}

export interface KvStore {
  /** Writes all ops atomically. */
  write(ops: readonly KvOp[], options: KvWriteOptions): Promise<void>;
  get(key: Buffer): Promise<Buffer | undefined>;
  /** Reads up to `range.limit` (default: all) entries of a range, in key order. */
  entries(range: KvRange): Promise<Array<[Buffer, Buffer]>>;
  keys(range: KvRange): Promise<Buffer[]>;
  /**
   * Iterates a range lazily (LevelDB prefetches a few KiB at a time), for scans whose size is
   * bounded by bytes rather than by a count. Breaking out of the loop closes the iterator.
   */
  iterate(range: KvRange): AsyncIterable<[Buffer, Buffer]>;
  /** Deletes a key range (not atomic with other writes; callers make it idempotent). */
  clear(range: KvRange): Promise<void>;
  /** Reclaims space after a large deletion in [start, end). */
  compact(start: Buffer, end: Buffer): Promise<void>;
  close(): Promise<void>;
}

/**
 * classic-level's own batch step, which abstract-level's public batch() calls after cloning every
 * op and looking up its encodings. That wrapper cost ~15 us per op on the event loop on the 2-core
 * machine, three times the native step, and was the largest item in a broker's profile; our ops
 * are already Buffers in the { type, key, value } shape the binding reads, so the store calls the
 * step itself. Looked up at open: an upgrade that removes it fails at start, not silently.
 */
type NativeBatch = (ops: readonly KvOp[], options: { sync: boolean }) => Promise<void>;

class LevelKvStore implements KvStore {
  constructor(
    private readonly db: ClassicLevel<Buffer, Buffer>,
    private readonly nativeBatch: NativeBatch,
  ) {}

  async write(ops: readonly KvOp[], options: KvWriteOptions): Promise<void> {
    if (ops.length === 0) return;
    // The public batch() checks this; the binding must never see a closed database.
    if (this.db.status !== 'open') throw new Error(`the store is ${this.db.status}, not open`);
    await this.nativeBatch.call(this.db, ops, { sync: options.sync });
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    return this.db.get(key);
  }

  async entries(range: KvRange): Promise<Array<[Buffer, Buffer]>> {
    return this.db.iterator(levelRange(range)).all();
  }

  async keys(range: KvRange): Promise<Buffer[]> {
    return this.db.keys(levelRange(range)).all();
  }

  iterate(range: KvRange): AsyncIterable<[Buffer, Buffer]> {
    return this.db.iterator(levelRange(range));
  }

  async clear(range: KvRange): Promise<void> {
    await this.db.clear(levelRange(range));
  }

  async compact(start: Buffer, end: Buffer): Promise<void> {
    await this.db.compactRange(start, end);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

function levelRange(range: KvRange): KvRange & { limit: number } {
  return { ...range, limit: range.limit ?? -1 };
}

export interface OpenKvOptions {
  /** LevelDB block cache, shared by all shards on the broker. */
  readonly cacheSizeBytes?: number;
  /** Memtable size: larger absorbs bursts of writes before a flush to level 0. */
  readonly writeBufferSizeBytes?: number;
}

export async function openKvStore(path: string, options: OpenKvOptions = {}): Promise<KvStore> {
  const db = new ClassicLevel<Buffer, Buffer>(path, {
    keyEncoding: 'buffer',
    valueEncoding: 'buffer',
    cacheSize: options.cacheSizeBytes ?? 64 * 1024 * 1024,
    writeBufferSize: options.writeBufferSizeBytes ?? 32 * 1024 * 1024,
    maxFileSize: 16 * 1024 * 1024,
  });
  await db.open();
  const nativeBatch = (db as unknown as { _batch?: unknown })._batch;
  if (typeof nativeBatch !== 'function') {
    await db.close();
    throw new Error('classic-level has no _batch: the store cannot write (see kv-store.ts)');
  }
  return new LevelKvStore(db, nativeBatch as NativeBatch);
}
