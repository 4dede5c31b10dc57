/**
 * `rheos/client`: the public surface of the native client library. Applications import from here
 * only; every other module is internal and may change without notice. Requests are the generated
 * messages as partials (`DeepPartial<...>`), responses are the full messages.
 */

export { RheosClient, createClient, type RheosClientOptions } from './client.js';
export type { BackoffOptions } from '../common/backoff.js';

// Errors callers catch: one class per Kinesis error name, each with `retriable` and
// `indeterminate` (test/package/public-types.test.ts checks that none is missing here).
export {
  RheosError,
  ResourceNotFoundError,
  ResourceInUseError,
  ValidationError,
  InvalidArgumentError,
  ProvisionedThroughputExceededError,
  ExpiredIteratorError,
  ExpiredNextTokenError,
  LimitExceededError,
  AccessDeniedError,
  InternalFailureError,
  ServiceUnavailableError,
  NotLeaderError,
  ShardSealedError,
  ProducerFencedError,
  OutOfOrderSequenceError,
  LeaseLostError,
  type KinesisErrorName,
  type LeaderHint,
  type RheosErrorOptions,
} from '../common/errors.js';

// Reading: one shard in order, or a whole stream in lineage order (parents before children).
export {
  pollShard,
  type ShardPollerOptions,
  type ShardReadClient,
  type StartPosition,
} from './shard-poller.js';
export {
  readLineage,
  listAllShards,
  type LineageClient,
  type LineageItem,
  type LineageReaderOptions,
  type LineageStart,
  type ShardReadArgs,
} from './lineage-reader.js';
// Enhanced fan-out: pushed records through SubscribeToShard, renewed and re-routed as needed.
export {
  subscribeShard,
  type FanOutClient,
  type ShardSubscriberOptions,
} from './shard-subscriber.js';
export { readFanOut, type FanOutReaderOptions } from './fanout-consumer.js';
export { ensureStreamConsumer, type StreamConsumerClient } from './stream-consumers.js';

// Consumer groups: workers sharing a stream's shards through leases (what the KCL does).
export {
  startGroupWorker,
  type Checkpointer,
  type GroupWorker,
  type GroupWorkerClient,
  type GroupWorkerOptions,
  type ProcessRecordsInput,
  type ShutdownInput,
  type ShutdownReason,
} from './group-worker.js';
export {
  consumeGroup,
  type GroupBatch,
  type GroupConsumer,
  type GroupConsumerOptions,
} from './group-consumer.js';

// Writing: batched PutRecords that keeps per-shard order through retries.
export {
  writeInOrder,
  type OrderedWriterOptions,
  type OutgoingRecord,
  type StoredRecord,
  type WriteSummary,
} from './ordered-writer.js';

// The buffered producer: per-shard batches, backpressure, retries, idempotent by default.
export {
  Producer,
  createProducer,
  type AggregationOptions,
  type IdempotenceOptions,
  type ProducerClient,
  type ProducerOptions,
  type ProducerRecord,
  type ProducerStats,
  type Receipt,
  type RecordOutcome,
  type RecordResult,
} from './producer.js';
export { ProducerClosedError, RecordExpiredError } from './producer-errors.js';
// KPL aggregation: the format the Kinesis Producer Library packs small records in; readers
// deaggregate by default and give each user record its sub-sequence number.
export {
  AggregateSizer,
  KPL_MAGIC,
  aggregateSizeBytes,
  deaggregateRecord,
  decodeAggregate,
  encodeAggregate,
  isAggregate,
  type AggregateMember,
  type DeaggregatedRecord,
  type UserRecord,
} from './kpl-aggregation.js';

// Generated messages of the API. Enums are values: string enums take only their members.
export {
  EncryptionType,
  StreamMode,
  StreamStatus,
  type ChildShard,
  type HashKeyRange,
  type Record as StreamRecord,
  type SequenceNumberRange,
  type Shard,
  type ShardLimits,
  type StreamDescription,
  type StreamDescriptionSummary,
  type StreamSummary,
  type Tag,
} from '../gen/rheos/v1/stream.js';
export {
  ShardIteratorType,
  type DeepPartial,
  type GetRecordsRequest,
  type GetRecordsResponse,
  type GetShardIteratorRequest,
  type GetShardIteratorResponse,
  type PutRecordRequest,
  type PutRecordResponse,
  type PutRecordsRequest,
  type PutRecordsRequestEntry,
  type PutRecordsResponse,
  type PutRecordsResultEntry,
} from '../gen/rheos/v1/data.js';
export {
  ConsumerStatus,
  ScalingType,
  ShardFilterType,
  type Consumer,
  type ConsumerDescription,
  type DeregisterStreamConsumerRequest,
  type DescribeStreamConsumerRequest,
  type DescribeStreamConsumerResponse,
  type ListStreamConsumersRequest,
  type ListStreamConsumersResponse,
  type RegisterStreamConsumerRequest,
  type RegisterStreamConsumerResponse,
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
  type MergeShardsRequest,
  type RemoveTagsFromStreamRequest,
  type ShardFilter,
  type SplitShardRequest,
  type UpdateShardCountRequest,
  type UpdateShardCountResponse,
  type UpdateStreamModeRequest,
} from '../gen/rheos/v1/control.js';
export type {
  BrokerAddress,
  GetShardMapRequest,
  GetShardMapResponse,
  ShardRoute,
} from '../gen/rheos/v1/cluster.js';
