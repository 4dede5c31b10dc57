/**
 * Log replication (§5.3 of the Raft paper) sentence by sentence, in the manner of etcd's
 * raft_paper_test.go (init / act / check), followed by what etcd adds around it: flow control
 * (Progress probe/replicate, inflight limits), proposal batching and dropping, and reading entries
 * that are no longer in memory back from storage (Ready.loads).
 */
import { describe, expect, it } from 'vitest';
import { ProposalDroppedError } from '../../src/raft/errors.js';
import { RawNode, type Ready } from '../../src/raft/raw-node.js';
import {
  EntryType,
  MessageType,
  NONE,
  Role,
  entryBytes,
  type Entry,
  type LoadRequest,
  type Message,
  type NodeId,
} from '../../src/raft/types.js';
import {
  Cluster,
  MemoryStorage,
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

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const repeat = (term: number, n: number): number[] => Array.from({ length: n }, () => term);
const appsTo = (messages: readonly Message[], to: NodeId): Message[] =>
  messages.filter((m) => isApp(m) && m.to === to);
const ack = (from: NodeId, index: number, term = 1): Message =>
  msg({ type: MessageType.AppResp, from, to: 1, term, index });

/** Checks that indexes run 1, 2, 3, ... (each committed entry applied once, in log order). */
function expectInOrder(entries: readonly Entry[], count: number): void {
  expect(entries.map((e) => e.index)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
}

describe('§5.3 the leader', () => {
  // §5.3: "Once a leader has been elected, it begins servicing client requests. Each client request
  // contains a command to be executed by the replicated state machines. The leader appends the
  // command to its log as a new entry, then issues AppendEntries RPCs in parallel to each of the
  // other servers to replicate the entry."
  it('appends a proposal to its log and sends it to every follower in parallel', () => {
    // init
    const s = soloLeader([1, 2, 3]);
    // act
    const at = s.node.propose(enc('x'));
    const ready = s.ready() as Ready;
    // check
    expect(at).toEqual({ index: 2, term: 1 });
    expect(ids(ready.entries)).toEqual(['2@1']);
    expect(ready.mustSync).toBe(true);
    expect(
      ready.messagesNow
        .filter(isApp)
        .map((m) => [m.to, m.index, m.logTerm, ids(m.entries), m.commit]),
    ).toEqual([
      [2, 1, 1, ['2@1'], 1],
      [3, 1, 1, ['2@1'], 1],
    ]);
    // The leader's appends do not wait for its own write (thesis §10.2.1)...
    expect(ready.messagesAfterPersist).toEqual([]);
    // ...and nothing is committed yet.
    expect(s.status().commit).toBe(1);
  });

  // §5.3: "When the entry has been safely replicated (as described below), the leader applies the
  // entry to its state machine ... A log entry is committed once the leader that created the entry
  // has replicated it on a majority of the servers ... The leader keeps track of the highest index
  // it knows to be committed, and it includes that index in future AppendEntries RPCs (including
  // heartbeats) so that the other servers eventually find out."
  it('commits an entry once a majority has it, applies it, and tells the followers', () => {
    // init
    const s = soloLeader([1, 2, 3]);
    s.node.propose(enc('x'));
    s.drain();
    expect(s.status().commit).toBe(1);
    // act
    s.step(ack(2, 2));
    const ready = s.ready() as Ready;
    // check
    expect(s.status().commit).toBe(2);
    expect(ready.hardState?.commit).toBe(2);
    expect(ready.committedEntries.map(text)).toEqual(['x']);
    const apps = ready.messagesNow.filter(isApp);
    expect(apps.map((m) => [m.to, m.commit])).toEqual([
      [2, 2],
      [3, 2],
    ]);
    // and heartbeats carry it too, capped at what each follower is known to hold
    s.node.tick();
    const beats = (s.ready() as Ready).messagesNow.filter((m) => m.type === MessageType.Heartbeat);
    expect(beats.map((m) => [m.to, m.commit])).toEqual([
      [2, 2],
      [3, 1],
    ]);
  });

  const ackTable: [size: number, acceptors: NodeId[], commits: boolean][] = [
    [1, [], true],
    [3, [], false],
    [3, [2], true],
    [3, [2, 3], true],
    [5, [], false],
    [5, [2], false],
    [5, [2, 3], true],
    [5, [2, 3, 4], true],
    [5, [2, 3, 4, 5], true],
  ];
  for (const [size, acceptors, commits] of ackTable) {
    it(`with ${size} replicas and acks from [${acceptors.join(', ')}] the entry ${commits ? 'commits' : 'does not commit'}`, () => {
      // init
      const s = soloLeader(Array.from({ length: size }, (_, i) => i + 1));
      const { index } = s.node.propose(enc('x'));
      s.drain();
      // act
      for (const from of acceptors) s.step(ack(from, index));
      s.drain();
      // check
      expect(s.status().commit).toBe(commits ? index : index - 1);
    });
  }

  // §5.3: "This also commits all preceding entries in the leader's log, including entries created
  // by previous leaders."
  for (const log of [[], [2], [1, 2], [1, 1, 2, 2]]) {
    it(`committing its first entry also commits the earlier log [${log.join(', ')}]`, () => {
      // init: the log left by earlier leaders, none of it known to be committed
      const s = soloLeader([1, 2, 3], {
        storage: storageWith(logOfTerms(log), { term: 2 }),
        ackFrom: [],
      });
      expect(s.status()).toMatchObject({ term: 3, commit: 0 });
      // act: one follower acknowledges the new leader's empty entry
      s.step(ack(2, log.length + 1, 3));
      s.drain();
      // check
      expect(ids(s.applied)).toEqual([...ids(logOfTerms(log)), `${log.length + 1}@3`]);
    });
  }
});

describe('§5.3 the follower', () => {
  // §5.3: "Once a follower learns that a log entry is committed, it applies the entry to its local
  // state machine (in log order)."
  it('applies entries in log order as it learns that they are committed, once they are durable', () => {
    // init
    const s = new Solo(1, [1, 2, 3], { storage: storageWith([], { term: 1 }) });
    const entries = [entry(1, 1, 'a'), entry(2, 1, 'b'), entry(3, 1, 'c')];
    // act: the entries arrive with commit index 2
    s.step(msg({ type: MessageType.App, from: 2, to: 1, term: 1, entries, commit: 2 }));
    const first = s.ready() as Ready;
    const rest = s.drain();
    // check: nothing is applied before it is durable here; then a and b, in order
    expect(ids(first.entries)).toEqual(['1@1', '2@1', '3@1']);
    expect(first.committedEntries).toEqual([]);
    expect(rest.flatMap((r) => r.committedEntries).map(text)).toEqual(['a', 'b']);
    // act: a heartbeat tells it that 3 is committed
    s.step(msg({ type: MessageType.Heartbeat, from: 2, to: 1, term: 1, commit: 3 }));
    s.drain();
    // check
    expect(s.applied.map(text)).toEqual(['a', 'b', 'c']);
  });

  it('never commits beyond the entries the append proved it shares with the leader', () => {
    // init: a follower with an entry of term 1 at index 2 that the leader (term 2) does not have
    const s = new Solo(1, [1, 2, 3], { storage: storageWith(logOfTerms([1, 1]), { term: 1 }) });
    // act: the leader's append matches at 1 and carries no entries, commit index 5
    s.step(
      msg({ type: MessageType.App, from: 2, to: 1, term: 2, index: 1, logTerm: 1, commit: 5 }),
    );
    s.drain();
    // check
    expect(s.status().commit).toBe(1);
  });

  // §5.3: "When sending an AppendEntries RPC, the leader includes the index and term of the entry
  // in its log that immediately precedes the new entries. If the follower does not find an entry
  // in its log with the same index and term, then it refuses the new entries."
  const checkTable: [logTerm: number, index: number, expected: Partial<Message>][] = [
    // matches committed entries: acknowledged at the commit index
    [0, 0, { index: 1, reject: false }],
    [1, 1, { index: 1, reject: false }],
    // matches an uncommitted entry
    [2, 2, { index: 2, reject: false }],
    // conflicts with an entry: rejected, with a hint where the logs may match
    [1, 2, { index: 2, reject: true, rejectHint: 1, logTerm: 1 }],
    // no entry there
    [3, 3, { index: 3, reject: true, rejectHint: 2, logTerm: 2 }],
  ];
  for (const [logTerm, index, expected] of checkTable) {
    it(`an append after (index ${index}, term ${logTerm}) against log [1, 2] is ${expected.reject === true ? 'refused' : 'accepted'}`, () => {
      // init
      const s = new Solo(1, [1, 2, 3], {
        storage: storageWith(logOfTerms([1, 2]), { term: 2, commit: 1 }),
      });
      // act
      s.step(msg({ type: MessageType.App, from: 2, to: 1, term: 2, index, logTerm, commit: 1 }));
      const ready = s.ready() as Ready;
      // check: the answer goes out only after the Ready is persisted
      expect(ready.messagesNow).toEqual([]);
      expect(ready.messagesAfterPersist).toEqual([
        expect.objectContaining({ type: MessageType.AppResp, to: 2, term: 2, ...expected }),
      ]);
      expect(ids(s.storage.entries)).toEqual(['1@1', '2@2']);
    });
  }

  // §5.3: "If an existing entry conflicts with a new one (same index but different terms), delete
  // the existing entry and all that follow it; append any new entries not already in the log."
  // (Figure 2, AppendEntries RPC, receiver implementation, steps 3 and 4.)
  const appendTable: [
    index: number,
    logTerm: number,
    entries: Entry[],
    log: string[],
    written: string[],
  ][] = [
    [2, 2, [entry(3, 3)], ['1@1', '2@2', '3@3'], ['3@3']],
    [1, 1, [entry(2, 3), entry(3, 4)], ['1@1', '2@3', '3@4'], ['2@3', '3@4']],
    [0, 0, [entry(1, 1)], ['1@1', '2@2'], []],
    [0, 0, [entry(1, 3)], ['1@3'], ['1@3']],
  ];
  for (const [index, logTerm, entries, log, written] of appendTable) {
    it(`appending ${ids(entries).join(', ')} after ${index}@${logTerm} to [1@1, 2@2] leaves [${log.join(', ')}]`, () => {
      // init
      const s = new Solo(1, [1, 2, 3], { storage: storageWith(logOfTerms([1, 2]), { term: 2 }) });
      // act
      s.step(msg({ type: MessageType.App, from: 2, to: 1, term: 4, index, logTerm, entries }));
      const ready = s.ready() as Ready;
      // check: the Ready rewrites from the first conflict (the host drops what followed)
      expect(ids(ready.entries)).toEqual(written);
      expect(ids(s.storage.entries)).toEqual(log);
      expect(s.status().lastIndex).toBe(log.length);
    });
  }

  // §5.3: "In Raft, the leader handles inconsistencies by forcing the followers' logs to duplicate
  // its own." Figure 7: "When the leader at the top comes to power, it is possible that any of
  // scenarios (a–f) could occur in follower logs."
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const figure7: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, followerLog] of Object.entries(figure7)) {
    it(`Figure 7 (${name}): the follower ends up with exactly the leader's log`, () => {
      // init: replicas restarted from the logs of Figure 7. A third replica with the common prefix
      // gives the leader its majority (followers c and d have logs it cannot beat).
      const c = new Cluster([1, 2, 3], () => PAPER);
      c.start(1, storageWith(logOfTerms(leaderLog), { term: 7, commit: 3 }));
      c.start(2, storageWith(logOfTerms(followerLog), { term: 7, commit: 3 }));
      c.start(3, storageWith(logOfTerms([1, 1, 1]), { term: 7, commit: 3 }));
      // act: the leader comes to power in term 8
      c.elect(1);
      c.run(1);
      // check
      expect(c.get(1).node.status()).toMatchObject({ role: Role.Leader, term: 8, commit: 11 });
      const empty: Entry = { index: 11, term: 8, type: EntryType.Empty, data: new Uint8Array() };
      const expected = [...logOfTerms(leaderLog), empty];
      expect(c.log(1)).toEqual(expected);
      expect(c.log(2)).toEqual(c.log(1));
      expect(c.get(2).node.status()).toMatchObject({ commit: 11, lastIndex: 11, lastTerm: 8 });
    });
  }

  // §5.3: "After a rejection, the leader decrements nextIndex and retries the AppendEntries RPC.
  // Eventually nextIndex will reach a point where the leader and follower logs match."
  it('the leader backs off after a rejection and retries until the logs match', () => {
    // init: follower 2 lacks the last three entries
    const c = new Cluster([1, 2, 3], () => PAPER);
    c.start(1, storageWith(logOfTerms([1, 1, 1, 1, 1]), { term: 1 }));
    c.start(2, storageWith(logOfTerms([1, 1]), { term: 1 }));
    c.start(3, storageWith(logOfTerms([1, 1, 1, 1, 1]), { term: 1 }));
    c.recording = true;
    // act
    c.elect(1);
    // check: the first probe (after 5) is refused, the retry (after 2) is accepted
    const apps = appsTo(c.sent, 2);
    expect(apps.slice(0, 2).map((m) => [m.index, ids(m.entries)])).toEqual([
      [5, ['6@2']],
      [2, ['3@1', '4@1', '5@1', '6@2']],
    ]);
    expect(c.log(2)).toEqual(c.log(1));
  });

  // §5.3: "If desired, the protocol can be optimized to reduce the number of rejected
  // AppendEntries RPCs. For example, when rejecting an AppendEntries request, the follower can
  // include the term of the conflicting entry and the first index it stores for that term. With
  // this information, the leader can decrement nextIndex to bypass all of the conflicting entries
  // in that term; one AppendEntries RPC will be required for each term with conflicting entries,
  // rather than one RPC per entry."
  const backoffTable: [name: string, leader: number[], follower: number[]][] = [
    ['a long tail of an older term', [1, ...repeat(3, 500)], [1, ...repeat(2, 1000)]],
    [
      'a conflicting suffix of a term between the leader\u2019s',
      [1, ...repeat(2, 5), ...repeat(4, 200)],
      [1, ...repeat(2, 5), ...repeat(3, 300)],
    ],
    ['a long tail of a later term', [1, ...repeat(2, 100)], [1, ...repeat(3, 300)]],
    ['many short terms', [1, ...repeat(9, 50)], [1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8]],
  ];
  for (const [name, leader, follower] of backoffTable) {
    it(`fast back-off repairs ${name} in a few round trips, not one per entry`, () => {
      // init: 3 holds the leader's log, so the leader wins whatever 2 thinks of it
      const term = Math.max(...leader, ...follower);
      const c = new Cluster([1, 2, 3], () => PAPER);
      c.start(1, storageWith(logOfTerms(leader), { term, commit: 1 }));
      c.start(2, storageWith(logOfTerms(follower), { term, commit: 1 }));
      c.start(3, storageWith(logOfTerms(leader), { term, commit: 1 }));
      c.recording = true;
      // act
      c.elect(1);
      // check
      expect(c.log(2)).toEqual(c.log(1));
      const rejections = c.sent.filter(
        (m) => m.type === MessageType.AppResp && m.from === 2 && m.reject,
      );
      const divergent = follower.length - 1;
      expect(rejections.length).toBeGreaterThan(0);
      expect(rejections.length).toBeLessThanOrEqual(new Set(follower).size);
      expect(appsTo(c.sent, 2).length).toBeLessThan(Math.min(10, divergent));
    });
  }
});

describe('proposals', () => {
  it('a follower refuses proposals and names the leader; with no leader the hint is empty', () => {
    // init
    const c = new Cluster([1, 2, 3]);
    const lone = new Solo(1, [1, 2, 3]);
    const candidate = new Solo(1, [1, 2, 3]);
    candidate.node.campaign();
    c.elect(1);
    const before = c.get(2).node.status().lastIndex;
    // act / check
    for (const [node, hint] of [
      [c.get(2).node, 1],
      [lone.node, NONE],
      [candidate.node, NONE],
    ] as const) {
      let caught: unknown;
      try {
        node.propose(enc('x'));
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(ProposalDroppedError);
      expect((caught as ProposalDroppedError).leaderHint).toBe(hint);
    }
    expect(c.get(2).node.hasReady()).toBe(false);
    expect(c.get(2).node.status().lastIndex).toBe(before);
  });

  it('proposals beyond maxUncommittedBytes are dropped until earlier ones commit', () => {
    // init: the leader cannot commit while its followers are away
    const c = new Cluster([1, 2, 3], () => ({ maxUncommittedBytes: 100 }));
    c.elect(1);
    c.isolate(1);
    // act
    for (let i = 0; i < 10; i++) c.propose(1, `p${i}--------`); // 10 bytes each
    const lastIndex = c.get(1).node.status().lastIndex;
    // check
    expect(() => c.propose(1, 'one-more-!')).toThrow(ProposalDroppedError);
    expect(c.get(1).node.status().lastIndex).toBe(lastIndex);
    // act: the followers come back and the backlog commits
    c.heal();
    c.stabilize();
    expect(c.get(1).node.status().commit).toBe(lastIndex);
    // check: room again
    expect(c.propose(1, 'one-more-!').index).toBe(lastIndex + 1);
  });
});

describe('flow control (etcd Progress and Inflights)', () => {
  /**
   * Drives leader 1 with one follower, 2, whose acks come back in order after a random delay,
   * while proposals arrive at random. Returns, for every append sent with entries, how many
   * appends and bytes were outstanding just before it.
   */
  function pipeline(config: { maxInflightMsgs?: number; maxInflightBytes?: number }, seed: number) {
    const s = soloLeader([1, 2], { config });
    const rand = seededRandom(seed);
    const outstanding: { last: number; bytes: number }[] = [];
    const before: { count: number; bytes: number }[] = [];
    let proposed = 0;
    for (let step = 0; step < 400; step++) {
      if (rand() < 0.6) {
        s.node.propose(enc(`p${proposed++}`.padEnd(40, '.')));
      }
      for (const m of appsTo(s.messages(), 2)) {
        if (m.entries.length === 0) continue;
        before.push({
          count: outstanding.length,
          bytes: outstanding.reduce((a, o) => a + o.bytes, 0),
        });
        const bytes = m.entries.reduce((a, e) => a + entryBytes(e), 0);
        outstanding.push({ last: (m.entries[m.entries.length - 1] as Entry).index, bytes });
      }
      if (outstanding.length > 0 && rand() < 0.4) {
        const acked = outstanding.shift() as { last: number };
        s.step(ack(2, acked.last));
      }
    }
    // Drain: acknowledge everything until the follower has it all.
    for (let i = 0; i < 1000 && outstanding.length > 0; i++) {
      s.step(ack(2, (outstanding.shift() as { last: number }).last));
      for (const m of appsTo(s.messages(), 2)) {
        if (m.entries.length > 0)
          outstanding.push({ last: (m.entries[m.entries.length - 1] as Entry).index, bytes: 0 });
      }
    }
    return { s, before, proposed };
  }

  // etcd: "in StateReplicate ... the leader optimistically sends ... limited by the size of the
  // Inflights window."
  it('in replicate state at most maxInflightMsgs appends are outstanding to a follower', () => {
    for (const seed of [1, 2, 3]) {
      // init / act
      const { s, before, proposed } = pipeline({ maxInflightMsgs: 3 }, seed);
      // check: the window was used, never exceeded, and everything got through
      expect(Math.max(...before.map((b) => b.count))).toBe(2);
      expect(before.every((b) => b.count < 3)).toBe(true);
      expect(s.node.internals.progressOf(2)?.match).toBe(proposed + 1);
    }
  });

  it('in replicate state no append is sent while maxInflightBytes are outstanding', () => {
    for (const seed of [4, 5, 6]) {
      // init / act: about three entries' worth of window
      const limit = 3 * (40 + 24);
      const { s, before, proposed } = pipeline({ maxInflightBytes: limit }, seed);
      // check
      expect(before.every((b) => b.bytes < limit)).toBe(true);
      expect(Math.max(...before.map((b) => b.bytes))).toBeGreaterThan(limit / 2);
      expect(s.node.internals.progressOf(2)?.match).toBe(proposed + 1);
    }
  });

  it('the window refills as acknowledgments free it', () => {
    // init
    const s = soloLeader([1, 2], { config: { maxInflightMsgs: 3 } });
    const sent: Message[] = [];
    // act: ten proposals, each in its own Ready, no acks
    for (let i = 0; i < 10; i++) {
      s.node.propose(enc(`p${i}`));
      sent.push(...appsTo(s.messages(), 2));
    }
    // check: three appends of one entry
    expect(sent.map((m) => ids(m.entries))).toEqual([['2@1'], ['3@1'], ['4@1']]);
    // act: the first is acknowledged
    s.step(ack(2, 2));
    const next = appsTo(s.messages(), 2);
    // check: one more append, carrying the whole backlog
    expect(next.map((m) => [m.index, m.entries.length])).toEqual([[4, 7]]);
  });

  // etcd: "in StateProbe, the leader sends at most one replication message per heartbeat
  // interval" until it learns where the follower's log matches.
  it('in probe state at most one append is outstanding until the follower answers', () => {
    // init: 2 never answered the new leader's first append
    const s = soloLeader([1, 2, 3], { ackFrom: [3] });
    // act: proposals keep coming
    const sent: Message[] = [];
    for (let i = 0; i < 5; i++) {
      s.node.propose(enc(`p${i}`));
      sent.push(...appsTo(s.messages(), 2));
    }
    // check: nothing more for 2 (while 3 got every proposal)
    expect(sent).toEqual([]);
    // act: 2 answers a heartbeat; the leader probes once more
    s.node.tick();
    s.drain();
    s.step(msg({ type: MessageType.HeartbeatResp, from: 2, to: 1, term: 1 }));
    const probe = appsTo(s.messages(), 2);
    for (let i = 0; i < 3; i++) s.node.propose(enc(`q${i}`));
    const more = appsTo(s.messages(), 2);
    // check
    expect(probe).toHaveLength(1);
    expect(more).toEqual([]);
    // act: the probe is accepted; 2 moves to replicate and gets the rest at once
    const last = (probe[0] as Message).entries.at(-1) as Entry;
    s.step(ack(2, last.index));
    const after = appsTo(s.messages(), 2);
    expect(after.flatMap((m) => ids(m.entries))).toEqual(['7@1', '8@1', '9@1']);
    expect(s.node.internals.progressOf(2)?.state).toBe('replicate');
  });

  // etcd README: "batching ... one fsync per Ready covers many proposals".
  it('proposals between two Readies travel as one append per follower, split by maxSizePerMsgBytes', () => {
    for (const perMessage of [Number.POSITIVE_INFINITY, 10]) {
      // init
      const sample = entry(1, 1, 'p000');
      const maxSizePerMsgBytes = perMessage === 10 ? 10 * entryBytes(sample) : 1024 * 1024;
      const s = soloLeader([1, 2, 3], { config: { maxSizePerMsgBytes } });
      // act
      for (let i = 0; i < 100; i++) s.node.propose(enc(`p${String(i).padStart(3, '0')}`));
      const ready = s.ready() as Ready;
      // check
      expect(ready.entries).toHaveLength(100);
      for (const to of [2, 3]) {
        const apps = appsTo(ready.messagesNow, to);
        expect(apps).toHaveLength(perMessage === 10 ? 10 : 1);
        for (const m of apps) {
          const bytes = m.entries.reduce((a, e) => a + entryBytes(e), 0);
          expect(bytes).toBeLessThanOrEqual(maxSizePerMsgBytes);
        }
        expect(apps.flatMap((m) => m.entries.map((e) => e.index))).toEqual(
          Array.from({ length: 100 }, (_, i) => i + 2),
        );
      }
    }
  });
});

describe('entries read back from storage (Ready.loads)', () => {
  it('a restarted replica loads the committed entries that are not in memory and applies them in order', () => {
    // init: 50 entries, 40 committed, only the last 5 in memory; loads of at most 8 entries
    const log = logOfTerms(repeat(1, 50));
    const storage = storageWith(log, { term: 1, commit: 40 });
    const node = new RawNode(
      {
        id: 1,
        voters: [1, 2, 3],
        random: seededRandom(1),
        maxLoadBytes: 8 * entryBytes(log[0] as Entry),
      },
      storage.initialState(5),
    );
    // act: run the Ready loop, answering each load only after two more Readies (late)
    const applied: Entry[] = [];
    const waiting: { load: LoadRequest; age: number }[] = [];
    let appliedBeforeAnyLoad = 0;
    let answered = 0;
    for (let i = 0; i < 200 && applied.length < 40; i++) {
      if (node.hasReady()) {
        const ready = node.ready();
        applied.push(...ready.committedEntries);
        if (answered === 0) appliedBeforeAnyLoad += ready.committedEntries.length;
        for (const load of ready.loads) waiting.push({ load, age: 0 });
        node.advance(ready);
      }
      for (const w of waiting) w.age++;
      const due = waiting.findIndex((w) => w.age > 2);
      if (due >= 0) {
        const { load } = waiting.splice(due, 1)[0] as { load: LoadRequest };
        expect(load.to).toBeLessThanOrEqual(40);
        node.loaded({ from: load.from, entries: storage.read(load) });
        answered++;
      }
    }
    // check
    expect(appliedBeforeAnyLoad).toBe(0);
    expectInOrder(applied, 40);
    expect(applied).toEqual(log.slice(0, 40));
    expect(answered).toBeGreaterThanOrEqual(5); // at most 8 entries per load
    expect(node.status()).toMatchObject({ applied: 40, commit: 40 });
  });

  it('a replica restarted with config.applied hands out only the entries after it', () => {
    // init: 20 committed entries, the first 12 already in the state machine
    const log = logOfTerms(repeat(1, 20));
    const s = new Solo(1, [1, 2, 3], {
      storage: storageWith(log, { term: 1, commit: 20 }),
      config: { applied: 12 },
      tailEntries: 3,
    });
    // act
    s.drain();
    // check
    expect(s.applied).toEqual(log.slice(12));
    expect(s.readies.flatMap((r) => r.loads).map((l) => [l.from, l.to])).toEqual([[13, 17]]);
  });

  it('committed entries are handed out in Readies of at most maxApplyBytesPerReady, in order', () => {
    // init
    const log = logOfTerms(repeat(1, 30));
    const limit = 4 * entryBytes(log[20] as Entry);
    const s = new Solo(1, [1, 2, 3], {
      storage: storageWith(log, { term: 1, commit: 30 }),
      config: { maxApplyBytesPerReady: limit },
      tailEntries: 10,
    });
    // act
    const readies = s.drain();
    // check
    const batches = readies.map((r) => r.committedEntries).filter((b) => b.length > 0);
    expect(batches.length).toBeGreaterThanOrEqual(30 / 4);
    for (const b of batches)
      expect(b.reduce((a, e) => a + entryBytes(e), 0)).toBeLessThanOrEqual(limit);
    expectInOrder(s.applied, 30);
  });

  it('while a load is outstanding the replica offers no Ready (nothing to spin on)', () => {
    // init
    const storage = storageWith(logOfTerms(repeat(1, 20)), { term: 1, commit: 20 });
    const node = new RawNode(
      { id: 1, voters: [1, 2, 3], random: seededRandom(1) },
      storage.initialState(2),
    );
    const first = node.ready();
    expect(first.loads).toEqual([expect.objectContaining({ from: 1, to: 18 })]);
    node.advance(first);
    // act / check: until the load is answered there is nothing new to do
    expect(node.hasReady()).toBe(false);
    node.loaded({ from: 1, entries: storage.read(first.loads[0] as LoadRequest) });
    expect(node.hasReady()).toBe(true);
    expect(node.ready().committedEntries).toHaveLength(18);
  });

  it('a leader whose tail is short catches a lagging follower up from loaded entries', () => {
    // init: the leader keeps about five entries in memory
    const eb = entryBytes(entry(1, 1, 'entry-00'));
    const c = new Cluster([1, 2, 3], () => ({ maxTailBytes: 5 * eb, maxLoadBytes: 7 * eb }));
    let loads = 0;
    const appendsTo3: Message[] = [];
    c.onReady = (id, r) => {
      if (id === 1) loads += r.loads.length;
      if (id === 1)
        appendsTo3.push(...r.messagesNow.filter((m) => m.to === 3 && m.entries.length > 0));
    };
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 60; i++) {
      c.propose(1, `entry-${String(i).padStart(2, '0')}`);
      if (i % 3 === 0) c.stabilize();
    }
    c.run(2);
    expect(c.get(1).node.internals.log.cachedFrom).toBeGreaterThan(
      c.get(3).node.status().lastIndex + 1,
    );
    // act
    c.heal();
    c.run(3);
    // check
    expect(loads).toBeGreaterThan(3);
    // Appends built from storage are marked, so a host can send them on its catch-up path.
    // The first appends came from memory; later ones were read back from storage.
    expect(appendsTo3.findIndex((m) => m.catchUp === true)).toBeGreaterThan(0);
    expect(appendsTo3.filter((m) => m.catchUp === true).length).toBeGreaterThan(3);
    expect(c.log(3)).toEqual(c.log(1));
    expect(c.appliedTexts(3)).toEqual(c.appliedTexts(1));
    expect(c.appliedTexts(3)).toHaveLength(60);
  });

  it('loads answered late and out of order still apply in order and catch every follower up', () => {
    // init: five replicas. 1, 4 and 5 hold 60 entries (30 known committed); 2 holds 10, 3 holds
    // 20. Replica 1 restarts with 5 entries in memory; 4 and 5 are down.
    const log = logOfTerms(repeat(1, 60));
    const eb = entryBytes(log[0] as Entry);
    const c = new Cluster([1, 2, 3, 4, 5], () => ({ maxLoadBytes: 8 * eb, maxTailBytes: 10 * eb }));
    c.start(1, storageWith(log, { term: 1, commit: 30 }), 0, { tailEntries: 5 });
    c.start(2, storageWith(log.slice(0, 10), { term: 1, commit: 10 }));
    c.start(3, storageWith(log.slice(0, 20), { term: 1, commit: 20 }));
    for (const id of [4, 5]) c.start(id, storageWith(log, { term: 1, commit: 30 }));
    c.isolate(4);
    c.isolate(5);
    c.deferLoads.add(1);
    // act: 1 is elected; its loads wait
    c.elect(1);
    c.run(2);
    // check: one load for the state machine and one per lagging follower, nothing applied yet
    expect(c.leader()).toBe(1);
    expect(c.pendingLoads.map((p) => p.load.from).sort((a, b) => a - b)).toEqual([1, 11, 21]);
    expect(c.get(1).applied).toEqual([]);
    // act: answer the newest load first, with ticks in between
    let answered = 0;
    while (c.pendingLoads.length > 0 && answered < 100) {
      c.answerLoad(c.pendingLoads.length - 1);
      answered++;
      c.run(1);
    }
    c.run(2);
    // check
    expect(c.pendingLoads).toEqual([]);
    expect(answered).toBeGreaterThan(8);
    expectInOrder(c.get(1).applied, 61);
    for (const id of [2, 3]) {
      expect(c.log(id)).toEqual(c.log(1));
      expect(c.get(id).node.status().commit).toBe(61);
      expectInOrder(c.get(id).applied, 61);
    }
    expect(c.get(1).applied.slice(0, 60)).toEqual(log);
  });
});

// Keep MemoryStorage in the import list honest: a storage written by a Ready replaces the log from
// the first entry it writes (the host's half of the contract that the tests above rely on).
it('memory storage replaces the log from the first entry a Ready writes', () => {
  const s = new MemoryStorage();
  s.write({ entries: logOfTerms([1, 1, 1]), hardState: undefined });
  s.write({ entries: [entry(2, 2)], hardState: { term: 2, vote: 0, commit: 0 } });
  expect(ids(s.entries)).toEqual(['1@1', '2@2']);
});
