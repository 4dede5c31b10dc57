import type { NodeId } from './types.js';

/**
 * Switches that turn off one safety rule each. They exist so the simulator can prove that its
 * checkers catch the violation each rule prevents; production code never sets them.
 */
export interface UnsafeSwitches {
  /** Count replicas for entries of earlier terms too (breaks Figure 8 of the paper). */
  readonly commitEntriesOfEarlierTerms?: boolean;
  /** Grant votes without checking that the candidate's log is at least as up to date. */
  readonly voteWithoutLogCheck?: boolean;
  /** Let the leader count its own entries toward commit before they are durable. */
  readonly leaderCountsUnsyncedEntries?: boolean;
  /** Answer ReadIndex requests without confirming leadership with a quorum first. */
  readonly readWithoutQuorumCheck?: boolean;
  /** Let the next membership change be proposed before the previous one has committed. */
  readonly concurrentConfChanges?: boolean;
  /** Install a snapshot even when it is older than what this replica has committed. */
  readonly installOlderSnapshots?: boolean;
}

export interface RaftConfig {
  readonly id: NodeId;
  /** The voting members when the group was created (later changes come from the log). */
  readonly voters: readonly NodeId[];
  /** Followers wait between electionTicks and 2 * electionTicks - 1 ticks before campaigning. */
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  /** Ask first (pre-vote) so a node cut off from the cluster cannot inflate terms. */
  readonly preVote?: boolean;
  /** A leader that has not heard from a quorum for an election timeout steps down. */
  readonly checkQuorum?: boolean;
  /** Upper bound on the entries of one append message. */
  readonly maxSizePerMsgBytes?: number;
  /** Appends in flight per follower in the replicate state, by count and by bytes (0: no limit). */
  readonly maxInflightMsgs?: number;
  readonly maxInflightBytes?: number;
  /** Proposals beyond this many bytes not yet committed are dropped. */
  readonly maxUncommittedBytes?: number;
  /** Entries kept in memory once they are durable and applied. */
  readonly maxTailBytes?: number;
  /** Committed entries handed out per Ready. */
  readonly maxApplyBytesPerReady?: number;
  /** Entries read per load request. */
  readonly maxLoadBytes?: number;
  /** The last applied index at start (everything up to it is in the state machine already). */
  readonly applied?: number;
  /**
   * Idle groups go quiet: a leader whose followers hold everything stops heartbeating, and they
   * stop their election timers, until anything happens. The host must then wake the groups of a
   * peer it finds dead (RawNode.unquiesce; MultiRaft does it from node-level heartbeats).
   */
  readonly quiesce?: boolean;
  /** Asked before an election timeout starts a campaign; false postpones it (bounded election rate). */
  readonly mayCampaign?: () => boolean;
  /** Uniform in [0, 1): the only source of randomness (randomized election timeouts). */
  readonly random: () => number;
  readonly unsafe?: UnsafeSwitches;
}

export type ResolvedConfig = Required<Omit<RaftConfig, 'unsafe' | 'mayCampaign'>> & {
  readonly unsafe: UnsafeSwitches;
  readonly mayCampaign: (() => boolean) | undefined;
};

export function resolveConfig(config: RaftConfig): ResolvedConfig {
  return {
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    maxSizePerMsgBytes: 1024 * 1024,
    maxInflightMsgs: 256,
    maxInflightBytes: 32 * 1024 * 1024,
    maxUncommittedBytes: 64 * 1024 * 1024,
    maxTailBytes: 64 * 1024 * 1024,
    maxApplyBytesPerReady: 16 * 1024 * 1024,
    maxLoadBytes: 4 * 1024 * 1024,
    applied: 0,
    quiesce: false,
    ...config,
    mayCampaign: config.mayCampaign,
    unsafe: config.unsafe ?? {},
  };
}
