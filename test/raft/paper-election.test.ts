/**
 * Leader election, checked sentence by sentence against the Raft paper (Ongaro and Ousterhout,
 * "In Search of an Understandable Consensus Algorithm", extended version), in the manner of etcd's
 * raft_paper_test.go: each test quotes what it checks and has init / act / check parts. Pre-vote
 * and check-quorum come from Ongaro's thesis (§9.6 and §6.2) and have tests of their own at the end.
 */
import { describe, expect, it } from 'vitest';
import { MessageType, NONE, Role, type Message, type NodeId } from '../../src/raft/types.js';
import type { Ready } from '../../src/raft/raw-node.js';
import {
  Cluster,
  PAPER,
  Solo,
  logOfTerms,
  msg,
  seededRandom,
  soloLeader,
  storageWith,
} from './harness.js';

const ELECTION = 10;

/** A replica of [1, 2, 3] in the given role at term 1 (the leader has its empty entry at index 1). */
function inRole(role: Role, config = PAPER): Solo {
  switch (role) {
    case Role.Follower:
      return new Solo(1, [1, 2, 3], { config, storage: storageWith([], { term: 1 }) });
    case Role.PreCandidate: {
      const s = new Solo(1, [1, 2, 3], {
        config: { ...config, preVote: true },
        storage: storageWith([], { term: 1 }),
      });
      s.tickUntil(() => s.status().role === Role.PreCandidate);
      s.drain();
      return s;
    }
    case Role.Candidate: {
      const s = new Solo(1, [1, 2, 3], { config });
      s.node.campaign();
      s.drain();
      return s;
    }
    case Role.Leader:
      return soloLeader([1, 2, 3], { config });
  }
}

const sentOf = (readies: readonly Ready[], type: MessageType): Message[] =>
  readies
    .flatMap((r) => [...r.messagesNow, ...r.messagesAfterPersist])
    .filter((m) => m.type === type);

describe('§5.1 terms', () => {
  // §5.1: "Current terms are exchanged whenever servers communicate; if one server's current term
  // is smaller than the other's, then it updates its current term to the larger value. If a
  // candidate or leader discovers that its term is out of date, it immediately reverts to follower
  // state."
  const roles = [Role.Follower, Role.PreCandidate, Role.Candidate, Role.Leader];
  const types = [MessageType.App, MessageType.Heartbeat, MessageType.Vote, MessageType.AppResp];
  for (const role of roles) {
    for (const type of types) {
      it(`a ${role} that sees a ${type} of a later term adopts it and becomes follower`, () => {
        // init
        const s = inRole(role);
        expect(s.status().role).toBe(role);
        const term = s.status().term;
        // act
        s.step(msg({ type, from: 2, to: 1, term: term + 1 }));
        s.drain();
        // check
        const st = s.status();
        expect(st.term).toBe(term + 1);
        expect(st.role).toBe(Role.Follower);
        const fromLeader = type === MessageType.App || type === MessageType.Heartbeat;
        expect(st.lead).toBe(fromLeader ? 2 : NONE);
        expect(s.storage.hardState.term).toBe(term + 1);
      });
    }
  }

  // §5.1: "If a server receives a request with a stale term number, it rejects the request."
  it('an AppendEntries of a stale term is rejected: nothing is appended, no success is returned', () => {
    for (const config of [PAPER, {}]) {
      // init: a follower at term 3
      const s = new Solo(1, [1, 2, 3], { config, storage: storageWith([], { term: 3 }) });
      // act: a leader of term 2 sends an entry
      s.step(
        msg({
          type: MessageType.App,
          from: 2,
          to: 1,
          term: 2,
          entries: logOfTerms([2]),
          commit: 1,
        }),
      );
      const out = s.messages();
      // check
      expect(s.status()).toMatchObject({ term: 3, lastIndex: 0, commit: 0, lead: NONE });
      expect(s.storage.entries).toEqual([]);
      // Without pre-vote and check-quorum it stays silent (etcd); with either, it tells the stale
      // leader its term so that it steps down (see the next test). Never an acknowledgment.
      const acks = out.filter((m) => m.type === MessageType.AppResp);
      if (config === PAPER) expect(out).toEqual([]);
      else expect(acks).toEqual([expect.objectContaining({ to: 2, term: 3, index: 0 })]);
    }
  });

  it('a vote request of a stale term is rejected: no vote, term and vote unchanged', () => {
    // init
    const s = new Solo(1, [1, 2, 3], { config: PAPER, storage: storageWith([], { term: 3 }) });
    // act
    s.step(msg({ type: MessageType.Vote, from: 2, to: 1, term: 2, index: 9, logTerm: 2 }));
    const out = s.messages();
    // check
    expect(out.filter((m) => m.type === MessageType.VoteResp && !m.reject)).toEqual([]);
    expect(s.status()).toMatchObject({ term: 3, vote: NONE });
  });

  it('a stale leader learns the newer term from the rejection and steps down', () => {
    // init: leader 1 at term 1; follower 2 has moved on to term 5
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.start(2, storageWith(c.log(2), { term: 5, commit: c.get(2).node.status().commit }));
    // act: the leader's next heartbeat reaches 2
    c.run(1);
    // check
    expect(c.get(1).node.status()).toMatchObject({ role: Role.Follower, term: 5 });
  });

  // §5.1: "Each server stores a current term number, which increases monotonically over time."
  it('terms never decrease on any replica, through elections, partitions and restarts', () => {
    // init
    const c = new Cluster([1, 2, 3, 4, 5], (id) => ({ random: seededRandom(id * 31) }));
    const seen = new Map<NodeId, number[]>();
    const observe = (): void => {
      for (const id of c.ids) {
        const list = seen.get(id) ?? [];
        list.push(c.get(id).node.status().term);
        seen.set(id, list);
      }
    };
    const rand = seededRandom(7);
    // act: a schedule of partitions, restarts and ticks
    for (let round = 0; round < 40; round++) {
      const victim = 1 + Math.floor(rand() * 5);
      if (round % 3 === 0) c.isolate(victim);
      if (round % 5 === 0) c.restart(victim);
      if (round % 4 === 0) c.heal();
      for (let t = 0; t < 7; t++) {
        c.run(1);
        observe();
      }
    }
    // check
    let elections = 0;
    for (const [, terms] of seen) {
      for (let i = 1; i < terms.length; i++) {
        expect(terms[i]).toBeGreaterThanOrEqual(terms[i - 1] as number);
      }
      elections = Math.max(elections, terms[terms.length - 1] as number);
    }
    expect(elections).toBeGreaterThan(2); // the schedule did cause several elections
  });
});

describe('§5.2 leader election', () => {
  // §5.2: "If a follower receives no communication over a period of time called the election
  // timeout, then it assumes there is no viable leader and begins an election to choose a new
  // leader. To begin an election, a follower increments its current term and transitions to
  // candidate state. It then votes for itself and issues RequestVote RPCs in parallel to each of
  // the other servers in the cluster."
  it('a follower that hears nothing for an election timeout starts an election', () => {
    // init: a follower at term 2 with log [1, 1, 2]
    const s = new Solo(1, [1, 2, 3], {
      config: { ...PAPER, electionTicks: ELECTION },
      storage: storageWith(logOfTerms([1, 1, 2]), { term: 2 }),
    });
    // act
    const ticks = s.tickUntil(() => s.status().role !== Role.Follower);
    const ready = s.ready() as Ready;
    // check
    expect(ticks).toBeGreaterThanOrEqual(ELECTION);
    expect(ticks).toBeLessThan(2 * ELECTION);
    expect(s.status()).toMatchObject({ role: Role.Candidate, term: 3, vote: 1 });
    expect(ready.hardState).toEqual({ term: 3, vote: 1, commit: 0 });
    expect(ready.mustSync).toBe(true);
    const votes = ready.messagesAfterPersist.filter((m) => m.type === MessageType.Vote);
    expect(votes.map((m) => m.to).sort()).toEqual([2, 3]);
    for (const m of votes) expect(m).toMatchObject({ term: 3, index: 3, logTerm: 2 });
    expect(ready.messagesNow).toEqual([]);
  });

  // §5.2: "A server remains in follower state as long as it receives valid RPCs from a leader or
  // candidate. Leaders send periodic heartbeats ... to all followers in order to maintain their
  // authority."
  it('a follower that keeps hearing from its leader never starts an election', () => {
    for (const heartbeats of [true, false]) {
      // init
      const s = new Solo(1, [1, 2, 3], { config: PAPER, storage: storageWith([], { term: 1 }) });
      // act: ELECTION - 1 ticks between heartbeats, for 10 election timeouts
      let campaigned = false;
      for (let round = 0; round < 10 && !campaigned; round++) {
        if (heartbeats) s.step(msg({ type: MessageType.Heartbeat, from: 2, to: 1, term: 1 }));
        for (let t = 0; t < ELECTION - 1; t++) {
          s.node.tick();
          if (s.status().role !== Role.Follower) campaigned = true;
        }
        s.drain();
      }
      // check: without the heartbeats the same schedule does start an election
      expect(campaigned).toBe(!heartbeats);
    }
  });

  // §5.2: "Raft uses randomized election timeouts to ensure that split votes are rare ... election
  // timeouts are chosen randomly from a fixed interval (e.g., 150–300ms)."
  it('election timeouts are drawn at random from [electionTicks, 2 * electionTicks)', () => {
    // init / act
    const timeouts = new Set<number>();
    for (let seed = 1; seed <= 300; seed++) {
      const s = new Solo(1, [1, 2, 3], { config: PAPER, seed });
      timeouts.add(s.tickUntil(() => s.status().role === Role.Candidate));
    }
    // check: every value of the interval occurs, and nothing outside it
    expect([...timeouts].sort((a, b) => a - b)).toEqual(
      Array.from({ length: ELECTION }, (_, i) => ELECTION + i),
    );
  });

  it('a candidate draws a new timeout for each election it starts', () => {
    // init: a candidate whose votes never come back
    const s = new Solo(1, [1, 2, 3], { config: PAPER, seed: 3 });
    // act: time out again and again
    const gaps = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const term = s.status().term;
      gaps.add(s.tickUntil(() => s.status().term > term));
    }
    // check
    for (const g of gaps) expect(g >= ELECTION && g < 2 * ELECTION).toBe(true);
    expect(gaps.size).toBeGreaterThan(3);
  });

  // §5.2: "In most cases only a single server will time out; it wins the election and sends
  // heartbeats before any other servers time out."
  it('replicas of one group time out at different moments, so a tie is the exception', () => {
    // init / act: 1000 rounds of five fresh followers, each with its own source of randomness
    const master = seededRandom(2024);
    let ties = 0;
    const rounds = 1000;
    for (let round = 0; round < rounds; round++) {
      const timeouts = [1, 2, 3, 4, 5].map((id) => {
        const s = new Solo(id, [1, 2, 3, 4, 5], {
          config: PAPER,
          seed: Math.floor(master() * 2 ** 32),
        });
        return s.tickUntil(() => s.status().role === Role.Candidate);
      });
      const first = Math.min(...timeouts);
      if (timeouts.filter((t) => t === first).length > 1) ties++;
    }
    // check (etcd's bound); identical timeouts would tie in every round
    expect(ties / rounds).toBeLessThan(0.3);
  });

  // §5.2: "A candidate wins an election if it receives votes from a majority of the servers in
  // the full cluster for the same term. ... Once a candidate wins an election, it becomes leader."
  // And: "a candidate continues in this state until one of three things happens: (a) it wins the
  // election, (b) another server establishes itself as leader, or (c) a period of time goes by
  // with no winner."
  const table: [size: number, votes: Record<number, boolean>, role: Role][] = [
    [1, {}, Role.Leader],
    [3, { 2: true, 3: true }, Role.Leader],
    [3, { 2: true }, Role.Leader],
    [5, { 2: true, 3: true, 4: true, 5: true }, Role.Leader],
    [5, { 2: true, 3: true, 4: true }, Role.Leader],
    [5, { 2: true, 3: true }, Role.Leader],
    // a majority of refusals: back to follower
    [3, { 2: false, 3: false }, Role.Follower],
    [5, { 2: false, 3: false, 4: false, 5: false }, Role.Follower],
    [5, { 2: true, 3: false, 4: false, 5: false }, Role.Follower],
    // neither: still candidate
    [3, {}, Role.Candidate],
    [5, { 2: true }, Role.Candidate],
    [5, { 2: false, 3: false }, Role.Candidate],
    [5, {}, Role.Candidate],
  ];
  for (const [size, votes, role] of table) {
    it(`a candidate of ${size} with votes ${JSON.stringify(votes)} ends up ${role}`, () => {
      // init
      const voters = Array.from({ length: size }, (_, i) => i + 1);
      const s = new Solo(1, voters, { config: PAPER });
      // act
      s.node.campaign();
      const first = s.ready() as Ready;
      for (const [from, granted] of Object.entries(votes)) {
        s.step(
          msg({ type: MessageType.VoteResp, from: Number(from), to: 1, term: 1, reject: !granted }),
        );
      }
      s.drain();
      // check
      expect(s.status()).toMatchObject({ role, term: 1 });
      // The vote requests went to every other server, in parallel, in the first Ready.
      expect(
        first.messagesAfterPersist
          .filter((m) => m.type === MessageType.Vote)
          .map((m) => m.to)
          .sort(),
      ).toEqual(voters.filter((v) => v !== 1));
    });
  }

  // §5.2: "Each server will vote for at most one candidate in a given term, on a
  // first-come-first-served basis."
  const voteTable: [vote: NodeId, candidate: NodeId, reject: boolean][] = [
    [NONE, 2, false],
    [NONE, 3, false],
    [2, 2, false],
    [3, 3, false],
    [2, 3, true],
    [3, 2, true],
  ];
  for (const [vote, candidate, reject] of voteTable) {
    it(`a follower that voted for ${vote} in this term ${reject ? 'refuses' : 'grants'} ${candidate}`, () => {
      // init
      const s = new Solo(1, [1, 2, 3], {
        config: PAPER,
        storage: storageWith([], { term: 1, vote }),
      });
      // act
      s.step(msg({ type: MessageType.Vote, from: candidate, to: 1, term: 1 }));
      const out = s.messages();
      // check
      expect(out).toEqual([
        expect.objectContaining({ type: MessageType.VoteResp, to: candidate, term: 1, reject }),
      ]);
      expect(s.status().vote).toBe(vote === NONE ? candidate : vote);
    });
  }

  it('the vote is persisted in the same Ready that carries the response, which waits for it', () => {
    // init
    const c = new Cluster([1, 2, 3], () => PAPER);
    const readiesOf2: Ready[] = [];
    c.onReady = (id, r) => {
      if (id === 2) readiesOf2.push(r);
    };
    // act: 1 campaigns in term 1; only 2 hears it
    c.get(1).node.campaign();
    c.processReady(1);
    c.deliver((m) => m.to === 2);
    c.processReady(2);
    // check
    expect(readiesOf2).toHaveLength(1);
    const ready = readiesOf2[0] as Ready;
    expect(ready.hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(ready.mustSync).toBe(true);
    expect(ready.messagesAfterPersist).toEqual([
      expect.objectContaining({ type: MessageType.VoteResp, to: 1, term: 1, reject: false }),
    ]);
    expect(ready.messagesNow).toEqual([]);
    expect(c.get(2).storage.hardState).toMatchObject({ term: 1, vote: 1 });
  });

  it('a replica that voted and restarted does not vote again in the same term', () => {
    // init: 2 voted for 1 in term 1 (persisted), then crashed and restarted
    const c = new Cluster([1, 2, 3], () => PAPER);
    c.get(1).node.campaign();
    c.processReady(1);
    c.deliver((m) => m.to === 2);
    c.processReady(2);
    c.inFlight = [];
    c.restart(2);
    expect(c.get(2).node.status()).toMatchObject({ term: 1, vote: 1 });
    // act: 3 campaigns in the same term
    c.get(3).node.campaign();
    expect(c.get(3).node.status().term).toBe(1);
    c.processReady(3);
    c.deliver((m) => m.to === 2);
    const ready = c.processReady(2) as Ready;
    // check
    expect(ready.messagesAfterPersist).toEqual([
      expect.objectContaining({ type: MessageType.VoteResp, to: 3, term: 1, reject: true }),
    ]);
  });

  it('a vote lost in a crash before it was persisted was never sent', () => {
    // init: 2's disk is slow
    const c = new Cluster([1, 2, 3], () => PAPER);
    c.slowDisk.add(2);
    c.get(1).node.campaign();
    c.processReady(1);
    c.deliver((m) => m.to === 2);
    // act: 2 decides to vote, then crashes before the write completes
    const ready = c.processReady(2) as Ready;
    expect(ready.messagesAfterPersist.some((m) => m.type === MessageType.VoteResp)).toBe(true);
    const sentBeforeCrash = c.inFlight.filter((m) => m.from === 2);
    c.restart(2);
    // check: nobody ever saw that vote, and the restarted replica does not remember it
    expect(sentBeforeCrash).toEqual([]);
    expect(c.get(2).node.status()).toMatchObject({ term: 0, vote: NONE });
    expect(c.get(1).node.status().role).toBe(Role.Candidate);
  });

  // §5.2: "While waiting for votes, a candidate may receive an AppendEntries RPC from another
  // server claiming to be leader. If the leader's term (included in its RPC) is at least as large
  // as the candidate's current term, then the candidate recognizes the leader as legitimate and
  // returns to follower state. If the term in the RPC is smaller than the candidate's current
  // term, then the candidate rejects the RPC and continues in candidate state."
  for (const [delta, role] of [
    [0, Role.Follower],
    [1, Role.Follower],
    [-1, Role.Candidate],
  ] as const) {
    it(`a candidate that receives an append of its term ${delta >= 0 ? '+' : ''}${delta} becomes ${role}`, () => {
      // init: a candidate at term 2
      const s = new Solo(1, [1, 2, 3], { config: PAPER, storage: storageWith([], { term: 1 }) });
      s.node.campaign();
      s.drain();
      const term = s.status().term;
      // act
      s.step(
        msg({
          type: MessageType.App,
          from: 2,
          to: 1,
          term: term + delta,
          entries: logOfTerms([1]),
        }),
      );
      const out = s.messages();
      // check
      expect(s.status().role).toBe(role);
      if (role === Role.Follower) {
        expect(s.status()).toMatchObject({ lead: 2, term: term + delta, lastIndex: 1 });
        expect(out).toContainEqual(
          expect.objectContaining({ type: MessageType.AppResp, to: 2, index: 1, reject: false }),
        );
      } else {
        expect(s.status()).toMatchObject({ term, lastIndex: 0 });
      }
    });
  }

  // §5.2: "The third possible outcome is that a candidate neither wins nor loses the election ...
  // When this happens, each candidate will time out and start a new election by incrementing its
  // term and initiating another round of RequestVote RPCs."
  it('a candidate that gets no answers times out and starts a new election in the next term', () => {
    // init
    const s = new Solo(1, [1, 2, 3], { config: PAPER });
    s.node.campaign();
    s.drain();
    // act
    const ticks = s.tickUntil(() => s.status().term === 2);
    const ready = s.ready() as Ready;
    // check
    expect(ticks).toBeLessThan(2 * ELECTION);
    expect(s.status()).toMatchObject({ role: Role.Candidate, term: 2, vote: 1 });
    expect(sentOf([ready], MessageType.Vote).map((m) => [m.to, m.term])).toEqual([
      [2, 2],
      [3, 2],
    ]);
  });

  it('after a split vote, the replicas retry in a later term and one of them wins', () => {
    // init / act: all three campaign at once, each votes for itself
    const c = new Cluster([1, 2, 3], () => PAPER);
    for (const id of c.ids) c.get(id).node.campaign();
    c.stabilize();
    // check: nobody won term 1
    expect(c.leader()).toBeUndefined();
    for (const id of c.ids) expect(c.get(id).node.status()).toMatchObject({ term: 1, vote: id });
    // act: time passes
    let ticks = 0;
    while (c.leader() === undefined && ticks < 4 * ELECTION) {
      c.run(1);
      ticks++;
    }
    // check: randomized timeouts let one replica win a later term
    const leader = c.leader();
    expect(leader).toBeDefined();
    const term = c.get(leader as NodeId).node.status().term;
    expect(term).toBeGreaterThan(1);
    for (const id of c.ids) {
      expect(c.get(id).node.status()).toMatchObject({ term, lead: leader });
    }
  });

  // Figure 2, Rules for Servers, Leaders: "Upon election: send initial empty AppendEntries RPCs
  // (heartbeat) to each server; repeat during idle periods to prevent election timeouts (§5.2)".
  it('a new leader announces itself at once and sends heartbeats while idle', () => {
    // init
    const s = new Solo(1, [1, 2, 3], { config: { ...PAPER, heartbeatTicks: 2 } });
    s.node.campaign();
    s.drain();
    s.step(msg({ type: MessageType.VoteResp, from: 2, to: 1, term: 1 }));
    // act
    const won = s.ready() as Ready;
    s.drain();
    s.node.tick();
    const afterOne = s.messages();
    s.node.tick();
    const afterTwo = s.ready() as Ready;
    // check
    expect(won.softState).toEqual({ role: Role.Leader, lead: 1 });
    expect(won.messagesNow.filter((m) => m.type === MessageType.App).map((m) => m.to)).toEqual([
      2, 3,
    ]);
    expect(afterOne).toEqual([]);
    expect(afterTwo.messagesNow.map((m) => [m.type, m.to, m.term])).toEqual([
      [MessageType.Heartbeat, 2, 1],
      [MessageType.Heartbeat, 3, 1],
    ]);
    expect(afterTwo.messagesAfterPersist).toEqual([]);
  });
});

describe('pre-vote (thesis §9.6)', () => {
  // Thesis §9.6: "the Pre-Vote algorithm ... a candidate would first ask other servers whether its
  // log was up-to-date enough to get their vote. Only if the candidate believed it could get votes
  // from a majority of the cluster would it increment its term and start a normal election."
  // And: "a server that is partitioned from the cluster ... [without Pre-Vote] its term will
  // increase ... when the partition heals ... causing the leader to step down."
  for (const preVote of [true, false]) {
    it(`a partitioned replica that rejoins ${preVote ? 'does not' : 'does'} disrupt the leader (preVote ${preVote})`, () => {
      // init
      const c = new Cluster([1, 2, 3], () => ({ preVote }));
      c.elect(1);
      c.propose(1, 'a');
      c.run(3);
      const term = c.get(1).node.status().term;
      const rolesOf3 = new Set<Role>();
      c.onReady = (id, r) => {
        if (id === 3 && r.softState !== undefined) rolesOf3.add(r.softState.role);
      };
      // act: 3 is cut off for ten election timeouts, then rejoins
      c.isolate(3);
      c.run(10 * ELECTION);
      const termOf3 = c.get(3).node.status().term;
      c.heal();
      c.run(5 * ELECTION);
      // check
      if (preVote) {
        expect(rolesOf3.has(Role.PreCandidate)).toBe(true);
        expect(rolesOf3.has(Role.Candidate)).toBe(false);
        expect(termOf3).toBe(term);
        expect(c.leader()).toBe(1);
        for (const id of c.ids) {
          expect(c.get(id).node.status()).toMatchObject({ term, lead: 1 });
        }
      } else {
        expect(termOf3).toBeGreaterThan(term + 5);
        expect(c.get(1).node.status().term).toBeGreaterThan(term);
      }
      for (const id of c.ids) expect(c.appliedTexts(id)).toEqual(['a']);
    });
  }

  it('asking for pre-votes changes neither term nor vote, on the asker or on the voter', () => {
    // init: both at term 5; the voter voted for 3 in term 5, its leader is long gone
    const asker = new Solo(1, [1, 2, 3], {
      storage: storageWith(logOfTerms([1, 5]), { term: 5, vote: 1 }),
    });
    const voter = new Solo(2, [1, 2, 3], {
      storage: storageWith(logOfTerms([1, 5]), { term: 5, vote: 3 }),
    });
    // act
    asker.tickUntil(() => asker.status().role === Role.PreCandidate);
    const asked = asker.ready() as Ready;
    const request = asked.messagesAfterPersist.find((m) => m.to === 2) as Message;
    voter.step(request);
    const answered = voter.ready() as Ready;
    // check: the request is for term 6, yet nobody's term or vote moved
    expect(request).toMatchObject({ type: MessageType.PreVote, term: 6, index: 2, logTerm: 5 });
    expect(asked.hardState).toBeUndefined();
    expect(asked.mustSync).toBe(false);
    expect(asker.status()).toMatchObject({ term: 5, vote: 1 });
    expect(answered.messagesAfterPersist).toEqual([
      expect.objectContaining({ type: MessageType.PreVoteResp, to: 1, term: 6, reject: false }),
    ]);
    expect(answered.hardState).toBeUndefined();
    expect(voter.status()).toMatchObject({ term: 5, vote: 3 });
  });

  for (const voteWithoutLogCheck of [false, true]) {
    it(`a pre-candidate with a stale log ${voteWithoutLogCheck ? 'wins when the log check is off' : 'gets no pre-votes and never raises its term'}`, () => {
      // init: 3 missed an entry of term 1 (check-quorum off, so that no lease is involved)
      const c = new Cluster([1, 2, 3], () => ({
        checkQuorum: false,
        unsafe: { voteWithoutLogCheck },
      }));
      c.elect(1);
      c.isolate(3);
      c.propose(1, 'x');
      c.stabilize();
      expect(c.get(3).node.status().lastIndex).toBeLessThan(c.get(2).node.status().lastIndex);
      // act: 1 goes away, 3 rejoins and times out (only 3's clock runs)
      c.heal();
      c.isolate(1);
      const term = c.get(3).node.status().term;
      for (let i = 0; i < 10 * ELECTION; i++) {
        c.tick(3);
        c.stabilize();
      }
      // check
      if (voteWithoutLogCheck) {
        expect(c.get(3).node.status()).toMatchObject({ term: term + 1, role: Role.Leader });
      } else {
        expect(c.get(3).node.status()).toMatchObject({ term, role: Role.PreCandidate });
        expect(c.get(2).node.status()).toMatchObject({ term, vote: 1 });
      }
    });
  }
});

describe('check-quorum (thesis §6.2)', () => {
  // Thesis §6.2: "a leader steps down if an election timeout elapses without a successful round
  // of heartbeats to a majority of its cluster; this allows clients to retry their requests with
  // another server."
  for (const checkQuorum of [true, false]) {
    it(`a leader cut off from its majority ${checkQuorum ? 'steps down' : 'stays leader'} (checkQuorum ${checkQuorum})`, () => {
      // init
      const c = new Cluster([1, 2, 3], () => ({ checkQuorum }));
      c.elect(1);
      c.run(5 * ELECTION);
      expect(c.leader()).toBe(1);
      // act: cut off, only 1's clock runs
      c.isolate(1);
      let ticks = 0;
      while (c.get(1).node.status().role === Role.Leader && ticks < 10 * ELECTION) {
        c.tick(1);
        c.stabilize();
        ticks++;
      }
      // check: it notices within two election timeouts (the check runs once per timeout)
      if (checkQuorum) {
        expect(ticks).toBeLessThanOrEqual(2 * ELECTION);
        expect(c.get(1).node.status()).toMatchObject({ role: Role.Follower, lead: NONE });
        expect(() => c.propose(1, 'late')).toThrow(/no leader/);
      } else {
        expect(c.get(1).node.status().role).toBe(Role.Leader);
      }
    });
  }

  // Thesis §4.2.3: "if a server receives a RequestVote request within the minimum election timeout
  // of hearing from a current leader, it does not update its term or grant its vote."
  for (const type of [MessageType.Vote, MessageType.PreVote]) {
    it(`a follower in its leader's lease ignores a ${type}, and answers once the lease ran out`, () => {
      // init
      const c = new Cluster([1, 2, 3]);
      c.elect(1);
      c.run(1);
      const { term, lastIndex, lastTerm } = c.get(2).node.status();
      const request = msg({
        type,
        from: 3,
        to: 2,
        term: term + 1,
        index: lastIndex,
        logTerm: lastTerm,
      });
      // act: in the lease
      c.get(2).node.step(request);
      const inLease = c.processReady(2);
      // check
      expect(inLease).toBeUndefined();
      expect(c.get(2).node.status()).toMatchObject({ term, lead: 1 });
      // act: an election timeout without the leader
      c.isolate(1);
      c.tick(2, ELECTION);
      c.stabilize();
      c.inFlight = [];
      c.get(2).node.step(request);
      const after = c.processReady(2) as Ready;
      // check
      const resp = type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
      expect(after.messagesAfterPersist).toContainEqual(
        expect.objectContaining({ type: resp, to: 3, term: term + 1, reject: false }),
      );
    });
  }
});
