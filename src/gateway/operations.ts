import { Validator } from '../common/validation.js';
import type { NativeApi } from '../server/native-api.js';

import { ScalingType, ShardFilterType, type Consumer } from '../gen/rheos/v1/control.js';
import {
  ShardIteratorType,
  type SubscribeToShardRequest,
  type SubscribeToShardResponse,
} from '../gen/rheos/v1/data.js';
import {
  EncryptionType,
  StreamMode,
  type ChildShard,
  type Record as StreamRecord,
  type Shard,
  type StreamDescription,
  type StreamDescriptionSummary,
} from '../gen/rheos/v1/stream.js';
import {
  optionalBlob,
  boolean,
  compact,
  integer,
  objectList,
  optionalInteger,
  optionalObject,
  optionalString,
  optionalTimestampMs,
  seconds,
  string,
  stringList,
  stringMap,
  type JsonObject,
} from './json-shapes.js';

/**
 * Kinesis operations (X-Amz-Target `Kinesis_20131202.<Name>`) as translations onto the native API:
 * JSON in, native request, native response, JSON out. Field names are Kinesis'; blobs are base64;
 * timestamps are epoch seconds.
 */

export type Operation = (api: NativeApi, input: JsonObject) => Promise<JsonObject>;

/** Operations of the Kinesis API that Rheos does not serve yet (documented in docs/KINESIS-API.md). */
export const NOT_YET_SUPPORTED: ReadonlySet<string> = new Set([
  'CreateChannel',
  'DeleteChannel',
  'DeleteResourcePolicy',
  'DescribeAccountSettings',
  'DescribeChannel',
  'DisableEnhancedMonitoring',
  'EnableEnhancedMonitoring',
  'GetResourcePolicy',
  'ListChannels',
  'ListTagsForResource',
  'PutResourcePolicy',
  'StartStreamEncryption',
  'StopStreamEncryption',
  'TagResource',
  'UntagResource',
  'UpdateAccountSettings',
  'UpdateChannel',
  'UpdateMaxRecordSize',
  'UpdateStreamRecordDistributionStrategy',
  'UpdateStreamWarmThroughput',
]);

function streamRef(input: JsonObject): { streamName: string; streamArn: string } {
  return { streamName: string(input, 'StreamName'), streamArn: string(input, 'StreamARN') };
}

/**
 * 'TRIM_HORIZON' -> ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON, and so on. An absent value
 * becomes the enum's UNSPECIFIED (the native API reports it as missing); a value outside the enum
 * is refused here, because only here is the text the client sent still known.
 */
function toEnum<E extends string>(
  values: Record<string, E>,
  prefix: string,
  name: string | undefined,
  field: string,
): E {
  if (name === undefined) return values[`${prefix}UNSPECIFIED`] as E;
  const allowed = Object.keys(values)
    .filter((key) => key.startsWith(prefix) && key !== `${prefix}UNSPECIFIED`)
    .map((key) => key.slice(prefix.length));
  if (!allowed.includes(name)) {
    new Validator()
      .fail(field, name, `Member must satisfy enum value set: [${allowed.join(', ')}]`)
      .throwIfInvalid();
  }
  return values[prefix + name] as E;
}

function enumName(value: string, prefix: string): string {
  return value.startsWith(prefix) ? value.slice(prefix.length) : value;
}

function streamMode(input: JsonObject): StreamMode {
  const details = optionalObject(input, 'StreamModeDetails');
  if (details === undefined) return StreamMode.STREAM_MODE_UNSPECIFIED;
  return toEnum(
    StreamMode,
    'STREAM_MODE_',
    optionalString(details, 'StreamMode'),
    'streamModeDetails.streamMode',
  );
}

function consumerRef(input: JsonObject): {
  streamArn: string;
  consumerName: string;
  consumerArn: string;
} {
  return {
    streamArn: string(input, 'StreamARN'),
    consumerName: string(input, 'ConsumerName'),
    consumerArn: string(input, 'ConsumerARN'),
  };
}

function consumerJson(c: Consumer): JsonObject {
  return {
    ConsumerName: c.consumerName,
    ConsumerARN: c.consumerArn,
    ConsumerStatus: enumName(c.consumerStatus, 'CONSUMER_STATUS_'),
    ConsumerCreationTimestamp: seconds(c.consumerCreationTimestampMs),
  };
}

function shardJson(shard: Shard): JsonObject {
  return compact({
    ShardId: shard.shardId,
    ParentShardId: shard.parentShardId,
    AdjacentParentShardId: shard.adjacentParentShardId,
    HashKeyRange: {
      StartingHashKey: shard.hashKeyRange?.startingHashKey,
      EndingHashKey: shard.hashKeyRange?.endingHashKey,
    },
    SequenceNumberRange: compact({
      StartingSequenceNumber: shard.sequenceNumberRange?.startingSequenceNumber,
      EndingSequenceNumber: shard.sequenceNumberRange?.endingSequenceNumber,
    }),
  });
}

function childShardJson(child: ChildShard): JsonObject {
  return {
    ShardId: child.shardId,
    ParentShards: child.parentShards,
    HashKeyRange: {
      StartingHashKey: child.hashKeyRange?.startingHashKey,
      EndingHashKey: child.hashKeyRange?.endingHashKey,
    },
  };
}

function recordJson(record: StreamRecord): JsonObject {
  return {
    SequenceNumber: record.sequenceNumber,
    ApproximateArrivalTimestamp: seconds(record.approximateArrivalTimestampMs),
    Data: record.data.toString('base64'),
    PartitionKey: record.partitionKey,
  };
}

/**
 * SubscribeToShard's input (ConsumerARN, ShardId, StartingPosition) as the native request. The
 * answer is an event stream, not one JSON object, so it is not in OPERATIONS: the gateway serves
 * it itself (see event-stream.ts).
 */
export function subscribeToShardRequest(input: JsonObject): SubscribeToShardRequest {
  const position = optionalObject(input, 'StartingPosition');
  const timestampMs =
    position === undefined ? undefined : optionalTimestampMs(position, 'Timestamp');
  return {
    consumerArn: string(input, 'ConsumerARN'),
    shardId: string(input, 'ShardId'),
    ...(position === undefined
      ? {}
      : {
          startingPosition: {
            type: toEnum(
              ShardIteratorType,
              'SHARD_ITERATOR_TYPE_',
              optionalString(position, 'Type'),
              'startingPosition.type',
            ),
            sequenceNumber: string(position, 'SequenceNumber'),
            ...(timestampMs === undefined ? {} : { timestampMs }),
          },
        }),
  };
}

/** One SubscribeToShardEvent's payload, as Kinesis sends it. */
export function subscribeToShardEventJson(event: SubscribeToShardResponse): JsonObject {
  return compact({
    Records: event.records.map(recordJson),
    ContinuationSequenceNumber: event.continuationSequenceNumber,
    MillisBehindLatest: event.millisBehindLatest,
    ChildShards: event.childShards.length > 0 ? event.childShards.map(childShardJson) : undefined,
  });
}

function encryptionName(type: EncryptionType): string {
  return type === EncryptionType.ENCRYPTION_TYPE_KMS ? 'KMS' : 'NONE';
}

/** The fields DescribeStream and DescribeStreamSummary share. */
function streamHeader(d: StreamDescription | StreamDescriptionSummary): JsonObject {
  return compact({
    StreamName: d.streamName,
    StreamARN: d.streamArn,
    StreamStatus: enumName(d.streamStatus, 'STREAM_STATUS_'),
    StreamModeDetails: { StreamMode: enumName(d.streamMode, 'STREAM_MODE_') },
    RetentionPeriodHours: d.retentionPeriodHours,
    StreamCreationTimestamp: seconds(d.streamCreationTimestampMs),
    EnhancedMonitoring: [{ ShardLevelMetrics: d.enhancedMonitoringShardLevelMetrics }],
    EncryptionType: encryptionName(d.encryptionType),
    KeyId: d.keyId,
  });
}

export const OPERATIONS: Readonly<Record<string, Operation>> = {
  async CreateStream(api, input) {
    const shardCount = optionalInteger(input, 'ShardCount');
    await api.createStream({
      streamName: string(input, 'StreamName'),
      ...(shardCount === undefined ? {} : { shardCount }),
      streamMode: streamMode(input),
      tags: stringMap(input, 'Tags'),
    });
    return {};
  },

  async DeleteStream(api, input) {
    await api.deleteStream({
      ...streamRef(input),
      enforceConsumerDeletion: boolean(input, 'EnforceConsumerDeletion'),
    });
    return {};
  },

  async DescribeStream(api, input) {
    const limit = optionalInteger(input, 'Limit');
    const { streamDescription: d } = await api.describeStream({
      ...streamRef(input),
      ...(limit === undefined ? {} : { limit }),
      exclusiveStartShardId: string(input, 'ExclusiveStartShardId'),
    });
    if (d === undefined) throw new Error('DescribeStream returned no description');
    return {
      StreamDescription: {
        ...streamHeader(d),
        Shards: d.shards.map(shardJson),
        HasMoreShards: d.hasMoreShards,
      },
    };
  },

  async DescribeStreamSummary(api, input) {
    const { streamDescriptionSummary: d } = await api.describeStreamSummary(streamRef(input));
    if (d === undefined) throw new Error('DescribeStreamSummary returned no summary');
    return {
      StreamDescriptionSummary: {
        ...streamHeader(d),
        OpenShardCount: d.openShardCount,
        ConsumerCount: d.consumerCount,
      },
    };
  },

  async ListStreams(api, input) {
    const limit = optionalInteger(input, 'Limit');
    const r = await api.listStreams({
      ...(limit === undefined ? {} : { limit }),
      exclusiveStartStreamName: string(input, 'ExclusiveStartStreamName'),
      nextToken: string(input, 'NextToken'),
    });
    return compact({
      StreamNames: r.streamNames,
      HasMoreStreams: r.hasMoreStreams,
      NextToken: r.nextToken,
      StreamSummaries: r.streamSummaries.map((s) => ({
        StreamName: s.streamName,
        StreamARN: s.streamArn,
        StreamStatus: enumName(s.streamStatus, 'STREAM_STATUS_'),
        StreamModeDetails: { StreamMode: enumName(s.streamMode, 'STREAM_MODE_') },
        StreamCreationTimestamp: seconds(s.streamCreationTimestampMs),
      })),
    });
  },

  async ListShards(api, input) {
    const maxResults = optionalInteger(input, 'MaxResults');
    const creationMs = optionalTimestampMs(input, 'StreamCreationTimestamp');
    const filter = optionalObject(input, 'ShardFilter');
    const filterTimeMs =
      filter === undefined ? undefined : optionalTimestampMs(filter, 'Timestamp');
    const r = await api.listShards({
      ...streamRef(input),
      nextToken: string(input, 'NextToken'),
      exclusiveStartShardId: string(input, 'ExclusiveStartShardId'),
      ...(maxResults === undefined ? {} : { maxResults }),
      ...(creationMs === undefined ? {} : { streamCreationTimestampMs: creationMs }),
      ...(filter === undefined
        ? {}
        : {
            shardFilter: {
              type: toEnum(
                ShardFilterType,
                'SHARD_FILTER_TYPE_',
                optionalString(filter, 'Type'),
                'shardFilter.type',
              ),
              shardId: string(filter, 'ShardId'),
              ...(filterTimeMs === undefined ? {} : { timestampMs: filterTimeMs }),
            },
          }),
    });
    return compact({ Shards: r.shards.map(shardJson), NextToken: r.nextToken });
  },

  async RegisterStreamConsumer(api, input) {
    const { consumer } = await api.registerStreamConsumer({
      streamArn: string(input, 'StreamARN'),
      consumerName: string(input, 'ConsumerName'),
    });
    if (consumer === undefined) throw new Error('RegisterStreamConsumer returned no consumer');
    return { Consumer: consumerJson(consumer) };
  },

  async DescribeStreamConsumer(api, input) {
    const { consumerDescription: d } = await api.describeStreamConsumer(consumerRef(input));
    if (d === undefined) throw new Error('DescribeStreamConsumer returned no description');
    return { ConsumerDescription: { ...consumerJson(d), StreamARN: d.streamArn } };
  },

  async ListStreamConsumers(api, input) {
    const maxResults = optionalInteger(input, 'MaxResults');
    const creationMs = optionalTimestampMs(input, 'StreamCreationTimestamp');
    const r = await api.listStreamConsumers({
      streamArn: string(input, 'StreamARN'),
      nextToken: string(input, 'NextToken'),
      ...(maxResults === undefined ? {} : { maxResults }),
      ...(creationMs === undefined ? {} : { streamCreationTimestampMs: creationMs }),
    });
    return compact({ Consumers: r.consumers.map(consumerJson), NextToken: r.nextToken });
  },

  async DeregisterStreamConsumer(api, input) {
    await api.deregisterStreamConsumer(consumerRef(input));
    return {};
  },

  async AddTagsToStream(api, input) {
    await api.addTagsToStream({ ...streamRef(input), tags: stringMap(input, 'Tags') });
    return {};
  },

  async RemoveTagsFromStream(api, input) {
    await api.removeTagsFromStream({ ...streamRef(input), tagKeys: stringList(input, 'TagKeys') });
    return {};
  },

  async ListTagsForStream(api, input) {
    const limit = optionalInteger(input, 'Limit');
    const r = await api.listTagsForStream({
      ...streamRef(input),
      exclusiveStartTagKey: string(input, 'ExclusiveStartTagKey'),
      ...(limit === undefined ? {} : { limit }),
    });
    return {
      Tags: r.tags.map((t) => ({ Key: t.key, Value: t.value })),
      HasMoreTags: r.hasMoreTags,
    };
  },

  async IncreaseStreamRetentionPeriod(api, input) {
    await api.increaseStreamRetentionPeriod({
      ...streamRef(input),
      retentionPeriodHours: integer(input, 'RetentionPeriodHours'),
    });
    return {};
  },

  async DecreaseStreamRetentionPeriod(api, input) {
    await api.decreaseStreamRetentionPeriod({
      ...streamRef(input),
      retentionPeriodHours: integer(input, 'RetentionPeriodHours'),
    });
    return {};
  },

  async UpdateStreamMode(api, input) {
    await api.updateStreamMode({ ...streamRef(input), streamMode: streamMode(input) });
    return {};
  },

  async SplitShard(api, input) {
    await api.splitShard({
      ...streamRef(input),
      shardToSplit: string(input, 'ShardToSplit'),
      newStartingHashKey: string(input, 'NewStartingHashKey'),
    });
    return {};
  },

  async MergeShards(api, input) {
    await api.mergeShards({
      ...streamRef(input),
      shardToMerge: string(input, 'ShardToMerge'),
      adjacentShardToMerge: string(input, 'AdjacentShardToMerge'),
    });
    return {};
  },

  async UpdateShardCount(api, input) {
    const targetShardCount = optionalInteger(input, 'TargetShardCount');
    const r = await api.updateShardCount({
      ...streamRef(input),
      ...(targetShardCount === undefined ? {} : { targetShardCount }),
      scalingType: toEnum(
        ScalingType,
        'SCALING_TYPE_',
        optionalString(input, 'ScalingType'),
        'scalingType',
      ),
    });
    return {
      StreamName: r.streamName,
      CurrentShardCount: r.currentShardCount,
      TargetShardCount: r.targetShardCount,
      StreamARN: r.streamArn,
    };
  },

  async DescribeLimits(api) {
    const r = await api.describeLimits();
    return {
      ShardLimit: r.shardLimit,
      OpenShardCount: r.openShardCount,
      OnDemandStreamCount: r.onDemandStreamCount,
      OnDemandStreamCountLimit: r.onDemandStreamCountLimit,
    };
  },

  async PutRecord(api, input) {
    const explicitHashKey = optionalString(input, 'ExplicitHashKey');
    const ordering = optionalString(input, 'SequenceNumberForOrdering');
    const r = await api.putRecord({
      ...streamRef(input),
      data: optionalBlob(input, 'Data'),
      partitionKey: string(input, 'PartitionKey'),
      ...(explicitHashKey === undefined ? {} : { explicitHashKey }),
      ...(ordering === undefined ? {} : { sequenceNumberForOrdering: ordering }),
    });
    return {
      ShardId: r.shardId,
      SequenceNumber: r.sequenceNumber,
      EncryptionType: encryptionName(r.encryptionType),
    };
  },

  async PutRecords(api, input) {
    const r = await api.putRecords({
      ...streamRef(input),
      records: objectList(input, 'Records').map((record) => {
        const explicitHashKey = optionalString(record, 'ExplicitHashKey');
        return {
          data: optionalBlob(record, 'Data'),
          partitionKey: string(record, 'PartitionKey'),
          ...(explicitHashKey === undefined ? {} : { explicitHashKey }),
        };
      }),
    });
    return {
      FailedRecordCount: r.failedRecordCount,
      Records: r.records.map((e) =>
        e.errorCode === ''
          ? { SequenceNumber: e.sequenceNumber, ShardId: e.shardId }
          : // Kinesis knows two per-record codes; anything else of ours is a retriable fault.
            e.errorCode === 'ProvisionedThroughputExceededException'
            ? { ErrorCode: e.errorCode, ErrorMessage: e.errorMessage }
            : { ErrorCode: 'InternalFailure', ErrorMessage: e.errorMessage },
      ),
      EncryptionType: encryptionName(r.encryptionType),
    };
  },

  async GetShardIterator(api, input) {
    const timestampMs = optionalTimestampMs(input, 'Timestamp');
    const r = await api.getShardIterator({
      ...streamRef(input),
      shardId: string(input, 'ShardId'),
      shardIteratorType: toEnum(
        ShardIteratorType,
        'SHARD_ITERATOR_TYPE_',
        optionalString(input, 'ShardIteratorType'),
        'shardIteratorType',
      ),
      startingSequenceNumber: string(input, 'StartingSequenceNumber'),
      ...(timestampMs === undefined ? {} : { timestampMs }),
    });
    return { ShardIterator: r.shardIterator };
  },

  async GetRecords(api, input) {
    const limit = optionalInteger(input, 'Limit');
    const r = await api.getRecords({
      shardIterator: string(input, 'ShardIterator'),
      ...(limit === undefined ? {} : { limit }),
      streamArn: string(input, 'StreamARN'),
    });
    return compact({
      Records: r.records.map(recordJson),
      // '' once a closed shard is read to its end: Kinesis then sends no NextShardIterator (the
      // SDKs and the KCL take its absence as the end of the shard), only ChildShards.
      NextShardIterator: r.nextShardIterator === '' ? undefined : r.nextShardIterator,
      MillisBehindLatest: r.millisBehindLatest,
      ChildShards: r.childShards.length > 0 ? r.childShards.map(childShardJson) : undefined,
    });
  },
};
