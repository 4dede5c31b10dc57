import * as Kinesis from '@aws-sdk/client-kinesis';
import {
  AddTagsToStreamCommand,
  CreateStreamCommand,
  DecreaseStreamRetentionPeriodCommand,
  DeleteStreamCommand,
  DescribeLimitsCommand,
  DescribeStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  IncreaseStreamRetentionPeriodCommand,
  ListShardsCommand,
  ListStreamsCommand,
  ListTagsForStreamCommand,
  PutRecordCommand,
  PutRecordsCommand,
  RemoveTagsFromStreamCommand,
  ResourceNotFoundException,
  UpdateStreamModeCommand,
  type DescribeStreamSummaryCommandInput,
  type GetRecordsCommandInput,
  type GetShardIteratorCommandInput,
  type KinesisClient,
  type ListShardsCommandInput,
  type PutRecordCommandInput,
  type PutRecordsRequestEntry,
  type ShardFilterType,
  type ShardIteratorType,
  type StreamMode,
  type UpdateStreamModeCommandInput,
} from '@aws-sdk/client-kinesis';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { OPERATIONS } from '../../src/gateway/operations.js';
import type { KvRange, KvStore } from '../../src/storage/kv-store.js';
import {
  arnOf,
  MAX_HASH_KEY,
  MiB,
  pseudoRandomBytes,
  shardId,
  ShardOpenGate,
  UNLIMITED,
} from '../api/helpers.js';
import {
  createActiveSdk,
  expectSdkError,
  HANDLERS,
  sdkIterator,
  sdkReadShard,
  sdkShards,
  text,
  useGateway,
  waitActive,
} from './sdk-helpers.js';

/**
 * Every error case of the native API (test/api/validation.test.ts and the error cases of
 * iterators, control-plane and quotas) as the AWS SDK surfaces it through the gateway, over HTTP/2
 * and HTTP/1.1: the SDK's exception class (or `name` where the SDK has no class), HTTP 400, a
 * client fault, and a message that names the problem.
 *
 * Not expressible through the SDK, so not here (the raw-wire tests cover them): wrong JSON types
 * and invalid base64 (the SDK serializes from its model), CreateStream's replicationFactor and
 * shardLimits (no such Kinesis members: the SDK drops them), and 64-bit timestamps beyond 2^53 ms
 * (a JavaScript Date cannot hold them).
 *
 * Also here, because only a real SDK shows them: inputs the SDK sends without checking (a missing
 * required Data member, enum names outside the Kinesis model), a request body above the
 * gateway's 12 MiB limit sent the way the SDK sends it (all at once), a server fault (500) and
 * the SDK's retry behaviour, and every SDK operation the gateway does not serve.
 */

const PTE = 'ProvisionedThroughputExceededException';
const TWO_128 = (MAX_HASH_KEY + 1n).toString();

interface Ctx {
  readonly sdk: KinesisClient;
  /** A valid TRIM_HORIZON iterator of shard 0 of stream 's'. */
  readonly iterator: string;
  /** The sequence number of the record in shard 0 of stream 's'. */
  readonly sequenceNumber: string;
}

interface Case {
  readonly what: string;
  readonly call: (ctx: Ctx) => Promise<unknown>;
  readonly error: string;
  readonly message: RegExp;
}

/** For inputs the SDK's types forbid but its serializer sends (missing required members). */
const loose = <T>(input: object) => input as T;

const data = Buffer.from('d');
const emoji = (n: number) => '\u{1F600}'.repeat(n);
const record = (extra: Partial<PutRecordsRequestEntry> = {}): PutRecordsRequestEntry => ({
  PartitionKey: 'k',
  Data: data,
  ...extra,
});
const put = (c: Ctx, extra: Partial<PutRecordCommandInput>) =>
  c.sdk.send(new PutRecordCommand({ StreamName: 's', PartitionKey: 'k', Data: data, ...extra }));
const puts = (c: Ctx, Records: PutRecordsRequestEntry[]) =>
  c.sdk.send(new PutRecordsCommand({ StreamName: 's', Records }));
const iter = (c: Ctx, extra: Partial<GetShardIteratorCommandInput>) =>
  c.sdk.send(
    new GetShardIteratorCommand({
      StreamName: 's',
      ShardId: shardId(0),
      ShardIteratorType: 'TRIM_HORIZON',
      ...extra,
    }),
  );
const create = (c: Ctx, extra: Partial<Kinesis.CreateStreamCommandInput>) =>
  c.sdk.send(new CreateStreamCommand({ StreamName: 'n', ShardCount: 1, ...extra }));

const streamNameCases: Case[] = [
  {
    what: 'CreateStream with an empty name',
    call: (c) => create(c, { StreamName: '' }),
    error: 'ValidationException',
    message: /Value null at 'streamName' failed to satisfy constraint: Member must not be null/,
  },
  {
    what: 'CreateStream with a 129-character name',
    call: (c) => create(c, { StreamName: 'a'.repeat(129) }),
    error: 'ValidationException',
    message: /'streamName'.*length less than or equal to 128/,
  },
  {
    what: 'CreateStream with a space in the name',
    call: (c) => create(c, { StreamName: 'my stream' }),
    error: 'ValidationException',
    message: /'streamName'.*regular expression pattern: \[a-zA-Z0-9_.-\]\+/,
  },
  {
    what: 'CreateStream with a slash in the name',
    call: (c) => create(c, { StreamName: 'a/b' }),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'CreateStream with a non-ASCII name',
    call: (c) => create(c, { StreamName: 'str\u00e9am' }),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'DescribeStreamSummary with neither name nor ARN',
    call: (c) => c.sdk.send(new DescribeStreamSummaryCommand({})),
    error: 'ValidationException',
    message: /'streamName'.*must not be null/,
  },
  {
    what: 'PutRecord with neither name nor ARN',
    call: (c) => c.sdk.send(new PutRecordCommand({ PartitionKey: 'k', Data: data })),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'PutRecords with a bad name',
    call: (c) => c.sdk.send(new PutRecordsCommand({ StreamName: 'bad name', Records: [record()] })),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'GetShardIterator with a 129-character name',
    call: (c) => iter(c, { StreamName: 'x'.repeat(129) }),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'DeleteStream with a bad name',
    call: (c) => c.sdk.send(new DeleteStreamCommand({ StreamName: 'no*pe' })),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'ListStreams with a bad ExclusiveStartStreamName',
    call: (c) => c.sdk.send(new ListStreamsCommand({ ExclusiveStartStreamName: 'a b' })),
    error: 'ValidationException',
    message: /exclusiveStartStreamName/,
  },
  {
    what: 'ListShards with a bad name',
    call: (c) => c.sdk.send(new ListShardsCommand({ StreamName: 'a b' })),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'two violations at once are both reported',
    call: (c) =>
      c.sdk.send(
        new PutRecordCommand({ StreamName: 'bad name', PartitionKey: '', Data: new Uint8Array(0) }),
      ),
    error: 'ValidationException',
    message: /^2 validation errors detected: .*streamName.*partitionKey/,
  },
];

const putCases: Case[] = [
  {
    what: 'an empty partition key',
    call: (c) => put(c, { PartitionKey: '' }),
    error: 'ValidationException',
    message: /'partitionKey'/,
  },
  {
    what: 'a partition key of 257 characters',
    call: (c) => put(c, { PartitionKey: 'p'.repeat(257) }),
    error: 'ValidationException',
    message: /'partitionKey'.*less than or equal to 256/,
  },
  {
    what: 'a partition key of 257 emoji (code points, not UTF-16 units)',
    call: (c) => put(c, { PartitionKey: emoji(257) }),
    error: 'ValidationException',
    message: /partitionKey.*256/,
  },
  {
    what: 'data over 1 MiB',
    call: (c) => put(c, { Data: new Uint8Array(MiB + 1) }),
    error: 'ValidationException',
    message: /'data'.*less than or equal to 1048576/,
  },
  {
    what: 'data plus partition key over 1 MiB',
    call: (c) => put(c, { Data: new Uint8Array(MiB), PartitionKey: 'k' }),
    error: 'InvalidArgumentException',
    message: /1048577 bytes.*1048576/,
  },
  {
    what: 'data plus a multi-byte partition key over 1 MiB',
    call: (c) => put(c, { Data: new Uint8Array(MiB - 3), PartitionKey: '\u{1F600}' }),
    error: 'InvalidArgumentException',
    message: /1048577/,
  },
  {
    what: 'a non-decimal ExplicitHashKey',
    call: (c) => put(c, { ExplicitHashKey: '0x10' }),
    error: 'ValidationException',
    message: /'explicitHashKey'.*pattern: 0\|\(\[1-9\]\\d\{0,38\}\)/,
  },
  {
    what: 'a negative ExplicitHashKey',
    call: (c) => put(c, { ExplicitHashKey: '-1' }),
    error: 'ValidationException',
    message: /explicitHashKey/,
  },
  {
    what: 'an ExplicitHashKey with a leading zero',
    call: (c) => put(c, { ExplicitHashKey: '01' }),
    error: 'ValidationException',
    message: /explicitHashKey/,
  },
  {
    what: 'an ExplicitHashKey of 40 digits',
    call: (c) => put(c, { ExplicitHashKey: '1' + '0'.repeat(39) }),
    error: 'ValidationException',
    message: /explicitHashKey/,
  },
  {
    what: 'an ExplicitHashKey of 2^128 (out of range)',
    call: (c) => put(c, { ExplicitHashKey: TWO_128 }),
    error: 'InvalidArgumentException',
    message: /ExplicitHashKey must be in the range: \[0, 340282366920938463463374607431768211455\]/,
  },
  {
    what: 'a malformed SequenceNumberForOrdering',
    call: (c) => put(c, { SequenceNumberForOrdering: 'abc' }),
    error: 'ValidationException',
    message: /'sequenceNumberForOrdering'.*pattern/,
  },
  {
    what: 'an empty SequenceNumberForOrdering',
    call: (c) => put(c, { SequenceNumberForOrdering: '' }),
    error: 'ValidationException',
    message: /sequenceNumberForOrdering/,
  },
  {
    what: 'an empty ExplicitHashKey',
    call: (c) => put(c, { ExplicitHashKey: '' }),
    error: 'ValidationException',
    message: /explicitHashKey/,
  },
  {
    what: 'a SequenceNumberForOrdering with a leading zero',
    call: (c) => put(c, { SequenceNumberForOrdering: '0123' }),
    error: 'ValidationException',
    message: /sequenceNumberForOrdering/,
  },
  {
    what: 'a SequenceNumberForOrdering of 130 digits',
    call: (c) => put(c, { SequenceNumberForOrdering: '1'.repeat(130) }),
    error: 'ValidationException',
    message: /sequenceNumberForOrdering/,
  },
  {
    what: 'an unknown stream',
    call: (c) => put(c, { StreamName: 'nope' }),
    error: 'ResourceNotFoundException',
    message: /Stream nope under account 000000000000 not found/,
  },
];

const putsCases: Case[] = [
  {
    what: 'no records',
    call: (c) => puts(c, []),
    error: 'ValidationException',
    message: /'records'.*greater than or equal to 1/,
  },
  {
    what: 'no Records member at all',
    call: (c) => c.sdk.send(new PutRecordsCommand(loose({ StreamName: 's' }))),
    error: 'ValidationException',
    message: /'records'/,
  },
  {
    what: '501 records',
    call: (c) =>
      puts(
        c,
        Array.from({ length: 501 }, () => record()),
      ),
    error: 'ValidationException',
    message: /'records'.*less than or equal to 500/,
  },
  {
    what: 'an empty partition key in the third record',
    call: (c) => puts(c, [record(), record(), record({ PartitionKey: '' })]),
    error: 'ValidationException',
    message: /records\.3\.member\.partitionKey/,
  },
  {
    what: 'a 257-character partition key',
    call: (c) => puts(c, [record({ PartitionKey: 'p'.repeat(257) })]),
    error: 'ValidationException',
    message: /records\.1\.member\.partitionKey.*256/,
  },
  {
    what: 'data over 1 MiB in one record',
    call: (c) => puts(c, [record(), record({ Data: new Uint8Array(MiB + 1) })]),
    error: 'ValidationException',
    message: /records\.2\.member\.data.*1048576/,
  },
  {
    what: 'data plus partition key over 1 MiB in one record',
    call: (c) => puts(c, [record({ Data: new Uint8Array(MiB) })]),
    error: 'InvalidArgumentException',
    message: /1048577 bytes/,
  },
  {
    what: 'more than 5 MiB in total',
    call: (c) =>
      puts(
        c,
        Array.from({ length: 6 }, () => record({ Data: new Uint8Array(MiB - 100) })),
      ),
    error: 'InvalidArgumentException',
    message: /5 MB/,
  },
  {
    what: 'a malformed ExplicitHashKey',
    call: (c) => puts(c, [record({ ExplicitHashKey: '1e5' })]),
    error: 'ValidationException',
    message: /records\.1\.member\.explicitHashKey/,
  },
  {
    what: 'an ExplicitHashKey of 2^128',
    call: (c) => puts(c, [record(), record({ ExplicitHashKey: TWO_128 })]),
    error: 'InvalidArgumentException',
    message: /ExplicitHashKey/,
  },
  {
    what: 'an unknown stream',
    call: (c) => c.sdk.send(new PutRecordsCommand({ StreamName: 'nope', Records: [record()] })),
    error: 'ResourceNotFoundException',
    message: /nope/,
  },
];

const getRecords = (c: Ctx, input: object) =>
  c.sdk.send(new GetRecordsCommand(loose<GetRecordsCommandInput>(input)));

const readCases: Case[] = [
  {
    what: 'GetRecords without an iterator',
    call: (c) => getRecords(c, {}),
    error: 'ValidationException',
    message: /'shardIterator'.*must not be null/,
  },
  {
    what: 'GetRecords with an iterator of 513 characters',
    call: (c) => getRecords(c, { ShardIterator: 'A'.repeat(513) }),
    error: 'ValidationException',
    message: /'shardIterator'.*less than or equal to 512/,
  },
  {
    what: 'GetRecords with Limit 0',
    call: (c) => getRecords(c, { ShardIterator: c.iterator, Limit: 0 }),
    error: 'ValidationException',
    message: /'limit'.*greater than or equal to 1/,
  },
  {
    what: 'GetRecords with Limit 10001',
    call: (c) => getRecords(c, { ShardIterator: c.iterator, Limit: 10_001 }),
    error: 'ValidationException',
    message: /'limit'.*less than or equal to 10000/,
  },
  {
    what: 'GetRecords with an invalid iterator of legal length',
    call: (c) => getRecords(c, { ShardIterator: 'A'.repeat(512) }),
    error: 'InvalidArgumentException',
    message: /ShardIterator/,
  },
  {
    what: 'GetRecords with a malformed StreamARN',
    call: (c) => getRecords(c, { ShardIterator: c.iterator, StreamARN: 'arn:nope' }),
    error: 'ValidationException',
    message: /streamARN/,
  },
  {
    what: 'GetShardIterator without a type',
    call: (c) =>
      c.sdk.send(
        new GetShardIteratorCommand(
          loose<GetShardIteratorCommandInput>({ StreamName: 's', ShardId: shardId(0) }),
        ),
      ),
    error: 'ValidationException',
    message: /'shardIteratorType'.*enum value set/,
  },
  {
    what: 'GetShardIterator with an unknown type',
    call: (c) => iter(c, { ShardIteratorType: 'AT_THE_END' as ShardIteratorType }),
    error: 'ValidationException',
    message: /shardIteratorType/,
  },
  {
    what: 'GetShardIterator without a shard id',
    call: (c) =>
      c.sdk.send(
        new GetShardIteratorCommand(
          loose<GetShardIteratorCommandInput>({
            StreamName: 's',
            ShardIteratorType: 'TRIM_HORIZON',
          }),
        ),
      ),
    error: 'ValidationException',
    message: /'shardId'.*must not be null/,
  },
  {
    what: 'GetShardIterator with an empty shard id',
    call: (c) => iter(c, { ShardId: '' }),
    error: 'ValidationException',
    message: /'shardId'.*must not be null/,
  },
  {
    what: 'GetShardIterator with a 129-character shard id',
    call: (c) => iter(c, { ShardId: 's'.repeat(129) }),
    error: 'ValidationException',
    message: /'shardId'.*128/,
  },
  {
    what: 'GetShardIterator with a malformed sequence number',
    call: (c) =>
      iter(c, { ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: '12a' }),
    error: 'ValidationException',
    message: /'startingSequenceNumber'.*pattern/,
  },
  {
    what: 'GetShardIterator AT_SEQUENCE_NUMBER without a sequence number',
    call: (c) => iter(c, { ShardIteratorType: 'AT_SEQUENCE_NUMBER' }),
    error: 'InvalidArgumentException',
    message: /StartingSequenceNumber/,
  },
  {
    what: 'GetShardIterator TRIM_HORIZON with a sequence number',
    call: (c) => iter(c, { StartingSequenceNumber: c.sequenceNumber }),
    error: 'InvalidArgumentException',
    message: /StartingSequenceNumber/,
  },
  {
    what: 'GetShardIterator AT_TIMESTAMP without a timestamp',
    call: (c) => iter(c, { ShardIteratorType: 'AT_TIMESTAMP' }),
    error: 'InvalidArgumentException',
    message: /timestamp/i,
  },
  {
    what: 'GetShardIterator with a sequence number of another shard',
    call: (c) =>
      iter(c, {
        ShardId: shardId(1),
        ShardIteratorType: 'AT_SEQUENCE_NUMBER',
        StartingSequenceNumber: c.sequenceNumber,
      }),
    error: 'InvalidArgumentException',
    message: /does not belong to shard shardId-000000000001/,
  },
  {
    what: 'GetShardIterator on an unknown shard',
    call: (c) => iter(c, { ShardId: shardId(7) }),
    error: 'ResourceNotFoundException',
    message: /shardId-000000000007/,
  },
];

const listShards = (c: Ctx, input: ListShardsCommandInput) =>
  c.sdk.send(new ListShardsCommand(input));
const updateMode = (c: Ctx, input: object) =>
  c.sdk.send(new UpdateStreamModeCommand(loose<UpdateStreamModeCommandInput>(input)));

const controlCases: Case[] = [
  {
    what: 'CreateStream with 0 shards',
    call: (c) => create(c, { ShardCount: 0 }),
    error: 'ValidationException',
    message: /'shardCount'.*greater than or equal to 1/,
  },
  {
    what: 'CreateStream with 1,000,001 shards',
    call: (c) => create(c, { ShardCount: 1_000_001 }),
    error: 'ValidationException',
    message: /'shardCount'.*less than or equal to/,
  },
  {
    what: 'CreateStream in PROVISIONED mode without a shard count',
    call: (c) => c.sdk.send(new CreateStreamCommand({ StreamName: 'n' })),
    error: 'InvalidArgumentException',
    message: /ShardCount is required/,
  },
  {
    what: 'CreateStream with StreamModeDetails PROVISIONED and no shard count',
    call: (c) =>
      c.sdk.send(
        new CreateStreamCommand({
          StreamName: 'n',
          StreamModeDetails: { StreamMode: 'PROVISIONED' },
        }),
      ),
    error: 'InvalidArgumentException',
    message: /ShardCount is required/,
  },
  {
    what: 'CreateStream in ON_DEMAND mode with a shard count',
    call: (c) => create(c, { ShardCount: 2, StreamModeDetails: { StreamMode: 'ON_DEMAND' } }),
    error: 'InvalidArgumentException',
    message: /ShardCount must not be given/,
  },
  {
    what: 'CreateStream with an unknown stream mode',
    call: (c) => create(c, { StreamModeDetails: { StreamMode: 'SERVERLESS' as StreamMode } }),
    error: 'ValidationException',
    message: /streamMode.*PROVISIONED, ON_DEMAND/,
  },
  {
    what: 'CreateStream with an empty tag key',
    call: (c) => create(c, { Tags: { '': 'v' } }),
    error: 'ValidationException',
    message: /'tags.key'.*greater than or equal to 1/,
  },
  {
    what: 'CreateStream with a tag key of 129 characters',
    call: (c) => create(c, { Tags: { ['k'.repeat(129)]: 'v' } }),
    error: 'ValidationException',
    message: /'tags.key'.*128/,
  },
  {
    what: 'CreateStream with a tag value of 257 characters',
    call: (c) => create(c, { Tags: { k: 'v'.repeat(257) } }),
    error: 'ValidationException',
    message: /'tags.value'.*256/,
  },
  {
    what: 'CreateStream with a forbidden character in a tag key',
    call: (c) => create(c, { Tags: { 'a!b': 'v' } }),
    error: 'ValidationException',
    message: /'tags.key'.*pattern/,
  },
  {
    what: "CreateStream with an 'aws:' tag",
    call: (c) => create(c, { Tags: { 'aws:x': 'v' } }),
    error: 'InvalidArgumentException',
    message: /aws:/,
  },
  {
    what: 'CreateStream with 51 tags',
    call: (c) =>
      create(c, {
        Tags: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])),
      }),
    error: 'ValidationException',
    message: /tags.*less than or equal to 50/,
  },
  {
    what: 'DescribeStream with Limit 0',
    call: (c) => c.sdk.send(new DescribeStreamCommand({ StreamName: 's', Limit: 0 })),
    error: 'ValidationException',
    message: /'limit'.*greater than or equal to 1/,
  },
  {
    what: 'DescribeStream with Limit 10001',
    call: (c) => c.sdk.send(new DescribeStreamCommand({ StreamName: 's', Limit: 10_001 })),
    error: 'ValidationException',
    message: /'limit'.*10000/,
  },
  {
    what: 'DescribeStream with a malformed ExclusiveStartShardId',
    call: (c) =>
      c.sdk.send(new DescribeStreamCommand({ StreamName: 's', ExclusiveStartShardId: 'a b' })),
    error: 'ValidationException',
    message: /exclusiveStartShardId/,
  },
  {
    what: 'ListStreams with Limit 0',
    call: (c) => c.sdk.send(new ListStreamsCommand({ Limit: 0 })),
    error: 'ValidationException',
    message: /'limit'.*greater than or equal to 1/,
  },
  {
    what: 'ListStreams with Limit 10001',
    call: (c) => c.sdk.send(new ListStreamsCommand({ Limit: 10_001 })),
    error: 'ValidationException',
    message: /'limit'.*10000/,
  },
  {
    what: 'ListStreams with a garbage NextToken',
    call: (c) => c.sdk.send(new ListStreamsCommand({ NextToken: 'eyJ2IjoyfQ' })),
    error: 'InvalidArgumentException',
    message: /NextToken/,
  },
  {
    what: 'ListShards with MaxResults 0',
    call: (c) => listShards(c, { StreamName: 's', MaxResults: 0 }),
    error: 'ValidationException',
    message: /'maxResults'.*greater than or equal to 1/,
  },
  {
    what: 'ListShards with MaxResults 10001',
    call: (c) => listShards(c, { StreamName: 's', MaxResults: 10_001 }),
    error: 'ValidationException',
    message: /'maxResults'.*10000/,
  },
  {
    what: 'ListShards with a malformed ExclusiveStartShardId',
    call: (c) => listShards(c, { StreamName: 's', ExclusiveStartShardId: 'a b' }),
    error: 'ValidationException',
    message: /exclusiveStartShardId/,
  },
  {
    what: 'ListShards with an unknown filter type',
    call: (c) =>
      listShards(c, { StreamName: 's', ShardFilter: { Type: 'AT_NOON' as ShardFilterType } }),
    error: 'ValidationException',
    message: /shardFilter.type/,
  },
  {
    what: 'ListShards with a filter without a type',
    call: (c) => listShards(c, { StreamName: 's', ShardFilter: loose({ ShardId: shardId(0) }) }),
    error: 'InvalidArgumentException',
    message: /ShardFilter/,
  },
  ...(
    [
      [{ Type: 'AFTER_SHARD_ID' }, 'AFTER_SHARD_ID without a ShardId'],
      [{ Type: 'AT_TIMESTAMP' }, 'AT_TIMESTAMP without a Timestamp'],
      [{ Type: 'FROM_TIMESTAMP' }, 'FROM_TIMESTAMP without a Timestamp'],
      [{ Type: 'AT_LATEST', Timestamp: new Date(1_700_000_000_000) }, 'AT_LATEST with a Timestamp'],
      [{ Type: 'AT_TRIM_HORIZON', ShardId: shardId(0) }, 'AT_TRIM_HORIZON with a ShardId'],
    ] as const
  ).map(([ShardFilter, what]): Case => ({
    what: `ListShards with a ShardFilter ${what}`,
    call: (c) => listShards(c, { StreamName: 's', ShardFilter }),
    error: 'InvalidArgumentException',
    message: /ShardFilter/,
  })),
  {
    what: 'ListShards with ExclusiveStartShardId and an AT_LATEST filter',
    call: (c) =>
      listShards(c, {
        StreamName: 's',
        ExclusiveStartShardId: shardId(0),
        ShardFilter: { Type: 'AT_LATEST' },
      }),
    error: 'InvalidArgumentException',
    message: /\w/,
  },
  {
    what: 'ListShards with neither stream nor NextToken',
    call: (c) => listShards(c, { MaxResults: 5 }),
    error: 'InvalidArgumentException',
    message: /NextToken or StreamName/,
  },
  {
    what: 'ListShards with a StreamCreationTimestamp of another incarnation',
    call: (c) =>
      listShards(c, { StreamName: 's', StreamCreationTimestamp: new Date(1_600_000_000_000) }),
    error: 'ResourceNotFoundException',
    message: /\w/,
  },
  {
    what: 'AddTagsToStream with no tags',
    call: (c) => c.sdk.send(new AddTagsToStreamCommand({ StreamName: 's', Tags: {} })),
    error: 'ValidationException',
    message: /'tags'.*greater than or equal to 1/,
  },
  {
    what: 'AddTagsToStream with 51 tags',
    call: (c) =>
      c.sdk.send(
        new AddTagsToStreamCommand({
          StreamName: 's',
          Tags: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])),
        }),
      ),
    error: 'ValidationException',
    message: /'tags'.*less than or equal to 50/,
  },
  {
    what: 'AddTagsToStream with a forbidden character in a value',
    call: (c) => c.sdk.send(new AddTagsToStreamCommand({ StreamName: 's', Tags: { k: 'a#b' } })),
    error: 'ValidationException',
    message: /'tags.value'.*pattern/,
  },
  {
    what: "AddTagsToStream with an 'aws:' key",
    call: (c) =>
      c.sdk.send(new AddTagsToStreamCommand({ StreamName: 's', Tags: { 'aws:k': 'v' } })),
    error: 'InvalidArgumentException',
    message: /aws:/,
  },
  {
    what: 'RemoveTagsFromStream with no keys',
    call: (c) => c.sdk.send(new RemoveTagsFromStreamCommand({ StreamName: 's', TagKeys: [] })),
    error: 'ValidationException',
    message: /'tagKeys'.*greater than or equal to 1/,
  },
  {
    what: 'RemoveTagsFromStream with 51 keys',
    call: (c) =>
      c.sdk.send(
        new RemoveTagsFromStreamCommand({
          StreamName: 's',
          TagKeys: Array.from({ length: 51 }, (_, i) => `k${i}`),
        }),
      ),
    error: 'ValidationException',
    message: /'tagKeys'.*less than or equal to 50/,
  },
  {
    what: 'RemoveTagsFromStream with an empty key',
    call: (c) =>
      c.sdk.send(new RemoveTagsFromStreamCommand({ StreamName: 's', TagKeys: ['ok', ''] })),
    error: 'ValidationException',
    message: /tagKeys\.2\.member/,
  },
  {
    what: 'ListTagsForStream with Limit 0',
    call: (c) => c.sdk.send(new ListTagsForStreamCommand({ StreamName: 's', Limit: 0 })),
    error: 'ValidationException',
    message: /'limit'.*greater than or equal to 1/,
  },
  {
    what: 'ListTagsForStream with Limit 51',
    call: (c) => c.sdk.send(new ListTagsForStreamCommand({ StreamName: 's', Limit: 51 })),
    error: 'ValidationException',
    message: /'limit'.*less than or equal to 50/,
  },
  {
    what: 'ListTagsForStream with an ExclusiveStartTagKey of 129 characters',
    call: (c) =>
      c.sdk.send(
        new ListTagsForStreamCommand({ StreamName: 's', ExclusiveStartTagKey: 'k'.repeat(129) }),
      ),
    error: 'ValidationException',
    message: /exclusiveStartTagKey/,
  },
  {
    what: 'IncreaseStreamRetentionPeriod to 0 hours',
    call: (c) =>
      c.sdk.send(
        new IncreaseStreamRetentionPeriodCommand({ StreamName: 's', RetentionPeriodHours: 0 }),
      ),
    error: 'ValidationException',
    message: /'retentionPeriodHours'.*must not be null/,
  },
  {
    what: 'IncreaseStreamRetentionPeriod without RetentionPeriodHours',
    call: (c) => c.sdk.send(new IncreaseStreamRetentionPeriodCommand(loose({ StreamName: 's' }))),
    error: 'ValidationException',
    message: /'retentionPeriodHours'.*must not be null/,
  },
  {
    what: 'IncreaseStreamRetentionPeriod to 23 hours',
    call: (c) =>
      c.sdk.send(
        new IncreaseStreamRetentionPeriodCommand({ StreamName: 's', RetentionPeriodHours: 23 }),
      ),
    error: 'InvalidArgumentException',
    message: /Minimum allowed retention period is 24 hours/,
  },
  {
    what: 'IncreaseStreamRetentionPeriod to 8761 hours',
    call: (c) =>
      c.sdk.send(
        new IncreaseStreamRetentionPeriodCommand({ StreamName: 's', RetentionPeriodHours: 8761 }),
      ),
    error: 'InvalidArgumentException',
    message: /Maximum allowed retention period is 8760 hours/,
  },
  {
    what: 'DecreaseStreamRetentionPeriod to 0 hours',
    call: (c) =>
      c.sdk.send(
        new DecreaseStreamRetentionPeriodCommand({ StreamName: 's', RetentionPeriodHours: 0 }),
      ),
    error: 'ValidationException',
    message: /retentionPeriodHours/,
  },
  {
    what: 'DecreaseStreamRetentionPeriod to 23 hours',
    call: (c) =>
      c.sdk.send(
        new DecreaseStreamRetentionPeriodCommand({ StreamName: 's', RetentionPeriodHours: 23 }),
      ),
    error: 'InvalidArgumentException',
    message: /Minimum allowed retention period is 24 hours/,
  },
  {
    what: 'DecreaseStreamRetentionPeriod above the current period',
    call: (c) =>
      c.sdk.send(
        new DecreaseStreamRetentionPeriodCommand({ StreamName: 's', RetentionPeriodHours: 25 }),
      ),
    error: 'InvalidArgumentException',
    message: /can not be longer than existing retention period \(24 hours\)/,
  },
  {
    what: 'DecreaseStreamRetentionPeriod to 8761 hours',
    call: (c) =>
      c.sdk.send(
        new DecreaseStreamRetentionPeriodCommand({ StreamName: 's', RetentionPeriodHours: 8761 }),
      ),
    error: 'InvalidArgumentException',
    message: /8760/,
  },
  {
    what: 'UpdateStreamMode without StreamModeDetails',
    call: (c) => updateMode(c, { StreamARN: arnOf('s') }),
    error: 'ValidationException',
    message: /streamMode.*must not be null/,
  },
  {
    what: 'UpdateStreamMode with StreamModeDetails but no mode',
    call: (c) => updateMode(c, { StreamARN: arnOf('s'), StreamModeDetails: {} }),
    error: 'ValidationException',
    message: /streamMode.*must not be null/,
  },
  {
    what: 'UpdateStreamMode with an unknown mode',
    call: (c) =>
      updateMode(c, { StreamARN: arnOf('s'), StreamModeDetails: { StreamMode: 'FAST' } }),
    error: 'ValidationException',
    message: /streamMode.*enum value set/,
  },
];

const arnCases: Case[] = [
  {
    what: 'a StreamARN that is not an ARN',
    call: (c) => c.sdk.send(new DescribeStreamSummaryCommand({ StreamARN: 'not-an-arn' })),
    error: 'ValidationException',
    message: /'streamARN'.*arn:aws/,
  },
  {
    what: 'a StreamARN of another service',
    call: (c) =>
      c.sdk.send(
        new DescribeStreamCommand({
          StreamARN: `arn:aws:sqs:us-east-1:${'0'.repeat(12)}:stream/s`,
        }),
      ),
    error: 'ValidationException',
    message: /streamARN/,
  },
  {
    what: 'a StreamARN with an 11-digit account',
    call: (c) =>
      c.sdk.send(
        new PutRecordCommand({
          StreamARN: 'arn:aws:kinesis:us-east-1:00000000000:stream/s',
          PartitionKey: 'k',
          Data: data,
        }),
      ),
    error: 'ValidationException',
    message: /streamARN/,
  },
  {
    what: 'a StreamARN without a stream name',
    call: (c) => listShards(c, { StreamARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/' }),
    error: 'ValidationException',
    message: /streamARN/,
  },
  {
    what: 'a StreamARN of another account',
    call: (c) =>
      c.sdk.send(
        new DescribeStreamSummaryCommand({
          StreamARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/s',
        }),
      ),
    error: 'ResourceNotFoundException',
    message: /123456789012/,
  },
  {
    what: 'a StreamARN of another region',
    call: (c) =>
      c.sdk.send(
        new PutRecordsCommand({
          StreamARN: 'arn:aws:kinesis:eu-west-1:000000000000:stream/s',
          Records: [record()],
        }),
      ),
    error: 'ResourceNotFoundException',
    message: /eu-west-1/,
  },
  {
    what: 'a StreamARN and a StreamName that disagree',
    call: (c) => iter(c, { StreamName: 's', StreamARN: arnOf('t') }),
    error: 'InvalidArgumentException',
    message: /name different streams/,
  },
  {
    what: 'DescribeStreamSummary with a StreamARN and a StreamName that disagree',
    call: (c) =>
      c.sdk.send(
        new DescribeStreamSummaryCommand(
          loose<DescribeStreamSummaryCommandInput>({ StreamName: 'other', StreamARN: arnOf('s') }),
        ),
      ),
    error: 'InvalidArgumentException',
    message: /name different streams/,
  },
  {
    what: 'GetRecords with the StreamARN of another stream than the iterator',
    call: (c) => getRecords(c, { ShardIterator: c.iterator, StreamARN: arnOf('other') }),
    error: 'InvalidArgumentException',
    message: /belongs to stream s/,
  },
];

const unknown = 'nope';
const notFoundCases: Case[] = (
  [
    ['DeleteStream', (c) => c.sdk.send(new DeleteStreamCommand({ StreamName: unknown }))],
    ['DescribeStream', (c) => c.sdk.send(new DescribeStreamCommand({ StreamName: unknown }))],
    [
      'DescribeStreamSummary',
      (c) => c.sdk.send(new DescribeStreamSummaryCommand({ StreamName: unknown })),
    ],
    ['ListShards', (c) => listShards(c, { StreamName: unknown })],
    [
      'AddTagsToStream',
      (c) => c.sdk.send(new AddTagsToStreamCommand({ StreamName: unknown, Tags: { a: 'b' } })),
    ],
    [
      'RemoveTagsFromStream',
      (c) => c.sdk.send(new RemoveTagsFromStreamCommand({ StreamName: unknown, TagKeys: ['a'] })),
    ],
    ['ListTagsForStream', (c) => c.sdk.send(new ListTagsForStreamCommand({ StreamName: unknown }))],
    [
      'IncreaseStreamRetentionPeriod',
      (c) =>
        c.sdk.send(
          new IncreaseStreamRetentionPeriodCommand({
            StreamName: unknown,
            RetentionPeriodHours: 48,
          }),
        ),
    ],
    [
      'DecreaseStreamRetentionPeriod',
      (c) =>
        c.sdk.send(
          new DecreaseStreamRetentionPeriodCommand({
            StreamName: unknown,
            RetentionPeriodHours: 24,
          }),
        ),
    ],
    [
      'UpdateStreamMode',
      (c) =>
        c.sdk.send(
          new UpdateStreamModeCommand({
            StreamARN: arnOf(unknown),
            StreamModeDetails: { StreamMode: 'ON_DEMAND' },
          }),
        ),
    ],
    ['PutRecord', (c) => put(c, { StreamName: unknown })],
    [
      'PutRecords',
      (c) => c.sdk.send(new PutRecordsCommand({ StreamName: unknown, Records: [record()] })),
    ],
    ['GetShardIterator', (c) => iter(c, { StreamName: unknown })],
    [
      'DescribeStream by ARN',
      (c) => c.sdk.send(new DescribeStreamCommand({ StreamARN: arnOf(unknown) })),
    ],
  ] as Array<[string, (c: Ctx) => Promise<unknown>]>
).map(([what, call]) => ({
  what,
  call,
  error: 'ResourceNotFoundException',
  message: /Stream nope under account 000000000000 not found/,
}));

/**
 * Inputs the SDK sends without checking them (it enforces neither required members nor enum
 * values) that Kinesis refuses. Each runs on a fresh node, since a wrongly accepted one would
 * store or create something.
 */
const unmodelledCases: Case[] = [
  {
    what: 'PutRecord without Data (a required member)',
    call: (c) =>
      c.sdk.send(
        new PutRecordCommand(loose<PutRecordCommandInput>({ StreamName: 's', PartitionKey: 'k' })),
      ),
    error: 'ValidationException',
    message: /'data'.*must not be null/,
  },
  {
    what: 'PutRecords with a record without Data',
    call: (c) => puts(c, [record(), loose<PutRecordsRequestEntry>({ PartitionKey: 'k' })]),
    error: 'ValidationException',
    message: /records\.2\.member\.data.*must not be null/,
  },
  {
    what: "CreateStream with StreamMode 'UNSPECIFIED' (not a Kinesis stream mode)",
    call: (c) => create(c, { StreamModeDetails: { StreamMode: 'UNSPECIFIED' as StreamMode } }),
    error: 'ValidationException',
    message: /Value 'UNSPECIFIED' at 'streamModeDetails.streamMode'.*enum value set/,
  },
  {
    what: "UpdateStreamMode with StreamMode 'UNSPECIFIED'",
    call: (c) =>
      updateMode(c, { StreamARN: arnOf('s'), StreamModeDetails: { StreamMode: 'UNSPECIFIED' } }),
    error: 'ValidationException',
    message: /Value 'UNSPECIFIED' at 'streamModeDetails.streamMode'.*enum value set/,
  },
  {
    what: "ListShards with ShardFilter Type 'UNSPECIFIED'",
    call: (c) =>
      listShards(c, { StreamName: 's', ShardFilter: { Type: 'UNSPECIFIED' as ShardFilterType } }),
    error: 'ValidationException',
    message: /Value 'UNSPECIFIED' at 'shardFilter.type'.*enum value set/,
  },
  {
    what: 'GetShardIterator with an unknown type names the value sent',
    call: (c) => iter(c, { ShardIteratorType: 'AT_THE_END' as ShardIteratorType }),
    error: 'ValidationException',
    message: /Value 'AT_THE_END' at 'shardIteratorType'.*enum value set/,
  },
  {
    what: "UpdateShardCount with ScalingType 'UNSPECIFIED'",
    call: (c) =>
      c.sdk.send(
        new Kinesis.UpdateShardCountCommand({
          StreamName: 's',
          TargetShardCount: 4,
          ScalingType: 'UNSPECIFIED' as Kinesis.ScalingType,
        }),
      ),
    error: 'ValidationException',
    message: /Value 'UNSPECIFIED' at 'scalingType'.*enum value set: \[UNIFORM_SCALING\]/,
  },
  {
    what: 'UpdateShardCount without ScalingType (a required member)',
    call: (c) =>
      c.sdk.send(
        new Kinesis.UpdateShardCountCommand(
          loose<Kinesis.UpdateShardCountCommandInput>({ StreamName: 's', TargetShardCount: 4 }),
        ),
      ),
    error: 'ValidationException',
    message: /'scalingType'.*must not be null/,
  },
];

/** Wraps the node's store so that range reads (the record log) fail while `broken` is set. */
class BrokenReads {
  broken = false;

  readonly wrap = (kv: KvStore): KvStore => {
    const check = () => {
      if (this.broken) throw new Error('injected storage read failure');
    };
    return {
      write: (ops, options) => kv.write(ops, options),
      get: (key) => kv.get(key),
      entries: async (range: KvRange) => {
        check();
        return kv.entries(range);
      },
      keys: (range) => kv.keys(range),
      iterate: (range: KvRange) => {
        check();
        return kv.iterate(range);
      },
      clear: (range) => kv.clear(range),
      compact: (start, end) => kv.compact(start, end),
      close: () => kv.close(),
    };
  };
}

/** Every SDK command whose operation the gateway does not translate. */
const unsupported: Array<[string, new (input: object) => object]> = Object.entries(Kinesis)
  .map(([name, command]) => [/^([A-Z]\w+)Command$/.exec(name)?.[1], command] as const)
  // SubscribeToShard is served outside OPERATIONS (its answer is an event stream).
  .filter(
    ([operation]) =>
      operation !== undefined && !(operation in OPERATIONS) && operation !== 'SubscribeToShard',
  )
  .map(([operation, command]) => [operation!, command as new (input: object) => object]);

/**
 * A plain Node process (no test runner catching its errors) that sends one PutRecords whose JSON
 * body (10 records of ~1 MiB, ~14 MiB as base64) is above the gateway's 12 MiB body limit, then a
 * ListStreams on the same client, and prints what it saw. The client is configured as in the
 * other tests (HTTP/2 by default, NodeHttpHandler for HTTP/1.1); the PutRecords is aborted after
 * 5 s so that a response that never comes ends the process (as an AbortError) instead of hanging
 * it.
 */
const OVERSIZED_CHILD = `
import { KinesisClient, ListStreamsCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
const [port, kind] = process.argv.slice(1);
const client = new KinesisClient({
  endpoint: 'http://127.0.0.1:' + port,
  region: 'us-east-1',
  credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  maxAttempts: 1,
  ...(kind === 'http1' ? { requestHandler: new NodeHttpHandler() } : {}),
});
const out = {};
const abort = new AbortController();
const timer = setTimeout(() => abort.abort(), 5000);
try {
  await client.send(
    new PutRecordsCommand({
      StreamName: 's',
      Records: Array.from({ length: 10 }, () => ({ PartitionKey: 'k', Data: new Uint8Array(1048566) })),
    }),
    { abortSignal: abort.signal },
  );
  out.put = 'succeeded';
} catch (e) {
  out.put = { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
}
clearTimeout(timer);
try {
  out.after = (await client.send(new ListStreamsCommand({}))).StreamNames;
} catch (e) {
  out.after = e.name + ': ' + e.message;
}
client.destroy();
process.stdout.write('RESULT ' + JSON.stringify(out) + '\\n');
`;

/** Runs OVERSIZED_CHILD; the process is killed by pid when the test ends. */
function useChildren() {
  const running = new Set<ChildProcess>();
  afterEach(() => {
    for (const child of running) child.kill('SIGKILL');
    running.clear();
  });
  return (port: number, kind: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--input-type=module', '-e', OVERSIZED_CHILD, '--', String(port), kind],
        { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      running.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => {
        running.delete(child);
        resolve({ code, stdout, stderr });
      });
    });
}

describe.each(HANDLERS)('%s', (_label, kind) => {
  describe('request checks (one shared node; every case is refused)', () => {
    const gateway = useGateway(kind, 'all');
    let ctx: Ctx;
    beforeAll(async () => {
      const g = await gateway.start({
        clock: new ManualClock(1_770_000_000_000),
        defaultShardLimits: UNLIMITED,
      });
      await createActiveSdk(g.sdk, 's', 2, { Tags: { existing: 'tag' } });
      await createActiveSdk(g.sdk, 'other', 1);
      const { SequenceNumber } = await g.sdk.send(
        new PutRecordCommand({
          StreamName: 's',
          PartitionKey: 'k',
          ExplicitHashKey: '0',
          Data: Buffer.from('seed'),
        }),
      );
      const iterator = await sdkIterator(g.sdk, {
        StreamName: 's',
        ShardId: shardId(0),
        ShardIteratorType: 'TRIM_HORIZON',
      });
      ctx = { sdk: g.sdk, iterator, sequenceNumber: SequenceNumber! };
    });

    describe.each([
      ['stream names', streamNameCases],
      ['PutRecord', putCases],
      ['PutRecords', putsCases],
      ['GetShardIterator and GetRecords', readCases],
      ['control plane', controlCases],
      ['StreamARN', arnCases],
      ['unknown stream', notFoundCases],
    ])('%s', (_group, cases) => {
      it.each(cases.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
        await expectSdkError(c.call(ctx), c.error, c.message);
      });
    });

    it('stored nothing and changed nothing for any of them', async () => {
      const { sdk } = ctx;
      expect((await sdkReadShard(sdk, 's', shardId(0))).map(text)).toEqual(['seed']);
      expect(await sdkReadShard(sdk, 's', shardId(1))).toEqual([]);
      expect((await sdk.send(new ListStreamsCommand({}))).StreamNames).toEqual(['other', 's']);
      expect((await sdk.send(new ListTagsForStreamCommand({ StreamName: 's' }))).Tags).toEqual([
        { Key: 'existing', Value: 'tag' },
      ]);
      expect(await waitActive(sdk, 's')).toMatchObject({
        RetentionPeriodHours: 24,
        StreamModeDetails: { StreamMode: 'PROVISIONED' },
        OpenShardCount: 2,
      });
    });
  });

  describe('inputs the SDK does not check (fresh node per case)', () => {
    const gateway = useGateway(kind);
    it.each(unmodelledCases.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
      const g = await gateway.start({ defaultShardLimits: UNLIMITED });
      await createActiveSdk(g.sdk, 's', 2);
      const iterator = await sdkIterator(g.sdk, {
        StreamName: 's',
        ShardId: shardId(0),
        ShardIteratorType: 'TRIM_HORIZON',
      });
      await expectSdkError(
        c.call({ sdk: g.sdk, iterator, sequenceNumber: '0' }),
        c.error,
        c.message,
      );
    });
  });

  describe('a request body above the gateway limit', () => {
    const gateway = useGateway(kind);
    const runChild = useChildren();

    it('gets a clear 413 client error, and neither hangs nor crashes the client process', async () => {
      const { sdk, port } = await gateway.start({ defaultShardLimits: UNLIMITED });
      await createActiveSdk(sdk, 's', 1);
      const { code, stdout, stderr } = await runChild(port, kind);
      const result = /^RESULT (.*)$/m.exec(stdout)?.[1];
      // The SDK prints a NodeVersionSupportWarning on Node 20; anything else on stderr is a crash.
      const crash = stderr
        .split('\n')
        .filter((line) => /Error|throw/.test(line) && !/NodeVersionSupportWarning/.test(line));
      expect({ code, crash, result: result === undefined ? stdout : JSON.parse(result) }).toEqual({
        code: 0,
        crash: [],
        result: {
          put: {
            name: 'SerializationException',
            status: 413,
            message: expect.stringMatching(/larger than \d+ bytes/),
          },
          after: ['s'],
        },
      });
      // Nothing was stored.
      expect(await sdkReadShard(sdk, 's', shardId(0))).toEqual([]);
    });
  });

  describe('errors that need state', () => {
    const gateway = useGateway(kind);

    it('ResourceInUseException and ResourceNotFoundException while a stream is CREATING', async () => {
      const gate = new ShardOpenGate();
      const { sdk } = await gateway.start({ wrapKv: gate.wrap });
      gate.hold();
      try {
        await sdk.send(new CreateStreamCommand({ StreamName: 'slow', ShardCount: 2 }));
        const summary = await sdk.send(new DescribeStreamSummaryCommand({ StreamName: 'slow' }));
        expect(summary.StreamDescriptionSummary!.StreamStatus).toBe('CREATING');
        const listed = await sdk.send(new ListStreamsCommand({}));
        expect(listed.StreamSummaries!.map((s) => [s.StreamName, s.StreamStatus])).toEqual([
          ['slow', 'CREATING'],
        ]);
        await expectSdkError(
          sdk.send(new PutRecordCommand({ StreamName: 'slow', PartitionKey: 'k', Data: data })),
          'ResourceNotFoundException',
          /slow/,
        );
        await expectSdkError(
          sdk.send(
            new GetShardIteratorCommand({
              StreamName: 'slow',
              ShardId: shardId(0),
              ShardIteratorType: 'TRIM_HORIZON',
            }),
          ),
          'ResourceNotFoundException',
        );
        await expectSdkError(
          sdk.send(new ListShardsCommand({ StreamName: 'slow' })),
          'ResourceInUseException',
          /slow/,
        );
        await expectSdkError(
          sdk.send(new DeleteStreamCommand({ StreamName: 'slow' })),
          'ResourceInUseException',
        );
        await expectSdkError(
          sdk.send(new AddTagsToStreamCommand({ StreamName: 'slow', Tags: { a: 'b' } })),
          'ResourceInUseException',
        );
        await expectSdkError(
          sdk.send(
            new IncreaseStreamRetentionPeriodCommand({
              StreamName: 'slow',
              RetentionPeriodHours: 48,
            }),
          ),
          'ResourceInUseException',
        );
      } finally {
        gate.release();
      }
      await waitActive(sdk, 'slow');
      await sdk.send(new PutRecordCommand({ StreamName: 'slow', PartitionKey: 'k', Data: data }));
    });

    it('ResourceInUseException for a second stream of the same name, which changes nothing', async () => {
      const { sdk } = await gateway.start();
      await createActiveSdk(sdk, 'dup', 1, { Tags: { owner: 'first' } });
      await expectSdkError(
        sdk.send(new CreateStreamCommand({ StreamName: 'dup', ShardCount: 5 })),
        'ResourceInUseException',
        /dup.*already exists/,
      );
      await expectSdkError(
        sdk.send(
          new CreateStreamCommand({
            StreamName: 'dup',
            StreamModeDetails: { StreamMode: 'ON_DEMAND' },
          }),
        ),
        'ResourceInUseException',
      );
      expect((await waitActive(sdk, 'dup')).OpenShardCount).toBe(1);
      expect((await sdk.send(new ListTagsForStreamCommand({ StreamName: 'dup' }))).Tags).toEqual([
        { Key: 'owner', Value: 'first' },
      ]);
    });

    it('LimitExceededException for the account shard limit and the on-demand stream count limit', async () => {
      // The SDK retries LimitExceededException (a throttling error): one attempt keeps it exact.
      const { sdk, once } = await gateway.start({
        accountLimits: { shardLimit: 12, onDemandStreamCountLimit: 1 },
      });
      await createActiveSdk(sdk, 'od1', null, { StreamModeDetails: { StreamMode: 'ON_DEMAND' } });
      await createActiveSdk(sdk, 'a', 4);
      const shards = await expectSdkError(
        once.send(new CreateStreamCommand({ StreamName: 'b', ShardCount: 5 })),
        'LimitExceededException',
        /shard limit.*Current shard count for the account: 8.*Limit: 12/,
      );
      expect(shards.error.$metadata.attempts).toBe(1);
      await expectSdkError(
        sdk.send(new DescribeStreamSummaryCommand({ StreamName: 'b' })),
        'ResourceNotFoundException',
      );
      await expectSdkError(
        once.send(
          new CreateStreamCommand({
            StreamName: 'od2',
            StreamModeDetails: { StreamMode: 'ON_DEMAND' },
          }),
        ),
        'LimitExceededException',
        /on-demand stream count limit of 1/,
      );
      await expectSdkError(
        once.send(
          new UpdateStreamModeCommand({
            StreamARN: arnOf('a'),
            StreamModeDetails: { StreamMode: 'ON_DEMAND' },
          }),
        ),
        'LimitExceededException',
        /on-demand/,
      );
      expect((await waitActive(sdk, 'a')).StreamModeDetails).toEqual({
        StreamMode: 'PROVISIONED',
      });
      const { $metadata: _m, ...limits } = await sdk.send(new DescribeLimitsCommand({}));
      expect(limits).toEqual({
        ShardLimit: 12,
        OpenShardCount: 8,
        OnDemandStreamCount: 1,
        OnDemandStreamCountLimit: 1,
      });
    });

    it('ExpiredNextTokenException after 5 minutes (ListStreams, ListShards); InvalidArgumentException for garbage or misused tokens', async () => {
      const clock = new ManualClock(1_770_000_000_000);
      const { sdk } = await gateway.start({ clock });
      for (const name of ['a', 'b', 'c']) await createActiveSdk(sdk, name, 1);
      await createActiveSdk(sdk, 'five', 5);
      const p1 = await sdk.send(new ListStreamsCommand({ Limit: 1 }));
      clock.advance(299_999);
      const p2 = await sdk.send(new ListStreamsCommand({ Limit: 1, NextToken: p1.NextToken! }));
      expect(p2.StreamNames).toEqual(['b']);
      clock.advance(2);
      await expectSdkError(
        sdk.send(new ListStreamsCommand({ Limit: 1, NextToken: p1.NextToken! })),
        'ExpiredNextTokenException',
        /expired/i,
      );
      await expectSdkError(
        sdk.send(new ListStreamsCommand({ NextToken: 'garbage!' })),
        'InvalidArgumentException',
      );

      const { NextToken } = await sdk.send(
        new ListShardsCommand({ StreamName: 'five', MaxResults: 1 }),
      );
      clock.advance(300_000);
      const next = await sdk.send(new ListShardsCommand({ NextToken: NextToken!, MaxResults: 1 }));
      expect(next.Shards!.map((s) => s.ShardId)).toEqual([shardId(1)]);
      clock.advance(1);
      await expectSdkError(
        sdk.send(new ListShardsCommand({ NextToken: NextToken! })),
        'ExpiredNextTokenException',
        /expired/i,
      );

      const fresh = (await sdk.send(new ListShardsCommand({ StreamName: 'five', MaxResults: 1 })))
        .NextToken!;
      await expectSdkError(
        sdk.send(new ListShardsCommand({ StreamName: 'five', NextToken: fresh })),
        'InvalidArgumentException',
        /NextToken/,
      );
      await expectSdkError(
        sdk.send(new ListShardsCommand({ StreamARN: arnOf('five'), NextToken: fresh })),
        'InvalidArgumentException',
      );
      await expectSdkError(
        sdk.send(new ListShardsCommand({ NextToken: fresh, ExclusiveStartShardId: shardId(0) })),
        'InvalidArgumentException',
      );
      await expectSdkError(
        sdk.send(new ListShardsCommand({})),
        'InvalidArgumentException',
        /StreamName/,
      );
      await expectSdkError(
        sdk.send(new ListShardsCommand({ NextToken: 'not a token' })),
        'InvalidArgumentException',
      );
      // ListStreams does not take a ListShards token.
      await expectSdkError(
        sdk.send(new ListStreamsCommand({ NextToken: fresh })),
        'InvalidArgumentException',
      );
    });

    it('ResourceNotFoundException after DeleteStream, also for old iterators and tokens once the name is reused', async () => {
      const { sdk } = await gateway.start({ defaultShardLimits: UNLIMITED });
      await createActiveSdk(sdk, 'gone', 2);
      const put = await sdk.send(
        new PutRecordCommand({
          StreamName: 'gone',
          PartitionKey: 'k',
          ExplicitHashKey: '0',
          Data: data,
        }),
      );
      const oldIterator = await sdkIterator(sdk, {
        StreamName: 'gone',
        ShardId: shardId(0),
        ShardIteratorType: 'TRIM_HORIZON',
      });
      const firstPage = await sdk.send(
        new ListShardsCommand({ StreamName: 'gone', MaxResults: 1 }),
      );
      expect(firstPage.NextToken).toMatch(/\S/);

      await sdk.send(new DeleteStreamCommand({ StreamName: 'gone' }));
      // The data plane stops at once.
      await expectSdkError(
        sdk.send(new PutRecordCommand({ StreamName: 'gone', PartitionKey: 'k', Data: data })),
        'ResourceNotFoundException',
        /Stream gone under account 000000000000 not found/,
      );
      await expectSdkError(
        sdk.send(new GetRecordsCommand({ ShardIterator: oldIterator })),
        'ResourceNotFoundException',
      );
      let gone = false;
      for (let attempt = 0; attempt < 2000 && !gone; attempt++) {
        gone = await sdk.send(new DescribeStreamSummaryCommand({ StreamName: 'gone' })).then(
          async () => {
            await new Promise((resolve) => setTimeout(resolve, 5));
            return false;
          },
          (error: unknown) => {
            expect(error).toBeInstanceOf(ResourceNotFoundException);
            return true;
          },
        );
      }
      expect(gone).toBe(true);
      for (const call of [
        sdk.send(new DescribeStreamCommand({ StreamName: 'gone' })),
        sdk.send(new ListShardsCommand({ StreamName: 'gone' })),
        sdk.send(new DeleteStreamCommand({ StreamName: 'gone' })),
        sdk.send(
          new GetShardIteratorCommand({
            StreamName: 'gone',
            ShardId: shardId(0),
            ShardIteratorType: 'TRIM_HORIZON',
          }),
        ),
      ]) {
        await expectSdkError(call, 'ResourceNotFoundException');
      }

      await createActiveSdk(sdk, 'gone', 2);
      // Tokens of the old stream do not leak into the new one.
      await expectSdkError(
        sdk.send(new GetRecordsCommand({ ShardIterator: oldIterator })),
        'ResourceNotFoundException',
      );
      await expectSdkError(
        sdk.send(new ListShardsCommand({ NextToken: firstPage.NextToken! })),
        'ResourceNotFoundException',
      );
      await expectSdkError(
        sdk.send(
          new GetShardIteratorCommand({
            StreamName: 'gone',
            ShardId: shardId(0),
            ShardIteratorType: 'AT_SEQUENCE_NUMBER',
            StartingSequenceNumber: put.SequenceNumber!,
          }),
        ),
        'InvalidArgumentException',
        /StartingSequenceNumber/,
      );
      expect(await sdkReadShard(sdk, 'gone', shardId(0))).toEqual([]);
    });

    it('ProvisionedThroughputExceededException for PutRecord (records and bytes per second) and GetRecords (calls per second)', async () => {
      // The SDK retries throttling errors: one attempt keeps the test exact and fast.
      const clock = new ManualClock(1_780_000_000_000);
      const { sdk, once } = await gateway.start({ clock });
      await createActiveSdk(sdk, 's', 2);
      const shards = await sdkShards(sdk, 's');
      const to = (i: number) => shards[i]!.HashKeyRange!.StartingHashKey!;
      const tiny = (n: number): PutRecordsRequestEntry[] =>
        Array.from({ length: n }, (_, i) => ({
          PartitionKey: 'k',
          ExplicitHashKey: to(0),
          Data: Buffer.from([i % 256]),
        }));
      for (let i = 0; i < 2; i++) {
        const ok = await sdk.send(new PutRecordsCommand({ StreamName: 's', Records: tiny(500) }));
        expect(ok.FailedRecordCount).toBe(0);
      }
      const records = await expectSdkError(
        once.send(
          new PutRecordCommand({
            StreamName: 's',
            PartitionKey: 'k',
            ExplicitHashKey: to(0),
            Data: data,
          }),
        ),
        PTE,
        /Rate exceeded for shard shardId-000000000000 in stream s/,
      );
      expect(records.error.$metadata.attempts).toBe(1);
      // Shard 1 has its own allowance.
      await once.send(
        new PutRecordCommand({
          StreamName: 's',
          PartitionKey: 'k',
          ExplicitHashKey: to(1),
          Data: data,
        }),
      );

      // Bytes: 1 MiB per second.
      clock.advance(1000);
      const sized = (bytes: number, seed: number) =>
        new PutRecordCommand({
          StreamName: 's',
          PartitionKey: 'k',
          ExplicitHashKey: to(0),
          Data: pseudoRandomBytes(bytes - 1, seed),
        });
      await once.send(sized(MiB, 1));
      await expectSdkError(once.send(sized(1, 2)), PTE, /Rate exceeded/);
      clock.advance(500);
      await once.send(sized(400 * 1024, 3));
      await expectSdkError(once.send(sized(200 * 1024, 4)), PTE);

      // Reads: 5 GetRecords calls per second per shard.
      const iterator = await sdkIterator(sdk, {
        StreamName: 's',
        ShardId: shardId(1),
        ShardIteratorType: 'TRIM_HORIZON',
      });
      for (let i = 0; i < 5; i++) {
        const page = await once.send(new GetRecordsCommand({ ShardIterator: iterator }));
        expect(page.Records).toHaveLength(1);
      }
      const reads = await expectSdkError(
        once.send(new GetRecordsCommand({ ShardIterator: iterator })),
        PTE,
        /Rate exceeded for Shard - shardId-000000000001/,
      );
      expect(reads.error.$metadata.attempts).toBe(1);
      clock.advance(200); // one call's worth
      await once.send(new GetRecordsCommand({ ShardIterator: iterator }));
      await expectSdkError(once.send(new GetRecordsCommand({ ShardIterator: iterator })), PTE);
    });

    it('InternalFailureException (HTTP 500, a server fault) when the server fails: retried by the SDK by default, once with maxAttempts 1', async () => {
      const storage = new BrokenReads();
      const { sdk, once } = await gateway.start({ wrapKv: storage.wrap });
      await createActiveSdk(sdk, 's', 1);
      await sdk.send(new PutRecordCommand({ StreamName: 's', PartitionKey: 'k', Data: data }));
      const iterator = await sdkIterator(sdk, {
        StreamName: 's',
        ShardId: shardId(0),
        ShardIteratorType: 'TRIM_HORIZON',
      });
      storage.broken = true;
      const single = await expectSdkError(
        once.send(new GetRecordsCommand({ ShardIterator: iterator })),
        'InternalFailureException',
        /Internal service failure/,
        500,
      );
      expect(single.error.$metadata.attempts).toBe(1);
      // The SDK's default retry strategy sees a 5xx as transient and tries again (3 attempts).
      const retried = await expectSdkError(
        sdk.send(new GetRecordsCommand({ ShardIterator: iterator })),
        'InternalFailureException',
        /Internal service failure/,
        500,
      );
      expect(retried.error.$metadata.attempts).toBe(3);
      storage.broken = false;
      const page = await sdk.send(new GetRecordsCommand({ ShardIterator: iterator }));
      expect(page.Records!.map(text)).toEqual(['d']);
    });

    it('InvalidArgumentException for sequence numbers of another shard or stream, beyond the tip, or not ours; and for fields the iterator type does not take', async () => {
      const clock = new ManualClock(1_770_000_000_000);
      const { sdk } = await gateway.start({ clock, defaultShardLimits: UNLIMITED });
      await createActiveSdk(sdk, 's', 2);
      await createActiveSdk(sdk, 'other', 1);
      const putTo = async (StreamName: string, ExplicitHashKey: string) =>
        (
          await sdk.send(
            new PutRecordCommand({ StreamName, PartitionKey: 'k', ExplicitHashKey, Data: data }),
          )
        ).SequenceNumber!;
      const seq0 = await putTo('s', '0');
      const seq1 = await putTo('s', MAX_HASH_KEY.toString());
      const otherSeq = await putTo('other', '0');
      const get = (ShardId: string, ShardIteratorType: ShardIteratorType, seq: string) =>
        sdk.send(
          new GetShardIteratorCommand({
            StreamName: 's',
            ShardId,
            ShardIteratorType,
            StartingSequenceNumber: seq,
          }),
        );
      const index = Number(seq0.slice(13, 33));
      const beyond = seq0.slice(0, 13) + String(index + 1000).padStart(20, '0') + '00000';
      for (const type of ['AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER'] as const) {
        await expectSdkError(
          get(shardId(0), type, seq1),
          'InvalidArgumentException',
          /shardId-000000000000/,
        );
        await expectSdkError(
          get(shardId(1), type, seq0),
          'InvalidArgumentException',
          /StartingSequenceNumber/,
        );
        await expectSdkError(get(shardId(0), type, otherSeq), 'InvalidArgumentException');
        await expectSdkError(get(shardId(0), type, '0'), 'InvalidArgumentException');
        await expectSdkError(get(shardId(0), type, '12345'), 'InvalidArgumentException');
        await expectSdkError(get(shardId(0), type, beyond), 'InvalidArgumentException', /beyond/);
        await expectSdkError(
          get(shardId(0), type, 'abc'),
          'ValidationException',
          /startingSequenceNumber/,
        );
        await expectSdkError(get(shardId(0), type, '0123'), 'ValidationException');
      }

      const now = new Date(clock.nowMs());
      const bad: Array<[ShardIteratorType, Partial<GetShardIteratorCommandInput>, RegExp]> = [
        ['AT_SEQUENCE_NUMBER', {}, /StartingSequenceNumber/],
        ['AFTER_SEQUENCE_NUMBER', {}, /StartingSequenceNumber/],
        ['AT_TIMESTAMP', {}, /timestamp/i],
        ['TRIM_HORIZON', { StartingSequenceNumber: seq0 }, /StartingSequenceNumber/],
        ['LATEST', { StartingSequenceNumber: seq0 }, /StartingSequenceNumber/],
        [
          'AT_TIMESTAMP',
          { StartingSequenceNumber: seq0, Timestamp: now },
          /StartingSequenceNumber/,
        ],
        ['TRIM_HORIZON', { Timestamp: now }, /Timestamp/],
        ['LATEST', { Timestamp: now }, /Timestamp/],
        ['AT_SEQUENCE_NUMBER', { StartingSequenceNumber: seq0, Timestamp: now }, /Timestamp/],
      ];
      for (const [ShardIteratorType, extra, message] of bad) {
        await expectSdkError(
          sdk.send(
            new GetShardIteratorCommand({
              StreamName: 's',
              ShardId: shardId(0),
              ShardIteratorType,
              ...extra,
            }),
          ),
          'InvalidArgumentException',
          message,
        );
      }
      for (const [ShardId, message] of [
        [shardId(2), /shardId-000000000002/],
        ['shardId-x', /\w/],
      ] as const) {
        await expectSdkError(
          sdk.send(
            new GetShardIteratorCommand({ StreamName: 's', ShardId, ShardIteratorType: 'LATEST' }),
          ),
          'ResourceNotFoundException',
          message,
        );
      }
      await expectSdkError(
        sdk.send(
          new GetShardIteratorCommand({
            StreamName: 's',
            ShardId: 'shard id with spaces',
            ShardIteratorType: 'LATEST',
          }),
        ),
        'ValidationException',
        /shardId/,
      );
    });

    it('InvalidArgumentException for forged, corrupted, truncated and foreign iterators', async () => {
      const { sdk, client } = await gateway.start({ defaultShardLimits: UNLIMITED });
      await createActiveSdk(sdk, 's', 2);
      await sdk.send(
        new PutRecordCommand({
          StreamName: 's',
          PartitionKey: 'k',
          ExplicitHashKey: '0',
          Data: data,
        }),
      );
      const iterator = await sdkIterator(sdk, {
        StreamName: 's',
        ShardId: shardId(0),
        ShardIteratorType: 'TRIM_HORIZON',
      });
      expect(
        (await sdk.send(new GetRecordsCommand({ ShardIterator: iterator }))).Records,
      ).toHaveLength(1);
      const bytes = Buffer.from(iterator, 'base64url');
      bytes.writeUInt32BE(0, 1); // signing key 0 never existed (src/common/iterator-token.ts)
      const forged = [
        'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        'not an iterator',
        '!!!',
        'x',
        iterator.slice(0, -1),
        iterator.slice(1),
        iterator + 'A',
        iterator + iterator,
        iterator.toLowerCase(),
        iterator.split('').reverse().join(''),
        bytes.toString('base64url'),
        // Any one character changed.
        ...Array.from(
          iterator,
          (ch, i) => iterator.slice(0, i) + (ch === 'x' ? 'Q' : 'x') + iterator.slice(i + 1),
        ),
      ];
      for (const shardIterator of forged) {
        expect(shardIterator).not.toBe(iterator);
        await expectSdkError(
          sdk.send(new GetRecordsCommand({ ShardIterator: shardIterator })),
          'InvalidArgumentException',
          /ShardIterator/,
        );
      }
      // Same stream name, shard and incarnations on another node: only the signing key differs.
      const other = await gateway.start({ defaultShardLimits: UNLIMITED });
      await createActiveSdk(other.sdk, 's', 2);
      const foreign = await sdkIterator(other.sdk, {
        StreamName: 's',
        ShardId: shardId(0),
        ShardIteratorType: 'TRIM_HORIZON',
      });
      await expectSdkError(
        sdk.send(new GetRecordsCommand({ ShardIterator: foreign })),
        'InvalidArgumentException',
        /ShardIterator/,
      );
      // The native client agrees with the SDK about which iterators are ours.
      expect((await client.getRecords({ shardIterator: iterator })).records).toHaveLength(1);
    });

    it('InvalidArgumentException for tag and retention rules that need the current state', async () => {
      const { sdk } = await gateway.start();
      await createActiveSdk(sdk, 't', 1);
      const tags = (from: number, count: number) =>
        Object.fromEntries(
          Array.from({ length: count }, (_, i) => [`k${String(from + i).padStart(2, '0')}`, 'v']),
        );
      await sdk.send(new AddTagsToStreamCommand({ StreamName: 't', Tags: tags(0, 30) }));
      await expectSdkError(
        sdk.send(new AddTagsToStreamCommand({ StreamName: 't', Tags: tags(30, 21) })),
        'InvalidArgumentException',
        /more than 50 tags/,
      );
      await sdk.send(new AddTagsToStreamCommand({ StreamName: 't', Tags: tags(30, 20) }));
      await sdk.send(new AddTagsToStreamCommand({ StreamName: 't', Tags: { k00: 'changed' } }));
      await expectSdkError(
        sdk.send(new AddTagsToStreamCommand({ StreamName: 't', Tags: { extra: 'x' } })),
        'InvalidArgumentException',
      );
      for (const key of ['aws:owner', 'AWS:owner', 'Aws:x']) {
        await expectSdkError(
          sdk.send(new AddTagsToStreamCommand({ StreamName: 't', Tags: { [key]: 'x' } })),
          'InvalidArgumentException',
          /aws:/,
        );
      }
      const listed = await sdk.send(new ListTagsForStreamCommand({ StreamName: 't', Limit: 50 }));
      expect(listed.Tags).toHaveLength(50);
      expect(listed.Tags![0]).toEqual({ Key: 'k00', Value: 'changed' });

      await sdk.send(
        new IncreaseStreamRetentionPeriodCommand({ StreamName: 't', RetentionPeriodHours: 48 }),
      );
      await expectSdkError(
        sdk.send(
          new IncreaseStreamRetentionPeriodCommand({ StreamName: 't', RetentionPeriodHours: 30 }),
        ),
        'InvalidArgumentException',
        /can not be shorter than existing retention period \(48 hours\).*DecreaseRetentionPeriod/,
      );
      await expectSdkError(
        sdk.send(
          new DecreaseStreamRetentionPeriodCommand({ StreamName: 't', RetentionPeriodHours: 72 }),
        ),
        'InvalidArgumentException',
        /can not be longer than existing retention period \(48 hours\).*IncreaseRetentionPeriod/,
      );
      expect((await waitActive(sdk, 't')).RetentionPeriodHours).toBe(48);
    });

    it('UnsupportedOperationException (HTTP 400) for every SDK operation the gateway does not serve yet', async () => {
      const { sdk, client } = await gateway.start();
      await createActiveSdk(sdk, 's', 1);
      const names = unsupported.map(([operation]) => operation);
      for (const served of ['SplitShard', 'MergeShards', 'UpdateShardCount']) {
        expect(names).not.toContain(served);
      }
      for (const served of [
        'RegisterStreamConsumer',
        'DescribeStreamConsumer',
        'ListStreamConsumers',
        'DeregisterStreamConsumer',
        'SubscribeToShard',
      ]) {
        expect(names).not.toContain(served);
      }
      for (const required of ['StartStreamEncryption', 'EnableEnhancedMonitoring']) {
        expect(names).toContain(required);
      }
      const arn = arnOf('s');
      const input = {
        StreamName: 's',
        StreamARN: arn,
        ResourceARN: arn,
        ConsumerName: 'c',
        ConsumerARN: `${arn}/consumer/c:1`,
        ShardId: shardId(0),
        EncryptionType: 'KMS',
        KeyId: 'alias/aws/kinesis',
        ShardLevelMetrics: ['ALL'],
        StartingPosition: { Type: 'LATEST' },
        Policy: '{}',
        Tags: { a: 'b' },
        TagKeys: ['a'],
        MaxRecordSizeInKiB: 2048,
      };
      const outcomes: Record<string, unknown> = {};
      for (const [operation, Command] of unsupported) {
        outcomes[operation] = await sdk
          .send(new Command(input) as Parameters<KinesisClient['send']>[0])
          .then(
            () => 'succeeded',
            (e: Kinesis.KinesisServiceException) => ({
              name: e.name,
              status: e.$metadata?.httpStatusCode,
              fault: e.$fault,
              namesTheOperation: e.message.includes(operation),
            }),
          );
      }
      const expected = {
        name: 'UnsupportedOperationException',
        status: 400,
        fault: 'client',
        namesTheOperation: true,
      };
      expect(outcomes).toEqual(Object.fromEntries(names.map((n) => [n, expected])));
      // Nothing happened to the stream, and the gateway still serves.
      expect((await waitActive(sdk, 's')).OpenShardCount).toBe(1);
      expect((await client.listStreams()).streamNames).toEqual(['s']);
    });
  });
});
