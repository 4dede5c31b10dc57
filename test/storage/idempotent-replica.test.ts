import { afterEach, describe, expect, it } from 'vitest';
import { RaftReplica, type RaftReplicaHost } from '../../src/broker/raft-replica.js';
import type { AppendResult, ProposedRecord, ShardReplica } from '../../src/broker/replica.js';
import { SingleNodeReplica } from '../../src/broker/single-node-replica.js';
import { ManualClock } from '../../src/common/clock.js';
import {
  InternalFailureError,
  OutOfOrderSequenceError,
  ProducerFencedError,
  ServiceUnavailableError,
  ShardSealedError,
} from '../../src/common/errors.js';
import { RawNode } from '../../src/raft/raw-node.js';
import { Role, type Message, type NodeId, type Snapshot } from '../../src/raft/types.js';
import { EntryType } from '../../src/storage/entry-codec.js';
import { GroupCommitWriter } from '../../src/storage/group-commit.js';
import type { KvOp, KvStore } from '../../src/storage/kv-store.js';
import type { ProducerHeader } from '../../src/storage/producer-table.js';
import { ShardLog } from '../../src/storage/shard-log.js';
import { ShardRaftStore } from '../../src/storage/shard-raft-store.js';
import { Cleanup, openStore, rawLog, RecordingKvStore, tempFolder } from './kv-helpers.js';

/**
 * The idempotent producer through a replica's propose(): a retry of a stored batch resolves with
 * `duplicateOf` (the original positions) and is stored once, across a restart, a retention trim
 * and a seal, on the single-node replica; and on a three-replica Raft group driven step by step
 * (a deterministic in-memory network the test controls), across a leader change that happens
 * after the batch was committed but before its writer heard back, and a follower that catches up
 * from a snapshot.
 */

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const T0 = 1_700_000_000_000;
const SHARD = 5;
const ALL = { maxRecords: 100_000, maxBytes: 1 << 30 };

function rec(text: string): ProposedRecord {
  return { partitionKey: `pk-${text}`, data: Buffer.from(text) };
}

function recs(...texts: string[]): ProposedRecord[] {
  return texts.map(rec);
}

function header(producerId: number, epoch: number, firstSequence: number): ProducerHeader {
  return { producerId, epoch, firstSequence };
}

function at(...positions: Array<[number, number]>) {
  return positions.map(([index, offset]) => ({ index, offset }));
}

/** Every readable record from the trim horizon on, as "index.offset data". */
async function lines(replica: ShardReplica): Promise<string[]> {
  const result = await replica.read(replica.trimHorizon(), ALL);
  expect(result.caughtUp).toBe(true);
  return result.records.map((r) => `${r.position.index}.${r.position.offset} ${r.data.toString()}`);
}

// -----------------------------------------------------------------------------------------------
// Single node

/** A broker's storage: one store, one writer, one clock; restart() reopens it from disk. */
class Broker {
  readonly fatal: unknown[] = [];
  writer!: GroupCommitWriter;
  readonly clock = new ManualClock(T0);

  private constructor(
    readonly dir: string,
    public kv: RecordingKvStore,
  ) {
    this.writer = this.newWriter();
  }

  static async start(): Promise<Broker> {
    const dir = await tempFolder(cleanup);
    return new Broker(dir, new RecordingKvStore(await openStore(cleanup, dir)));
  }

  private newWriter(): GroupCommitWriter {
    return new GroupCommitWriter(this.kv, { onFatal: (error) => this.fatal.push(error) });
  }

  open(): Promise<SingleNodeReplica> {
    return SingleNodeReplica.open({
      shard: SHARD,
      log: new ShardLog(this.kv, SHARD),
      writer: this.writer,
      clock: this.clock,
    });
  }

  /** Graceful stop (everything queued is written) and a fresh store and writer on the same data. */
  async restart(replica: SingleNodeReplica): Promise<SingleNodeReplica> {
    await replica.close();
    await this.writer.drain();
    await this.kv.close();
    this.kv = new RecordingKvStore(await openStore(cleanup, this.dir));
    this.writer = this.newWriter();
    return this.open();
  }
}

describe('SingleNodeReplica with an idempotent producer', () => {
  it('answers a retry with the original positions and stores the records once', async () => {
    const broker = await Broker.start();
    const replica = await broker.open();
    const h = header(42, 1, 0);
    expect(await replica.propose(recs('a', 'b'), h)).toStrictEqual({ index: 2, arrivalMs: T0 });
    broker.clock.advance(1000);
    expect(await replica.propose(recs('a', 'b'), h)).toStrictEqual({
      index: 3,
      arrivalMs: T0 + 1000,
      duplicateOf: at([2, 0], [2, 1]),
    });
    // A retry of the second record alone, and the next batch.
    expect(await replica.propose(recs('b'), header(42, 1, 1))).toStrictEqual({
      index: 4,
      arrivalMs: T0 + 1000,
      duplicateOf: at([2, 1]),
    });
    expect(await replica.propose(recs('c'), header(42, 1, 2))).toStrictEqual({
      index: 5,
      arrivalMs: T0 + 1000,
    });
    // A zombie epoch and a gap are refused for good, and stored nowhere readable.
    await replica.propose(recs('e2'), header(42, 2, 0));
    await expect(replica.propose(recs('zombie'), header(42, 1, 3))).rejects.toBeInstanceOf(
      ProducerFencedError,
    );
    await expect(replica.propose(recs('gap'), header(42, 2, 5))).rejects.toBeInstanceOf(
      OutOfOrderSequenceError,
    );
    // Without a header the same records are stored again, as Kinesis does.
    expect(await replica.propose(recs('a'))).toStrictEqual({ index: 9, arrivalMs: T0 + 1000 });
    expect(await replica.propose(recs('a'))).toStrictEqual({ index: 10, arrivalMs: T0 + 1000 });

    expect(await lines(replica)).toEqual(['2.0 a', '2.1 b', '5.0 c', '6.0 e2', '9.0 a', '10.0 a']);
    expect(replica.latest()).toEqual({ index: 11, offset: 0 });
    expect(await replica.positionAtTimestamp(T0 + 500)).toEqual({ index: 5, offset: 0 });
    await broker.writer.drain();
    // The refused entries stay in the log (Raft's log is append-only), just never read.
    expect((await rawLog(broker.kv, SHARD)).map((e) => e.index)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
    expect(broker.fatal).toEqual([]);
  });

  it('still answers a retry as a duplicate after a restart on the same data', async () => {
    const broker = await Broker.start();
    let replica = await broker.open();
    const h = header(2 ** 53 - 1, 7, 100);
    expect(await replica.propose(recs('a', 'b', 'c'), h)).toStrictEqual({
      index: 2,
      arrivalMs: T0,
    });
    await replica.propose(recs('a', 'b', 'c'), h); // a refused retry before the restart
    broker.clock.advance(5000);
    replica = await broker.restart(replica);
    // Index 4 is the new term's empty entry.
    expect(await replica.propose(recs('a', 'b', 'c'), h)).toStrictEqual({
      index: 5,
      arrivalMs: T0 + 5000,
      duplicateOf: at([2, 0], [2, 1], [2, 2]),
    });
    await expect(replica.propose(recs('x'), header(2 ** 53 - 1, 7, 104))).rejects.toBeInstanceOf(
      OutOfOrderSequenceError,
    );
    expect(await replica.propose(recs('d'), header(2 ** 53 - 1, 7, 103))).toStrictEqual({
      index: 7,
      arrivalMs: T0 + 5000,
    });
    replica = await broker.restart(replica);
    expect(await replica.propose(recs('d'), header(2 ** 53 - 1, 7, 103))).toMatchObject({
      duplicateOf: at([7, 0]),
    });
    expect(await lines(replica)).toEqual(['2.0 a', '2.1 b', '2.2 c', '7.0 d']);
    expect(broker.fatal).toEqual([]);
  });

  it('answers retries of batches above, at and below a retention trim, after a restart too', async () => {
    const broker = await Broker.start();
    let replica = await broker.open();
    for (let seq = 0; seq < 4; seq++) {
      await replica.propose(recs(`s${seq}`), header(1, 1, seq)); // indexes 2..5
      broker.clock.advance(1000);
    }
    // Arrivals T0 .. T0+3000: everything before T0+1500 goes (indexes 1..3).
    expect(await replica.trimArrivedBefore(T0 + 1500)).toBe(3);
    expect(replica.trimHorizon()).toEqual({ index: 4, offset: 0 });
    const expectRetries = async (r: SingleNodeReplica) => {
      for (const [seq, index] of [
        [0, 2],
        [1, 3],
        [2, 4],
        [3, 5],
      ] as const) {
        expect((await r.propose(recs(`s${seq}`), header(1, 1, seq))).duplicateOf).toEqual(
          at([index, 0]),
        );
      }
    };
    await expectRetries(replica);
    replica = await broker.restart(replica);
    expect(replica.trimHorizon()).toEqual({ index: 4, offset: 0 });
    await expectRetries(replica);
    expect(await lines(replica)).toEqual(['4.0 s2', '5.0 s3']);
    expect((await replica.propose(recs('s4'), header(1, 1, 4))).duplicateOf).toBeUndefined();
    expect(broker.fatal).toEqual([]);
  });

  it('once sealed, answers a retry of a stored batch with its original positions and a batch never stored with ShardSealedError', async () => {
    const broker = await Broker.start();
    let replica = await broker.open();
    const children = ['shardId-000000000001', 'shardId-000000000002'];
    await replica.propose(recs('a', 'b'), header(9, 1, 0)); // 2
    await replica.propose(recs('z'), header(10, 3, 0)); // 3
    expect(await replica.seal(children)).toBe(4);
    const answers = async (r: SingleNodeReplica) => {
      expect(await r.propose(recs('a', 'b'), header(9, 1, 0))).toStrictEqual({
        index: 0,
        arrivalMs: 0,
        duplicateOf: at([2, 0], [2, 1]),
      });
      expect(await r.propose(recs('b'), header(9, 1, 1))).toStrictEqual({
        index: 0,
        arrivalMs: 0,
        duplicateOf: at([2, 1]),
      });
      // The next batch, a producer the shard never saw, a new epoch and a plain batch go to the children.
      for (const [records, h] of [
        [recs('c'), header(9, 1, 2)],
        [recs('new'), header(11, 0, 0)],
        [recs('e2'), header(9, 2, 0)],
        [recs('plain'), undefined],
      ] as const) {
        const error = await r.propose(records, h).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ShardSealedError);
        expect((error as Error).message).toContain(children.join(', '));
      }
      // An older epoch of a producer that wrote here is fenced.
      await expect(r.propose(recs('old'), header(10, 2, 1))).rejects.toBeInstanceOf(
        ProducerFencedError,
      );
    };
    await answers(replica);
    replica = await broker.restart(replica);
    expect(replica.sealed()).toEqual({ index: 4, children });
    await answers(replica);
    await broker.writer.drain();
    // Answering wrote nothing: the log ends with the SEAL and the restart's empty entry.
    expect((await rawLog(broker.kv, SHARD)).map((e) => [e.index, e.type])).toEqual([
      [1, EntryType.Empty],
      [2, EntryType.Records],
      [3, EntryType.Records],
      [4, EntryType.Seal],
      [5, EntryType.Empty],
    ]);
    expect(await lines(replica)).toEqual(['2.0 a', '2.1 b', '3.0 z']);
    expect(broker.fatal).toEqual([]);
  });
});

// -----------------------------------------------------------------------------------------------
// A Raft group, driven deterministically

const VOTERS = [1, 2, 3];

interface Member {
  readonly id: NodeId;
  readonly kv: KvStore;
  readonly store: ShardRaftStore;
  readonly node: RawNode;
  readonly replica: RaftReplica;
}

interface Outcome {
  settled: boolean;
  value?: AppendResult;
  error?: unknown;
}

/** Records how a write settles, so a test can look without awaiting it. */
function track(promise: Promise<AppendResult>): Outcome {
  const outcome: Outcome = { settled: false };
  promise.then(
    (value) => Object.assign(outcome, { settled: true, value }),
    (error: unknown) => Object.assign(outcome, { settled: true, error }),
  );
  return outcome;
}

/** Lets promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Three replicas of one shard, each with its own LevelDB, processed as RaftHost does (one Ready at
 * a time: persist the entries and the applies in one batch, then acknowledge), over a network that
 * delivers only when the test says and drops whatever goes to or from an isolated replica. No
 * timers: time moves only by tick(). Elections are started by hand (the randomized timeout is
 * pinned to its maximum so no replica campaigns on its own within the ticks a test gives).
 */
class RaftGroup {
  readonly members = new Map<NodeId, Member>();
  readonly clock = new ManualClock(T0);
  private queue: Message[] = [];
  private readonly isolated = new Set<NodeId>();

  static async start(): Promise<RaftGroup> {
    const group = new RaftGroup();
    for (const id of VOTERS) {
      const kv = await openStore(cleanup, await tempFolder(cleanup, `rheos-raft-${id}-`));
      group.members.set(id, await group.open(id, kv));
    }
    return group;
  }

  private async open(id: NodeId, kv: KvStore): Promise<Member> {
    const store = new ShardRaftStore(kv, SHARD, VOTERS);
    const recovered = await store.recover(1 << 20);
    const node = new RawNode(
      {
        id,
        voters: VOTERS,
        electionTicks: 10,
        heartbeatTicks: 1,
        random: () => 0.999,
        applied: recovered.appliedIndex,
      },
      recovered.initial,
    );
    const host: RaftReplicaHost = {
      touch: () => undefined,
      compact: (_shard: number, snapshot: Snapshot) => this.compact(id, snapshot),
      remove: () => Promise.resolve(),
      addressOf: (broker: NodeId) => `broker-${broker}:7600`,
      brokerOf: (replica: NodeId) => replica,
      storageFailed: false,
    };
    const replica = new RaftReplica({
      shard: SHARD,
      node,
      store,
      host,
      clock: this.clock,
      appliedIndex: recovered.appliedIndex,
      lastArrivalMs: recovered.lastArrivalMs,
      // This harness drives Raft by hand and delivers no ReadIndex answers.
      readConfirmTimeoutMs: 0,
    });
    await replica.init();
    return { id, kv, store, node, replica };
  }

  get(id: NodeId): Member {
    return this.members.get(id) as Member;
  }

  /** Stops replica `id` (its writes in flight fail) and opens it again on the same store. */
  async restart(id: NodeId): Promise<void> {
    const { kv, replica } = this.get(id);
    await replica.close();
    this.queue = this.queue.filter((m) => m.from !== id && m.to !== id);
    this.members.set(id, await this.open(id, kv));
  }

  replica(id: NodeId): RaftReplica {
    return this.get(id).replica;
  }

  leaders(): NodeId[] {
    return VOTERS.filter((id) => this.get(id).node.status().role === Role.Leader);
  }

  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  heal(id: NodeId): void {
    this.isolated.delete(id);
  }

  tick(id: NodeId, times: number): void {
    for (let i = 0; i < times; i++) this.get(id).node.tick();
  }

  /** One processing cycle of one replica (false: it had nothing to do). */
  async cycle(id: NodeId): Promise<boolean> {
    const { node, store, replica, kv } = this.get(id);
    if (!node.hasReady()) return false;
    const ready = node.ready();
    this.send(ready.messagesNow);
    replica.appended(ready.entries);
    const ops: KvOp[] = [...store.persistOps(ready), ...replica.applyOps(ready.committedEntries)];
    if (ready.softState !== undefined) replica.roleChanged(ready.softState.role);
    if (ops.length > 0) await kv.write(ops, { sync: false });
    this.send(ready.messagesAfterPersist);
    replica.persisted(ready.entries);
    replica.appliedEntries(ready.committedEntries, ready.snapshot);
    node.advance(ready);
    for (const load of ready.loads) {
      node.loaded({ from: load.from, entries: await store.load(load) });
    }
    await store.afterPersist();
    await settle();
    return true;
  }

  /** Delivers every message in flight (false: there were none). */
  deliver(): boolean {
    const messages = this.queue.splice(0);
    for (const m of messages) {
      if (!this.cut(m)) this.get(m.to).node.step(m);
    }
    return messages.length > 0;
  }

  /** Cycles and delivers until nothing moves. */
  async stabilize(): Promise<void> {
    for (let round = 0; round < 1000; round++) {
      let progressed = false;
      for (const id of VOTERS) while (await this.cycle(id)) progressed = true;
      if (this.deliver()) progressed = true;
      if (!progressed) return;
    }
    throw new Error('the group did not settle');
  }

  /** `id` campaigns (its voters' leases must have run out) and wins. */
  async elect(id: NodeId): Promise<void> {
    this.get(id).node.campaign();
    await this.stabilize();
    expect(this.leaders().filter((l) => !this.isolated.has(l))).toEqual([id]);
  }

  /** Proposes on `id` and lets the group settle; resolves with the outcome. */
  async write(id: NodeId, records: ProposedRecord[], h?: ProducerHeader): Promise<Outcome> {
    const outcome = track(this.replica(id).propose(records, h));
    await this.stabilize();
    await settle();
    return outcome;
  }

  private send(messages: readonly Message[]): void {
    for (const m of messages) if (!this.cut(m)) this.queue.push(m);
  }

  private cut(m: Message): boolean {
    return this.isolated.has(m.from) || this.isolated.has(m.to);
  }

  /** What RaftHost does with a compaction, at once (the driver is idle when a test trims). */
  private async compact(id: NodeId, snapshot: Snapshot): Promise<void> {
    const { kv, store, node } = this.get(id);
    if (snapshot.index <= store.trimPoint.index) return;
    await kv.write(store.compactOps(snapshot), { sync: false });
    node.compact(snapshot);
    await store.afterPersist();
  }
}

async function allLines(group: RaftGroup): Promise<string[][]> {
  return Promise.all(VOTERS.map((id) => lines(group.replica(id))));
}

async function tables(group: RaftGroup, index: number): Promise<string[]> {
  return Promise.all(
    VOTERS.map(async (id) =>
      (await group.get(id).store.log.producerTableAt(index)).toString('hex'),
    ),
  );
}

describe('a Raft group with an idempotent producer', () => {
  type Variant =
    | 'the retry is proposed the moment the new leader is elected'
    | 'the retry is proposed once the new leader has committed the batch'
    | 'the old leader had applied the batch and answered; the answer was lost';
  const variants: Variant[] = [
    'the retry is proposed the moment the new leader is elected',
    'the retry is proposed once the new leader has committed the batch',
    'the old leader had applied the batch and answered; the answer was lost',
  ];

  it.each(variants)(
    'a batch committed before the leader changed: the retry on the new leader is a duplicate with the original positions, stored once (%s)',
    async (variant) => {
      const group = await RaftGroup.start();
      await group.elect(1);
      const h = header(77, 1, 0);

      // The batch reaches every disk: the leader's and both followers'.
      const original = track(group.replica(1).propose(recs('a', 'b'), h));
      await group.cycle(1);
      group.deliver();
      await group.cycle(2);
      await group.cycle(3);
      if (variant.startsWith('the old leader')) {
        group.deliver(); // the acknowledgements: the leader commits and applies
        await group.cycle(1);
        expect(original).toEqual({ settled: true, value: { index: 2, arrivalMs: T0 } });
      }
      expect(group.replica(2).commitIndex()).toBe(1);
      expect(group.replica(3).commitIndex()).toBe(1);

      // The leader is cut off before anything more arrives; replica 2 takes over.
      group.isolate(1);
      group.tick(3, 10); // replica 3's lease on leader 1 runs out
      group.clock.advance(1000);
      let retry: Outcome;
      if (variant.startsWith('the retry is proposed the moment')) {
        group.get(2).node.campaign();
        while (group.get(2).node.status().role !== Role.Leader) {
          await group.cycle(2);
          await group.cycle(3);
          expect(group.deliver()).toBe(true);
        }
        // Replica 2 has not applied the batch yet: it is decided when the retry is.
        expect(group.replica(2).commitIndex()).toBe(1);
        retry = await group.write(2, recs('a', 'b'), h);
      } else {
        await group.elect(2);
        expect(group.replica(2).commitIndex()).toBe(3);
        retry = await group.write(2, recs('a', 'b'), h);
      }
      expect(retry).toStrictEqual({
        settled: true,
        value: { index: 4, arrivalMs: T0 + 1000, duplicateOf: at([2, 0], [2, 1]) },
      });

      // The old leader comes back and follows; its writer hears "maybe" unless it was answered.
      group.heal(1);
      group.tick(2, 1);
      await group.stabilize();
      await settle();
      expect(group.leaders()).toEqual([2]);
      if (variant.startsWith('the old leader')) {
        expect(original.value).toStrictEqual({ index: 2, arrivalMs: T0 });
      } else {
        expect(original.settled).toBe(true);
        expect(original.error).toBeInstanceOf(InternalFailureError);
      }
      expect(await group.write(2, recs('c'), header(77, 1, 2))).toStrictEqual({
        settled: true,
        value: { index: 5, arrivalMs: T0 + 1000 },
      });
      expect(await allLines(group)).toEqual(VOTERS.map(() => ['2.0 a', '2.1 b', '5.0 c']));
      for (const id of VOTERS) {
        expect(group.replica(id).commitIndex()).toBe(5);
        expect(group.get(id).store.log.isRefused(4)).toBe(true);
      }
      const [t1, t2, t3] = await tables(group, 5);
      expect(t2).toBe(t1);
      expect(t3).toBe(t1);
    },
  );

  it('wakes push readers on every replica as entries are applied there, and when a replica closes', async () => {
    const group = await RaftGroup.start();
    await group.elect(1);
    const tips = VOTERS.map((id) => group.replica(id).commitIndex());
    const woken = new Set<NodeId>();
    const waits = VOTERS.map((id, i) =>
      group
        .replica(id)
        .waitReadable(tips[i] as number)
        .then(() => woken.add(id)),
    );
    await settle();
    expect(woken.size).toBe(0);
    const outcome = await group.write(1, recs('x'));
    await Promise.all(waits);
    expect([...woken].sort()).toEqual([...VOTERS].sort());
    expect(outcome.value?.index).toBe((tips[0] as number) + 1);
    const stuck = group.replica(2).waitReadable(1_000_000);
    await group.replica(2).close();
    await stuck;
  });

  it('a batch only the old leader had is lost with its term: the retry on the new leader is stored, once', async () => {
    const group = await RaftGroup.start();
    await group.elect(1);
    const h = header(5, 0, 10);
    const original = track(group.replica(1).propose(recs('a', 'b'), h));
    await group.cycle(1); // on the leader's disk; the appends are lost with it
    group.isolate(1);
    group.deliver();
    group.tick(3, 10);
    await group.elect(2);
    expect(await group.write(2, recs('a', 'b'), h)).toStrictEqual({
      settled: true,
      value: { index: 3, arrivalMs: T0 },
    });
    group.heal(1);
    group.tick(2, 1);
    await group.stabilize();
    await settle();
    expect(original.error).toBeInstanceOf(InternalFailureError);
    // Replica 1's entry 2 of term 1 was replaced by the new leader's empty entry.
    expect(await allLines(group)).toEqual(VOTERS.map(() => ['3.0 a', '3.1 b']));
    expect(await group.write(2, recs('a', 'b'), h)).toMatchObject({
      value: { index: 4, duplicateOf: at([3, 0], [3, 1]) },
    });
  });

  it('once the SEAL is applied, any replica answers a retry of a stored batch; while it is pending the leader asks to retry', async () => {
    const group = await RaftGroup.start();
    await group.elect(1);
    const children = ['shardId-000000000003'];
    const h = header(8, 4, 0);
    expect((await group.write(1, recs('a', 'b'), h)).value).toStrictEqual({
      index: 2,
      arrivalMs: T0,
    });
    let sealIndex: number | undefined;
    void group
      .replica(1)
      .seal(children)
      .then((index) => (sealIndex = index));
    // The SEAL is in the leader's log, not applied: whether a batch was stored is not final yet.
    const early = track(group.replica(1).propose(recs('a', 'b'), h));
    await settle();
    expect(early.error).toBeInstanceOf(ServiceUnavailableError);
    await group.stabilize();
    await settle();
    expect(sealIndex).toBe(3);
    for (const id of VOTERS) {
      expect(group.replica(id).sealed()).toEqual({ index: 3, children });
      expect(await group.replica(id).propose(recs('a', 'b'), h)).toStrictEqual({
        index: 0,
        arrivalMs: 0,
        duplicateOf: at([2, 0], [2, 1]),
      });
      await expect(group.replica(id).propose(recs('c'), header(8, 4, 2))).rejects.toBeInstanceOf(
        ShardSealedError,
      );
      await expect(group.replica(id).propose(recs('old'), header(8, 3, 0))).rejects.toBeInstanceOf(
        ProducerFencedError,
      );
    }
    expect(await allLines(group)).toEqual(VOTERS.map(() => ['2.0 a', '2.1 b']));
  });

  it('a retry proposed on a restarted leader whose log holds the SEAL, not yet applied, is answered with its original positions, not ShardSealedError', async () => {
    const group = await RaftGroup.start();
    await group.elect(1);
    const h = header(61, 1, 0);
    expect((await group.write(1, recs('a', 'b'), h)).value).toStrictEqual({
      index: 2,
      arrivalMs: T0,
    });
    // The SEAL reaches every disk; then the leader is lost before anyone learns it committed.
    void group
      .replica(1)
      .seal(['shardId-000000000009'])
      .catch(() => undefined);
    await group.cycle(1);
    group.deliver();
    await group.cycle(2);
    await group.cycle(3);
    group.isolate(1);
    // Replica 2 restarts (its broker did): its log ends with the SEAL, committed but unapplied.
    await group.restart(2);
    expect(group.get(2).store.lastIndex).toBe(3);
    expect(group.replica(2).sealed()).toBeUndefined();
    group.tick(3, 10);
    group.get(2).node.campaign();
    while (group.get(2).node.status().role !== Role.Leader) {
      await group.cycle(2);
      await group.cycle(3);
      expect(group.deliver()).toBe(true);
    }
    // The writer of index 2 never heard back (its leader is gone) and retries on the new leader.
    const retry = await group.write(2, recs('a', 'b'), h);
    expect(group.replica(2).sealed()?.index).toBe(3);
    // The batch IS stored (at 2): ShardSealedError would send it to the children, storing it twice.
    // Either answer keeps it once: its positions, or a retriable "being sealed".
    expect(retry.error).not.toBeInstanceOf(ShardSealedError);
    if (retry.error === undefined) {
      expect(retry.value?.duplicateOf).toEqual(at([2, 0], [2, 1]));
    } else {
      expect(retry.error).toBeInstanceOf(ServiceUnavailableError);
    }
  });

  it('a replica that catches up from a snapshot decides retries as the others do, and answers them as leader', async () => {
    const group = await RaftGroup.start();
    await group.elect(1);
    group.isolate(3);
    const p = (seq: number) => header(300, 2, seq);
    for (let seq = 0; seq < 3; seq++) {
      expect((await group.write(1, recs(`s${seq}`), p(seq))).value?.index).toBe(seq + 2);
      group.clock.advance(1000);
    }
    // A refused retry (5), then retention trims the leader's log up to s2 (index 4).
    expect((await group.write(1, recs('s1'), p(1))).value?.duplicateOf).toEqual(at([3, 0]));
    expect(await group.replica(1).trimArrivedBefore(T0 + 2500)).toBe(4);
    expect(group.get(1).store.trimPoint.index).toBe(4);
    expect((await group.write(1, recs('s3'), p(3))).value).toStrictEqual({
      index: 6,
      arrivalMs: T0 + 3000,
    });

    // Replica 3 returns; the entries it lacks are gone, so it gets the snapshot and the rest.
    group.heal(3);
    group.tick(1, 1);
    await group.stabilize();
    expect(group.get(3).store.trimPoint).toEqual({ index: 4, term: 1, arrivalMs: T0 + 2000 });
    expect(group.replica(3).commitIndex()).toBe(6);
    expect(group.get(3).store.log.isRefused(5)).toBe(true);
    expect(await allLines(group)).toEqual([
      ['6.0 s3'],
      ['2.0 s0', '3.0 s1', '4.0 s2', '6.0 s3'],
      ['6.0 s3'],
    ]);
    const [t1, t2, t3] = await tables(group, 6);
    expect(t2).toBe(t1);
    expect(t3).toBe(t1);

    // Replica 3 leads; every stored batch is still a duplicate, wherever it is.
    group.isolate(1);
    group.tick(2, 10);
    await group.elect(3);
    group.clock.advance(1000);
    let index = 8; // 7 is the new term's empty entry
    for (const [seq, original] of [
      [0, 2],
      [1, 3],
      [2, 4],
      [3, 6],
    ] as const) {
      expect(await group.write(3, recs(`s${seq}`), p(seq))).toStrictEqual({
        settled: true,
        value: { index: index++, arrivalMs: T0 + 4000, duplicateOf: at([original, 0]) },
      });
    }
    const zombie = await group.write(3, recs('zombie'), header(300, 1, 4));
    expect(zombie.error).toBeInstanceOf(ProducerFencedError);
    const gap = await group.write(3, recs('gap'), p(9));
    expect(gap.error).toBeInstanceOf(OutOfOrderSequenceError);
    expect((await group.write(3, recs('s4'), p(4))).value).toStrictEqual({
      index: 14,
      arrivalMs: T0 + 4000,
    });
    group.heal(1);
    group.tick(3, 1);
    await group.stabilize();
    expect(await allLines(group)).toEqual([
      ['6.0 s3', '14.0 s4'],
      ['2.0 s0', '3.0 s1', '4.0 s2', '6.0 s3', '14.0 s4'],
      ['6.0 s3', '14.0 s4'],
    ]);
    const after = await tables(group, 14);
    expect(after[1]).toBe(after[0]);
    expect(after[2]).toBe(after[0]);
  });
});
