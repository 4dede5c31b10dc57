import { describe, expect, it } from 'vitest';
import { ProposalDroppedError } from '../../src/raft/errors.js';
import type { ConfChange, NodeId } from '../../src/raft/types.js';
import { Cluster } from './harness.js';

/**
 * Membership changes: learners, promotion, removal (the leader's own too), one change at a time,
 * and ids never reused. A change is in force on each replica once it is in its log.
 */

/** A group of `voters` with spare replicas `others` running but not yet members. */
function group(voters: NodeId[], others: NodeId[] = []): Cluster {
  return new Cluster([...voters, ...others], () => ({ voters }));
}

function change(c: Cluster, leader: NodeId, cc: ConfChange): void {
  c.get(leader).node.proposeConfChange(cc);
  c.stabilize();
  c.run(1);
}

function conf(c: Cluster, id: NodeId) {
  return c.get(id).node.internals.confState;
}

describe('membership changes', () => {
  it('a learner receives the log but does not count toward commit or campaign', () => {
    const c = group([1, 2, 3], [4]);
    c.elect(1);
    c.run(1);
    change(c, 1, { type: 'addLearner', node: 4 });
    c.propose(1, 'a');
    c.run(2);
    expect(c.appliedTexts(4)).toEqual(['a']);
    expect(conf(c, 4)).toEqual({ voters: [1, 2, 3], learners: [4], removed: [] });
    // With two voters cut off, the leader and the learner are no quorum: nothing commits.
    c.isolate(2);
    c.isolate(3);
    const commit = c.get(1).node.status().commit;
    c.propose(1, 'b');
    c.run(3);
    expect(c.get(1).node.status().commit).toBe(commit);
    // A learner never campaigns, however long it waits.
    c.heal();
    c.isolate(1);
    for (let i = 0; i < 100; i++) c.tick(4);
    c.stabilize();
    expect(c.get(4).node.status().role).toBe('follower');
    expect(c.get(4).node.status().term).toBe(c.get(1).node.status().term);
  });

  it('a promoted learner becomes a voter that counts toward commit', () => {
    const c = group([1, 2, 3], [4]);
    c.elect(1);
    c.run(1);
    change(c, 1, { type: 'addLearner', node: 4 });
    change(c, 1, { type: 'addVoter', node: 4 });
    expect(conf(c, 1).voters).toEqual([1, 2, 3, 4]);
    // Four voters: a quorum is three. Leader + 4 + one more commits; leader + 4 alone does not.
    c.isolate(2);
    c.isolate(3);
    c.propose(1, 'two of four');
    c.run(3);
    expect(c.appliedTexts(1)).not.toContain('two of four');
    c.heal();
    c.isolate(3);
    c.run(3);
    expect(c.appliedTexts(1)).toContain('two of four');
  });

  it('removing a voter shrinks the quorum, and its id can never come back', () => {
    const c = group([1, 2, 3]);
    c.elect(1);
    c.run(1);
    change(c, 1, { type: 'removeNode', node: 3 });
    expect(conf(c, 1)).toEqual({ voters: [1, 2], learners: [], removed: [3] });
    expect(() => c.get(1).node.proposeConfChange({ type: 'addLearner', node: 3 })).toThrow(
      /never reused/,
    );
    expect(() => c.get(1).node.proposeConfChange({ type: 'addVoter', node: 3 })).toThrow(
      ProposalDroppedError,
    );
  });

  it('a server that is not part of its own latest configuration still starts elections until that configuration commits (§4.2.2)', () => {
    // Found by the simulator (seed 555609315): a leader appended its own removal, lost its
    // quorum before the entry reached anyone, and stepped down. The others' logs are shorter, so
    // it refuses them its vote; and they need it, because voter 4 is down. Only it can be
    // elected, under the configuration that excludes it.
    const c = group([1, 2, 3, 4]);
    c.elect(1);
    c.run(1);
    c.isolate(1);
    c.isolate(4);
    change(c, 1, { type: 'removeNode', node: 1 });
    expect(conf(c, 1).voters).toEqual([2, 3, 4]);
    expect(conf(c, 2).voters).toEqual([1, 2, 3, 4]);
    c.run(30); // check-quorum: the isolated leader steps down
    expect(c.leadersAmong([1, 2, 3])).toEqual([]);
    c.heal();
    c.isolate(4);
    let leader: NodeId | undefined;
    for (let i = 0; i < 200 && leader === undefined; i++) {
      c.run(1);
      leader = c.leadersAmong([2, 3])[0];
    }
    // Replica 1 led long enough to commit its removal with 2 and 3, then left the group.
    expect(leader).toBeDefined();
    expect(conf(c, 2)).toEqual({ voters: [2, 3, 4], learners: [], removed: [1] });
    c.propose(leader as NodeId, 'after');
    c.run(2);
    expect(c.appliedTexts(3)).toContain('after');
    // Its removal committed, replica 1 no longer campaigns.
    const term = c.get(leader as NodeId).node.status().term;
    for (let i = 0; i < 60; i++) c.tick(1);
    c.stabilize();
    expect(c.leadersAmong([1])).toEqual([]);
    expect(c.get(leader as NodeId).node.status().term).toBe(term);
  });

  it('a leader that removes itself steps down once the change commits; the rest elect a leader', () => {
    const c = group([1, 2, 3]);
    c.elect(1);
    c.run(1);
    change(c, 1, { type: 'removeNode', node: 1 });
    expect(c.get(1).node.status().role).toBe('follower');
    let leader: NodeId | undefined;
    for (let i = 0; i < 60 && leader === undefined; i++) {
      c.run(1);
      leader = c.leadersAmong([2, 3])[0];
    }
    expect(leader).toBeDefined();
    c.propose(leader as NodeId, 'after');
    c.run(2);
    expect(c.appliedTexts(2)).toContain('after');
    expect(c.appliedTexts(3)).toContain('after');
    // The removed replica does not campaign.
    for (let i = 0; i < 60; i++) c.tick(1);
    c.stabilize();
    expect(c.leadersAmong([1])).toEqual([]);
  });

  it('allows one change at a time', () => {
    const c = group([1, 2, 3], [4, 5]);
    c.elect(1);
    c.run(1);
    c.get(1).node.proposeConfChange({ type: 'addLearner', node: 4 });
    expect(() => c.get(1).node.proposeConfChange({ type: 'addLearner', node: 5 })).toThrow(
      /in progress/,
    );
    c.stabilize();
    c.run(1);
    expect(() => c.get(1).node.proposeConfChange({ type: 'addLearner', node: 5 })).not.toThrow();
  });

  it('a new leader proposes no change before it has committed an entry of its own term', () => {
    const c = group([1, 2, 3], [4]);
    c.elect(1);
    // Elected, and its empty entry committed: changes are allowed.
    expect(() => c.get(1).node.proposeConfChange({ type: 'addLearner', node: 4 })).not.toThrow();
    const d = group([1, 2, 3], [4]);
    d.get(1).node.campaign();
    d.processReady(1); // vote requests out, nothing back yet
    d.deliver();
    for (const id of [2, 3]) d.processReady(id);
    d.deliver();
    expect(d.get(1).node.status().role).toBe('leader');
    expect(() => d.get(1).node.proposeConfChange({ type: 'addLearner', node: 4 })).toThrow(
      /committed nothing/,
    );
  });

  it('survives restarts: the membership is rebuilt from the change entries in the log', () => {
    const c = group([1, 2, 3], [4]);
    c.elect(1);
    c.run(1);
    change(c, 1, { type: 'addLearner', node: 4 });
    change(c, 1, { type: 'addVoter', node: 4 });
    change(c, 1, { type: 'removeNode', node: 2 });
    for (const id of [1, 3, 4]) c.restart(id);
    // The membership in force comes from the change entries in the log.
    for (const id of [1, 3, 4]) {
      expect(conf(c, id)).toEqual({ voters: [1, 3, 4], learners: [], removed: [2] });
    }
  });

  it('the unsafe switch lets a second change in before the first commits (for the simulator)', () => {
    const c = new Cluster([1, 2, 3, 4, 5], () => ({
      voters: [1, 2, 3],
      unsafe: { concurrentConfChanges: true },
    }));
    c.elect(1);
    c.run(1);
    c.get(1).node.proposeConfChange({ type: 'addLearner', node: 4 });
    expect(() => c.get(1).node.proposeConfChange({ type: 'addLearner', node: 5 })).not.toThrow();
    expect(conf(c, 1).learners).toEqual([4, 5]);
  });
});

describe('membership is in force once in the log', () => {
  it('a replica uses a change as soon as it is appended, and reverts if the entry is overwritten', () => {
    const c = group([1, 2, 3], [4]);
    c.elect(1);
    c.run(1);
    // The leader appends the change but is cut off before anyone else gets it.
    c.isolate(1);
    c.get(1).node.proposeConfChange({ type: 'addLearner', node: 4 });
    expect(conf(c, 1).learners).toEqual([4]);
    // The others elect a leader that never saw the change and write over it.
    let leader: NodeId | undefined;
    for (let i = 0; i < 100 && leader === undefined; i++) {
      c.run(1);
      leader = c.leadersAmong([2, 3])[0];
    }
    c.propose(leader as NodeId, 'overwrite');
    c.run(1);
    c.heal();
    c.run(3);
    expect(c.log(1).some((e) => e.type === 2)).toBe(false);
    expect(conf(c, 1).learners).toEqual([]);
  });

  it('a promoted learner that has not applied its promotion still grants votes', () => {
    const c = group([1, 2, 3], [4]);
    c.elect(1);
    c.run(1);
    change(c, 1, { type: 'addLearner', node: 4 });
    // A learner is asked for its vote: it answers on the log alone, like any replica.
    const learner = c.get(4).node;
    learner.step({
      type: 'MsgVote' as never,
      from: 2,
      to: 4,
      term: learner.status().term + 1,
      index: learner.status().lastIndex,
      logTerm: learner.status().lastTerm,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      force: true,
      context: '',
    });
    const ready = learner.ready();
    expect(ready.messagesAfterPersist.some((m) => m.type === 'MsgVoteResp' && !m.reject)).toBe(
      true,
    );
    learner.advance(ready);
  });
});
