import { describe, expect, it } from 'vitest';
import { MessageType, type NodeId } from '../../src/raft/types.js';
import { Cluster, entry, logOfTerms, msg, storageWith } from './harness.js';

/** Log compaction and snapshots (§7): a follower behind the compacted prefix gets the snapshot. */

function writes(c: Cluster, leader: NodeId, n: number, prefix = 'w'): string[] {
  const texts = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  for (const t of texts) c.propose(leader, t);
  c.stabilize();
  c.run(1);
  return texts;
}

describe('snapshots and compaction', () => {
  it('a follower behind the compacted prefix gets the snapshot, then ordinary appends', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    const before = writes(c, 1, 30);
    for (const id of [1, 2]) c.compact(id);
    expect(c.get(1).node.internals.log.firstIndex).toBeGreaterThan(30);
    c.recording = true;
    c.heal();
    const after = writes(c, 1, 5, 'x');
    c.run(3);
    const snaps = c.sent.filter((m) => m.type === MessageType.Snap && m.to === 3);
    expect(snaps.length).toBeGreaterThanOrEqual(1);
    expect(snaps.every((m) => m.catchUp === true)).toBe(true);
    expect(c.appliedTexts(3)).toEqual([...before, ...after]);
    expect(c.get(3).node.status().commit).toBe(c.get(1).node.status().commit);
    // The follower's log starts after the snapshot and matches the leader's from there.
    const leaderLog = c.log(1);
    expect(c.log(3).map((e) => [e.index, e.term])).toEqual(leaderLog.map((e) => [e.index, e.term]));
  });

  it('ignores a snapshot older than what it has committed', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    writes(c, 1, 10);
    const snapshot = c.compact(1);
    const follower = c.get(2).node;
    const committed = follower.status().commit;
    expect(committed).toBeGreaterThanOrEqual(snapshot.index);
    follower.step(
      msg({ type: MessageType.Snap, from: 1, to: 2, term: follower.status().term, snapshot }),
    );
    const ready = follower.ready();
    expect(ready.snapshot).toBeUndefined();
    expect(ready.messagesAfterPersist.find((m) => m.type === MessageType.AppResp)?.index).toBe(
      committed,
    );
    follower.advance(ready);
  });

  it('a snapshot arriving while a conflicting append is in flight leaves the follower consistent', () => {
    // Follower 3 holds a divergent suffix of an old term (Figure 7 style); the leader's log has
    // moved on and is compacted past it.
    const c = new Cluster([1, 2, 3]);
    c.start(1, storageWith(logOfTerms([1, 1, 3, 3, 3, 3]), { term: 3 }));
    c.start(2, storageWith(logOfTerms([1, 1, 3, 3, 3, 3]), { term: 3 }));
    c.start(3, storageWith(logOfTerms([1, 1, 2, 2, 2, 2, 2, 2]), { term: 2 }));
    c.isolate(3);
    c.elect(1);
    const texts = writes(c, 1, 10);
    for (const id of [1, 2]) c.compact(id);
    // An append the leader sent to 3 earlier (its first probe) is still in flight.
    const probe = msg({
      type: MessageType.App,
      from: 1,
      to: 3,
      term: c.get(1).node.status().term,
      index: 6,
      logTerm: 3,
      entries: [entry(7, 4, 'late')],
      commit: 6,
    });
    c.recording = true;
    c.heal();
    c.run(3);
    expect(c.sent.some((m) => m.type === MessageType.Snap && m.to === 3)).toBe(true);
    // The late append arrives after the snapshot: it is answered, and changes nothing.
    c.get(3).node.step(probe);
    c.run(3);
    expect(c.appliedTexts(3)).toEqual(c.appliedTexts(1));
    expect(c.appliedTexts(3)).toEqual(expect.arrayContaining(texts));
    expect(c.log(3).some((e) => e.term === 2)).toBe(false);
    expect(c.log(3).map((e) => `${e.index}:${e.term}`)).toEqual(
      c.log(1).map((e) => `${e.index}:${e.term}`),
    );
  });

  it('restarts from a snapshot and what follows it', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const first = writes(c, 1, 12);
    for (const id of [1, 2, 3]) c.compact(id);
    const second = writes(c, 1, 4, 's');
    for (const id of [1, 2, 3]) c.restart(id);
    c.run(20);
    const leader = c.leader() as NodeId;
    const third = writes(c, leader, 2, 't');
    for (const id of [1, 2, 3]) expect(c.appliedTexts(id)).toEqual([...first, ...second, ...third]);
  });

  it('sends a lost snapshot again', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    writes(c, 1, 10);
    for (const id of [1, 2]) c.compact(id);
    c.heal();
    let dropped = 0;
    c.drop = (m) => m.type === MessageType.Snap && dropped++ === 0;
    c.recording = true;
    c.run(30);
    expect(dropped).toBeGreaterThanOrEqual(2);
    expect(c.appliedTexts(3)).toEqual(c.appliedTexts(1));
  });
});
