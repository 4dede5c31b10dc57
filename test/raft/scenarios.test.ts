/**
 * etcd's classic whole-group scenarios (raft_test.go): a partitioned old leader, a follower with a
 * long divergent log, a slow disk on the leader, a leader that crashes and restarts, dueling
 * candidates, old messages, and appends lost while the inflight window is full.
 */
import { describe, expect, it } from 'vitest';
import type { RaftConfig } from '../../src/raft/config.js';
import { ProgressState } from '../../src/raft/progress.js';
import { MessageType, NONE, Role, type NodeId } from '../../src/raft/types.js';
import { Cluster, PAPER, entry, ids, isApp, msg } from './harness.js';

const ELECTION = 10;

/** Runs the group until one of `among` leads (at most `max` ticks); returns it. */
function runUntilLeader(c: Cluster, among: readonly NodeId[], max = 20 * ELECTION): NodeId {
  for (let i = 0; i < max; i++) {
    const leaders = c.leadersAmong(among);
    if (leaders.length === 1) return leaders[0] as NodeId;
    c.run(1);
  }
  throw new Error(`no leader among ${among.join(', ')} after ${max} ticks`);
}

const texts = (c: Cluster, id: NodeId): string[] =>
  c.log(id).map((e) => new TextDecoder().decode(e.data));

describe('a partitioned old leader', () => {
  const configs: [string, Partial<RaftConfig>][] = [
    ['pre-vote and check-quorum', {}],
    ['the paper alone', PAPER],
  ];
  for (const [name, config] of configs) {
    it(`cannot commit; once healed it steps down and its entries are overwritten (${name})`, () => {
      // init
      const c = new Cluster([1, 2, 3, 4, 5], () => config);
      c.elect(1);
      c.propose(1, 'a');
      c.stabilize();
      c.run(1);
      // act: 1 and 2 are cut off from 3, 4 and 5; the old leader keeps taking proposals
      c.partition([1, 2], [3, 4, 5]);
      c.propose(1, 'lost-1');
      c.propose(1, 'lost-2');
      c.stabilize();
      const commit = c.get(1).node.status().commit;
      const lead = runUntilLeader(c, [3, 4, 5]);
      c.propose(lead, 'b');
      c.stabilize();
      c.run(ELECTION);
      // check: the minority never committed its entries; the majority moved on
      expect(c.get(1).node.status().commit).toBe(commit);
      expect(c.appliedTexts(1)).toEqual(['a']);
      expect(c.appliedTexts(lead)).toEqual(['a', 'b']);
      expect(texts(c, 2)).toContain('lost-2');
      // check-quorum has made the old leader give up by now; without it, it still believes
      expect(c.get(1).node.status().role).toBe(
        name === 'the paper alone' ? Role.Leader : Role.Follower,
      );
      // act: heal
      c.heal();
      c.run(3 * ELECTION);
      // check
      const term = c.get(lead).node.status().term;
      expect(c.leadersAmong()).toEqual([lead]);
      for (const id of c.ids) {
        expect(c.get(id).node.status()).toMatchObject({ term, lead });
        expect(c.log(id)).toEqual(c.log(lead));
        expect(texts(c, id)).not.toContain('lost-1');
        expect(c.appliedTexts(id)).toEqual(['a', 'b']);
      }
    });
  }
});

describe('a follower with a long divergent log', () => {
  it('is repaired in a few round trips, whatever the length of the divergence', () => {
    // init: 3 leads term 1, is cut off, and appends 300 entries nobody else has
    const c = new Cluster([1, 2, 3]);
    c.elect(3);
    c.propose(3, 'base');
    c.stabilize();
    c.run(1);
    c.isolate(3);
    for (let i = 0; i < 300; i++) {
      c.propose(3, `stale-${i}`);
      if (i % 10 === 9) c.stabilize();
    }
    c.stabilize();
    // the others elect a leader of their own and commit 50 entries
    const lead = runUntilLeader(c, [1, 2]);
    const other = lead === 1 ? 2 : 1;
    for (let i = 0; i < 50; i++) c.propose(lead, `new-${i}`);
    c.stabilize();
    c.run(2 * ELECTION);
    expect(c.get(3).node.status().role).not.toBe(Role.Leader); // check-quorum
    // ...and a later leader, whose first probe to 3 starts at the end of that longer log
    c.restart(lead);
    const lead2 = runUntilLeader(c, [1, 2]);
    c.propose(lead2, 'newest');
    c.stabilize();
    expect(c.log(3)).toHaveLength(302);
    // act
    c.recording = true;
    c.heal();
    c.run(3);
    // check
    expect(c.log(3)).toEqual(c.log(lead2));
    expect(c.log(lead === lead2 ? other : lead)).toEqual(c.log(lead2));
    expect(texts(c, 3).filter((t) => t.startsWith('stale'))).toEqual([]);
    expect(c.appliedTexts(3)).toEqual(c.appliedTexts(lead2));
    expect(c.appliedTexts(3)).toHaveLength(52);
    const rejections = c.sent.filter(
      (m) => m.type === MessageType.AppResp && m.from === 3 && m.reject,
    );
    expect(rejections.length).toBeGreaterThan(0);
    expect(rejections.length).toBeLessThanOrEqual(2);
    expect(
      c.sent.filter((m) => isApp(m) && m.to === 3 && m.entries.length > 0).length,
    ).toBeLessThan(5);
  });
});

describe('a slow disk on the leader', () => {
  // Thesis §10.2.1: the leader "can write to its disk in parallel with replicating to its
  // followers". maybeCommit takes the quorum-th largest of (the leader's durable index, each
  // follower's acknowledged index), and only for an entry of the current term.
  it('three replicas: both followers durable make a majority without the leader, which applies only once its own write lands', () => {
    // init
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.run(1);
    c.slowDisk.add(1);
    // act
    const { index } = c.propose(1, 'x');
    c.processReady(1);
    c.stabilize();
    // check
    expect(c.get(1).node.status()).toMatchObject({ commit: index, stable: index - 1 });
    expect(c.appliedTexts(1)).toEqual([]);
    expect(c.hasUnsynced(1)).toBe(true);
    // act: the disk catches up
    c.slowDisk.delete(1);
    c.sync(1);
    c.stabilize();
    c.run(1);
    // check
    for (const id of c.ids) expect(c.appliedTexts(id)).toEqual(['x']);
  });

  const table: [acks: NodeId[], commits: boolean][] = [
    [[2], false],
    [[2, 3], false],
    [[2, 3, 4], true],
    [[2, 3, 4, 5], true],
  ];
  for (const [acks, commits] of table) {
    it(`five replicas, leader's write pending, acks from [${acks.join(', ')}]: ${commits ? 'commits' : 'waits for the leader'}`, () => {
      // init
      const c = new Cluster([1, 2, 3, 4, 5]);
      c.elect(1);
      c.run(1);
      for (const id of [2, 3, 4, 5]) if (!acks.includes(id)) c.isolate(id);
      c.slowDisk.add(1);
      // act
      const { index } = c.propose(1, 'x');
      c.processReady(1);
      c.stabilize();
      // check
      for (const id of acks) expect(c.log(id).at(-1)?.index).toBe(index);
      expect(c.get(1).node.status().commit).toBe(commits ? index : index - 1);
      expect(c.appliedTexts(1)).toEqual([]);
      // act: the leader's write lands
      c.sync(1);
      c.stabilize();
      // check: with it, one follower short of a majority is enough
      expect(c.get(1).node.status().commit).toBe(acks.length >= 2 ? index : index - 1);
    });
  }
});

describe('a leader that crashes', () => {
  it('restarts from its persisted state and rejoins; what a majority held survives', () => {
    // init
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    c.propose(1, 'b');
    c.stabilize();
    c.run(1);
    // act: 'c' reaches both followers' disks, but the leader crashes before its own write
    c.slowDisk.add(1);
    c.propose(1, 'c');
    c.processReady(1);
    c.stabilize();
    const persisted = c.get(1).storage.hardState;
    c.slowDisk.delete(1);
    c.restart(1);
    // check: the restarted replica is what its disk says, nothing more
    expect(c.get(1).node.status()).toMatchObject({
      role: Role.Follower,
      term: persisted.term,
      vote: persisted.vote,
      lastIndex: 3,
      commit: persisted.commit,
    });
    expect(texts(c, 1)).not.toContain('c');
    // act: time passes
    const lead = runUntilLeader(c, c.ids);
    c.propose(lead, 'd');
    c.stabilize();
    c.run(2);
    // check
    expect([2, 3]).toContain(lead);
    for (const id of c.ids) {
      expect(c.log(id)).toEqual(c.log(lead));
      expect(c.appliedTexts(id)).toEqual(['a', 'b', 'c', 'd']);
    }
  });

  it('a whole group restarted from disk keeps every committed entry and its terms', () => {
    // init
    const c = new Cluster([1, 2, 3]);
    c.elect(2);
    for (const t of ['a', 'b', 'c']) c.propose(2, t);
    c.stabilize();
    c.run(1);
    const terms = c.ids.map((id) => c.get(id).storage.hardState.term);
    // act
    for (const id of c.ids) c.restart(id);
    const lead = runUntilLeader(c, c.ids);
    c.propose(lead, 'd');
    c.stabilize();
    c.run(1);
    // check
    for (const [i, id] of c.ids.entries()) {
      expect(c.get(id).node.status().term).toBeGreaterThan(terms[i] as number);
      expect(c.appliedTexts(id)).toEqual(['a', 'b', 'c', 'd']);
    }
  });
});

describe('dueling candidates', () => {
  // etcd TestDuelingCandidates.
  it('a candidate with a stale log forces a new term but cannot win it', () => {
    // init: 1 and 3 cannot talk
    const c = new Cluster([1, 2, 3], () => PAPER);
    c.cutLink(1, 3);
    c.cutLink(3, 1);
    // act: 1 wins term 1 with 2's vote; 3 campaigns in term 1 too and 2 refuses
    c.elect(1);
    c.elect(3);
    // check
    expect(c.get(1).node.status()).toMatchObject({ role: Role.Leader, term: 1 });
    expect(c.get(3).node.status()).toMatchObject({ role: Role.Candidate, term: 1 });
    // act: the link comes back; 3 campaigns again
    c.heal();
    c.elect(3);
    // check: everybody moved to term 2, nobody leads it, the logs are untouched
    for (const id of c.ids) {
      expect(c.get(id).node.status()).toMatchObject({ role: Role.Follower, term: 2, lead: NONE });
    }
    expect(ids(c.log(1))).toEqual(['1@1']);
    expect(ids(c.log(2))).toEqual(['1@1']);
    expect(c.log(3)).toEqual([]);
    expect(c.get(2).node.status().commit).toBe(1);
    // act: time passes
    const lead = runUntilLeader(c, c.ids);
    // check
    expect([1, 2]).toContain(lead);
    for (const id of c.ids) expect(c.log(id)).toEqual(c.log(lead));
  });

  // etcd TestDuelingPreCandidates.
  it('with pre-vote, the stale candidate never even raises the term', () => {
    // init
    const c = new Cluster([1, 2, 3]);
    c.cutLink(1, 3);
    c.cutLink(3, 1);
    c.elect(1);
    // act: 3 times out while cut off from 1, then again after the link heals
    for (let round = 0; round < 2; round++) {
      let ticks = 0;
      while (c.get(3).node.status().role !== Role.PreCandidate && ticks++ < 4 * ELECTION) c.tick(3);
      c.stabilize();
      if (round === 0) c.heal();
    }
    c.run(3 * ELECTION);
    // check
    expect(c.leadersAmong()).toEqual([1]);
    for (const id of c.ids) expect(c.get(id).node.status()).toMatchObject({ term: 1, lead: 1 });
    expect(c.log(3)).toEqual(c.log(1));
  });
});

describe('old messages', () => {
  // etcd TestOldMessages: "an old leader's append of an earlier term must be ignored".
  it('an append from the leader of an earlier term arriving late changes nothing', () => {
    // init: terms 1 (leader 1), 2 (leader 2), 3 (leader 1)
    const c = new Cluster([1, 2, 3], () => PAPER);
    c.elect(1);
    c.elect(2);
    c.elect(1);
    expect(ids(c.log(1))).toEqual(['1@1', '2@2', '3@3']);
    // act: term 2's leader's append for index 4 arrives now
    c.get(1).node.step(
      msg({
        type: MessageType.App,
        from: 2,
        to: 1,
        term: 2,
        index: 3,
        logTerm: 2,
        entries: [entry(4, 2)],
      }),
    );
    c.propose(1, 'x');
    c.stabilize();
    c.run(1);
    // check
    for (const id of c.ids) {
      expect(ids(c.log(id))).toEqual(['1@1', '2@2', '3@3', '4@3']);
      expect(c.appliedTexts(id)).toEqual(['x']);
    }
  });
});

describe('appends lost while the inflight window is full', () => {
  // etcd raft.go (stepLeader, MsgHeartbeatResp): "if the follower is paused (full Inflights),
  // this will still send an empty append, allowing it to recover from situations in which all
  // the messages that filled up Inflights in the first place were dropped."
  it('a follower whose whole window of appends was lost catches up once it answers heartbeats', () => {
    // init: a window of two appends; 3 is in replicate state
    const c = new Cluster([1, 2, 3], () => ({ maxInflightMsgs: 2 }));
    c.elect(1);
    c.propose(1, 'a');
    c.stabilize();
    c.run(1);
    expect(c.get(1).node.internals.progressOf(3)?.state).toBe(ProgressState.Replicate);
    // act: while 3 is cut off, four proposals go out in four appends; two fill the window
    c.isolate(3);
    for (let i = 0; i < 4; i++) {
      c.propose(1, `p${i}`);
      c.stabilize();
    }
    expect(c.get(1).node.internals.progressOf(3)?.inflights.count).toBe(2);
    c.heal();
    c.run(5 * ELECTION);
    // check: 3 hears heartbeats and answers them; it must get the entries too
    expect(c.get(3).node.status().lead).toBe(1);
    expect(c.log(3)).toEqual(c.log(1));
    expect(c.appliedTexts(3)).toEqual(['a', 'p0', 'p1', 'p2', 'p3']);
  });

  it('the same with a window that is not full recovers (for contrast)', () => {
    // init
    const c = new Cluster([1, 2, 3], () => ({ maxInflightMsgs: 8 }));
    c.elect(1);
    c.propose(1, 'a');
    c.stabilize();
    c.run(1);
    // act
    c.isolate(3);
    for (let i = 0; i < 4; i++) {
      c.propose(1, `p${i}`);
      c.stabilize();
    }
    c.heal();
    c.run(5 * ELECTION);
    // check
    expect(c.log(3)).toEqual(c.log(1));
    expect(c.appliedTexts(3)).toEqual(['a', 'p0', 'p1', 'p2', 'p3']);
  });
});
