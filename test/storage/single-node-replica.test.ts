import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProposedRecord, ReadRecord } from '../../src/broker/replica.js';
import { SingleNodeReplica } from '../../src/broker/single-node-replica.js';
import { ManualClock } from '../../src/common/clock.js';
import type { LogPosition } from '../../src/common/sequence-number.js';
import { EntryType, StorageCorruptionError } from '../../src/storage/entry-codec.js';
import { GroupCommitWriter } from '../../src/storage/group-commit.js';
import { logKey } from '../../src/storage/keys.js';
import { ShardLog } from '../../src/storage/shard-log.js';
import {
  Cleanup,
  openStore,
  rawLog,
  RecordingKvStore,
  shardKeys,
  tempFolder,
} from './kv-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const T0 = 1_700_000_000_000;

/** A broker's storage: one store, one writer, one clock; restart() reopens it from disk. */
class Broker {
  readonly fatal: unknown[] = [];
  writer!: GroupCommitWriter;

  private constructor(
    readonly dir: string,
    public kv: RecordingKvStore,
    readonly clock: ManualClock,
  ) {
    this.writer = this.newWriter();
  }

  static async start(clock = new ManualClock(T0)): Promise<Broker> {
    const dir = await tempFolder(cleanup);
    return new Broker(dir, new RecordingKvStore(await openStore(cleanup, dir)), clock);
  }

  private newWriter(): GroupCommitWriter {
    return new GroupCommitWriter(this.kv, { onFatal: (error) => this.fatal.push(error) });
  }

  open(shard: number, maxPendingBytes?: number, tailBytes?: number): Promise<SingleNodeReplica> {
    return SingleNodeReplica.open({
      shard,
      log: new ShardLog(this.kv, shard),
      writer: this.writer,
      clock: this.clock,
      ...(maxPendingBytes === undefined ? {} : { maxPendingBytes }),
      ...(tailBytes === undefined ? {} : { tailBytes }),
    });
  }

  /** Graceful stop (everything queued is written) and a fresh store and writer on the same data. */
  async restart(): Promise<void> {
    await this.writer.drain();
    await this.kv.close();
    this.kv = new RecordingKvStore(await openStore(cleanup, this.dir));
    this.writer = this.newWriter();
  }
}

function rec(text: string, partitionKey = 'pk'): ProposedRecord {
  return { partitionKey, data: Buffer.from(text) };
}

function texts(records: readonly ReadRecord[]): string[] {
  return records.map((r) => r.data.toString());
}

/** Reads from `from` to the commit point with the given limits per call. */
async function readAll(
  replica: SingleNodeReplica,
  from: LogPosition,
  limits = { maxRecords: 10_000, maxBytes: 10 << 20 },
): Promise<ReadRecord[]> {
  const out: ReadRecord[] = [];
  let position = from;
  for (;;) {
    const result = await replica.read(position, limits);
    out.push(...result.records);
    if (result.caughtUp) return out;
    expect(result.records.length).toBeGreaterThan(0);
    position = result.next;
  }
}

describe('SingleNodeReplica log numbering', () => {
  it('starts with an empty entry at index 1 in term 1; the first proposal gets index 2', async () => {
    const broker = await Broker.start();
    const replica = await broker.open(1);
    expect(replica.commitIndex()).toBe(1);
    expect(replica.latest()).toEqual({ index: 2, offset: 0 });
    expect(replica.trimHorizon()).toEqual({ index: 1, offset: 0 });

    expect((await replica.propose([rec('a')])).index).toBe(2);
    expect((await replica.propose([rec('b'), rec('c')])).index).toBe(3);
    // Concurrent proposals are numbered in call order.
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => replica.propose([rec(`p${i}`)])),
    );
    expect(results.map((r) => r.index)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(replica.commitIndex()).toBe(13);

    await broker.writer.drain();
    const log = await rawLog(broker.kv, 1);
    expect(log.map((e) => [e.index, e.term, e.type])).toEqual([
      [1, 1, EntryType.Empty],
      ...Array.from({ length: 12 }, (_, i) => [i + 2, 1, EntryType.Records]),
    ]);
    expect(log[0]?.payload).toHaveLength(0);
    expect((await new ShardLog(broker.kv, 1).recover()).hardState).toEqual({
      term: 1,
      vote: 1,
      commit: 1,
    });
    expect(broker.fatal).toEqual([]);
  });

  it('starts a new term with a new empty entry on every reopen, never renumbering', async () => {
    const broker = await Broker.start();
    let replica = await broker.open(1);
    await replica.propose([rec('t1-a')]);
    await replica.propose([rec('t1-b'), rec('t1-c')]);
    await replica.close();
    await broker.restart();

    replica = await broker.open(1);
    expect(replica.commitIndex()).toBe(4);
    expect((await replica.propose([rec('t2-a')])).index).toBe(5);
    await replica.close();
    await broker.restart();

    replica = await broker.open(1);
    expect(replica.commitIndex()).toBe(6);
    // Reopening without a proposal still starts a new term.
    await replica.close();
    await broker.restart();
    replica = await broker.open(1);
    expect(replica.commitIndex()).toBe(7);
    expect((await replica.propose([rec('t4-a')])).index).toBe(8);
    await broker.writer.drain();

    const log = await rawLog(broker.kv, 1);
    expect(log.map((e) => [e.index, e.term, e.type])).toEqual([
      [1, 1, EntryType.Empty],
      [2, 1, EntryType.Records],
      [3, 1, EntryType.Records],
      [4, 2, EntryType.Empty],
      [5, 2, EntryType.Records],
      [6, 3, EntryType.Empty],
      [7, 4, EntryType.Empty],
      [8, 4, EntryType.Records],
    ]);
    expect((await new ShardLog(broker.kv, 1).recover()).hardState).toMatchObject({
      term: 4,
      commit: 7,
    });
    // Records keep their positions across restarts.
    const all = await readAll(replica, replica.trimHorizon());
    expect(all.map((r) => [r.position.index, r.position.offset, r.data.toString()])).toEqual([
      [2, 0, 't1-a'],
      [3, 0, 't1-b'],
      [3, 1, 't1-c'],
      [5, 0, 't2-a'],
      [8, 0, 't4-a'],
    ]);
  });

  it('refuses a proposal when too many bytes wait for disk, without leaving a hole', async () => {
    const broker = await Broker.start();
    const replica = await broker.open(1, 100);
    broker.kv.hold();
    const first = replica.propose([rec('x'.repeat(200))]);
    const refused: unknown = await replica.propose([rec('y')]).then(
      () => 'accepted',
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({
      name: 'ProvisionedThroughputExceededException',
      retriable: true,
      indeterminate: false,
    });
    broker.kv.release();
    expect((await first).index).toBe(2);
    expect((await replica.propose([rec('z')])).index).toBe(3);
    await broker.writer.drain();
    expect((await rawLog(broker.kv, 1)).map((e) => e.index)).toEqual([1, 2, 3]);
  });

  it('wakes a push reader when a proposal commits, and every reader when it closes', async () => {
    const broker = await Broker.start();
    const replica = await broker.open(1);
    const tip = replica.commitIndex();
    let woken = false;
    const waiting = replica.waitReadable(tip).then(() => (woken = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(woken).toBe(false);
    const { index } = await replica.propose([{ partitionKey: 'k', data: Buffer.from('x') }]);
    await waiting;
    expect(index).toBe(tip + 1);
    const read = await replica.read(
      { index: tip + 1, offset: 0 },
      { maxRecords: 10, maxBytes: 1e6 },
    );
    expect(read.records.map((r) => r.data.toString())).toEqual(['x']);
    const stuck = replica.waitReadable(index + 100);
    await replica.close();
    await stuck;
  });

  it('refuses proposals after close()', async () => {
    const broker = await Broker.start();
    const replica = await broker.open(1);
    await replica.close();
    await expect(replica.propose([rec('late')])).rejects.toMatchObject({
      name: 'ServiceUnavailableException',
    });
  });
});

describe('SingleNodeReplica reads', () => {
  it('returns only committed entries', async () => {
    const broker = await Broker.start();
    const replica = await broker.open(1);
    await replica.propose([rec('committed')]);
    await broker.writer.drain();

    broker.kv.hold();
    const writesBefore = broker.kv.writes.length;
    const pending = replica.propose([rec('pending-1'), rec('pending-2')]);
    await broker.kv.writeStarted(writesBefore + 1);
    // The entry's batch is on its way to disk but not durable: nobody may see it yet.
    const during = await replica.read(replica.trimHorizon(), {
      maxRecords: 100,
      maxBytes: 1 << 20,
    });
    expect(texts(during.records)).toEqual(['committed']);
    expect(during.caughtUp).toBe(true);
    expect(during.next).toEqual({ index: 3, offset: 0 });
    expect(replica.latest()).toEqual({ index: 3, offset: 0 });
    expect(replica.commitIndex()).toBe(2);
    const atTip = await replica.read(
      { index: 3, offset: 0 },
      { maxRecords: 100, maxBytes: 1 << 20 },
    );
    expect(atTip.records).toEqual([]);

    broker.kv.release();
    expect((await pending).index).toBe(3);
    const after = await replica.read(replica.trimHorizon(), { maxRecords: 100, maxBytes: 1 << 20 });
    expect(texts(after.records)).toEqual(['committed', 'pending-1', 'pending-2']);
    expect(after.next).toEqual({ index: 4, offset: 0 });
  });

  it('honours maxRecords and maxBytes and resumes exactly at next, mid-entry too', async () => {
    const broker = await Broker.start();
    const replica = await broker.open(1);
    // Entries of 1, 3 and 5 records; every record is 10 bytes of data + a 1-byte key = 11 bytes.
    const sizes = [1, 3, 5, 3, 1];
    let n = 0;
    for (const size of sizes) {
      await replica.propose(
        Array.from({ length: size }, () => rec(`rec-${String(n++).padStart(6, '0')}`, 'k')),
      );
    }
    const all = Array.from({ length: n }, (_, i) => `rec-${String(i).padStart(6, '0')}`);

    const first = await replica.read({ index: 1, offset: 0 }, { maxRecords: 2, maxBytes: 1 << 20 });
    expect(texts(first.records)).toEqual(all.slice(0, 2));
    expect(first.next).toEqual({ index: 3, offset: 1 });
    expect(first.caughtUp).toBe(false);
    const second = await replica.read(first.next, { maxRecords: 100, maxBytes: 33 });
    expect(texts(second.records)).toEqual(all.slice(2, 5));
    expect(second.next).toEqual({ index: 4, offset: 1 });
    const third = await replica.read(second.next, { maxRecords: 100, maxBytes: 32 });
    expect(texts(third.records)).toEqual(all.slice(5, 7));
    expect(third.next).toEqual({ index: 4, offset: 3 });
    // One record even when it alone exceeds maxBytes.
    const tiny = await replica.read(third.next, { maxRecords: 100, maxBytes: 1 });
    expect(texts(tiny.records)).toEqual(all.slice(7, 8));
    expect(tiny.next).toEqual({ index: 4, offset: 4 });
    const rest = await replica.read(tiny.next, { maxRecords: 100, maxBytes: 1 << 20 });
    expect(texts(rest.records)).toEqual(all.slice(8));
    expect(rest.caughtUp).toBe(true);
    expect(rest.next).toEqual({ index: 7, offset: 0 });
    expect(rest.tipArrivalMs).toBe(T0);

    // The byte count includes the partition key in UTF-8.
    await replica.propose([rec('0123456789', 'ключ'), rec('0123456789', 'ключ')]);
    const unicode = await replica.read({ index: 7, offset: 0 }, { maxRecords: 10, maxBytes: 35 });
    expect(unicode.records).toHaveLength(1); // 10 + 8 bytes each: two would be 36
    const both = await replica.read({ index: 7, offset: 0 }, { maxRecords: 10, maxBytes: 36 });
    expect(both.records).toHaveLength(2);

    // Any sequence of limits reads every record exactly once, in order, within the limits.
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            maxRecords: fc.integer({ min: 1, max: 6 }),
            maxBytes: fc.integer({ min: 1, max: 80 }),
          }),
          { minLength: 1, maxLength: 20 },
        ),
        async (limitsList) => {
          const seen: ReadRecord[] = [];
          let position: LogPosition = replica.trimHorizon();
          for (let call = 0; ; call++) {
            const limits = limitsList[call % limitsList.length] as (typeof limitsList)[number];
            const result = await replica.read(position, limits);
            expect(result.records.length).toBeLessThanOrEqual(limits.maxRecords);
            const bytes = result.records.reduce(
              (sum, r) => sum + r.data.length + Buffer.byteLength(r.partitionKey),
              0,
            );
            if (result.records.length > 1) expect(bytes).toBeLessThanOrEqual(limits.maxBytes);
            seen.push(...result.records);
            if (result.caughtUp) break;
            expect(result.records.length).toBeGreaterThan(0);
            position = result.next;
          }
          expect(texts(seen).slice(0, n)).toEqual(all);
          expect(seen).toHaveLength(n + 2);
          // Positions strictly increase.
          for (let i = 1; i < seen.length; i++) {
            const a = seen[i - 1]?.position as LogPosition;
            const b = seen[i]?.position as LogPosition;
            expect(a.index < b.index || (a.index === b.index && a.offset < b.offset)).toBe(true);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('reads from a position past the commit point as caught up', async () => {
    const broker = await Broker.start();
    const replica = await broker.open(1);
    await replica.propose([rec('a')]);
    const result = await replica.read({ index: 3, offset: 0 }, { maxRecords: 10, maxBytes: 100 });
    expect(result).toMatchObject({ records: [], next: { index: 3, offset: 0 }, caughtUp: true });
    // A mid-entry position past an entry's last record moves on to the next entry.
    const past = await replica.read({ index: 2, offset: 1 }, { maxRecords: 10, maxBytes: 100 });
    expect(past).toMatchObject({ records: [], next: { index: 3, offset: 0 }, caughtUp: true });
  });

  it('reports a corrupted entry as an error, not as a shorter log', async () => {
    const broker = await Broker.start();
    // No in-memory tail: every read goes to storage, where the corruption is.
    const replica = await broker.open(1, undefined, 0);
    for (const text of ['a', 'b', 'c']) await replica.propose([rec(text)]);
    await broker.writer.drain();
    const stored = (await broker.kv.get(logKey(1, 3))) as Buffer;
    const corrupted = Buffer.from(stored);
    corrupted[corrupted.length - 1] = (corrupted[corrupted.length - 1] as number) ^ 1;
    await broker.kv.inner.write([{ type: 'put', key: logKey(1, 3), value: corrupted }], {
      sync: true,
    });
    await expect(
      replica.read({ index: 1, offset: 0 }, { maxRecords: 10, maxBytes: 1000 }),
    ).rejects.toBeInstanceOf(StorageCorruptionError);
    expect(
      texts(
        (await replica.read({ index: 4, offset: 0 }, { maxRecords: 10, maxBytes: 1000 })).records,
      ),
    ).toEqual(['c']);

    // A corrupted last entry stops recovery.
    const last = (await broker.kv.get(logKey(1, 4))) as Buffer;
    const bad = Buffer.from(last);
    bad[20] = (bad[20] as number) ^ 0x80;
    await broker.kv.inner.write([{ type: 'put', key: logKey(1, 4), value: bad }], { sync: true });
    await broker.restart();
    await expect(broker.open(1)).rejects.toBeInstanceOf(StorageCorruptionError);
  });
});

describe('SingleNodeReplica committed tail', () => {
  it('serves readers at the tip from memory, with the records storage holds', async () => {
    const broker = await Broker.start();
    const replica = await broker.open(1);
    const first = (await replica.propose([rec('r0')])).index;
    for (let i = 1; i < 30; i++) await replica.propose([rec(`r${i}`), rec(`s${i}`)]);
    const before = broker.kv.iterations;
    const fromTail = await readAll(
      replica,
      { index: first, offset: 0 },
      { maxRecords: 7, maxBytes: 1 << 20 },
    );
    expect(broker.kv.iterations).toBe(before);
    await replica.close();
    await broker.restart();
    // After a restart the tail is empty: the same read comes from storage.
    const reopened = await broker.open(1);
    const fromStorage = await readAll(
      reopened,
      { index: first, offset: 0 },
      { maxRecords: 7, maxBytes: 1 << 20 },
    );
    expect(broker.kv.iterations).toBeGreaterThan(0);
    expect(
      fromTail.map((r) => [r.position, r.arrivalMs, r.partitionKey, r.data.toString()]),
    ).toEqual(fromStorage.map((r) => [r.position, r.arrivalMs, r.partitionKey, r.data.toString()]));
    expect(fromTail).toHaveLength(59);
  });

  it('a reader behind the bounded tail reads storage, then the tail, missing and repeating nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 400 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 39 }),
        async (batchSizes, tailBytes, maxRecords, startAt) => {
          const broker = await Broker.start();
          const replica = await broker.open(1, undefined, tailBytes);
          const written: string[] = [];
          const indexes: number[] = [];
          for (const [b, size] of batchSizes.entries()) {
            const records = Array.from({ length: size }, (_, i) =>
              rec(`b${b}-${i}`.padEnd(8 + b, 'x')),
            );
            indexes.push((await replica.propose(records)).index);
            written.push(...records.map((r) => r.data.toString()));
          }
          const startEntry = Math.min(startAt, indexes.length - 1);
          const from = { index: indexes[startEntry] as number, offset: 0 };
          const expected = written.slice(
            batchSizes.slice(0, startEntry).reduce((a, b) => a + b, 0),
          );
          const got = await readAll(replica, from, { maxRecords, maxBytes: 1 << 20 });
          expect(texts(got)).toEqual(expected);
          await replica.close();
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe('SingleNodeReplica arrival times', () => {
  it('finds the first record arriving at or after a time; arrival never goes backwards', async () => {
    const broker = await Broker.start(new ManualClock(1_000_000));
    const { clock } = broker;
    const replica = await broker.open(1);
    const arrivals: number[] = [];
    const propose = async (text: string) => {
      const result = await replica.propose([rec(text)]);
      arrivals[result.index] = result.arrivalMs;
      return result;
    };
    await propose('a'); // 2
    clock.advance(1000);
    await propose('b'); // 3
    clock.advance(1000);
    await propose('c'); // 4
    clock.setWallMs(995_000); // the wall clock jumps back
    await propose('d'); // 5
    clock.advance(500);
    await propose('e'); // 6
    clock.setWallMs(1_010_000);
    await propose('f'); // 7
    expect(arrivals.slice(2)).toEqual([
      1_000_000, 1_001_000, 1_002_000, 1_002_000, 1_002_000, 1_010_000,
    ]);
    const read = await readAll(replica, replica.trimHorizon());
    expect(read.map((r) => r.arrivalMs)).toEqual(arrivals.slice(2));
    await broker.writer.drain();

    const at = async (ms: number) => (await replica.positionAtTimestamp(ms)).index;
    expect(await at(0)).toBe(2);
    expect(await at(1_000_000)).toBe(2);
    expect(await at(1_000_001)).toBe(3);
    expect(await at(1_001_000)).toBe(3);
    expect(await at(1_002_000)).toBe(4);
    expect(await at(1_002_001)).toBe(7);
    expect(await at(1_010_000)).toBe(7);
    expect(await at(1_010_001)).toBe(8);
    expect(await replica.positionAtTimestamp(1_010_001)).toEqual(replica.latest());

    // The same holds for any time.
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 990_000, max: 1_020_000 }), async (ms) => {
        let expected = 8;
        for (let index = 2; index <= 7; index++) {
          if ((arrivals[index] as number) >= ms) {
            expected = index;
            break;
          }
        }
        expect(await at(ms)).toBe(expected);
      }),
      { numRuns: 200 },
    );

    // Nor across a restart with the wall clock further back.
    await replica.close();
    await broker.restart();
    clock.setWallMs(900_000);
    const reopened = await broker.open(1);
    const g = await reopened.propose([rec('g')]);
    expect(g).toEqual({ index: 9, arrivalMs: 1_010_000 });
    await broker.writer.drain();
    const log = await rawLog(broker.kv, 1);
    for (let i = 1; i < log.length; i++) {
      expect(log[i]?.arrivalMs).toBeGreaterThanOrEqual(log[i - 1]?.arrivalMs as number);
    }
    expect((await reopened.positionAtTimestamp(1_010_000)).index).toBe(7);
  });

  it('keeps arrival times from going backwards after the whole log was trimmed', async () => {
    const broker = await Broker.start(new ManualClock(2_000_000));
    let replica = await broker.open(1);
    const before = await replica.propose([rec('a')]);
    await broker.writer.drain();
    expect(await replica.trimArrivedBefore(2_000_001)).toBe(2);
    await replica.close();
    await broker.restart();
    broker.clock.setWallMs(1_000_000); // the wall clock jumps back while the broker is down
    replica = await broker.open(1);
    const after = await replica.propose([rec('b')]);
    expect(after.index).toBe(before.index + 2);
    // The previous entry (index 2) arrived at 2_000_000; trimming it does not make it unsaid.
    expect(after.arrivalMs).toBeGreaterThanOrEqual(before.arrivalMs);
  });

  it('finds committed entries whose index keys are not written yet', async () => {
    const broker = await Broker.start(new ManualClock(5_000));
    const { clock } = broker;
    const replica = await broker.open(1);
    await replica.propose([rec('indexed')]);
    await broker.writer.drain();
    clock.advance(100);
    // The apply (index key) write of the next entry is held on its way to disk.
    const writes = broker.kv.writes.length;
    const result = await replica.propose([rec('not yet indexed')]);
    broker.kv.hold();
    await broker.kv.writeStarted(writes + 2);
    expect(result).toEqual({ index: 3, arrivalMs: 5_100 });
    expect((await replica.positionAtTimestamp(5_001)).index).toBe(3);
    expect((await replica.positionAtTimestamp(5_100)).index).toBe(3);
    expect((await replica.positionAtTimestamp(5_101)).index).toBe(4);
    broker.kv.release();
    await broker.writer.drain();
    expect((await replica.positionAtTimestamp(5_001)).index).toBe(3);
  });
});

describe('SingleNodeReplica retention', () => {
  it('trims old entries, moves the horizon, keeps later ones and survives reopen', async () => {
    const broker = await Broker.start(new ManualClock(T0));
    const { clock } = broker;
    let replica = await broker.open(1);
    await replica.propose([rec('old-1')]); // 2
    await replica.propose([rec('old-2'), rec('old-3')]); // 3
    clock.advance(1000);
    await replica.propose([rec('mid-1'), rec('mid-2'), rec('mid-3')]); // 4
    await replica.propose([rec('mid-4')]); // 5
    clock.advance(1000);
    await replica.propose([rec('new-1')]); // 6
    await broker.writer.drain();
    const readerInOld = { index: 3, offset: 1 };
    const readerInMid = { index: 4, offset: 1 };

    expect(await replica.trimArrivedBefore(T0)).toBe(0);
    expect(await replica.trimArrivedBefore(T0 + 1000)).toBe(3); // entries 1..3
    expect(replica.trimHorizon()).toEqual({ index: 4, offset: 0 });
    expect((await rawLog(broker.kv, 1)).map((e) => e.index)).toEqual([4, 5, 6]);
    expect(texts(await readAll(replica, replica.trimHorizon()))).toEqual([
      'mid-1',
      'mid-2',
      'mid-3',
      'mid-4',
      'new-1',
    ]);
    // A reader positioned before the trim point continues from the trim horizon.
    const fromOld = await replica.read(readerInOld, { maxRecords: 2, maxBytes: 1 << 20 });
    expect(fromOld.records.map((r) => r.position)).toEqual([
      { index: 4, offset: 0 },
      { index: 4, offset: 1 },
    ]);
    expect(texts(await readAll(replica, { index: 1, offset: 0 }))[0]).toBe('mid-1');
    // A reader behind the trim horizon but inside a kept entry is not moved.
    expect(texts(await readAll(replica, readerInMid))).toEqual([
      'mid-2',
      'mid-3',
      'mid-4',
      'new-1',
    ]);
    expect(await replica.positionAtTimestamp(0)).toEqual({ index: 4, offset: 0 });
    expect(await replica.trimArrivedBefore(T0 + 1000)).toBe(0); // nothing more to trim

    await replica.close();
    await broker.restart();
    replica = await broker.open(1);
    expect(replica.trimHorizon()).toEqual({ index: 4, offset: 0 });
    expect(replica.commitIndex()).toBe(7);
    expect(texts(await readAll(replica, { index: 2, offset: 0 }))).toEqual([
      'mid-1',
      'mid-2',
      'mid-3',
      'mid-4',
      'new-1',
    ]);
    expect(await replica.positionAtTimestamp(0)).toEqual({ index: 4, offset: 0 });
    expect((await replica.propose([rec('after-restart')])).index).toBe(8);
    await broker.writer.drain();

    expect(await replica.trimArrivedBefore(T0 + 2000)).toBe(2); // entries 4..5
    expect(replica.trimHorizon()).toEqual({ index: 6, offset: 0 });
    expect(texts(await readAll(replica, readerInMid))).toEqual(['new-1', 'after-restart']);
  });

  it('trims the whole log and keeps numbering after it', async () => {
    const broker = await Broker.start(new ManualClock(T0));
    let replica = await broker.open(1);
    await replica.propose([rec('a')]);
    await replica.propose([rec('b')]);
    await broker.writer.drain();
    broker.clock.advance(1);
    expect(await replica.trimArrivedBefore(T0 + 1)).toBe(3);
    expect(replica.trimHorizon()).toEqual({ index: 4, offset: 0 });
    expect(replica.latest()).toEqual({ index: 4, offset: 0 });
    expect(await readAll(replica, { index: 1, offset: 0 })).toEqual([]);
    expect(await rawLog(broker.kv, 1)).toEqual([]);

    await replica.close();
    await broker.restart();
    replica = await broker.open(1);
    expect(replica.trimHorizon()).toEqual({ index: 4, offset: 0 });
    expect(replica.commitIndex()).toBe(4);
    expect((await replica.propose([rec('c')])).index).toBe(5);
    await broker.writer.drain();
    expect((await rawLog(broker.kv, 1)).map((e) => [e.index, e.term])).toEqual([
      [4, 2],
      [5, 2],
    ]);
    expect(texts(await readAll(replica, { index: 1, offset: 0 }))).toEqual(['c']);
  });

  it('leaves a reader that raced a trim at the new horizon', async () => {
    const broker = await Broker.start(new ManualClock(T0));
    const replica = await broker.open(1);
    for (let i = 0; i < 5; i++) {
      await replica.propose([rec(`r${i}`)]);
      broker.clock.advance(10);
    }
    await broker.writer.drain();
    // Start a read and a trim together; whichever wins, the read returns kept records only
    // and never reports a hole.
    const [read, trimmed] = await Promise.all([
      replica.read({ index: 2, offset: 0 }, { maxRecords: 100, maxBytes: 1 << 20 }),
      replica.trimArrivedBefore(T0 + 25),
    ]);
    expect(trimmed).toBe(4);
    const got = texts(read.records);
    expect(got.length === 5 || got.length === 2).toBe(true);
    expect(got.slice(-2)).toEqual(['r3', 'r4']);
  });
});

describe('SingleNodeReplica shards', () => {
  it('keeps two shards in one store independent', async () => {
    const broker = await Broker.start(new ManualClock(T0));
    const [a, b] = await Promise.all([broker.open(1), broker.open(2)]);
    if (a === undefined || b === undefined) throw new Error('unreachable');
    const proposals: Array<Promise<unknown>> = [];
    for (let i = 0; i < 20; i++) {
      proposals.push(a.propose([rec(`a${i}`)]));
      if (i % 2 === 0) proposals.push(b.propose([rec(`b${i}`), rec(`b${i}'`)]));
    }
    await Promise.all(proposals);
    broker.clock.advance(1000);
    await b.propose([rec('b-late')]);
    await broker.writer.drain();

    expect(a.commitIndex()).toBe(21);
    expect(b.commitIndex()).toBe(12);
    expect(texts(await readAll(a, a.trimHorizon()))).toEqual(
      Array.from({ length: 20 }, (_, i) => `a${i}`),
    );
    expect(texts(await readAll(b, b.trimHorizon()))).toHaveLength(21);
    expect((await b.positionAtTimestamp(T0 + 1)).index).toBe(12);
    expect((await a.positionAtTimestamp(T0 + 1)).index).toBe(22);

    expect(await a.trimArrivedBefore(T0 + 1)).toBe(21);
    expect(b.trimHorizon()).toEqual({ index: 1, offset: 0 });
    expect(texts(await readAll(b, b.trimHorizon()))).toHaveLength(21);
    expect((await rawLog(broker.kv, 2)).map((e) => e.index)).toEqual(
      Array.from({ length: 12 }, (_, i) => i + 1),
    );

    await broker.restart();
    const [a2, b2] = await Promise.all([broker.open(1), broker.open(2)]);
    expect(a2?.commitIndex()).toBe(22);
    expect(b2?.commitIndex()).toBe(13);
    expect(a2?.trimHorizon()).toEqual({ index: 22, offset: 0 });
    expect(b2?.trimHorizon()).toEqual({ index: 1, offset: 0 });
  });

  it('destroy() removes every key of the shard and leaves other shards intact', async () => {
    const broker = await Broker.start(new ManualClock(T0));
    const [victim, other] = await Promise.all([broker.open(256), broker.open(257)]);
    if (victim === undefined || other === undefined) throw new Error('unreachable');
    for (let i = 0; i < 10; i++) {
      await Promise.all([victim.propose([rec(`v${i}`)]), other.propose([rec(`o${i}`)])]);
      if (i === 4) broker.clock.advance(1000);
    }
    await broker.writer.drain();
    expect(await victim.trimArrivedBefore(T0 + 1)).toBe(6);
    expect(await other.trimArrivedBefore(T0 + 1)).toBe(6);
    const otherKeys = (await shardKeys(broker.kv, 257)).map((k) => k.toString('hex'));
    const neighbour = await broker.open(255);
    await neighbour.propose([rec('n')]);
    await broker.writer.drain();
    const neighbourKeys = (await shardKeys(broker.kv, 255)).map((k) => k.toString('hex'));

    await victim.destroy();
    expect(await shardKeys(broker.kv, 256)).toEqual([]);
    expect((await shardKeys(broker.kv, 257)).map((k) => k.toString('hex'))).toEqual(otherKeys);
    expect((await shardKeys(broker.kv, 255)).map((k) => k.toString('hex'))).toEqual(neighbourKeys);
    await expect(victim.propose([rec('late')])).rejects.toMatchObject({
      name: 'ServiceUnavailableException',
    });
    expect(texts(await readAll(other, other.trimHorizon()))).toEqual(
      Array.from({ length: 5 }, (_, i) => `o${i + 5}`),
    );

    await broker.restart();
    const reopened = await broker.open(257);
    expect(texts(await readAll(reopened, { index: 1, offset: 0 }))).toHaveLength(5);
    // A destroyed shard's incarnation opens as a brand-new, empty log.
    const fresh = await broker.open(256);
    expect(fresh.commitIndex()).toBe(1);
    expect(fresh.trimHorizon()).toEqual({ index: 1, offset: 0 });
  });

  it('destroy() leaves no keys behind when the shard still has writes queued', async () => {
    const broker = await Broker.start(new ManualClock(T0));
    const victim = await broker.open(1);
    await victim.propose([rec('committed')]); // its index-key write is now queued
    broker.kv.hold(); // a slow disk: the queued batch (and a new proposal) wait
    const inFlight = victim.propose([rec('in flight')]).catch(() => undefined);
    // destroy() waits for the shard's queued writes, so it can only finish once the disk moves.
    const destroyed = victim.destroy();
    broker.kv.release();
    await destroyed;
    await inFlight;
    await broker.writer.drain();
    const left = await shardKeys(broker.kv, 1);
    expect(left.map((k) => k.toString('hex'))).toEqual([]);
  });
});
