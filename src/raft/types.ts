/**
 * The vocabulary of the Raft library, named after the paper and etcd's raft. Everything here is
 * plain data: the library never touches a socket, a file, a timer or a clock.
 */

/** A replica's id. Ids are never reused: a replica that lost its disk comes back with a new id. */
export type NodeId = number;

/** No node (no vote cast, no leader known). */
export const NONE: NodeId = 0;

export enum EntryType {
  /** An application command. */
  Normal = 0,
  /** Appended by a new leader at the start of its term; commits everything before it. */
  Empty = 1,
  /** A membership change (data: an encoded ConfChange); in force once in the log (membership.ts). */
  ConfChange = 2,
}

/** One membership change. Promoting a learner is addVoter of an existing learner. */
export interface ConfChange {
  readonly type: 'addVoter' | 'addLearner' | 'removeNode';
  readonly node: NodeId;
}

/** The membership of a group. Removed ids are remembered: a replica id is never reused. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly removed: readonly NodeId[];
}

export function encodeConfChange(change: ConfChange): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(change));
}

export function decodeConfChange(data: Uint8Array): ConfChange | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(data)) as Partial<ConfChange>;
    if (
      (value.type === 'addVoter' || value.type === 'addLearner' || value.type === 'removeNode') &&
      typeof value.node === 'number' &&
      Number.isInteger(value.node) &&
      value.node > 0
    ) {
      return { type: value.type, node: value.node };
    }
  } catch {
    // Not a conf change: reported as undefined.
  }
  return undefined;
}

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What a replica must have persisted before it answers anyone (Figure 2, "Persistent state"). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 };

export enum MessageType {
  /** Leader -> follower: entries after (index, logTerm), and the leader's commit index. */
  App = 'MsgApp',
  AppResp = 'MsgAppResp',
  /** Candidate -> all: a vote request for `term`, with the candidate's last (index, logTerm). */
  Vote = 'MsgVote',
  VoteResp = 'MsgVoteResp',
  /** Like Vote, but for term + 1 without anyone changing term: would you vote for me? */
  PreVote = 'MsgPreVote',
  PreVoteResp = 'MsgPreVoteResp',
  Heartbeat = 'MsgHeartbeat',
  HeartbeatResp = 'MsgHeartbeatResp',
  /** Leader -> caught-up transferee: start an election now (leadership transfer, thesis §3.10). */
  TimeoutNow = 'MsgTimeoutNow',
  /** Follower -> leader: a linearizable read; the answer is the index to wait for (ReadIndex). */
  ReadIndex = 'MsgReadIndex',
  ReadIndexResp = 'MsgReadIndexResp',
  /** Leader -> follower whose next entries were compacted away: the state machine's snapshot. */
  Snap = 'MsgSnap',
}

/**
 * What the state machine says it is at `index` (for a shard: its metadata only). Entries up to
 * `index` may be compacted away once a snapshot covers them.
 */
export interface Snapshot {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
  readonly data: Uint8Array;
}

export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /**
   * App: index of the entry before `entries`, and its term. Vote/PreVote: the candidate's last
   * index and term. AppResp: the index acknowledged (or, on reject, the index rejected).
   */
  readonly index: number;
  readonly logTerm: number;
  readonly entries: readonly Entry[];
  /** App and Heartbeat: the leader's commit index (for heartbeats, capped at the follower's match). */
  readonly commit: number;
  readonly reject: boolean;
  /**
   * AppResp rejects: the follower's hint for fast back-off, the largest index at which its log
   * might match: its last index, or the last index of a term no greater than `logTerm`.
   */
  readonly rejectHint: number;
  /** Vote: the election was started by a leadership transfer, so it may disturb a live leader. */
  readonly force: boolean;
  /**
   * Heartbeat and HeartbeatResp: the newest ReadIndex request the heartbeat confirms leadership
   * for. ReadIndex and ReadIndexResp: the request's id.
   */
  readonly context: string;
  /** Snap: the snapshot. */
  readonly snapshot?: Snapshot;
  /** Heartbeat: the group is idle; stop ticking until something happens (quiescence). */
  readonly quiesce?: boolean;
  /**
   * App and Snap: the follower is catching up (entries read from storage, or a snapshot). A host
   * may send these on a separate, rate-limited path so they never delay heartbeats.
   */
  readonly catchUp?: boolean;
}

/**
 * A linearizable read may be served once the replica has applied `index`: when the read was
 * asked, a quorum still recognised the leader whose commit index it was.
 */
export interface ReadState {
  readonly index: number;
  readonly context: string;
}

export enum Role {
  Follower = 'follower',
  PreCandidate = 'pre-candidate',
  Candidate = 'candidate',
  Leader = 'leader',
}

/** A range of log entries the host should read from storage and hand back with `loaded()`. */
export interface LoadRequest {
  readonly from: number;
  /** Inclusive. */
  readonly to: number;
  readonly maxBytes: number;
}

/** The answer to a LoadRequest: entries from `from`, contiguous, possibly fewer than asked. */
export interface LoadResult {
  readonly from: number;
  readonly entries: readonly Entry[];
}

/** Where a replica's log begins and how its terms run, read from storage at start. */
export interface InitialState {
  readonly hardState: HardState;
  /** Everything up to and including this index has been compacted away. */
  readonly firstIndexMinusOne: number;
  readonly termAtFirstIndexMinusOne: number;
  readonly lastIndex: number;
  /**
   * Where each term begins: [{ index, term }] ascending, covering (firstIndexMinusOne, lastIndex].
   * Terms change rarely, so this is small, and with it the term of any index is known without I/O.
   */
  readonly termStarts: readonly { readonly index: number; readonly term: number }[];
  /** A suffix of the log kept in memory (may be empty). */
  readonly tail: readonly Entry[];
  /** Storage verified its checksums; false means this replica must not vote or lead. */
  readonly intact: boolean;
  /** Membership at firstIndexMinusOne (a snapshot's). Absent: the config's voters, no learners. */
  readonly confState?: ConfState;
  /** The latest snapshot (index firstIndexMinusOne), if the log was ever compacted. */
  readonly snapshot?: Snapshot;
  /**
   * Every ConfChange entry in the log (after firstIndexMinusOne). Like termStarts, these are few;
   * the membership in force is the latest one in the log.
   */
  readonly confEntries?: readonly Entry[];
}

/** A replica with nothing stored yet: no log, no votes (a new group member starts from here). */
export const EMPTY_INITIAL_STATE: InitialState = {
  hardState: EMPTY_HARD_STATE,
  firstIndexMinusOne: 0,
  termAtFirstIndexMinusOne: 0,
  lastIndex: 0,
  termStarts: [],
  tail: [],
  intact: true,
};

export function entryBytes(entry: Entry): number {
  return entry.data.length + 24;
}
