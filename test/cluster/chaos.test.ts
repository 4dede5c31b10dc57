import { appendFile, mkdir } from 'node:fs/promises';
import { cpus, hostname } from 'node:os';
import { execFileSync } from 'node:child_process';
import { afterEach, describe, it } from 'vitest';
import { ClusterHarness } from './harness.js';
import { describeReport, expectSafe } from './report.js';
import { BROKER_FAULTS, runWorkload } from './workload.js';

/**
 * The long run (`npm run test:chaos`, skipped otherwise): five broker processes, ten minutes of
 * faults (up to two brokers down at once), the same checks as the CI run. Its figures are appended
 * to bench/results/chaos.jsonl. CHAOS_MS and CLUSTER_SEED override the length and the seed;
 * CHAOS_COORDINATORS=3 (or 1) places the replicas with coordinator processes instead of a
 * cluster file and adds kill -9 of the coordinator leader to the faults.
 */

const enabled = process.env['RHEOS_CHAOS'] === '1';
const seed = Number(process.env['CLUSTER_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const durationMs = Number(process.env['CHAOS_MS'] ?? 600_000);
const coordinators = Number(process.env['CHAOS_COORDINATORS'] ?? 0);

let harness: ClusterHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe.skipIf(!enabled)('chaos (5 broker processes, npm run test:chaos)', () => {
  it(
    'loses no acknowledged write, and no minority acknowledges one, through ten minutes of faults',
    async () => {
      harness = await ClusterHarness.start({
        brokers: 5,
        streams: [{ name: 'chaos', shardCount: 8, replicationFactor: 3 }],
        tickMs: 50,
        ...(coordinators > 0 ? { coordinators } : {}),
      });
      const report = await runWorkload({
        harness,
        streamName: 'chaos',
        seed,
        durationMs,
        producers: 8,
        batchRecords: 25,
        ...(coordinators > 0
          ? { kinds: [...BROKER_FAULTS, 'killCoordinatorLeader' as const] }
          : {}),
        log: (line) => console.log(line),
      });
      const summary = describeReport(report);
      console.log(`chaos seed ${seed}\n${summary}`);
      const unavailable = report.leaderKills
        .map((k) => k.unavailableMs)
        .filter((ms): ms is number => ms !== undefined);
      await mkdir('bench/results', { recursive: true });
      await appendFile(
        'bench/results/chaos.jsonl',
        JSON.stringify({
          run: 'chaos',
          date: new Date().toISOString(),
          commit: execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim(),
          machine: `${hostname()} ${cpus().length} cores`,
          seed,
          durationMs: Math.round(report.durationMs),
          brokers: 5,
          coordinators,
          coordinatorKills: report.coordinatorKills.length,
          faults: report.faults.length,
          faultCounts: report.faultCounts,
          acknowledged: report.check.acknowledged,
          lost: report.check.lost.count,
          conflicts: report.check.conflicts.count,
          divergence: report.check.divergence.count,
          duplicated: report.check.duplicates.count,
          indeterminate: report.check.indeterminate,
          definiteFailures: report.check.definiteFailures,
          leaderChanges: report.leaderChanges,
          leaderKills: report.leaderKills.length,
          longestUnavailabilityAfterLeaderKillMs:
            unavailable.length === 0 ? null : Math.round(Math.max(...unavailable)),
          minorityProbes: report.minorityProbes,
          minorityAcks: report.minorityAcks.length,
          ok: report.check.ok,
        }) + '\n',
      );
      expectSafe(report);
    },
    durationMs + 600_000,
  );
});
