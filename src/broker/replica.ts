import type { LogPosition } from '../common/sequence-number.js';
import type { ProducerHeader } from '../storage/producer-table.js';
import type { ShardSeal } from '../storage/shard-log.js';

/**
 * A shard replica as the data plane sees it: propose -> commit -> apply, and reads of committed
 * entries only. The replication-factor-1 implementation (SingleNodeReplica) numbers its log
 * exactly as the Raft implementation will (log starts at 1, every term begins with an empty
 * entry), so sequence numbers, iterators and storage do not change when replication arrives.
 */

export interface ProposedRecord {
  readonly partitionKey: string;
  readonly data: Buffer;
}

export interface AppendResult {
  /** Log index of the entry holding the records; record i has offset i. */
  readonly index: number;
  readonly arrivalMs: number;
  /**
   * An idempotent producer's batch that was stored before (this write is a retry, refused at
   * apply): where each record was stored, or undefined where that is too old to say.
   */
  readonly duplicateOf?: readonly (LogPosition | undefined)[];
}

export interface ReadRecord {
  readonly position: LogPosition;
  readonly arrivalMs: number;
  readonly partitionKey: string;
  readonly data: Buffer;
}

export interface ReadLimits {
  readonly maxRecords: number;
  /** Data plus partition keys; at least one record is returned if any is there. */
  readonly maxBytes: number;
}

export interface ReadResult {
  readonly records: ReadRecord[];
  /** Where the next read continues. */
  readonly next: LogPosition;
  /** Arrival time of the newest committed record (for millisBehindLatest). */
  readonly tipArrivalMs: number;
  /** True if `next` is past the last committed entry. */
  readonly caughtUp: boolean;
  /** The shard is sealed and every record before its SEAL has been read. */
  readonly endOfShard: boolean;
  /**
   * A follower at its tip could not confirm with the leader that nothing newer is committed (no
   * leader, or none answered in time): there may be records it does not have yet.
   */
  readonly unconfirmed?: boolean;
}

export interface ShardReplica {
  /** The shard incarnation this replica stores. */
  readonly shard: number;
  /** The broker leading the shard as this replica knows it (undefined: unknown). */
  leaderId(): number | undefined;
  /** Throws NotLeaderError unless this replica can take writes now (it leads its group). */
  checkWritable(): void;
  /**
   * Appends one entry holding `records`; resolves once it is committed (durable on a quorum) and
   * applied. Refused with ShardSealedError once the shard is sealed (or a seal is under way here).
   *
   * With `producer` (an idempotent producer's batch), applying decides: a retry of a stored batch
   * resolves with `duplicateOf`, a zombie epoch fails with ProducerFencedError and a gap with
   * OutOfOrderSequenceError. A sealed shard still answers retries of batches it stored (any
   * replica that applied the SEAL can, leader or not); while a SEAL is pending the batch is
   * refused as retriable (ServiceUnavailable), since only the applied SEAL says what was stored.
   */
  propose(records: readonly ProposedRecord[], producer?: ProducerHeader): Promise<AppendResult>;
  /**
   * Closes the shard for a split or merge: commits one SEAL entry naming `children`, after which
   * no record is taken. Idempotent: a sealed shard answers with the seal it has. Resolves with the
   * SEAL's log index once it is applied. Only the leader can seal.
   */
  seal(children: readonly string[]): Promise<number>;
  /** The applied seal, if any. */
  sealed(): ShardSeal | undefined;
  read(from: LogPosition, limits: ReadLimits): Promise<ReadResult>;
  /**
   * Resolves once an entry above `afterIndex` is readable here, or the replica closes, or
   * `signal` aborts (never rejects, except when too many readers already wait): a push reader
   * sends records as they commit instead of polling.
   */
  waitReadable(afterIndex: number, signal?: AbortSignal): Promise<void>;
  /** The oldest position still stored. */
  trimHorizon(): LogPosition;
  /** The position just after the last committed entry. */
  latest(): LogPosition;
  /** The first position whose record arrived at or after `ms`, or latest() if none. */
  positionAtTimestamp(ms: number): Promise<LogPosition>;
  /** The index of the last committed entry. */
  commitIndex(): number;
  /** Removes entries that arrived before `cutoffMs`; resolves with how many were removed. */
  trimArrivedBefore(cutoffMs: number): Promise<number>;
  close(): Promise<void>;
  /** Closes and deletes every stored byte of the shard. */
  destroy(): Promise<void>;
}
