import { describe, expect, it } from 'vitest';
import { ProposalDroppedError } from '../../src/raft/errors.js';
import type { NodeId, ReadState } from '../../src/raft/types.js';
import { Cluster } from './harness.js';

/** Leadership transfer (thesis §3.10) and ReadIndex reads (thesis §6.4). */

function collectReads(c: Cluster): Map<NodeId, ReadState[]> {
  const reads = new Map<NodeId, ReadState[]>();
  c.onReady = (id, ready) => {
    if (ready.readStates.length === 0) return;
    reads.set(id, [...(reads.get(id) ?? []), ...ready.readStates]);
  };
  return reads;
}

describe('leadership transfer', () => {
  it('hands leadership to an up-to-date follower in the next term', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const before = c.get(1).node.status().term;
    c.get(1).node.transferLeadership(2);
    c.stabilize();
    expect(c.leader()).toBe(2);
    expect(c.get(2).node.status().term).toBe(before + 1);
    expect(c.get(1).node.status().role).toBe('follower');
  });

  it('catches a lagging transferee up first, refusing proposals meanwhile', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 20; i++) c.propose(1, `w${i}`);
    c.stabilize();
    c.heal();
    c.get(1).node.transferLeadership(3);
    expect(() => c.propose(1, 'during transfer')).toThrow(ProposalDroppedError);
    c.stabilize();
    c.tickAll();
    c.stabilize();
    expect(c.leader()).toBe(3);
    // The new leader has everything the old one committed.
    expect(c.appliedTexts(3).slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => `w${i}`));
  });

  it('is abandoned after an election timeout if the transferee does not answer', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    c.propose(1, 'x');
    c.stabilize();
    c.get(1).node.transferLeadership(3);
    expect(() => c.propose(1, 'y')).toThrow(ProposalDroppedError);
    for (let i = 0; i < 12; i++) {
      c.tick(1);
      c.stabilize();
    }
    expect(c.leader()).toBe(1);
    expect(() => c.propose(1, 'z')).not.toThrow();
  });

  it('lets the transferee win even though the other followers are in their lease', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.tickAll(); // followers have heard from the leader: a plain vote request would be ignored
    c.stabilize();
    c.get(1).node.transferLeadership(2);
    c.stabilize();
    expect(c.leader()).toBe(2);
  });
});

describe('ReadIndex', () => {
  it('answers on the leader after a quorum confirms its leadership, with the commit index', () => {
    const c = new Cluster([1, 2, 3]);
    const reads = collectReads(c);
    c.elect(1);
    c.propose(1, 'a');
    c.stabilize();
    const commit = c.get(1).node.status().commit;
    c.get(1).node.readIndex('r1');
    expect(reads.get(1)).toBeUndefined(); // not before the heartbeat round
    c.stabilize();
    expect(reads.get(1)).toEqual([{ index: commit, context: 'r1' }]);
  });

  it('forwards a follower read to the leader and answers on the follower', () => {
    const c = new Cluster([1, 2, 3]);
    const reads = collectReads(c);
    c.elect(1);
    c.propose(1, 'a');
    c.stabilize();
    c.get(2).node.readIndex('f1');
    c.stabilize();
    expect(reads.get(2)).toEqual([{ index: c.get(1).node.status().commit, context: 'f1' }]);
  });

  it('a leader cut off by a partition cannot answer reads; the majority side moves on', () => {
    const c = new Cluster([1, 2, 3]);
    const reads = collectReads(c);
    c.elect(1);
    c.propose(1, 'old');
    c.stabilize();
    c.isolate(1);
    c.get(1).node.readIndex('stale');
    c.stabilize();
    expect(reads.get(1)).toBeUndefined();
    // The majority side elects a new leader (once the old one's lease has run out) and writes.
    let newLeader: NodeId | undefined;
    for (let i = 0; i < 100 && newLeader === undefined; i++) {
      c.run(1);
      newLeader = c.leadersAmong([2, 3])[0];
    }
    expect(newLeader).toBeDefined();
    const leader = newLeader as NodeId;
    c.propose(leader, 'new');
    c.stabilize();
    c.get(leader).node.readIndex('fresh');
    c.stabilize();
    const fresh = reads.get(leader)?.[0];
    expect(fresh?.context).toBe('fresh');
    expect(fresh?.index).toBe(c.get(leader).node.status().commit);
    expect(c.appliedTexts(leader)).toContain('new');
    // The old leader never answered: it could not confirm it still led.
    expect(reads.get(1)).toBeUndefined();
  });

  it('waits for the first commit of a new leader term before answering', () => {
    const c = new Cluster([1, 2, 3]);
    const reads = collectReads(c);
    c.elect(1);
    c.propose(1, 'a');
    c.stabilize();
    // Move leadership to 2 one message at a time, and cut 2 off the moment it leads, before
    // the empty entry of its term can commit.
    c.get(1).node.transferLeadership(2);
    for (let i = 0; i < 100 && c.get(2).node.status().role !== 'leader'; i++) {
      for (const id of [1, 2, 3]) c.processReady(id);
      c.deliver((m) => m.to === 2 || m.type !== 'MsgApp');
    }
    const leader2 = c.get(2).node;
    expect(leader2.status().role).toBe('leader');
    c.isolate(2);
    c.inFlight = [];
    expect(leader2.internals.log.term(leader2.status().commit)).not.toBe(leader2.status().term);
    leader2.readIndex('early');
    c.stabilize();
    expect(reads.get(2)).toBeUndefined();
    c.heal();
    c.run(2);
    expect(reads.get(2)?.[0]?.context).toBe('early');
    expect(reads.get(2)?.[0]?.index).toBeGreaterThanOrEqual(3);
  });

  it('answers at once in a single-voter group', () => {
    const c = new Cluster([1]);
    const reads = collectReads(c);
    c.elect(1);
    c.get(1).node.readIndex('solo');
    c.stabilize();
    expect(reads.get(1)?.[0]?.context).toBe('solo');
  });
});
