import { resolveConfig, type RaftConfig, type ResolvedConfig } from './config.js';
import { CorruptStateError, invariant, ProposalDroppedError } from './errors.js';
import { Membership } from './membership.js';
import { Progress, ProgressState } from './progress.js';
import { RaftLog } from './raft-log.js';
import {
  EntryType,
  MessageType,
  NONE,
  Role,
  entryBytes,
  type Entry,
  type HardState,
  type InitialState,
  type LoadRequest,
  type LoadResult,
  type Message,
  type NodeId,
  type ReadState,
  type Snapshot,
  type ConfChange,
  type ConfState,
  encodeConfChange,
} from './types.js';

/**
 * The Raft state machine (Ongaro and Ousterhout, "In Search of an Understandable Consensus
 * Algorithm", with the extensions of Ongaro's thesis that etcd implements: pre-vote and
 * check-quorum). Pure and synchronous: inputs are ticks, messages, proposals and storage loads;
 * outputs are collected for the next Ready (see raw-node.ts). Comments cite the paper's sections.
 */

type Requester = NodeId | 'apply';

interface PendingLoad {
  readonly to: number;
  readonly requesters: Set<Requester>;
}

type PollResult = 'won' | 'lost' | 'pending';

export class Raft {
  readonly id: NodeId;
  readonly config: ResolvedConfig;
  readonly log: RaftLog;
  term: number;
  vote: NodeId;
  lead: NodeId = NONE;
  role: Role = Role.Follower;

  /** Voters decide, learners only receive the log; the latest change in the log is in force. */
  private membership: Membership;
  /** The latest snapshot (what a follower gets when its next entries were compacted away). */
  private snapshot: Snapshot | undefined;
  /** A snapshot received from the leader, for the host to install at the next Ready. */
  snapshotToInstall: Snapshot | undefined;
  private progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** The leader's own proposals not yet committed: (index, bytes), for maxUncommittedBytes. */
  private uncommitted: Array<{ index: number; bytes: number }> = [];
  private uncommittedBytes = 0;
  /** New entries or a new commit index to tell followers about at the next Ready. */
  private broadcastPending = false;

  /** Messages to send now (leader appends and heartbeats, which need nothing persisted). */
  readonly sendNow: Message[] = [];
  /** Messages to send only after the Ready's hard state and entries are durable. */
  readonly sendAfterPersist: Message[] = [];
  /** Load requests not yet handed to the host. */
  readonly loadRequests: LoadRequest[] = [];
  private readonly pendingLoads = new Map<number, PendingLoad>();
  /** Set while a leadership transfer to this node is under way (proposals are refused). */
  leadTransferee: NodeId = NONE;
  /** Linearizable reads whose index is known; the host serves them once applied reaches it. */
  readonly readStates: ReadState[] = [];
  /** Leader: reads waiting for a quorum to confirm leadership, in arrival order. */
  private readonly pendingReads: Array<{
    context: string;
    index: number;
    from: NodeId;
    acks: Set<NodeId>;
  }> = [];
  /** Leader: reads that arrived before this term committed an entry (the commit index is stale). */
  private readonly readsBeforeCommit: Array<{ context: string; from: NodeId }> = [];
  /** Committed entries read from storage, waiting to be applied. */
  private applyBuffer: Entry[] = [];
  /** A load for entries to apply is outstanding (until it returns there is nothing to apply). */
  private applyLoading = false;

  constructor(config: RaftConfig, initial: InitialState) {
    if (!initial.intact) {
      throw new CorruptStateError(
        `replica ${config.id}: persisted state failed verification; it must not vote or lead`,
      );
    }
    this.config = resolveConfig(config);
    this.id = config.id;
    this.snapshot = initial.snapshot;
    this.membership = new Membership(
      initial.firstIndexMinusOne,
      initial.termAtFirstIndexMinusOne,
      initial.confState ?? { voters: config.voters, learners: [], removed: [] },
      initial.confEntries ?? [],
    );
    invariant(this.id !== NONE, 'replica id 0 is reserved');
    this.log = new RaftLog(initial, this.config.applied);
    this.term = initial.hardState.term;
    this.vote = initial.hardState.vote;
    invariant(this.log.lastTerm <= this.term, 'the log holds a term later than the current one');
    this.becomeFollower(this.term, NONE);
  }

  get hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private get quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  private get voters(): readonly NodeId[] {
    return this.membership.current.voters;
  }

  private get learners(): readonly NodeId[] {
    return this.membership.current.learners;
  }

  private get isVoter(): boolean {
    return this.membership.isVoter(this.id);
  }

  /**
   * Voters campaign; so does a replica whose own removal is in its log but not yet known to be
   * committed (dissertation §4.2.2): it may be the only one holding that entry, and the others,
   * whose logs are shorter, cannot win without its vote. Its own vote does not count (poll only
   * counts voters), and once it commits the removal it steps down.
   */
  private get standsForElection(): boolean {
    if (this.isVoter) return true;
    const committed = this.log.committed;
    return (
      this.membership.lastChangeIndex > committed &&
      this.membership.at(committed).voters.includes(this.id)
    );
  }

  get confState(): ConfState {
    return this.membership.current;
  }

  /** The membership in force at `index` (what a snapshot taken there must carry). */
  confStateAt(index: number): ConfState {
    return this.membership.at(index);
  }

  // ---------------------------------------------------------------------------------------------
  // Roles (§5.2)

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    // Randomized in [electionTicks, 2 * electionTicks) so that split votes are rare (§5.2).
    const ticks = this.config.electionTicks;
    this.randomizedElectionTimeout = ticks + Math.floor(this.config.random() * ticks);
    this.votes.clear();
    this.progress.clear();
    this.uncommitted = [];
    this.uncommittedBytes = 0;
    this.broadcastPending = false;
    this.leadTransferee = NONE;
    this.quiesced = false;
    // Reads in flight are dropped with the role; their callers time out and retry.
    this.pendingReads.length = 0;
    this.readsBeforeCommit.length = 0;
  }

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = Role.Follower;
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    invariant(this.role !== Role.Leader, 'a leader does not pre-campaign');
    // Pre-candidacy changes neither the term nor the vote: that is its point.
    this.role = Role.PreCandidate;
    this.votes.clear();
    this.lead = NONE;
  }

  private becomeCandidate(): void {
    invariant(this.role !== Role.Leader, 'a leader does not campaign');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
  }

  private becomeLeader(): void {
    invariant(this.role === Role.Candidate, 'only a candidate becomes leader');
    this.reset(this.term);
    this.role = Role.Leader;
    this.lead = this.id;
    for (const id of [...this.voters, ...this.learners]) {
      const pr = new Progress(
        this.log.lastIndex + 1,
        this.config.maxInflightMsgs,
        this.config.maxInflightBytes,
      );
      if (id === this.id) pr.match = this.log.stable;
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
    // An empty entry of the new term: once it commits, everything before it is committed (§5.4.2).
    this.appendEntry(EntryType.Empty, new Uint8Array(0));
  }

  // ---------------------------------------------------------------------------------------------
  // Time

  tick(): void {
    if (this.quiesced) return;
    if (this.role === Role.Leader) this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.standsForElection && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      // The host may spread elections out (after a restart, thousands of groups time out at once).
      if (this.config.mayCampaign !== undefined && !this.config.mayCampaign()) return;
      this.campaign(this.config.preVote);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Quiescence: idle groups send nothing and tick nothing (CockroachDB's scheme)

  /** Neither ticking nor heartbeating until something happens. */
  quiesced = false;

  /** Leader: everyone holds and has committed everything, and nothing is pending. */
  private canQuiesce(): boolean {
    if (!this.config.quiesce || this.role !== Role.Leader || this.leadTransferee !== NONE)
      return false;
    if (this.pendingReads.length > 0 || this.readsBeforeCommit.length > 0 || this.broadcastPending)
      return false;
    const last = this.log.lastIndex;
    if (
      this.log.committed !== last ||
      this.log.stable !== last ||
      this.log.term(last) !== this.term
    )
      return false;
    for (const [id, pr] of this.progress) {
      if (id !== this.id && (pr.match !== last || !pr.recentActive)) return false;
    }
    return true;
  }

  /** On a leader: whether `id` holds every entry of the log and was heard from lately. */
  isCaughtUp(id: NodeId): boolean {
    const pr = this.progress.get(id);
    return (
      this.role === Role.Leader &&
      pr !== undefined &&
      pr.recentActive &&
      pr.match === this.log.lastIndex
    );
  }

  /** On a leader: how far a member's log is known to match (undefined elsewhere or unknown id). */
  matchOf(id: NodeId): { readonly match: number; readonly recentActive: boolean } | undefined {
    if (this.role !== Role.Leader) return undefined;
    const pr = this.progress.get(id);
    return pr === undefined ? undefined : { match: pr.match, recentActive: pr.recentActive };
  }

  /** On a leader: how many entries the furthest-behind other member lacks (0 elsewhere). */
  maxFollowerLag(): number {
    if (this.role !== Role.Leader) return 0;
    let lag = 0;
    for (const [id, pr] of this.progress) {
      if (id !== this.id) lag = Math.max(lag, this.log.lastIndex - pr.match);
    }
    return lag;
  }

  private quiesce(): void {
    this.quiesced = true;
    for (const [id] of this.progress) {
      if (id === this.id) continue;
      this.send(
        {
          type: MessageType.Heartbeat,
          to: id,
          term: this.term,
          commit: this.log.committed,
          quiesce: true,
        },
        'now',
      );
    }
  }

  /** Wakes the group: the host calls it when a peer seems dead; proposals and messages do it too. */
  unquiesce(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    // Give check-quorum a fresh window: nobody was expected to talk while the group was quiet.
    for (const pr of this.progress.values()) pr.recentActive = true;
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      // A transfer that has not finished within an election timeout is abandoned.
      this.leadTransferee = NONE;
      if (this.config.checkQuorum && !this.quorumActive()) {
        // Cut off from a majority: stop accepting writes that can never commit (check-quorum).
        this.becomeFollower(this.term, NONE);
        return;
      }
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      if (this.canQuiesce()) this.quiesce();
      else this.broadcastHeartbeat();
    }
  }

  /** Heard from a quorum since the last check (and resets the marks for the next one). */
  private quorumActive(): boolean {
    let active = 0;
    for (const [id, pr] of this.progress) {
      if (this.voters.includes(id) && (id === this.id || pr.recentActive)) active++;
      if (id !== this.id) pr.recentActive = false;
    }
    return active >= this.quorum;
  }

  // ---------------------------------------------------------------------------------------------
  // Elections (§5.2, §5.4.1; pre-vote: thesis §9.6)

  /** Starts an election now (tests; `force` for leadership transfer). */
  campaign(preVote: boolean, force = false): void {
    if (this.role === Role.Leader || !this.standsForElection) return;
    let voteTerm: number;
    let type: MessageType;
    if (preVote) {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
      type = MessageType.PreVote;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
      type = MessageType.Vote;
    }
    if (this.poll(this.id, true) === 'won') {
      // A single-voter group.
      if (preVote) this.campaign(false);
      else this.becomeLeader();
      return;
    }
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send(
        {
          type,
          to: id,
          term: voteTerm,
          index: this.log.lastIndex,
          logTerm: this.log.lastTerm,
          force,
        },
        'afterPersist',
      );
    }
  }

  private poll(from: NodeId, granted: boolean): PollResult {
    if (!this.voters.includes(from)) return 'pending';
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.votes.values()) {
      if (v) yes++;
      else no++;
    }
    if (yes >= this.quorum) return 'won';
    if (no > this.voters.length - this.quorum) return 'lost';
    return 'pending';
  }

  // ---------------------------------------------------------------------------------------------
  // Messages

  step(m: Message): void {
    const quietHeartbeat = m.type === MessageType.Heartbeat && m.quiesce === true;
    if (!quietHeartbeat && m.type !== MessageType.HeartbeatResp) this.unquiesce();
    if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        // A follower that heard from its leader within the election timeout ignores vote
        // requests, so a partitioned node rejoining cannot disrupt a healthy leader.
        const inLease =
          this.config.checkQuorum &&
          this.lead !== NONE &&
          this.electionElapsed < this.config.electionTicks;
        // A transfer's election is meant to replace the leader, so the lease does not apply.
        if (inLease && !m.force) return;
      }
      if (m.type === MessageType.PreVote) {
        // Never change term for a pre-vote request.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // Granted pre-votes carry the future term; the pre-candidate becomes candidate below.
      } else {
        const fromLeader = m.type === MessageType.App || m.type === MessageType.Heartbeat;
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.config.checkQuorum || this.config.preVote) &&
        (m.type === MessageType.App || m.type === MessageType.Heartbeat)
      ) {
        // A stale leader learns our term and steps down; without this, a leader cut off by a
        // partition could stay leader forever when pre-vote keeps the others' terms low.
        this.send({ type: MessageType.AppResp, to: m.from, term: this.term }, 'afterPersist');
      } else if (m.type === MessageType.PreVote) {
        this.send(
          { type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true },
          'afterPersist',
        );
      }
      return;
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case Role.Leader:
        this.stepLeader(m);
        return;
      case Role.Candidate:
      case Role.PreCandidate:
        this.stepCandidate(m);
        return;
      case Role.Follower:
        this.stepFollower(m);
        return;
    }
  }

  private handleVoteRequest(m: Message): void {
    const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === MessageType.PreVote && m.term > this.term);
    // §5.4.1: vote only for a candidate whose log is at least as up to date as ours.
    const upToDate =
      this.config.unsafe.voteWithoutLogCheck === true || this.log.isUpToDate(m.index, m.logTerm);
    // Learners (and replicas not in our view of the membership) may vote: a learner promoted to
    // voter may not have applied its promotion yet, and if it refused, a group whose other voters
    // need its vote could never elect a leader to tell it (etcd makes the same choice). Only the
    // candidate's own voters are counted.
    if (canVote && upToDate) {
      // The vote must be durable before it is announced: persist, then send (Ready contract).
      this.send({ type: respType, to: m.from, term: m.term }, 'afterPersist');
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, term: this.term, reject: true }, 'afterPersist');
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.TimeoutNow:
        // The leader chose us and caught us up: campaign now, skipping pre-vote (thesis §3.10).
        this.campaign(false, true);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.VoteResp:
      case MessageType.PreVoteResp: {
        const expected =
          this.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
        if (m.type !== expected) return;
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.role === Role.PreCandidate) this.campaign(false);
          else {
            this.becomeLeader();
            this.broadcastPending = true;
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case MessageType.AppResp:
        pr.recentActive = true;
        if (m.reject) this.handleAppendRejected(m, pr);
        else this.handleAppendAccepted(m, pr);
        return;
      case MessageType.HeartbeatResp:
        pr.recentActive = true;
        pr.probeSent = false;
        // If every append that filled the window was lost, nothing would ever free it: a
        // heartbeat answer frees one slot so an append can go and be acked or rejected (etcd).
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirst();
        // A snapshot that was lost (or is still being installed) is sent again after a while.
        if (pr.state === ProgressState.Snapshot && ++pr.snapshotWait >= this.config.electionTicks)
          pr.becomeProbe();
        if (pr.match < this.log.lastIndex) this.sendAppend(m.from, pr);
        if (m.context !== '') this.confirmReads(m.context, m.from);
        return;
      case MessageType.ReadIndex:
        this.handleReadIndex(m.context, m.from);
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Leadership transfer (thesis §3.10)

  /** Hands leadership to `target` once it has every entry; proposals wait until it is done. */
  transferLeadership(target: NodeId): void {
    this.unquiesce();
    if (this.role !== Role.Leader || target === this.id || this.leadTransferee === target) return;
    const pr = this.progress.get(target);
    if (pr === undefined) return;
    this.leadTransferee = target;
    // The transfer must finish within an election timeout, or it is abandoned (tickLeader).
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex)
      this.send({ type: MessageType.TimeoutNow, to: target, term: this.term }, 'now');
    else this.sendAppend(target, pr);
  }

  // ---------------------------------------------------------------------------------------------
  // Linearizable reads without clock leases (ReadIndex, thesis §6.4)

  /**
   * Asks for a read index: it appears in Ready.readStates with `context`, and the read may be
   * served once `applied` reaches it. Throws ProposalDroppedError when no leader is known.
   */
  readIndex(context: string): void {
    this.unquiesce();
    if (this.role === Role.Leader) {
      this.handleReadIndex(context, this.id);
    } else if (this.lead !== NONE) {
      this.send({ type: MessageType.ReadIndex, to: this.lead, term: this.term, context }, 'now');
    } else {
      throw new ProposalDroppedError('read dropped: no leader is known', NONE);
    }
  }

  private handleReadIndex(context: string, from: NodeId): void {
    // Until this term has committed an entry, the leader's commit index may be behind what an
    // earlier leader committed: such reads wait for the term's first commit.
    if (this.log.term(this.log.committed) !== this.term) {
      this.readsBeforeCommit.push({ context, from });
      return;
    }
    const read = { context, index: this.log.committed, from, acks: new Set<NodeId>([this.id]) };
    if (
      this.votersAmong(read.acks) >= this.quorum ||
      this.config.unsafe.readWithoutQuorumCheck === true
    ) {
      this.answerRead(read);
      return;
    }
    this.pendingReads.push(read);
    // One heartbeat round confirms that no newer leader exists (a quorum still follows us).
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: MessageType.Heartbeat, to: id, term: this.term, commit, context }, 'now');
    }
  }

  /** A heartbeat answer for `context` confirms that read and every read queued before it. */
  private confirmReads(context: string, from: NodeId): void {
    const position = this.pendingReads.findIndex((r) => r.context === context);
    if (position < 0) return;
    const read = this.pendingReads[position] as { acks: Set<NodeId> };
    read.acks.add(from);
    // Only voters confirm leadership: learners answer heartbeats too.
    if (this.votersAmong(read.acks) < this.quorum) return;
    for (const confirmed of this.pendingReads.splice(0, position + 1)) this.answerRead(confirmed);
  }

  private votersAmong(ids: ReadonlySet<NodeId>): number {
    let n = 0;
    for (const id of ids) if (this.membership.isVoter(id)) n++;
    return n;
  }

  private answerRead(read: { context: string; index: number; from: NodeId }): void {
    if (read.from === this.id) this.readStates.push({ index: read.index, context: read.context });
    else
      this.send(
        {
          type: MessageType.ReadIndexResp,
          to: read.from,
          term: this.term,
          index: read.index,
          context: read.context,
        },
        'now',
      );
  }

  /** Reads that waited for this term's first commit can now go ahead. */
  private releaseReadsBeforeCommit(): void {
    if (this.readsBeforeCommit.length === 0 || this.log.term(this.log.committed) !== this.term)
      return;
    for (const { context, from } of this.readsBeforeCommit.splice(0))
      this.handleReadIndex(context, from);
  }

  // ---------------------------------------------------------------------------------------------
  // Replication (§5.3)

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(
        { type: MessageType.AppResp, to: m.from, term: this.term, index: this.log.committed },
        'afterPersist',
      );
      return;
    }
    if (this.log.matchTerm(m.index, m.logTerm)) {
      const lastNew = this.log.appendFromLeader(m.index, m.entries);
      this.trackMembership(m.entries);
      this.log.commitTo(Math.min(m.commit, lastNew));
      // Acknowledged only once the entries are durable (the Ready contract): a leader must never
      // count a replica that could forget what it acknowledged.
      this.send(
        { type: MessageType.AppResp, to: m.from, term: this.term, index: lastNew },
        'afterPersist',
      );
      return;
    }
    // Fast back-off: tell the leader the last index whose term could match.
    const hint = this.log.terms.lastIndexWithTermAtMost(
      Math.min(m.index, this.log.lastIndex),
      m.logTerm,
    );
    this.send(
      {
        type: MessageType.AppResp,
        to: m.from,
        term: this.term,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        logTerm: hint.term,
      },
      'afterPersist',
    );
  }

  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    if (snapshot === undefined) return;
    const older =
      snapshot.index <= this.log.committed && this.config.unsafe.installOlderSnapshots !== true;
    if (older) {
      // Nothing new: what it covers is committed here already.
      this.send(
        { type: MessageType.AppResp, to: m.from, term: this.term, index: this.log.committed },
        'afterPersist',
      );
      return;
    }
    if (snapshot.index > this.log.committed && this.log.matchTerm(snapshot.index, snapshot.term)) {
      // The log already has the snapshot's last entry: just learn that it is committed.
      this.log.commitTo(snapshot.index);
      this.send(
        { type: MessageType.AppResp, to: m.from, term: this.term, index: this.log.committed },
        'afterPersist',
      );
      return;
    }
    this.log.restore(snapshot.index, snapshot.term);
    this.membership = new Membership(snapshot.index, snapshot.term, snapshot.confState, []);
    this.confChanged = true;
    this.snapshot = snapshot;
    this.snapshotToInstall = snapshot;
    this.applyBuffer = [];
    this.applyLoading = false;
    this.send(
      { type: MessageType.AppResp, to: m.from, term: this.term, index: snapshot.index },
      'afterPersist',
    );
  }

  /**
   * The host saved the state machine as `snapshot` (at or below the applied index): entries up to
   * it may go (log compaction). Followers that need them get the snapshot instead.
   */
  compact(snapshot: Snapshot): void {
    invariant(snapshot.index <= this.log.applied, 'a snapshot covers applied entries only');
    invariant(this.log.term(snapshot.index) === snapshot.term, 'the snapshot agrees with the log');
    if (snapshot.index < this.log.firstIndex) return;
    this.log.compactTo(snapshot.index);
    this.membership.compactTo(snapshot.index, snapshot.term);
    this.snapshot = snapshot;
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex));
    // Go quiet only if fully caught up with the leader; otherwise keep ticking to catch up.
    if (m.quiesce === true && this.config.quiesce) {
      if (m.commit === this.log.lastIndex && this.log.committed === this.log.lastIndex)
        this.quiesced = true;
      else this.unquiesce();
    }
    this.send(
      { type: MessageType.HeartbeatResp, to: m.from, term: this.term, context: m.context },
      'afterPersist',
    );
  }

  private handleAppendRejected(m: Message, pr: Progress): void {
    let nextProbe = m.rejectHint;
    if (m.logTerm > 0)
      nextProbe = this.log.terms.lastIndexWithTermAtMost(m.rejectHint, m.logTerm).index;
    if (pr.maybeDecreaseTo(m.index, nextProbe)) {
      if (pr.state === ProgressState.Replicate) pr.becomeProbe();
      pr.catchUp = [];
      this.sendAppend(m.from, pr);
    }
  }

  private handleAppendAccepted(m: Message, pr: Progress): void {
    const wasPaused = pr.isPaused();
    const updated = pr.maybeUpdate(m.index);
    // A probe acknowledged exactly at the known match still proves where the logs agree.
    if (!updated && !(pr.state === ProgressState.Probe && pr.match === m.index)) return;
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Snapshot) {
      // The follower has the snapshot (or more): replicate from there.
      if (pr.match + 1 < this.log.firstIndex) return;
      pr.becomeProbe();
      pr.becomeReplicate();
    } else {
      pr.inflights.freeTo(m.index);
    }
    if (this.maybeCommit()) {
      this.broadcastPending = true;
    } else if (wasPaused) {
      this.sendAppend(m.from, pr);
    }
    while (this.sendAppend(m.from, pr, false)) {
      // Fill the window.
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex) {
      this.send({ type: MessageType.TimeoutNow, to: m.from, term: this.term }, 'now');
    }
  }

  /** Sends the follower its next entries (or an empty probe); false if nothing could be sent. */
  private sendAppend(to: NodeId, pr: Progress, sendIfEmpty = true): boolean {
    if (pr.isPaused() || to === this.id) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) return this.sendSnapshot(to, pr);
    let entries: Entry[] = [];
    let catchUp = false;
    if (pr.next <= this.log.lastIndex) {
      const found = this.entriesFor(to, pr);
      if (found === undefined) return false;
      entries = found.entries;
      catchUp = found.fromStorage;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const entry of entries) bytes += entryBytes(entry);
    this.send(
      {
        type: MessageType.App,
        to,
        term: this.term,
        index: prevIndex,
        logTerm: prevTerm,
        entries,
        commit: this.log.committed,
        ...(catchUp ? { catchUp } : {}),
      },
      'now',
    );
    const last = entries.length === 0 ? prevIndex : (entries[entries.length - 1] as Entry).index;
    pr.sentAppend(last, entries.length, bytes);
    return true;
  }

  /** The follower needs entries that were compacted away: it gets the snapshot instead. */
  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const snapshot = this.snapshot;
    invariant(snapshot !== undefined, 'a compacted log always has a snapshot');
    this.send({ type: MessageType.Snap, to, term: this.term, snapshot, catchUp: true }, 'now');
    pr.becomeSnapshot(snapshot.index);
    return false;
  }

  /** Entries from pr.next: from memory, from a finished load, or undefined while a load runs. */
  private entriesFor(
    to: NodeId,
    pr: Progress,
  ): { entries: Entry[]; fromStorage: boolean } | undefined {
    const max = this.config.maxSizePerMsgBytes;
    const cached = this.log.cachedEntries(pr.next, this.log.lastIndex, max);
    if (cached !== undefined) return { entries: cached, fromStorage: false };
    const first = pr.catchUp[0];
    if (first !== undefined && first.index === pr.next) {
      const out: Entry[] = [];
      let bytes = 0;
      for (const entry of pr.catchUp) {
        bytes += entryBytes(entry);
        if (out.length > 0 && bytes > max) break;
        out.push(entry);
      }
      pr.catchUp = pr.catchUp.slice(out.length);
      return { entries: out, fromStorage: true };
    }
    pr.catchUp = [];
    if (!pr.loading) {
      pr.loading = true;
      this.requestLoad(pr.next, this.log.cachedFrom - 1, to);
    }
    return undefined;
  }

  private broadcastAppend(): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      if (!this.sendAppend(id, pr)) continue;
      while (this.sendAppend(id, pr, false)) {
        // Pipeline as far as the window allows.
      }
    }
  }

  private broadcastHeartbeat(): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      // Never tell a follower to commit beyond what it is known to hold.
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: MessageType.Heartbeat, to: id, term: this.term, commit }, 'now');
    }
  }

  /**
   * Advances the commit index to the highest index a quorum holds durably, but only for an entry
   * of the current term (§5.4.2, Figure 8); earlier entries then commit with it.
   */
  maybeCommit(): boolean {
    if (this.role !== Role.Leader) return false;
    const matches: number[] = [];
    for (const [id, pr] of this.progress) {
      if (!this.voters.includes(id)) continue;
      if (id === this.id) {
        // The leader counts itself only for what it has written durably.
        matches.push(
          this.config.unsafe.leaderCountsUnsyncedEntries ? this.log.lastIndex : this.log.stable,
        );
      } else {
        matches.push(pr.match);
      }
    }
    matches.sort((a, b) => b - a);
    const index = matches[this.quorum - 1] as number;
    if (index <= this.log.committed) return false;
    if (
      this.log.term(index) !== this.term &&
      this.config.unsafe.commitEntriesOfEarlierTerms !== true
    )
      return false;
    this.log.commitTo(index);
    this.releaseReadsBeforeCommit();
    this.stepDownIfRemoved();
    while (
      this.uncommitted.length > 0 &&
      (this.uncommitted[0] as { index: number }).index <= index
    ) {
      this.uncommittedBytes -= (this.uncommitted.shift() as { bytes: number }).bytes;
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Proposals

  propose(data: Uint8Array): { index: number; term: number } {
    this.unquiesce();
    if (this.role === Role.Leader && this.leadTransferee !== NONE) {
      throw new ProposalDroppedError(
        `proposal dropped: leadership is moving to ${this.leadTransferee}`,
        this.leadTransferee,
      );
    }
    if (this.role !== Role.Leader) {
      throw new ProposalDroppedError(
        this.lead === NONE
          ? 'proposal dropped: no leader is known'
          : `proposal dropped: not the leader (leader is ${this.lead})`,
        this.lead,
      );
    }
    if (
      this.uncommittedBytes > 0 &&
      this.uncommittedBytes + data.length > this.config.maxUncommittedBytes
    ) {
      throw new ProposalDroppedError('proposal dropped: too many uncommitted bytes', this.id);
    }
    const entry = this.appendEntry(EntryType.Normal, data);
    this.uncommitted.push({ index: entry.index, bytes: data.length });
    this.uncommittedBytes += data.length;
    return { index: entry.index, term: entry.term };
  }

  private appendEntry(type: EntryType, data: Uint8Array): Entry {
    const entry: Entry = { index: this.log.lastIndex + 1, term: this.term, type, data };
    this.log.append([entry]);
    if (type === EntryType.ConfChange && this.membership.appended([entry]))
      this.membershipChanged();
    // Sent at the next Ready, so proposals made in between travel together (batching).
    this.broadcastPending = true;
    return entry;
  }

  /** Sends what accumulated since the last Ready: new entries and commit indexes. */
  flushBroadcast(): void {
    if (this.broadcastPending && this.role === Role.Leader) this.broadcastAppend();
    this.broadcastPending = false;
  }

  get hasPendingBroadcast(): boolean {
    return this.broadcastPending && this.role === Role.Leader;
  }

  // ---------------------------------------------------------------------------------------------
  // Membership (single-server changes, one at a time, in force once in the log: membership.ts)

  /** Membership changed since the host last took it (for Ready.confState). */
  confChanged = false;

  /**
   * Proposes one membership change. Refused while an earlier change is uncommitted, and until this
   * leader has committed an entry of its own term (the fix for single-server changes: Ongaro,
   * raft-dev, 2015), and for a replica id that was ever removed.
   */
  proposeConfChange(change: ConfChange): { index: number; term: number } {
    this.unquiesce();
    if (this.role !== Role.Leader) {
      throw new ProposalDroppedError('membership change dropped: not the leader', this.lead);
    }
    const refuse = (why: string) =>
      new ProposalDroppedError(`membership change dropped: ${why}`, this.id);
    if (this.leadTransferee !== NONE) throw refuse('leadership is being transferred');
    if (this.config.unsafe.concurrentConfChanges !== true) {
      if (this.membership.lastChangeIndex > this.log.committed)
        throw refuse('another change is in progress');
      if (this.log.term(this.log.committed) !== this.term)
        throw refuse('this term has committed nothing yet');
    }
    const conf = this.membership.current;
    const { type, node } = change;
    const voter = conf.voters.includes(node);
    const learner = conf.learners.includes(node);
    if (type !== 'removeNode' && conf.removed.includes(node)) {
      throw refuse(`replica id ${node} was removed and ids are never reused`);
    }
    if (type === 'addVoter' && voter) throw refuse(`${node} is already a voter`);
    if (type === 'addLearner' && (voter || learner)) throw refuse(`${node} is already a member`);
    if (type === 'removeNode' && !voter && !learner) throw refuse(`${node} is not a member`);
    if (type === 'removeNode' && voter && conf.voters.length === 1)
      throw refuse('the last voter cannot go');
    const entry = this.appendEntry(EntryType.ConfChange, encodeConfChange(change));
    return { index: entry.index, term: entry.term };
  }

  /** Brings the membership in line with the log after entries were appended (or replaced). */
  private trackMembership(appended: readonly Entry[]): void {
    const reverted = this.membership.reconcile((i) => this.log.term(i));
    const changed = this.membership.appended(
      appended.filter((e) => this.log.term(e.index) === e.term),
    );
    if (reverted || changed) this.membershipChanged();
  }

  private membershipChanged(): void {
    this.confChanged = true;
    if (this.role !== Role.Leader) return;
    for (const id of [...this.voters, ...this.learners]) {
      if (this.progress.has(id)) continue;
      const pr = new Progress(
        this.log.lastIndex + 1,
        this.config.maxInflightMsgs,
        this.config.maxInflightBytes,
      );
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
    for (const id of [...this.progress.keys()]) {
      // The leader keeps its own progress while it leads a group that no longer includes it.
      if (id !== this.id && !this.membership.isMember(id)) this.progress.delete(id);
    }
    if (this.leadTransferee !== NONE && !this.membership.isVoter(this.leadTransferee))
      this.leadTransferee = NONE;
    // A changed quorum may already hold more entries.
    if (this.maybeCommit()) this.broadcastPending = true;
    this.broadcastPending = true;
  }

  /** A leader that is no longer a voter leads until the change removing it commits, then goes. */
  private stepDownIfRemoved(): void {
    if (
      this.role === Role.Leader &&
      !this.isVoter &&
      this.membership.lastChangeIndex <= this.log.committed
    ) {
      this.becomeFollower(this.term, NONE);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Persistence and application (called by RawNode)

  /** The host durably wrote these entries. */
  persisted(entries: readonly Entry[]): void {
    const before = this.log.stable;
    this.log.persisted(entries);
    if (this.role === Role.Leader && this.log.stable > before) {
      const self = this.progress.get(this.id);
      if (self !== undefined) self.match = Math.max(self.match, this.log.stable);
      if (this.maybeCommit()) this.broadcastPending = true;
    }
  }

  /** The next committed entries to apply, at most maxBytes (loads them if they are not in memory). */
  nextCommittedEntries(): Entry[] {
    const from = this.log.applied + 1;
    const to = this.log.applicableTo;
    if (from > to) return [];
    const max = this.config.maxApplyBytesPerReady;
    const cached = this.log.cachedEntries(from, to, max);
    if (cached !== undefined) return cached;
    const first = this.applyBuffer[0];
    if (first !== undefined && first.index === from) {
      const out: Entry[] = [];
      let bytes = 0;
      for (const entry of this.applyBuffer) {
        if (entry.index > to) break;
        bytes += entryBytes(entry);
        if (out.length > 0 && bytes > max) break;
        out.push(entry);
      }
      this.applyBuffer = this.applyBuffer.slice(out.length);
      return out;
    }
    this.applyBuffer = [];
    this.applyLoading = true;
    this.requestLoad(from, Math.min(to, this.log.cachedFrom - 1), 'apply');
    return [];
  }

  /** Whether the next Ready can hand out committed entries (or must request them). */
  get hasEntriesToApply(): boolean {
    const from = this.log.applied + 1;
    if (from > this.log.applicableTo) return false;
    if (from >= this.log.cachedFrom || this.applyBuffer[0]?.index === from) return true;
    return !this.applyLoading;
  }

  private requestLoad(from: number, to: number, requester: Requester): void {
    invariant(to >= from, 'a load covers at least one entry');
    const pending = this.pendingLoads.get(from);
    if (pending !== undefined) {
      pending.requesters.add(requester);
      return;
    }
    this.pendingLoads.set(from, { to, requesters: new Set([requester]) });
    this.loadRequests.push({ from, to, maxBytes: this.config.maxLoadBytes });
  }

  /** Entries the host read for a LoadRequest (in any order, possibly late or short). */
  loaded(result: LoadResult): void {
    const pending = this.pendingLoads.get(result.from);
    if (pending === undefined) return;
    this.pendingLoads.delete(result.from);
    // Keep the contiguous prefix, within the request, that is still our log (a follower's log
    // may have changed since the request).
    const entries: Entry[] = [];
    for (const entry of result.entries) {
      if (entry.index > pending.to || entry.index !== result.from + entries.length) break;
      if (this.log.term(entry.index) !== entry.term) break;
      entries.push(entry);
    }
    for (const requester of pending.requesters) {
      if (requester === 'apply') {
        this.applyLoading = false;
        if (entries[0]?.index === this.log.applied + 1) this.applyBuffer = entries;
        continue;
      }
      const pr = this.progress.get(requester);
      if (this.role !== Role.Leader || pr === undefined) continue;
      pr.loading = false;
      if (entries[0]?.index === pr.next) {
        pr.catchUp = entries;
        while (this.sendAppend(requester, pr, false)) {
          // Send what was loaded, as far as the window allows.
        }
      }
    }
  }

  appliedTo(index: number): void {
    // A snapshot installed while this Ready was out has moved applied past it already.
    if (index > this.log.applied) this.log.appliedTo(index);
  }

  // ---------------------------------------------------------------------------------------------

  private send(
    fields: Partial<Message> & Pick<Message, 'type' | 'to' | 'term'>,
    when: 'now' | 'afterPersist',
  ): void {
    const message: Message = {
      from: this.id,
      index: 0,
      logTerm: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      force: false,
      context: '',
      ...fields,
    };
    (when === 'now' ? this.sendNow : this.sendAfterPersist).push(message);
  }

  /** For tests and status pages. */
  progressOf(id: NodeId): Readonly<Progress> | undefined {
    return this.progress.get(id);
  }
}
