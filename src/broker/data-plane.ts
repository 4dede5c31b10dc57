import { parseConsumerArn, resolveStreamName, type ServiceIdentity } from '../common/arn.js';
import { assert } from '../common/assert.js';
import type { Clock } from '../common/clock.js';
import {
  InvalidArgumentError,
  ProvisionedThroughputExceededError,
  ResourceInUseError,
  ResourceNotFoundError,
  RheosError,
  NotLeaderError,
  OutOfOrderSequenceError,
  ServiceUnavailableError,
  ShardSealedError,
} from '../common/errors.js';
import { sleep } from '../common/backoff.js';
import { MAX_HASH_KEY, partitionKeyToHashKey } from '../common/hash-key.js';
import {
  decodeIterator,
  encodeIterator,
  iteratorKeyId,
  type SigningKeyring,
} from '../common/iterator-token.js';
import {
  GET_RECORDS_MAX_RECORDS,
  GET_RECORDS_MAX_SIZE_BYTES,
  SHARD_ITERATOR_MAX_LENGTH,
} from '../common/limits.js';
import {
  formatSequenceNumber,
  parseSequenceNumber,
  type LogPosition,
} from '../common/sequence-number.js';
import { Validator } from '../common/validation.js';
import {
  checkPutRecords,
  checkRecordSize,
  hasData,
  recordSize,
  validateEntry,
  validateStreamRef,
} from '../common/put-records-check.js';
import { streamNotFound } from '../coordinator/metadata-machine.js';
import {
  childrenOf,
  isListed,
  isServing,
  type ShardRecord,
  type StreamRecord,
} from '../coordinator/model.js';
import {
  ShardIteratorType,
  type GetRecordsRequest,
  type GetRecordsResponse,
  type GetShardIteratorRequest,
  type GetShardIteratorResponse,
  type PutRecordRequest,
  type PutRecordResponse,
  type ProducerBatch,
  type PutRecordsRequest,
  type PutRecordsResponse,
  type PutRecordsResultEntry,
  type StartingPosition,
  type SubscribeToShardRequest,
  type SubscribeToShardResponse,
} from '../gen/rheos/v1/data.js';
import { EncryptionType, type ChildShard } from '../gen/rheos/v1/stream.js';
import type { Broker } from './broker.js';
import type { ShardLocation } from './stream-directory.js';
import type { ReadResult, ShardReplica } from './replica.js';
import { serveSubscription, type SubscriptionPacing } from './shard-subscription.js';
import {
  DEFAULT_SUBSCRIPTION_LIMITS,
  SubscriptionRegistry,
  type SubscriptionLimits,
} from './subscriptions.js';
import type { ProducerHeader } from '../storage/producer-table.js';

/**
 * The data plane: PutRecord(s), GetShardIterator, GetRecords, with Kinesis semantics. Requests are
 * checked completely before anything is written; a record is acknowledged only once the entry
 * holding it is committed.
 */

export interface DataPlaneOptions {
  readonly broker: Broker;
  readonly keyring: SigningKeyring;
  readonly clock: Clock;
  readonly identity: ServiceIdentity;
  /** SubscribeToShard: lifetime, takeover time, how many at once (default Kinesis'). */
  readonly subscriptionLimits?: SubscriptionLimits;
  /** SubscribeToShard: bytes per second per consumer and shard, idle events, event size. */
  readonly subscriptionPacing?: SubscriptionPacing;
}

const SEQUENCE_NUMBER_PATTERN = /^(0|[1-9]\d{0,128})$/;

const SEALED = 'ShardSealedException';
/** How often one request follows a seal to the children before the client is told. */
const SEALED_REROUTES = 2;
/** Waiting for the metadata to show a sealed shard closed: about two seconds in all. */
const SEALED_WAIT_ATTEMPTS = 40;
const SEALED_WAIT_MS = 50;

/** A record whose required fields are known to be present. */
interface ValidEntry {
  readonly partitionKey: string;
  readonly data: Buffer;
  readonly explicitHashKey?: string | undefined;
}

interface RoutedRecord {
  readonly requestIndex: number;
  readonly entry: ValidEntry;
  readonly sizeBytes: number;
}

export class DataPlane {
  /** SubscribeToShard's rules for the subscriptions this broker serves. */
  private readonly subscriptions: SubscriptionRegistry;

  constructor(private readonly options: DataPlaneOptions) {
    this.subscriptions = new SubscriptionRegistry(
      options.clock,
      options.subscriptionLimits ?? DEFAULT_SUBSCRIPTION_LIMITS,
    );
  }

  /**
   * SubscribeToShard: a registered, ACTIVE consumer's push subscription to a shard led here.
   * Checks and resolves the request, claims the consumer's slot (a repeat within 5 s is refused,
   * a later one takes over), then streams events through `emit` until the subscription ends
   * (its lifetime, a takeover, the end of a closed shard, or `signal`: the client went).
   */
  async subscribeToShard(
    request: SubscribeToShardRequest,
    emit: (event: SubscribeToShardResponse) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    const v = new Validator();
    if (request.consumerArn === '') v.required('consumerARN', request.consumerArn);
    else if (parseConsumerArn(request.consumerArn) === undefined) {
      v.fail(
        'consumerARN',
        request.consumerArn,
        'Member must satisfy regular expression pattern: ^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+',
      );
    }
    v.shardId('shardId', request.shardId);
    const position = request.startingPosition;
    if (position === undefined) v.required('startingPosition', undefined);
    v.throwIfInvalid();
    const iteratorRequest: GetShardIteratorRequest = {
      streamName: '',
      streamArn: '',
      shardId: request.shardId,
      shardIteratorType: (position as StartingPosition).type,
      startingSequenceNumber: (position as StartingPosition).sequenceNumber,
      ...((position as StartingPosition).timestampMs === undefined
        ? {}
        : { timestampMs: (position as StartingPosition).timestampMs }),
    };
    checkIteratorArguments(iteratorRequest);
    const arn = parseConsumerArn(request.consumerArn) as NonNullable<
      ReturnType<typeof parseConsumerArn>
    >;
    const ref = { streamName: arn.streamName, streamArn: '' };
    const consumerIn = (s: StreamRecord) =>
      (s.consumers ?? []).find(
        (c) => c.name === arn.consumerName && Math.floor(c.createdMs / 1000) === arn.createdS,
      );
    let stream = await this.servingStream(ref);
    let consumer = consumerIn(stream);
    // The coordinators may have made the consumer ACTIVE before this broker heard.
    if (consumer?.status !== 'ACTIVE' && (await this.options.broker.refreshMetadata())) {
      stream = await this.servingStream(ref);
      consumer = consumerIn(stream);
    }
    const accountId = this.options.identity.accountId;
    if (consumer === undefined) {
      throw new ResourceNotFoundError(
        `Consumer ${request.consumerArn} under account ${accountId} not found.`,
      );
    }
    if (consumer.status !== 'ACTIVE') {
      throw new ResourceInUseError(
        `Consumer ${request.consumerArn} under account ${accountId} is not ACTIVE (status ${consumer.status}).`,
      );
    }
    const { shard } = await this.listedShard(ref, stream, request.shardId);
    const replica = this.replica(shard);
    // Pushed from the leader, which has every committed entry as soon as it commits.
    replica.checkWritable();
    const from = await this.startPosition(iteratorRequest, shard, replica);
    this.subscriptions.sweep();
    const subscription = this.subscriptions.subscribe(request.consumerArn, request.shardId);
    const ended = AbortSignal.any([signal, subscription.signal]);
    try {
      await serveSubscription(
        {
          replica,
          shardIncarnation: shard.incarnation,
          from,
          children: async () =>
            (await this.openChildren(stream, shard))?.map((child) => childShardOf(child)),
          clock: this.options.clock,
          signal: ended,
          endsAtMs: subscription.endsAtMs,
        },
        emit,
        this.options.subscriptionPacing,
      );
    } finally {
      subscription.close();
    }
  }

  async putRecord(request: PutRecordRequest): Promise<PutRecordResponse> {
    const v = new Validator();
    validateStreamRef(v, request);
    validateEntry(v, request, '');
    if (
      request.sequenceNumberForOrdering !== undefined &&
      !SEQUENCE_NUMBER_PATTERN.test(request.sequenceNumberForOrdering)
    ) {
      v.fail(
        'sequenceNumberForOrdering',
        request.sequenceNumberForOrdering,
        'Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})',
      );
    }
    v.throwIfInvalid();
    assert(hasData(request), 'validated: data is present');
    const sizeBytes = recordSize(request);
    checkRecordSize(sizeBytes);
    let stream = await this.servingStream(request);
    for (let round = 0; ; round++) {
      const shard = this.route(stream, request);
      this.checkWritable(stream, shard, [request]);
      try {
        // With throwOnFailure, putToShard throws unless the record was stored.
        const [stored] = await this.putToShard(
          stream,
          shard,
          [{ requestIndex: 0, entry: request, sizeBytes }],
          true,
        );
        const { shardId, sequenceNumber } = stored as PutRecordsResultEntry;
        return { shardId, sequenceNumber, encryptionType: EncryptionType.ENCRYPTION_TYPE_NONE };
      } catch (error) {
        if (!(error instanceof ShardSealedError) || round >= SEALED_REROUTES) throw error;
        // The shard was sealed under this write (nothing stored): route it again once the
        // metadata shows the children open; a client would be told the same.
        const next = await this.afterSeal(stream, [shard]);
        if (next === undefined) throw error;
        stream = next;
      }
    }
  }

  async putRecords(request: PutRecordsRequest): Promise<PutRecordsResponse> {
    const { entries, sizes } = checkPutRecords(request);
    if (request.producer !== undefined) {
      return this.putProducerBatch(request, request.producer, entries, sizes);
    }
    let stream = await this.servingStream(request);
    const results: PutRecordsResultEntry[] = new Array(request.records.length);
    let todo = entries.map((entry, requestIndex) => ({
      requestIndex,
      entry,
      sizeBytes: sizes[requestIndex] as number,
    }));
    for (let round = 0; ; round++) {
      const sealed = await this.putRouted(stream, todo, results, round === 0);
      if (sealed.records.length === 0 || round >= SEALED_REROUTES) break;
      // Shards sealed under this request (nothing of theirs stored): once the metadata shows
      // their children, their records go there, in request order, if this broker leads them.
      const next = await this.afterSeal(stream, sealed.shards);
      if (next === undefined) break;
      const shards = new Set(sealed.records.map((r) => this.route(next, r.entry)));
      if (![...shards].every((s) => this.leadsHere(s))) break;
      stream = next;
      todo = sealed.records;
    }
    const failedRecordCount = results.filter((r) => r.errorCode !== '').length;
    return {
      failedRecordCount,
      records: results,
      encryptionType: EncryptionType.ENCRYPTION_TYPE_NONE,
    };
  }

  /**
   * An idempotent producer's batch, written as one entry to the shard the producer names: a
   * retry after a split must reach the parent that may hold the original, not the child its keys
   * route to now. The shard's producer table catches duplicates at apply; a sealed shard answers
   * retries of what it stored and refuses the rest as sealed. Failures of the whole batch are
   * thrown (the producer acts on the error); only a throttled suffix fails record by record.
   */
  private async putProducerBatch(
    request: PutRecordsRequest,
    producer: ProducerBatch,
    entries: readonly ValidEntry[],
    sizes: readonly number[],
  ): Promise<PutRecordsResponse> {
    const v = new Validator();
    v.shardId('producer.shardId', producer.shardId);
    v.throwIfInvalid();
    if (
      !Number.isSafeInteger(producer.producerId) ||
      !Number.isSafeInteger(producer.firstSequence + entries.length)
    ) {
      throw new InvalidArgumentError('Producer ids and sequence numbers must be below 2^53.');
    }
    const { stream, shard } = await this.listedShard(
      request,
      await this.servingStream(request),
      producer.shardId,
    );
    const start = BigInt(shard.hashKeyStart);
    const end = BigInt(shard.hashKeyEnd);
    entries.forEach((entry, i) => {
      const key =
        entry.explicitHashKey === undefined
          ? partitionKeyToHashKey(entry.partitionKey)
          : BigInt(entry.explicitHashKey);
      if (key < start || key > end) {
        throw new InvalidArgumentError(
          `Record ${i} of the producer batch hashes to ${key}, outside shard ${shard.shardId} (${start}-${end}).`,
        );
      }
    });
    const replica = this.replica(shard);
    const sealed = replica.sealed() !== undefined;
    // A sealed shard takes nothing new, so its answers to retries cost no write quota.
    let accepted = entries.length;
    if (!sealed) {
      replica.checkWritable();
      const quota = this.options.broker.quota(shard.incarnation, stream.shardLimits);
      accepted = 0;
      while (accepted < entries.length && quota.tryWrite(sizes[accepted] as number)) accepted++;
      if (accepted === 0) throw this.throttledWrite(stream, shard);
    }
    const results: PutRecordsResultEntry[] = new Array(entries.length);
    if (accepted < entries.length)
      results.fill(failure(this.throttledWrite(stream, shard)), accepted);
    const header = {
      producerId: producer.producerId,
      epoch: producer.epoch,
      firstSequence: producer.firstSequence,
    };
    const stored = await proposeIdempotent(replica, entries.slice(0, accepted), header);
    stored.forEach((one, offset) => {
      results[offset] =
        one instanceof Error
          ? failure(one)
          : {
              shardId: shard.shardId,
              sequenceNumber:
                one.position === undefined
                  ? ''
                  : formatSequenceNumber({ incarnation: shard.incarnation, ...one.position }),
              errorCode: '',
              errorMessage: '',
              duplicate: one.duplicate,
            };
    });
    return {
      failedRecordCount: results.filter((r) => r.errorCode !== '').length,
      records: results,
      encryptionType: EncryptionType.ENCRYPTION_TYPE_NONE,
    };
  }

  /**
   * Writes routed records, one entry per shard, filling `results`; returns the records of shards
   * that turned out sealed. `checkAll`: every shard must be led here or nothing is written.
   */
  private async putRouted(
    stream: StreamRecord,
    todo: readonly RoutedRecord[],
    results: PutRecordsResultEntry[],
    checkAll: boolean,
  ): Promise<{ records: RoutedRecord[]; shards: ShardRecord[] }> {
    // Route everything first, so a bad hash key fails the request before anything is written.
    const byShard = new Map<ShardRecord, RoutedRecord[]>();
    // Producers often repeat partition keys within a request: hash each distinct key once.
    const shardOfKey = new Map<string, ShardRecord>();
    for (const routed of todo) {
      const { entry } = routed;
      let shard =
        entry.explicitHashKey === undefined ? shardOfKey.get(entry.partitionKey) : undefined;
      if (shard === undefined) {
        shard = this.route(stream, entry);
        if (entry.explicitHashKey === undefined) shardOfKey.set(entry.partitionKey, shard);
      }
      let group = byShard.get(shard);
      if (group === undefined) byShard.set(shard, (group = []));
      group.push(routed);
    }
    // Every shard of the request must be led here, or nothing is written: the client routes its
    // records to the leaders (a definite NOT_LEADER, so retrying elsewhere cannot duplicate).
    if (checkAll) {
      for (const shard of byShard.keys())
        this.checkWritable(
          stream,
          shard,
          todo.map((r) => r.entry),
        );
    }
    const sealed: { records: RoutedRecord[]; shards: ShardRecord[] } = { records: [], shards: [] };
    await Promise.all(
      [...byShard].map(async ([shard, group]) => {
        const shardResults = await this.putToShard(stream, shard, group, false);
        if (shardResults[0]?.errorCode === SEALED) {
          sealed.shards.push(shard);
          sealed.records.push(...group);
        }
        group.forEach((routed, k) => {
          results[routed.requestIndex] = shardResults[k] as PutRecordsResultEntry;
        });
      }),
    );
    sealed.records.sort((a, b) => a.requestIndex - b.requestIndex);
    return sealed;
  }

  /**
   * The stream once the metadata shows every one of `shards` closed (their children then take
   * their keys), or undefined if it does not within a few seconds (the client is told to retry).
   */
  private async afterSeal(
    stream: StreamRecord,
    shards: readonly ShardRecord[],
  ): Promise<StreamRecord | undefined> {
    const { broker } = this.options;
    for (let attempt = 0; attempt < SEALED_WAIT_ATTEMPTS; attempt++) {
      const now = broker.directory().streamByIncarnation(stream.incarnation);
      if (now === undefined) return undefined;
      const closed = shards.every((s) => {
        const shard = now.shards.find((x) => x.shardId === s.shardId);
        return shard !== undefined && shard.endingSequenceNumber !== undefined;
      });
      if (closed) return now;
      if (!(await broker.refreshMetadata())) await sleep(SEALED_WAIT_MS);
    }
    return undefined;
  }

  /**
   * Throws unless this broker leads `shard`. A client whose shard map predates a split or merge
   * sends a closed shard's keys to the broker leading it; refused with NOT_LEADER, it would take
   * the hint (the child's leader) for the closed shard and bounce between brokers. So when one of
   * the records falls in a closed shard led here, the answer is ShardSealedException: look at the
   * newest shard map, then route again.
   */
  private checkWritable(
    stream: StreamRecord,
    shard: ShardRecord,
    entries: readonly { partitionKey: string; explicitHashKey?: string | undefined }[],
  ): void {
    try {
      this.replica(shard).checkWritable();
    } catch (error) {
      if (!(error instanceof NotLeaderError)) throw error;
      const closedHere = stream.shards.filter(
        (s) => s.endingSequenceNumber !== undefined && this.leadsHere(s),
      );
      if (closedHere.length === 0) throw error;
      for (const entry of entries) {
        const key =
          entry.explicitHashKey === undefined
            ? partitionKeyToHashKey(entry.partitionKey)
            : BigInt(entry.explicitHashKey);
        const stale = closedHere.find(
          (s) => BigInt(s.hashKeyStart) <= key && key <= BigInt(s.hashKeyEnd),
        );
        if (stale !== undefined) {
          throw ShardSealedError.forChildren(
            childrenOf(stream, stale.shardId).map((c) => c.shardId),
          );
        }
      }
      throw error;
    }
  }

  private leadsHere(shard: ShardRecord): boolean {
    try {
      this.replica(shard).checkWritable();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Writes one shard's share of a request as one log entry. Throughput is charged record by
   * record in request order; once one record is throttled, the shard's later records in this
   * request are throttled too, so a client that retries the failures keeps its order.
   */
  private async putToShard(
    stream: StreamRecord,
    shard: ShardRecord,
    group: readonly RoutedRecord[],
    throwOnFailure: boolean,
  ): Promise<PutRecordsResultEntry[]> {
    const replica = this.replica(shard);
    const quota = this.options.broker.quota(shard.incarnation, stream.shardLimits);
    let accepted = 0;
    while (accepted < group.length && quota.tryWrite((group[accepted] as RoutedRecord).sizeBytes))
      accepted++;
    const results: PutRecordsResultEntry[] = new Array(group.length);
    if (accepted < group.length) {
      const throttled = this.throttledWrite(stream, shard);
      if (accepted === 0 && throwOnFailure) throw throttled;
      results.fill(failure(throttled), accepted);
      if (accepted === 0) return results;
    }
    const records = group
      .slice(0, accepted)
      .map((r) => ({ partitionKey: r.entry.partitionKey, data: r.entry.data }));
    try {
      const { index } = await replica.propose(records);
      for (let offset = 0; offset < accepted; offset++) {
        results[offset] = {
          shardId: shard.shardId,
          sequenceNumber: formatSequenceNumber({ incarnation: shard.incarnation, index, offset }),
          errorCode: '',
          errorMessage: '',
          duplicate: false,
        };
      }
    } catch (error) {
      if (throwOnFailure) throw error;
      const failed = failure(error);
      for (let offset = 0; offset < accepted; offset++) results[offset] = failed;
    }
    return results;
  }

  async getShardIterator(request: GetShardIteratorRequest): Promise<GetShardIteratorResponse> {
    const v = new Validator();
    validateStreamRef(v, request);
    v.shardId('shardId', request.shardId);
    const type = request.shardIteratorType;
    if (
      type === ShardIteratorType.SHARD_ITERATOR_TYPE_UNSPECIFIED ||
      type === ShardIteratorType.UNRECOGNIZED
    ) {
      v.fail(
        'shardIteratorType',
        type,
        'Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]',
      );
    }
    if (request.startingSequenceNumber !== '') {
      v.pattern(
        'startingSequenceNumber',
        request.startingSequenceNumber,
        SEQUENCE_NUMBER_PATTERN,
        '0|([1-9]\\d{0,128})',
      );
    }
    v.throwIfInvalid();
    checkIteratorArguments(request);
    const stream = await this.servingStream(request);
    const shard = stream.shards.find((s) => s.shardId === request.shardId && isListed(s));
    if (shard === undefined) {
      throw new ResourceNotFoundError(
        `Shard ${request.shardId} in stream ${stream.name} under account ${this.options.identity.accountId} does not exist`,
      );
    }
    const replica = this.replica(shard);
    const position = await this.startPosition(request, shard, replica);
    return { shardIterator: this.iterator(stream, shard, position) };
  }

  private async startPosition(
    request: GetShardIteratorRequest,
    shard: ShardRecord,
    replica: ShardReplica,
  ): Promise<LogPosition> {
    switch (request.shardIteratorType) {
      case ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON:
        return replica.trimHorizon();
      case ShardIteratorType.SHARD_ITERATOR_TYPE_LATEST:
        return replica.latest();
      case ShardIteratorType.SHARD_ITERATOR_TYPE_AT_TIMESTAMP:
        return replica.positionAtTimestamp(request.timestampMs as number);
      case ShardIteratorType.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER:
      case ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER: {
        const parts = parseSequenceNumber(request.startingSequenceNumber);
        if (parts === undefined || parts.incarnation !== shard.incarnation) {
          throw new InvalidArgumentError(
            `Invalid StartingSequenceNumber. The sequence number ${request.startingSequenceNumber} ` +
              `does not belong to shard ${shard.shardId}.`,
          );
        }
        if (parts.index > replica.commitIndex()) {
          throw new InvalidArgumentError(
            `Invalid StartingSequenceNumber. The sequence number ${request.startingSequenceNumber} ` +
              `is beyond the latest record of shard ${shard.shardId}.`,
          );
        }
        const after =
          request.shardIteratorType === ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER;
        return { index: parts.index, offset: parts.offset + (after ? 1 : 0) };
      }
      default:
        throw new InvalidArgumentError(`Unknown ShardIteratorType ${request.shardIteratorType}.`);
    }
  }

  async getRecords(request: GetRecordsRequest): Promise<GetRecordsResponse> {
    const v = new Validator();
    if (request.shardIterator === '') v.required('shardIterator', request.shardIterator);
    else v.length('shardIterator', request.shardIterator, 1, SHARD_ITERATOR_MAX_LENGTH);
    if (request.limit !== undefined) v.range('limit', request.limit, 1, GET_RECORDS_MAX_RECORDS);
    v.throwIfInvalid();
    const { clock, identity } = this.options;
    const { broker } = this.options;
    const decode = () => decodeIterator(request.shardIterator, this.options.keyring, clock.nowMs());
    let claims: ReturnType<typeof decodeIterator>;
    try {
      claims = decode();
    } catch (error) {
      // Signed with a key newer than any this broker knows (another broker heard of the
      // rotation first)? Look at the newest metadata once before judging the token. Only a
      // refused token pays for the look.
      const keyId = iteratorKeyId(request.shardIterator);
      if (keyId === undefined || keyId <= this.newestKeyId()) throw error;
      await broker.refreshMetadata();
      claims = decode();
    }
    const serving = (at: ShardLocation | undefined) =>
      at !== undefined &&
      at.stream.incarnation === claims.streamIncarnation &&
      this.serves(at.stream);
    let location = broker.directory().shardByIncarnation(claims.shardIncarnation);
    if (!serving(location) && (await broker.refreshMetadata())) {
      location = broker.directory().shardByIncarnation(claims.shardIncarnation);
    }
    const stream = location?.stream;
    if (
      location === undefined ||
      stream === undefined ||
      stream.incarnation !== claims.streamIncarnation ||
      !this.serves(stream)
    ) {
      throw new ResourceNotFoundError(
        `The stream or shard of this shard iterator no longer exists under account ${identity.accountId}.`,
      );
    }
    if (request.streamArn !== '') {
      const named = resolveStreamName({ streamName: '', streamArn: request.streamArn }, identity);
      if (named !== stream.name) {
        throw new InvalidArgumentError(
          `The shard iterator belongs to stream ${stream.name}, not to ${request.streamArn}.`,
        );
      }
    }
    const { shard } = location;
    const replica = this.replica(shard);
    const quota = this.options.broker.quota(shard.incarnation, stream.shardLimits);
    if (!quota.tryStartRead()) {
      throw new ProvisionedThroughputExceededError(
        `Rate exceeded for Shard - ${shard.shardId} in stream ${stream.name} under account ${identity.accountId}.`,
      );
    }
    const result = await replica.read(claims.position, {
      maxRecords: request.limit ?? GET_RECORDS_MAX_RECORDS,
      maxBytes: GET_RECORDS_MAX_SIZE_BYTES,
    });
    let bytes = 0;
    const records = result.records.map((r) => {
      bytes += r.data.length + Buffer.byteLength(r.partitionKey, 'utf8');
      return {
        sequenceNumber: formatSequenceNumber({ incarnation: shard.incarnation, ...r.position }),
        approximateArrivalTimestampMs: r.arrivalMs,
        data: r.data,
        partitionKey: r.partitionKey,
        encryptionType: EncryptionType.ENCRYPTION_TYPE_NONE,
      };
    });
    quota.chargeRead(bytes);
    const lastArrivalMs = result.records[result.records.length - 1]?.arrivalMs;
    const millisBehindLatest = behindLatestMs(result, lastArrivalMs, clock.nowMs());
    // Read to its SEAL: no next iterator, and the children to go on with, once they are open (a
    // merge's child opens after both parents are sealed; until then the reader polls here).
    const children = result.endOfShard ? await this.openChildren(stream, shard) : undefined;
    return {
      records,
      nextShardIterator: children === undefined ? this.iterator(stream, shard, result.next) : '',
      millisBehindLatest,
      childShards: (children ?? []).map(childShardOf),
    };
  }

  /** The children of a sealed shard once every one is open; undefined while any is pending. */
  private async openChildren(
    stream: StreamRecord,
    shard: ShardRecord,
  ): Promise<ShardRecord[] | undefined> {
    const ready = (s: StreamRecord | undefined) => {
      if (s === undefined) return undefined;
      const children = childrenOf(s, shard.shardId);
      return children.length > 0 && children.every(isListed) ? children : undefined;
    };
    const current = () =>
      ready(this.options.broker.directory().streamByIncarnation(stream.incarnation));
    // `stream` may be old (a subscription keeps the one it started with): the local copy first,
    // which is all a single node has, then the newest from the coordinators.
    const known = ready(stream) ?? current();
    if (known !== undefined) return known;
    if (!(await this.options.broker.refreshMetadata())) return undefined;
    return current();
  }

  private iterator(stream: StreamRecord, shard: ShardRecord, position: LogPosition): string {
    return encodeIterator(
      {
        streamIncarnation: stream.incarnation,
        shardIncarnation: shard.incarnation,
        position,
        issuedMs: this.options.clock.nowMs(),
      },
      this.options.keyring.current(),
    );
  }

  private newestKeyId(): number {
    try {
      return this.options.keyring.current().id;
    } catch {
      return 0;
    }
  }

  /**
   * The listed shard `shardId` of `stream`. Clients learn of a split's children from the
   * coordinators, maybe before this broker has: it looks at the newest metadata once before
   * calling the shard unknown.
   */
  private async listedShard(
    ref: { streamName: string; streamArn: string },
    stream: StreamRecord,
    shardId: string,
  ): Promise<{ stream: StreamRecord; shard: ShardRecord }> {
    const find = (s: StreamRecord) => s.shards.find((x) => x.shardId === shardId && isListed(x));
    let shard = find(stream);
    let latest = stream;
    if (shard === undefined && (await this.options.broker.refreshMetadata())) {
      latest = await this.servingStream(ref);
      shard = find(latest);
    }
    if (shard === undefined) {
      throw new ResourceNotFoundError(
        `Shard ${shardId} in stream ${latest.name} under account ${this.options.identity.accountId} does not exist`,
      );
    }
    return { stream: latest, shard };
  }

  private async servingStream(ref: {
    streamName: string;
    streamArn: string;
  }): Promise<StreamRecord> {
    const name = resolveStreamName(ref, this.options.identity);
    const stream = await this.options.broker.findStream(name, isServing);
    if (stream === undefined || !this.serves(stream)) {
      throw streamNotFound(name, this.options.identity);
    }
    return stream;
  }

  /**
   * Whether records of the stream are served: ACTIVE or UPDATING; or CREATING while the
   * coordinators cannot be asked, since this broker's copy may be behind (they decide when it is
   * ACTIVE), its replicas here are open, and Raft needs no coordinator.
   */
  private serves(stream: StreamRecord): boolean {
    return (
      isServing(stream) || (stream.status === 'CREATING' && this.options.broker.metadataUnreachable)
    );
  }

  private route(
    stream: StreamRecord,
    entry: { partitionKey: string; explicitHashKey?: string | undefined },
  ): ShardRecord {
    let hashKey: bigint;
    if (entry.explicitHashKey !== undefined) {
      hashKey = BigInt(entry.explicitHashKey);
      if (hashKey > MAX_HASH_KEY) {
        throw new InvalidArgumentError(
          `Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, ${MAX_HASH_KEY}]. ` +
            `Specified value was ${entry.explicitHashKey}`,
        );
      }
    } else {
      hashKey = partitionKeyToHashKey(entry.partitionKey);
    }
    const shard = this.options.broker.directory().router(stream).route(hashKey);
    if (shard === undefined)
      throw new ServiceUnavailableError(`No open shard owns hash key ${hashKey}.`);
    return shard;
  }

  private replica(shard: ShardRecord): ShardReplica {
    const replicas = this.options.broker.replicas;
    const replica = replicas.get(shard.incarnation);
    // A replica still open here after a move took it away (or an earlier member of a group this
    // broker joined again) answers nothing: it falls behind, and reconciliation deletes it.
    const placed = replicas.hosts(shard);
    if (replica === undefined || !placed || replicas.isStale(replica, shard)) {
      if (!placed) {
        const elsewhere = replicas.notHosted(shard);
        if (elsewhere !== undefined) throw elsewhere;
      }
      throw new ServiceUnavailableError(
        `Shard ${shard.shardId} is not available on this broker yet.`,
      );
    }
    return replica;
  }

  private throttledWrite(
    stream: StreamRecord,
    shard: ShardRecord,
  ): ProvisionedThroughputExceededError {
    return new ProvisionedThroughputExceededError(
      `Rate exceeded for shard ${shard.shardId} in stream ${stream.name} under account ${this.options.identity.accountId}.`,
    );
  }
}

function checkIteratorArguments(request: GetShardIteratorRequest): void {
  const type = request.shardIteratorType;
  const bySequence =
    type === ShardIteratorType.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER ||
    type === ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER;
  const name = type.replace('SHARD_ITERATOR_TYPE_', '');
  if (bySequence && request.startingSequenceNumber === '') {
    throw new InvalidArgumentError(
      `Must specify a StartingSequenceNumber for iterator type ${name}.`,
    );
  }
  if (!bySequence && request.startingSequenceNumber !== '') {
    throw new InvalidArgumentError(
      `Request specified ${name} and also a StartingSequenceNumber; only AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER take one.`,
    );
  }
  const byTime = type === ShardIteratorType.SHARD_ITERATOR_TYPE_AT_TIMESTAMP;
  if (byTime && request.timestampMs === undefined) {
    throw new InvalidArgumentError(
      'Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP.',
    );
  }
  if (!byTime && request.timestampMs !== undefined) {
    throw new InvalidArgumentError(
      `Request specified ${name} and also a Timestamp; only AT_TIMESTAMP takes one.`,
    );
  }
}

/** Where one record of an idempotent batch is (undefined: a duplicate older than the window). */
interface StoredRecordPosition {
  readonly position: LogPosition | undefined;
  readonly duplicate: boolean;
}

/**
 * Proposes an idempotent producer's batch; one answer per record. A batch that overlaps stored
 * records (the retry of a batch stored in part: a throttle cut it, then its answer was lost) is
 * refused as out of order; it is split where the shard's sequence stands, and the two parts go
 * again: the stored part is answered as a duplicate with its positions, the rest is stored (or,
 * on a sealed shard, refused record by record as sealed, for the children).
 */
async function proposeIdempotent(
  replica: ShardReplica,
  entries: readonly ValidEntry[],
  header: ProducerHeader,
  depth = 0,
): Promise<(StoredRecordPosition | ShardSealedError)[]> {
  const records = entries.map((e) => ({ partitionKey: e.partitionKey, data: e.data }));
  try {
    const outcome = await replica.propose(records, header);
    return records.map((_, offset) => ({
      position:
        outcome.duplicateOf === undefined
          ? { index: outcome.index, offset }
          : outcome.duplicateOf[offset],
      duplicate: outcome.duplicateOf !== undefined,
    }));
  } catch (error) {
    const expected = error instanceof OutOfOrderSequenceError ? error.expectedSequence : undefined;
    const cut = expected === undefined ? 0 : expected - header.firstSequence;
    // One split is enough (the first part is then a duplicate, the second continues); a further
    // refusal is answered as it is.
    if (depth > 0 || cut <= 0 || cut >= entries.length) {
      if (depth > 0 && error instanceof ShardSealedError) return entries.map(() => error);
      throw error;
    }
    const head = await proposeIdempotent(replica, entries.slice(0, cut), header, depth + 1);
    const tail = await proposeIdempotent(
      replica,
      entries.slice(cut),
      { ...header, firstSequence: header.firstSequence + cut },
      depth + 1,
    );
    return [...head, ...tail];
  }
}

function childShardOf(child: ShardRecord): ChildShard {
  return {
    shardId: child.shardId,
    parentShards: [child.parentShardId, child.adjacentParentShardId].filter(
      (p): p is string => p !== undefined,
    ),
    hashKeyRange: { startingHashKey: child.hashKeyStart, endingHashKey: child.hashKeyEnd },
  };
}

function failure(error: unknown): PutRecordsResultEntry {
  // Throttling and a lost leadership are definite (nothing stored); routing clients act on the
  // latter. Everything else is InternalFailure: the record may or may not be stored.
  if (
    error instanceof RheosError &&
    (error.name === 'ProvisionedThroughputExceededException' ||
      error.name === 'NotLeaderException' ||
      error.name === SEALED)
  ) {
    return {
      sequenceNumber: '',
      shardId: '',
      errorCode: error.name,
      errorMessage: error.message,
      duplicate: false,
    };
  }
  return {
    sequenceNumber: '',
    shardId: '',
    errorCode: 'InternalFailure',
    errorMessage: 'Internal service failure.',
    duplicate: false,
  };
}

/**
 * GetRecords' MillisBehindLatest: 0 only when the read reached the shard's tip. A follower that
 * could not confirm its tip with the leader says how old the newest record it knows is (at least
 * 1 ms), so a reader never takes it for caught up.
 */
function behindLatestMs(
  result: ReadResult,
  lastArrivalMs: number | undefined,
  nowMs: number,
): number {
  if (result.unconfirmed === true) {
    const newestMs = lastArrivalMs ?? result.tipArrivalMs;
    return newestMs === 0 ? 1 : Math.max(1, nowMs - newestMs);
  }
  if (result.caughtUp || lastArrivalMs === undefined) return 0;
  return Math.max(0, result.tipArrivalMs - lastArrivalMs);
}
