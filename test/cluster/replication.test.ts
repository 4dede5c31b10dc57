import { afterEach, describe, expect, it } from 'vitest';
import { ClusterHarness } from './harness.js';
import { describeReport, expectSafe } from './report.js';
import { runWorkload } from './workload.js';

/**
 * Replicated shards under faults, with real broker processes (see harness.ts and workload.ts):
 * nothing acknowledged is lost, no sequence number holds two records, replicas agree byte for
 * byte, and a broker cut off from the majority acknowledges nothing. The second test runs the same
 * workload with leaders acknowledging before commit and expects the checker to catch it.
 *
 * CLUSTER_SEED and CLUSTER_MS override the seed and the fault period.
 */

const seed = Number(process.env['CLUSTER_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const faultPeriodMs = Number(process.env['CLUSTER_MS'] ?? 60_000);

let harness: ClusterHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe('replicated shards under faults (3 broker processes)', () => {
  it(
    'loses no acknowledged write through kills, restarts, pauses, partitions and delays',
    async () => {
      const lines: string[] = [];
      harness = await ClusterHarness.start({
        brokers: 3,
        streams: [{ name: 'jepsen', shardCount: 4 }],
        tickMs: 50,
      });
      const report = await runWorkload({
        harness,
        streamName: 'jepsen',
        seed,
        durationMs: faultPeriodMs,
        producers: 6,
        batchRecords: 25,
        minFaults: 20,
        log: (line) => lines.push(line),
      });
      console.log(`${lines.join('\n')}\ncluster seed ${seed}\n${describeReport(report)}`);
      expect(report.faults.length).toBeGreaterThanOrEqual(20);
      expect(report.check.acknowledged).toBeGreaterThanOrEqual(50_000);
      expectSafe(report);
    },
    faultPeriodMs + 240_000,
  );

  it('fails when leaders acknowledge before commit (RHEOS_UNSAFE_ACK_BEFORE_COMMIT=1): the test can fail', async () => {
    const lines: string[] = [];
    harness = await ClusterHarness.start({
      brokers: 3,
      streams: [{ name: 'jepsen', shardCount: 2 }],
      tickMs: 50,
      env: { RHEOS_UNSAFE_ACK_BEFORE_COMMIT: '1' },
    });
    const report = await runWorkload({
      harness,
      streamName: 'jepsen',
      seed,
      durationMs: 20_000,
      producers: 4,
      batchRecords: 10,
      kinds: ['isolateLeader'],
      log: (line) => lines.push(line),
    });
    console.log(`${lines.join('\n')}\nunsafe run, cluster seed ${seed}\n${describeReport(report)}`);
    // A leader cut off from its followers keeps acknowledging until it steps down, and the
    // majority's new leader overwrites those entries.
    expect(report.minorityAcks.length + report.check.lost.count).toBeGreaterThan(0);
    expect(report.check.ok).toBe(false);
  }, 240_000);
});
