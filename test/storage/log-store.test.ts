import { describe, expect, it } from 'vitest';
import {
  decodeEntry,
  encodeEntry,
  EntryType,
  StorageCorruptionError,
} from '../../src/storage/entry-codec.js';
import {
  logKey,
  metadataKey,
  shardSpaceEnd,
  shardSpaceStart,
  shardStateKey,
  SPACE_LOG,
  SPACE_SHARD_STATE,
  STATE_HARD,
} from '../../src/storage/keys.js';
import type { KvOp } from '../../src/storage/kv-store.js';
import { LogStore, type LogStoreRecovery } from '../../src/storage/log-store.js';
import { prng } from './fixtures/crash-protocol.js';
import { SimIndex, SimSegmentDisk } from './sim-disk.js';

/**
 * The log store against simulated disks that lose unsynced writes at a power cut: LevelDB (the
 * index) keeps a random subset of its unsynced writes, segments keep a torn part of theirs.
 */

const SHARDS = [1, 2, 3];
const SEGMENT_BYTES = 8 * 1024;

function bytes(random: () => number, max: number): Buffer {
  const out = Buffer.allocUnsafe(Math.floor(random() * max));
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

function entry(index: number, random: () => number): Buffer {
  return encodeEntry({
    index,
    term: 1,
    type: EntryType.Records,
    arrivalMs: index,
    payload: bytes(random, 3000),
  });
}

/** What the store must hold: the L and S keys of every acknowledged write and clear. */
class Model {
  readonly state = new Map<string, Buffer>();
  readonly last = new Map<number, number>(SHARDS.map((s) => [s, 0]));
  readonly trimmed = new Map<number, number>(SHARDS.map((s) => [s, 0]));

  apply(ops: readonly KvOp[]): void {
    for (const op of ops) {
      if (op.type === 'put') this.state.set(op.key.toString('hex'), op.value);
      else this.state.delete(op.key.toString('hex'));
    }
  }
}

async function storeContents(store: LogStore): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const shard of SHARDS) {
    for (const space of [SPACE_LOG, SPACE_SHARD_STATE]) {
      const range = { gte: shardSpaceStart(space, shard), lt: shardSpaceEnd(space, shard) };
      for (const [key, value] of await store.entries(range)) out.set(key.toString('hex'), value);
      // The lazy iterator must agree with the bulk read.
      for await (const [key, value] of store.iterate(range)) {
        expect(out.get(key.toString('hex'))?.equals(value)).toBe(true);
      }
    }
  }
  return out;
}

async function expectModel(store: LogStore, model: Model): Promise<void> {
  const actual = await storeContents(store);
  expect([...actual.keys()].sort()).toEqual([...model.state.keys()].sort());
  for (const [key, value] of model.state) {
    expect(actual.get(key)?.equals(value), `value of ${key}`).toBe(true);
  }
}

/** One group commit: new entries for some shards and their hard states. */
function appendOps(model: Model, random: () => number): KvOp[] {
  const ops: KvOp[] = [];
  for (const shard of SHARDS) {
    if (random() < 0.4) continue;
    const count = 1 + Math.floor(random() * 3);
    for (let i = 0; i < count; i++) {
      const index = (model.last.get(shard) as number) + 1;
      model.last.set(shard, index);
      ops.push({ type: 'put', key: logKey(shard, index), value: entry(index, random) });
    }
    ops.push({ type: 'put', key: shardStateKey(shard, STATE_HARD), value: bytes(random, 16) });
  }
  return ops;
}

/** A leader overwrote a shard's uncommitted suffix: the old entries go, new ones take their place. */
function overwriteOps(model: Model, random: () => number): KvOp[] {
  const shard = SHARDS[Math.floor(random() * SHARDS.length)] as number;
  const last = model.last.get(shard) as number;
  const from = Math.max((model.trimmed.get(shard) as number) + 1, last - 2);
  const ops: KvOp[] = [];
  for (let i = from; i <= last; i++) ops.push({ type: 'del', key: logKey(shard, i) });
  const newLast = from + Math.floor(random() * 2);
  for (let i = from; i <= newLast; i++) {
    ops.push({ type: 'put', key: logKey(shard, i), value: entry(i, random) });
  }
  model.last.set(shard, Math.max(newLast, from - 1));
  return ops;
}

async function trim(store: LogStore, model: Model, shard: number, to: number): Promise<void> {
  const range = { gte: shardSpaceStart(SPACE_LOG, shard), lte: logKey(shard, to) };
  await store.clear(range);
  for (const key of [...model.state.keys()]) {
    const buf = Buffer.from(key, 'hex');
    if (buf[0] === SPACE_LOG && buf.readUInt32BE(5) === shard && buf.readUInt32BE(13) <= to) {
      model.state.delete(key);
    }
  }
  model.trimmed.set(shard, Math.max(model.trimmed.get(shard) as number, to));
}

describe('log store on disks that lose unsynced writes', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`keeps exactly the acknowledged writes and clears across power cuts (seed ${seed})`, async () => {
      const random = prng(seed);
      const index = new SimIndex();
      const disk = new SimSegmentDisk();
      const options = { segmentBytes: SEGMENT_BYTES };
      let store = await LogStore.open(index, disk, options);
      const model = new Model();
      let crashes = 0;
      // An unsynced cache may lose its newest values, but never one a later synced write followed.
      let cacheAtSync: Buffer | undefined;
      let cacheSince: Buffer[] = [];
      const synced = (): void => {
        cacheAtSync = cacheSince[cacheSince.length - 1] ?? cacheAtSync;
        cacheSince = [];
      };
      const expectCache = async (): Promise<void> => {
        const actual = await store.get(metadataKey('cache'));
        const allowed = [cacheAtSync, ...cacheSince];
        expect(
          allowed.some((v) => (v === undefined ? actual === undefined : actual?.equals(v))),
        ).toBe(true);
        cacheAtSync = actual;
        cacheSince = [];
      };
      for (let step = 0; step < 300; step++) {
        const r = random();
        if (r < 0.6) {
          const ops = appendOps(model, random);
          await store.write(ops, { sync: true });
          model.apply(ops);
          synced();
        } else if (r < 0.7) {
          const ops = overwriteOps(model, random);
          await store.write(ops, { sync: true });
          model.apply(ops);
          synced();
        } else if (r < 0.8) {
          const shard = SHARDS[Math.floor(random() * SHARDS.length)] as number;
          const last = model.last.get(shard) as number;
          const from = model.trimmed.get(shard) as number;
          if (last > from)
            await trim(store, model, shard, from + 1 + Math.floor(random() * (last - from)));
        } else if (r < 0.85) {
          // A cache written without sync, outside the model: it may be lost, nothing else may.
          const value = bytes(random, 64);
          await store.write([{ type: 'put', key: metadataKey('cache'), value }], { sync: false });
          cacheSince.push(value);
        } else if (r < 0.95) {
          index.crash(random);
          disk.crash(random);
          store = await LogStore.open(index, disk, options);
          crashes++;
          await expectModel(store, model);
          await expectCache();
        } else {
          await store.close();
          store = await LogStore.open(index, disk, options);
          await expectModel(store, model);
        }
      }
      await expectModel(store, model);
      expect(crashes).toBeGreaterThan(10);
      // The run rolled through many small segments (ids only grow).
      expect(Math.max(...disk.sizes().keys())).toBeGreaterThan(5);
      // Retention removes whole segments once nothing points into them.
      for (const shard of SHARDS) await trim(store, model, shard, model.last.get(shard) as number);
      expect(store.segmentCount).toBeLessThanOrEqual(2);
      expect(disk.sizes().size).toBe(store.segmentCount);
      index.crash(random);
      disk.crash(random);
      store = await LogStore.open(index, disk, options);
      await expectModel(store, model);
      await store.close();
    });
  }

  async function withInFlightWrite(keepFraction: number, tear: boolean) {
    const random = prng(42);
    const index = new SimIndex();
    const disk = new SimSegmentDisk();
    const store = await LogStore.open(index, disk);
    const model = new Model();
    for (let i = 0; i < 5; i++) {
      const ops = appendOps(model, random);
      await store.write(ops, { sync: true });
      model.apply(ops);
    }
    const lost = appendOps(new Model(), random).map((op) =>
      op.type === 'put' && op.key[0] === SPACE_LOG
        ? { ...op, key: logKey(op.key.readUInt32BE(5), op.key.readUInt32BE(13) + 1000) }
        : op,
    );
    disk.holdSyncs();
    const inFlight = store.write(lost, { sync: true });
    inFlight.catch(() => undefined);
    await disk.syncHeld();
    index.crash(random);
    // The power cut keeps `keepFraction` of the unsynced bytes, the last one garbled if `tear`.
    let call = 0;
    disk.crash(() => (call++ === 0 ? keepFraction : tear ? 0 : 0.99));
    const reports: LogStoreRecovery[] = [];
    const reopened = await LogStore.open(index, disk, { onRecovery: (r) => reports.push(r) });
    return { reopened, model, lost, report: reports[0] as LogStoreRecovery, disk, index, random };
  }

  it('cuts off a write torn by a power cut and never serves any of it', async () => {
    const { reopened, model, report } = await withInFlightWrite(0.5, false);
    expect(report.tornBytes).toBeGreaterThan(0);
    await expectModel(reopened, model);
    await reopened.close();
  });

  it('cuts off a write whose last surviving sector is garbage', async () => {
    const { reopened, model, report } = await withInFlightWrite(0.999, true);
    expect(report.tornBytes).toBeGreaterThan(0);
    await expectModel(reopened, model);
    await reopened.close();
  });

  it('makes an unacknowledged write that survived whole visible whole, and writes on after a cut', async () => {
    const { reopened, model, lost, disk, index, random } = await withInFlightWrite(1, false);
    model.apply(lost);
    await expectModel(reopened, model);
    const ops = appendOps(model, random);
    await reopened.write(ops, { sync: true });
    model.apply(ops);
    index.crash(random);
    disk.crash(random);
    const again = await LogStore.open(index, disk);
    await expectModel(again, model);
    await again.close();
  });

  it('refuses to open when a frame the index already relies on is damaged', async () => {
    const random = prng(7);
    const index = new SimIndex();
    const disk = new SimSegmentDisk();
    const store = await LogStore.open(index, disk);
    const model = new Model();
    for (let i = 0; i < 4; i++) await store.write(appendOps(model, random), { sync: true });
    await store.close();
    // The first frame's header: not a torn tail, because the checkpoint lies after it.
    disk.corrupt(1, 0);
    await expect(LogStore.open(index, disk)).rejects.toBeInstanceOf(StorageCorruptionError);
  });

  it('serves a damaged entry in a sealed segment as corruption, never as other data', async () => {
    const random = prng(9);
    const index = new SimIndex();
    const disk = new SimSegmentDisk();
    const store = await LogStore.open(index, disk, { segmentBytes: SEGMENT_BYTES });
    const model = new Model();
    while (store.segmentCount < 3) await store.write(appendOps(model, random), { sync: true });
    const key = logKey(1, 1);
    const good = (await store.get(key)) as Buffer;
    expect(decodeEntry(1, good).index).toBe(1);
    // Flip the entry's last byte where the index says it lies (a sealed segment).
    const pointer = (await index.get(key)) as Buffer;
    const segment = pointer.readUInt32BE(1);
    expect(segment).toBeLessThan(Math.max(...disk.sizes().keys()));
    disk.corrupt(segment, pointer.readUInt32BE(5) + pointer.readUInt32BE(9) - 1);
    const bad = (await store.get(key)) as Buffer;
    expect(() => decodeEntry(1, bad)).toThrow(StorageCorruptionError);
    await store.close();
  });

  it('deletes a segment only after the last reader that looked it up is done', async () => {
    const random = prng(11);
    const index = new SimIndex();
    const disk = new SimSegmentDisk();
    const store = await LogStore.open(index, disk, { segmentBytes: SEGMENT_BYTES });
    const model = new Model();
    while (store.segmentCount < 4) await store.write(appendOps(model, random), { sync: true });
    const range = { gte: shardSpaceStart(SPACE_LOG, 1), lt: shardSpaceEnd(SPACE_LOG, 1) };
    const reader = store.iterate(range)[Symbol.asyncIterator]();
    expect((await reader.next()).done).toBe(false);
    for (const shard of SHARDS) await trim(store, model, shard, model.last.get(shard) as number);
    expect(disk.sizes().has(1)).toBe(true);
    // The reader was looking at segment 1: what it reads next is still there.
    await reader.next();
    await reader.return?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(disk.sizes().has(1)).toBe(false);
    await store.close();
  });
});
