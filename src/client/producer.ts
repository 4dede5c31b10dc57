import { randomInt } from 'node:crypto';
import { assert } from '../common/assert.js';
import { backoffDelayMs, type BackoffOptions } from '../common/backoff.js';
import {
  OutOfOrderSequenceError,
  ProducerFencedError,
  RheosError,
  ShardSealedError,
  ValidationError,
} from '../common/errors.js';
import { partitionKeyToHashKey } from '../common/hash-key.js';
import {
  PARTITION_KEY_MAX_CHARS,
  PUT_RECORDS_MAX_RECORDS,
  PUT_RECORDS_MAX_SIZE_BYTES,
  RECORD_MAX_SIZE_BYTES,
} from '../common/limits.js';
import type { PutRecordsResponse, PutRecordsResultEntry } from '../gen/rheos/v1/data.js';
import type { RheosClient } from './client.js';
import { ProducerClosedError, RecordExpiredError } from './producer-errors.js';
import { createPacker, type Packer, type Unit, type UnitMember } from './producer-units.js';
import type { StreamRoutes } from './shard-routes.js';

/**
 * The buffered producer: what the KPL does for Kinesis, plus idempotence.
 *
 * Records are routed to their shard when they are taken and wait in that shard's lane. A lane
 * sends a PutRecords to its shard's leader when it holds a full batch (500 records or 5 MiB), when
 * its oldest record has waited `lingerMs`, or on flush(). Memory is bounded: `send` waits while
 * `maxBufferedBytes` are taken and not yet settled (backpressure, never an unbounded queue).
 *
 * Failures: throttled and retriable failures are sent again after an exponential backoff with
 * jitter (per lane), until the record's `recordTtlMs` has passed. With `ordered` (the default), a
 * lane has one batch in flight and its failed records go before anything newer, so the records of
 * one partition key are stored in the order they were sent; a shard closed by a split or merge
 * hands its records to the children, ahead of newer ones, and a child does not send while a
 * closed parent still holds records.
 *
 * Idempotence (the default; beyond Kinesis): the producer has an id and an epoch, and numbers
 * the records of each shard. The shard's leader refuses at apply a batch it already stored and
 * answers with the original sequence numbers, so retries after a lost answer, a leader change or a
 * split never store a record twice. It forces `ordered`.
 */

export interface ProducerRecord {
  readonly partitionKey: string;
  readonly data: Uint8Array | string;
  readonly explicitHashKey?: string;
}

export interface RecordResult {
  readonly shardId: string;
  /** The stored record's sequence number (for an aggregated record, the aggregate's). */
  readonly sequenceNumber: string;
  /** The position inside a KPL aggregate (0 for a record sent alone). */
  readonly subSequenceNumber: number;
  readonly attempts: number;
  /** The shard had stored it already: an attempt whose answer was lost did store it. */
  readonly duplicate: boolean;
}

export type RecordOutcome =
  | { readonly ok: true; readonly result: RecordResult }
  | { readonly ok: false; readonly error: Error };

/** What `send` returns once the record is taken: `stored` settles when it is acknowledged. */
export interface Receipt {
  readonly stored: Promise<RecordResult>;
}

export interface IdempotenceOptions {
  /** Below 2^53; random by default. Reuse one with a higher epoch to fence an older instance. */
  readonly producerId?: number;
  /** Default: seconds since 1970 at creation, so a restart with the same id fences its past. */
  readonly epoch?: number;
}

export interface AggregationOptions {
  /** Largest aggregate (KPL's AggregationMaxSize, default 51,200 bytes). */
  readonly maxBytes?: number;
}

/** The calls the producer makes: a RheosClient, or a wrapper of one (tests inject faults). */
export type ProducerClient = Pick<RheosClient, 'putToShard' | 'shardRoutes'>;

export interface ProducerOptions {
  readonly client: ProducerClient;
  readonly streamName: string;
  /** How long a lane waits for more records before sending a partial batch (default 50). */
  readonly lingerMs?: number;
  readonly maxBatchRecords?: number;
  readonly maxBatchBytes?: number;
  /** Bytes taken and not yet settled, beyond which `send` waits (default 32 MiB). */
  readonly maxBufferedBytes?: number;
  /** PutRecords calls in flight, all lanes together (default 32). */
  readonly maxInFlight?: number;
  /** One batch in flight per shard, so per-key order holds (default true; forced by idempotence). */
  readonly ordered?: boolean;
  /** Batches in flight per shard when not ordered (default 4). */
  readonly maxInFlightPerShard?: number;
  /** Default on. `false` sends plain PutRecords (a retry after a lost answer may duplicate). */
  readonly idempotent?: boolean | IdempotenceOptions;
  /** Pack small records of a shard into KPL aggregates (default off). */
  readonly aggregate?: boolean | AggregationOptions;
  /** A record not acknowledged this long after it was taken fails (default 30 s). */
  readonly recordTtlMs?: number;
  readonly backoff?: BackoffOptions;
}

export interface ProducerStats {
  readonly recordsTaken: number;
  readonly recordsStored: number;
  readonly recordsFailed: number;
  readonly batchesSent: number;
  /** Records sent again after a throttle or failure. */
  readonly recordsRetried: number;
  readonly recordsThrottled: number;
  /** Records a shard had stored already (caught by idempotence: would have been duplicates). */
  readonly duplicatesCaught: number;
  /** Attempts whose outcome was unknown (without idempotence, possible duplicates). */
  readonly indeterminateAttempts: number;
  /** Times the producer moved to a new epoch (after giving up on a numbered record). */
  readonly epochBumps: number;
  readonly bufferedBytes: number;
  /** PutRecords calls in flight now. */
  readonly callsInFlight: number;
  /** Lanes with records waiting: open, closed and not yet handed on, and waiting for those. */
  readonly lanesOpen: number;
  readonly lanesClosing: number;
  readonly lanesBlocked: number;
  readonly epoch: number;
  readonly producerId: number | undefined;
}

interface Pending extends UnitMember {
  readonly deadlineMs: number;
  readonly resolve: (result: RecordResult) => void;
  readonly reject: (error: Error) => void;
  readonly promise: Promise<RecordResult>;
  attempts: number;
  indeterminate: boolean;
  lastError: unknown;
}

/** A unit as the producer tracks it: its members and, when idempotent, its number on the shard. */
interface SentUnit {
  readonly unit: Unit<Pending>;
  sequence: number | undefined;
  /** An attempt's outcome was unknown: renumbered under a new epoch, it may be stored twice. */
  unknown: boolean;
}

/**
 * Where an idempotent producer's numbering of one shard stands. It belongs to the shard, not to a
 * lane: a lane replaced for the same shard (its routes were a moment behind a seal) must go on from
 * here, because numbers from 0 under the same epoch would look like retries of stored batches and
 * be answered as duplicates without being stored.
 */
interface Numbering {
  /** The epoch the numbers run under (from 0 again when the producer's epoch moves). */
  epoch: number;
  next: number;
}

class Lane {
  readonly queue: Pending[] = [];
  queuedBytes = 0;
  /** Units sent before and not stored: they go first, with their numbers. */
  readonly retry: SentUnit[] = [];
  inFlight = 0;
  failures = 0;
  notBeforeMs = 0;
  oldestQueuedMs = 0;
  timer: NodeJS.Timeout | undefined;
  /** No longer open in the routes: its work goes to the lanes that cover its keys. */
  closed = false;
  /** Its work has been handed on. */
  retired = false;
  /** Closed lanes with work left whose hash ranges overlap this one: this waits for them. */
  readonly blockedBy = new Set<Lane>();

  constructor(
    readonly shardId: string,
    readonly start: bigint,
    readonly end: bigint,
    /** The shard's numbering, shared with every lane the shard ever had (see Numbering). */
    readonly numbering: Numbering,
  ) {}

  get hasWork(): boolean {
    return this.queue.length > 0 || this.retry.length > 0;
  }
}

const DEFAULT_LINGER_MS = 50;
const DEFAULT_BUFFER_BYTES = 32 * 1024 * 1024;
const DEFAULT_TTL_MS = 30_000;
const U32 = 2 ** 32;

export class Producer {
  private readonly client: ProducerClient;
  readonly streamName: string;
  private readonly lingerMs: number;
  private readonly maxBatchRecords: number;
  private readonly maxBatchBytes: number;
  private readonly maxBufferedBytes: number;
  private readonly maxInFlight: number;
  private readonly perShard: number;
  private readonly ttlMs: number;
  private readonly backoff: BackoffOptions;
  private readonly packer: Packer;
  readonly producerId: number | undefined;
  private epoch: number;

  private routes: StreamRoutes | undefined;
  private routing: Promise<void> | undefined;
  /** Open lanes, by hash range. */
  private open: Lane[] = [];
  /** Closed lanes whose work has not been handed on yet: lanes covering their keys wait. */
  private readonly closing = new Set<Lane>();
  private readonly lanes = new Map<string, Lane>();
  /** Per shard id, kept for the producer's life (a few numbers per shard the stream has had). */
  private readonly numberings = new Map<string, Numbering>();
  private inFlight = 0;
  private bufferedBytes = 0;
  private readonly unsettled = new Set<Pending>();
  private readonly spaceWaiters: Array<{
    bytes: number;
    resolve: () => void;
    reject: (e: Error) => void;
  }> = [];
  private flushes = 0;
  private closed = false;
  private fatal: Error | undefined;
  private readonly counts = {
    recordsTaken: 0,
    recordsStored: 0,
    recordsFailed: 0,
    batchesSent: 0,
    recordsRetried: 0,
    recordsThrottled: 0,
    duplicatesCaught: 0,
    indeterminateAttempts: 0,
    epochBumps: 0,
  };

  constructor(options: ProducerOptions) {
    this.client = options.client;
    this.streamName = options.streamName;
    this.lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
    this.maxBatchRecords = clamp(
      options.maxBatchRecords ?? PUT_RECORDS_MAX_RECORDS,
      1,
      PUT_RECORDS_MAX_RECORDS,
    );
    this.maxBatchBytes = clamp(
      options.maxBatchBytes ?? PUT_RECORDS_MAX_SIZE_BYTES,
      RECORD_MAX_SIZE_BYTES,
      PUT_RECORDS_MAX_SIZE_BYTES,
    );
    // A record always fits an empty buffer, so a bound below the record size still makes progress.
    this.maxBufferedBytes = Math.max(1, options.maxBufferedBytes ?? DEFAULT_BUFFER_BYTES);
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 32);
    this.ttlMs = options.recordTtlMs ?? DEFAULT_TTL_MS;
    this.backoff = options.backoff ?? { initialMs: 50, maxMs: 2_000 };
    const idempotence = options.idempotent ?? true;
    if (idempotence === false) {
      this.producerId = undefined;
      this.epoch = 0;
    } else {
      const given = idempotence === true ? {} : idempotence;
      this.producerId = given.producerId ?? randomInt(1, 2 ** 48);
      this.epoch = given.epoch ?? Math.floor(Date.now() / 1000) % U32;
      if (!Number.isSafeInteger(this.producerId) || this.producerId < 0) {
        throw new ValidationError(
          `producerId must be an integer from 0 to 2^53 - 1, not ${this.producerId}.`,
        );
      }
      if (!Number.isInteger(this.epoch) || this.epoch < 0 || this.epoch >= U32) {
        throw new ValidationError(
          `epoch must be an integer from 0 to 2^32 - 1, not ${this.epoch}.`,
        );
      }
    }
    const ordered = this.producerId !== undefined || (options.ordered ?? true);
    this.perShard = ordered ? 1 : Math.max(1, options.maxInFlightPerShard ?? 4);
    const aggregate = options.aggregate ?? false;
    this.packer = createPacker(
      aggregate === false
        ? {}
        : { aggregateMaxBytes: (aggregate === true ? undefined : aggregate.maxBytes) ?? 51_200 },
    );
  }

  /**
   * Takes a record, waiting while the buffer is full. Resolves once the record is taken; its
   * `stored` promise settles when it is acknowledged (or fails for good).
   */
  async send(record: ProducerRecord): Promise<Receipt> {
    this.checkOpen();
    const data =
      typeof record.data === 'string' ? Buffer.from(record.data, 'utf8') : toBuffer(record.data);
    const sizeBytes = checkRecord(record, data);
    await this.waitForSpace(sizeBytes);
    try {
      this.checkOpen();
      if (this.routes === undefined || this.routing !== undefined) await this.route();
    } catch (error) {
      this.release(sizeBytes);
      throw error;
    }
    const hashKey =
      record.explicitHashKey === undefined
        ? partitionKeyToHashKey(record.partitionKey)
        : BigInt(record.explicitHashKey);
    let resolve!: (result: RecordResult) => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<RecordResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A caller that never looks at `stored` must not crash the process with an unhandled rejection.
    promise.catch(() => undefined);
    const pending: Pending = {
      entry: {
        partitionKey: record.partitionKey,
        data,
        ...(record.explicitHashKey === undefined
          ? {}
          : { explicitHashKey: record.explicitHashKey }),
      },
      hashKey,
      sizeBytes,
      deadlineMs: Date.now() + this.ttlMs,
      resolve,
      reject,
      promise,
      attempts: 0,
      indeterminate: false,
      lastError: undefined,
    };
    this.counts.recordsTaken++;
    this.unsettled.add(pending);
    this.enqueue(this.laneFor(hashKey), [pending], false);
    return { stored: promise };
  }

  /** Sends one record and waits until it is stored. */
  async put(record: ProducerRecord): Promise<RecordResult> {
    return (await this.send(record)).stored;
  }

  /**
   * Sends records in order (waiting for buffer space as it goes) and waits for all of them. One
   * outcome per record, in the same order; it does not throw for a record that failed.
   */
  async putMany(
    records: Iterable<ProducerRecord> | AsyncIterable<ProducerRecord>,
  ): Promise<RecordOutcome[]> {
    const receipts: Promise<RecordResult>[] = [];
    for await (const record of records) {
      try {
        receipts.push((await this.send(record)).stored);
      } catch (error) {
        receipts.push(Promise.reject(error as Error));
      }
    }
    return Promise.all(
      receipts.map((p) =>
        p.then(
          (result): RecordOutcome => ({ ok: true, result }),
          (error: unknown): RecordOutcome => ({ ok: false, error: error as Error }),
        ),
      ),
    );
  }

  /** Sends what is buffered now, without lingering, and waits until it has all settled. */
  async flush(): Promise<void> {
    const waiting = [...this.unsettled].map((p) => p.promise.catch(() => undefined));
    this.flushes++;
    try {
      for (const lane of this.lanes.values()) this.schedule(lane);
      await Promise.all(waiting);
    } finally {
      this.flushes--;
    }
  }

  /** Takes no more records, sends and settles what it holds, and stops its timers. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const waiter of this.spaceWaiters.splice(0)) waiter.reject(new ProducerClosedError());
    }
    while (this.unsettled.size > 0) await this.flush();
    for (const lane of this.lanes.values()) clearTimeout(lane.timer);
  }

  stats(): ProducerStats {
    return {
      ...this.counts,
      bufferedBytes: this.bufferedBytes,
      callsInFlight: this.inFlight,
      lanesOpen: this.open.length,
      lanesClosing: this.closing.size,
      lanesBlocked: this.open.filter((l) => l.blockedBy.size > 0).length,
      epoch: this.epoch,
      producerId: this.producerId,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Taking records

  private checkOpen(): void {
    if (this.fatal !== undefined) throw this.fatal;
    if (this.closed) throw new ProducerClosedError();
  }

  private waitForSpace(bytes: number): Promise<void> {
    // A record always fits an empty buffer, so one record larger than the rest cannot stall.
    if (
      this.spaceWaiters.length === 0 &&
      (this.bufferedBytes === 0 || this.bufferedBytes + bytes <= this.maxBufferedBytes)
    ) {
      this.bufferedBytes += bytes;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.spaceWaiters.push({ bytes, resolve, reject }));
  }

  private release(bytes: number): void {
    this.bufferedBytes -= bytes;
    while (this.spaceWaiters.length > 0) {
      const next = this.spaceWaiters[0] as (typeof this.spaceWaiters)[number];
      if (this.bufferedBytes > 0 && this.bufferedBytes + next.bytes > this.maxBufferedBytes) break;
      this.spaceWaiters.shift();
      this.bufferedBytes += next.bytes;
      next.resolve();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Routes and lanes

  /** Loads the routes (once at a time); `fresh` after a shard was found sealed. */
  private route(fresh = false): Promise<void> {
    if (this.routing !== undefined) return this.routing;
    const routing = (async () => {
      try {
        const routes = await this.client.shardRoutes(this.streamName, fresh);
        this.useRoutes(routes);
      } finally {
        this.routing = undefined;
      }
      for (const lane of this.closing) this.retireWhenIdle(lane);
    })();
    this.routing = routing;
    return routing;
  }

  private useRoutes(routes: StreamRoutes): void {
    this.routes = routes;
    const open = routes.open.map((r) => {
      let lane = this.lanes.get(r.shardId);
      if (lane === undefined || lane.closed) {
        const successor = new Lane(r.shardId, r.start, r.end, this.numberingOf(r.shardId));
        if (lane !== undefined) {
          // The shard was refused as sealed but the routes still show it open (the metadata is
          // a moment behind): go again after a pause, not in a tight loop.
          successor.failures = lane.failures + 1;
          successor.notBeforeMs = Date.now() + backoffDelayMs(lane.failures, this.backoff);
        }
        lane = successor;
        this.lanes.set(r.shardId, lane);
      }
      return lane;
    });
    const openIds = new Set(open.map((l) => l.shardId));
    for (const lane of this.open) {
      if (openIds.has(lane.shardId) && this.lanes.get(lane.shardId) === lane) continue;
      lane.closed = true;
      clearTimeout(lane.timer);
      lane.timer = undefined;
      this.closing.add(lane);
    }
    this.open = open;
    // Lanes taking a closed lane's keys wait until its records (older) are handed on.
    for (const lane of this.closing) {
      for (const next of this.overlapping(lane)) next.blockedBy.add(lane);
    }
  }

  private numberingOf(shardId: string): Numbering {
    let numbering = this.numberings.get(shardId);
    if (numbering === undefined) this.numberings.set(shardId, (numbering = { epoch: -1, next: 0 }));
    return numbering;
  }

  /** Hands a closed lane's work on once nothing of it is in flight and the routes are current. */
  private retireWhenIdle(lane: Lane): void {
    if (lane.retired || lane.inFlight > 0) return;
    if (this.routing !== undefined) {
      void this.routing.finally(() => this.retireWhenIdle(lane)).catch(() => undefined);
      return;
    }
    this.retire(lane);
  }

  private overlapping(lane: Lane): Lane[] {
    return this.open.filter((l) => l.start <= lane.end && lane.start <= l.end);
  }

  private laneFor(hashKey: bigint): Lane {
    let lo = 0;
    let hi = this.open.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const lane = this.open[mid] as Lane;
      if (hashKey < lane.start) hi = mid - 1;
      else if (hashKey > lane.end) lo = mid + 1;
      else return lane;
    }
    throw new Error(`no open shard of ${this.streamName} holds hash key ${hashKey}`);
  }

  /**
   * A closed lane with nothing in flight: its records go to the lanes now covering their keys,
   * ahead of anything newer there (they were taken first), and those lanes may send again.
   */
  private retire(lane: Lane): void {
    lane.retired = true;
    this.closing.delete(lane);
    const members = [...lane.retry.flatMap((s) => s.unit.members), ...lane.queue];
    lane.retry.length = 0;
    lane.queue.length = 0;
    lane.queuedBytes = 0;
    if (this.lanes.get(lane.shardId) === lane) this.lanes.delete(lane.shardId);
    const byLane = new Map<Lane, Pending[]>();
    for (const member of members) {
      let next: Lane;
      try {
        next = this.laneFor(member.hashKey);
      } catch (error) {
        this.fail(member, error as Error);
        continue;
      }
      let list = byLane.get(next);
      if (list === undefined) byLane.set(next, (list = []));
      list.push(member);
    }
    for (const [next, list] of byLane) this.enqueue(next, list, true);
    for (const next of this.open) {
      if (next.blockedBy.delete(lane)) this.schedule(next);
    }
  }

  private enqueue(lane: Lane, members: Pending[], front: boolean): void {
    if (lane.queue.length === 0) lane.oldestQueuedMs = Date.now();
    if (front) lane.queue.unshift(...members);
    else lane.queue.push(...members);
    for (const m of members) lane.queuedBytes += m.sizeBytes;
    this.schedule(lane);
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  private schedule(lane: Lane): void {
    if (lane.closed || !lane.hasWork || lane.blockedBy.size > 0 || lane.inFlight >= this.perShard)
      return;
    if (this.inFlight >= this.maxInFlight) return;
    const now = Date.now();
    const full =
      lane.queue.length >= this.maxBatchRecords || lane.queuedBytes >= this.maxBatchBytes;
    const ready =
      lane.retry.length > 0 ||
      full ||
      this.flushes > 0 ||
      this.closed ||
      now - lane.oldestQueuedMs >= this.lingerMs;
    const at = Math.max(lane.notBeforeMs, ready ? now : lane.oldestQueuedMs + this.lingerMs);
    if (at > now) {
      if (lane.timer === undefined) {
        lane.timer = setTimeout(() => {
          lane.timer = undefined;
          this.schedule(lane);
        }, at - now);
      }
      return;
    }
    clearTimeout(lane.timer);
    lane.timer = undefined;
    const batch = this.takeBatch(lane);
    if (batch.length === 0) return;
    lane.inFlight++;
    this.inFlight++;
    void this.sendBatch(lane, batch);
  }

  /** The lane's next batch: units sent before and not stored, or else new ones from the queue. */
  private takeBatch(lane: Lane): SentUnit[] {
    this.expire(lane);
    const batch: SentUnit[] = [];
    let bytes = 0;
    while (lane.retry.length > 0 && batch.length < this.maxBatchRecords) {
      const next = lane.retry[0] as SentUnit;
      if (batch.length > 0 && bytes + next.unit.sizeBytes > this.maxBatchBytes) break;
      batch.push(lane.retry.shift() as SentUnit);
      bytes += next.unit.sizeBytes;
    }
    // A retry goes out as it went before, nothing added: a shard that stored the first attempt
    // must see the same numbers to call it a duplicate (a batch overlapping stored ones is refused
    // as out of order, and renumbering it under a new epoch would store it twice).
    const retrying = batch.length > 0;
    while (!retrying && lane.queue.length > 0 && batch.length < this.maxBatchRecords) {
      const unit = this.packer.take(lane.queue, this.maxBatchBytes - bytes);
      if (unit === undefined) break;
      for (const m of unit.members) lane.queuedBytes -= m.sizeBytes;
      batch.push({ unit, sequence: undefined, unknown: false });
      bytes += unit.sizeBytes;
    }
    if (lane.queue.length > 0) lane.oldestQueuedMs = Date.now();
    if (this.producerId !== undefined) {
      const numbering = lane.numbering;
      if (numbering.epoch !== this.epoch) {
        // A new epoch: the shard is numbered from 0 again, units sent before included.
        numbering.epoch = this.epoch;
        numbering.next = 0;
        for (const sent of [...batch, ...lane.retry]) {
          sent.sequence = undefined;
          if (sent.unknown) for (const m of sent.unit.members) m.indeterminate = true;
        }
        for (const sent of [...batch, ...lane.retry]) sent.sequence = numbering.next++;
      }
      // Numbers run on from the last unit sent: units sent before keep theirs.
      for (const sent of batch) sent.sequence ??= numbering.next++;
      batch.forEach((sent, i) =>
        assert(
          sent.sequence === (batch[0] as SentUnit).sequence! + i,
          'a batch is numbered contiguously',
        ),
      );
    }
    return batch;
  }

  /** Fails records past their time to live before they are sent again. */
  private expire(lane: Lane): void {
    const now = Date.now();
    const expired = (m: Pending) => m.deadlineMs <= now;
    if (lane.retry.some((s) => s.unit.members.some(expired))) {
      // A numbered unit given up leaves a gap the shard would refuse: the others are packed and
      // numbered again, under a new epoch.
      const members = lane.retry.splice(0).flatMap((s) => s.unit.members);
      const kept = members.filter((m) => !expired(m));
      for (const m of members) if (expired(m)) this.fail(m, this.expiredError(m));
      lane.queue.unshift(...kept);
      for (const m of kept) lane.queuedBytes += m.sizeBytes;
      if (this.producerId !== undefined) this.bumpEpoch();
    }
    for (let i = lane.queue.length - 1; i >= 0; i--) {
      const m = lane.queue[i] as Pending;
      if (!expired(m)) continue;
      lane.queue.splice(i, 1);
      lane.queuedBytes -= m.sizeBytes;
      this.fail(m, this.expiredError(m));
    }
  }

  private expiredError(m: Pending): RecordExpiredError {
    return new RecordExpiredError(
      `The record was not stored within ${this.ttlMs} ms (${m.attempts} attempts)${m.indeterminate ? '; an attempt may have stored it' : ''}.`,
      { indeterminate: m.indeterminate, cause: m.lastError },
    );
  }

  /**
   * A new epoch: each lane numbers from 0 again at its next batch (older numbered attempts are
   * fenced from then on).
   */
  private bumpEpoch(): void {
    this.epoch = (this.epoch + 1) % U32;
    this.counts.epochBumps++;
  }

  private async sendBatch(lane: Lane, batch: SentUnit[]): Promise<void> {
    const epoch = lane.numbering.epoch;
    for (const sent of batch)
      for (const m of sent.unit.members) {
        if (m.attempts++ > 0) this.counts.recordsRetried++;
      }
    this.counts.batchesSent++;
    let response: PutRecordsResponse | undefined;
    let failure: unknown;
    try {
      const records = batch.map((s) => s.unit.entry);
      response = await this.client.putToShard(
        lane.shardId,
        this.producerId === undefined
          ? { streamName: this.streamName, records }
          : {
              streamName: this.streamName,
              records,
              producer: {
                producerId: this.producerId,
                epoch,
                firstSequence: (batch[0] as SentUnit).sequence as number,
                shardId: lane.shardId,
              },
            },
        {
          // The client re-sends to a new leader itself: those are retries too.
          onRetry: (error) => {
            this.counts.recordsRetried += batch.reduce((n, s) => n + s.unit.members.length, 0);
            if (error.indeterminate) this.counts.indeterminateAttempts++;
          },
        },
      );
    } catch (error) {
      failure = error;
    }
    lane.inFlight--;
    this.inFlight--;
    if (response !== undefined) this.settleResults(lane, batch, response.records);
    else this.settleFailure(lane, batch, failure);
    this.afterBatch(lane);
  }

  private settleResults(
    lane: Lane,
    batch: SentUnit[],
    results: readonly PutRecordsResultEntry[],
  ): void {
    const again: SentUnit[] = [];
    let sealed = false;
    let moved = false;
    batch.forEach((sent, i) => {
      const result = results[i];
      if (result !== undefined && result.errorCode === '') {
        if (result.shardId !== lane.shardId) moved = true;
        sent.unit.members.forEach((m, sub) =>
          this.succeed(m, {
            shardId: result.shardId,
            sequenceNumber: result.sequenceNumber,
            subSequenceNumber: sent.unit.aggregated ? sub : 0,
            attempts: m.attempts,
            duplicate: result.duplicate,
          }),
        );
        return;
      }
      const code = result?.errorCode ?? 'InternalFailure';
      if (code === 'ShardSealedException') sealed = true;
      if (code === 'ProvisionedThroughputExceededException')
        this.counts.recordsThrottled += sent.unit.members.length;
      if (code === 'InternalFailure') {
        this.counts.indeterminateAttempts++;
        sent.unknown = true;
        if (this.producerId === undefined)
          for (const m of sent.unit.members) m.indeterminate = true;
      }
      for (const m of sent.unit.members)
        m.lastError = new Error(`${code}: ${result?.errorMessage ?? ''}`);
      again.push(sent);
    });
    if (again.length > 0) {
      lane.failures++;
      lane.notBeforeMs = Date.now() + backoffDelayMs(lane.failures - 1, this.backoff);
      lane.retry.unshift(...again);
    } else {
      lane.failures = 0;
    }
    // The server sent records to a split shard's children: the routes are stale.
    if (sealed || moved) this.reroute(lane);
  }

  private settleFailure(lane: Lane, batch: SentUnit[], error: unknown): void {
    const members = batch.flatMap((s) => s.unit.members);
    for (const m of members) m.lastError = error;
    if (error instanceof ShardSealedError) {
      // Nothing of the batch is on the closed shard: it goes to the children, renumbered there.
      lane.retry.unshift(...batch);
      this.reroute(lane);
      return;
    }
    if (error instanceof ProducerFencedError) {
      // A newer instance owns this producer id: stop, rather than write beside it.
      this.fatal = error;
      this.failEverything(error);
      return;
    }
    if (error instanceof OutOfOrderSequenceError) {
      // The shard refused the batch (so it is not stored): renumber everything under a new epoch.
      lane.retry.unshift(...batch);
      this.bumpEpoch();
      return;
    }
    const retriable = error instanceof RheosError && error.retriable;
    if (!retriable) {
      for (const m of members)
        this.fail(m, error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (error.indeterminate) {
      this.counts.indeterminateAttempts++;
      for (const sent of batch) sent.unknown = true;
      if (this.producerId === undefined) for (const m of members) m.indeterminate = true;
    }
    lane.failures++;
    lane.notBeforeMs = Date.now() + backoffDelayMs(lane.failures - 1, this.backoff);
    lane.retry.unshift(...batch);
  }

  /** The lane's shard was closed: look at the newest routes; its records follow them. */
  private reroute(lane: Lane): void {
    if (!lane.closed) {
      lane.closed = true;
      clearTimeout(lane.timer);
      lane.timer = undefined;
      this.open = this.open.filter((l) => l !== lane);
      this.closing.add(lane);
    }
    this.route(true).catch((error: unknown) => {
      // The stream is gone (or cannot be reached now): the lane's records cannot be routed.
      const err = error instanceof Error ? error : new Error(String(error));
      lane.retired = true;
      this.closing.delete(lane);
      for (const sent of lane.retry.splice(0)) for (const m of sent.unit.members) this.fail(m, err);
      for (const m of lane.queue.splice(0)) this.fail(m, err);
      lane.queuedBytes = 0;
      for (const next of this.open) if (next.blockedBy.delete(lane)) this.schedule(next);
    });
  }

  private afterBatch(lane: Lane): void {
    if (lane.closed) {
      // A closed lane's last answer is in: what is left goes on, and its successors may send.
      this.retireWhenIdle(lane);
    } else {
      this.schedule(lane);
    }
    // Calls in flight were at the limit: other lanes may be waiting for a slot.
    for (const other of this.open)
      if (other !== lane && other.hasWork && other.timer === undefined) this.schedule(other);
  }

  private succeed(m: Pending, result: RecordResult): void {
    if (!this.unsettled.delete(m)) return;
    this.counts.recordsStored++;
    if (result.duplicate) this.counts.duplicatesCaught++;
    this.release(m.sizeBytes);
    m.resolve(result);
  }

  private fail(m: Pending, error: Error): void {
    if (!this.unsettled.delete(m)) return;
    this.counts.recordsFailed++;
    this.release(m.sizeBytes);
    m.reject(error);
  }

  private failEverything(error: Error): void {
    for (const lane of this.lanes.values()) {
      clearTimeout(lane.timer);
      lane.retry.length = 0;
      lane.queue.length = 0;
      lane.queuedBytes = 0;
    }
    for (const m of [...this.unsettled]) this.fail(m, error);
    for (const waiter of this.spaceWaiters.splice(0)) waiter.reject(error);
  }
}

export function createProducer(options: ProducerOptions): Producer {
  return new Producer(options);
}

function checkRecord(record: ProducerRecord, data: Buffer): number {
  const keyChars = [...record.partitionKey].length;
  if (keyChars < 1 || keyChars > PARTITION_KEY_MAX_CHARS) {
    throw new ValidationError(
      `The partition key must have 1 to ${PARTITION_KEY_MAX_CHARS} characters, not ${keyChars}.`,
    );
  }
  if (record.explicitHashKey !== undefined && !/^(0|[1-9]\d{0,38})$/.test(record.explicitHashKey)) {
    throw new ValidationError(
      `The explicit hash key ${record.explicitHashKey} is not a decimal number below 2^128.`,
    );
  }
  if (record.explicitHashKey !== undefined && BigInt(record.explicitHashKey) >= 1n << 128n) {
    throw new ValidationError(
      `The explicit hash key ${record.explicitHashKey} is not below 2^128.`,
    );
  }
  const sizeBytes = data.length + Buffer.byteLength(record.partitionKey, 'utf8');
  if (sizeBytes > RECORD_MAX_SIZE_BYTES) {
    throw new ValidationError(
      `The record is ${sizeBytes} bytes (data plus partition key); the limit is ${RECORD_MAX_SIZE_BYTES} bytes.`,
    );
  }
  return sizeBytes;
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
