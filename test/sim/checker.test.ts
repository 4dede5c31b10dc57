import { describe, expect, it } from 'vitest';
import { EntryType, type Entry } from '../../src/raft/types.js';
import { SafetyChecker, SimViolation } from './checker.js';

/** The simulator's own checks, on hand-made observations. */

function entry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(`v${index}`) };
}

describe('leader completeness check', () => {
  it('binds leaders of terms after the one in which an entry was committed, and no others', () => {
    const checker = new SafetyChecker();
    // Entry 5 of term 2 is committed by the leader of term 4 (found by seed 1608486626: a leader
    // of term 3, elected late on votes given before the commit, rightly lacks it).
    checker.observeLeaderCommit(4, 5);
    checker.observeApply(1, entry(5, 2), 4);
    const lacking = (i: number) => (i === 5 ? 3 : 2);
    expect(() => checker.checkLeaderComplete(2, 3, lacking)).not.toThrow();
    expect(() => checker.checkLeaderComplete(3, 5, lacking)).toThrow(SimViolation);
    expect(() => checker.checkLeaderComplete(3, 5, () => 2)).not.toThrow();
  });

  it('without a leader seen committing it, uses the term of the first replica to apply it', () => {
    const checker = new SafetyChecker();
    checker.observeApply(1, entry(1, 1), 2);
    expect(() => checker.checkLeaderComplete(2, 2, () => 9)).not.toThrow();
    expect(() => checker.checkLeaderComplete(2, 3, () => 9)).toThrow(/leader completeness/);
  });
});
