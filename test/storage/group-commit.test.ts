import { afterEach, describe, expect, it } from 'vitest';
import { SingleNodeReplica } from '../../src/broker/single-node-replica.js';
import { ManualClock } from '../../src/common/clock.js';
import { GroupCommitWriter, WriterFailedError } from '../../src/storage/group-commit.js';
import type { KvOp } from '../../src/storage/kv-store.js';
import { MetadataStore } from '../../src/storage/metadata-store.js';
import { ShardLog } from '../../src/storage/shard-log.js';
import { SPACE_SEGMENTS } from '../../src/storage/keys.js';
import { Cleanup, openStore, RecordingKvStore, tempFolder } from './kv-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function setup(): Promise<{
  kv: RecordingKvStore;
  fatal: unknown[];
  writer: GroupCommitWriter;
}> {
  const dir = await tempFolder(cleanup);
  const kv = new RecordingKvStore(await openStore(cleanup, dir));
  const fatal: unknown[] = [];
  const writer = new GroupCommitWriter(kv, { onFatal: (error) => fatal.push(error) });
  return { kv, fatal, writer };
}

function put(key: string, value = key): KvOp {
  return { type: 'put', key: Buffer.from(key), value: Buffer.from(value) };
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Tracks whether a promise has settled, without ever leaving a rejection unhandled. */
function track<T>(promise: Promise<T>): { settled: () => boolean; result: Promise<T> } {
  let settled = false;
  const result = promise.finally(() => {
    settled = true;
  });
  result.catch(() => undefined);
  return { settled: () => settled, result };
}

describe('group commit', () => {
  it('syncs every batch written by the writer, replicas and the metadata store', async () => {
    const { kv, fatal, writer } = await setup();
    kv.turnsPerWrite = 1;
    const clock = new ManualClock(1_000_000);

    // Plain writes, many at once and in a few waves.
    for (let wave = 0; wave < 3; wave++) {
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => writer.write([put(`x/${wave}/${i}`)])),
      );
    }

    // Two replicas (recovery, concurrent proposals, apply, trim) and the metadata store, all at once.
    const replicas = await Promise.all(
      [11, 12].map((shard) =>
        SingleNodeReplica.open({ shard, log: new ShardLog(kv, shard), writer, clock }),
      ),
    );
    const metadata = new MetadataStore(kv, writer);
    const work: Array<Promise<unknown>> = [];
    for (let i = 0; i < 60; i++) {
      for (const replica of replicas) {
        work.push(replica.propose([{ partitionKey: `pk${i}`, data: Buffer.from(`d${i}`) }]));
      }
      if (i % 10 === 0) work.push(metadata.write([[`stream/${i}`, { i, name: 'ä' }]]));
      if (i === 30) clock.advance(10_000);
    }
    await Promise.all(work);
    await writer.drain(); // the index keys of the last entries are written after they commit
    for (const replica of replicas) expect(await replica.trimArrivedBefore(1_005_000)).toBe(32);
    await metadata.write([
      ['stream/0', undefined],
      ['stream/10', { renamed: true }],
    ]);
    await writer.drain();
    // A restart writes a new term's empty entry and hard state.
    const reopened = await SingleNodeReplica.open({
      shard: 11,
      log: new ShardLog(kv, 11),
      writer,
      clock,
    });
    await reopened.propose([{ partitionKey: 'after', data: Buffer.from('restart') }]);
    await writer.drain();

    expect(fatal).toEqual([]);
    expect(kv.writes.length).toBeGreaterThan(10);
    expect(kv.writes.filter((w) => w.sync !== true)).toEqual([]);
    expect(writer.stats.batches).toBe(kv.writes.length);

    // Every key in the store arrived through one of those synced batches.
    const written = new Set<string>();
    for (const w of kv.writes) {
      for (const op of w.ops) if (op.type === 'put') written.add(op.key.toString('hex'));
    }
    // (Apart from the log store's own bookkeeping: where replay starts, what each segment holds.)
    const stored = (await kv.keys({})).filter((k) => k[0] !== SPACE_SEGMENTS);
    expect(stored.length).toBeGreaterThan(300);
    expect(stored.map((k) => k.toString('hex')).filter((k) => !written.has(k))).toEqual([]);

    const loaded = await metadata.loadAll();
    expect(loaded.has('stream/0')).toBe(false);
    expect(loaded.get('stream/10')).toEqual({ renamed: true });
    expect(loaded.get('stream/20')).toEqual({ i: 20, name: 'ä' });
  });

  it('never has more than one batch in flight', async () => {
    const { kv, writer } = await setup();
    kv.turnsPerWrite = 3;
    // 20 writers, each issuing its next write as soon as the previous one is durable, so new
    // writes keep arriving while a batch is on its way.
    let done = 0;
    await Promise.all(
      Array.from({ length: 20 }, async (_, client) => {
        for (let i = 0; i < 15; i++) {
          await writer.write([put(`c${client}/${i}`)]);
          done++;
        }
      }),
    );
    expect(done).toBe(300);
    expect(kv.writes.length).toBeGreaterThan(5);
    expect(kv.maxInFlight).toBe(1);
    expect(kv.inFlight).toBe(0);
  });

  it('groups writes issued in one tick into one batch, in call order', async () => {
    const { kv, writer } = await setup();
    const writes = Array.from({ length: 100 }, (_, i) =>
      writer.write([put(`k${String(i).padStart(3, '0')}`), put(`extra${i}`)]),
    );
    await Promise.all(writes);
    expect(kv.writes.length).toBeLessThan(writes.length);
    expect(kv.writes).toHaveLength(1);
    const ops = kv.writes[0]?.ops ?? [];
    expect(ops).toHaveLength(200);
    expect(ops.filter((_, i) => i % 2 === 0).map((op) => op.key.toString())).toEqual(
      Array.from({ length: 100 }, (_, i) => `k${String(i).padStart(3, '0')}`),
    );
    expect(writer.stats).toEqual({ batches: 1, ops: 200, bytes: expect.any(Number) });
  });

  it('puts writes that arrive during a batch into the next batch', async () => {
    const { kv, writer } = await setup();
    kv.hold();
    const first = writer.write([put('first')]);
    await kv.writeStarted(1);
    const later = Array.from({ length: 50 }, (_, i) => writer.write([put(`later${i}`)]));
    for (let i = 0; i < 5; i++) await nextTurn();
    expect(kv.writes).toHaveLength(1);
    kv.release();
    await Promise.all([first, ...later]);
    expect(kv.writes.map((w) => w.ops.length)).toEqual([1, 50]);
  });

  it('fails every pending and later write once a batch fails, and calls onFatal once', async () => {
    const { kv, fatal, writer } = await setup();
    await writer.write([put('before')]);
    const diskError = new Error('EIO: fsync failed');
    kv.hold();
    kv.failWrites(diskError);
    const inFlight = track(writer.write([put('a')]));
    await kv.writeStarted(2);
    const queued = [track(writer.write([put('b')])), track(writer.write([put('c'), put('d')]))];
    for (let i = 0; i < 5; i++) await nextTurn();
    expect(inFlight.settled()).toBe(false);
    expect(writer.failed).toBe(false);
    kv.release();

    for (const w of [inFlight, ...queued]) {
      const error: unknown = await w.result.then(
        () => 'resolved',
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(WriterFailedError);
      expect((error as WriterFailedError).cause).toBe(diskError);
    }
    expect(writer.failed).toBe(true);
    expect(fatal).toEqual([diskError]);

    // Later writes are refused without touching the disk, and onFatal is not called again.
    const later = await Promise.allSettled([writer.write([put('e')]), writer.write([])]);
    expect(later.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    for (const r of later) {
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(WriterFailedError);
    }
    for (let i = 0; i < 5; i++) await nextTurn();
    expect(kv.writes).toHaveLength(2);
    expect(fatal).toHaveLength(1);
    await writer.drain();
    // Nothing from the failed batch or after it reached the store.
    expect(await kv.get(Buffer.from('a'))).toBeUndefined();
    expect(await kv.get(Buffer.from('b'))).toBeUndefined();
    expect((await kv.get(Buffer.from('before')))?.toString()).toBe('before');
  });

  it('fails a replica proposal as indeterminate when its batch fails', async () => {
    const { kv, fatal, writer } = await setup();
    const replica = await SingleNodeReplica.open({
      shard: 1,
      log: new ShardLog(kv, 1),
      writer,
      clock: new ManualClock(),
    });
    await writer.drain();
    kv.failWrites(new Error('ENOSPC'));
    const error: unknown = await replica
      .propose([{ partitionKey: 'k', data: Buffer.from('v') }])
      .then(
        () => 'resolved',
        (e: unknown) => e,
      );
    expect(error).toMatchObject({ name: 'InternalFailureException', indeterminate: true });
    expect(writer.failed).toBe(true);
    expect(fatal).toHaveLength(1);
  });

  it('drain() resolves only after every queued write is durable', async () => {
    const { kv, writer } = await setup();
    await writer.drain(); // idle: resolves at once

    const events: string[] = [];
    kv.hold();
    const first = writer.write([put('one')]).then(() => events.push('one'));
    await kv.writeStarted(1);
    const second = writer.write([put('two')]).then(() => events.push('two'));
    const drained = track(writer.drain().then(() => events.push('drained')));
    for (let i = 0; i < 10; i++) await nextTurn();
    expect(drained.settled()).toBe(false);
    expect(events).toEqual([]);

    kv.release();
    await drained.result;
    expect(events).toEqual(['one', 'two', 'drained']);
    expect(kv.writes).toHaveLength(2);
    expect((await kv.inner.get(Buffer.from('one')))?.toString()).toBe('one');
    expect((await kv.inner.get(Buffer.from('two')))?.toString()).toBe('two');
    await Promise.all([first, second]);
  });

  it('drain() waits for writes queued in this tick before the first batch starts', async () => {
    const { kv, writer } = await setup();
    let durable = 0;
    for (let i = 0; i < 10; i++) void writer.write([put(`q${i}`)]).then(() => durable++);
    await writer.drain();
    expect(durable).toBe(10);
    expect(kv.writes).toHaveLength(1);
  });

  it('drain() resolves after a failed batch instead of hanging', async () => {
    const { kv, writer } = await setup();
    kv.failWrites(new Error('EIO'));
    const w = track(writer.write([put('x')]));
    await writer.drain();
    await expect(w.result).rejects.toBeInstanceOf(WriterFailedError);
  });

  it('reports isFull() while too many bytes are queued', async () => {
    const { kv, fatal } = await setup();
    const writer = new GroupCommitWriter(kv, {
      onFatal: (error) => fatal.push(error),
      maxQueuedBytes: 1000,
    });
    kv.hold();
    const first = writer.write([put('a')]);
    await kv.writeStarted(1);
    expect(writer.isFull()).toBe(false);
    const big = writer.write([put('big', 'v'.repeat(1200))]);
    expect(writer.isFull()).toBe(true);
    kv.release();
    await Promise.all([first, big]);
    expect(writer.isFull()).toBe(false);
  });
});
