/** Limits of the Kinesis Data Streams API (provisioned mode), in one place. */

export const STREAM_NAME_MAX_LENGTH = 128;
export const STREAM_NAME_PATTERN = /^[a-zA-Z0-9_.-]+$/;
export const SHARD_ID_MAX_LENGTH = 128;
export const PARTITION_KEY_MAX_CHARS = 256;
/** Data blob plus partition key of one record. */
export const RECORD_MAX_SIZE_BYTES = 1024 * 1024;
export const PUT_RECORDS_MAX_RECORDS = 500;
export const PUT_RECORDS_MAX_SIZE_BYTES = 5 * 1024 * 1024;
export const GET_RECORDS_MAX_RECORDS = 10_000;
export const GET_RECORDS_MAX_SIZE_BYTES = 10 * 1024 * 1024;
export const SHARD_ITERATOR_MAX_LENGTH = 512;
export const ITERATOR_LIFETIME_MS = 5 * 60 * 1000;
export const NEXT_TOKEN_LIFETIME_MS = 5 * 60 * 1000;

export const RETENTION_MIN_HOURS = 24;
export const RETENTION_MAX_HOURS = 8760;
export const RETENTION_DEFAULT_HOURS = 24;

export const TAGS_PER_STREAM_MAX = 50;
/** Enhanced fan-out consumers registered per stream (RegisterStreamConsumer). */
export const CONSUMERS_PER_STREAM_MAX = 20;
/** Consumers in CREATING at once, account-wide. */
export const CONSUMERS_CREATING_MAX = 5;
/** Consumer names: 1 to 128 of these characters. */
export const CONSUMER_NAME_PATTERN = /^[a-zA-Z0-9_.-]{1,128}$/;
/** Consumer groups (KCL applications) and their workers' ids. */
export const GROUP_NAME_PATTERN = /^[a-zA-Z0-9_.-]{1,128}$/;
export const WORKER_ID_PATTERN = /^[a-zA-Z0-9_.:@-]{1,128}$/;
/** Groups in the cluster: each is part of the coordinator's metadata. */
export const GROUPS_MAX = 1000;
export const TAG_KEY_MAX_LENGTH = 128;
export const TAG_VALUE_MAX_LENGTH = 256;

export const DESCRIBE_STREAM_MAX_SHARDS = 100;
export const LIST_SHARDS_MAX_RESULTS = 1000;
export const LIST_SHARDS_MAX_RESULTS_ACCEPTED = 10_000;
export const LIST_STREAMS_DEFAULT_LIMIT = 100;
export const LIST_STREAMS_MAX_LIMIT = 10_000;
export const LIST_TAGS_MAX_LIMIT = 50;

/** Shards an ON_DEMAND stream starts with (4 MB/s of write capacity, as on AWS). */
export const ON_DEMAND_INITIAL_SHARDS = 4;

/** Per-shard throughput of a provisioned stream. 0 means unlimited. */
export interface ShardThroughputLimits {
  readonly writeBytesPerSecond: number;
  readonly writeRecordsPerSecond: number;
  readonly readCallsPerSecond: number;
  readonly readBytesPerSecond: number;
}

export const DEFAULT_SHARD_LIMITS: ShardThroughputLimits = {
  writeBytesPerSecond: 1024 * 1024,
  writeRecordsPerSecond: 1000,
  readCallsPerSecond: 5,
  readBytesPerSecond: 2 * 1024 * 1024,
};

export const UNLIMITED_SHARD_LIMITS: ShardThroughputLimits = {
  writeBytesPerSecond: 0,
  writeRecordsPerSecond: 0,
  readCallsPerSecond: 0,
  readBytesPerSecond: 0,
};
