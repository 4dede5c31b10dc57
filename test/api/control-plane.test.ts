import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { ShardFilterType } from '../../src/gen/rheos/v1/control.js';
import {
  EncryptionType,
  StreamMode,
  StreamStatus,
  type Shard,
} from '../../src/gen/rheos/v1/stream.js';
import {
  ACCOUNT,
  arnOf,
  createActive,
  expectContiguousRanges,
  expectError,
  It,
  iteratorFor,
  listAllShards,
  MAX_HASH_KEY,
  readShard,
  SEQUENCE_NUMBER,
  shardId,
  ShardOpenGate,
  UNLIMITED,
  useNodes,
  waitForStreamGone,
} from './helpers.js';

const nodes = useNodes();

const ids = (shards: readonly Shard[]) => shards.map((s) => s.shardId);

describe('CreateStream', () => {
  it('creates a provisioned stream with the requested shards, defaults and metadata', async () => {
    const clock = new ManualClock(1_750_000_000_000);
    const { client } = await nodes.start({ clock });
    await createActive(client, 'orders', 3);
    const { streamDescription: d } = await client.describeStream({ streamName: 'orders' });
    expect(d).toMatchObject({
      streamName: 'orders',
      streamArn: `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/orders`,
      streamStatus: StreamStatus.STREAM_STATUS_ACTIVE,
      streamMode: StreamMode.STREAM_MODE_PROVISIONED,
      retentionPeriodHours: 24,
      streamCreationTimestampMs: 1_750_000_000_000,
      hasMoreShards: false,
      encryptionType: EncryptionType.ENCRYPTION_TYPE_NONE,
    });
    expect(ids(d!.shards)).toEqual([shardId(0), shardId(1), shardId(2)]);
    for (const shard of d!.shards) {
      expect(shard.parentShardId).toBe('');
      expect(shard.sequenceNumberRange!.startingSequenceNumber).toMatch(SEQUENCE_NUMBER);
      expect(shard.sequenceNumberRange!.endingSequenceNumber).toBe('');
    }
    const starts = d!.shards.map((s) => s.sequenceNumberRange!.startingSequenceNumber);
    expect(new Set(starts).size).toBe(3);
    expectContiguousRanges(d!.shards);

    const { streamDescriptionSummary: summary } = await client.describeStreamSummary({
      streamName: 'orders',
    });
    expect(summary).toMatchObject({
      streamName: 'orders',
      streamArn: arnOf('orders'),
      streamStatus: StreamStatus.STREAM_STATUS_ACTIVE,
      streamMode: StreamMode.STREAM_MODE_PROVISIONED,
      openShardCount: 3,
      consumerCount: 0,
      retentionPeriodHours: 24,
      streamCreationTimestampMs: 1_750_000_000_000,
    });
  });

  it('is CREATING until its shards are open, then ACTIVE', async () => {
    const gate = new ShardOpenGate();
    const { client } = await nodes.start({ wrapKv: gate.wrap });
    gate.hold();
    try {
      await client.createStream({ streamName: 'slow', shardCount: 2 });
      const summary = async () =>
        (await client.describeStreamSummary({ streamName: 'slow' })).streamDescriptionSummary!;
      expect((await summary()).streamStatus).toBe(StreamStatus.STREAM_STATUS_CREATING);
      const listed = await client.listStreams();
      expect(listed.streamSummaries).toEqual([
        expect.objectContaining({
          streamName: 'slow',
          streamStatus: StreamStatus.STREAM_STATUS_CREATING,
        }),
      ]);
      // Not ACTIVE: the data plane does not serve it and state changes are refused.
      await expectError(
        client.putRecord({ streamName: 'slow', partitionKey: 'k', data: Buffer.from('x') }),
        'ResourceNotFoundException',
        /slow/,
      );
      await expectError(
        client.getShardIterator({
          streamName: 'slow',
          shardId: shardId(0),
          shardIteratorType: It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
        }),
        'ResourceNotFoundException',
      );
      await expectError(
        client.listShards({ streamName: 'slow' }),
        'ResourceInUseException',
        /slow/,
      );
      await expectError(client.deleteStream({ streamName: 'slow' }), 'ResourceInUseException');
      await expectError(
        client.addTagsToStream({ streamName: 'slow', tags: { a: 'b' } }),
        'ResourceInUseException',
      );
      await expectError(
        client.increaseStreamRetentionPeriod({ streamName: 'slow', retentionPeriodHours: 48 }),
        'ResourceInUseException',
      );
      expect((await summary()).streamStatus).toBe(StreamStatus.STREAM_STATUS_CREATING);
    } finally {
      gate.release();
    }
    await client.waitForStreamActive('slow', 30_000, 5);
    const put = await client.putRecord({
      streamName: 'slow',
      partitionKey: 'k',
      data: Buffer.from('x'),
    });
    expect(put.sequenceNumber).toMatch(SEQUENCE_NUMBER);
  });

  it('gives ON_DEMAND streams 4 shards over the whole hash space', async () => {
    const { client } = await nodes.start();
    await client.createStream({
      streamName: 'od',
      streamMode: StreamMode.STREAM_MODE_ON_DEMAND,
    });
    await client.waitForStreamActive('od', 30_000, 5);
    const { streamDescriptionSummary: s } = await client.describeStreamSummary({
      streamName: 'od',
    });
    expect(s!.streamMode).toBe(StreamMode.STREAM_MODE_ON_DEMAND);
    expect(s!.openShardCount).toBe(4);
    const shards = await listAllShards(client, 'od');
    expect(ids(shards)).toEqual([0, 1, 2, 3].map(shardId));
    expectContiguousRanges(shards);
  });

  it('refuses a second stream of the same name with ResourceInUseException', async () => {
    const { client } = await nodes.start();
    await createActive(client, 'dup', 1, { tags: { owner: 'first' } });
    await expectError(
      client.createStream({ streamName: 'dup', shardCount: 5 }),
      'ResourceInUseException',
      /dup.*already exists/,
    );
    // The original is untouched.
    const { streamDescriptionSummary: s } = await client.describeStreamSummary({
      streamName: 'dup',
    });
    expect(s!.openShardCount).toBe(1);
    expect((await client.listTagsForStream({ streamName: 'dup' })).tags).toEqual([
      { key: 'owner', value: 'first' },
    ]);
  });

  it('enforces the account shard limit with LimitExceededException', async () => {
    const { client } = await nodes.start({
      accountLimits: { shardLimit: 6, onDemandStreamCountLimit: 10 },
    });
    await createActive(client, 'a', 4);
    await expectError(
      client.createStream({ streamName: 'b', shardCount: 3 }),
      'LimitExceededException',
      /shard limit.*Current shard count for the account: 4.*Limit: 6/,
    );
    await expectError(
      client.describeStreamSummary({ streamName: 'b' }),
      'ResourceNotFoundException',
    );
    // An on-demand stream needs 4 shards: too many as well.
    await expectError(
      client.createStream({ streamName: 'od', streamMode: StreamMode.STREAM_MODE_ON_DEMAND }),
      'LimitExceededException',
    );
    await createActive(client, 'b', 2);
    await expect(client.describeLimits()).resolves.toEqual({
      shardLimit: 6,
      openShardCount: 6,
      onDemandStreamCount: 0,
      onDemandStreamCountLimit: 10,
    });
    await expectError(
      client.createStream({ streamName: 'c', shardCount: 1 }),
      'LimitExceededException',
    );
  });

  it('enforces the on-demand stream count limit on create and on UpdateStreamMode', async () => {
    const { client } = await nodes.start({
      accountLimits: { shardLimit: 100, onDemandStreamCountLimit: 1 },
    });
    await client.createStream({ streamName: 'od1', streamMode: StreamMode.STREAM_MODE_ON_DEMAND });
    await client.waitForStreamActive('od1', 30_000, 5);
    await expectError(
      client.createStream({ streamName: 'od2', streamMode: StreamMode.STREAM_MODE_ON_DEMAND }),
      'LimitExceededException',
      /on-demand stream count limit of 1/,
    );
    await createActive(client, 'prov', 1);
    await expectError(
      client.updateStreamMode({ streamName: 'prov', streamMode: StreamMode.STREAM_MODE_ON_DEMAND }),
      'LimitExceededException',
      /on-demand/,
    );
    const { streamDescriptionSummary: s } = await client.describeStreamSummary({
      streamName: 'prov',
    });
    expect(s!.streamMode).toBe(StreamMode.STREAM_MODE_PROVISIONED);
    await expect(client.describeLimits()).resolves.toMatchObject({
      onDemandStreamCount: 1,
      onDemandStreamCountLimit: 1,
      openShardCount: 5,
    });
  });

  it('stores tags given at creation', async () => {
    const { client } = await nodes.start();
    await createActive(client, 'tagged', 1, { tags: { team: 'data', env: 'prod', 'a.b/c': '' } });
    expect((await client.listTagsForStream({ streamName: 'tagged' })).tags).toEqual([
      { key: 'a.b/c', value: '' },
      { key: 'env', value: 'prod' },
      { key: 'team', value: 'data' },
    ]);
  });
});

describe('DeleteStream', () => {
  it('removes the stream and its data; the name can be reused by a new, unrelated stream', async () => {
    const { client } = await nodes.start({ defaultShardLimits: UNLIMITED });
    await createActive(client, 'gone', 2);
    const oldShards = await listAllShards(client, 'gone');
    const put = await client.putRecords({
      streamName: 'gone',
      records: Array.from({ length: 20 }, (_, i) => ({
        partitionKey: `k${i}`,
        data: Buffer.from(`old-${i}`),
      })),
    });
    expect(put.failedRecordCount).toBe(0);
    const oldSequenceNumbers = put.records.map((r) => r.sequenceNumber);
    const oldIterator = await iteratorFor(
      client,
      'gone',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    const firstPage = await client.listShards({ streamName: 'gone', maxResults: 1 });
    expect(firstPage.nextToken).not.toBe('');

    await client.deleteStream({ streamName: 'gone' });
    // The data plane stops at once, before the data is gone.
    await expectError(
      client.putRecord({ streamName: 'gone', partitionKey: 'k', data: Buffer.from('x') }),
      'ResourceNotFoundException',
      /Stream gone under account 000000000000 not found/,
    );
    await expectError(
      client.getRecords({ shardIterator: oldIterator }),
      'ResourceNotFoundException',
    );

    await waitForStreamGone(client, 'gone');
    expect((await client.listStreams()).streamNames).not.toContain('gone');
    await expectError(client.describeStream({ streamName: 'gone' }), 'ResourceNotFoundException');
    await expectError(client.listShards({ streamName: 'gone' }), 'ResourceNotFoundException');
    await expectError(client.deleteStream({ streamName: 'gone' }), 'ResourceNotFoundException');
    await expectError(
      client.getShardIterator({
        streamName: 'gone',
        shardId: shardId(0),
        shardIteratorType: It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
      }),
      'ResourceNotFoundException',
    );

    await createActive(client, 'gone', 2);
    const newShards = await listAllShards(client, 'gone');
    expect(ids(newShards)).toEqual(ids(oldShards));
    for (let i = 0; i < 2; i++) {
      expect(newShards[i]!.sequenceNumberRange!.startingSequenceNumber).not.toBe(
        oldShards[i]!.sequenceNumberRange!.startingSequenceNumber,
      );
      expect(await readShard(client, 'gone', shardId(i))).toEqual([]);
    }
    // Tokens of the old stream do not leak into the new one.
    await expectError(
      client.getRecords({ shardIterator: oldIterator }),
      'ResourceNotFoundException',
    );
    await expectError(
      client.listShards({ nextToken: firstPage.nextToken }),
      'ResourceNotFoundException',
    );
    const oldOnShard0 = put.records.find((r) => r.shardId === shardId(0))!.sequenceNumber;
    await expectError(
      client.getShardIterator({
        streamName: 'gone',
        shardId: shardId(0),
        shardIteratorType: It.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER,
        startingSequenceNumber: oldOnShard0,
      }),
      'InvalidArgumentException',
      /StartingSequenceNumber/,
    );
    const again = await client.putRecords({
      streamName: 'gone',
      records: Array.from({ length: 20 }, (_, i) => ({
        partitionKey: `k${i}`,
        data: Buffer.from(`new-${i}`),
      })),
    });
    for (const r of again.records) expect(oldSequenceNumbers).not.toContain(r.sequenceNumber);
    const all = [
      ...(await readShard(client, 'gone', shardId(0))),
      ...(await readShard(client, 'gone', shardId(1))),
    ];
    expect(all.map((r) => r.data.toString()).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `new-${i}`).sort(),
    );
  });

  it('accepts the stream ARN', async () => {
    const { client } = await nodes.start();
    await createActive(client, 'by-arn', 1);
    await client.deleteStream({ streamArn: arnOf('by-arn') });
    await waitForStreamGone(client, 'by-arn');
  });
});

describe('DescribeStream', () => {
  it('pages through 150 shards, at most 100 at a time', async () => {
    const { client } = await nodes.start();
    await createActive(client, 'wide', 150);
    const first = (await client.describeStream({ streamName: 'wide' })).streamDescription!;
    expect(first.shards).toHaveLength(100);
    expect(first.hasMoreShards).toBe(true);
    const capped = (await client.describeStream({ streamName: 'wide', limit: 200 }))
      .streamDescription!;
    expect(capped.shards).toHaveLength(100);
    expect(capped.hasMoreShards).toBe(true);
    const rest = (
      await client.describeStream({
        streamName: 'wide',
        exclusiveStartShardId: first.shards[99]!.shardId,
        limit: 100,
      })
    ).streamDescription!;
    expect(rest.shards).toHaveLength(50);
    expect(rest.hasMoreShards).toBe(false);
    const all = [...first.shards, ...rest.shards];
    expect(ids(all)).toEqual(Array.from({ length: 150 }, (_, i) => shardId(i)));
    expectContiguousRanges(all);

    // Small pages, following exclusiveStartShardId, visit every shard exactly once.
    const seen: string[] = [];
    let after = '';
    for (let pages = 0; pages < 100; pages++) {
      const page = (
        await client.describeStream({ streamName: 'wide', limit: 7, exclusiveStartShardId: after })
      ).streamDescription!;
      expect(page.shards.length).toBeLessThanOrEqual(7);
      seen.push(...ids(page.shards));
      if (!page.hasMoreShards) break;
      expect(page.shards).toHaveLength(7);
      after = page.shards[page.shards.length - 1]!.shardId;
    }
    expect(seen).toEqual(ids(all));
    const end = (
      await client.describeStream({ streamName: 'wide', exclusiveStartShardId: shardId(149) })
    ).streamDescription!;
    expect(end.shards).toEqual([]);
    expect(end.hasMoreShards).toBe(false);
  });

  it('splits the hash space into contiguous, near-equal ranges for any shard count', async () => {
    const { client } = await nodes.start();
    for (const count of [1, 2, 3, 7]) {
      await createActive(client, `s${count}`, count);
      const shards = (await client.describeStream({ streamName: `s${count}` })).streamDescription!
        .shards;
      expect(shards).toHaveLength(count);
      expectContiguousRanges(shards);
      const widths = shards.map(
        (s) => BigInt(s.hashKeyRange!.endingHashKey) - BigInt(s.hashKeyRange!.startingHashKey) + 1n,
      );
      const ideal = (MAX_HASH_KEY + 1n) / BigInt(count);
      for (const w of widths) {
        expect(w >= ideal && w <= ideal + BigInt(count)).toBe(true);
      }
    }
    const one = (await client.describeStream({ streamName: 's1' })).streamDescription!.shards[0]!;
    expect(one.hashKeyRange).toEqual({
      startingHashKey: '0',
      endingHashKey: '340282366920938463463374607431768211455',
    });
  });
});

describe('ListStreams', () => {
  it('pages with limit, exclusiveStartStreamName and nextToken, in name order', async () => {
    const clock = new ManualClock();
    const { client } = await nodes.start({ clock });
    const names = ['echo', 'alpha', 'delta', 'charlie', 'bravo'];
    for (const name of names) await client.createStream({ streamName: name, shardCount: 1 });
    for (const name of names) await client.waitForStreamActive(name, 30_000, 5);
    const sorted = [...names].sort();

    const all = await client.listStreams();
    expect(all.streamNames).toEqual(sorted);
    expect(all.hasMoreStreams).toBe(false);
    expect(all.nextToken).toBe('');
    expect(all.streamSummaries.map((s) => s.streamArn)).toEqual(sorted.map(arnOf));
    for (const s of all.streamSummaries) {
      expect(s.streamStatus).toBe(StreamStatus.STREAM_STATUS_ACTIVE);
      expect(s.streamMode).toBe(StreamMode.STREAM_MODE_PROVISIONED);
      expect(s.streamCreationTimestampMs).toBe(clock.nowMs());
    }

    const p1 = await client.listStreams({ limit: 2 });
    expect(p1.streamNames).toEqual(['alpha', 'bravo']);
    expect(p1.hasMoreStreams).toBe(true);
    expect(p1.nextToken).not.toBe('');
    const p2 = await client.listStreams({ limit: 2, nextToken: p1.nextToken });
    expect(p2.streamNames).toEqual(['charlie', 'delta']);
    expect(p2.hasMoreStreams).toBe(true);
    const p3 = await client.listStreams({ limit: 2, nextToken: p2.nextToken });
    expect(p3.streamNames).toEqual(['echo']);
    expect(p3.hasMoreStreams).toBe(false);
    expect(p3.nextToken).toBe('');

    const afterBravo = await client.listStreams({ exclusiveStartStreamName: 'bravo', limit: 2 });
    expect(afterBravo.streamNames).toEqual(['charlie', 'delta']);
    expect(afterBravo.hasMoreStreams).toBe(true);
    const afterB = await client.listStreams({ exclusiveStartStreamName: 'b' });
    expect(afterB.streamNames).toEqual(['bravo', 'charlie', 'delta', 'echo']);
    const afterLast = await client.listStreams({ exclusiveStartStreamName: 'echo' });
    expect(afterLast.streamNames).toEqual([]);
    expect(afterLast.hasMoreStreams).toBe(false);
  });

  it('expires nextToken after 5 minutes and rejects garbage tokens', async () => {
    const clock = new ManualClock();
    const { client } = await nodes.start({ clock });
    for (const name of ['a', 'b', 'c']) await createActive(client, name, 1);
    const p1 = await client.listStreams({ limit: 1 });
    clock.advance(299_999);
    expect((await client.listStreams({ limit: 1, nextToken: p1.nextToken })).streamNames).toEqual([
      'b',
    ]);
    clock.advance(2);
    await expectError(
      client.listStreams({ limit: 1, nextToken: p1.nextToken }),
      'ExpiredNextTokenException',
    );
    await expectError(client.listStreams({ nextToken: 'garbage!' }), 'InvalidArgumentException');
  });
});

describe('ListShards', () => {
  it('pages with maxResults and nextToken', async () => {
    const { client } = await nodes.start();
    await createActive(client, 'five', 5);
    const all = await listAllShards(client, 'five');
    expect(ids(all)).toEqual([0, 1, 2, 3, 4].map(shardId));
    expectContiguousRanges(all);
    const described = (await client.describeStream({ streamName: 'five' })).streamDescription!;
    expect(all).toEqual(described.shards);

    const seen: string[] = [];
    let page = await client.listShards({ streamName: 'five', maxResults: 2 });
    for (;;) {
      expect(page.shards.length).toBeLessThanOrEqual(2);
      seen.push(...ids(page.shards));
      if (page.nextToken === '') break;
      page = await client.listShards({ nextToken: page.nextToken, maxResults: 2 });
    }
    expect(seen).toEqual(ids(all));

    const after = await client.listShards({
      streamName: 'five',
      exclusiveStartShardId: shardId(2),
    });
    expect(ids(after.shards)).toEqual([shardId(3), shardId(4)]);
    // ListStreams does not take a ListShards token.
    const token = (await client.listShards({ streamName: 'five', maxResults: 1 })).nextToken;
    await expectError(client.listStreams({ nextToken: token }), 'InvalidArgumentException');
  });

  it('refuses nextToken together with a stream, and requires one of them', async () => {
    const { client } = await nodes.start();
    await createActive(client, 'five', 5);
    const { nextToken } = await client.listShards({ streamName: 'five', maxResults: 1 });
    await expectError(
      client.listShards({ streamName: 'five', nextToken }),
      'InvalidArgumentException',
      /NextToken/,
    );
    await expectError(
      client.listShards({ streamArn: arnOf('five'), nextToken }),
      'InvalidArgumentException',
    );
    await expectError(
      client.listShards({ nextToken, exclusiveStartShardId: shardId(0) }),
      'InvalidArgumentException',
    );
    await expectError(client.listShards({}), 'InvalidArgumentException', /StreamName/);
    await expectError(client.listShards({ nextToken: 'not a token' }), 'InvalidArgumentException');
    const { streamDescriptionSummary: s } = await client.describeStreamSummary({
      streamName: 'five',
    });
    expect(
      ids(
        (
          await client.listShards({
            streamName: 'five',
            streamCreationTimestampMs: s!.streamCreationTimestampMs,
          })
        ).shards,
      ),
    ).toHaveLength(5);
    await expectError(
      client.listShards({
        streamName: 'five',
        streamCreationTimestampMs: s!.streamCreationTimestampMs - 1,
      }),
      'ResourceNotFoundException',
    );
  });

  it('expires nextToken after 5 minutes (ExpiredNextTokenException)', async () => {
    const clock = new ManualClock();
    const { client } = await nodes.start({ clock });
    await createActive(client, 'five', 5);
    const { nextToken } = await client.listShards({ streamName: 'five', maxResults: 1 });
    clock.advance(300_000);
    expect(ids((await client.listShards({ nextToken, maxResults: 1 })).shards)).toEqual([
      shardId(1),
    ]);
    clock.advance(1);
    await expectError(client.listShards({ nextToken }), 'ExpiredNextTokenException', /expired/i);
  });

  it('applies every ShardFilter type', async () => {
    const clock = new ManualClock();
    const { client } = await nodes.start({ clock });
    await createActive(client, 'f', 4);
    const created = clock.nowMs();
    clock.advance(1000);
    const list = async (shardFilter: {
      type: ShardFilterType;
      shardId?: string;
      timestampMs?: number;
    }) => ids((await client.listShards({ streamName: 'f', shardFilter })).shards);
    const every = [0, 1, 2, 3].map(shardId);
    const F = ShardFilterType;
    expect(await list({ type: F.SHARD_FILTER_TYPE_AFTER_SHARD_ID, shardId: shardId(1) })).toEqual([
      shardId(2),
      shardId(3),
    ]);
    expect(await list({ type: F.SHARD_FILTER_TYPE_AT_TRIM_HORIZON })).toEqual(every);
    expect(await list({ type: F.SHARD_FILTER_TYPE_FROM_TRIM_HORIZON })).toEqual(every);
    expect(await list({ type: F.SHARD_FILTER_TYPE_AT_LATEST })).toEqual(every);
    expect(await list({ type: F.SHARD_FILTER_TYPE_AT_TIMESTAMP, timestampMs: created })).toEqual(
      every,
    );
    expect(
      await list({ type: F.SHARD_FILTER_TYPE_AT_TIMESTAMP, timestampMs: created - 1 }),
    ).toEqual([]);
    expect(
      await list({ type: F.SHARD_FILTER_TYPE_FROM_TIMESTAMP, timestampMs: created - 1 }),
    ).toEqual(every);

    // The filter travels in the nextToken.
    const p1 = await client.listShards({
      streamName: 'f',
      maxResults: 1,
      shardFilter: { type: F.SHARD_FILTER_TYPE_AFTER_SHARD_ID, shardId: shardId(1) },
    });
    expect(ids(p1.shards)).toEqual([shardId(2)]);
    const p2 = await client.listShards({ nextToken: p1.nextToken });
    expect(ids(p2.shards)).toEqual([shardId(3)]);
    expect(p2.nextToken).toBe('');

    // Each type takes exactly the fields it needs.
    const bad = [
      { type: F.SHARD_FILTER_TYPE_AFTER_SHARD_ID },
      { type: F.SHARD_FILTER_TYPE_AT_TIMESTAMP },
      { type: F.SHARD_FILTER_TYPE_FROM_TIMESTAMP },
      { type: F.SHARD_FILTER_TYPE_AT_LATEST, timestampMs: created },
      { type: F.SHARD_FILTER_TYPE_AT_TRIM_HORIZON, shardId: shardId(0) },
      { type: F.SHARD_FILTER_TYPE_UNSPECIFIED },
    ];
    for (const shardFilter of bad) {
      await expectError(
        client.listShards({ streamName: 'f', shardFilter }),
        'InvalidArgumentException',
        /ShardFilter/,
      );
    }
    await expectError(
      client.listShards({
        streamName: 'f',
        exclusiveStartShardId: shardId(0),
        shardFilter: { type: F.SHARD_FILTER_TYPE_AT_LATEST },
      }),
      'InvalidArgumentException',
    );
  });
});

describe('tags', () => {
  it('adds, overwrites, removes and lists tags with pagination', async () => {
    const { client } = await nodes.start();
    await createActive(client, 't', 1, { tags: { a: '1', b: '2' } });
    await client.addTagsToStream({ streamName: 't', tags: { b: '20', c: '3' } });
    const list = (extra: { limit?: number; exclusiveStartTagKey?: string } = {}) =>
      client.listTagsForStream({ streamName: 't', ...extra });
    expect(await list()).toEqual({
      tags: [
        { key: 'a', value: '1' },
        { key: 'b', value: '20' },
        { key: 'c', value: '3' },
      ],
      hasMoreTags: false,
    });
    expect(await list({ limit: 2 })).toEqual({
      tags: [
        { key: 'a', value: '1' },
        { key: 'b', value: '20' },
      ],
      hasMoreTags: true,
    });
    expect(await list({ limit: 2, exclusiveStartTagKey: 'b' })).toEqual({
      tags: [{ key: 'c', value: '3' }],
      hasMoreTags: false,
    });
    expect(await list({ limit: 1, exclusiveStartTagKey: 'a' })).toEqual({
      tags: [{ key: 'b', value: '20' }],
      hasMoreTags: true,
    });
    await client.removeTagsFromStream({ streamName: 't', tagKeys: ['a', 'not-there'] });
    expect((await list()).tags.map((t) => t.key)).toEqual(['b', 'c']);
  });

  it('allows at most 50 tags per stream (InvalidArgumentException) and changes nothing beyond', async () => {
    const { client } = await nodes.start();
    await createActive(client, 't', 1);
    const tags = (from: number, count: number) =>
      Object.fromEntries(
        Array.from({ length: count }, (_, i) => [`k${String(from + i).padStart(2, '0')}`, 'v']),
      );
    await client.addTagsToStream({ streamName: 't', tags: tags(0, 30) });
    await expectError(
      client.addTagsToStream({ streamName: 't', tags: tags(30, 21) }),
      'InvalidArgumentException',
      /more than 50 tags/,
    );
    expect((await client.listTagsForStream({ streamName: 't' })).tags).toHaveLength(30);
    await client.addTagsToStream({ streamName: 't', tags: tags(30, 20) });
    const full = await client.listTagsForStream({ streamName: 't' });
    expect(full.tags).toHaveLength(50);
    expect(full.hasMoreTags).toBe(false);
    // Overwriting an existing key at the limit is fine; a new key is not.
    await client.addTagsToStream({ streamName: 't', tags: { k00: 'changed' } });
    await expectError(
      client.addTagsToStream({ streamName: 't', tags: { extra: 'x' } }),
      'InvalidArgumentException',
    );
    const after = await client.listTagsForStream({ streamName: 't', limit: 1 });
    expect(after.tags).toEqual([{ key: 'k00', value: 'changed' }]);
    expect(after.hasMoreTags).toBe(true);
    // 51 in one request breaks the API model.
    await expectError(
      client.createStream({ streamName: 'u', shardCount: 1, tags: tags(0, 51) }),
      'ValidationException',
      /tags.*less than or equal to 50/,
    );
  });

  it("rejects keys starting with 'aws:' on create and on add", async () => {
    const { client } = await nodes.start();
    await createActive(client, 't', 1);
    for (const key of ['aws:owner', 'AWS:owner', 'Aws:x']) {
      await expectError(
        client.addTagsToStream({ streamName: 't', tags: { ok: 'fine', [key]: 'x' } }),
        'InvalidArgumentException',
        /aws:/,
      );
    }
    expect((await client.listTagsForStream({ streamName: 't' })).tags).toEqual([]);
    await expectError(
      client.createStream({ streamName: 'u', shardCount: 1, tags: { 'aws:cloudformation': 'x' } }),
      'InvalidArgumentException',
      /aws:/,
    );
    await expectError(
      client.describeStreamSummary({ streamName: 'u' }),
      'ResourceNotFoundException',
    );
    // 'aws' without the colon is an ordinary key.
    await client.addTagsToStream({ streamName: 't', tags: { awsome: 'yes' } });
    expect((await client.listTagsForStream({ streamName: 't' })).tags).toEqual([
      { key: 'awsome', value: 'yes' },
    ]);
  });
});

describe('retention period', () => {
  it('increases and decreases only in the named direction, within 24..8760 hours', async () => {
    const { client } = await nodes.start();
    await createActive(client, 'r', 1);
    const hours = async () =>
      (await client.describeStreamSummary({ streamName: 'r' })).streamDescriptionSummary!
        .retentionPeriodHours;
    expect(await hours()).toBe(24);
    await client.increaseStreamRetentionPeriod({ streamName: 'r', retentionPeriodHours: 48 });
    expect(await hours()).toBe(48);
    await expectError(
      client.increaseStreamRetentionPeriod({ streamName: 'r', retentionPeriodHours: 30 }),
      'InvalidArgumentException',
      /can not be shorter than existing retention period \(48 hours\).*DecreaseRetentionPeriod/,
    );
    await expectError(
      client.decreaseStreamRetentionPeriod({ streamName: 'r', retentionPeriodHours: 72 }),
      'InvalidArgumentException',
      /can not be longer than existing retention period \(48 hours\).*IncreaseRetentionPeriod/,
    );
    expect(await hours()).toBe(48);
    // The same value is accepted either way.
    await client.increaseStreamRetentionPeriod({ streamName: 'r', retentionPeriodHours: 48 });
    await client.decreaseStreamRetentionPeriod({ streamName: 'r', retentionPeriodHours: 48 });
    await client.decreaseStreamRetentionPeriod({ streamName: 'r', retentionPeriodHours: 36 });
    expect(await hours()).toBe(36);
    await client.increaseStreamRetentionPeriod({ streamName: 'r', retentionPeriodHours: 8760 });
    expect(await hours()).toBe(8760);
    await expectError(
      client.increaseStreamRetentionPeriod({ streamName: 'r', retentionPeriodHours: 8761 }),
      'InvalidArgumentException',
      /Maximum allowed retention period is 8760 hours.*8761/,
    );
    await client.decreaseStreamRetentionPeriod({ streamName: 'r', retentionPeriodHours: 24 });
    expect(await hours()).toBe(24);
    for (const op of ['increaseStreamRetentionPeriod', 'decreaseStreamRetentionPeriod'] as const) {
      await expectError(
        client[op]({ streamName: 'r', retentionPeriodHours: 23 }),
        'InvalidArgumentException',
        /Minimum allowed retention period is 24 hours.*23/,
      );
      await expectError(
        client[op]({ streamName: 'r', retentionPeriodHours: 0 }),
        'ValidationException',
        /retentionPeriodHours/,
      );
    }
    await expectError(
      client.decreaseStreamRetentionPeriod({ streamName: 'r', retentionPeriodHours: 8761 }),
      'InvalidArgumentException',
      /8760/,
    );
    expect(await hours()).toBe(24);
  });
});

describe('UpdateStreamMode and DescribeLimits', () => {
  it('switches modes, keeps the shards, and DescribeLimits counts streams and shards', async () => {
    const { client } = await nodes.start();
    await expect(client.describeLimits()).resolves.toEqual({
      shardLimit: 10_000,
      openShardCount: 0,
      onDemandStreamCount: 0,
      onDemandStreamCountLimit: 50,
    });
    await createActive(client, 'p', 3);
    await client.createStream({ streamName: 'od', streamMode: StreamMode.STREAM_MODE_ON_DEMAND });
    await client.waitForStreamActive('od', 30_000, 5);
    await expect(client.describeLimits()).resolves.toMatchObject({
      openShardCount: 7,
      onDemandStreamCount: 1,
    });
    await client.updateStreamMode({
      streamName: 'p',
      streamMode: StreamMode.STREAM_MODE_ON_DEMAND,
    });
    const mode = async (streamName: string) =>
      (await client.describeStreamSummary({ streamName })).streamDescriptionSummary!;
    expect(await mode('p')).toMatchObject({
      streamMode: StreamMode.STREAM_MODE_ON_DEMAND,
      openShardCount: 3,
    });
    await expect(client.describeLimits()).resolves.toMatchObject({
      openShardCount: 7,
      onDemandStreamCount: 2,
    });
    // Same mode again: a no-op.
    await client.updateStreamMode({
      streamName: 'p',
      streamMode: StreamMode.STREAM_MODE_ON_DEMAND,
    });
    await client.updateStreamMode({
      streamArn: arnOf('od'),
      streamMode: StreamMode.STREAM_MODE_PROVISIONED,
    });
    expect((await mode('od')).streamMode).toBe(StreamMode.STREAM_MODE_PROVISIONED);
    await expect(client.describeLimits()).resolves.toMatchObject({ onDemandStreamCount: 1 });
    await expectError(
      client.updateStreamMode({ streamName: 'p' }),
      'ValidationException',
      /streamMode/,
    );
    await expectError(
      client.updateStreamMode({
        streamName: 'nope',
        streamMode: StreamMode.STREAM_MODE_ON_DEMAND,
      }),
      'ResourceNotFoundException',
    );
    await client.deleteStream({ streamName: 'p' });
    await waitForStreamGone(client, 'p');
    await expect(client.describeLimits()).resolves.toEqual({
      shardLimit: 10_000,
      openShardCount: 4,
      onDemandStreamCount: 0,
      onDemandStreamCountLimit: 50,
    });
  });
});

describe('StreamARN instead of StreamName', () => {
  it('is accepted by every operation that names a stream', async () => {
    const { client } = await nodes.start({ defaultShardLimits: UNLIMITED });
    await createActive(client, 'named', 2);
    const streamArn = arnOf('named');
    expect((await client.describeStream({ streamArn })).streamDescription!.streamName).toBe(
      'named',
    );
    expect(
      (await client.describeStreamSummary({ streamArn })).streamDescriptionSummary!.streamArn,
    ).toBe(streamArn);
    expect(ids((await client.listShards({ streamArn })).shards)).toEqual([shardId(0), shardId(1)]);
    await client.addTagsToStream({ streamArn, tags: { a: '1', b: '2' } });
    await client.removeTagsFromStream({ streamArn, tagKeys: ['b'] });
    expect((await client.listTagsForStream({ streamArn })).tags).toEqual([
      { key: 'a', value: '1' },
    ]);
    await client.increaseStreamRetentionPeriod({ streamArn, retentionPeriodHours: 100 });
    await client.decreaseStreamRetentionPeriod({ streamArn, retentionPeriodHours: 50 });
    await client.updateStreamMode({ streamArn, streamMode: StreamMode.STREAM_MODE_ON_DEMAND });
    expect(
      (await client.describeStreamSummary({ streamName: 'named' })).streamDescriptionSummary,
    ).toMatchObject({ retentionPeriodHours: 50, streamMode: StreamMode.STREAM_MODE_ON_DEMAND });

    const one = await client.putRecord({
      streamArn,
      partitionKey: 'p',
      explicitHashKey: '0',
      data: Buffer.from('one'),
    });
    expect(one.shardId).toBe(shardId(0));
    const many = await client.putRecords({
      streamArn,
      records: [{ partitionKey: 'p', explicitHashKey: '0', data: Buffer.from('two') }],
    });
    expect(many.failedRecordCount).toBe(0);
    const { shardIterator } = await client.getShardIterator({
      streamArn,
      shardId: shardId(0),
      shardIteratorType: It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    });
    const got = await client.getRecords({ shardIterator, streamArn });
    expect(got.records.map((r) => r.data.toString())).toEqual(['one', 'two']);
    // Name and ARN together must agree.
    expect(
      (await client.describeStreamSummary({ streamName: 'named', streamArn }))
        .streamDescriptionSummary!.streamName,
    ).toBe('named');
    await createActive(client, 'other', 1);
    await expectError(
      client.describeStreamSummary({ streamName: 'other', streamArn }),
      'InvalidArgumentException',
      /name different streams/,
    );
    await expectError(
      client.getRecords({ shardIterator, streamArn: arnOf('other') }),
      'InvalidArgumentException',
      /belongs to stream named/,
    );
    await client.deleteStream({ streamArn });
    await waitForStreamGone(client, 'named');
  });
});
