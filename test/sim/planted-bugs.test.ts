import { describe, expect, it } from 'vitest';
import { runSeed, type SimOptions } from './simulation.js';

/**
 * A checker that cannot fail is no check. Each test switches off one safety rule and requires the
 * simulator to report a safety violation (not merely a stall) within a bounded number of seeds,
 * and the seed that catches it to pass with the rule on.
 */

type Planted = Omit<SimOptions, 'seed' | 'trace' | 'profile'>;
type Profile = 'churn' | 'membership';

function firstViolation(
  bug: Planted,
  profile: Profile,
  maxSeeds: number,
): { seed: number; violation: string } | undefined {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    const result = runSeed({ seed, profile, ...bug });
    if (!result.ok && result.violation !== undefined && !result.violation.startsWith('liveness')) {
      return { seed, violation: result.violation };
    }
  }
  return undefined;
}

const cases: Array<[string, Planted, Profile, number]> = [
  [
    'the current-term commit rule (Figure 8)',
    { unsafe: { commitEntriesOfEarlierTerms: true } },
    'churn',
    1000,
  ],
  [
    'the up-to-date check in votes (§5.4.1)',
    { unsafe: { voteWithoutLogCheck: true } },
    'churn',
    50,
  ],
  [
    'persist before acknowledging (the host sends acks before fsync)',
    { ackBeforePersist: true },
    'churn',
    300,
  ],
  [
    'the quorum check of ReadIndex (thesis §6.4)',
    { unsafe: { readWithoutQuorumCheck: true } },
    'membership',
    300,
  ],
  [
    'one membership change at a time, after a commit in the term',
    { unsafe: { concurrentConfChanges: true } },
    'membership',
    500,
  ],
  [
    'ignoring snapshots older than the commit index',
    { unsafe: { installOlderSnapshots: true } },
    'churn',
    1500,
  ],
  [
    'retiring the id of a replica that lost its disk (it rejoins under its old id, empty)',
    { rejoinWithEmptyDisk: true },
    'membership',
    400,
  ],
];

describe('planted bugs are caught', () => {
  it.each(cases)(
    'without %s, the simulator reports a violation',
    (_name, bug, profile, maxSeeds) => {
      const found = firstViolation(bug, profile, maxSeeds);
      expect(found, `no violation within ${maxSeeds} seeds`).toBeDefined();
      console.log(`caught at seed ${found?.seed}: ${found?.violation}`);
      const clean = runSeed({ seed: found?.seed ?? 0, profile });
      expect(clean.violation).toBeUndefined();
    },
    120_000,
  );
});
