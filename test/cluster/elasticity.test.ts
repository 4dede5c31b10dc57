import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaRole, type DescribeClusterResponse } from '../../src/gen/rheos/v1/coordinator.js';
import { runRheos } from '../helpers/processes.js';
import { ClusterHarness } from './harness.js';
import { describeReport, expectSafe } from './report.js';
import { runWorkload } from './workload.js';

/**
 * Elasticity on real processes (4 brokers, 1 coordinator, 8 shards at RF 3) under continuous
 * writes and reads, in one run as an operator would live it: a fifth broker joins and replicas
 * move to it; then a broker is drained (`rheos admin drain`) and every replica and leadership
 * leaves it; then a broker is killed and stays down past the replace timeout, and its replicas
 * are re-created on the others from the survivors (on brokers that left those groups earlier,
 * which rejoin them as new members). After each, the brokers that take replicas differ by at most one in replicas and in
 * leaders (no zones here, so nothing else constrains them), nothing is moving, and at the end
 * the checker finds no acknowledged write lost and no replica log diverging. Moves are Raft
 * membership changes only (learner, catch-up, voter, leadership handed on, source removed).
 */

const STREAM = 'elastic';
const REPLACE_AFTER_MS = 4_000;
const SETTLE_MS = 150_000;

let harness: ClusterHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Spread {
  readonly replicas: Record<number, number>;
  readonly leaders: Record<number, number>;
  readonly moves: number;
  /** Brokers that take no replicas (drained, or replaced while down) but still hold some. */
  readonly strays: readonly number[];
}

function spreadOf(cluster: DescribeClusterResponse, counted: readonly number[]): Spread {
  const replicas: Record<number, number> = {};
  const leaders: Record<number, number> = {};
  for (const b of cluster.brokers) {
    replicas[b.brokerId] = b.replicas.length;
    leaders[b.brokerId] = b.replicas.filter(
      (r) => r.reportedRole === ReplicaRole.REPLICA_ROLE_LEADER,
    ).length;
  }
  const strays = Object.keys(replicas)
    .map(Number)
    .filter((id) => !counted.includes(id) && ((replicas[id] ?? 0) > 0 || (leaders[id] ?? 0) > 0));
  return { replicas, leaders, moves: cluster.moves.length, strays };
}

const range = (counts: Record<number, number>, ids: readonly number[]) => {
  const values = ids.map((id) => counts[id] ?? 0);
  return Math.max(...values) - Math.min(...values);
};

type Phase = 'join' | 'drain' | 'death';

interface Run {
  readonly lines: string[];
  readonly settled: Array<{ phase: string; afterMs: number; spread: Spread }>;
}

/**
 * Runs the phases in order under the workload, waiting after each until nothing moves and the
 * brokers that take replicas are even; then checks the history and prints the figures.
 */
async function elasticRun(phases: readonly Phase[]): Promise<Run> {
  harness = await ClusterHarness.start({
    brokers: 4,
    coordinators: 1,
    streams: [{ name: STREAM, shardCount: 8 }],
    tickMs: 50,
    replaceDownAfterMs: REPLACE_AFTER_MS,
  });
  const h = harness;
  const t0 = performance.now();
  const nowMs = () => performance.now() - t0;
  const lines: string[] = [];
  const log = (line: string) => lines.push(`${(nowMs() / 1000).toFixed(1).padStart(6)}s ${line}`);
  const settled: Run['settled'] = [];
  // Windows (ms since t0) for the throughput comparison: steady, and while replicas move.
  const windows: Array<{ name: string; fromMs: number; toMs: number }> = [];

  const settle = async (phase: string, counted: readonly number[]): Promise<Spread> => {
    const startMs = performance.now();
    let last: Spread | undefined;
    while (performance.now() - startMs < SETTLE_MS) {
      const cluster = await h.describeCluster().catch(() => undefined);
      if (cluster !== undefined) {
        last = spreadOf(cluster, counted);
        if (
          last.moves === 0 &&
          last.strays.length === 0 &&
          range(last.replicas, counted) <= 1 &&
          range(last.leaders, counted) <= 1 &&
          counted.every((id) => (last?.replicas[id] ?? 0) > 0)
        ) {
          const afterMs = Math.round(performance.now() - startMs);
          settled.push({ phase, afterMs, spread: last });
          log(
            `${phase}: settled after ${afterMs} ms; replicas ${JSON.stringify(last.replicas)}, leaders ${JSON.stringify(last.leaders)}`,
          );
          return last;
        }
      }
      await sleep(250);
    }
    throw new Error(`${phase}: not balanced after ${SETTLE_MS} ms: ${JSON.stringify(last)}`);
  };
  const timed = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const fromMs = nowMs();
    const result = await run();
    windows.push({ name, fromMs, toMs: nowMs() });
    return result;
  };

  let counted = [1, 2, 3, 4];
  const report = await runWorkload({
    harness: h,
    streamName: STREAM,
    seed: 7,
    durationMs: 0,
    producers: 3,
    batchRecords: 20,
    log,
    t0,
    scenario: async () => {
      await settle('start', counted);
      await timed('steady', () => sleep(8_000));
      for (const phase of phases) {
        if (phase === 'join') {
          const added = await h.addBroker();
          log(`broker ${added} joined`);
          counted = [...counted, added];
          const joined = await timed('join (replicas move to the new broker)', () =>
            settle('join', counted),
          );
          expect(joined.replicas[added]).toBeGreaterThanOrEqual(4);
        } else if (phase === 'drain') {
          const victim = counted[1] as number;
          const drained = await runRheos([
            '--endpoint',
            h.coordinatorEndpoints().join(','),
            'admin',
            'drain',
            String(victim),
          ]);
          expect(drained.code, drained.stderr).toBe(0);
          log(`broker ${victim} draining`);
          counted = counted.filter((id) => id !== victim);
          const after = await timed('drain', () => settle('drain', counted));
          expect(after.replicas[victim]).toBe(0);
          expect(after.leaders[victim]).toBe(0);
        } else {
          const victim = counted[2] as number;
          await h.kill(victim);
          log(
            `broker ${victim} killed; its replicas are re-created after ${REPLACE_AFTER_MS} ms down`,
          );
          counted = counted.filter((id) => id !== victim);
          const after = await timed('death and re-replication', () => settle('death', counted));
          expect(after.replicas[victim]).toBe(0);
          // Every shard has its three replicas again, on brokers that are up.
          const cluster = await h.describeCluster();
          const perShard = new Map<string, number>();
          for (const b of cluster.brokers) {
            if (b.state !== 'up') continue;
            for (const r of b.replicas) perShard.set(r.shardId, (perShard.get(r.shardId) ?? 0) + 1);
          }
          expect([...perShard.values()]).toEqual(Array.from({ length: 8 }, () => 3));
        }
      }
      // Steady state again, on the brokers left: the comparison brackets the moves.
      await timed('steady after', () => sleep(8_000));
    },
  });
  const rates = windows.map(({ name, fromMs, toMs }) => {
    const acked = report.ackTimesMs.filter((t) => t >= fromMs && t < toMs).length;
    return `${name}: ${Math.round((acked * 1000) / Math.max(1, toMs - fromMs))} records/s acknowledged over ${((toMs - fromMs) / 1000).toFixed(1)} s`;
  });
  console.log([...lines, ...rates, describeReport(report)].join('\n'));
  expectSafe(report, false);
  expect(settled.map((x) => x.phase)).toEqual(['start', ...phases]);
  return { lines, settled };
}

describe('cluster elasticity under continuous writes', () => {
  it('4 brokers: a fifth joins and fills up, one is drained, one dies and is replaced from the survivors; balanced after each and nothing lost', async () => {
    // After the drain and the death three brokers take replicas: every shard needs all three, so
    // brokers join groups they left earlier in the run (under new replica ids).
    await elasticRun(['join', 'drain', 'death']);
  }, 900_000);
});
