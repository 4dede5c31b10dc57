import { expect } from 'vitest';
import { FAILING_KINDS } from './checker.js';
import type { WorkloadReport } from './workload.js';

/** The figures of a cluster run, one line each, for logs and closing notes. */
export function describeReport(report: WorkloadReport): string {
  const { check } = report;
  const kills = report.leaderKills
    .map((k) => k.unavailableMs)
    .filter((ms): ms is number => ms !== undefined);
  const lines = [
    `duration ${(report.durationMs / 1000).toFixed(1)} s; faults ${report.faults.length} ${JSON.stringify(report.faultCounts)}`,
    `acknowledged ${check.acknowledged}, definite failures ${check.definiteFailures}, indeterminate ${check.indeterminate} (written ${check.indeterminateWritten}, not written ${check.indeterminateLost})`,
    `final records ${check.finalRecords}, records read by consumers ${check.recordsRead}`,
    `leader changes seen ${report.leaderChanges}; leader kills ${report.leaderKills.length}, longest write unavailability after one ${kills.length === 0 ? 'n/a' : `${Math.round(Math.max(...kills))} ms`} (all: ${kills.map((ms) => Math.round(ms)).join(', ')})`,
    ...(report.coordinatorKills.length === 0
      ? []
      : [
          `coordinator leader kills ${report.coordinatorKills.length}, longest stretch without an acknowledged write from a kill to a second after the restart: ${report.coordinatorKills.map((k) => (k.longestWriteGapMs === undefined ? 'none acknowledged' : `${Math.round(k.longestWriteGapMs)} ms`)).join(', ')}`,
        ]),
    `minority probes ${report.minorityProbes}, acknowledged by a minority ${report.minorityAcks.length}`,
    `duplicates ${check.duplicates.count}`,
    ...FAILING_KINDS.map((kind) => {
      const anomaly = check[kind];
      return `${kind} ${anomaly.count}${anomaly.count > 0 ? `: ${anomaly.examples.slice(0, 5).join(' | ')}` : ''}`;
    }),
  ];
  return lines.join('\n');
}

/**
 * What every replication run must show: no minority acknowledged, and no anomaly but duplicates.
 * `probed`: the run cut brokers off (so the minority prober must have run).
 */
export function expectSafe(report: WorkloadReport, probed = true): void {
  if (probed) expect(report.minorityProbes).toBeGreaterThan(0);
  expect(report.minorityAcks).toEqual([]);
  expect(report.check.lost.examples).toEqual([]);
  expect(report.check.conflicts.examples).toEqual([]);
  expect(report.check.divergence.examples).toEqual([]);
  expect(report.check.ok).toBe(true);
}
