import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runSeed } from './simulation.js';

/**
 * The simulator in CI: every regression seed, then fresh random seeds for a time budget
 * (SIM_CI_MS, default 3 minutes). A failure prints the seed; replay it with
 * `npm run sim -- --seed N --trace` and add it to regression-seeds.json.
 */

interface RegressionSeed {
  readonly seed: number;
  readonly profile: 'steady' | 'churn' | 'membership' | 'mixed';
  readonly found: string;
}

const regression = (
  JSON.parse(readFileSync(new URL('./regression-seeds.json', import.meta.url), 'utf8')) as {
    seeds: RegressionSeed[];
  }
).seeds;
const budgetMs = Number(process.env['SIM_CI_MS'] ?? 180_000);

describe('raft simulator', () => {
  it.each(regression)('regression seed $seed ($profile) passes', ({ seed, profile }) => {
    const result = runSeed({ seed, profile });
    expect(result.violation).toBeUndefined();
    expect(result.stats.acknowledged).toBeGreaterThan(0);
  });

  it('the nemesis exercises every fault and feature it claims to (seeds 1-60, mixed)', () => {
    const totals = new Map<string, number>();
    for (let seed = 1; seed <= 60; seed++) {
      const { stats } = runSeed({ seed });
      for (const [key, value] of Object.entries(stats)) {
        totals.set(key, (totals.get(key) ?? 0) + value);
      }
    }
    // A simulator that silently stopped crashing nodes or installing snapshots would still pass
    // every seed; this catches that.
    for (const key of [
      'crashes',
      'lostWrites',
      'leaders',
      'reads',
      'transfers',
      'confChanges',
      'compactions',
      'snapshotsInstalled',
      'quietTicks',
      'disksLost',
      'replacements',
      'loads',
    ]) {
      expect(totals.get(key), key).toBeGreaterThan(0);
    }
  });

  it(
    'fresh random seeds pass for the time budget',
    () => {
      const first = Math.floor(Math.random() * 2 ** 31);
      console.log(`simulator: fresh seeds from ${first} for ${budgetMs} ms`);
      const started = Date.now();
      const failures: string[] = [];
      let seeds = 0;
      let events = 0;
      for (let seed = first; Date.now() - started < budgetMs; seed++) {
        const result = runSeed({ seed });
        seeds++;
        events += result.stats.events;
        if (!result.ok) failures.push(`seed ${seed}: ${result.violation ?? ''}`);
      }
      console.log(
        `simulator: ${seeds} seeds, ${events} events, ${(seeds / ((Date.now() - started) / 1000)).toFixed(1)} seeds/s`,
      );
      expect(failures).toEqual([]);
      expect(seeds).toBeGreaterThan(0);
    },
    budgetMs + 120_000,
  );
});
