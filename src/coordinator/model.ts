import type { ShardThroughputLimits } from '../common/limits.js';
import { brokerOfReplica, replicaIdOf } from '../common/replica-id.js';

/**
 * The metadata model: what the coordinator knows about streams and shards. Records are immutable;
 * a change replaces a record. Hash keys are decimal strings so records serialize as plain JSON.
 */

export type StreamStatus = 'CREATING' | 'ACTIVE' | 'UPDATING' | 'DELETING';
export type StreamMode = 'PROVISIONED' | 'ON_DEMAND';

export interface ShardRecord {
  readonly shardId: string;
  /** Unique for the life of the cluster; part of every sequence number and storage key. */
  readonly incarnation: number;
  readonly hashKeyStart: string;
  readonly hashKeyEnd: string;
  readonly parentShardId?: string;
  readonly adjacentParentShardId?: string;
  readonly createdMs: number;
  /** Set once a split or merge sealed the shard. */
  readonly closedMs?: number;
  readonly endingSequenceNumber?: string;
  /**
   * The brokers holding a replica (see replicaIdIn for their Raft replica ids). Absent: the shard
   * lives on the single node (`rheos dev`).
   */
  readonly replicas?: readonly number[];
  /**
   * The Raft replica ids of the voters the shard's group started with (generation 0: the broker
   * ids). Every replica, including one added by a move long after, starts its membership from
   * these and follows the changes in the log (replica ids are never reused, so replaying them
   * lands on the current membership). Absent: `replicas` (the shard has never moved).
   */
  readonly bootstrapReplicas?: readonly number[];
  /**
   * Raft replica ids removed from the group by moves. A broker that joins the group again does so
   * under its next generation (one more than the times it left), so no id is ever reused.
   */
  readonly retiredReplicas?: readonly number[];
  /** A replica move under way (one per shard at a time); `to` is already in `replicas`. */
  readonly move?: ReplicaMove;
  /**
   * A child of a split or merge in progress: its replicas exist but it takes no writes and is not
   * listed until every parent is sealed (then the flag goes and `createdMs` is the opening time).
   */
  readonly pending?: true;
}

export type MoveReason = 'replace' | 'drain' | 'balance';

/**
 * Moving a shard's replica from one broker to another by Raft membership changes only: `to` joins
 * as a learner, catches up, becomes a voter, then `from` is removed (after handing leadership on).
 * The coordinator leader drives it through the shard's leader, one step per turn.
 */
export interface ReplicaMove {
  readonly from: number;
  readonly to: number;
  readonly reason: MoveReason;
  readonly startedMs: number;
}

/**
 * One split or merge of a planned reshard, in hash keys rather than shard ids (the shards it acts
 * on may not exist yet when it is planned): split the open shard holding `hashKey` so that a child
 * starts there, or merge the open shard starting at `hashKey` into the one ending just below it.
 */
export interface ReshardStep {
  readonly kind: 'split' | 'merge';
  readonly hashKey: string;
  /** A merge whose ShardToMerge is the upper shard (it becomes the child's ParentShardId). */
  readonly upperIsParent?: true;
}

/**
 * A reshard in progress: a resumable intent. The current step's children exist (pending); each
 * parent is sealed through its Raft log and then recorded closed; once all are, the children open
 * and the next step starts. A coordinator that takes over mid-way carries on from here.
 */
export interface ReshardIntent {
  readonly operation: 'SplitShard' | 'MergeShards' | 'UpdateShardCount';
  readonly startedMs: number;
  readonly parents: readonly string[];
  readonly children: readonly string[];
  /** Steps still to start after the current one (UpdateShardCount). */
  readonly remaining: readonly ReshardStep[];
  /** UpdateShardCount's target. */
  readonly targetShardCount?: number;
}

export interface StreamRecord {
  readonly name: string;
  /** Unique for the life of the cluster: a re-created stream of the same name is a new stream. */
  readonly incarnation: number;
  readonly status: StreamStatus;
  readonly mode: StreamMode;
  readonly createdMs: number;
  readonly retentionHours: number;
  readonly shardLimits: ShardThroughputLimits;
  readonly replicationFactor: number;
  readonly tags: Readonly<Record<string, string>>;
  /** In shard-id order. */
  readonly shards: readonly ShardRecord[];
  /** The ordinal of the next shard id; absent in streams never resharded: shards.length. */
  readonly nextShardOrdinal?: number;
  /** Set while a split, merge or shard-count update is carried out (status UPDATING). */
  readonly reshard?: ReshardIntent;
  /** Enhanced fan-out consumers registered on the stream, oldest first; absent: none. */
  readonly consumers?: readonly ConsumerRecord[];
}

export type ConsumerStatus = 'CREATING' | 'ACTIVE' | 'DELETING';

/** A registered enhanced fan-out consumer (RegisterStreamConsumer). */
export interface ConsumerRecord {
  /** Unique within the stream. */
  readonly name: string;
  readonly status: ConsumerStatus;
  /** Also in the consumer's ARN (in seconds), so a re-registered name gets a new ARN. */
  readonly createdMs: number;
}

/** Where a consumer group starts in a shard it has never checkpointed (the KCL's initial position). */
export type GroupStart =
  | { readonly type: 'TRIM_HORIZON' }
  | { readonly type: 'LATEST' }
  | { readonly type: 'AT_TIMESTAMP'; readonly timestampMs: number };

/** Checkpoints that are not sequence numbers, named as the KCL names them. */
export type CheckpointSentinel = 'TRIM_HORIZON' | 'LATEST' | 'AT_TIMESTAMP' | 'SHARD_END';

/**
 * A consumer group's lease on one shard, with the KCL lease table's columns. `counter` is the
 * fencing token: it moves on at every change of owner, and every write names the counter it saw.
 */
export interface LeaseRecord {
  readonly shardId: string;
  /** The worker holding the lease; absent: nobody (free to take). */
  readonly owner?: string;
  readonly counter: number;
  /** A sequence number of the shard, or a sentinel. */
  readonly checkpoint: string;
  readonly checkpointSubSequenceNumber: number;
  readonly ownerSwitchesSinceCheckpoint: number;
}

/**
 * A consumer group (a KCL application): workers sharing one stream's shards. Only leases that
 * differ from a fresh one are stored; every listed shard without one has a fresh lease (nobody's,
 * counter 0, at the group's start), so a split needs no shard sync to give its children leases.
 */
export interface GroupRecord {
  readonly application: string;
  readonly streamName: string;
  readonly streamIncarnation: number;
  readonly createdMs: number;
  readonly start: GroupStart;
  /** In shard-id order. */
  readonly leases: readonly LeaseRecord[];
}

export interface IteratorKeyRecord {
  readonly id: number;
  readonly secretBase64: string;
  readonly createdMs: number;
}

export type BrokerState = 'up' | 'down';

/** A broker of the cluster, as it registered and as the coordinator last judged it. */
export interface BrokerRecord {
  /** Also its Raft replica id in every shard group it joins; never reused. */
  readonly id: number;
  /** Failure domain (rack, availability zone); '' when not given. */
  readonly zone: string;
  /** host:port of its client API. */
  readonly api: string;
  /** host:port of its peer service. */
  readonly peer: string;
  readonly registeredMs: number;
  readonly state: BrokerState;
  readonly stateSinceMs: number;
  /**
   * The random token a new broker stored in its data folder before it first registered: a retry
   * whose first answer was lost gets the same id back, never a second one.
   */
  readonly token?: string;
  /** `rheos admin drain`: every replica and leadership moves off it, and nothing new comes. */
  readonly draining?: true;
}

export interface Counters {
  readonly nextStreamIncarnation: number;
  readonly nextShardIncarnation: number;
  readonly nextIteratorKeyId: number;
  /** Absent in metadata written before brokers registered: 1. */
  readonly nextBrokerId?: number;
}

export interface MetadataState {
  readonly streams: ReadonlyMap<string, StreamRecord>;
  /** Registered brokers by id; empty on a single node (`rheos dev`), whose shards have no replica sets. */
  readonly brokers: ReadonlyMap<number, BrokerRecord>;
  readonly counters: Counters;
  /** Oldest first; the last one signs new iterators. */
  readonly iteratorKeys: readonly IteratorKeyRecord[];
  /** Consumer groups by application name. Brokers are not sent them. */
  readonly groups: ReadonlyMap<string, GroupRecord>;
}

export const INITIAL_COUNTERS: Counters = {
  nextStreamIncarnation: 1,
  nextShardIncarnation: 1,
  nextIteratorKeyId: 1,
  nextBrokerId: 1,
};

/** Account-wide limits (DescribeLimits). */
export interface AccountLimits {
  readonly shardLimit: number;
  readonly onDemandStreamCountLimit: number;
}

export const DEFAULT_ACCOUNT_LIMITS: AccountLimits = {
  shardLimit: 10_000,
  onDemandStreamCountLimit: 50,
};

/** Takes writes: not closed by a split or merge, and not a child still waiting for its parents. */
export function isOpen(shard: ShardRecord): boolean {
  return shard.endingSequenceNumber === undefined && shard.pending !== true;
}

/** The voters a replica of the shard starts its membership from (see bootstrapReplicas). */
export function bootstrapVotersOf(shard: ShardRecord): readonly number[] | undefined {
  return shard.bootstrapReplicas ?? shard.replicas;
}

/** The Raft replica id of broker `brokerId`'s replica of the shard (now, or if it joined now). */
export function replicaIdIn(shard: ShardRecord, brokerId: number): number {
  let generation = 0;
  for (const id of shard.retiredReplicas ?? []) if (brokerOfReplica(id) === brokerId) generation++;
  return replicaIdOf(brokerId, generation);
}

/** Brokers that take new replicas and leaderships: up and not draining. */
export function takesReplicas(broker: BrokerRecord): boolean {
  return broker.state === 'up' && broker.draining !== true;
}

/** Shown to users (ListShards, DescribeStream): every shard but pending children. */
export function isListed(shard: ShardRecord): boolean {
  return shard.pending !== true;
}

export function openShardCount(stream: StreamRecord): number {
  return stream.shards.filter(isOpen).length;
}

/** The shards that took over a closed shard's hash range (its children), in shard-id order. */
export function childrenOf(stream: StreamRecord, shardId: string): ShardRecord[] {
  return stream.shards.filter(
    (s) => s.parentShardId === shardId || s.adjacentParentShardId === shardId,
  );
}

/** Streams whose data plane is up: reads and writes are served. */
export function isServing(stream: StreamRecord): boolean {
  return stream.status === 'ACTIVE' || stream.status === 'UPDATING';
}
