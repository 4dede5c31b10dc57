import { assert } from '../common/assert.js';
import type { Clock } from '../common/clock.js';
import {
  InternalFailureError,
  ProvisionedThroughputExceededError,
  ServiceUnavailableError,
  ShardSealedError,
} from '../common/errors.js';
import type { LogPosition } from '../common/sequence-number.js';
import { EntryType, type LogEntry } from '../storage/entry-codec.js';
import { WriterFailedError, type GroupCommitWriter } from '../storage/group-commit.js';
import type { ProducerDecision, ProducerHeader } from '../storage/producer-table.js';
import { encodeRecordBatch } from '../storage/record-batch.js';
import { ShardLog, type ShardSeal, type TrimPoint } from '../storage/shard-log.js';
import { appendOutcome, sealedOutcome } from './producer-outcome.js';
import { CommittedTail } from './committed-tail.js';
import { ReadableSignal } from './readable-signal.js';
import { positionAtTimestamp, readRecords, type ReadableLog } from './shard-reads.js';
import type {
  AppendResult,
  ProposedRecord,
  ReadLimits,
  ReadResult,
  ShardReplica,
} from './replica.js';

/**
 * Replication factor 1: the broker is the only voter, so an entry is committed as soon as the
 * group-commit batch holding it is synced. It behaves like a one-node Raft group: on every start
 * it begins a new term with an empty entry, and commits everything its log holds once that entry
 * is durable.
 */

export interface SingleNodeReplicaOptions {
  readonly shard: number;
  readonly log: ShardLog;
  readonly writer: GroupCommitWriter;
  readonly clock: Clock;
  /** Uncommitted bytes this replica may have queued before it refuses more writes. */
  readonly maxPendingBytes?: number;
  /** Payload bytes of the newest committed entries kept in memory for readers. */
  readonly tailBytes?: number;
}

/** The replica's own id in the one-member configuration (what Raft would store as its vote). */
const SELF_ID = 1;

export class SingleNodeReplica implements ShardReplica {
  readonly shard: number;
  private readonly log: ShardLog;
  private readonly writer: GroupCommitWriter;
  private readonly clock: Clock;
  private readonly maxPendingBytes: number;
  private readonly readable: ReadableLog;

  private term = 0;
  private lastIndex = 0;
  private lastArrivalMs = 0;
  private committed = 0;
  /** Arrival time of the newest committed record (not of empty entries), for millisBehindLatest. */
  private newestRecordArrivalMs = 0;
  private applied = 0;
  private trimPoint: TrimPoint = { index: 0, term: 0, arrivalMs: 0 };
  /** Writes handed to the writer and not yet settled; close() waits for them. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private pendingBytes = 0;
  /** The last entry handed to apply() (the order check). */
  private applyCalled = 0;
  private closed = false;
  private trimming = false;
  /** The SEAL being written: every later proposal is refused. */
  private sealing:
    { readonly children: readonly string[]; readonly done: Promise<number> } | undefined;
  /** Wakes push readers when entries become readable (committed: the one replica's commit is durable). */
  private readonly readableSignal = new ReadableSignal(0);
  private readonly tail: CommittedTail;

  private constructor(options: SingleNodeReplicaOptions) {
    this.shard = options.shard;
    this.log = options.log;
    this.writer = options.writer;
    this.clock = options.clock;
    this.maxPendingBytes = options.maxPendingBytes ?? 32 * 1024 * 1024;
    this.tail = new CommittedTail(options.tailBytes);
    // What shared reads see: everything committed (the single replica's commit is durable).
    this.readable = {
      log: this.log,
      trimHorizon: () => this.trimHorizon(),
      readableIndex: () => this.committed,
      tipArrivalMs: () => this.newestRecordArrivalMs,
      tail: this.tail,
    };
  }

  static async open(options: SingleNodeReplicaOptions): Promise<SingleNodeReplica> {
    const replica = new SingleNodeReplica(options);
    await replica.recover();
    return replica;
  }

  private async recover(): Promise<void> {
    const recovered = await this.log.recover();
    this.trimPoint = recovered.trimPoint;
    this.lastIndex = recovered.lastIndex;
    this.lastArrivalMs = recovered.lastArrivalMs;
    this.applied = recovered.appliedIndex;
    this.committed = Math.min(recovered.hardState.commit, recovered.lastIndex);
    // A new term, opened with an empty entry: committing it commits everything before it.
    this.term = Math.max(recovered.hardState.term, recovered.lastTerm) + 1;
    const entry = this.nextEntry(EntryType.Empty, Buffer.alloc(0));
    await this.writer.write([
      ...this.log.appendOps([entry]),
      this.log.hardStateOp({ term: this.term, vote: SELF_ID, commit: entry.index }),
    ]);
    this.committed = entry.index;
    // Re-apply what a crash left unapplied (index keys are idempotent puts).
    const unapplied: LogEntry[] = [];
    for await (const e of this.log.entries(this.applied + 1, this.committed)) unapplied.push(e);
    await this.writer.write(this.log.applyOps(unapplied));
    this.applied = this.committed;
    this.applyCalled = this.committed;
    this.readableSignal.advance(this.committed);
    const newest = await this.log.lastArrivedBefore(Number.MAX_SAFE_INTEGER);
    this.newestRecordArrivalMs = newest?.arrivalMs ?? 0;
  }

  leaderId(): number | undefined {
    // The single node answers as broker 0 (it has no cluster id).
    return 0;
  }

  checkWritable(): void {
    // The only replica always leads.
  }

  async propose(
    records: readonly ProposedRecord[],
    producer?: ProducerHeader,
  ): Promise<AppendResult> {
    if (this.closed) throw new ServiceUnavailableError(`shard ${this.shard} is closing`);
    assert(records.length > 0, 'a proposal holds at least one record');
    if (this.writer.failed) throw new ServiceUnavailableError('storage has failed on this broker');
    const applied = this.log.seal;
    if (applied !== undefined && producer !== undefined) {
      return sealedOutcome(this.log, producer, records.length, applied.children);
    }
    if (applied === undefined && this.sealing !== undefined && producer !== undefined) {
      // Whether this batch was stored before the SEAL is known once the SEAL is applied.
      throw new ServiceUnavailableError(
        'The shard is being sealed by a split or merge; retry shortly.',
      );
    }
    const seal = applied ?? this.sealing;
    if (seal !== undefined) throw ShardSealedError.forChildren(seal.children);
    if (this.pendingBytes >= this.maxPendingBytes || this.writer.isFull()) {
      throw new ProvisionedThroughputExceededError(
        'Rate exceeded for shard: too many writes are waiting for disk.',
      );
    }
    const entry = this.nextEntry(EntryType.Records, encodeRecordBatch(records, 0, producer));
    const size = entry.payload.length;
    this.pendingBytes += size;
    try {
      await this.track(this.writer.write(this.log.appendOps([entry])));
    } catch (error) {
      if (error instanceof WriterFailedError && !error.indeterminate) {
        throw new ServiceUnavailableError('storage has failed on this broker', { cause: error });
      }
      throw new InternalFailureError(
        'Internal service failure: the write may or may not be stored.',
        {
          cause: error,
        },
      );
    } finally {
      this.pendingBytes -= size;
    }
    // Batches complete in order; a SEAL written in the same batch may have been counted first.
    this.committed = Math.max(this.committed, entry.index);
    this.tail.append([entry]);
    this.readableSignal.advance(this.committed);
    const decision = this.apply(entry);
    if (decision === undefined || decision.kind === 'accept') {
      this.newestRecordArrivalMs = entry.arrivalMs;
    }
    return appendOutcome(decision, entry.index, entry.arrivalMs);
  }

  seal(children: readonly string[]): Promise<number> {
    const applied = this.log.seal;
    if (applied !== undefined) return Promise.resolve(applied.index);
    if (this.sealing !== undefined) return this.sealing.done;
    if (this.closed)
      return Promise.reject(new ServiceUnavailableError(`shard ${this.shard} is closing`));
    // The index is taken now, so every record proposed before has a smaller one and every later
    // proposal is refused: the SEAL is the last entry that counts.
    const entry = this.nextEntry(EntryType.Seal, Buffer.from(JSON.stringify(children), 'utf8'));
    const done = this.track(this.writer.write(this.log.appendOps([entry]))).then(
      async () => {
        assert(entry.index > this.applyCalled, 'entries are applied in log order');
        this.applyCalled = entry.index;
        await this.track(this.writer.write(this.log.applyOps([entry])));
        this.applied = Math.max(this.applied, entry.index);
        // Readable only once applied: a reader woken at the SEAL must see the shard's end, or it
        // would wait for entries that never come.
        this.committed = Math.max(this.committed, entry.index);
        this.tail.append([entry]);
        this.readableSignal.advance(this.committed);
        return entry.index;
      },
      (error: unknown) => {
        this.sealing = undefined;
        throw new ServiceUnavailableError('sealing the shard failed', { cause: error });
      },
    );
    this.sealing = { children, done };
    return done;
  }

  sealed(): ShardSeal | undefined {
    return this.log.seal;
  }

  read(from: LogPosition, limits: ReadLimits): Promise<ReadResult> {
    return readRecords(this.readable, from, limits);
  }

  waitReadable(afterIndex: number, signal?: AbortSignal): Promise<void> {
    return this.readableSignal.wait(afterIndex, signal);
  }

  trimHorizon(): LogPosition {
    return { index: this.trimPoint.index + 1, offset: 0 };
  }

  latest(): LogPosition {
    return { index: this.committed + 1, offset: 0 };
  }

  commitIndex(): number {
    return this.committed;
  }

  positionAtTimestamp(ms: number): Promise<LogPosition> {
    return positionAtTimestamp(this.readable, ms, this.applied);
  }

  async trimArrivedBefore(cutoffMs: number): Promise<number> {
    if (this.trimming || this.closed) return 0;
    this.trimming = true;
    try {
      const last = await this.log.lastArrivedBefore(cutoffMs);
      if (last === undefined || last.index <= this.trimPoint.index) return 0;
      assert(last.index <= this.committed, 'only committed entries are indexed');
      const entry = await this.log.entryAt(last.index);
      const point: TrimPoint = { index: last.index, term: entry.term, arrivalMs: last.arrivalMs };
      // The pointer is durable before any entry goes, so a crash never leaves a hole that
      // looks like corruption; removal is idempotent and finishes on a later pass.
      const producers = await this.log.producerTableAt(point.index);
      await this.writer.write([this.log.trimPointOp(point), this.log.producerTableOp(producers)]);
      this.log.trimmedTo(point.index, producers);
      const previous = this.trimPoint.index;
      this.trimPoint = point;
      await this.log.removeTrimmed(point, previous);
      return point.index - previous;
    } finally {
      this.trimming = false;
    }
  }

  /** Refuses new proposals and waits until every write already handed to storage has settled. */
  async close(): Promise<void> {
    this.closed = true;
    this.readableSignal.close();
    this.tail.clear();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async destroy(): Promise<void> {
    await this.close();
    await this.log.destroy();
  }

  private nextEntry(type: EntryType, payload: Buffer): LogEntry {
    // Arrival times never go backwards within a shard, even if the wall clock does, so
    // AT_TIMESTAMP can search the log by arrival time.
    const arrivalMs = Math.max(this.clock.nowMs(), this.lastArrivalMs);
    this.lastArrivalMs = arrivalMs;
    this.lastIndex++;
    return { index: this.lastIndex, term: this.term, type, arrivalMs, payload };
  }

  private track<T>(write: Promise<T>): Promise<T> {
    this.inFlight.add(write);
    const untrack = () => this.inFlight.delete(write);
    write.then(untrack, untrack);
    return write;
  }

  /**
   * Applies one committed entry; the producer table decides at once (entries reach here in log
   * order: the writer completes batches in order), the index keys follow in a later batch.
   */
  private apply(entry: LogEntry): ProducerDecision | undefined {
    assert(entry.index > this.applyCalled, 'entries are applied in log order');
    this.applyCalled = entry.index;
    const { ops, decisions } = this.log.applyEntries([entry]);
    this.track(this.writer.write(ops)).then(
      () => {
        this.applied = Math.max(this.applied, entry.index);
      },
      // A failed write is fail-stop for the whole broker (GroupCommitWriter.onFatal).
      () => undefined,
    );
    return decisions.get(entry.index);
  }
}
