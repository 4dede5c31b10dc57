import type { ShardThroughputLimits } from '../common/limits.js';

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
   * The brokers holding a replica (their ids are the Raft replica ids). Absent: the shard lives on
   * the single node (`rheos dev`).
   */
  readonly replicas?: readonly number[];
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

export function isOpen(shard: ShardRecord): boolean {
  return shard.endingSequenceNumber === undefined;
}

export function openShardCount(stream: StreamRecord): number {
  return stream.shards.filter(isOpen).length;
}

/** Streams whose data plane is up: reads and writes are served. */
export function isServing(stream: StreamRecord): boolean {
  return stream.status === 'ACTIVE' || stream.status === 'UPDATING';
}
