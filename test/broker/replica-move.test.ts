import { describe, expect, it } from 'vitest';
import { nextMoveAction, type MoveView } from '../../src/broker/replica-move.js';

/**
 * The leader's next step of a replica move, from its view of the group: learner first, voter once
 * caught up, leadership handed on before the leader removes itself, then the source removed.
 */

function view(
  voters: number[],
  learners: number[] = [],
  match: Record<number, number> = {},
  self = 1,
): MoveView {
  return {
    self,
    conf: { voters, learners, removed: [] },
    lastIndex: 1_000,
    matchOf: (id) => (id in match ? { match: match[id] as number, recentActive: true } : undefined),
    promoteLagEntries: 64,
  };
}

describe('replica move steps', () => {
  it('adds the target as a learner, then promotes it once it is close behind', () => {
    expect(nextMoveAction(view([1, 2, 3]), 3, 4)).toEqual({
      kind: 'propose',
      change: { type: 'addLearner', node: 4 },
    });
    expect(nextMoveAction(view([1, 2, 3], [4], { 4: 500 }), 3, 4).kind).toBe('wait');
    expect(nextMoveAction(view([1, 2, 3], [4], { 4: 950 }), 3, 4)).toEqual({
      kind: 'propose',
      change: { type: 'addVoter', node: 4 },
    });
  });

  it('removes the source once the target votes, handing leadership on first if it leads', () => {
    expect(nextMoveAction(view([1, 2, 3, 4], [], { 2: 990, 3: 1_000, 4: 999 }), 3, 4)).toEqual({
      kind: 'propose',
      change: { type: 'removeNode', node: 3 },
    });
    // The leader is the source: the most caught-up other voter takes over.
    expect(nextMoveAction(view([1, 2, 3, 4], [], { 2: 990, 3: 1_000, 4: 999 }), 1, 4)).toEqual({
      kind: 'transfer',
      to: 3,
    });
    expect(nextMoveAction(view([1, 2, 4]), 3, 4)).toEqual({ kind: 'done' });
  });

  it('refuses a target removed from the group before; an abort takes the target out unless the move is done', () => {
    expect(
      nextMoveAction(
        { ...view([1, 2, 3]), conf: { voters: [1, 2, 3], learners: [], removed: [4] } },
        3,
        4,
      ).kind,
    ).toBe('refused');
    expect(nextMoveAction(view([1, 2, 3], [4]), 3, 4, true)).toEqual({
      kind: 'propose',
      change: { type: 'removeNode', node: 4 },
    });
    expect(nextMoveAction(view([1, 2, 3]), 3, 4, true)).toEqual({ kind: 'aborted' });
    expect(nextMoveAction(view([1, 2, 4]), 3, 4, true)).toEqual({ kind: 'done' });
  });
});
