import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.js';

describe('raft smoke', () => {
  it('elects a leader, replicates and commits on all three', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    expect(c.leader()).toBe(1);
    c.propose(1, 'a');
    c.propose(1, 'b');
    c.stabilize();
    c.tickAll(); // heartbeats carry the commit index to followers
    c.stabilize();
    for (const id of [1, 2, 3]) expect(c.appliedTexts(id)).toEqual(['a', 'b']);
  });
});
