import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/client.js';
import { ReplicaRole, type DescribeClusterResponse } from '../../src/gen/rheos/v1/coordinator.js';
import { checkChurn, churnControlPlane, type ControlOp } from './control-churn.js';
import { ClusterHarness } from './harness.js';
import { describeReport, expectSafe } from './report.js';
import { runWorkload } from './workload.js';

/**
 * The coordinator quorum with real processes: 1 or 3 `rheos coordinator` and 3 `rheos broker`
 * processes. Placement spreads replicas and leaderships evenly; then the coordinator leader is
 * killed (kill -9) again and again while producers write and a churner creates, tags and deletes
 * streams: every acknowledged control-plane call is reflected afterwards, writes never pause for
 * longer than an election (they do not depend on the coordinators at all), and the replicated-
 * shards checker finds nothing.
 *
 * CLUSTER_SEED overrides the seed.
 */

const seed = Number(process.env['CLUSTER_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

/** An election takes 10-20 ticks of 50 ms; twice the longest is the bound asserted on. */
const ELECTION_BOUND_MS = 2_000;

/** Error counts by call and name, each with its first message. */
function errorCounts(ops: readonly ControlOp[]): Record<string, string> {
  const counts = new Map<string, { n: number; first: string }>();
  for (const op of ops) {
    if (op.error === undefined) continue;
    const key = `${op.kind} ${op.error.split(':')[0] ?? ''}`;
    const seen = counts.get(key);
    counts.set(key, { n: (seen?.n ?? 0) + 1, first: seen?.first ?? op.error });
  }
  return Object.fromEntries([...counts].map(([k, v]) => [k, `${v.n} (${v.first})`]));
}

const ZONES: Readonly<Record<number, string>> = { 1: 'zone-a', 2: 'zone-b', 3: 'zone-c' };

const spread = (counts: readonly number[]) => Math.max(...counts) - Math.min(...counts);

let harness: ClusterHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

/**
 * Replicas and (reported) leaders per broker, once every listed shard reports a leader and the
 * leaderships are spread (or the time is up: the caller's assertions then say what is wrong).
 */
async function balance(
  h: ClusterHarness,
  streams: readonly string[],
  timeoutMs = 20_000,
): Promise<{ replicas: number[]; leaders: number[]; cluster: DescribeClusterResponse }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const cluster = await h.describeCluster();
    const shards = new Set<string>();
    const led = new Set<string>();
    const replicas: number[] = [];
    const leaders: number[] = [];
    for (const b of cluster.brokers) {
      const mine = b.replicas.filter((r) => streams.includes(r.streamName));
      replicas.push(mine.length);
      const leads = mine.filter((r) => r.reportedRole === ReplicaRole.REPLICA_ROLE_LEADER);
      leaders.push(leads.length);
      for (const r of mine) shards.add(`${r.streamName}/${r.shardId}`);
      for (const r of leads) led.add(`${r.streamName}/${r.shardId}`);
    }
    // Leaderships settle on the preferred replicas (brokers hand them over within seconds).
    const settled = led.size === shards.size && shards.size > 0 && spread(leaders) <= 1;
    if (settled) return { replicas, leaders, cluster };
    if (Date.now() > deadline) return { replicas, leaders, cluster };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe.each([1, 3])('a quorum of %i coordinator(s) with 3 broker processes', (coordinators) => {
  it('places evenly, and loses no acknowledged call or write when its leader is killed under load', async () => {
    const lines: string[] = [];
    harness = await ClusterHarness.start({
      brokers: 3,
      coordinators,
      streams: [
        { name: 'jepsen', shardCount: 6 },
        { name: 'pairs', shardCount: 5, replicationFactor: 2 },
      ],
      tickMs: 50,
      // With 3 coordinators, the brokers also say which zone they are in.
      ...(coordinators === 3 ? { zones: ZONES } : {}),
    });
    const h = harness;

    // Placement: 6 x 3 replicas and 5 x 2 replicas on 3 brokers; leaders as placement chose
    // (the preferred replica of a new group stands for election first).
    const placed = await balance(h, ['jepsen', 'pairs']);
    lines.push(
      `replicas per broker ${placed.replicas.join('/')}, leaders ${placed.leaders.join('/')}`,
    );
    expect(placed.replicas.reduce((a, b) => a + b, 0)).toBe(6 * 3 + 5 * 2);
    expect(spread(placed.replicas)).toBeLessThanOrEqual(1);
    expect(spread(placed.leaders)).toBeLessThanOrEqual(1);
    expect(placed.cluster.brokers.every((b) => b.state === 'up')).toBe(true);
    expect(placed.cluster.coordinators).toHaveLength(coordinators);
    if (coordinators === 3) {
      expect(Object.fromEntries(placed.cluster.brokers.map((b) => [b.brokerId, b.zone]))).toEqual(
        ZONES,
      );
      // One zone per broker: every shard has its replicas in distinct zones.
      const zonesOfShard = new Map<string, string[]>();
      for (const b of placed.cluster.brokers) {
        for (const r of b.replicas) {
          const key = `${r.streamName}/${r.shardId}`;
          zonesOfShard.set(key, [...(zonesOfShard.get(key) ?? []), b.zone]);
        }
      }
      for (const zones of zonesOfShard.values()) expect(new Set(zones).size).toBe(zones.length);
    }

    const t0 = performance.now();
    const durationMs = 24_000;
    let churnStop = false;
    const churnClient = createClient({ endpoints: h.endpoints(), deadlineMs: 10_000 });
    const churn = churnControlPlane({
      client: churnClient,
      t0,
      prefix: `churn${coordinators}`,
      shouldStop: () => churnStop,
    });
    let ops: readonly ControlOp[] = [];
    let survivorsActive = false;
    const report = await runWorkload({
      harness: h,
      streamName: 'jepsen',
      seed,
      durationMs,
      producers: 4,
      batchRecords: 20,
      kinds: ['killCoordinatorLeader'],
      minFaults: 3,
      // Held long enough that, with 3 coordinators, the others elect a leader and serve
      // before the killed one is back.
      faultMs: [3_000, 4_000],
      gapMs: [2_000, 3_000],
      t0,
      log: (line) => lines.push(line),
      beforeStop: async () => {
        churnStop = true;
        ops = await churn;
        // Every stream whose creation was acknowledged becomes ACTIVE (brokers opened it).
        const check = await checkChurn(churnClient, ops);
        for (const stream of check.survivors) await churnClient.waitForStreamActive(stream, 20_000);
        survivorsActive = true;
      },
    });
    churnStop = true;
    ops = await churn;
    // Checked against the coordinators directly (the brokers are stopped by now).
    const coordinatorClient = createClient({
      endpoints: h.coordinatorEndpoints(),
      deadlineMs: 10_000,
    });
    const check = await checkChurn(coordinatorClient, ops);
    coordinatorClient.close();
    churnClient.close();

    // How soon control-plane calls were acknowledged again after each kill.
    const resumedMs = report.coordinatorKills.map((k) => {
      const first = ops.find((o) => o.outcome === 'ok' && o.startMs >= k.atMs);
      return { kill: k, resumedMs: first === undefined ? undefined : first.endMs - k.atMs };
    });
    console.log(
      [
        ...lines,
        `coordinators ${coordinators}, cluster seed ${seed}`,
        describeReport(report),
        `control plane: ${ops.length} calls, acknowledged ${check.acknowledged}, definite failures ${check.definiteFailures}, indeterminate ${check.indeterminate}, surviving streams ${check.survivors.length}`,
        `control plane acknowledged again after each leader kill: ${resumedMs.map((r) => (r.resumedMs === undefined ? 'never' : `${Math.round(r.resumedMs)} ms (restart at ${Math.round(r.kill.restartedMs - r.kill.atMs)} ms)`)).join(', ')}`,
        `control-plane errors: ${JSON.stringify(errorCounts(ops))}`,
        ...check.problems.map((p) => `PROBLEM ${p}`),
      ].join('\n'),
    );

    expect(report.coordinatorKills.length).toBeGreaterThanOrEqual(3);
    expectSafe(report, false);
    expect(check.problems).toEqual([]);
    expect(check.acknowledged).toBeGreaterThan(10);
    expect(survivorsActive).toBe(true);
    // Writes go on while the coordinators elect (brokers do not need them to write).
    for (const kill of report.coordinatorKills) {
      expect(kill.longestWriteGapMs).toBeDefined();
      expect(kill.longestWriteGapMs as number).toBeLessThan(ELECTION_BOUND_MS);
    }
    if (coordinators === 3) {
      // The survivors elected a leader and took calls before the killed one came back.
      for (const { kill, resumedMs: ms } of resumedMs) {
        expect(ms).toBeDefined();
        expect(ms as number).toBeLessThan(kill.restartedMs - kill.atMs);
      }
    }
  }, 150_000);
});
