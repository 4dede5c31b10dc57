import { assert } from '../common/assert.js';
import type { Clock } from '../common/clock.js';
import {
  InternalFailureError,
  NotLeaderError,
  ProvisionedThroughputExceededError,
  ServiceUnavailableError,
  ShardSealedError,
  type LeaderHint,
} from '../common/errors.js';
import type { LogPosition } from '../common/sequence-number.js';
import { ProposalDroppedError } from '../raft/errors.js';
import type { RawNode } from '../raft/raw-node.js';
import {
  EntryType,
  NONE,
  Role,
  type Entry,
  type NodeId,
  type ReadState,
  type Snapshot,
} from '../raft/types.js';
import type { KvOp } from '../storage/kv-store.js';
import type { ProducerDecision, ProducerHeader } from '../storage/producer-table.js';
import {
  arrivalOf,
  encodeRecordsCommand,
  encodeSealCommand,
  isSealEntry,
  sealChildren,
  stampedPayload,
  toLogEntry,
} from '../storage/raft-entry.js';
import type { ShardSeal } from '../storage/shard-log.js';
import {
  decodeShardSnapshotData,
  encodeShardSnapshotData,
  type ShardRaftStore,
} from '../storage/shard-raft-store.js';
import type {
  AppendResult,
  ProposedRecord,
  ReadLimits,
  ReadResult,
  ShardReplica,
} from './replica.js';
import { CommittedTail } from './committed-tail.js';
import { appendOutcome, sealedOutcome } from './producer-outcome.js';
import { ReadableSignal } from './readable-signal.js';
import { ReadIndexReads } from './read-index.js';
import { positionAtTimestamp, readRecords, type ReadableLog } from './shard-reads.js';

/**
 * A shard replica that is one member of the shard's Raft group. Writes are proposed on the leader
 * and acknowledged once committed (on a majority's disks) and applied; reads see applied entries
 * only, on any replica. The host (RaftHost) drives the group and calls back here with what each
 * processing cycle persisted and applied.
 */

/** What the replica needs from its host. */
export interface RaftReplicaHost {
  /** The group has work (a proposal): run a processing cycle soon. */
  touch(shard: number): void;
  /** Queues a compaction for the next cycle; resolves once it is durable. */
  compact(shard: number, snapshot: Snapshot): Promise<void>;
  /** Stops driving the group (its replica is being deleted). */
  remove(shard: number): Promise<void>;
  /** Where a broker serves clients, for NOT_LEADER hints. */
  addressOf(brokerId: NodeId): string | undefined;
  /** The broker a group member (a Raft replica id) lives on. */
  brokerOf(replicaId: NodeId): NodeId;
  readonly storageFailed: boolean;
}

export interface RaftReplicaOptions {
  readonly shard: number;
  readonly node: RawNode;
  readonly store: ShardRaftStore;
  readonly host: RaftReplicaHost;
  readonly clock: Clock;
  readonly appliedIndex: number;
  readonly lastArrivalMs: number;
  /** Bytes proposed here and not yet acknowledged, beyond which writes are throttled. */
  readonly maxPendingBytes?: number;
  /** A write still unanswered after this long fails as indeterminate. */
  readonly proposalTimeoutMs?: number;
  /** Test-only: acknowledge once the leader's own write is durable, before commit (unsafe). */
  readonly unsafeAckBeforeCommit?: boolean;
  /** Payload bytes of the newest applied entries kept in memory for readers. */
  readonly tailBytes?: number;
  /**
   * How long a follower at its tip waits for the leader to confirm how far the log is committed;
   * 0 turns confirmation off (hand-driven test harnesses that deliver no read states).
   */
  readonly readConfirmTimeoutMs?: number;
}

interface SealWaiter {
  readonly index: number;
  readonly term: number;
  readonly children: readonly string[];
  readonly done: Promise<number>;
  readonly resolve: (index: number) => void;
  readonly reject: (error: Error) => void;
}

interface Waiter {
  readonly term: number;
  readonly arrivalMs: number;
  readonly bytes: number;
  /** An idempotent producer's batch: its header and record count. */
  readonly producer: { readonly header: ProducerHeader; readonly count: number } | undefined;
  readonly deadlineMs: number;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: Error) => void;
}

export class RaftReplica implements ShardReplica {
  readonly shard: number;
  readonly node: RawNode;
  readonly store: ShardRaftStore;
  private readonly host: RaftReplicaHost;
  private readonly clock: Clock;
  private readonly maxPendingBytes: number;
  private readonly proposalTimeoutMs: number;
  private readonly readConfirmTimeoutMs: number;
  private readonly readable: ReadableLog;
  /** Proposals of this replica as leader, by log index. */
  private readonly waiters = new Map<number, Waiter>();
  /** Producer-table decisions of waiters' entries, from applyOps until they are settled. */
  private readonly decisions = new Map<number, ProducerDecision>();
  private pendingBytes = 0;
  private appliedBytes = 0;
  private applied: number;
  private lastArrivalMs: number;
  private newestAppliedArrivalMs = 0;
  private closed = false;
  private trimming = false;
  /** This replica's SEAL proposal awaiting commit. */
  private sealWaiter: SealWaiter | undefined;
  /**
   * Children named by a SEAL this replica has in its log but not applied yet (proposed here or
   * received as a follower): proposals are refused from then on. Conservative: should that SEAL be
   * overwritten, the coordinator seals again, and the refused writes were never stored.
   */
  private sealSeen: readonly string[] | undefined;
  /** Wakes push readers when entries become readable (applied here). */
  private readonly readableSignal: ReadableSignal;
  private readonly tail: CommittedTail;
  /** A follower's reads at its tip, confirmed by the leader (ReadIndex). */
  private readonly tipReads: ReadIndexReads;

  constructor(private readonly options: RaftReplicaOptions) {
    this.shard = options.shard;
    this.node = options.node;
    this.store = options.store;
    this.host = options.host;
    this.clock = options.clock;
    this.applied = options.appliedIndex;
    this.readableSignal = new ReadableSignal(this.applied);
    this.lastArrivalMs = options.lastArrivalMs;
    this.maxPendingBytes = options.maxPendingBytes ?? 32 * 1024 * 1024;
    this.proposalTimeoutMs = options.proposalTimeoutMs ?? 10_000;
    this.readConfirmTimeoutMs = options.readConfirmTimeoutMs ?? 1_000;
    this.tail = new CommittedTail(options.tailBytes);
    this.readable = {
      log: this.store.log,
      trimHorizon: () => this.trimHorizon(),
      readableIndex: () => this.applied,
      tipArrivalMs: () => this.newestAppliedArrivalMs,
      tail: this.tail,
    };
    this.tipReads = new ReadIndexReads({
      node: options.node,
      touch: () => options.host.touch(this.shard),
      maxPending: 10_000,
      overLimit: () =>
        new ProvisionedThroughputExceededError('Rate exceeded for shard: too many reads waiting.'),
      noLeader: () => this.notLeader(),
    });
  }

  /** Finds the newest applied record's arrival time (for millisBehindLatest) after a restart. */
  async init(): Promise<void> {
    const newest = await this.store.log.lastArrivedBefore(Number.MAX_SAFE_INTEGER);
    this.newestAppliedArrivalMs = newest?.arrivalMs ?? this.store.trimPoint.arrivalMs;
  }

  /** Entry bytes applied since the replica was opened (for heartbeats' write rates). */
  get bytesApplied(): number {
    return this.appliedBytes;
  }

  get isLeader(): boolean {
    return this.node.status().role === Role.Leader;
  }

  leaderHint(): LeaderHint | undefined {
    const lead = this.leaderId();
    if (lead === undefined) return undefined;
    const endpoint = this.host.addressOf(lead);
    return endpoint === undefined ? undefined : { brokerId: lead, endpoint };
  }

  notLeader(): NotLeaderError {
    const leader = this.leaderHint();
    return new NotLeaderError(
      leader === undefined
        ? `No leader is known for this shard yet; retry shortly.`
        : `This broker does not lead the shard; its leader is broker ${leader.brokerId} at ${leader.endpoint}.`,
      leader === undefined ? {} : { leader },
    );
  }

  /** The broker of the leader this replica knows of. */
  leaderId(): number | undefined {
    const lead = this.node.lead;
    return lead === NONE ? undefined : this.host.brokerOf(lead);
  }

  checkWritable(): void {
    if (!this.isLeader) throw this.notLeader();
  }

  propose(records: readonly ProposedRecord[], producer?: ProducerHeader): Promise<AppendResult> {
    assert(records.length > 0, 'a proposal holds at least one record');
    if (this.closed)
      return Promise.reject(new ServiceUnavailableError(`shard ${this.shard} is closing`));
    if (this.host.storageFailed)
      return Promise.reject(new ServiceUnavailableError('storage has failed on this broker'));
    const seal = this.store.log.seal;
    if (seal !== undefined && producer !== undefined) {
      // The applied SEAL makes the producer table final: any replica can answer a retry.
      try {
        return Promise.resolve(
          sealedOutcome(this.store.log, producer, records.length, seal.children),
        );
      } catch (error) {
        return Promise.reject(error as Error);
      }
    }
    if (!this.isLeader) return Promise.reject(this.notLeader());
    const sealedFor = seal?.children ?? this.sealSeen;
    if (sealedFor !== undefined && producer !== undefined) {
      // Whether this batch was stored before the SEAL is known once the SEAL is applied.
      return Promise.reject(
        new ServiceUnavailableError(
          'The shard is being sealed by a split or merge; retry shortly.',
        ),
      );
    }
    if (sealedFor !== undefined) return Promise.reject(ShardSealedError.forChildren(sealedFor));
    if (this.pendingBytes >= this.maxPendingBytes) {
      return Promise.reject(
        new ProvisionedThroughputExceededError(
          'Rate exceeded for shard: too many writes are waiting for commit.',
        ),
      );
    }
    // Arrival times never go backwards within a shard, across leaders too: a new leader has every
    // committed entry and stamps no earlier than the newest arrival in its log.
    const arrivalMs = Math.max(this.clock.nowMs(), this.lastArrivalMs);
    const data = encodeRecordsCommand(arrivalMs, records, producer);
    let where: { index: number; term: number };
    try {
      where = this.node.propose(data);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      if (error.leaderHint === this.node.status().id) {
        return Promise.reject(
          new ProvisionedThroughputExceededError(
            'Rate exceeded for shard: too many uncommitted writes.',
            {
              cause: error,
            },
          ),
        );
      }
      return Promise.reject(this.notLeader());
    }
    this.lastArrivalMs = arrivalMs;
    this.pendingBytes += data.length;
    const promise = new Promise<AppendResult>((resolve, reject) => {
      this.waiters.set(where.index, {
        term: where.term,
        arrivalMs,
        bytes: data.length,
        producer: producer === undefined ? undefined : { header: producer, count: records.length },
        deadlineMs: this.clock.monotonicMs() + this.proposalTimeoutMs,
        resolve,
        reject,
      });
    });
    this.host.touch(this.shard);
    return promise;
  }

  seal(children: readonly string[]): Promise<number> {
    const applied = this.store.log.seal;
    if (applied !== undefined) return Promise.resolve(applied.index);
    if (this.sealWaiter !== undefined) return this.sealWaiter.done;
    if (this.closed)
      return Promise.reject(new ServiceUnavailableError(`shard ${this.shard} is closing`));
    if (this.host.storageFailed)
      return Promise.reject(new ServiceUnavailableError('storage has failed on this broker'));
    if (!this.isLeader) return Promise.reject(this.notLeader());
    const arrivalMs = Math.max(this.clock.nowMs(), this.lastArrivalMs);
    let where: { index: number; term: number };
    try {
      where = this.node.propose(encodeSealCommand(arrivalMs, children));
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      return Promise.reject(this.notLeader());
    }
    this.lastArrivalMs = arrivalMs;
    this.sealSeen = children;
    let resolve!: (index: number) => void;
    let reject!: (error: Error) => void;
    const done = new Promise<number>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.sealWaiter = { index: where.index, term: where.term, children, done, resolve, reject };
    this.host.touch(this.shard);
    return done;
  }

  sealed(): ShardSeal | undefined {
    return this.store.log.seal;
  }

  // ---------------------------------------------------------------------------------------------
  // Called by the host, in cycle order.

  /** Entries this replica is about to write (as leader or follower): arrival times go forward. */
  appended(entries: readonly Entry[]): void {
    for (const entry of entries) {
      const arrival = arrivalOf(entry);
      if (arrival !== undefined && arrival > this.lastArrivalMs) this.lastArrivalMs = arrival;
      if (this.sealSeen === undefined && isSealEntry(entry)) {
        this.sealSeen = sealChildren(entry.index, stampedPayload(entry).subarray(4));
      }
    }
  }

  /** The writes that apply committed entries (their arrival-time keys and the applied index). */
  applyOps(entries: readonly Entry[]): KvOp[] {
    const { ops, decisions } = this.store.applyEntries(entries);
    for (const [index, decision] of decisions) {
      if (this.waiters.has(index)) this.decisions.set(index, decision);
    }
    return ops;
  }

  /** The batch holding `entries` (this Ready's writes) is durable. Only for the unsafe test mode. */
  persisted(entries: readonly Entry[]): void {
    if (this.options.unsafeAckBeforeCommit !== true) return;
    for (const entry of entries) this.settle(entry, 'early');
  }

  /** Committed entries were applied (their index keys are durable): acknowledge their writers. */
  appliedEntries(entries: readonly Entry[], snapshot: Snapshot | undefined): void {
    if (snapshot !== undefined) {
      // The log now starts after the snapshot: the tail's entries are no longer next to it.
      this.tail.clear();
      this.applied = snapshot.index;
      this.newestAppliedArrivalMs = Math.max(
        this.newestAppliedArrivalMs,
        decodeShardSnapshotData(snapshot.data).arrivalMs,
      );
      this.lastArrivalMs = Math.max(this.lastArrivalMs, this.newestAppliedArrivalMs);
    }
    const seal = this.store.log.seal;
    for (const entry of entries) {
      this.applied = entry.index;
      this.appliedBytes += entry.data.length;
      const refused = seal !== undefined && entry.index > seal.index;
      const arrival = refused || isSealEntry(entry) ? undefined : arrivalOf(entry);
      if (arrival !== undefined) this.newestAppliedArrivalMs = arrival;
      this.settleSeal(entry);
      this.settle(entry, 'applied', refused ? seal : undefined);
    }
    if (entries.length > 0) this.tail.append(entries.map(toLogEntry));
    this.readableSignal.advance(this.applied);
    this.tipReads.serve(this.applied);
  }

  readStates(states: readonly ReadState[]): void {
    this.tipReads.confirmed(states, this.applied);
  }

  waitReadable(afterIndex: number, signal?: AbortSignal): Promise<void> {
    return this.readableSignal.wait(afterIndex, signal);
  }

  private settleSeal(entry: Entry): void {
    const waiter = this.sealWaiter;
    if (waiter === undefined || waiter.index !== entry.index) return;
    this.sealWaiter = undefined;
    const seal = this.store.log.seal;
    if (seal !== undefined && seal.index <= entry.index) waiter.resolve(seal.index);
    else waiter.reject(new ServiceUnavailableError('The seal did not commit; seal again.'));
  }

  /** Leadership changed: writes proposed here may still commit, or not; nobody can say yet. */
  roleChanged(role: Role): void {
    if (role === Role.Leader) return;
    this.failAll(
      () =>
        new InternalFailureError(
          'Leadership of the shard moved while the write was in flight; it may or may not be stored.',
        ),
    );
  }

  /** Fails writes that waited too long (a leader that can no longer reach a majority). */
  expire(nowMs: number): void {
    this.tipReads.expire(
      nowMs,
      () => new ServiceUnavailableError('The read was not confirmed in time.'),
    );
    // A SEAL proposal is not timed out: it settles when its index is applied, or with leadership.
    for (const [index, waiter] of this.waiters) {
      if (waiter.deadlineMs > nowMs) continue;
      this.release(index, waiter);
      waiter.reject(
        new InternalFailureError(
          'The write was not committed in time; it may or may not be stored.',
        ),
      );
    }
  }

  private settle(entry: Entry, when: 'early' | 'applied', refusedBy?: ShardSeal): void {
    const decision = this.decisions.get(entry.index);
    this.decisions.delete(entry.index);
    const waiter = this.waiters.get(entry.index);
    if (waiter === undefined) return;
    this.release(entry.index, waiter);
    if (refusedBy !== undefined && waiter.producer !== undefined) {
      // Committed after the SEAL, so this entry stored nothing; but it may be the retry of a batch
      // stored before the SEAL (a restarted leader does not know of a SEAL in its log that is not
      // applied yet, and takes the retry): the now final table says which.
      try {
        const { header, count } = waiter.producer;
        waiter.resolve(sealedOutcome(this.store.log, header, count, refusedBy.children));
      } catch (error) {
        waiter.reject(error as Error);
      }
    } else if (refusedBy !== undefined) {
      // Committed after the SEAL: refused at apply, never readable, so nothing was stored.
      waiter.reject(ShardSealedError.forChildren(refusedBy.children));
    } else if (waiter.term === entry.term && entry.type === EntryType.Normal) {
      try {
        waiter.resolve(
          appendOutcome(when === 'applied' ? decision : undefined, entry.index, waiter.arrivalMs),
        );
      } catch (error) {
        waiter.reject(error as Error);
      }
    } else if (when === 'applied') {
      // Another entry committed at this index: ours never can. Nothing was written.
      waiter.reject(
        new ServiceUnavailableError(
          'Leadership of the shard moved before the write committed; it was not stored.',
        ),
      );
    }
  }

  private release(index: number, waiter: Waiter): void {
    this.waiters.delete(index);
    this.pendingBytes -= waiter.bytes;
  }

  private failAll(error: () => Error): void {
    for (const [index, waiter] of this.waiters) {
      this.release(index, waiter);
      waiter.reject(error());
    }
    const seal = this.sealWaiter;
    if (seal !== undefined) {
      this.sealWaiter = undefined;
      seal.reject(error());
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  async read(from: LogPosition, limits: ReadLimits): Promise<ReadResult> {
    const result = await readRecords(this.readable, from, limits);
    if (!result.caughtUp || result.endOfShard || this.isLeader || this.closed) return result;
    if (this.readConfirmTimeoutMs === 0) return result;
    // A follower learns of commits a message after its leader, so at its own tip it may lack
    // writes already acknowledged. It asks the leader how far the log is committed (ReadIndex)
    // and waits to have applied that far: "caught up" then means caught up with every write
    // acknowledged before this read, on any replica.
    try {
      await this.tipReads.ask(this.clock.monotonicMs() + this.readConfirmTimeoutMs);
    } catch {
      // No leader, or none confirmed in time: what this replica holds, marked as unconfirmed.
      return { ...result, caughtUp: false, unconfirmed: true };
    }
    if (this.applied < result.next.index) return result;
    if (result.records.length === 0) return readRecords(this.readable, from, limits);
    return { ...result, caughtUp: false, tipArrivalMs: this.newestAppliedArrivalMs };
  }

  trimHorizon(): LogPosition {
    return { index: this.store.trimPoint.index + 1, offset: 0 };
  }

  latest(): LogPosition {
    return { index: this.applied + 1, offset: 0 };
  }

  commitIndex(): number {
    return this.applied;
  }

  positionAtTimestamp(ms: number): Promise<LogPosition> {
    return positionAtTimestamp(this.readable, ms, this.applied);
  }

  /**
   * Retention is log compaction: each replica trims its own applied prefix, and the group's leader
   * sends followers that fall behind it a snapshot (the trim point) instead of the trimmed entries.
   */
  async trimArrivedBefore(cutoffMs: number): Promise<number> {
    if (this.trimming || this.closed) return 0;
    this.trimming = true;
    try {
      const last = await this.store.log.lastArrivedBefore(cutoffMs);
      const previous = this.store.trimPoint.index;
      if (last === undefined || last.index <= previous || last.index > this.applied) return 0;
      // The snapshot at the trim point carries the producer table as of that entry, so a replica
      // that installs it decides later retries exactly as this one did.
      const producers = await this.store.log.producerTableAt(last.index);
      await this.host.compact(this.shard, {
        index: last.index,
        term: this.store.termAt(last.index),
        confState: this.node.confStateAt(last.index),
        data: encodeShardSnapshotData({ arrivalMs: last.arrivalMs, payload: producers }),
      });
      return this.store.trimPoint.index - previous;
    } finally {
      this.trimming = false;
    }
  }

  /** Refuses new writes and fails those in flight (their outcome is unknown). */
  async close(): Promise<void> {
    this.closed = true;
    this.readableSignal.close();
    this.tail.clear();
    this.tipReads.failAll(() => new ServiceUnavailableError('The broker is shutting down.'));
    this.failAll(
      () =>
        new ServiceUnavailableError(
          'The broker is shutting down; the write may or may not be stored.',
          { indeterminate: true },
        ),
    );
  }

  async destroy(): Promise<void> {
    await this.host.remove(this.shard);
    await this.store.log.destroy();
  }
}
