import type { KvOp, KvRange, KvStore, KvWriteOptions } from '../../src/storage/kv-store.js';
import type { SegmentDisk, SegmentFile } from '../../src/storage/segment-disk.js';

/**
 * Simulated twins of the broker's two disks, for crashes that `kill -9` cannot show: what was
 * written but never synced is lost, or survives only in part, at a power cut.
 */

function hex(key: Buffer): string {
  return key.toString('hex');
}

function inRange(key: Buffer, range: KvRange): boolean {
  if (range.gte !== undefined && Buffer.compare(key, range.gte) < 0) return false;
  if (range.gt !== undefined && Buffer.compare(key, range.gt) <= 0) return false;
  if (range.lte !== undefined && Buffer.compare(key, range.lte) > 0) return false;
  if (range.lt !== undefined && Buffer.compare(key, range.lt) >= 0) return false;
  return true;
}

function applyOps(state: Map<string, [Buffer, Buffer]>, ops: readonly KvOp[]): void {
  for (const op of ops) {
    if (op.type === 'put') state.set(hex(op.key), [Buffer.from(op.key), Buffer.from(op.value)]);
    else state.delete(hex(op.key));
  }
}

/**
 * LevelDB as the log store sees it: a synced write makes every earlier write durable (LevelDB has
 * one WAL); at a crash, each unsynced write survives or not at random, independently. Real
 * LevelDB keeps a prefix; any subset is a harder test.
 */
export class SimIndex implements KvStore {
  private view = new Map<string, [Buffer, Buffer]>();
  private durable = new Map<string, [Buffer, Buffer]>();
  private unsynced: KvOp[][] = [];
  syncedWrites = 0;

  write(ops: readonly KvOp[], options: KvWriteOptions): Promise<void> {
    applyOps(this.view, ops);
    this.unsynced.push([...ops]);
    if (options.sync) {
      this.syncedWrites++;
      for (const batch of this.unsynced) applyOps(this.durable, batch);
      this.unsynced = [];
    }
    return Promise.resolve();
  }

  get(key: Buffer): Promise<Buffer | undefined> {
    return Promise.resolve(this.view.get(hex(key))?.[1]);
  }

  entries(range: KvRange): Promise<Array<[Buffer, Buffer]>> {
    let rows = [...this.view.values()]
      .filter(([key]) => inRange(key, range))
      .sort(([a], [b]) => Buffer.compare(a, b));
    if (range.reverse === true) rows = rows.reverse();
    if (range.limit !== undefined && range.limit >= 0) rows = rows.slice(0, range.limit);
    return Promise.resolve(rows);
  }

  async keys(range: KvRange): Promise<Buffer[]> {
    return (await this.entries(range)).map(([key]) => key);
  }

  async *iterate(range: KvRange): AsyncIterable<[Buffer, Buffer]> {
    for (const row of await this.entries(range)) yield row;
  }

  async clear(range: KvRange): Promise<void> {
    const keys = await this.keys(range);
    await this.write(
      keys.map((key) => ({ type: 'del', key })),
      { sync: false },
    );
  }

  compact(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Power cut: the durable state plus a random subset of the unsynced writes. */
  crash(random: () => number): void {
    for (const batch of this.unsynced) if (random() < 0.5) applyOps(this.durable, batch);
    this.unsynced = [];
    this.view = new Map(this.durable);
  }
}

interface SimFileState {
  bytes: Buffer;
  sizeBytes: number;
  durableBytes: number;
}

class SimSegmentFile implements SegmentFile {
  constructor(
    private readonly disk: SimSegmentDisk,
    private readonly state: SimFileState,
  ) {}

  get sizeBytes(): number {
    return this.state.sizeBytes;
  }

  append(chunks: readonly Uint8Array[]): Promise<void> {
    for (const chunk of chunks) {
      const needed = this.state.sizeBytes + chunk.byteLength;
      if (needed > this.state.bytes.length) {
        const grown = Buffer.alloc(Math.max(needed, this.state.bytes.length * 2));
        this.state.bytes.copy(grown);
        this.state.bytes = grown;
      }
      this.state.bytes.set(chunk, this.state.sizeBytes);
      this.state.sizeBytes = needed;
    }
    this.disk.appends++;
    return Promise.resolve();
  }

  async sync(): Promise<void> {
    const size = this.state.sizeBytes;
    await this.disk.syncGate();
    this.state.durableBytes = Math.max(this.state.durableBytes, size);
  }

  truncate(sizeBytes: number): Promise<void> {
    this.state.sizeBytes = sizeBytes;
    this.state.durableBytes = sizeBytes;
    this.state.bytes.fill(0, sizeBytes);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Segment files in memory; a crash keeps each file's synced bytes and a torn part of the rest. */
export class SimSegmentDisk implements SegmentDisk {
  private readonly files = new Map<number, SimFileState>();
  appends = 0;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private syncWaiters: Array<() => void> = [];

  list(): Promise<number[]> {
    return Promise.resolve([...this.files.keys()].sort((a, b) => a - b));
  }

  open(id: number): Promise<SegmentFile> {
    const state = this.files.get(id);
    if (state === undefined) return Promise.reject(new Error(`no segment ${id}`));
    return Promise.resolve(new SimSegmentFile(this, state));
  }

  create(id: number): Promise<SegmentFile> {
    if (this.files.has(id)) return Promise.reject(new Error(`segment ${id} exists`));
    const state: SimFileState = { bytes: Buffer.alloc(1024), sizeBytes: 0, durableBytes: 0 };
    this.files.set(id, state);
    return Promise.resolve(new SimSegmentFile(this, state));
  }

  read(id: number, offset: number, length: number): Promise<Buffer> {
    const state = this.files.get(id);
    if (state === undefined) return Promise.reject(new Error(`read of missing segment ${id}`));
    if (offset + length > state.sizeBytes) {
      return Promise.reject(new Error(`read past the end of segment ${id}`));
    }
    return Promise.resolve(Buffer.from(state.bytes.subarray(offset, offset + length)));
  }

  remove(id: number): Promise<void> {
    this.files.delete(id);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Bytes of every file, by id (what a crash would be judged against). */
  sizes(): Map<number, number> {
    return new Map([...this.files].map(([id, s]) => [id, s.sizeBytes]));
  }

  /** Syncs from now on wait until releaseSyncs(). */
  holdSyncs(): void {
    this.gate ??= new Promise((resolve) => {
      this.openGate = resolve;
    });
  }

  releaseSyncs(): void {
    const open = this.openGate;
    this.gate = undefined;
    this.openGate = undefined;
    open?.();
  }

  /** Resolves once a sync is waiting at the gate. */
  async syncHeld(): Promise<void> {
    await new Promise<void>((resolve) => this.syncWaiters.push(resolve));
  }

  async syncGate(): Promise<void> {
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const resolve of waiters) resolve();
    while (this.gate !== undefined) await this.gate;
  }

  /**
   * Power cut: each file keeps its synced bytes and a random part of the unsynced ones, whose last
   * surviving byte may be garbage (a torn sector). Returns the unsynced bytes that were kept.
   */
  crash(random: () => number): number {
    let kept = 0;
    for (const state of this.files.values()) {
      const unsynced = state.sizeBytes - state.durableBytes;
      const keep = Math.min(unsynced, Math.floor(random() * (unsynced + 1)));
      const size = state.durableBytes + keep;
      if (keep > 0 && random() < 0.5) {
        state.bytes[size - 1] = ((state.bytes[size - 1] as number) ^ 0x5a) & 0xff;
      }
      state.bytes.fill(0, size);
      state.sizeBytes = size;
      state.durableBytes = size;
      kept += keep;
    }
    // The gate is the process's; a crash ends every write waiting behind it.
    this.gate = undefined;
    this.openGate = undefined;
    return kept;
  }

  /** Flips one byte of segment `id` at `offset` (bit rot). */
  corrupt(id: number, offset: number): void {
    const state = this.files.get(id);
    if (state === undefined) throw new Error(`no segment ${id}`);
    state.bytes[offset] = ((state.bytes[offset] as number) ^ 0xff) & 0xff;
  }
}
