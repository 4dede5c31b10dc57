import { beforeEach, describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import type { KinesisErrorName } from '../../src/common/errors.js';
import { ShardFilterType } from '../../src/gen/rheos/v1/control.js';
import { ShardIteratorType } from '../../src/gen/rheos/v1/data.js';
import { StreamMode } from '../../src/gen/rheos/v1/stream.js';
import {
  arnOf,
  createActive,
  expectError,
  It,
  iteratorFor,
  MAX_HASH_KEY,
  MiB,
  readShard,
  shardId,
  UNLIMITED,
  useNodes,
} from './helpers.js';

/**
 * Every request check the server makes, one case each: the exact Kinesis error name (a broken
 * API-model constraint is ValidationException; a well-formed request that makes no sense is
 * InvalidArgumentException) and a message that names the problem.
 */

const nodes = useNodes();

interface Ctx {
  readonly client: RheosClient;
  /** A valid TRIM_HORIZON iterator of shard 0 of stream 's'. */
  readonly iterator: string;
  /** The sequence number of a record in shard 0 of stream 's'. */
  readonly sequenceNumber: string;
}

interface Case {
  readonly what: string;
  readonly call: (ctx: Ctx) => Promise<unknown>;
  readonly error: KinesisErrorName;
  readonly message: RegExp;
}

let ctx: Ctx;
beforeEach(async () => {
  const { client } = await nodes.start({ defaultShardLimits: UNLIMITED });
  await createActive(client, 's', 2, { tags: { existing: 'tag' } });
  const { sequenceNumber } = await client.putRecord({
    streamName: 's',
    partitionKey: 'k',
    explicitHashKey: '0',
    data: Buffer.from('seed'),
  });
  const iterator = await iteratorFor(client, 's', shardId(0), It.SHARD_ITERATOR_TYPE_TRIM_HORIZON);
  ctx = { client, iterator, sequenceNumber };
});

const data = Buffer.from('d');
const emoji = (n: number) => '\u{1F600}'.repeat(n);
const record = (extra: Record<string, unknown> = {}) => ({ partitionKey: 'k', data, ...extra });
const put = (c: Ctx, extra: Record<string, unknown>) =>
  c.client.putRecord({ streamName: 's', ...record(), ...extra });
const puts = (c: Ctx, records: Array<Record<string, unknown>>) =>
  c.client.putRecords({ streamName: 's', records });
const iter = (c: Ctx, extra: Record<string, unknown>) =>
  c.client.getShardIterator({
    streamName: 's',
    shardId: shardId(0),
    shardIteratorType: It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    ...extra,
  });
const TWO_128 = (MAX_HASH_KEY + 1n).toString();

const streamNameCases: Case[] = [
  {
    what: 'CreateStream with an empty name',
    call: (c) => c.client.createStream({ streamName: '', shardCount: 1 }),
    error: 'ValidationException',
    message: /Value null at 'streamName' failed to satisfy constraint: Member must not be null/,
  },
  {
    what: 'CreateStream with a 129-character name',
    call: (c) => c.client.createStream({ streamName: 'a'.repeat(129), shardCount: 1 }),
    error: 'ValidationException',
    message: /'streamName'.*length less than or equal to 128/,
  },
  {
    what: 'CreateStream with a space in the name',
    call: (c) => c.client.createStream({ streamName: 'my stream', shardCount: 1 }),
    error: 'ValidationException',
    message: /'streamName'.*regular expression pattern: \[a-zA-Z0-9_.-\]\+/,
  },
  {
    what: 'CreateStream with a slash in the name',
    call: (c) => c.client.createStream({ streamName: 'a/b', shardCount: 1 }),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'CreateStream with a non-ASCII name',
    call: (c) => c.client.createStream({ streamName: 'str\u00e9am', shardCount: 1 }),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'DescribeStreamSummary with neither name nor ARN',
    call: (c) => c.client.describeStreamSummary({}),
    error: 'ValidationException',
    message: /'streamName'.*must not be null/,
  },
  {
    what: 'PutRecord with neither name nor ARN',
    call: (c) => c.client.putRecord(record()),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'PutRecords with a bad name',
    call: (c) => c.client.putRecords({ streamName: 'bad name', records: [record()] }),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'GetShardIterator with a 129-character name',
    call: (c) => iter(c, { streamName: 'x'.repeat(129) }),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'DeleteStream with a bad name',
    call: (c) => c.client.deleteStream({ streamName: 'no*pe' }),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'ListStreams with a bad exclusiveStartStreamName',
    call: (c) => c.client.listStreams({ exclusiveStartStreamName: 'a b' }),
    error: 'ValidationException',
    message: /exclusiveStartStreamName/,
  },
  {
    what: 'ListShards with a bad name',
    call: (c) => c.client.listShards({ streamName: 'a b' }),
    error: 'ValidationException',
    message: /streamName/,
  },
  {
    what: 'two violations at once are both reported',
    call: (c) =>
      c.client.putRecord({ streamName: 'bad name', partitionKey: '', data: Buffer.alloc(0) }),
    error: 'ValidationException',
    message: /^2 validation errors detected: .*streamName.*partitionKey/,
  },
];

const putCases: Case[] = [
  {
    what: 'an empty partition key',
    call: (c) => put(c, { partitionKey: '' }),
    error: 'ValidationException',
    message: /'partitionKey'/,
  },
  {
    what: 'a partition key of 257 characters',
    call: (c) => put(c, { partitionKey: 'p'.repeat(257) }),
    error: 'ValidationException',
    message: /'partitionKey'.*less than or equal to 256/,
  },
  {
    what: 'a partition key of 257 emoji (code points, not UTF-16 units)',
    call: (c) => put(c, { partitionKey: emoji(257) }),
    error: 'ValidationException',
    message: /partitionKey.*256/,
  },
  {
    what: 'data over 1 MiB',
    call: (c) => put(c, { data: Buffer.alloc(MiB + 1) }),
    error: 'ValidationException',
    message: /'data'.*less than or equal to 1048576/,
  },
  {
    what: 'data plus partition key over 1 MiB',
    call: (c) => put(c, { data: Buffer.alloc(MiB), partitionKey: 'k' }),
    error: 'InvalidArgumentException',
    message: /1048577 bytes.*1048576/,
  },
  {
    what: 'data plus a multi-byte partition key over 1 MiB',
    call: (c) => put(c, { data: Buffer.alloc(MiB - 3), partitionKey: '\u{1F600}' }),
    error: 'InvalidArgumentException',
    message: /1048577/,
  },
  {
    what: 'a non-decimal ExplicitHashKey',
    call: (c) => put(c, { explicitHashKey: '0x10' }),
    error: 'ValidationException',
    message: /'explicitHashKey'.*pattern: 0\|\(\[1-9\]\\d\{0,38\}\)/,
  },
  {
    what: 'a negative ExplicitHashKey',
    call: (c) => put(c, { explicitHashKey: '-1' }),
    error: 'ValidationException',
    message: /explicitHashKey/,
  },
  {
    what: 'an ExplicitHashKey with a leading zero',
    call: (c) => put(c, { explicitHashKey: '01' }),
    error: 'ValidationException',
    message: /explicitHashKey/,
  },
  {
    what: 'an ExplicitHashKey of 40 digits',
    call: (c) => put(c, { explicitHashKey: '1' + '0'.repeat(39) }),
    error: 'ValidationException',
    message: /explicitHashKey/,
  },
  {
    what: 'an ExplicitHashKey of 2^128 (out of range)',
    call: (c) => put(c, { explicitHashKey: TWO_128 }),
    error: 'InvalidArgumentException',
    message: /ExplicitHashKey must be in the range: \[0, 340282366920938463463374607431768211455\]/,
  },
  {
    what: 'a malformed sequenceNumberForOrdering',
    call: (c) => put(c, { sequenceNumberForOrdering: 'abc' }),
    error: 'ValidationException',
    message: /'sequenceNumberForOrdering'.*pattern/,
  },
  {
    // The field is optional: sent empty, it is present and does not match the pattern (an empty
    // ExplicitHashKey is refused the same way).
    what: 'an empty sequenceNumberForOrdering',
    call: (c) => put(c, { sequenceNumberForOrdering: '' }),
    error: 'ValidationException',
    message: /sequenceNumberForOrdering/,
  },
  {
    what: 'an empty ExplicitHashKey',
    call: (c) => put(c, { explicitHashKey: '' }),
    error: 'ValidationException',
    message: /explicitHashKey/,
  },
  {
    what: 'a sequenceNumberForOrdering with a leading zero',
    call: (c) => put(c, { sequenceNumberForOrdering: '0123' }),
    error: 'ValidationException',
    message: /sequenceNumberForOrdering/,
  },
  {
    what: 'a sequenceNumberForOrdering of 130 digits',
    call: (c) => put(c, { sequenceNumberForOrdering: '1'.repeat(130) }),
    error: 'ValidationException',
    message: /sequenceNumberForOrdering/,
  },
  {
    what: 'an unknown stream',
    call: (c) => put(c, { streamName: 'nope' }),
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
    call: (c) => puts(c, [record(), record(), record({ partitionKey: '' })]),
    error: 'ValidationException',
    message: /records\.3\.member\.partitionKey/,
  },
  {
    what: 'a 257-character partition key',
    call: (c) => puts(c, [record({ partitionKey: 'p'.repeat(257) })]),
    error: 'ValidationException',
    message: /records\.1\.member\.partitionKey.*256/,
  },
  {
    what: 'data over 1 MiB in one record',
    call: (c) => puts(c, [record(), record({ data: Buffer.alloc(MiB + 1) })]),
    error: 'ValidationException',
    message: /records\.2\.member\.data.*1048576/,
  },
  {
    what: 'data plus partition key over 1 MiB in one record',
    call: (c) => puts(c, [record({ data: Buffer.alloc(MiB) })]),
    error: 'InvalidArgumentException',
    message: /1048577 bytes/,
  },
  {
    what: 'more than 5 MiB in total',
    call: (c) =>
      puts(
        c,
        Array.from({ length: 6 }, () => record({ data: Buffer.alloc(MiB - 100) })),
      ),
    error: 'InvalidArgumentException',
    message: /5 MB/,
  },
  {
    what: 'a malformed ExplicitHashKey',
    call: (c) => puts(c, [record({ explicitHashKey: '1e5' })]),
    error: 'ValidationException',
    message: /records\.1\.member\.explicitHashKey/,
  },
  {
    what: 'an ExplicitHashKey of 2^128',
    call: (c) => puts(c, [record(), record({ explicitHashKey: TWO_128 })]),
    error: 'InvalidArgumentException',
    message: /ExplicitHashKey/,
  },
  {
    what: 'an unknown stream',
    call: (c) => c.client.putRecords({ streamName: 'nope', records: [record()] }),
    error: 'ResourceNotFoundException',
    message: /nope/,
  },
];

const readCases: Case[] = [
  {
    what: 'GetRecords without an iterator',
    call: (c) => c.client.getRecords({}),
    error: 'ValidationException',
    message: /'shardIterator'.*must not be null/,
  },
  {
    what: 'GetRecords with an iterator of 513 characters',
    call: (c) => c.client.getRecords({ shardIterator: 'A'.repeat(513) }),
    error: 'ValidationException',
    message: /'shardIterator'.*less than or equal to 512/,
  },
  {
    what: 'GetRecords with limit 0',
    call: (c) => c.client.getRecords({ shardIterator: c.iterator, limit: 0 }),
    error: 'ValidationException',
    message: /'limit'.*greater than or equal to 1/,
  },
  {
    what: 'GetRecords with limit 10001',
    call: (c) => c.client.getRecords({ shardIterator: c.iterator, limit: 10_001 }),
    error: 'ValidationException',
    message: /'limit'.*less than or equal to 10000/,
  },
  {
    what: 'GetRecords with an invalid iterator of legal length',
    call: (c) => c.client.getRecords({ shardIterator: 'A'.repeat(512) }),
    error: 'InvalidArgumentException',
    message: /ShardIterator/,
  },
  {
    what: 'GetRecords with a malformed StreamARN',
    call: (c) => c.client.getRecords({ shardIterator: c.iterator, streamArn: 'arn:nope' }),
    error: 'ValidationException',
    message: /streamARN/,
  },
  {
    what: 'GetShardIterator without a type',
    call: (c) => iter(c, { shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_UNSPECIFIED }),
    error: 'ValidationException',
    message: /'shardIteratorType'.*enum value set/,
  },
  {
    what: 'GetShardIterator with an unknown type',
    call: (c) => iter(c, { shardIteratorType: ShardIteratorType.UNRECOGNIZED }),
    error: 'ValidationException',
    message: /shardIteratorType/,
  },
  {
    what: 'GetShardIterator without a shard id',
    call: (c) => iter(c, { shardId: '' }),
    error: 'ValidationException',
    message: /'shardId'.*must not be null/,
  },
  {
    what: 'GetShardIterator with a 129-character shard id',
    call: (c) => iter(c, { shardId: 's'.repeat(129) }),
    error: 'ValidationException',
    message: /'shardId'.*128/,
  },
  {
    what: 'GetShardIterator with a malformed sequence number',
    call: (c) =>
      iter(c, {
        shardIteratorType: It.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER,
        startingSequenceNumber: '12a',
      }),
    error: 'ValidationException',
    message: /'startingSequenceNumber'.*pattern/,
  },
  {
    what: 'GetShardIterator AT_SEQUENCE_NUMBER without a sequence number',
    call: (c) => iter(c, { shardIteratorType: It.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER }),
    error: 'InvalidArgumentException',
    message: /StartingSequenceNumber/,
  },
  {
    what: 'GetShardIterator TRIM_HORIZON with a sequence number',
    call: (c) => iter(c, { startingSequenceNumber: c.sequenceNumber }),
    error: 'InvalidArgumentException',
    message: /StartingSequenceNumber/,
  },
  {
    what: 'GetShardIterator AT_TIMESTAMP without a timestamp',
    call: (c) => iter(c, { shardIteratorType: It.SHARD_ITERATOR_TYPE_AT_TIMESTAMP }),
    error: 'InvalidArgumentException',
    message: /timestamp/i,
  },
  {
    what: 'GetShardIterator with a sequence number of another shard',
    call: (c) =>
      iter(c, {
        shardId: shardId(1),
        shardIteratorType: It.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER,
        startingSequenceNumber: c.sequenceNumber,
      }),
    error: 'InvalidArgumentException',
    message: /does not belong to shard shardId-000000000001/,
  },
  {
    what: 'GetShardIterator on an unknown shard',
    call: (c) => iter(c, { shardId: shardId(7) }),
    error: 'ResourceNotFoundException',
    message: /shardId-000000000007/,
  },
];

const controlCases: Case[] = [
  {
    what: 'CreateStream with 0 shards',
    call: (c) => c.client.createStream({ streamName: 'n', shardCount: 0 }),
    error: 'ValidationException',
    message: /'shardCount'.*greater than or equal to 1/,
  },
  {
    what: 'CreateStream with 1,000,001 shards',
    call: (c) => c.client.createStream({ streamName: 'n', shardCount: 1_000_001 }),
    error: 'ValidationException',
    message: /'shardCount'.*less than or equal to/,
  },
  {
    what: 'CreateStream in PROVISIONED mode without a shard count',
    call: (c) => c.client.createStream({ streamName: 'n' }),
    error: 'InvalidArgumentException',
    message: /ShardCount is required/,
  },
  {
    what: 'CreateStream in ON_DEMAND mode with a shard count',
    call: (c) =>
      c.client.createStream({
        streamName: 'n',
        shardCount: 2,
        streamMode: StreamMode.STREAM_MODE_ON_DEMAND,
      }),
    error: 'InvalidArgumentException',
    message: /ShardCount must not be given/,
  },
  {
    what: 'CreateStream with an unknown stream mode',
    call: (c) =>
      c.client.createStream({
        streamName: 'n',
        shardCount: 1,
        streamMode: StreamMode.UNRECOGNIZED,
      }),
    error: 'ValidationException',
    message: /streamMode.*PROVISIONED, ON_DEMAND/,
  },
  {
    what: 'CreateStream with replication factor 0',
    call: (c) => c.client.createStream({ streamName: 'n', shardCount: 1, replicationFactor: 0 }),
    error: 'InvalidArgumentException',
    message: /Replication factor 0/,
  },
  {
    what: 'CreateStream with more replicas than brokers',
    call: (c) => c.client.createStream({ streamName: 'n', shardCount: 1, replicationFactor: 2 }),
    error: 'InvalidArgumentException',
    message: /Replication factor 2/,
  },
  {
    what: 'CreateStream with an empty tag key',
    call: (c) => c.client.createStream({ streamName: 'n', shardCount: 1, tags: { '': 'v' } }),
    error: 'ValidationException',
    message: /'tags.key'.*greater than or equal to 1/,
  },
  {
    what: 'CreateStream with a tag key of 129 characters',
    call: (c) =>
      c.client.createStream({ streamName: 'n', shardCount: 1, tags: { ['k'.repeat(129)]: 'v' } }),
    error: 'ValidationException',
    message: /'tags.key'.*128/,
  },
  {
    what: 'CreateStream with a tag value of 257 characters',
    call: (c) =>
      c.client.createStream({ streamName: 'n', shardCount: 1, tags: { k: 'v'.repeat(257) } }),
    error: 'ValidationException',
    message: /'tags.value'.*256/,
  },
  {
    what: 'CreateStream with a forbidden character in a tag key',
    call: (c) => c.client.createStream({ streamName: 'n', shardCount: 1, tags: { 'a!b': 'v' } }),
    error: 'ValidationException',
    message: /'tags.key'.*pattern/,
  },
  {
    what: "CreateStream with an 'aws:' tag",
    call: (c) => c.client.createStream({ streamName: 'n', shardCount: 1, tags: { 'aws:x': 'v' } }),
    error: 'InvalidArgumentException',
    message: /aws:/,
  },
  {
    what: 'DescribeStream with limit 0',
    call: (c) => c.client.describeStream({ streamName: 's', limit: 0 }),
    error: 'ValidationException',
    message: /'limit'.*greater than or equal to 1/,
  },
  {
    what: 'DescribeStream with limit 10001',
    call: (c) => c.client.describeStream({ streamName: 's', limit: 10_001 }),
    error: 'ValidationException',
    message: /'limit'.*10000/,
  },
  {
    what: 'DescribeStream with a malformed exclusiveStartShardId',
    call: (c) => c.client.describeStream({ streamName: 's', exclusiveStartShardId: 'a b' }),
    error: 'ValidationException',
    message: /exclusiveStartShardId/,
  },
  {
    what: 'ListStreams with limit 0',
    call: (c) => c.client.listStreams({ limit: 0 }),
    error: 'ValidationException',
    message: /'limit'.*greater than or equal to 1/,
  },
  {
    what: 'ListStreams with limit 10001',
    call: (c) => c.client.listStreams({ limit: 10_001 }),
    error: 'ValidationException',
    message: /'limit'.*10000/,
  },
  {
    what: 'ListStreams with a garbage nextToken',
    call: (c) => c.client.listStreams({ nextToken: 'eyJ2IjoyfQ' }),
    error: 'InvalidArgumentException',
    message: /NextToken/,
  },
  {
    what: 'ListShards with maxResults 0',
    call: (c) => c.client.listShards({ streamName: 's', maxResults: 0 }),
    error: 'ValidationException',
    message: /'maxResults'.*greater than or equal to 1/,
  },
  {
    what: 'ListShards with maxResults 10001',
    call: (c) => c.client.listShards({ streamName: 's', maxResults: 10_001 }),
    error: 'ValidationException',
    message: /'maxResults'.*10000/,
  },
  {
    what: 'ListShards with a malformed exclusiveStartShardId',
    call: (c) => c.client.listShards({ streamName: 's', exclusiveStartShardId: 'a b' }),
    error: 'ValidationException',
    message: /exclusiveStartShardId/,
  },
  {
    what: 'ListShards with an unknown filter type',
    call: (c) =>
      c.client.listShards({ streamName: 's', shardFilter: { type: ShardFilterType.UNRECOGNIZED } }),
    error: 'ValidationException',
    message: /shardFilter.type/,
  },
  {
    what: 'ListShards with neither stream nor nextToken',
    call: (c) => c.client.listShards({ maxResults: 5 }),
    error: 'InvalidArgumentException',
    message: /NextToken or StreamName/,
  },
  {
    what: 'AddTagsToStream with no tags',
    call: (c) => c.client.addTagsToStream({ streamName: 's', tags: {} }),
    error: 'ValidationException',
    message: /'tags'.*greater than or equal to 1/,
  },
  {
    what: 'AddTagsToStream with 51 tags',
    call: (c) =>
      c.client.addTagsToStream({
        streamName: 's',
        tags: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])),
      }),
    error: 'ValidationException',
    message: /'tags'.*less than or equal to 50/,
  },
  {
    what: 'AddTagsToStream with a forbidden character in a value',
    call: (c) => c.client.addTagsToStream({ streamName: 's', tags: { k: 'a#b' } }),
    error: 'ValidationException',
    message: /'tags.value'.*pattern/,
  },
  {
    what: "AddTagsToStream with an 'aws:' key",
    call: (c) => c.client.addTagsToStream({ streamName: 's', tags: { 'aws:k': 'v' } }),
    error: 'InvalidArgumentException',
    message: /aws:/,
  },
  {
    what: 'RemoveTagsFromStream with no keys',
    call: (c) => c.client.removeTagsFromStream({ streamName: 's', tagKeys: [] }),
    error: 'ValidationException',
    message: /'tagKeys'.*greater than or equal to 1/,
  },
  {
    what: 'RemoveTagsFromStream with 51 keys',
    call: (c) =>
      c.client.removeTagsFromStream({
        streamName: 's',
        tagKeys: Array.from({ length: 51 }, (_, i) => `k${i}`),
      }),
    error: 'ValidationException',
    message: /'tagKeys'.*less than or equal to 50/,
  },
  {
    what: 'RemoveTagsFromStream with an empty key',
    call: (c) => c.client.removeTagsFromStream({ streamName: 's', tagKeys: ['ok', ''] }),
    error: 'ValidationException',
    message: /tagKeys\.2\.member/,
  },
  {
    what: 'ListTagsForStream with limit 0',
    call: (c) => c.client.listTagsForStream({ streamName: 's', limit: 0 }),
    error: 'ValidationException',
    message: /'limit'.*greater than or equal to 1/,
  },
  {
    what: 'ListTagsForStream with limit 51',
    call: (c) => c.client.listTagsForStream({ streamName: 's', limit: 51 }),
    error: 'ValidationException',
    message: /'limit'.*less than or equal to 50/,
  },
  {
    what: 'ListTagsForStream with an exclusiveStartTagKey of 129 characters',
    call: (c) =>
      c.client.listTagsForStream({ streamName: 's', exclusiveStartTagKey: 'k'.repeat(129) }),
    error: 'ValidationException',
    message: /exclusiveStartTagKey/,
  },
  {
    what: 'IncreaseStreamRetentionPeriod to 0 hours (missing)',
    call: (c) =>
      c.client.increaseStreamRetentionPeriod({ streamName: 's', retentionPeriodHours: 0 }),
    error: 'ValidationException',
    message: /'retentionPeriodHours'.*must not be null/,
  },
  {
    what: 'IncreaseStreamRetentionPeriod to 23 hours',
    call: (c) =>
      c.client.increaseStreamRetentionPeriod({ streamName: 's', retentionPeriodHours: 23 }),
    error: 'InvalidArgumentException',
    message: /Minimum allowed retention period is 24 hours/,
  },
  {
    what: 'IncreaseStreamRetentionPeriod to 8761 hours',
    call: (c) =>
      c.client.increaseStreamRetentionPeriod({ streamName: 's', retentionPeriodHours: 8761 }),
    error: 'InvalidArgumentException',
    message: /Maximum allowed retention period is 8760 hours/,
  },
  {
    what: 'DecreaseStreamRetentionPeriod to 0 hours (missing)',
    call: (c) =>
      c.client.decreaseStreamRetentionPeriod({ streamName: 's', retentionPeriodHours: 0 }),
    error: 'ValidationException',
    message: /retentionPeriodHours/,
  },
  {
    what: 'DecreaseStreamRetentionPeriod to 23 hours',
    call: (c) =>
      c.client.decreaseStreamRetentionPeriod({ streamName: 's', retentionPeriodHours: 23 }),
    error: 'InvalidArgumentException',
    message: /Minimum allowed retention period is 24 hours/,
  },
  {
    what: 'DecreaseStreamRetentionPeriod above the current period',
    call: (c) =>
      c.client.decreaseStreamRetentionPeriod({ streamName: 's', retentionPeriodHours: 25 }),
    error: 'InvalidArgumentException',
    message: /can not be longer than existing retention period \(24 hours\)/,
  },
  {
    what: 'UpdateStreamMode without a mode',
    call: (c) => c.client.updateStreamMode({ streamName: 's' }),
    error: 'ValidationException',
    message: /streamMode.*must not be null/,
  },
  {
    what: 'UpdateStreamMode with an unknown mode',
    call: (c) =>
      c.client.updateStreamMode({ streamName: 's', streamMode: StreamMode.UNRECOGNIZED }),
    error: 'ValidationException',
    message: /streamMode.*enum value set/,
  },
];

const arnCases: Case[] = [
  {
    what: 'a StreamARN that is not an ARN',
    call: (c) => c.client.describeStreamSummary({ streamArn: 'not-an-arn' }),
    error: 'ValidationException',
    message: /'streamARN'.*arn:aws/,
  },
  {
    what: 'a StreamARN of another service',
    call: (c) =>
      c.client.describeStream({ streamArn: `arn:aws:sqs:us-east-1:${'0'.repeat(12)}:stream/s` }),
    error: 'ValidationException',
    message: /streamARN/,
  },
  {
    what: 'a StreamARN with an 11-digit account',
    call: (c) =>
      c.client.putRecord({
        streamArn: 'arn:aws:kinesis:us-east-1:00000000000:stream/s',
        ...record(),
      }),
    error: 'ValidationException',
    message: /streamARN/,
  },
  {
    what: 'a StreamARN without a stream name',
    call: (c) =>
      c.client.listShards({ streamArn: 'arn:aws:kinesis:us-east-1:000000000000:stream/' }),
    error: 'ValidationException',
    message: /streamARN/,
  },
  {
    what: 'a StreamARN of another account',
    call: (c) =>
      c.client.describeStreamSummary({
        streamArn: 'arn:aws:kinesis:us-east-1:123456789012:stream/s',
      }),
    error: 'ResourceNotFoundException',
    message: /123456789012/,
  },
  {
    what: 'a StreamARN of another region',
    call: (c) =>
      c.client.putRecords({
        streamArn: 'arn:aws:kinesis:eu-west-1:000000000000:stream/s',
        records: [record()],
      }),
    error: 'ResourceNotFoundException',
    message: /eu-west-1/,
  },
  {
    what: 'a StreamARN and a StreamName that disagree',
    call: (c) => iter(c, { streamName: 's', streamArn: arnOf('t') }),
    error: 'InvalidArgumentException',
    message: /name different streams/,
  },
];

const unknownStream = 'nope';
const notFoundCases: Case[] = (
  [
    ['DeleteStream', (c) => c.client.deleteStream({ streamName: unknownStream })],
    ['DescribeStream', (c) => c.client.describeStream({ streamName: unknownStream })],
    ['DescribeStreamSummary', (c) => c.client.describeStreamSummary({ streamName: unknownStream })],
    ['ListShards', (c) => c.client.listShards({ streamName: unknownStream })],
    [
      'AddTagsToStream',
      (c) => c.client.addTagsToStream({ streamName: unknownStream, tags: { a: 'b' } }),
    ],
    [
      'RemoveTagsFromStream',
      (c) => c.client.removeTagsFromStream({ streamName: unknownStream, tagKeys: ['a'] }),
    ],
    ['ListTagsForStream', (c) => c.client.listTagsForStream({ streamName: unknownStream })],
    [
      'IncreaseStreamRetentionPeriod',
      (c) =>
        c.client.increaseStreamRetentionPeriod({
          streamName: unknownStream,
          retentionPeriodHours: 48,
        }),
    ],
    [
      'DecreaseStreamRetentionPeriod',
      (c) =>
        c.client.decreaseStreamRetentionPeriod({
          streamName: unknownStream,
          retentionPeriodHours: 24,
        }),
    ],
    [
      'UpdateStreamMode',
      (c) =>
        c.client.updateStreamMode({
          streamName: unknownStream,
          streamMode: StreamMode.STREAM_MODE_ON_DEMAND,
        }),
    ],
    ['PutRecord', (c) => put(c, { streamName: unknownStream })],
    ['PutRecords', (c) => c.client.putRecords({ streamName: unknownStream, records: [record()] })],
    ['GetShardIterator', (c) => iter(c, { streamName: unknownStream })],
    ['DescribeStream by ARN', (c) => c.client.describeStream({ streamArn: arnOf(unknownStream) })],
  ] as Array<[string, (c: Ctx) => Promise<unknown>]>
).map(([what, call]) => ({
  what,
  call,
  error: 'ResourceNotFoundException' as const,
  message: /Stream nope under account 000000000000 not found/,
}));

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
    await expectError(c.call(ctx), c.error, c.message);
  });
});

describe('64-bit fields beyond 2^53 (e.g. a timestamp in nanoseconds)', () => {
  // A value the server cannot represent is the caller's mistake: it must come back as a definite,
  // non-retriable client error, not as an InternalFailure that clients retry forever.
  const NANOS = 1_790_000_000_000_000_000; // far above Number.MAX_SAFE_INTEGER
  const cases: Array<[string, (c: Ctx) => Promise<unknown>]> = [
    [
      'GetShardIterator AT_TIMESTAMP',
      (c) =>
        iter(c, { shardIteratorType: It.SHARD_ITERATOR_TYPE_AT_TIMESTAMP, timestampMs: NANOS }),
    ],
    [
      'ListShards streamCreationTimestamp',
      (c) => c.client.listShards({ streamName: 's', streamCreationTimestampMs: NANOS }),
    ],
    [
      'ListShards FROM_TIMESTAMP filter',
      (c) =>
        c.client.listShards({
          streamName: 's',
          shardFilter: {
            type: ShardFilterType.SHARD_FILTER_TYPE_FROM_TIMESTAMP,
            timestampMs: NANOS,
          },
        }),
    ],
    [
      'CreateStream shardLimits',
      (c) =>
        c.client.createStream({
          streamName: 'n',
          shardCount: 1,
          shardLimits: { ...UNLIMITED, writeBytesPerSecond: 2 ** 60 },
        }),
    ],
  ];
  it.each(cases)('%s is refused as a client error', async (_what, call) => {
    const error = await call(ctx).then(
      () => undefined,
      (e: unknown) => e as { name: string; retriable: boolean; message: string },
    );
    expect(error).toBeDefined();
    expect({ name: error!.name, retriable: error!.retriable, message: error!.message }).toEqual({
      name: expect.stringMatching(/^(ValidationException|InvalidArgumentException)$/),
      retriable: false,
      message: expect.stringMatching(/\w{3,}/),
    });
  });
});

describe('nothing is written by a rejected request', () => {
  it('stores no record of a PutRecords that fails validation after valid records', async () => {
    const { client } = ctx;
    const failing = [
      [record({ explicitHashKey: '0' }), record({ explicitHashKey: TWO_128 })],
      [record({ explicitHashKey: '0' }), record({ explicitHashKey: '0', data: Buffer.alloc(MiB) })],
      Array.from({ length: 6 }, () =>
        record({ explicitHashKey: '0', data: Buffer.alloc(MiB - 1) }),
      ),
      [record({ explicitHashKey: '0' }), record({ explicitHashKey: '0', partitionKey: '' })],
    ];
    for (const records of failing) {
      await expect(client.putRecords({ streamName: 's', records })).rejects.toBeDefined();
    }
    await expect(
      client.putRecord({ streamName: 's', ...record({ explicitHashKey: TWO_128 }) }),
    ).rejects.toBeDefined();
    expect((await readShard(client, 's', shardId(0))).map((r) => r.data.toString())).toEqual([
      'seed',
    ]);
  });
});

describe('limits that are allowed', () => {
  it('accepts the largest legal values', async () => {
    const { client, sequenceNumber } = ctx;
    await createActive(client, 'n'.repeat(128), 1);
    await client.putRecord({ streamName: 's', partitionKey: emoji(256), data });
    await client.putRecord({ streamName: 's', partitionKey: 'p'.repeat(256), data });
    await client.putRecord({
      streamName: 's',
      ...record({ explicitHashKey: MAX_HASH_KEY.toString() }),
    });
    await client.putRecord({ streamName: 's', ...record({ explicitHashKey: '0' }) });
    await client.putRecord({
      streamName: 's',
      ...record({ sequenceNumberForOrdering: sequenceNumber }),
    });
    await client.putRecord({ streamName: 's', ...record({ sequenceNumberForOrdering: '0' }) });
    // Exactly 5 MiB in one PutRecords.
    const fiveMiB = await client.putRecords({
      streamName: 's',
      records: Array.from({ length: 5 }, () => ({
        partitionKey: 'k',
        data: Buffer.alloc(MiB - 1),
      })),
    });
    expect(fiveMiB.failedRecordCount).toBe(0);
    const five = await client.putRecords({
      streamName: 's',
      records: Array.from({ length: 500 }, () => record()),
    });
    expect(five.failedRecordCount).toBe(0);
    const { shardIterator } = await client.getShardIterator({
      streamName: 's',
      shardId: shardId(0),
      shardIteratorType: It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    });
    expect(shardIterator.length).toBeLessThanOrEqual(512);
    await client.getRecords({ shardIterator, limit: 10_000 });
    await client.getRecords({ shardIterator, limit: 1 });
    await client.listStreams({ limit: 10_000 });
    await client.listShards({ streamName: 's', maxResults: 10_000 });
    await client.describeStream({ streamName: 's', limit: 10_000 });
    await client.listTagsForStream({ streamName: 's', limit: 50 });
    await client.addTagsToStream({
      streamName: 's',
      tags: { ['k'.repeat(128)]: 'v'.repeat(256), 'a b_.:/=+-@%': '' },
    });
    await client.increaseStreamRetentionPeriod({ streamName: 's', retentionPeriodHours: 8760 });
    await client.decreaseStreamRetentionPeriod({ streamName: 's', retentionPeriodHours: 24 });
  });
});
