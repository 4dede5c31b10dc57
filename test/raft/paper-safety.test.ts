/**
 * Safety (§5.4 of the Raft paper), the persistence rules of Figure 2, and the properties of
 * Figure 3 checked under random schedules. Each test quotes what it checks; where the library has
 * an `unsafe` switch for the rule, the same test runs with the switch on and shows the violation,
 * so that the test is known to be able to fail.
 */
import { describe, expect, it } from 'vitest';
import type { RaftConfig } from '../../src/raft/config.js';
import { CorruptStateError, ProposalDroppedError } from '../../src/raft/errors.js';
import { RawNode, type Ready } from '../../src/raft/raw-node.js';
import {
  MessageType,
  NONE,
  Role,
  type Entry,
  type Message,
  type NodeId,
} from '../../src/raft/types.js';
import {
  Cluster,
  PAPER,
  Solo,
  entry,
  ids,
  isApp,
  logOfTerms,
  msg,
  seededRandom,
  soloLeader,
  storageWith,
  text,
} from './harness.js';

/** Indexes at which two replicas applied different entries (State Machine Safety violations). */
function conflicts(c: Cluster): number[] {
  const byIndex = new Map<number, Entry>();
  const out = new Set<number>();
  for (const id of c.ids) {
    for (const e of c.get(id).applied) {
      const seen = byIndex.get(e.index);
      if (seen === undefined) byIndex.set(e.index, e);
      else if (seen.term !== e.term || text(seen) !== text(e)) out.add(e.index);
    }
  }
  return [...out].sort((a, b) => a - b);
}

describe('§5.4.1 election restriction', () => {
  // §5.4.1: "Raft determines which of two logs is more up-to-date by comparing the index and term
  // of the last entries in the logs. If the logs have last entries with different terms, then the
  // log with the later term is more up-to-date. If the logs end with the same term, then whichever
  // log is longer is more up-to-date." And: "the voter denies its vote if its own log is more
  // up-to-date than that of the candidate."
  const table: [
    voterLog: number[],
    candidateLastTerm: number,
    candidateLastIndex: number,
    reject: boolean,
  ][] = [
    // same last term: length decides
    [[1], 1, 1, false],
    [[1], 1, 2, false],
    [[1, 1], 1, 1, true],
    // the candidate's last term is later: granted whatever the lengths
    [[1], 2, 1, false],
    [[1], 2, 2, false],
    [[1, 1], 2, 1, false],
    // the voter's last term is later: refused whatever the lengths
    [[2], 1, 1, true],
    [[2], 1, 2, true],
    [[1, 2], 1, 5, true],
  ];
  for (const voteWithoutLogCheck of [false, true]) {
    for (const [log, logTerm, index, reject] of table) {
      const expected = reject && !voteWithoutLogCheck;
      it(`a voter with log [${log.join(', ')}] ${expected ? 'refuses' : 'grants'} a candidate ending at ${index}@${logTerm}${voteWithoutLogCheck ? ' (log check off)' : ''}`, () => {
        // init
        const s = new Solo(1, [1, 2, 3], {
          config: { ...PAPER, unsafe: { voteWithoutLogCheck } },
          storage: storageWith(logOfTerms(log), { term: 2 }),
        });
        // act
        s.step(msg({ type: MessageType.Vote, from: 2, to: 1, term: 3, index, logTerm }));
        const out = s.messages();
        // check
        expect(out).toEqual([
          expect.objectContaining({ type: MessageType.VoteResp, to: 2, term: 3, reject: expected }),
        ]);
        expect(s.status()).toMatchObject({ term: 3, vote: expected ? NONE : 2 });
      });
    }
  }

  // §5.4.1: "A candidate must contact a majority of the cluster in order to be elected, which
  // means that every committed entry must be present in at least one of those servers."
  for (const voteWithoutLogCheck of [false, true]) {
    it(`a candidate missing a committed entry ${voteWithoutLogCheck ? 'wins when the log check is off, and loses the entry' : 'cannot win'}`, () => {
      // init: 'x' is committed on 1 and 2; 3 missed it
      const c = new Cluster([1, 2, 3], () => ({ ...PAPER, unsafe: { voteWithoutLogCheck } }));
      c.elect(1);
      c.isolate(3);
      c.propose(1, 'x');
      c.stabilize();
      c.run(1);
      expect(c.appliedTexts(2)).toEqual(['x']);
      // act: 1 crashes; 3 comes back and campaigns, again and again
      c.heal();
      c.isolate(1);
      for (let i = 0; i < 5; i++) c.elect(3);
      // check
      if (voteWithoutLogCheck) {
        expect(c.get(3).node.status().role).toBe(Role.Leader);
        c.run(1);
        expect(conflicts(c)).toEqual([2]);
      } else {
        expect(c.get(3).node.status().role).not.toBe(Role.Leader);
        c.elect(2);
        c.propose(2, 'y');
        c.stabilize();
        c.run(1);
        expect(c.appliedTexts(3)).toEqual(['x', 'y']);
      }
    });
  }
});

describe('§5.4.2 committing entries from previous terms', () => {
  // §5.4.2: "Raft never commits log entries from previous terms by counting replicas. Only log
  // entries from the leader's current term are committed by counting replicas; once an entry from
  // the current term has been committed in this way, then all prior entries are committed
  // indirectly because of the Log Matching Property."
  for (const [acked, commit] of [
    [1, 0],
    [2, 0],
    [3, 3],
  ] as const) {
    it(`a leader of term 3 with log [1, 2] and an ack of index ${acked} commits up to ${commit}`, () => {
      // init
      const s = soloLeader([1, 2, 3], {
        config: PAPER,
        storage: storageWith(logOfTerms([1, 2]), { term: 2 }),
        ackFrom: [],
      });
      expect(s.status()).toMatchObject({ term: 3, lastIndex: 3, commit: 0 });
      // act
      s.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 3, index: acked }));
      s.drain();
      // check
      expect(s.status().commit).toBe(commit);
    });
  }

  /**
   * Figure 8 (c): S1 is leader in term 4 and has replicated its entry of term 2 at index 2 to S2
   * and S3, a majority of five; S3 has not yet received S1's entry of term 4. S5 holds an entry of
   * term 3 at index 2. The logs of (a) and (b) are written to storage; S4 and S5 are down.
   */
  function figure8(config: Partial<RaftConfig>, deliverCurrentTermToS3: boolean): Cluster {
    const c = new Cluster([1, 2, 3, 4, 5], (id) => ({
      ...PAPER,
      maxSizePerMsgBytes: 1, // one entry per append, so that S3 can get index 2 without index 3
      ...(id === 1 ? config : {}),
    }));
    const logs: Record<number, Entry[]> = {
      1: [entry(1, 1), entry(2, 2)],
      2: [entry(1, 1), entry(2, 2)],
      3: [entry(1, 1)],
      4: [entry(1, 1)],
      5: [entry(1, 1), entry(2, 3)],
    };
    for (const id of c.ids) c.start(id, storageWith(logs[id] as Entry[], { term: 3, commit: 1 }));
    c.isolate(4);
    c.isolate(5);
    if (!deliverCurrentTermToS3) {
      // S3 rejects the first probe (it lacks index 2); what must not arrive is index 3 once S3
      // holds index 2.
      c.drop = (m) =>
        isApp(m) &&
        m.to === 3 &&
        m.entries.some((e) => e.index === 3) &&
        c.get(3).node.status().lastIndex === 2;
    }
    c.elect(1);
    expect(c.get(1).node.status()).toMatchObject({ role: Role.Leader, term: 4 });
    expect(ids(c.log(3))).toEqual(deliverCurrentTermToS3 ? ['1@1', '2@2', '3@4'] : ['1@1', '2@2']);
    return c;
  }

  /** Figure 8 (d): S1 crashes (and S2 with it); S5 is elected by S3, S4 and itself. */
  function s5TakesOver(c: Cluster): void {
    c.drop = undefined;
    c.heal();
    c.isolate(1);
    c.isolate(2);
    for (let i = 0; i < 3 && c.get(5).node.status().role !== Role.Leader; i++) c.elect(5);
    c.run(1);
  }

  it('Figure 8 (c, d): a leader does not commit an entry of an earlier term held by a majority', () => {
    // init / act
    const c = figure8({}, false);
    // check: index 2 is on S1, S2 and S3, yet not committed
    expect(c.get(1).node.status().commit).toBe(1);
    expect(c.appliedTexts(1)).toEqual(['1@1']);
    // act: (d) S5 is elected and overwrites index 2 on S3 and S4
    s5TakesOver(c);
    // check: that was allowed, since nobody applied the old entry
    expect(c.get(5).node.status().role).toBe(Role.Leader);
    expect(ids(c.log(3))).toEqual(['1@1', '2@3', '3@5']);
    expect(c.appliedTexts(5)).toEqual(['1@1', '2@3']);
    expect(conflicts(c)).toEqual([]);
  });

  it('Figure 8 with commitEntriesOfEarlierTerms: the old entry commits, and (d) then contradicts it', () => {
    // init / act
    const c = figure8({ unsafe: { commitEntriesOfEarlierTerms: true } }, false);
    // check: the unsafe rule commits index 2 by counting S1, S2, S3
    expect(c.get(1).node.status().commit).toBe(2);
    expect(c.appliedTexts(1)).toEqual(['1@1', '2@2']);
    // act: (d)
    s5TakesOver(c);
    // check: S5's cluster commits a different entry at index 2, State Machine Safety is broken
    expect(c.appliedTexts(5)).toEqual(['1@1', '2@3']);
    expect(conflicts(c)).toEqual([2]);
  });

  // Figure 8 (e): "if S1 replicates an entry from its current term on a majority of the servers
  // before crashing, as in (e), then this entry is committed (S5 cannot win an election)."
  it('Figure 8 (e): once an entry of the current term commits, earlier ones commit with it and S5 cannot win', () => {
    // init / act
    const c = figure8({}, true);
    // check
    expect(c.get(1).node.status().commit).toBe(3);
    expect(ids(c.get(1).applied)).toEqual(['1@1', '2@2', '3@4']);
    // act: S1 crashes; S5 tries, twice
    c.heal();
    c.isolate(1);
    c.elect(5);
    c.elect(5);
    // check
    expect(c.get(5).node.status().role).not.toBe(Role.Leader);
    // act: S2 takes over
    c.elect(2);
    c.run(1);
    // check: every replica converges on S1's entries
    for (const id of [2, 3, 4, 5])
      expect(ids(c.log(id)).slice(0, 3)).toEqual(['1@1', '2@2', '3@4']);
    expect(ids(c.get(5).applied).slice(0, 3)).toEqual(['1@1', '2@2', '3@4']);
    expect(conflicts(c)).toEqual([]);
  });
});

describe('Figure 2: persistent state is updated on stable storage before responding to RPCs', () => {
  it('a follower acknowledges entries only in messagesAfterPersist, in the Ready that writes them', () => {
    // init
    const s = new Solo(1, [1, 2, 3], { storage: storageWith([], { term: 1 }) });
    // act
    s.step(msg({ type: MessageType.App, from: 2, to: 1, term: 1, entries: logOfTerms([1, 1]) }));
    const ready = s.node.ready();
    // check
    expect(ids(ready.entries)).toEqual(['1@1', '2@1']);
    expect(ready.mustSync).toBe(true);
    expect(ready.messagesNow).toEqual([]);
    expect(ready.messagesAfterPersist).toEqual([
      expect.objectContaining({ type: MessageType.AppResp, to: 2, index: 2, reject: false }),
    ]);
  });

  it('a leader cannot commit with a follower whose write has not completed', () => {
    // init: 3 is away; 2's disk is slow
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    c.slowDisk.add(2);
    // act
    const { index } = c.propose(1, 'x');
    c.stabilize();
    // check: 2 has the entry in memory but has not acknowledged it
    expect(c.get(2).node.status().lastIndex).toBe(index);
    expect(c.get(1).node.status().commit).toBe(index - 1);
    // act: the write completes
    c.sync(2);
    c.stabilize();
    // check
    expect(c.get(1).node.status().commit).toBe(index);
  });

  // Thesis §10.2.1: "the leader may write to its disk in parallel with replicating to its
  // followers"; it counts itself toward a majority only once its own write is durable.
  for (const leaderCountsUnsyncedEntries of [false, true]) {
    it(`a leader ${leaderCountsUnsyncedEntries ? 'with leaderCountsUnsyncedEntries counts' : 'does not count'} its own unsynced entry toward commit`, () => {
      // init: 3 is away, so commit needs the leader and 2; the leader's disk is slow
      const c = new Cluster([1, 2, 3], () => ({ unsafe: { leaderCountsUnsyncedEntries } }));
      c.elect(1);
      c.run(1);
      c.isolate(3);
      c.slowDisk.add(1);
      // act
      const { index } = c.propose(1, 'x');
      const ready = c.processReady(1) as Ready;
      c.stabilize();
      // check: the append went out before the leader's write; 2 has it durably and acknowledged
      expect(ready.messagesNow.some((m) => isApp(m) && m.to === 2)).toBe(true);
      expect(c.log(2).at(-1)?.index).toBe(index);
      expect(c.get(1).node.status().stable).toBe(index - 1);
      expect(c.get(1).node.status().commit).toBe(leaderCountsUnsyncedEntries ? index : index - 1);
      // act: the leader's write completes
      c.sync(1);
      c.stabilize();
      // check
      expect(c.get(1).node.status().commit).toBe(index);
    });
  }

  it('a replica whose storage failed verification refuses to start', () => {
    // init
    const storage = storageWith(logOfTerms([1, 1]), { term: 1, commit: 1 });
    const config = { id: 1, voters: [1, 2, 3], random: seededRandom(1) };
    // act / check
    expect(() => new RawNode(config, { ...storage.initialState(), intact: false })).toThrow(
      CorruptStateError,
    );
    expect(() => new RawNode(config, storage.initialState())).not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
// Figure 3 under random schedules

interface Simulation {
  c: Cluster;
  violations: string[];
  /** index -> the entry first applied there. */
  committed: Map<number, Entry>;
  proposed: number;
}

/**
 * A random schedule over a five-replica group: ticks, Readies, message delivery out of order with
 * loss and duplication, partitions, slow disks, late loads, and crashes that lose unsynced writes.
 * Checks the properties of Figure 3 as it goes and records violations.
 */
function simulate(seed: number, steps: number, config: Partial<RaftConfig> = {}): Simulation {
  const rand = seededRandom(seed);
  const chance = (p: number): boolean => rand() < p;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const group = [1, 2, 3, 4, 5];
  const c = new Cluster(group, (id) => ({
    random: seededRandom(seed * 1000 + id),
    maxSizePerMsgBytes: 200,
    maxInflightMsgs: 4,
    maxTailBytes: 400,
    maxLoadBytes: 300,
    ...config,
  }));
  const violations: string[] = [];
  const violation = (s: string): void => {
    if (violations.length < 20) violations.push(s);
  };
  const committed = new Map<number, Entry>();
  const maxTermWhenCommitted = new Map<number, number>();
  const leaders = new Map<number, NodeId>();
  const terms = new Map<NodeId, number>();
  const votes = new Map<string, NodeId>();
  const appliedUpTo = new Map<NodeId, number>();
  const checkedLeaders = new Set<string>();
  const maxTerm = (): number => Math.max(...group.map((id) => c.get(id).node.status().term));

  const persistedTerms = new Map<NodeId, number>();
  c.onPersisted = (id, ready) => {
    const hs = c.get(id).storage.hardState;
    // Current terms increase monotonically on stable storage.
    if (hs.term < (persistedTerms.get(id) ?? 0)) violation(`${id}'s persisted term went back`);
    persistedTerms.set(id, hs.term);
    // Election Safety, on the voter's side: one vote per term, also across restarts.
    if (hs.vote !== NONE) {
      const key = `${id}:${hs.term}`;
      const before = votes.get(key);
      if (before !== undefined && before !== hs.vote)
        violation(`${id} voted for ${before} and ${hs.vote} in term ${hs.term}`);
      votes.set(key, hs.vote);
    }
    // Persist before respond: what a response vouches for is on disk.
    const log = c.get(id).storage.entries;
    for (const m of ready.messagesAfterPersist) {
      if (m.type === MessageType.AppResp && !m.reject && m.index > 0 && hs.term === m.term) {
        if (log[m.index - 1]?.index !== m.index) violation(`${id} acked ${m.index} not on disk`);
      }
      if (m.type === MessageType.VoteResp && !m.reject && hs.term === m.term && hs.vote !== m.to) {
        violation(`${id} granted ${m.to} in term ${m.term} with vote ${hs.vote} on disk`);
      }
      if (m.type === MessageType.VoteResp && !m.reject && hs.term < m.term) {
        violation(`${id} granted a vote in term ${m.term} with term ${hs.term} on disk`);
      }
    }
    // State Machine Safety: every replica applies the same entry at each index, in order.
    for (const e of ready.committedEntries) {
      const expected = (appliedUpTo.get(id) ?? 0) + 1;
      if (e.index !== expected) violation(`${id} applied ${e.index}, expected ${expected}`);
      appliedUpTo.set(id, e.index);
      const first = committed.get(e.index);
      if (first === undefined) {
        committed.set(e.index, e);
        maxTermWhenCommitted.set(e.index, maxTerm());
      } else if (first.term !== e.term || text(first) !== text(e)) {
        violation(
          `${id} applied ${e.index}@${e.term} where ${first.index}@${first.term} was applied`,
        );
      }
    }
  };

  const observe = (): void => {
    for (const id of group) {
      const st = c.get(id).node.status();
      if (st.term < (terms.get(id) ?? 0)) violation(`${id}'s term went back to ${st.term}`);
      terms.set(id, st.term);
      if (st.role !== Role.Leader) continue;
      // Election Safety: at most one leader per term.
      const other = leaders.get(st.term);
      if (other !== undefined && other !== id)
        violation(`two leaders in term ${st.term}: ${other} and ${id}`);
      leaders.set(st.term, id);
      // Leader Completeness: a leader of a later term holds every committed entry.
      const key = `${id}:${st.term}`;
      if (checkedLeaders.has(key)) continue;
      checkedLeaders.add(key);
      const log = c.get(id).node.internals.log;
      for (const [index, e] of committed) {
        if ((maxTermWhenCommitted.get(index) ?? 0) >= st.term) continue;
        if (log.term(index) !== e.term)
          violation(`leader ${id} of term ${st.term} lacks committed ${index}@${e.term}`);
      }
    }
  };

  const restart = (id: NodeId): void => {
    c.restart(id, { tailEntries: pick([1, 3, 10, Number.POSITIVE_INFINITY]) });
    appliedUpTo.set(id, 0);
    // A term that was never persisted is forgotten in a crash; the persisted one is the floor.
    terms.set(id, c.get(id).storage.hardState.term);
  };

  let proposed = 0;
  const deliverOne = (): void => {
    const i = Math.floor(rand() * c.inFlight.length);
    const m = c.inFlight[i] as Message;
    c.inFlight.splice(i, 1);
    if (chance(0.03)) return; // lost
    if (chance(0.02)) c.inFlight.push(m); // duplicated: delivered now and again later
    const saved = c.inFlight;
    c.inFlight = [m];
    c.deliver();
    c.inFlight = saved.concat(c.inFlight);
  };
  for (let step = 0; step < steps && violations.length === 0; step++) {
    const r = rand();
    if (r < 0.4) {
      // the network delivers a few messages, in random order
      for (let k = 0; k < 4 && c.inFlight.length > 0; k++) deliverOne();
    } else if (r < 0.65) {
      for (const id of group) if (chance(0.6)) c.processReady(id);
    } else if (r < 0.73) {
      c.sync(pick(group));
    } else if (r < 0.81) {
      c.tick(pick(group));
    } else if (r < 0.83) {
      for (const id of group) c.tick(id);
    } else if (r < 0.9) {
      const lead = group.filter((id) => c.get(id).node.status().role === Role.Leader);
      if (lead.length > 0) {
        try {
          c.propose(pick(lead), `v${proposed}`);
          proposed++;
        } catch (e) {
          if (!(e instanceof ProposalDroppedError)) throw e;
        }
      }
    } else if (r < 0.95) {
      if (c.pendingLoads.length > 0) c.answerLoad(Math.floor(rand() * c.pendingLoads.length));
    } else if (r < 0.955) {
      c.isolate(pick(group));
    } else if (r < 0.965) {
      c.heal();
    } else if (r < 0.968) {
      c.cutLink(pick(group), pick(group));
    } else if (r < 0.973) {
      restart(pick(group));
    } else if (r < 0.983) {
      const id = pick(group);
      if (c.slowDisk.has(id)) {
        c.sync(id);
        c.slowDisk.delete(id);
      } else c.slowDisk.add(id);
    } else if (r < 0.993) {
      const id = pick(group);
      if (c.deferLoads.has(id)) c.deferLoads.delete(id);
      else c.deferLoads.add(id);
    }
    observe();
  }
  return { c, violations, committed, proposed };
}

/** Heals everything and lets the group run; returns the leader once all replicas agree. */
function settle(sim: Simulation): NodeId | undefined {
  const { c } = sim;
  c.heal();
  c.drop = undefined;
  for (const id of c.ids) {
    c.sync(id);
    c.slowDisk.delete(id);
    c.deferLoads.delete(id);
  }
  for (let round = 0; round < 400; round++) {
    while (c.pendingLoads.length > 0) c.answerLoad();
    c.run(1);
    const lead = c.leader();
    if (lead === undefined) continue;
    const want = c.get(lead).node.status();
    const agreed = c.ids.every((id) => {
      const st = c.get(id).node.status();
      return (
        st.commit === want.lastIndex && st.lastIndex === want.lastIndex && st.applied === st.commit
      );
    });
    if (agreed && want.lastTerm === want.term) return lead;
  }
  return undefined;
}

describe('Figure 3: the properties hold under random schedules', () => {
  // Figure 3: "Election Safety: at most one leader can be elected in a given term. ... Log
  // Matching: if two logs contain an entry with the same index and term, then the logs are
  // identical in all entries up through the given index. Leader Completeness: if a log entry is
  // committed in a given term, then that entry will be present in the logs of the leaders for all
  // higher-numbered terms. State Machine Safety: if a server has applied a log entry at a given
  // index to its state machine, no other server will ever apply a different log entry for the
  // same index." (Leader Append-Only is an invariant inside the library.)
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`seed ${seed}: no violation of Figure 3, and Log Matching among the persisted logs`, () => {
      // init / act
      const sim = simulate(seed, 4000);
      // check
      expect(sim.violations).toEqual([]);
      expect(sim.committed.size).toBeGreaterThan(10); // the schedule did make progress
      const logs = sim.c.ids.map((id) => sim.c.log(id));
      for (const a of logs) {
        for (const b of logs) {
          let k = Math.min(a.length, b.length);
          while (k > 0 && a[k - 1]?.term !== b[k - 1]?.term) k--;
          expect(a.slice(0, k)).toEqual(b.slice(0, k));
        }
      }
    });
  }

  for (const seed of [11, 12, 13]) {
    it(`seed ${seed}: with commitEntriesOfEarlierTerms and voteWithoutLogCheck, a violation is found`, () => {
      // The checker above is only worth something if it catches the violations the rules prevent.
      let found = 0;
      for (let s = seed * 100; s < seed * 100 + 10 && found === 0; s++) {
        let sim: Simulation | undefined;
        try {
          sim = simulate(s, 4000, {
            unsafe: { commitEntriesOfEarlierTerms: true, voteWithoutLogCheck: true },
          });
        } catch {
          found++; // the library's own invariant caught it (a leader rewrote a committed entry)
        }
        if (sim !== undefined && sim.violations.length > 0) found++;
      }
      expect(found).toBeGreaterThan(0);
    });
  }

  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: once the faults stop, the group converges and commits a new proposal everywhere`, () => {
      // init
      const sim = simulate(seed, 3000);
      // act
      const lead = settle(sim);
      // check
      expect(lead).toBeDefined();
      const c = sim.c;
      c.propose(lead as NodeId, 'final');
      c.stabilize();
      c.run(2);
      expect(sim.violations).toEqual([]);
      for (const id of c.ids) {
        expect(c.log(id)).toEqual(c.log(lead as NodeId));
        expect(c.appliedTexts(id).at(-1)).toBe('final');
      }
    });
  }
});
