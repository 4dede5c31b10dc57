import { credentials, Metadata } from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import type { RheosClient } from '../../src/client/client.js';
import { RheosError } from '../../src/common/errors.js';
import { ClusterServiceClient, type GetShardMapResponse } from '../../src/gen/rheos/v1/cluster.js';
import {
  DataPlaneServiceClient,
  ShardIteratorType,
  type PutRecordResponse,
} from '../../src/gen/rheos/v1/data.js';
import { Random } from '../sim/random.js';
import {
  checkHistory,
  type CheckResult,
  type FinalShardLog,
  type PutOp,
  type ReadObservation,
  type ReadRecord,
} from './checker.js';
import type { ClusterHarness } from './harness.js';
import { readReplicaLogs } from './replica-logs.js';

/**
 * A Jepsen-style run against real brokers: producers put unique values and record every outcome
 * (ok, definite failure, indeterminate), consumers tail every shard, a nemesis injects one fault at
 * a time (kill -9, clean restart, pause, partition, isolation of a leader, link delay), and a
 * prober sends writes straight to brokers cut off from the majority, which must never acknowledge
 * one. After the faults heal, the final shard contents, every replica's log (read from its disk)
 * and the history go to the checker.
 */

export interface WorkloadOptions {
  readonly harness: ClusterHarness;
  readonly streamName: string;
  readonly seed: number;
  readonly durationMs: number;
  readonly producers: number;
  readonly batchRecords: number;
  /** Faults per kind are drawn uniformly; a fault lasts this long (ms, min-max). */
  readonly faultMs?: readonly [number, number];
  /** Quiet time between faults (ms, min-max). */
  readonly gapMs?: readonly [number, number];
  /** Most brokers down (killed or paused) at once; default a minority. */
  readonly maxDown?: number;
  /** Faults go on past durationMs until at least this many were injected (default 0). */
  readonly minFaults?: number;
  /** The faults to draw from (default: all). */
  readonly kinds?: readonly FaultKind[];
  readonly log?: (line: string) => void;
  /** performance.now() that the report's times count from (default: when the run starts). */
  readonly t0?: number;
  /** Runs after the producers stop and before the brokers do (checks that need them up). */
  readonly beforeStop?: () => Promise<void>;
  /**
   * Changes the test makes to the cluster while the workload runs, instead of random faults:
   * the producers and readers go on until it settles, then the run heals and checks as usual.
   */
  readonly scenario?: () => Promise<void>;
}

export type FaultKind =
  | 'kill'
  | 'killLeader'
  | 'restart'
  | 'pause'
  | 'partition'
  | 'isolateLeader'
  | 'delay'
  /** kill -9 the coordinator leader, restart it after the hold (coordinated clusters). */
  | 'killCoordinatorLeader';

export const BROKER_FAULTS: readonly FaultKind[] = [
  'kill',
  'killLeader',
  'restart',
  'pause',
  'partition',
  'isolateLeader',
  'delay',
];

export interface Fault {
  readonly kind: FaultKind;
  readonly brokers: readonly number[];
  readonly startMs: number;
  readonly endMs: number;
}

export interface LeaderKill {
  readonly broker: number;
  readonly atMs: number;
  readonly shards: readonly string[];
  /** Longest time, over those shards, from the kill to the first acknowledged write begun after it. */
  readonly unavailableMs: number | undefined;
}

export interface CoordinatorKill {
  readonly coordinator: number;
  readonly atMs: number;
  readonly restartedMs: number;
  /**
   * Longest time without an acknowledged write, from the kill until a second after the restart
   * (counting from the kill to the first acknowledgement after it).
   */
  readonly longestWriteGapMs: number | undefined;
}

export interface WorkloadReport {
  readonly check: CheckResult;
  readonly faults: readonly Fault[];
  readonly faultCounts: Readonly<Record<string, number>>;
  readonly leaderKills: readonly LeaderKill[];
  readonly coordinatorKills: readonly CoordinatorKill[];
  /** Leader changes seen by the shard-map watcher (a lower bound). */
  readonly leaderChanges: number;
  readonly minorityProbes: number;
  /** Probes a minority broker acknowledged: must be 0. */
  readonly minorityAcks: readonly string[];
  readonly durationMs: number;
  /** When each acknowledged record's call returned (ms since t0), in order: throughput over time. */
  readonly ackTimesMs: readonly number[];
}

const MAX_OBSERVATION_RECORDS = 1_000_000;

export async function runWorkload(options: WorkloadOptions): Promise<WorkloadReport> {
  const run = new Workload(options);
  return run.run();
}

class Workload {
  private readonly random: Random;
  private readonly puts: PutOp[] = [];
  private readonly reads: ReadObservation[] = [];
  private readonly faults: Fault[] = [];
  private readonly leaderKillsAt: Array<{ broker: number; atMs: number; shards: string[] }> = [];
  private readonly minorityAcks: string[] = [];
  private readonly coordinatorKillsAt: Array<{
    coordinator: number;
    atMs: number;
    restartedMs: number;
  }> = [];
  private minorityProbes = 0;
  private leaderChanges = 0;
  private stopping = false;
  private nemesisDone = false;
  private shardIds: string[] = [];
  private hashKeys = new Map<string, string>();
  /** Each shard's replica brokers: a side is a minority for a shard, not for the cluster. */
  private replicaSets = new Map<string, number[]>();
  private readonly t0: number;

  constructor(private readonly options: WorkloadOptions) {
    this.random = new Random(options.seed);
    this.t0 = options.t0 ?? performance.now();
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  private log(line: string): void {
    this.options.log?.(`${(this.now() / 1000).toFixed(1).padStart(6)}s ${line}`);
  }

  async run(): Promise<WorkloadReport> {
    const { harness, streamName } = this.options;
    const client = harness.client();
    try {
      await this.awaitWritable(client, 60_000);
      const shards = await client.listShards({ streamName });
      this.shardIds = shards.shards.map((s) => s.shardId);
      for (const s of shards.shards)
        this.hashKeys.set(s.shardId, s.hashKeyRange?.startingHashKey ?? '0');
      const map = await shardMapOf(harness.info(harness.ids[0] as number).api, streamName);
      for (const s of map.shards) {
        this.replicaSets.set(
          s.shardId,
          s.replicas.map((r) => Number(r.brokerId)),
        );
      }
      const producers = Array.from({ length: this.options.producers }, (_, i) =>
        this.produce(`p${i}`, this.random.fork()),
      );
      const consumers = this.shardIds.map((shardId) => this.consume(`c-${shardId}`, shardId));
      const watcher = this.watchLeaders();
      await (this.options.scenario?.() ?? this.nemesis());
      this.nemesisDone = true;
      this.log('nemesis done; healing');
      await harness.healAll();
      await this.awaitWritable(client, 60_000);
      // A few seconds of writes on the healed cluster, then stop.
      await sleep(2_000);
      this.stopping = true;
      await Promise.all(producers);
      await watcher;
      const finalLogs = await this.readFinalLogs(client);
      // Consumers stop once they have read everything the final logs hold (or time out).
      const target = new Map(finalLogs.map((l) => [l.shardId, l.records.at(-1)?.sequenceNumber]));
      this.consumersTarget = target;
      await Promise.all(consumers);
      await this.options.beforeStop?.();
      const metadata = await harness.metadataState();
      await harness.stopAll();
      const replicaLogs = await readReplicaLogs(
        metadata,
        harness.ids,
        (id) => harness.info(id).dataDir,
        streamName,
      );
      const check = checkHistory({ puts: this.puts, reads: this.reads, finalLogs, replicaLogs });
      const faultCounts: Record<string, number> = {};
      for (const f of this.faults) faultCounts[f.kind] = (faultCounts[f.kind] ?? 0) + 1;
      return {
        check,
        faults: this.faults,
        faultCounts,
        leaderKills: this.leaderKillsAt.map((k) => ({
          ...k,
          unavailableMs: this.unavailability(k),
        })),
        coordinatorKills: this.coordinatorKillsAt.map((k) => ({
          ...k,
          longestWriteGapMs: this.longestWriteGap(k.atMs, k.restartedMs + 1_000),
        })),
        leaderChanges: this.leaderChanges,
        minorityProbes: this.minorityProbes,
        minorityAcks: this.minorityAcks,
        durationMs: this.now(),
        ackTimesMs: this.puts
          .filter((p) => p.result.type === 'ok')
          .map((p) => p.endMs)
          .sort((a, b) => a - b),
      };
    } finally {
      this.stopping = true;
      this.nemesisDone = true;
      client.close();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Producers

  private async produce(name: string, random: Random): Promise<void> {
    const { harness, streamName, batchRecords } = this.options;
    const client = harness.client(3_000);
    let n = 0;
    try {
      while (!this.stopping) {
        const values = Array.from({ length: batchRecords }, () => `${name}-${n++}`);
        const keys = values.map(() => `k${random.int(0, 1_000_000)}`);
        const startMs = this.now();
        try {
          if (values.length === 1) {
            const r = await client.putRecord({
              streamName,
              partitionKey: keys[0] as string,
              data: Buffer.from(values[0] as string),
            });
            this.record(name, values[0] as string, keys[0] as string, startMs, {
              type: 'ok',
              shardId: r.shardId,
              sequenceNumber: r.sequenceNumber,
            });
          } else {
            const r = await client.putRecords({
              streamName,
              records: values.map((v, i) => ({
                partitionKey: keys[i] as string,
                data: Buffer.from(v),
              })),
            });
            r.records.forEach((entry, i) => {
              const value = values[i] as string;
              const key = keys[i] as string;
              if (entry.errorCode === '') {
                this.record(name, value, key, startMs, {
                  type: 'ok',
                  shardId: entry.shardId,
                  sequenceNumber: entry.sequenceNumber,
                });
              } else {
                this.record(
                  name,
                  value,
                  key,
                  startMs,
                  perRecordResult(entry.errorCode, entry.errorMessage),
                );
              }
            });
            if (r.failedRecordCount > 0) await sleep(random.int(10, 50));
          }
        } catch (error) {
          const result = callResult(error);
          values.forEach((v, i) => this.record(name, v, keys[i] as string, startMs, result));
          await sleep(random.int(20, 100));
        }
      }
    } finally {
      client.close();
    }
  }

  private record(
    process: string,
    value: string,
    partitionKey: string,
    startMs: number,
    result: PutOp['result'],
  ): void {
    this.puts.push({ process, value, partitionKey, startMs, endMs: this.now(), result });
  }

  // -------------------------------------------------------------------------------------------
  // Consumers

  private consumersTarget: Map<string, string | undefined> | undefined;

  private consumerDone(shardId: string, last: string | undefined): boolean {
    const target = this.consumersTarget;
    if (target === undefined) return false;
    const want = target.get(shardId);
    return want === undefined || (last !== undefined && BigInt(last) >= BigInt(want));
  }

  private async consume(name: string, shardId: string): Promise<void> {
    const { harness, streamName } = this.options;
    const client = harness.client(3_000);
    let last: string | undefined;
    const deadline = () =>
      this.consumersTarget !== undefined && this.now() > this.finalReadAt + 60_000;
    try {
      while (!this.consumerDone(shardId, last) && !deadline()) {
        const records: ReadRecord[] = [];
        const startAfter = last;
        try {
          const { shardIterator } = await client.getShardIterator({
            streamName,
            shardId,
            ...(last === undefined
              ? { shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON }
              : {
                  shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER,
                  startingSequenceNumber: last,
                }),
          });
          let iterator = shardIterator;
          while (iterator !== '' && !this.consumerDone(shardId, last) && !deadline()) {
            const page = await client.getRecords({ shardIterator: iterator, limit: 2_000 });
            for (const r of page.records) {
              records.push({ sequenceNumber: r.sequenceNumber, value: r.data.toString() });
              last = r.sequenceNumber;
            }
            iterator = page.nextShardIterator;
            if (records.length >= MAX_OBSERVATION_RECORDS) break;
            if (page.records.length === 0) await sleep(100);
          }
        } catch {
          await sleep(200);
        } finally {
          if (records.length > 0) {
            this.reads.push({
              consumer: name,
              shardId,
              ...(startAfter === undefined ? {} : { startAfter }),
              records,
            });
          }
        }
      }
    } finally {
      client.close();
    }
  }

  // -------------------------------------------------------------------------------------------
  // After the run

  private finalReadAt = 0;

  private async readFinalLogs(client: RheosClient): Promise<FinalShardLog[]> {
    this.finalReadAt = this.now();
    const out: FinalShardLog[] = [];
    for (const shardId of this.shardIds) {
      for (let attempt = 0; ; attempt++) {
        try {
          out.push({
            shardId,
            records: await readWholeShard(client, this.options.streamName, shardId),
          });
          break;
        } catch (error) {
          if (attempt >= 20) throw error;
          await sleep(500);
        }
      }
    }
    return out;
  }

  /** Waits until a write to every shard is acknowledged (all shards have a leader). */
  private async awaitWritable(client: RheosClient, timeoutMs: number): Promise<void> {
    const deadline = this.now() + timeoutMs;
    const { streamName } = this.options;
    for (;;) {
      try {
        const { shards } = await client.listShards({ streamName });
        let ok = true;
        for (const s of shards) {
          const value = `probe-ready-${s.shardId}-${Math.round(this.now())}`;
          const startMs = this.now();
          try {
            const r = await client.putRecord({
              streamName,
              partitionKey: 'ready',
              explicitHashKey: s.hashKeyRange?.startingHashKey ?? '0',
              data: Buffer.from(value),
            });
            this.record('ready', value, 'ready', startMs, {
              type: 'ok',
              shardId: r.shardId,
              sequenceNumber: r.sequenceNumber,
            });
          } catch (error) {
            this.record('ready', value, 'ready', startMs, callResult(error));
            ok = false;
          }
        }
        if (ok) return;
      } catch {
        // not answering yet
      }
      if (this.now() > deadline)
        throw new Error(`the cluster did not take writes within ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  private unavailability(kill: { atMs: number; shards: string[] }): number | undefined {
    let worst: number | undefined;
    for (const shardId of kill.shards) {
      let first: number | undefined;
      for (const op of this.puts) {
        if (op.result.type !== 'ok' || op.result.shardId !== shardId || op.startMs < kill.atMs)
          continue;
        if (first === undefined || op.endMs < first) first = op.endMs;
      }
      if (first === undefined) return undefined;
      worst = Math.max(worst ?? 0, first - kill.atMs);
    }
    return worst;
  }

  /** Longest stretch in [fromMs, toMs] with no write acknowledged (undefined: none at all). */
  private longestWriteGap(fromMs: number, toMs: number): number | undefined {
    const acks = this.puts
      .filter((op) => op.result.type === 'ok' && op.endMs >= fromMs && op.endMs <= toMs)
      .map((op) => op.endMs)
      .sort((a, b) => a - b);
    if (acks.length === 0) return undefined;
    let longest = (acks[0] as number) - fromMs;
    for (let i = 1; i < acks.length; i++) {
      longest = Math.max(longest, (acks[i] as number) - (acks[i - 1] as number));
    }
    return longest;
  }

  // -------------------------------------------------------------------------------------------
  // Leaders

  /** Each running broker's own view of who leads what; a leader is a broker that says it leads. */
  private async leaders(): Promise<Map<string, number>> {
    const { harness, streamName } = this.options;
    const out = new Map<string, number>();
    await Promise.all(
      harness.ids
        .filter((id) => harness.state(id) === 'running')
        .map(async (id) => {
          const map = await shardMapOf(harness.info(id).api, streamName).catch(() => undefined);
          for (const shard of map?.shards ?? []) {
            if (shard.leader !== undefined && Number(shard.leader.brokerId) === id)
              out.set(shard.shardId, id);
          }
        }),
    );
    return out;
  }

  private async watchLeaders(): Promise<void> {
    let previous = new Map<string, number>();
    while (!this.stopping) {
      const now = await this.leaders();
      for (const [shard, leader] of now) {
        const before = previous.get(shard);
        if (before !== undefined && before !== leader) this.leaderChanges++;
      }
      previous = new Map([...previous, ...now]);
      await sleep(250);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Nemesis

  private async nemesis(): Promise<void> {
    const { harness, durationMs } = this.options;
    const [faultMin, faultMax] = this.options.faultMs ?? [500, 1_500];
    const [gapMin, gapMax] = this.options.gapMs ?? [200, 700];
    const ids = harness.ids;
    const minority = Math.floor((ids.length - 1) / 2);
    const maxDown = this.options.maxDown ?? minority;
    const kinds = this.options.kinds ?? BROKER_FAULTS;
    let round: FaultKind[] = [];
    const minFaults = this.options.minFaults ?? 0;
    const more = () => this.now() < durationMs || this.faults.length < minFaults;
    while (more()) {
      await sleep(this.random.int(gapMin, gapMax));
      if (!more()) break;
      // Every kind once per round, in a random order, so a short run still sees each of them.
      if (round.length === 0) round = shuffle(this.random, kinds);
      const kind = round.pop() as FaultKind;
      const holdMs = this.random.int(faultMin, faultMax);
      const startMs = this.now();
      let brokers: number[] = [];
      const count = this.random.int(1, Math.max(1, maxDown));
      switch (kind) {
        case 'kill':
        case 'restart':
        case 'pause': {
          brokers = shuffle(this.random, ids).slice(0, count);
          for (const id of brokers) {
            if (kind === 'pause') harness.pause(id);
            else if (kind === 'kill') await harness.kill(id);
            else await harness.stop(id);
          }
          await sleep(holdMs);
          for (const id of brokers) {
            if (kind === 'pause') harness.resume(id);
            else await harness.startBroker(id);
          }
          break;
        }
        case 'killLeader': {
          const leaders = await this.leaders();
          const victim =
            leaders.size === 0
              ? this.random.pick(ids)
              : this.random.pick([...new Set(leaders.values())]);
          brokers = [victim];
          const shards = [...leaders].filter(([, l]) => l === victim).map(([s]) => s);
          const atMs = this.now();
          await harness.kill(victim);
          if (shards.length > 0) this.leaderKillsAt.push({ broker: victim, atMs, shards });
          await sleep(holdMs);
          await harness.startBroker(victim);
          break;
        }
        case 'killCoordinatorLeader': {
          const leader = await harness.coordinatorLeader();
          brokers = [leader];
          const atMs = this.now();
          await harness.killCoordinator(leader);
          await sleep(holdMs);
          await harness.startCoordinator(leader);
          this.coordinatorKillsAt.push({ coordinator: leader, atMs, restartedMs: this.now() });
          break;
        }
        case 'partition':
        case 'isolateLeader': {
          let side: number[];
          if (kind === 'isolateLeader') {
            const leaders = await this.leaders();
            side = [
              leaders.size === 0
                ? this.random.pick(ids)
                : this.random.pick([...new Set(leaders.values())]),
            ];
          } else {
            side = shuffle(this.random, ids).slice(0, this.random.int(1, Math.max(1, minority)));
          }
          brokers = side;
          const rest = ids.filter((id) => !side.includes(id));
          harness.partition(side, rest);
          await this.probeMinority(side, holdMs);
          harness.heal();
          break;
        }
        case 'delay': {
          brokers = [this.random.pick(ids)];
          const delayMs = this.random.int(20, 150);
          for (const other of ids) {
            if (other !== brokers[0])
              harness.setLink(brokers[0] as number, other, {
                kind: 'delay',
                delayMs,
                jitterMs: delayMs / 2,
              });
          }
          await sleep(holdMs);
          harness.heal();
          break;
        }
      }
      this.faults.push({ kind, brokers, startMs, endMs: this.now() });
      this.log(`${kind} ${brokers.join(',')} for ${Math.round(this.now() - startMs)} ms`);
    }
  }

  /**
   * While `side` is cut off from the rest, writes sent straight to its brokers (no routing, no
   * retries) for a shard of which the side holds at most half of the replicas must never be
   * acknowledged: without a majority nothing commits. (With more brokers than replicas, a side that is a
   * minority of the cluster can hold a majority of some shard; those shards are not probed.)
   * Probes begin a little after the cut, so nothing sent before it can be mistaken for one.
   */
  private async probeMinority(side: readonly number[], holdMs: number): Promise<void> {
    const { harness, streamName } = this.options;
    const until = this.now() + holdMs;
    await sleep(100);
    const clients = side.map((id) => ({
      id,
      data: new DataPlaneServiceClient(harness.info(id).api, credentials.createInsecure()),
    }));
    try {
      while (this.now() < until) {
        const probes: Array<Promise<void>> = [];
        for (const { id, data } of clients) {
          for (const shardId of this.shardIds) {
            const replicas = this.replicaSets.get(shardId) ?? [];
            const onSide = replicas.filter((r) => side.includes(r)).length;
            if (!replicas.includes(id) || 2 * onSide > replicas.length) continue;
            const value = `minority-${id}-${shardId}-${this.minorityProbes++}`;
            const startMs = this.now();
            const timeoutMs = Math.max(50, until - this.now());
            probes.push(
              putDirect(
                data,
                {
                  streamName,
                  partitionKey: 'minority',
                  explicitHashKey: this.hashKeys.get(shardId) ?? '0',
                  data: Buffer.from(value),
                },
                timeoutMs,
              ).then(
                (r) => {
                  // Acknowledged by a broker with no majority behind it.
                  this.minorityAcks.push(
                    `${value} acknowledged by broker ${id} at ${r.sequenceNumber}`,
                  );
                  this.record('minority', value, 'minority', startMs, {
                    type: 'ok',
                    shardId: r.shardId,
                    sequenceNumber: r.sequenceNumber,
                  });
                },
                (error: unknown) =>
                  this.record('minority', value, 'minority', startMs, callResult(error)),
              ),
            );
          }
        }
        await Promise.all(probes);
        await sleep(50);
      }
    } finally {
      for (const { data } of clients) data.close();
    }
  }
}

// ---------------------------------------------------------------------------------------------

export function perRecordResult(code: string, message: string): PutOp['result'] {
  // Per-record errors that promise nothing was stored; anything else may have been.
  if (
    code === 'NotLeaderException' ||
    code === 'ProvisionedThroughputExceededException' ||
    code === 'ShardSealedException'
  ) {
    return { type: 'fail', error: `${code}: ${message}` };
  }
  return { type: 'info', error: `${code}: ${message}` };
}

export function callResult(error: unknown): PutOp['result'] {
  if (error instanceof RheosError && !error.indeterminate)
    return { type: 'fail', error: `${error.name}: ${error.message}` };
  return {
    type: 'info',
    error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
  };
}

async function readWholeShard(
  client: RheosClient,
  streamName: string,
  shardId: string,
): Promise<ReadRecord[]> {
  const { shardIterator } = await client.getShardIterator({
    streamName,
    shardId,
    shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
  });
  const out: ReadRecord[] = [];
  let iterator = shardIterator;
  for (let i = 0; i < 100_000 && iterator !== ''; i++) {
    const page = await client.getRecords({ shardIterator: iterator, limit: 10_000 });
    for (const r of page.records)
      out.push({ sequenceNumber: r.sequenceNumber, value: r.data.toString() });
    if (page.records.length === 0 && page.millisBehindLatest === 0) break;
    iterator = page.nextShardIterator;
  }
  return out;
}

function shardMapOf(endpoint: string, streamName: string): Promise<GetShardMapResponse> {
  const client = new ClusterServiceClient(endpoint, credentials.createInsecure());
  return new Promise<GetShardMapResponse>((resolve, reject) => {
    client.getShardMap(
      { streamName, refresh: false },
      new Metadata(),
      { deadline: Date.now() + 1_000 },
      (error, response) => {
        client.close();
        if (error) reject(error);
        else resolve(response);
      },
    );
  });
}

function putDirect(
  client: DataPlaneServiceClient,
  request: { streamName: string; partitionKey: string; explicitHashKey: string; data: Buffer },
  timeoutMs: number,
): Promise<PutRecordResponse> {
  return new Promise<PutRecordResponse>((resolve, reject) => {
    client.putRecord(
      { ...request, streamArn: '' },
      new Metadata(),
      { deadline: Date.now() + timeoutMs },
      (error, response) => (error ? reject(error) : resolve(response)),
    );
  });
}

function shuffle<T>(random: Random, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = random.int(0, i);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
