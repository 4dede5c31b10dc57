import { afterEach, describe, expect, it } from 'vitest';
import {
  positionAtTimestamp,
  readRecords,
  type ReadableLog,
} from '../../src/broker/shard-reads.js';
import { EntryType as RaftEntryType, type Entry, type Snapshot } from '../../src/raft/types.js';
import { EntryType, type LogEntry } from '../../src/storage/entry-codec.js';
import {
  arrivalKey,
  indexKey,
  logKeyIndex,
  readU64,
  shardSpaceEnd,
  shardSpaceStart,
  shardStateKey,
  SPACE_ARRIVAL,
  SPACE_PRODUCER,
  SPACE_REFUSED,
  STATE_SNAPSHOT_PAYLOAD,
} from '../../src/storage/keys.js';
import type { KvOp, KvStore } from '../../src/storage/kv-store.js';
import {
  ProducerTable,
  type ProducerDecision,
  type ProducerHeader,
} from '../../src/storage/producer-table.js';
import { encodeRecordsCommand } from '../../src/storage/raft-entry.js';
import { encodeRecordBatch, type BatchRecord } from '../../src/storage/record-batch.js';
import { ShardLog, type TrimPoint } from '../../src/storage/shard-log.js';
import { encodeShardSnapshotData, ShardRaftStore } from '../../src/storage/shard-raft-store.js';
import { Random } from '../sim/random.js';
import { Cleanup, openStore, tempFolder } from './kv-helpers.js';

/**
 * The idempotent producer in a shard's log: what applying decides for batches that carry a
 * producer header (accepted batches get a P key, refused ones an R key and no arrival key, and
 * readers skip them), and that this state survives what a log goes through: a restart, a
 * retention trim, a snapshot installed from the leader. ProducerTable's own rules are tested in
 * producer-table.test.ts; here it serves as the reference model.
 */

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const SHARD = 11;
const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;
const ALL = { maxRecords: 100_000, maxBytes: 1 << 30 };

async function openKv(): Promise<KvStore> {
  return openStore(cleanup, await tempFolder(cleanup, 'rheos-producers-'));
}

function rec(text: string): BatchRecord {
  return { partitionKey: `pk-${text}`, data: Buffer.from(text) };
}

function header(producerId: number, epoch: number, firstSequence: number): ProducerHeader {
  return { producerId, epoch, firstSequence };
}

function batch(
  index: number,
  texts: readonly string[],
  producer?: ProducerHeader,
  arrivalMs = T0 + 1000 * index,
  term = 1,
): LogEntry {
  return {
    index,
    term,
    type: EntryType.Records,
    arrivalMs,
    payload: encodeRecordBatch(texts.map(rec), 0, producer),
  };
}

function emptyEntry(index: number, arrivalMs = T0 + 1000 * index, term = 1): LogEntry {
  return { index, term, type: EntryType.Empty, arrivalMs, payload: Buffer.alloc(0) };
}

/** Appends and applies `entries` in one write, as a single replica does; returns the decisions. */
async function applyWrite(
  kv: KvStore,
  log: ShardLog,
  entries: readonly LogEntry[],
): Promise<Map<number, ProducerDecision>> {
  const { ops, decisions } = log.applyEntries(entries);
  await kv.write([...log.appendOps(entries), ...ops], { sync: false });
  return new Map(decisions);
}

function readable(log: ShardLog, last: number, trimIndex = 0): ReadableLog {
  return {
    log,
    trimHorizon: () => ({ index: trimIndex + 1, offset: 0 }),
    readableIndex: () => last,
    tipArrivalMs: () => 0,
  };
}

/** Every record readable from the start of the log, as "index.offset data". */
async function readLines(log: ShardLog, last: number, trimIndex = 0): Promise<string[]> {
  const result = await readRecords(readable(log, last, trimIndex), { index: 1, offset: 0 }, ALL);
  expect(result.caughtUp).toBe(true);
  return result.records.map((r) => `${r.position.index}.${r.position.offset} ${r.data.toString()}`);
}

/** Indexes of the shard's keys in an index-keyed space (P or R). */
async function indexesIn(kv: KvStore, space: number): Promise<number[]> {
  const keys = await kv.keys({
    gte: shardSpaceStart(space, SHARD),
    lt: shardSpaceEnd(space, SHARD),
  });
  return keys.map(logKeyIndex);
}

/** Indexes that have an arrival-time key. */
async function arrivalIndexes(kv: KvStore): Promise<number[]> {
  const keys = await kv.keys({
    gte: shardSpaceStart(SPACE_ARRIVAL, SHARD),
    lt: shardSpaceEnd(SPACE_ARRIVAL, SHARD),
  });
  return keys.map((k) => readU64(k, 17));
}

/** A retention trim of a single replica (as SingleNodeReplica.trimArrivedBefore does it). */
async function trimTo(kv: KvStore, log: ShardLog, point: TrimPoint, previous: number) {
  const table = await log.producerTableAt(point.index);
  await kv.write([log.trimPointOp(point), log.producerTableOp(table)], { sync: false });
  log.trimmedTo(point.index, table);
  await log.removeTrimmed(point, previous);
  return table;
}

async function reopen(kv: KvStore): Promise<ShardLog> {
  const log = new ShardLog(kv, SHARD);
  await log.recoverState();
  return log;
}

const dup = (...positions: Array<[number, number] | undefined>): ProducerDecision => ({
  kind: 'duplicate',
  positions: positions.map((p) => (p === undefined ? undefined : { index: p[0], offset: p[1] })),
});
const ACCEPT: ProducerDecision = { kind: 'accept' };

describe('applying batches of idempotent producers', () => {
  it('refuses a retried batch at its second apply: R key, no arrival key, skipped by reads, answered with the original positions', async () => {
    const kv = await openKv();
    const log = new ShardLog(kv, SHARD);
    const p = header(7, 1, 0);

    const first = await applyWrite(kv, log, [
      emptyEntry(1),
      batch(2, ['a', 'b'], p),
      batch(3, ['plain']),
    ]);
    expect(first).toEqual(new Map([[2, ACCEPT]]));
    const second = await applyWrite(kv, log, [batch(4, ['a', 'b'], p)]);
    expect(second).toEqual(new Map([[4, dup([2, 0], [2, 1])]]));

    expect(await indexesIn(kv, SPACE_PRODUCER)).toEqual([2]);
    expect(await indexesIn(kv, SPACE_REFUSED)).toEqual([4]);
    expect(await kv.get(indexKey(SPACE_REFUSED, SHARD, 4))).toEqual(Buffer.alloc(0));
    // The accepted batch's P value: producer id | epoch | first sequence | count | arrival.
    const value = (await kv.get(indexKey(SPACE_PRODUCER, SHARD, 2))) as Buffer;
    expect(value).toHaveLength(32);
    expect([
      readU64(value, 0),
      value.readUInt32BE(8),
      readU64(value, 12),
      value.readUInt32BE(20),
      readU64(value, 24),
    ]).toEqual([7, 1, 0, 2, T0 + 2000]);
    expect(await arrivalIndexes(kv)).toEqual([2, 3]);
    expect(await kv.get(arrivalKey(SHARD, T0 + 4000, 4))).toBeUndefined();
    expect([1, 2, 3, 4, 5].map((i) => log.isRefused(i))).toEqual([
      false,
      false,
      false,
      true,
      false,
    ]);

    expect(await readLines(log, 4)).toEqual(['2.0 a', '2.1 b', '3.0 plain']);
    // Reading from the refused entry on goes past it.
    const fromRefused = await readRecords(readable(log, 4), { index: 4, offset: 0 }, ALL);
    expect(fromRefused).toMatchObject({
      records: [],
      next: { index: 5, offset: 0 },
      caughtUp: true,
    });
    // AT_TIMESTAMP never lands on it, from the arrival index or from the scan of unindexed entries.
    expect(await positionAtTimestamp(readable(log, 4), T0 + 3500, 4)).toEqual({
      index: 5,
      offset: 0,
    });
    expect(await positionAtTimestamp(readable(log, 4), T0 + 3500, 1)).toEqual({
      index: 5,
      offset: 0,
    });
    expect(await log.lastArrivedBefore(Number.MAX_SAFE_INTEGER)).toEqual({
      index: 3,
      arrivalMs: T0 + 3000,
    });

    // The refusal left the sequence where it was: the next batch continues it.
    expect(await applyWrite(kv, log, [batch(5, ['c'], header(7, 1, 2))])).toEqual(
      new Map([[5, ACCEPT]]),
    );
    // A retry applied in the same apply as its original is caught too.
    expect(
      await applyWrite(kv, log, [
        batch(6, ['d'], header(7, 1, 3)),
        batch(7, ['d'], header(7, 1, 3)),
      ]),
    ).toEqual(
      new Map([
        [6, ACCEPT],
        [7, dup([6, 0])],
      ]),
    );
    // A retry of a subset of a stored batch gets each record's own position.
    expect(await applyWrite(kv, log, [batch(8, ['b'], header(7, 1, 1))])).toEqual(
      new Map([[8, dup([2, 1])]]),
    );
    expect(await readLines(log, 8)).toEqual(['2.0 a', '2.1 b', '3.0 plain', '5.0 c', '6.0 d']);
    expect(await indexesIn(kv, SPACE_REFUSED)).toEqual([4, 7, 8]);
    expect(await indexesIn(kv, SPACE_PRODUCER)).toEqual([2, 5, 6]);
  });

  it('refuses fenced and out-of-order batches; none of them is readable', async () => {
    const kv = await openKv();
    const log = new ShardLog(kv, SHARD);
    const decisions = await applyWrite(kv, log, [
      batch(1, ['a'], header(3, 1, 0)),
      batch(2, ['b'], header(3, 2, 0)), // a newer epoch starts over
      batch(3, ['zombie'], header(3, 1, 1)), // the old epoch is fenced
      batch(4, ['gap'], header(3, 2, 5)), // skips sequence numbers 1..4
      batch(5, ['over', 'lap'], header(3, 2, 0)), // overlaps the applied batch
      batch(6, ['zombie-retry'], header(3, 1, 0)), // even a retry of the fenced epoch
      batch(7, ['c'], header(3, 2, 1)),
    ]);
    expect(decisions).toEqual(
      new Map<number, ProducerDecision>([
        [1, ACCEPT],
        [2, ACCEPT],
        [3, { kind: 'fenced', currentEpoch: 2 }],
        [4, { kind: 'outOfOrder', expectedSequence: 1 }],
        [5, { kind: 'outOfOrder', expectedSequence: 1 }],
        [6, { kind: 'fenced', currentEpoch: 2 }],
        [7, ACCEPT],
      ]),
    );
    expect(await indexesIn(kv, SPACE_PRODUCER)).toEqual([1, 2, 7]);
    expect(await indexesIn(kv, SPACE_REFUSED)).toEqual([3, 4, 5, 6]);
    expect(await arrivalIndexes(kv)).toEqual([1, 2, 7]);
    expect([1, 2, 3, 4, 5, 6, 7].map((i) => log.isRefused(i))).toEqual([
      false,
      false,
      true,
      true,
      true,
      true,
      false,
    ]);
    expect(await readLines(log, 7)).toEqual(['1.0 a', '2.0 b', '7.0 c']);
    // Reading from the middle of the refused run skips to the next stored record.
    const middle = await readRecords(readable(log, 7), { index: 4, offset: 0 }, ALL);
    expect(middle.records.map((r) => r.data.toString())).toEqual(['c']);
    expect(log.producerCount).toBe(1);
  });

  it('leaves batches without a producer header alone: no decision, no P or R key, always stored', async () => {
    const kv = await openKv();
    const log = new ShardLog(kv, SHARD);
    // The same records twice without a header: both stored (at-least-once, as in Kinesis).
    const decisions = await applyWrite(kv, log, [
      emptyEntry(1),
      batch(2, ['x', 'y']),
      batch(3, ['x', 'y']),
      emptyEntry(4),
      batch(5, ['z']),
    ]);
    expect(decisions).toEqual(new Map());
    expect(await indexesIn(kv, SPACE_PRODUCER)).toEqual([]);
    expect(await indexesIn(kv, SPACE_REFUSED)).toEqual([]);
    expect(await arrivalIndexes(kv)).toEqual([2, 3, 5]);
    expect([1, 2, 3, 4, 5].some((i) => log.isRefused(i))).toBe(false);
    expect(await readLines(log, 5)).toEqual(['2.0 x', '2.1 y', '3.0 x', '3.1 y', '5.0 z']);
    expect(log.producerCount).toBe(0);
    expect(await log.producerTableAt(5)).toEqual(new ProducerTable().encode());
    expect(log.decideSealed(header(1, 0, 0), 1)).toEqual(ACCEPT);

    // Plain batches between a producer's batches neither move nor break its sequence.
    expect(
      await applyWrite(kv, log, [
        batch(6, ['p0'], header(9, 0, 0)),
        batch(7, ['plain']),
        batch(8, ['p0'], header(9, 0, 0)),
        batch(9, ['plain']),
        batch(10, ['p1'], header(9, 0, 1)),
      ]),
    ).toEqual(
      new Map([
        [6, ACCEPT],
        [8, dup([6, 0])],
        [10, ACCEPT],
      ]),
    );
    expect(await indexesIn(kv, SPACE_PRODUCER)).toEqual([6, 10]);
    expect(await indexesIn(kv, SPACE_REFUSED)).toEqual([8]);
    const again = await reopen(kv);
    expect([7, 8, 9].map((i) => again.isRefused(i))).toEqual([false, true, false]);
    expect(await readLines(again, 10)).toEqual([
      '2.0 x',
      '2.1 y',
      '3.0 x',
      '3.1 y',
      '5.0 z',
      '6.0 p0',
      '7.0 plain',
      '9.0 plain',
      '10.0 p1',
    ]);
  });
});

// -----------------------------------------------------------------------------------------------
// Seeded random logs

interface Sent {
  readonly header: ProducerHeader;
  readonly texts: readonly string[];
}

/** An entry with the header and record count it was made with (the model never parses it). */
interface Generated {
  readonly entry: LogEntry;
  readonly header: ProducerHeader | undefined;
  readonly count: number;
}

interface ClientState {
  epoch: number;
  next: number;
  readonly sent: Sent[];
}

/**
 * A seeded generator of a shard's entries: a few idempotent producers that send the next batch,
 * retry an earlier one, skip ahead, overlap, move to a new epoch or come back as a zombie, mixed
 * with plain batches and empty entries; arrival time sometimes jumps by hours, so producers
 * expire (24 h). `accepted(header, count)` tells it what the log decided, as a client learns.
 */
class Workload {
  private readonly clients = new Map<number, ClientState>();
  private arrivalMs = T0;
  private index = 0;
  private serial = 0;

  constructor(
    private readonly random: Random,
    private readonly producerIds: readonly number[] = [1, 2, 2 ** 53 - 1],
  ) {
    for (const id of producerIds) this.clients.set(id, { epoch: 1, next: 0, sent: [] });
  }

  nextEntry(): Generated {
    this.index++;
    this.arrivalMs += this.random.chance(0.05) ? 13 * HOUR : this.random.int(0, 500);
    const r = this.random;
    const roll = r.next();
    if (roll < 0.05) {
      return { entry: emptyEntry(this.index, this.arrivalMs), header: undefined, count: 0 };
    }
    const texts = Array.from({ length: r.int(1, 3) }, () => `r${++this.serial}`);
    if (roll < 0.17) {
      return {
        entry: batch(this.index, texts, undefined, this.arrivalMs),
        header: undefined,
        count: texts.length,
      };
    }
    const id = r.pick(this.producerIds);
    const client = this.clients.get(id) as ClientState;
    let sent: Sent;
    const kind = r.next();
    if (kind < 0.3 && client.sent.length > 0) {
      sent = r.pick(client.sent);
    } else if (kind < 0.38) {
      sent = { header: header(id, client.epoch, client.next + r.int(1, 3)), texts };
    } else if (kind < 0.43 && client.next > 0) {
      sent = { header: header(id, client.epoch, client.next - 1), texts: ['o1', 'o2'] };
    } else if (kind < 0.48) {
      client.epoch++;
      client.next = r.int(0, 2);
      sent = { header: header(id, client.epoch, client.next), texts };
    } else if (kind < 0.53 && client.epoch > 0) {
      sent = { header: header(id, client.epoch - 1, r.int(0, client.next + 1)), texts };
    } else {
      sent = { header: header(id, client.epoch, client.next), texts };
    }
    client.sent.push(sent);
    return {
      entry: batch(this.index, sent.texts, sent.header, this.arrivalMs),
      header: sent.header,
      count: sent.texts.length,
    };
  }

  accepted(h: ProducerHeader, count: number): void {
    const client = this.clients.get(h.producerId) as ClientState;
    if (h.epoch >= client.epoch) {
      client.epoch = h.epoch;
      client.next = h.firstSequence + count;
    }
  }
}

interface ModelEntry extends Generated {
  readonly decision: ProducerDecision | undefined;
}

/** The reference: a ProducerTable fed every batch in log order, deciding as the log should. */
class Model {
  readonly table = new ProducerTable();
  readonly entries: ModelEntry[] = [];

  constructor(private readonly workload: Workload) {}

  next(): ModelEntry {
    const { entry, header: producer, count } = this.workload.nextEntry();
    let decision: ProducerDecision | undefined;
    if (producer !== undefined) {
      decision = this.table.decide(producer, count, entry.arrivalMs);
      if (decision.kind === 'accept') {
        this.table.record(producer, count, entry.index, entry.arrivalMs);
        this.workload.accepted(producer, count);
      }
    }
    const item = { entry, header: producer, count, decision };
    this.entries.push(item);
    return item;
  }

  /** The table made by folding exactly the accepted batches at or below `index`, from scratch. */
  tableAt(index: number): Buffer {
    const table = new ProducerTable();
    for (const e of this.entries) {
      if (e.entry.index > index) break;
      if (e.decision?.kind === 'accept' && e.header !== undefined) {
        table.record(e.header, e.count, e.entry.index, e.entry.arrivalMs);
      }
    }
    return table.encode();
  }

  refused(index: number): boolean {
    const decision = this.entries[index - 1]?.decision;
    return decision !== undefined && decision.kind !== 'accept';
  }

  decisions(from: number, to: number): Map<number, ProducerDecision> {
    const out = new Map<number, ProducerDecision>();
    for (const e of this.entries.slice(from - 1, to)) {
      if (e.decision !== undefined) out.set(e.entry.index, e.decision);
    }
    return out;
  }
}

/** Random chunks of 1..5 entries, as Raft hands committed entries over. */
function chunks<T>(random: Random, items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length;) {
    const n = random.int(1, 5);
    out.push(items.slice(i, i + n));
    i += n;
  }
  return out;
}

const SEEDS = [1, 2, 3, 0xbeef, 20_240_611, 987_654_321];

function newModel(seed: number): { random: Random; model: Model } {
  const random = new Random(seed);
  return { random, model: new Model(new Workload(random.fork())) };
}

function kindsOf(decisions: Iterable<ProducerDecision>): Set<string> {
  return new Set([...decisions].map((d) => d.kind));
}

describe('the producer table through the log', () => {
  it('producerTableAt(i) is the table folded from exactly the accepted batches up to i (seeded logs, trims included)', async () => {
    const kv = await openKv();
    const seen = new Set<string>();
    for (const [n, seed] of SEEDS.entries()) {
      const shard = SHARD + 100 + n;
      const log = new ShardLog(kv, shard);
      const { random, model } = newModel(seed);
      const items = Array.from({ length: 90 }, () => model.next());
      const trimAt = [random.int(10, 40), random.int(50, 80)];
      let trimIndex = 0;
      for (const chunk of chunks(random, items)) {
        const entries = chunk.map((c) => c.entry);
        const { ops, decisions } = log.applyEntries(entries);
        await kv.write([...log.appendOps(entries), ...ops], { sync: false });
        const first = (entries[0] as LogEntry).index;
        const last = (entries[entries.length - 1] as LogEntry).index;
        expect(new Map(decisions), `seed ${seed}, entries ${first}..${last}`).toEqual(
          model.decisions(first, last),
        );
        for (const d of decisions.values()) seen.add(d.kind);
        const target = trimAt.find((t) => t > trimIndex && t <= last);
        if (target !== undefined) {
          const e = items[target - 1] as ModelEntry;
          const point = { index: target, term: 1, arrivalMs: e.entry.arrivalMs };
          const table = await trimTo(kv, log, point, trimIndex);
          expect(table, `seed ${seed}: the table kept at trim ${target}`).toEqual(
            model.tableAt(target),
          );
          trimIndex = target;
        }
        // Every index after a trim (whose base moved), else the newly applied ones.
        for (let i = target === undefined ? first : trimIndex; i <= last; i++) {
          expect(await log.producerTableAt(i), `seed ${seed}: table at ${i}`).toEqual(
            model.tableAt(i),
          );
        }
      }
      expect(trimIndex).toBe(trimAt[1]);
      for (let i = trimIndex; i <= 90; i++) {
        expect(await log.producerTableAt(i), `seed ${seed}: table at ${i} at the end`).toEqual(
          model.tableAt(i),
        );
      }
      for (let i = 1; i <= 90; i++) {
        expect(log.isRefused(i), `seed ${seed}: entry ${i}`).toBe(
          i > trimIndex && model.refused(i),
        );
      }
      // The live table decides as the model's (the sealed decision ignores expiry).
      for (const id of [1, 2, 2 ** 53 - 1]) {
        for (const epoch of [0, 1, 2, 3]) {
          for (const seq of [0, 1, 5, 20]) {
            const h = header(id, epoch, seq);
            expect(log.decideSealed(h, 2)).toEqual(model.table.decideSealed(h, 2));
          }
        }
      }
    }
    // The seeded logs exercise every kind of decision.
    expect([...seen].sort()).toEqual(['accept', 'duplicate', 'fenced', 'outOfOrder']);
  });

  it('a reopened log has the same table and refused set, and decides every later batch as a log that never restarted (seeded)', async () => {
    const kv = await openKv();
    const after: ProducerDecision[] = [];
    for (const [n, seed] of SEEDS.entries()) {
      const shard = SHARD + 200 + n;
      const { random, model } = newModel(seed);
      const items = Array.from({ length: 120 }, () => model.next());
      const restartAt = random.int(30, 90);
      const trimAt = random.chance(0.7) ? random.int(5, restartAt - 5) : undefined;
      const live = new ShardLog(kv, shard);
      let trimIndex = 0;
      const before = items.slice(0, restartAt);
      for (const chunk of chunks(random, before)) {
        const entries = chunk.map((c) => c.entry);
        const { ops } = live.applyEntries(entries);
        await kv.write([...live.appendOps(entries), ...ops], { sync: false });
        const last = (entries[entries.length - 1] as LogEntry).index;
        if (trimAt !== undefined && trimIndex === 0 && last >= trimAt) {
          const point = {
            index: trimAt,
            term: 1,
            arrivalMs: before[trimAt - 1]?.entry.arrivalMs ?? 0,
          };
          await trimTo(kv, live, point, 0);
          trimIndex = trimAt;
        }
      }

      const reopened = new ShardLog(kv, shard);
      const state = await reopened.recoverState();
      expect(state.trimPoint.index).toBe(trimIndex);
      expect(state.lastIndex).toBe(restartAt);
      for (let i = trimIndex + 1; i <= restartAt; i++) {
        expect(reopened.isRefused(i), `seed ${seed}: entry ${i}`).toBe(model.refused(i));
        expect(live.isRefused(i)).toBe(model.refused(i));
      }
      expect(reopened.producerCount).toBe(live.producerCount);
      expect(await reopened.producerTableAt(restartAt)).toEqual(model.tableAt(restartAt));

      // The rest of the log, applied to both: the same decisions and byte-for-byte the same writes.
      for (const chunk of chunks(random, items.slice(restartAt))) {
        const entries = chunk.map((c) => c.entry);
        const a = live.applyEntries(entries);
        const b = reopened.applyEntries(entries);
        const first = (entries[0] as LogEntry).index;
        const last = (entries[entries.length - 1] as LogEntry).index;
        expect(new Map(b.decisions), `seed ${seed}: ${first}..${last}`).toEqual(
          new Map(a.decisions),
        );
        expect(new Map(b.decisions)).toEqual(model.decisions(first, last));
        expect(b.ops).toEqual(a.ops);
        after.push(...b.decisions.values());
        await kv.write([...reopened.appendOps(entries), ...b.ops], { sync: false });
      }
      for (let i = trimIndex + 1; i <= 120; i++) {
        expect(reopened.isRefused(i)).toBe(model.refused(i));
        expect(live.isRefused(i)).toBe(model.refused(i));
      }
      expect(await reopened.producerTableAt(120)).toEqual(model.tableAt(120));
    }
    expect([...kindsOf(after)].sort()).toEqual(['accept', 'duplicate', 'fenced', 'outOfOrder']);
  });

  it('a restart keeps expiry as it was: a producer silent for over 24 h is new, one seen lately is not', async () => {
    const kv = await openKv();
    const log = new ShardLog(kv, SHARD);
    await applyWrite(kv, log, [
      batch(1, ['old'], header(1, 1, 0), T0),
      batch(2, ['recent'], header(2, 1, 0), T0 + 20 * HOUR),
    ]);
    const probe = (index: number) => [
      batch(index, ['old-again'], header(1, 1, 7), T0 + 25 * HOUR),
      batch(index + 1, ['recent-gap'], header(2, 1, 7), T0 + 25 * HOUR),
    ];
    const reopened = await reopen(kv);
    const expected = new Map<number, ProducerDecision>([
      [3, ACCEPT],
      [4, { kind: 'outOfOrder', expectedSequence: 1 }],
    ]);
    expect(new Map(log.applyEntries(probe(3)).decisions)).toEqual(expected);
    expect(new Map(reopened.applyEntries(probe(3)).decisions)).toEqual(expected);
  });
});

describe('the producer table across a trim and a snapshot', () => {
  /**
   * 2: p1 s0 [a]  3: retry of 2 (refused)  4: p1 s1 [b]  5: p1 s2 [c]  6: retry of 4 (refused)
   * 7: p2 s0 [d]
   */
  function trimmedLog(): LogEntry[] {
    return [
      emptyEntry(1),
      batch(2, ['a'], header(1, 1, 0)),
      batch(3, ['a'], header(1, 1, 0)),
      batch(4, ['b'], header(1, 1, 1)),
      batch(5, ['c'], header(1, 1, 2)),
      batch(6, ['b'], header(1, 1, 1)),
      batch(7, ['d'], header(2, 1, 0)),
    ];
  }

  /** Retries of everything stored, a zombie, and the next batches, from index 8 on. */
  function retries(): LogEntry[] {
    return [
      batch(8, ['c'], header(1, 1, 2)), // stored above the trim point
      batch(9, ['b'], header(1, 1, 1)), // stored at the trim point
      batch(10, ['a'], header(1, 1, 0)), // stored below it
      batch(11, ['d'], header(2, 1, 0)),
      batch(12, ['e'], header(1, 1, 3)),
      batch(13, ['zombie'], header(2, 0, 1)),
      batch(14, ['f'], header(2, 1, 1)),
    ];
  }

  const RETRY_DECISIONS = new Map<number, ProducerDecision>([
    [8, dup([5, 0])],
    [9, dup([4, 0])],
    [10, dup([2, 0])],
    [11, dup([7, 0])],
    [12, ACCEPT],
    [13, { kind: 'fenced', currentEpoch: 1 }],
    [14, ACCEPT],
  ]);

  it('after a trim and a restart, retries of batches above, at and below the trim point are duplicates', async () => {
    const kv = await openKv();
    const live = new ShardLog(kv, SHARD);
    await applyWrite(kv, live, trimmedLog());
    const point = { index: 4, term: 1, arrivalMs: T0 + 4000 };
    const table = await trimTo(kv, live, point, 0);
    expect(await kv.get(shardStateKey(SHARD, STATE_SNAPSHOT_PAYLOAD))).toEqual(table);
    // P and R keys at or below the trim point went with their entries; the table holds them.
    expect(await indexesIn(kv, SPACE_PRODUCER)).toEqual([5, 7]);
    expect(await indexesIn(kv, SPACE_REFUSED)).toEqual([6]);
    expect([3, 6].map((i) => live.isRefused(i))).toEqual([false, true]);

    const reopened = await reopen(kv);
    expect([5, 6, 7].map((i) => reopened.isRefused(i))).toEqual([false, true, false]);
    expect(await reopened.producerTableAt(4)).toEqual(table);
    expect(await reopened.producerTableAt(7)).toEqual(await live.producerTableAt(7));
    expect(await readLines(reopened, 7, 4)).toEqual(['5.0 c', '7.0 d']);

    const decided = new Map(reopened.applyEntries(retries()).decisions);
    expect(decided).toEqual(RETRY_DECISIONS);
    expect(new Map(live.applyEntries(retries()).decisions)).toEqual(RETRY_DECISIONS);
  });

  it('a trim interrupted by a crash (pointer written, entries not removed) recovers the same table', async () => {
    const kv = await openKv();
    const live = new ShardLog(kv, SHARD);
    await applyWrite(kv, live, trimmedLog());
    const point = { index: 4, term: 1, arrivalMs: T0 + 4000 };
    const table = await live.producerTableAt(4);
    await kv.write([live.trimPointOp(point), live.producerTableOp(table)], { sync: false });
    // The crash: neither trimmedTo nor removeTrimmed ran.
    const reopened = await reopen(kv);
    expect(await indexesIn(kv, SPACE_PRODUCER)).toEqual([5, 7]);
    expect(await indexesIn(kv, SPACE_REFUSED)).toEqual([6]);
    expect([3, 6].map((i) => reopened.isRefused(i))).toEqual([false, true]);
    expect(new Map(reopened.applyEntries(retries()).decisions)).toEqual(RETRY_DECISIONS);
  });

  it('a snapshot installed on a fresh log carries the table: retries applied after the install are caught', async () => {
    const leaderKv = await openKv();
    const leader = new ShardLog(leaderKv, SHARD);
    await applyWrite(leaderKv, leader, trimmedLog());
    const payload = await leader.producerTableAt(5);

    const kv = await openKv();
    const fresh = new ShardLog(kv, SHARD);
    await fresh.recoverState();
    // Before the install a fresh log knows nobody.
    expect(fresh.decideSealed(header(1, 1, 0), 1)).toEqual(ACCEPT);
    fresh.installedSnapshot(5, payload);
    expect(fresh.producerCount).toBe(1);
    expect(await fresh.producerTableAt(5)).toEqual(payload);
    // The entries after the snapshot arrive from the leader and are applied as everywhere.
    const tail = trimmedLog().slice(5);
    expect(await applyWrite(kv, fresh, tail)).toEqual(
      new Map([
        [6, dup([4, 0])],
        [7, ACCEPT],
      ]),
    );
    expect(new Map(fresh.applyEntries(retries()).decisions)).toEqual(RETRY_DECISIONS);

    // The install replaces whatever the log had: its table and its refusals.
    const other = new ShardLog(kv, SHARD + 1);
    await applyWrite(kv, other, [
      batch(1, ['q'], header(1, 5, 0)),
      batch(2, ['q'], header(1, 5, 0)),
    ]);
    expect(other.isRefused(2)).toBe(true);
    other.installedSnapshot(5, payload);
    expect(other.isRefused(2)).toBe(false);
    expect(other.decideSealed(header(1, 1, 2), 1)).toEqual(dup([5, 0]));
    // A snapshot without a table (an older format) leaves an empty one.
    other.installedSnapshot(6, undefined);
    expect(other.producerCount).toBe(0);
    expect(other.decideSealed(header(1, 1, 2), 1)).toEqual(ACCEPT);
  });
});

// -----------------------------------------------------------------------------------------------
// The Raft storage path: ShardRaftStore's compaction and snapshot install carry the table

const VOTERS = [1, 2, 3];

function raftRecords(
  index: number,
  term: number,
  texts: readonly string[],
  producer?: ProducerHeader,
  arrivalMs = T0 + 1000 * index,
): Entry {
  return {
    index,
    term,
    type: RaftEntryType.Normal,
    data: encodeRecordsCommand(arrivalMs, texts.map(rec), producer),
  };
}

function raftEmpty(index: number, term: number): Entry {
  return { index, term, type: RaftEntryType.Empty, data: new Uint8Array() };
}

/** Persists a Ready's writes and applies `committed`, in one batch, as RaftHost does. */
async function persistApply(
  kv: KvStore,
  store: ShardRaftStore,
  ready: { snapshot?: Snapshot; entries?: Entry[] },
  committed: readonly Entry[] = [],
): Promise<Map<number, ProducerDecision>> {
  const ops: KvOp[] = store.persistOps({ entries: [], ...ready });
  const applied = store.applyEntries(committed);
  await kv.write([...ops, ...applied.ops], { sync: false });
  await store.afterPersist();
  return new Map(applied.decisions);
}

function raftLog(): Entry[] {
  return [
    raftEmpty(1, 1),
    raftRecords(2, 1, ['a'], header(1, 1, 0)),
    raftRecords(3, 1, ['a'], header(1, 1, 0)),
    raftRecords(4, 1, ['b'], header(1, 1, 1)),
    raftEmpty(5, 2),
    raftRecords(6, 2, ['c'], header(1, 1, 2)),
    raftRecords(7, 2, ['d'], header(2, 1, 0)),
  ];
}

function raftRetries(): Entry[] {
  return [
    raftRecords(8, 2, ['c'], header(1, 1, 2)),
    raftRecords(9, 2, ['b'], header(1, 1, 1)),
    raftRecords(10, 2, ['a'], header(1, 1, 0)),
    raftRecords(11, 2, ['d'], header(2, 1, 0)),
    raftRecords(12, 2, ['e'], header(1, 1, 3)),
    raftRecords(13, 2, ['zombie'], header(2, 0, 1)),
  ];
}

const RAFT_RETRY_DECISIONS = new Map<number, ProducerDecision>([
  [8, dup([6, 0])],
  [9, dup([4, 0])],
  [10, dup([2, 0])],
  [11, dup([7, 0])],
  [12, ACCEPT],
  [13, { kind: 'fenced', currentEpoch: 1 }],
]);

describe('the producer table in Raft storage', () => {
  it('a compaction keeps the table at the trim point; after a restart retries are still duplicates', async () => {
    const kv = await openKv();
    const store = new ShardRaftStore(kv, SHARD, VOTERS);
    await store.recover(1 << 20);
    expect(await persistApply(kv, store, { entries: raftLog() }, raftLog())).toEqual(
      new Map([
        [2, ACCEPT],
        [3, dup([2, 0])],
        [4, ACCEPT],
        [6, ACCEPT],
        [7, ACCEPT],
      ]),
    );
    const payload = await store.log.producerTableAt(4);
    const snapshot: Snapshot = {
      index: 4,
      term: 1,
      confState: { voters: VOTERS, learners: [], removed: [] },
      data: encodeShardSnapshotData({ arrivalMs: T0 + 4000, payload }),
    };
    await kv.write(store.compactOps(snapshot), { sync: false });
    await store.afterPersist();
    expect(await indexesIn(kv, SPACE_PRODUCER)).toEqual([6, 7]);
    expect(await indexesIn(kv, SPACE_REFUSED)).toEqual([]);

    const again = new ShardRaftStore(kv, SHARD, VOTERS);
    const { initial, appliedIndex } = await again.recover(1 << 20);
    expect(appliedIndex).toBe(7);
    // The snapshot a restarted leader would send carries the same table.
    expect(initial.snapshot?.data).toEqual(
      encodeShardSnapshotData({ arrivalMs: T0 + 4000, payload }),
    );
    expect(await again.log.producerTableAt(4)).toEqual(payload);
    expect(await persistApply(kv, again, { entries: raftRetries() }, raftRetries())).toEqual(
      RAFT_RETRY_DECISIONS,
    );
  });

  it('a snapshot installed on a fresh replica carries the table; retries applied after it are caught, also after a restart', async () => {
    const leaderKv = await openKv();
    const leader = new ShardRaftStore(leaderKv, SHARD, VOTERS);
    await leader.recover(1 << 20);
    await persistApply(leaderKv, leader, { entries: raftLog() }, raftLog());
    const payload = await leader.log.producerTableAt(6);
    const snapshot: Snapshot = {
      index: 6,
      term: 2,
      confState: { voters: VOTERS, learners: [], removed: [] },
      data: encodeShardSnapshotData({ arrivalMs: T0 + 6000, payload }),
    };

    const kv = await openKv();
    const follower = new ShardRaftStore(kv, SHARD, VOTERS);
    await follower.recover(1 << 20);
    // The install, with the entries after it, and those entries applied, in one Ready.
    const tail = raftLog().slice(6);
    expect(await persistApply(kv, follower, { snapshot, entries: tail }, tail)).toEqual(
      new Map([[7, ACCEPT]]),
    );
    expect(await kv.get(shardStateKey(SHARD, STATE_SNAPSHOT_PAYLOAD))).toEqual(payload);
    expect(await follower.log.producerTableAt(7)).toEqual(await leader.log.producerTableAt(7));
    const [first, ...rest] = raftRetries();
    expect(
      await persistApply(kv, follower, { entries: [first as Entry] }, [first as Entry]),
    ).toEqual(new Map([[8, dup([6, 0])]]));

    const again = new ShardRaftStore(kv, SHARD, VOTERS);
    const { appliedIndex, trimPoint } = await again.recover(1 << 20);
    expect(appliedIndex).toBe(8);
    expect(trimPoint).toEqual({ index: 6, term: 2, arrivalMs: T0 + 6000 });
    expect(again.log.isRefused(8)).toBe(true);
    expect(await persistApply(kv, again, { entries: rest }, rest)).toEqual(
      new Map([...RAFT_RETRY_DECISIONS].filter(([index]) => index !== 8)),
    );
  });
});
