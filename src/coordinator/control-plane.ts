import { ConsumerOperations } from './consumer-operations.js';
import { GroupOperations } from './group-operations.js';
import { consumersOf } from './consumers.js';
import { resolveStreamName, streamArn, type ServiceIdentity } from '../common/arn.js';
import type { Clock } from '../common/clock.js';
import { InvalidArgumentError, ResourceInUseError, ValidationError } from '../common/errors.js';
import { MAX_HASH_KEY } from '../common/hash-key.js';
import {
  DESCRIBE_STREAM_MAX_SHARDS,
  LIST_SHARDS_MAX_RESULTS,
  LIST_SHARDS_MAX_RESULTS_ACCEPTED,
  LIST_STREAMS_DEFAULT_LIMIT,
  LIST_STREAMS_MAX_LIMIT,
  LIST_TAGS_MAX_LIMIT,
  ON_DEMAND_INITIAL_SHARDS,
  RETENTION_MAX_HOURS,
  RETENTION_MIN_HOURS,
  TAG_KEY_MAX_LENGTH,
  TAG_VALUE_MAX_LENGTH,
  TAGS_PER_STREAM_MAX,
  type ShardThroughputLimits,
} from '../common/limits.js';
import { decodePageToken, encodePageToken } from '../common/page-token.js';
import { Validator } from '../common/validation.js';
import {
  ShardFilterType,
  type AddTagsToStreamRequest,
  type CreateStreamRequest,
  type DecreaseStreamRetentionPeriodRequest,
  type DeleteStreamRequest,
  type DescribeLimitsResponse,
  type DescribeStreamRequest,
  type DescribeStreamResponse,
  type DescribeStreamSummaryRequest,
  type DescribeStreamSummaryResponse,
  type IncreaseStreamRetentionPeriodRequest,
  type ListShardsRequest,
  type ListShardsResponse,
  type ListStreamsRequest,
  type ListStreamsResponse,
  type ListTagsForStreamRequest,
  type ListTagsForStreamResponse,
  type RemoveTagsFromStreamRequest,
  type UpdateStreamModeRequest,
  ScalingType,
  type MergeShardsRequest,
  type SplitShardRequest,
  type UpdateShardCountRequest,
  type UpdateShardCountResponse,
  type RegisterStreamConsumerRequest,
  type RegisterStreamConsumerResponse,
  type DescribeStreamConsumerRequest,
  type DescribeStreamConsumerResponse,
  type ListStreamConsumersRequest,
  type ListStreamConsumersResponse,
  type DeregisterStreamConsumerRequest,
} from '../gen/rheos/v1/control.js';
import {
  EncryptionType,
  StreamMode as ProtoStreamMode,
  StreamStatus as ProtoStreamStatus,
  type Shard,
  type ShardLimits,
} from '../gen/rheos/v1/stream.js';
import { startingSequenceNumber, streamNotFound } from './metadata-machine.js';
import type { MetadataService } from './metadata-service.js';
import {
  isListed,
  isOpen,
  openShardCount,
  type ShardRecord,
  type StreamMode,
  type StreamRecord,
} from './model.js';

/**
 * The control plane with Kinesis semantics: request checks, pagination and the mapping between
 * the API's shapes and the metadata model. State changes go through the metadata state machine.
 */

export type ControlPlaneMetadata = Pick<MetadataService, 'state' | 'context' | 'propose'> & {
  /** The leadership calls are served under (the coordinator's Raft term); absent: one. */
  readonly leadershipEpoch?: () => number;
};

export interface ControlPlaneOptions {
  /** The metadata service, or a cluster's static metadata (which refuses changes). */
  readonly metadata: ControlPlaneMetadata;
  readonly clock: Clock;
  readonly identity: ServiceIdentity;
  /** Per-shard limits of streams created without their own. */
  readonly defaultShardLimits: ShardThroughputLimits;
  readonly defaultReplicationFactor: number;
  /** Replicas per shard cannot exceed the number of brokers. */
  readonly maxReplicationFactor: number;
  /** A consumer-group worker silent this long loses its leases (10 s by default, as the KCL). */
  readonly groupFailoverMs?: number;
}

const HASH_KEY_PATTERN = /^(0|[1-9]\d{0,38})$/;

const TAG_PATTERN = /^[\p{L}\p{Z}\p{N}_.:/=+\-@%]*$/u;

interface ListShardsToken {
  readonly stream: string;
  readonly incarnation: number;
  readonly after: string;
  readonly filter?: { type: ShardFilterType; shardId: string; timestampMs?: number };
}

interface ListStreamsToken {
  readonly after: string;
}

export class ControlPlane {
  private readonly consumers: ConsumerOperations;
  /** Consumer groups: their heartbeats, leases and checkpoints. */
  readonly groups: GroupOperations;

  constructor(private readonly options: ControlPlaneOptions) {
    this.consumers = new ConsumerOperations(options);
    this.groups = new GroupOperations({
      metadata: options.metadata,
      clock: options.clock,
      ...(options.groupFailoverMs === undefined ? {} : { failoverMs: options.groupFailoverMs }),
    });
  }

  registerStreamConsumer(
    request: RegisterStreamConsumerRequest,
  ): Promise<RegisterStreamConsumerResponse> {
    return this.consumers.register(request);
  }

  describeStreamConsumer(request: DescribeStreamConsumerRequest): DescribeStreamConsumerResponse {
    return this.consumers.describe(request);
  }

  listStreamConsumers(request: ListStreamConsumersRequest): ListStreamConsumersResponse {
    return this.consumers.list(request);
  }

  deregisterStreamConsumer(request: DeregisterStreamConsumerRequest): Promise<void> {
    return this.consumers.deregister(request);
  }

  private get metadata(): ControlPlaneMetadata {
    return this.options.metadata;
  }

  async createStream(request: CreateStreamRequest): Promise<void> {
    const v = new Validator().streamName('streamName', request.streamName);
    if (request.shardCount !== undefined) v.range('shardCount', request.shardCount, 1, 1_000_000);
    if (request.streamMode === ProtoStreamMode.UNRECOGNIZED) {
      v.fail(
        'streamModeDetails.streamMode',
        request.streamMode,
        'Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]',
      );
    }
    validateTags(v, request.tags);
    v.throwIfInvalid();
    const mode: StreamMode =
      request.streamMode === ProtoStreamMode.STREAM_MODE_ON_DEMAND ? 'ON_DEMAND' : 'PROVISIONED';
    if (mode === 'PROVISIONED' && request.shardCount === undefined) {
      throw new InvalidArgumentError('ShardCount is required for streams in PROVISIONED mode.');
    }
    if (mode === 'ON_DEMAND' && request.shardCount !== undefined) {
      throw new InvalidArgumentError('ShardCount must not be given for streams in ON_DEMAND mode.');
    }
    checkTagKeys(Object.keys(request.tags));
    const replicationFactor = request.replicationFactor ?? this.options.defaultReplicationFactor;
    if (replicationFactor < 1 || replicationFactor > this.options.maxReplicationFactor) {
      throw new InvalidArgumentError(
        `Replication factor ${replicationFactor} is not possible: this cluster can place 1 to ` +
          `${this.options.maxReplicationFactor} replicas per shard.`,
      );
    }
    await this.metadata.propose({
      type: 'createStream',
      name: request.streamName,
      shardCount: request.shardCount ?? ON_DEMAND_INITIAL_SHARDS,
      mode,
      shardLimits:
        request.shardLimits === undefined
          ? this.options.defaultShardLimits
          : fromProtoLimits(request.shardLimits),
      replicationFactor,
      tags: request.tags,
      nowMs: this.options.clock.nowMs(),
    });
  }

  async deleteStream(request: DeleteStreamRequest): Promise<void> {
    const name = this.streamName(request);
    await this.metadata.propose({
      type: 'deleteStream',
      name,
      enforceConsumerDeletion: request.enforceConsumerDeletion,
    });
  }

  describeStream(request: DescribeStreamRequest): DescribeStreamResponse {
    const name = this.streamName(request, (v) => {
      if (request.limit !== undefined) v.range('limit', request.limit, 1, 10_000);
      if (request.exclusiveStartShardId !== '')
        v.shardId('exclusiveStartShardId', request.exclusiveStartShardId);
    });
    const stream = this.requireStream(name);
    const limit = Math.min(request.limit ?? DESCRIBE_STREAM_MAX_SHARDS, DESCRIBE_STREAM_MAX_SHARDS);
    const after = stream.shards.filter(
      (s) =>
        isListed(s) &&
        (request.exclusiveStartShardId === '' || s.shardId > request.exclusiveStartShardId),
    );
    return {
      streamDescription: {
        streamName: stream.name,
        streamArn: streamArn(this.options.identity, stream.name),
        streamStatus: toProtoStatus(stream),
        streamMode: toProtoMode(stream.mode),
        shards: after.slice(0, limit).map(toProtoShard),
        hasMoreShards: after.length > limit,
        retentionPeriodHours: stream.retentionHours,
        streamCreationTimestampMs: stream.createdMs,
        enhancedMonitoringShardLevelMetrics: [],
        encryptionType: EncryptionType.ENCRYPTION_TYPE_NONE,
        keyId: '',
        shardLimits: toProtoLimits(stream.shardLimits),
        maxRecordSizeKib: 1024,
      },
    };
  }

  describeStreamSummary(request: DescribeStreamSummaryRequest): DescribeStreamSummaryResponse {
    const stream = this.requireStream(this.streamName(request));
    return {
      streamDescriptionSummary: {
        streamName: stream.name,
        streamArn: streamArn(this.options.identity, stream.name),
        streamStatus: toProtoStatus(stream),
        streamMode: toProtoMode(stream.mode),
        retentionPeriodHours: stream.retentionHours,
        streamCreationTimestampMs: stream.createdMs,
        enhancedMonitoringShardLevelMetrics: [],
        encryptionType: EncryptionType.ENCRYPTION_TYPE_NONE,
        keyId: '',
        openShardCount: openShardCount(stream),
        consumerCount: consumersOf(stream).length,
        shardLimits: toProtoLimits(stream.shardLimits),
        maxRecordSizeKib: 1024,
      },
    };
  }

  listStreams(request: ListStreamsRequest): ListStreamsResponse {
    const v = new Validator();
    if (request.limit !== undefined) v.range('limit', request.limit, 1, LIST_STREAMS_MAX_LIMIT);
    if (request.exclusiveStartStreamName !== '')
      v.streamName('exclusiveStartStreamName', request.exclusiveStartStreamName);
    v.throwIfInvalid();
    const nowMs = this.options.clock.nowMs();
    let after = request.exclusiveStartStreamName;
    if (request.nextToken !== '') {
      const token = decodePageToken('ListStreams', request.nextToken, nowMs, isListStreamsToken);
      after = token.after > after ? token.after : after;
    }
    const limit = request.limit ?? LIST_STREAMS_DEFAULT_LIMIT;
    const names = [...this.metadata.state.streams.keys()].filter((n) => n > after).sort();
    const page = names.slice(0, limit);
    const hasMore = names.length > limit;
    const last = page[page.length - 1];
    return {
      streamNames: page,
      hasMoreStreams: hasMore,
      nextToken:
        hasMore && last !== undefined ? encodePageToken('ListStreams', { after: last }, nowMs) : '',
      streamSummaries: page.map((name) => {
        const stream = this.metadata.state.streams.get(name) as StreamRecord;
        return {
          streamName: name,
          streamArn: streamArn(this.options.identity, name),
          streamStatus: toProtoStatus(stream),
          streamMode: toProtoMode(stream.mode),
          streamCreationTimestampMs: stream.createdMs,
        };
      }),
    };
  }

  listShards(request: ListShardsRequest): ListShardsResponse {
    const v = new Validator();
    if (request.maxResults !== undefined)
      v.range('maxResults', request.maxResults, 1, LIST_SHARDS_MAX_RESULTS_ACCEPTED);
    if (request.streamName !== '') v.streamName('streamName', request.streamName);
    if (request.exclusiveStartShardId !== '')
      v.shardId('exclusiveStartShardId', request.exclusiveStartShardId);
    if (request.shardFilter?.type === ShardFilterType.UNRECOGNIZED) {
      v.fail('shardFilter.type', request.shardFilter.type, 'Member must satisfy enum value set');
    }
    v.throwIfInvalid();
    const nowMs = this.options.clock.nowMs();
    let token: ListShardsToken;
    if (request.nextToken !== '') {
      if (
        request.streamName !== '' ||
        request.streamArn !== '' ||
        request.exclusiveStartShardId !== '' ||
        request.streamCreationTimestampMs !== undefined
      ) {
        throw new InvalidArgumentError(
          'NextToken and StreamName, StreamARN, ExclusiveStartShardId or StreamCreationTimestamp cannot be provided together.',
        );
      }
      token = decodePageToken('ListShards', request.nextToken, nowMs, isListShardsToken);
    } else {
      if (request.streamName === '' && request.streamArn === '') {
        throw new InvalidArgumentError(
          'Either NextToken or StreamName (or StreamARN) should be provided.',
        );
      }
      if (request.exclusiveStartShardId !== '' && request.shardFilter !== undefined) {
        throw new InvalidArgumentError(
          'ExclusiveStartShardId and ShardFilter cannot be provided together.',
        );
      }
      const name = resolveStreamName(request, this.options.identity);
      const stream = this.requireStream(name);
      if (
        request.streamCreationTimestampMs !== undefined &&
        request.streamCreationTimestampMs !== stream.createdMs
      ) {
        throw streamNotFound(name, this.options.identity);
      }
      const filter = request.shardFilter;
      if (filter !== undefined) checkShardFilter(filter.type, filter.shardId, filter.timestampMs);
      token = {
        stream: name,
        incarnation: stream.incarnation,
        after:
          filter?.type === ShardFilterType.SHARD_FILTER_TYPE_AFTER_SHARD_ID
            ? filter.shardId
            : request.exclusiveStartShardId,
        ...(filter === undefined
          ? {}
          : {
              filter: {
                type: filter.type,
                shardId: filter.shardId,
                ...(filter.timestampMs === undefined ? {} : { timestampMs: filter.timestampMs }),
              },
            }),
      };
    }
    const stream = this.metadata.state.streams.get(token.stream);
    if (stream === undefined || stream.incarnation !== token.incarnation)
      throw streamNotFound(token.stream, this.options.identity);
    if (stream.status === 'CREATING') {
      throw new ResourceInUseError(
        `Stream ${stream.name} under account ${this.options.identity.accountId} is still being created.`,
      );
    }
    const listed = new Set(stream.shards.filter(isListed).map((s) => s.shardId));
    const matching = stream.shards.filter(
      (s) =>
        listed.has(s.shardId) && s.shardId > token.after && shardMatches(s, token.filter, listed),
    );
    const limit = Math.min(request.maxResults ?? LIST_SHARDS_MAX_RESULTS, LIST_SHARDS_MAX_RESULTS);
    const page = matching.slice(0, limit);
    const last = page[page.length - 1];
    return {
      shards: page.map(toProtoShard),
      nextToken:
        matching.length > limit && last !== undefined
          ? encodePageToken('ListShards', { ...token, after: last.shardId }, nowMs)
          : '',
    };
  }

  async addTagsToStream(request: AddTagsToStreamRequest): Promise<void> {
    const name = this.streamName(request, (v) => {
      const count = Object.keys(request.tags).length;
      if (count < 1) v.fail('tags', '{}', 'Member must have length greater than or equal to 1');
      validateTags(v, request.tags);
    });
    checkTagKeys(Object.keys(request.tags));
    await this.metadata.propose({ type: 'addTags', name, tags: request.tags });
  }

  async removeTagsFromStream(request: RemoveTagsFromStreamRequest): Promise<void> {
    const name = this.streamName(request, (v) => {
      if (request.tagKeys.length < 1)
        v.fail('tagKeys', '[]', 'Member must have length greater than or equal to 1');
      if (request.tagKeys.length > TAGS_PER_STREAM_MAX) {
        v.fail(
          'tagKeys',
          `<${request.tagKeys.length} keys>`,
          `Member must have length less than or equal to ${TAGS_PER_STREAM_MAX}`,
        );
      }
      request.tagKeys.forEach((key, i) =>
        v.length(`tagKeys.${i + 1}.member`, key, 1, TAG_KEY_MAX_LENGTH),
      );
    });
    await this.metadata.propose({ type: 'removeTags', name, keys: request.tagKeys });
  }

  listTagsForStream(request: ListTagsForStreamRequest): ListTagsForStreamResponse {
    const name = this.streamName(request, (v) => {
      if (request.limit !== undefined) v.range('limit', request.limit, 1, LIST_TAGS_MAX_LIMIT);
      if (request.exclusiveStartTagKey !== '')
        v.length('exclusiveStartTagKey', request.exclusiveStartTagKey, 1, TAG_KEY_MAX_LENGTH);
    });
    const stream = this.requireStream(name);
    const keys = Object.keys(stream.tags)
      .filter((k) => k > request.exclusiveStartTagKey)
      .sort();
    const limit = request.limit ?? LIST_TAGS_MAX_LIMIT;
    return {
      tags: keys.slice(0, limit).map((key) => ({ key, value: stream.tags[key] as string })),
      hasMoreTags: keys.length > limit,
    };
  }

  async increaseStreamRetentionPeriod(
    request: IncreaseStreamRetentionPeriodRequest,
  ): Promise<void> {
    await this.setRetention(request, 'increase');
  }

  async decreaseStreamRetentionPeriod(
    request: DecreaseStreamRetentionPeriodRequest,
  ): Promise<void> {
    await this.setRetention(request, 'decrease');
  }

  private async setRetention(
    request: { streamName: string; streamArn: string; retentionPeriodHours: number },
    direction: 'increase' | 'decrease',
  ): Promise<void> {
    const hours = request.retentionPeriodHours;
    const name = this.streamName(request, (v) => {
      if (hours === 0) v.required('retentionPeriodHours', undefined);
    });
    if (hours < RETENTION_MIN_HOURS) {
      throw new InvalidArgumentError(
        `Minimum allowed retention period is ${RETENTION_MIN_HOURS} hours. Requested retention period (in hours) specified is ${hours}.`,
      );
    }
    if (hours > RETENTION_MAX_HOURS) {
      throw new InvalidArgumentError(
        `Maximum allowed retention period is ${RETENTION_MAX_HOURS} hours. Requested retention period (in hours) specified is ${hours}.`,
      );
    }
    await this.metadata.propose({ type: 'setRetention', name, hours, direction });
  }

  async updateStreamMode(request: UpdateStreamModeRequest): Promise<void> {
    const name = this.streamName(request, (v) => {
      if (request.streamMode === ProtoStreamMode.STREAM_MODE_UNSPECIFIED)
        v.required('streamModeDetails.streamMode', undefined);
      else if (request.streamMode === ProtoStreamMode.UNRECOGNIZED) {
        v.fail(
          'streamModeDetails.streamMode',
          request.streamMode,
          'Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]',
        );
      }
    });
    const mode: StreamMode =
      request.streamMode === ProtoStreamMode.STREAM_MODE_ON_DEMAND ? 'ON_DEMAND' : 'PROVISIONED';
    await this.metadata.propose({ type: 'setStreamMode', name, mode });
  }

  async splitShard(request: SplitShardRequest): Promise<void> {
    const name = this.streamName(request, (v) => {
      if (request.shardToSplit === '') v.required('shardToSplit', request.shardToSplit);
      else v.shardId('shardToSplit', request.shardToSplit);
      if (request.newStartingHashKey === '')
        v.required('newStartingHashKey', request.newStartingHashKey);
      else
        v.pattern(
          'newStartingHashKey',
          request.newStartingHashKey,
          HASH_KEY_PATTERN,
          '0|([1-9]\\d{0,38})',
        );
    });
    if (BigInt(request.newStartingHashKey) > MAX_HASH_KEY) {
      throw new InvalidArgumentError(
        `NewStartingHashKey ${request.newStartingHashKey} is outside the hash key range [0, ${MAX_HASH_KEY}].`,
      );
    }
    await this.metadata.propose({
      type: 'startReshard',
      name,
      operation: 'SplitShard',
      request: {
        kind: 'split',
        shardId: request.shardToSplit,
        hashKey: request.newStartingHashKey,
      },
      nowMs: this.options.clock.nowMs(),
    });
  }

  async mergeShards(request: MergeShardsRequest): Promise<void> {
    const name = this.streamName(request, (v) => {
      if (request.shardToMerge === '') v.required('shardToMerge', request.shardToMerge);
      else v.shardId('shardToMerge', request.shardToMerge);
      if (request.adjacentShardToMerge === '')
        v.required('adjacentShardToMerge', request.adjacentShardToMerge);
      else v.shardId('adjacentShardToMerge', request.adjacentShardToMerge);
    });
    await this.metadata.propose({
      type: 'startReshard',
      name,
      operation: 'MergeShards',
      request: {
        kind: 'merge',
        shardId: request.shardToMerge,
        adjacentShardId: request.adjacentShardToMerge,
      },
      nowMs: this.options.clock.nowMs(),
    });
  }

  async updateShardCount(request: UpdateShardCountRequest): Promise<UpdateShardCountResponse> {
    const name = this.streamName(request, (v) => {
      if (request.targetShardCount === undefined)
        v.required('targetShardCount', request.targetShardCount);
      else v.range('targetShardCount', request.targetShardCount, 1, 1_000_000);
      if (request.scalingType === ScalingType.SCALING_TYPE_UNSPECIFIED)
        v.required('scalingType', undefined);
      else if (request.scalingType === ScalingType.UNRECOGNIZED)
        v.fail(
          'scalingType',
          request.scalingType,
          'Member must satisfy enum value set: [UNIFORM_SCALING]',
        );
    });
    const target = request.targetShardCount as number;
    const stream = this.requireStream(name);
    if (stream.mode === 'ON_DEMAND') {
      throw new ValidationError(
        `UpdateShardCount is not supported for stream ${name} under account ${this.options.identity.accountId} in ON_DEMAND mode.`,
      );
    }
    const current = openShardCount(stream);
    await this.metadata.propose({
      type: 'startReshard',
      name,
      operation: 'UpdateShardCount',
      request: { kind: 'scale', targetShardCount: target },
      nowMs: this.options.clock.nowMs(),
    });
    return {
      streamName: name,
      streamArn: streamArn(this.options.identity, name),
      currentShardCount: current,
      targetShardCount: target,
    };
  }

  describeLimits(): DescribeLimitsResponse {
    const streams = [...this.metadata.state.streams.values()];
    const limits = this.metadata.context.limits;
    return {
      shardLimit: limits.shardLimit,
      openShardCount: streams.reduce((sum, s) => sum + openShardCount(s), 0),
      onDemandStreamCount: streams.filter((s) => s.mode === 'ON_DEMAND').length,
      onDemandStreamCountLimit: limits.onDemandStreamCountLimit,
    };
  }

  /** Validates the stream reference (plus any extra fields) and returns the stream's name. */
  private streamName(
    ref: { streamName: string; streamArn: string },
    extra?: (v: Validator) => void,
  ): string {
    const v = new Validator();
    if (ref.streamName === '' && ref.streamArn === '') v.required('streamName', ref.streamName);
    else if (ref.streamName !== '') v.streamName('streamName', ref.streamName);
    extra?.(v);
    v.throwIfInvalid();
    return resolveStreamName(ref, this.options.identity);
  }

  private requireStream(name: string): StreamRecord {
    const stream = this.metadata.state.streams.get(name);
    if (stream === undefined) throw streamNotFound(name, this.options.identity);
    return stream;
  }
}

function validateTags(v: Validator, tags: Readonly<Record<string, string>>): void {
  const entries = Object.entries(tags);
  if (entries.length > TAGS_PER_STREAM_MAX) {
    v.fail(
      'tags',
      `<${entries.length} tags>`,
      `Member must have length less than or equal to ${TAGS_PER_STREAM_MAX}`,
    );
  }
  for (const [key, value] of entries) {
    v.length('tags.key', key, 1, TAG_KEY_MAX_LENGTH).pattern(
      'tags.key',
      key,
      TAG_PATTERN,
      '^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@%]*)$',
    );
    v.length('tags.value', value, 0, TAG_VALUE_MAX_LENGTH).pattern(
      'tags.value',
      value,
      TAG_PATTERN,
      '^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@%]*)$',
    );
  }
}

function checkTagKeys(keys: readonly string[]): void {
  for (const key of keys) {
    if (key.toLowerCase().startsWith('aws:')) {
      throw new InvalidArgumentError(
        `Tag key ${key} is invalid: keys starting with "aws:" are reserved.`,
      );
    }
  }
}

function checkShardFilter(
  type: ShardFilterType,
  shardId: string,
  timestampMs: number | undefined,
): void {
  const needsShard = type === ShardFilterType.SHARD_FILTER_TYPE_AFTER_SHARD_ID;
  const needsTime =
    type === ShardFilterType.SHARD_FILTER_TYPE_AT_TIMESTAMP ||
    type === ShardFilterType.SHARD_FILTER_TYPE_FROM_TIMESTAMP;
  if (type === ShardFilterType.SHARD_FILTER_TYPE_UNSPECIFIED)
    throw new InvalidArgumentError('ShardFilter requires a Type.');
  if (needsShard !== (shardId !== '')) {
    throw new InvalidArgumentError(
      `ShardFilter of type ${type} ${needsShard ? 'requires' : 'does not take'} a ShardId.`,
    );
  }
  if (needsTime !== (timestampMs !== undefined)) {
    throw new InvalidArgumentError(
      `ShardFilter of type ${type} ${needsTime ? 'requires' : 'does not take'} a Timestamp.`,
    );
  }
}

/** Which shards a ListShards filter selects (shards are open from createdMs until closedMs). */
function shardMatches(
  shard: ShardRecord,
  filter: ListShardsToken['filter'],
  listed: ReadonlySet<string>,
): boolean {
  if (filter === undefined) return true;
  switch (filter.type) {
    case ShardFilterType.SHARD_FILTER_TYPE_AT_TRIM_HORIZON:
      // The oldest generation still held: shards none of whose parents is still listed.
      return ![shard.parentShardId, shard.adjacentParentShardId].some(
        (p) => p !== undefined && listed.has(p),
      );
    case ShardFilterType.SHARD_FILTER_TYPE_AT_LATEST:
      return isOpen(shard);
    case ShardFilterType.SHARD_FILTER_TYPE_AT_TIMESTAMP: {
      const t = filter.timestampMs ?? 0;
      return shard.createdMs <= t && (shard.closedMs === undefined || shard.closedMs > t);
    }
    case ShardFilterType.SHARD_FILTER_TYPE_FROM_TIMESTAMP: {
      const t = filter.timestampMs ?? 0;
      return shard.closedMs === undefined || shard.closedMs > t;
    }
    default:
      // AFTER_SHARD_ID (handled by the `after` bound), FROM_TRIM_HORIZON: every shard still
      // holding data.
      return true;
  }
}

function toProtoShard(shard: ShardRecord): Shard {
  return {
    shardId: shard.shardId,
    parentShardId: shard.parentShardId ?? '',
    adjacentParentShardId: shard.adjacentParentShardId ?? '',
    hashKeyRange: { startingHashKey: shard.hashKeyStart, endingHashKey: shard.hashKeyEnd },
    sequenceNumberRange: {
      startingSequenceNumber: startingSequenceNumber(shard.incarnation),
      endingSequenceNumber: shard.endingSequenceNumber ?? '',
    },
  };
}

function toProtoStatus(stream: StreamRecord): ProtoStreamStatus {
  switch (stream.status) {
    case 'CREATING':
      return ProtoStreamStatus.STREAM_STATUS_CREATING;
    case 'ACTIVE':
      return ProtoStreamStatus.STREAM_STATUS_ACTIVE;
    case 'UPDATING':
      return ProtoStreamStatus.STREAM_STATUS_UPDATING;
    case 'DELETING':
      return ProtoStreamStatus.STREAM_STATUS_DELETING;
  }
}

function toProtoMode(mode: StreamMode): ProtoStreamMode {
  return mode === 'ON_DEMAND'
    ? ProtoStreamMode.STREAM_MODE_ON_DEMAND
    : ProtoStreamMode.STREAM_MODE_PROVISIONED;
}

function toProtoLimits(limits: ShardThroughputLimits): ShardLimits {
  return { ...limits };
}

function fromProtoLimits(limits: ShardLimits): ShardThroughputLimits {
  return {
    writeBytesPerSecond: limits.writeBytesPerSecond,
    writeRecordsPerSecond: limits.writeRecordsPerSecond,
    readCallsPerSecond: limits.readCallsPerSecond,
    readBytesPerSecond: limits.readBytesPerSecond,
  };
}

function isListStreamsToken(body: unknown): body is ListStreamsToken {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as ListStreamsToken).after === 'string'
  );
}

function isListShardsToken(body: unknown): body is ListShardsToken {
  if (typeof body !== 'object' || body === null) return false;
  const t = body as ListShardsToken;
  if (
    typeof t.stream !== 'string' ||
    typeof t.incarnation !== 'number' ||
    typeof t.after !== 'string'
  ) {
    return false;
  }
  if (t.filter === undefined) return true;
  const f = t.filter as unknown;
  if (typeof f !== 'object' || f === null) return false;
  const filter = f as { type?: unknown; shardId?: unknown; timestampMs?: unknown };
  return (
    SELECTABLE_FILTER_TYPES.has(filter.type as ShardFilterType) &&
    typeof filter.shardId === 'string' &&
    (filter.timestampMs === undefined || typeof filter.timestampMs === 'number')
  );
}

const SELECTABLE_FILTER_TYPES: ReadonlySet<ShardFilterType> = new Set(
  Object.values(ShardFilterType).filter(
    (t) =>
      t !== ShardFilterType.SHARD_FILTER_TYPE_UNSPECIFIED && t !== ShardFilterType.UNRECOGNIZED,
  ),
);
