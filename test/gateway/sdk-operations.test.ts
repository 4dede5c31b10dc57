import {
  AddTagsToStreamCommand,
  CreateStreamCommand,
  DecreaseStreamRetentionPeriodCommand,
  DeleteStreamCommand,
  DescribeLimitsCommand,
  DescribeStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  IncreaseStreamRetentionPeriodCommand,
  ListShardsCommand,
  ListStreamsCommand,
  ListTagsForStreamCommand,
  PutRecordCommand,
  PutRecordsCommand,
  RemoveTagsFromStreamCommand,
  ResourceNotFoundException,
  UpdateStreamModeCommand,
  type PutRecordsRequestEntry,
  type Shard,
  type ShardFilter,
} from '@aws-sdk/client-kinesis';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { StreamMode } from '../../src/gen/rheos/v1/stream.js';
import {
  ACCOUNT,
  arnOf,
  It,
  MAX_HASH_KEY,
  md5HashKey,
  MiB,
  pseudoRandomBytes,
  readShard,
  SEQUENCE_NUMBER,
  shardId,
  UNLIMITED,
} from '../api/helpers.js';
import {
  createActiveSdk,
  expectSdkContiguousRanges,
  expectSdkError,
  HANDLERS,
  sameBytes,
  sdkClient,
  sdkIterator,
  sdkReadAll,
  sdkReadShard,
  sdkShards,
  text,
  useGateway,
  waitActive,
} from './sdk-helpers.js';

/**
 * Every operation the gateway translates, driven by the real @aws-sdk/client-kinesis over HTTP/2
 * (the SDK's default handler) and HTTP/1.1, with the responses checked as the SDK parses them:
 * Uint8Array data, Date timestamps to the millisecond, the native API's sequence numbers.
 */

const PTE = 'ProvisionedThroughputExceededException';
const ids = (shards: readonly Shard[] | undefined) => (shards ?? []).map((s) => s.ShardId);

/** The shard whose inclusive hash-key range holds `hashKey`. */
function owner(shards: readonly Shard[], hashKey: bigint): string {
  const owners = shards.filter(
    (s) =>
      BigInt(s.HashKeyRange!.StartingHashKey!) <= hashKey &&
      hashKey <= BigInt(s.HashKeyRange!.EndingHashKey!),
  );
  expect(owners, `exactly one shard owns ${hashKey}`).toHaveLength(1);
  return owners[0]!.ShardId!;
}

/** A TCP proxy that records the first bytes the client sends on every connection. */
async function recordingProxy(targetPort: number) {
  const prefaces: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    const outbound = connect(targetPort, '127.0.0.1');
    sockets.add(inbound);
    sockets.add(outbound);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length >= 24) {
        prefaces.push(head.subarray(0, 24).toString('latin1'));
        inbound.off('data', onData);
      }
    };
    inbound.on('data', onData);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    const destroy = () => {
      inbound.destroy();
      outbound.destroy();
    };
    for (const s of [inbound, outbound]) {
      s.on('error', destroy);
      s.on('close', destroy);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    prefaces,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe.each(HANDLERS)('%s', (_label, kind) => {
  const gateway = useGateway(kind);

  it('speaks the protocol of its handler on the wire (h2c preface or an HTTP/1.1 request line)', async () => {
    const g = await gateway.start();
    const proxy = await recordingProxy(g.port);
    const sdk = sdkClient(proxy.port, kind);
    try {
      await sdk.send(new CreateStreamCommand({ StreamName: 'wire', ShardCount: 1 }));
      await waitActive(sdk, 'wire');
      const put = await sdk.send(
        new PutRecordCommand({ StreamName: 'wire', PartitionKey: 'k', Data: Buffer.from('x') }),
      );
      expect(put.SequenceNumber).toMatch(SEQUENCE_NUMBER);
    } finally {
      sdk.destroy();
      await proxy.close();
    }
    expect(proxy.prefaces.length).toBeGreaterThan(0);
    for (const preface of proxy.prefaces) {
      if (kind === 'h2') expect(preface).toBe('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      else expect(preface).toMatch(/^POST \/ HTTP\/1\.1\r\n/);
    }
  });

  it('CreateStream (provisioned, with Tags); DescribeStream and DescribeStreamSummary', async () => {
    const clock = new ManualClock(1_750_000_000_123);
    const g = await gateway.start({ clock });
    const created = await g.sdk.send(
      new CreateStreamCommand({
        StreamName: 'orders',
        ShardCount: 3,
        Tags: { team: 'data', env: 'prod' },
      }),
    );
    expect(created.$metadata.httpStatusCode).toBe(200);
    const summary = await waitActive(g.sdk, 'orders');
    const header = {
      StreamName: 'orders',
      StreamARN: `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/orders`,
      StreamStatus: 'ACTIVE',
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
      RetentionPeriodHours: 24,
      StreamCreationTimestamp: new Date(1_750_000_000_123),
      EnhancedMonitoring: [{ ShardLevelMetrics: [] }],
      EncryptionType: 'NONE',
    };
    expect(summary).toEqual({ ...header, OpenShardCount: 3, ConsumerCount: 0 });
    expect(summary.StreamCreationTimestamp).toBeInstanceOf(Date);
    expect(summary.StreamCreationTimestamp!.getTime()).toBe(1_750_000_000_123);

    const { StreamDescription: d } = await g.sdk.send(
      new DescribeStreamCommand({ StreamName: 'orders' }),
    );
    const { Shards, ...rest } = d!;
    expect(rest).toEqual({ ...header, HasMoreShards: false });
    expect(ids(Shards)).toEqual([shardId(0), shardId(1), shardId(2)]);
    expectSdkContiguousRanges(Shards!);
    for (const shard of Shards!) {
      expect(shard.ParentShardId).toBeUndefined();
      expect(shard.AdjacentParentShardId).toBeUndefined();
      expect(shard.SequenceNumberRange!.StartingSequenceNumber).toMatch(SEQUENCE_NUMBER);
      expect(shard.SequenceNumberRange!.EndingSequenceNumber).toBeUndefined();
    }
    // Exactly what the native API reports.
    const native = await g.client.listShards({ streamName: 'orders' });
    expect(Shards).toEqual(
      native.shards.map((s) => ({
        ShardId: s.shardId,
        HashKeyRange: {
          StartingHashKey: s.hashKeyRange!.startingHashKey,
          EndingHashKey: s.hashKeyRange!.endingHashKey,
        },
        SequenceNumberRange: {
          StartingSequenceNumber: s.sequenceNumberRange!.startingSequenceNumber,
        },
      })),
    );
    const tags = await g.sdk.send(new ListTagsForStreamCommand({ StreamName: 'orders' }));
    expect({ Tags: tags.Tags, HasMoreTags: tags.HasMoreTags }).toEqual({
      Tags: [
        { Key: 'env', Value: 'prod' },
        { Key: 'team', Value: 'data' },
      ],
      HasMoreTags: false,
    });

    // One shard owns the whole hash space.
    await createActiveSdk(g.sdk, 'one', 1);
    expect((await sdkShards(g.sdk, 'one'))[0]!.HashKeyRange).toEqual({
      StartingHashKey: '0',
      EndingHashKey: MAX_HASH_KEY.toString(),
    });
  });

  it('CreateStream ON_DEMAND (StreamModeDetails), UpdateStreamMode by StreamARN, DescribeLimits', async () => {
    const g = await gateway.start();
    const limits = async () => {
      const { $metadata: _m, ...out } = await g.sdk.send(new DescribeLimitsCommand({}));
      return out;
    };
    expect(await limits()).toEqual({
      ShardLimit: 10_000,
      OpenShardCount: 0,
      OnDemandStreamCount: 0,
      OnDemandStreamCountLimit: 50,
    });
    const od = await createActiveSdk(g.sdk, 'od', null, {
      StreamModeDetails: { StreamMode: 'ON_DEMAND' },
    });
    expect(od).toMatchObject({ StreamModeDetails: { StreamMode: 'ON_DEMAND' }, OpenShardCount: 4 });
    const odShards = await sdkShards(g.sdk, 'od');
    expect(ids(odShards)).toEqual([0, 1, 2, 3].map(shardId));
    expectSdkContiguousRanges(odShards);
    await createActiveSdk(g.sdk, 'p', 2, { StreamModeDetails: { StreamMode: 'PROVISIONED' } });
    expect(await limits()).toMatchObject({ OpenShardCount: 6, OnDemandStreamCount: 1 });

    await g.sdk.send(
      new UpdateStreamModeCommand({
        StreamARN: arnOf('p'),
        StreamModeDetails: { StreamMode: 'ON_DEMAND' },
      }),
    );
    const p = await waitActive(g.sdk, 'p');
    expect(p).toMatchObject({ StreamModeDetails: { StreamMode: 'ON_DEMAND' }, OpenShardCount: 2 });
    expect(
      (await g.client.describeStreamSummary({ streamName: 'p' })).streamDescriptionSummary!
        .streamMode,
    ).toBe(StreamMode.STREAM_MODE_ON_DEMAND);
    expect(await limits()).toMatchObject({ OpenShardCount: 6, OnDemandStreamCount: 2 });

    await g.sdk.send(
      new UpdateStreamModeCommand({
        StreamARN: arnOf('od'),
        StreamModeDetails: { StreamMode: 'PROVISIONED' },
      }),
    );
    expect((await waitActive(g.sdk, 'od')).StreamModeDetails).toEqual({
      StreamMode: 'PROVISIONED',
    });
    expect(await limits()).toEqual({
      ShardLimit: 10_000,
      OpenShardCount: 6,
      OnDemandStreamCount: 1,
      OnDemandStreamCountLimit: 50,
    });
  });

  it('takes a StreamARN instead of the StreamName in the describe, list and data operations', async () => {
    const g = await gateway.start({ defaultShardLimits: UNLIMITED });
    await createActiveSdk(g.sdk, 'named', 2);
    const StreamARN = arnOf('named');
    const d = await g.sdk.send(new DescribeStreamCommand({ StreamARN }));
    expect(d.StreamDescription!.StreamName).toBe('named');
    const summary = await g.sdk.send(new DescribeStreamSummaryCommand({ StreamARN }));
    expect(summary.StreamDescriptionSummary!.StreamARN).toBe(StreamARN);
    const both = await g.sdk.send(
      new DescribeStreamSummaryCommand({ StreamName: 'named', StreamARN }),
    );
    expect(both.StreamDescriptionSummary!.StreamName).toBe('named');
    expect(ids((await g.sdk.send(new ListShardsCommand({ StreamARN }))).Shards)).toEqual([
      shardId(0),
      shardId(1),
    ]);
    const one = await g.sdk.send(
      new PutRecordCommand({
        StreamARN,
        PartitionKey: 'p',
        ExplicitHashKey: '0',
        Data: Buffer.from('one'),
      }),
    );
    expect(one.ShardId).toBe(shardId(0));
    const many = await g.sdk.send(
      new PutRecordsCommand({
        StreamARN,
        Records: [{ PartitionKey: 'p', ExplicitHashKey: '0', Data: Buffer.from('two') }],
      }),
    );
    expect(many.FailedRecordCount).toBe(0);
    const iterator = await sdkIterator(g.sdk, {
      StreamARN,
      ShardId: shardId(0),
      ShardIteratorType: 'TRIM_HORIZON',
    });
    const got = await g.sdk.send(new GetRecordsCommand({ ShardIterator: iterator, StreamARN }));
    expect(got.Records!.map(text)).toEqual(['one', 'two']);
    expect(got.Records!.map((r) => r.SequenceNumber)).toEqual([
      one.SequenceNumber,
      many.Records![0]!.SequenceNumber,
    ]);
  });

  it('DescribeStream pages with Limit, ExclusiveStartShardId and HasMoreShards', async () => {
    const g = await gateway.start();
    await createActiveSdk(g.sdk, 'wide', 7);
    const describe = async (extra: { Limit?: number; ExclusiveStartShardId?: string }) =>
      (await g.sdk.send(new DescribeStreamCommand({ StreamName: 'wide', ...extra })))
        .StreamDescription!;
    const whole = await describe({});
    expect(ids(whole.Shards)).toEqual(Array.from({ length: 7 }, (_, i) => shardId(i)));
    expect(whole.HasMoreShards).toBe(false);
    expectSdkContiguousRanges(whole.Shards!);

    const pages: string[][] = [];
    let after: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await describe({
        Limit: 3,
        ...(after === undefined ? {} : { ExclusiveStartShardId: after }),
      });
      pages.push(ids(page.Shards) as string[]);
      if (!page.HasMoreShards) break;
      after = page.Shards![page.Shards!.length - 1]!.ShardId;
    }
    expect(pages).toEqual([
      [shardId(0), shardId(1), shardId(2)],
      [shardId(3), shardId(4), shardId(5)],
      [shardId(6)],
    ]);
    const end = await describe({ ExclusiveStartShardId: shardId(6) });
    expect(end.Shards).toEqual([]);
    expect(end.HasMoreShards).toBe(false);
  });

  it('ListStreams pages with Limit, NextToken and ExclusiveStartStreamName, with StreamSummaries', async () => {
    const clock = new ManualClock(1_750_000_000_456);
    const g = await gateway.start({ clock });
    const names = ['echo', 'alpha', 'delta', 'charlie', 'bravo'];
    for (const name of names) {
      await g.sdk.send(new CreateStreamCommand({ StreamName: name, ShardCount: 1 }));
    }
    for (const name of names) await waitActive(g.sdk, name);
    const sorted = [...names].sort();
    const list = (input: {
      Limit?: number;
      NextToken?: string;
      ExclusiveStartStreamName?: string;
    }) => g.sdk.send(new ListStreamsCommand(input));

    const all = await list({});
    expect(all.StreamNames).toEqual(sorted);
    expect(all.HasMoreStreams).toBe(false);
    expect(all.NextToken).toBeUndefined();
    expect(all.StreamSummaries).toEqual(
      sorted.map((name) => ({
        StreamName: name,
        StreamARN: arnOf(name),
        StreamStatus: 'ACTIVE',
        StreamModeDetails: { StreamMode: 'PROVISIONED' },
        StreamCreationTimestamp: new Date(1_750_000_000_456),
      })),
    );
    for (const s of all.StreamSummaries!) expect(s.StreamCreationTimestamp).toBeInstanceOf(Date);

    const p1 = await list({ Limit: 2 });
    expect([p1.StreamNames, p1.HasMoreStreams]).toEqual([['alpha', 'bravo'], true]);
    expect(p1.NextToken).toMatch(/\S/);
    expect(p1.StreamSummaries!.map((s) => s.StreamName)).toEqual(['alpha', 'bravo']);
    const p2 = await list({ Limit: 2, NextToken: p1.NextToken! });
    expect([p2.StreamNames, p2.HasMoreStreams]).toEqual([['charlie', 'delta'], true]);
    const p3 = await list({ Limit: 2, NextToken: p2.NextToken! });
    expect([p3.StreamNames, p3.HasMoreStreams, p3.NextToken]).toEqual([['echo'], false, undefined]);

    const afterBravo = await list({ ExclusiveStartStreamName: 'bravo', Limit: 2 });
    expect([afterBravo.StreamNames, afterBravo.HasMoreStreams]).toEqual([
      ['charlie', 'delta'],
      true,
    ]);
    const afterLast = await list({ ExclusiveStartStreamName: 'echo' });
    expect([afterLast.StreamNames, afterLast.HasMoreStreams]).toEqual([[], false]);
  });

  it('ListShards pages with MaxResults and NextToken, and takes ExclusiveStartShardId, StreamCreationTimestamp (a Date) and every ShardFilter', async () => {
    const clock = new ManualClock(1_750_000_000_789);
    const g = await gateway.start({ clock });
    const summary = await createActiveSdk(g.sdk, 'five', 5);
    const created = summary.StreamCreationTimestamp!;
    expect(created.getTime()).toBe(1_750_000_000_789);
    const all = await sdkShards(g.sdk, 'five');
    expect(ids(all)).toEqual([0, 1, 2, 3, 4].map(shardId));
    expectSdkContiguousRanges(all);
    const described = await g.sdk.send(new DescribeStreamCommand({ StreamName: 'five' }));
    expect(all).toEqual(described.StreamDescription!.Shards);

    const pages: string[][] = [];
    let page = await g.sdk.send(new ListShardsCommand({ StreamName: 'five', MaxResults: 2 }));
    for (let i = 0; i < 10; i++) {
      pages.push(ids(page.Shards) as string[]);
      if (page.NextToken === undefined) break;
      page = await g.sdk.send(new ListShardsCommand({ NextToken: page.NextToken, MaxResults: 2 }));
    }
    expect(pages).toEqual([[shardId(0), shardId(1)], [shardId(2), shardId(3)], [shardId(4)]]);

    const after = await g.sdk.send(
      new ListShardsCommand({ StreamName: 'five', ExclusiveStartShardId: shardId(2) }),
    );
    expect(ids(after.Shards)).toEqual([shardId(3), shardId(4)]);

    // StreamCreationTimestamp names this incarnation of the stream, to the millisecond.
    const byCreation = await g.sdk.send(
      new ListShardsCommand({ StreamName: 'five', StreamCreationTimestamp: created }),
    );
    expect(ids(byCreation.Shards)).toHaveLength(5);
    for (const off of [-1, 1]) {
      await expectSdkError(
        g.sdk.send(
          new ListShardsCommand({
            StreamName: 'five',
            StreamCreationTimestamp: new Date(created.getTime() + off),
          }),
        ),
        'ResourceNotFoundException',
      );
    }

    clock.advance(1000);
    const filtered = async (ShardFilter: ShardFilter) =>
      ids((await g.sdk.send(new ListShardsCommand({ StreamName: 'five', ShardFilter }))).Shards);
    const every = [0, 1, 2, 3, 4].map(shardId);
    expect(await filtered({ Type: 'AFTER_SHARD_ID', ShardId: shardId(1) })).toEqual([
      shardId(2),
      shardId(3),
      shardId(4),
    ]);
    expect(await filtered({ Type: 'AT_TRIM_HORIZON' })).toEqual(every);
    expect(await filtered({ Type: 'FROM_TRIM_HORIZON' })).toEqual(every);
    expect(await filtered({ Type: 'AT_LATEST' })).toEqual(every);
    expect(await filtered({ Type: 'AT_TIMESTAMP', Timestamp: created })).toEqual(every);
    expect(
      await filtered({ Type: 'AT_TIMESTAMP', Timestamp: new Date(created.getTime() - 1) }),
    ).toEqual([]);
    expect(
      await filtered({ Type: 'FROM_TIMESTAMP', Timestamp: new Date(created.getTime() - 1) }),
    ).toEqual(every);

    // The filter travels in the NextToken.
    const f1 = await g.sdk.send(
      new ListShardsCommand({
        StreamName: 'five',
        MaxResults: 1,
        ShardFilter: { Type: 'AFTER_SHARD_ID', ShardId: shardId(2) },
      }),
    );
    expect(ids(f1.Shards)).toEqual([shardId(3)]);
    const f2 = await g.sdk.send(new ListShardsCommand({ NextToken: f1.NextToken! }));
    expect(ids(f2.Shards)).toEqual([shardId(4)]);
    expect(f2.NextToken).toBeUndefined();
  });

  it('AddTagsToStream, RemoveTagsFromStream and ListTagsForStream (pagination), by name and by ARN', async () => {
    const g = await gateway.start();
    await createActiveSdk(g.sdk, 't', 1, { Tags: { a: '1', b: '2' } });
    await g.sdk.send(new AddTagsToStreamCommand({ StreamName: 't', Tags: { b: '20', c: '3' } }));
    const list = async (extra: { Limit?: number; ExclusiveStartTagKey?: string } = {}) => {
      const r = await g.sdk.send(new ListTagsForStreamCommand({ StreamName: 't', ...extra }));
      return { Tags: r.Tags, HasMoreTags: r.HasMoreTags };
    };
    expect(await list()).toEqual({
      Tags: [
        { Key: 'a', Value: '1' },
        { Key: 'b', Value: '20' },
        { Key: 'c', Value: '3' },
      ],
      HasMoreTags: false,
    });
    expect(await list({ Limit: 2 })).toEqual({
      Tags: [
        { Key: 'a', Value: '1' },
        { Key: 'b', Value: '20' },
      ],
      HasMoreTags: true,
    });
    expect(await list({ Limit: 2, ExclusiveStartTagKey: 'b' })).toEqual({
      Tags: [{ Key: 'c', Value: '3' }],
      HasMoreTags: false,
    });
    expect(await list({ Limit: 1, ExclusiveStartTagKey: 'a' })).toEqual({
      Tags: [{ Key: 'b', Value: '20' }],
      HasMoreTags: true,
    });
    await g.sdk.send(
      new RemoveTagsFromStreamCommand({ StreamName: 't', TagKeys: ['a', 'not-there'] }),
    );
    expect((await list()).Tags!.map((t) => t.Key)).toEqual(['b', 'c']);

    const StreamARN = arnOf('t');
    await g.sdk.send(new AddTagsToStreamCommand({ StreamARN, Tags: { d: '' } }));
    await g.sdk.send(new RemoveTagsFromStreamCommand({ StreamARN, TagKeys: ['b'] }));
    const byArn = await g.sdk.send(new ListTagsForStreamCommand({ StreamARN }));
    expect(byArn.Tags).toEqual([
      { Key: 'c', Value: '3' },
      { Key: 'd', Value: '' },
    ]);
    expect((await g.client.listTagsForStream({ streamName: 't' })).tags).toEqual([
      { key: 'c', value: '3' },
      { key: 'd', value: '' },
    ]);
  });

  it('IncreaseStreamRetentionPeriod and DecreaseStreamRetentionPeriod, by name and by ARN', async () => {
    const g = await gateway.start();
    await createActiveSdk(g.sdk, 'r', 1);
    const hours = async () => (await waitActive(g.sdk, 'r')).RetentionPeriodHours;
    expect(await hours()).toBe(24);
    await g.sdk.send(
      new IncreaseStreamRetentionPeriodCommand({ StreamName: 'r', RetentionPeriodHours: 48 }),
    );
    expect(await hours()).toBe(48);
    await g.sdk.send(
      new DecreaseStreamRetentionPeriodCommand({ StreamName: 'r', RetentionPeriodHours: 36 }),
    );
    expect(await hours()).toBe(36);
    await g.sdk.send(
      new IncreaseStreamRetentionPeriodCommand({
        StreamARN: arnOf('r'),
        RetentionPeriodHours: 8760,
      }),
    );
    expect(await hours()).toBe(8760);
    expect(
      (await g.client.describeStreamSummary({ streamName: 'r' })).streamDescriptionSummary!
        .retentionPeriodHours,
    ).toBe(8760);
    await g.sdk.send(
      new DecreaseStreamRetentionPeriodCommand({ StreamARN: arnOf('r'), RetentionPeriodHours: 24 }),
    );
    expect(await hours()).toBe(24);
  });

  it('DeleteStream by name and by ARN (with EnforceConsumerDeletion)', async () => {
    const g = await gateway.start();
    await createActiveSdk(g.sdk, 'a', 1);
    await createActiveSdk(g.sdk, 'b', 2);
    await createActiveSdk(g.sdk, 'keep', 1);
    const deleted = await g.sdk.send(new DeleteStreamCommand({ StreamName: 'a' }));
    expect(deleted.$metadata.httpStatusCode).toBe(200);
    await g.sdk.send(
      new DeleteStreamCommand({ StreamARN: arnOf('b'), EnforceConsumerDeletion: true }),
    );
    for (const name of ['a', 'b']) {
      let gone = false;
      for (let attempt = 0; attempt < 2000 && !gone; attempt++) {
        try {
          const { StreamDescriptionSummary: s } = await g.sdk.send(
            new DescribeStreamSummaryCommand({ StreamName: name }),
          );
          expect(s!.StreamStatus).toBe('DELETING');
          await new Promise((resolve) => setTimeout(resolve, 5));
        } catch (error) {
          expect(error).toBeInstanceOf(ResourceNotFoundException);
          gone = true;
        }
      }
      expect(gone, `${name} is deleted`).toBe(true);
    }
    expect((await g.sdk.send(new ListStreamsCommand({}))).StreamNames).toEqual(['keep']);
    expect((await g.client.listStreams()).streamNames).toEqual(['keep']);
  });

  it('PutRecord and GetRecords: identical bytes, partition key, arrival Date to the millisecond, sequence number and shard routing', async () => {
    const clock = new ManualClock(1_760_000_000_000);
    const g = await gateway.start({ clock, defaultShardLimits: UNLIMITED });
    await createActiveSdk(g.sdk, 's', 4);
    const shards = await sdkShards(g.sdk, 's');
    clock.advance(1234);
    // Every byte value, then pseudo-random bytes: nothing may be mangled as text.
    const data = Buffer.concat([
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
      pseudoRandomBytes(1000, 7),
    ]);
    const puts = new Map<string, Array<{ seq: string; key: string; bytes: Uint8Array }>>();
    const remember = (shard: string, seq: string, key: string, bytes: Uint8Array) =>
      puts.set(shard, [...(puts.get(shard) ?? []), { seq, key, bytes }]);
    for (const key of ['user-1', 'user-2', 'clé', '\u{1F600}-key', 'x'.repeat(256)]) {
      const put = await g.sdk.send(
        new PutRecordCommand({ StreamName: 's', PartitionKey: key, Data: data }),
      );
      expect(put).toMatchObject({
        ShardId: owner(shards, md5HashKey(key)),
        SequenceNumber: expect.stringMatching(SEQUENCE_NUMBER),
        EncryptionType: 'NONE',
      });
      remember(put.ShardId!, put.SequenceNumber!, key, data);
    }
    // ExplicitHashKey overrides the partition key's hash.
    for (const [hashKey, shard] of [
      [shards[2]!.HashKeyRange!.StartingHashKey!, shardId(2)],
      [MAX_HASH_KEY.toString(), shardId(3)],
      ['0', shardId(0)],
    ] as const) {
      const bytes = Buffer.from(`explicit ${hashKey}`);
      const put = await g.sdk.send(
        new PutRecordCommand({
          StreamName: 's',
          PartitionKey: 'user-1',
          ExplicitHashKey: hashKey,
          Data: bytes,
        }),
      );
      expect(put.ShardId).toBe(shard);
      remember(shard, put.SequenceNumber!, 'user-1', bytes);
    }
    // SequenceNumberForOrdering, and empty data.
    const previous = puts.get(shardId(0))!.at(-1)!.seq;
    const ordered = await g.sdk.send(
      new PutRecordCommand({
        StreamName: 's',
        PartitionKey: 'e',
        ExplicitHashKey: '0',
        SequenceNumberForOrdering: previous,
        Data: new Uint8Array(0),
      }),
    );
    expect(BigInt(ordered.SequenceNumber!) > BigInt(previous)).toBe(true);
    remember(shardId(0), ordered.SequenceNumber!, 'e', new Uint8Array(0));

    for (const shard of ids(shards) as string[]) {
      const iterator = await sdkIterator(g.sdk, {
        StreamName: 's',
        ShardId: shard,
        ShardIteratorType: 'TRIM_HORIZON',
      });
      const got = await g.sdk.send(new GetRecordsCommand({ ShardIterator: iterator }));
      expect(got.MillisBehindLatest).toBe(0);
      expect(got.NextShardIterator).toMatch(/\S/);
      expect(got.ChildShards).toBeUndefined();
      const expected = puts.get(shard) ?? [];
      expect(got.Records!.map((r) => [r.SequenceNumber, r.PartitionKey])).toEqual(
        expected.map((e) => [e.seq, e.key]),
      );
      got.Records!.forEach((r, i) => {
        expect(r.Data).toBeInstanceOf(Uint8Array);
        expect(sameBytes(r.Data, expected[i]!.bytes), `${shard} record ${i} bytes`).toBe(true);
        expect(r.ApproximateArrivalTimestamp).toBeInstanceOf(Date);
        expect(r.ApproximateArrivalTimestamp!.getTime()).toBe(1_760_000_001_234);
      });
    }
    expect([...puts.values()].flat()).toHaveLength(9);
  });

  it('PutRecords: per-record SequenceNumber and ShardId in request order, EncryptionType, FailedRecordCount 0', async () => {
    const g = await gateway.start({ defaultShardLimits: UNLIMITED });
    await createActiveSdk(g.sdk, 's', 2);
    const shards = await sdkShards(g.sdk, 's');
    const records: PutRecordsRequestEntry[] = Array.from({ length: 20 }, (_, i) => ({
      PartitionKey: `k${i}`,
      Data: Buffer.from(`r${i}`),
    }));
    const put = await g.sdk.send(new PutRecordsCommand({ StreamName: 's', Records: records }));
    expect(put.FailedRecordCount).toBe(0);
    expect(put.EncryptionType).toBe('NONE');
    expect(put.Records).toHaveLength(20);
    put.Records!.forEach((r, i) => {
      expect(r).toEqual({
        ShardId: owner(shards, md5HashKey(`k${i}`)),
        SequenceNumber: expect.stringMatching(SEQUENCE_NUMBER),
      });
    });
    for (const shard of ids(shards) as string[]) {
      const mine = put.Records!.map((r, i) => ({ ...r, i })).filter((r) => r.ShardId === shard);
      expect(mine.length).toBeGreaterThan(0);
      const stored = await sdkReadShard(g.sdk, 's', shard);
      expect(stored.map((r) => [r.SequenceNumber, text(r), r.PartitionKey])).toEqual(
        mine.map((r) => [r.SequenceNumber, `r${r.i}`, `k${r.i}`]),
      );
    }
  });

  it('round-trips 1 MiB records, a 5 MiB PutRecords and a 10 MiB GetRecords byte for byte', async () => {
    const g = await gateway.start({ defaultShardLimits: UNLIMITED });
    await createActiveSdk(g.sdk, 'big', 1);
    const key = 'big-\u00e9'; // 6 bytes of UTF-8
    const blob = (seed: number) => pseudoRandomBytes(MiB - Buffer.byteLength(key, 'utf8'), seed);
    const blobs = Array.from({ length: 11 }, (_, i) => blob(i + 1));
    const one = await g.sdk.send(
      new PutRecordCommand({ StreamName: 'big', PartitionKey: key, Data: blobs[0]! }),
    );
    const five = await g.sdk.send(
      new PutRecordsCommand({
        StreamName: 'big',
        Records: blobs.slice(1, 6).map((Data) => ({ PartitionKey: key, Data })),
      }),
    );
    expect(five.FailedRecordCount).toBe(0);
    const four = await g.client.putRecords({
      streamName: 'big',
      records: blobs.slice(6, 10).map((data) => ({ partitionKey: key, data })),
    });
    expect(four.failedRecordCount).toBe(0);
    await g.sdk.send(
      new PutRecordsCommand({
        StreamName: 'big',
        Records: [{ PartitionKey: key, Data: blobs[10]! }],
      }),
    );
    const iterator = await sdkIterator(g.sdk, {
      StreamName: 'big',
      ShardId: shardId(0),
      ShardIteratorType: 'TRIM_HORIZON',
    });
    const first = await g.sdk.send(new GetRecordsCommand({ ShardIterator: iterator }));
    expect(first.Records).toHaveLength(10);
    const second = await g.sdk.send(
      new GetRecordsCommand({ ShardIterator: first.NextShardIterator! }),
    );
    expect(second.Records).toHaveLength(1);
    const records = [...first.Records!, ...second.Records!];
    expect(records[0]!.SequenceNumber).toBe(one.SequenceNumber);
    expect(records.slice(1, 6).map((r) => r.SequenceNumber)).toEqual(
      five.Records!.map((r) => r.SequenceNumber),
    );
    records.forEach((r, i) => {
      expect(r.PartitionKey).toBe(key);
      expect(r.Data!.length).toBe(blobs[i]!.length);
      expect(sameBytes(r.Data, blobs[i]!), `record ${i}`).toBe(true);
    });
  });

  it('serves hundreds of concurrent calls and several 1 MiB bodies at once on one client', async () => {
    const g = await gateway.start({ defaultShardLimits: UNLIMITED });
    await createActiveSdk(g.sdk, 's', 4);
    // More requests in flight than the gateway's 128 concurrent HTTP/2 streams per session.
    const small = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        g.sdk.send(
          new PutRecordCommand({
            StreamName: 's',
            PartitionKey: `k${i}`,
            Data: Buffer.from(`r${i}`),
          }),
        ),
      ),
    );
    expect(new Set(small.map((p) => p.SequenceNumber)).size).toBe(300);
    // Large bodies in both directions share the connection's flow-control windows.
    const blobs = Array.from({ length: 6 }, (_, i) => pseudoRandomBytes(MiB - 10, i + 1));
    const [big, reads] = await Promise.all([
      Promise.all(
        blobs.map((Data, i) =>
          g.sdk.send(
            new PutRecordCommand({
              StreamName: 's',
              PartitionKey: `big${i}`,
              ExplicitHashKey: '0',
              Data,
            }),
          ),
        ),
      ),
      Promise.all([1, 2, 3].map((i) => sdkReadShard(g.sdk, 's', shardId(i)))),
    ]);
    expect(big.map((p) => p.ShardId)).toEqual(Array<string>(6).fill(shardId(0)));
    const all = [...(await sdkReadShard(g.sdk, 's', shardId(0))), ...reads.flat()];
    const byKey = new Map(all.map((r) => [r.PartitionKey!, r]));
    expect(byKey.size).toBe(all.length);
    small.forEach((p, i) => {
      const r = byKey.get(`k${i}`);
      expect(r?.SequenceNumber).toBe(p.SequenceNumber);
      expect(text(r!)).toBe(`r${i}`);
    });
    blobs.forEach((blob, i) => {
      const r = byKey.get(`big${i}`);
      expect(r?.SequenceNumber).toBe(big[i]!.SequenceNumber);
      expect(sameBytes(r!.Data, blob), `big${i}`).toBe(true);
    });
  });

  it('PutRecords partial failure under throttling: FailedRecordCount and per-record ErrorCode/ErrorMessage', async () => {
    const clock = new ManualClock(1_780_000_000_000);
    const g = await gateway.start({ clock });
    await createActiveSdk(g.sdk, 's', 2);
    const shards = await sdkShards(g.sdk, 's');
    const to = (i: number) => shards[i]!.HashKeyRange!.StartingHashKey!;
    const tiny = (n: number, hashKey = to(0)): PutRecordsRequestEntry[] =>
      Array.from({ length: n }, (_, i) => ({
        PartitionKey: 'k',
        ExplicitHashKey: hashKey,
        Data: Buffer.from([i % 256]),
      }));
    for (let i = 0; i < 2; i++) {
      const ok = await g.sdk.send(new PutRecordsCommand({ StreamName: 's', Records: tiny(500) }));
      expect(ok.FailedRecordCount).toBe(0);
    }
    // Shard 0 has used its 1,000 records for this second; shard 1 has not.
    const mixed = await g.sdk.send(
      new PutRecordsCommand({
        StreamName: 's',
        Records: [...tiny(2), ...tiny(1, to(1)), ...tiny(1)],
      }),
    );
    expect(mixed.$metadata.httpStatusCode).toBe(200);
    expect(mixed.FailedRecordCount).toBe(3);
    const throttled = {
      ErrorCode: PTE,
      ErrorMessage: expect.stringMatching(
        /Rate exceeded for shard shardId-000000000000 in stream s/,
      ),
    };
    expect(mixed.Records).toEqual([
      throttled,
      throttled,
      { ShardId: shardId(1), SequenceNumber: expect.stringMatching(SEQUENCE_NUMBER) },
      throttled,
    ]);
    for (const r of mixed.Records!) {
      if (r.ErrorCode !== undefined) {
        expect(r.SequenceNumber).toBeUndefined();
        expect(r.ShardId).toBeUndefined();
      }
    }
    // A tenth of a second refills a tenth of the quota; the records within it pass, in order.
    clock.advance(100);
    const partial = await g.sdk.send(
      new PutRecordsCommand({ StreamName: 's', Records: tiny(150) }),
    );
    expect(partial.FailedRecordCount).toBe(50);
    expect(partial.Records!.map((r) => r.ErrorCode ?? 'ok')).toEqual([
      ...Array<string>(100).fill('ok'),
      ...Array<string>(50).fill(PTE),
    ]);
    expect(await readShard(g.client, 's', shardId(0))).toHaveLength(1100);
    expect(await readShard(g.client, 's', shardId(1))).toHaveLength(1);
  });

  it('the SDK and the native client see the same records, sequence numbers, arrival times and iterators', async () => {
    const clock = new ManualClock(1_770_000_000_000);
    const g = await gateway.start({ clock, defaultShardLimits: UNLIMITED });
    await createActiveSdk(g.sdk, 's', 2);
    clock.advance(5);
    const viaSdk = await g.sdk.send(
      new PutRecordsCommand({
        StreamName: 's',
        Records: Array.from({ length: 10 }, (_, i) => ({
          PartitionKey: `k${i}`,
          Data: Buffer.from(`sdk-${i}`),
        })),
      }),
    );
    expect(viaSdk.FailedRecordCount).toBe(0);
    clock.advance(7);
    const viaNative = await g.client.putRecords({
      streamName: 's',
      records: Array.from({ length: 10 }, (_, i) => ({
        partitionKey: `n${i}`,
        data: Buffer.from(`native-${i}`),
      })),
    });
    expect(viaNative.failedRecordCount).toBe(0);

    for (const shard of [shardId(0), shardId(1)]) {
      const expectedSeqs = [
        ...viaSdk.Records!.filter((r) => r.ShardId === shard).map((r) => r.SequenceNumber),
        ...viaNative.records.filter((r) => r.shardId === shard).map((r) => r.sequenceNumber),
      ];
      const native = await readShard(g.client, 's', shard);
      const sdk = await sdkReadShard(g.sdk, 's', shard);
      expect(native.map((r) => r.sequenceNumber)).toEqual(expectedSeqs);
      expect(
        sdk.map((r) => ({
          seq: r.SequenceNumber,
          key: r.PartitionKey,
          data: text(r),
          ms: r.ApproximateArrivalTimestamp!.getTime(),
        })),
      ).toEqual(
        native.map((r) => ({
          seq: r.sequenceNumber,
          key: r.partitionKey,
          data: r.data.toString(),
          ms: r.approximateArrivalTimestampMs,
        })),
      );
      expect(native.map((r) => r.approximateArrivalTimestampMs)).toEqual(
        native.map((r) =>
          r.data.toString().startsWith('sdk') ? 1_770_000_000_005 : 1_770_000_000_012,
        ),
      );
    }

    // Iterators are interchangeable: one from the SDK read by the native client, and back.
    const first = viaSdk.Records![0]!;
    const sdkIt = await sdkIterator(g.sdk, {
      StreamName: 's',
      ShardId: first.ShardId!,
      ShardIteratorType: 'AT_SEQUENCE_NUMBER',
      StartingSequenceNumber: first.SequenceNumber!,
    });
    const nativePage = await g.client.getRecords({ shardIterator: sdkIt, limit: 1 });
    expect(nativePage.records.map((r) => r.sequenceNumber)).toEqual([first.SequenceNumber]);
    const sdkRest = await sdkReadAll(g.sdk, nativePage.nextShardIterator);
    const { shardIterator: nativeIt } = await g.client.getShardIterator({
      streamName: 's',
      shardId: first.ShardId!,
      shardIteratorType: It.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER,
      startingSequenceNumber: first.SequenceNumber!,
    });
    const fromNativeIt = await sdkReadAll(g.sdk, nativeIt);
    expect(fromNativeIt.records.map((r) => r.SequenceNumber)).toEqual(
      sdkRest.records.map((r) => r.SequenceNumber),
    );
    expect(fromNativeIt.records.length).toBeGreaterThan(0);
    // And the SDK's NextShardIterator continues in the native client.
    await g.client.putRecord({
      streamName: 's',
      partitionKey: 'late',
      explicitHashKey: first.ShardId === shardId(0) ? '0' : MAX_HASH_KEY.toString(),
      data: Buffer.from('late'),
    });
    const late = await g.client.getRecords({ shardIterator: fromNativeIt.next });
    expect(late.records.map((r) => r.data.toString())).toEqual(['late']);
  });

  it('accepts the largest legal values', async () => {
    const g = await gateway.start({ defaultShardLimits: UNLIMITED });
    await createActiveSdk(g.sdk, 'n'.repeat(128), 1);
    await createActiveSdk(g.sdk, 's', 1);
    const put = (extra: {
      PartitionKey?: string;
      ExplicitHashKey?: string;
      SequenceNumberForOrdering?: string;
    }) =>
      g.sdk.send(
        new PutRecordCommand({
          StreamName: 's',
          PartitionKey: 'k',
          Data: Buffer.from('d'),
          ...extra,
        }),
      );
    const first = await put({ PartitionKey: '\u{1F600}'.repeat(256) });
    await put({ PartitionKey: 'p'.repeat(256) });
    await put({ ExplicitHashKey: MAX_HASH_KEY.toString() });
    await put({ ExplicitHashKey: '0' });
    await put({ SequenceNumberForOrdering: first.SequenceNumber! });
    await put({ SequenceNumberForOrdering: '0' });
    const many = await g.sdk.send(
      new PutRecordsCommand({
        StreamName: 's',
        Records: Array.from({ length: 500 }, () => ({ PartitionKey: 'k', Data: Buffer.from('d') })),
      }),
    );
    expect(many.FailedRecordCount).toBe(0);
    const iterator = await sdkIterator(g.sdk, {
      StreamName: 's',
      ShardId: shardId(0),
      ShardIteratorType: 'TRIM_HORIZON',
    });
    expect(iterator.length).toBeLessThanOrEqual(512);
    const all = await g.sdk.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
    expect(all.Records).toHaveLength(506);
    const one = await g.sdk.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1 }));
    expect(one.Records).toHaveLength(1);
    expect((await g.sdk.send(new ListStreamsCommand({ Limit: 10_000 }))).StreamNames).toHaveLength(
      2,
    );
    await g.sdk.send(new ListShardsCommand({ StreamName: 's', MaxResults: 10_000 }));
    await g.sdk.send(new DescribeStreamCommand({ StreamName: 's', Limit: 10_000 }));
    await g.sdk.send(new ListTagsForStreamCommand({ StreamName: 's', Limit: 50 }));
    await g.sdk.send(
      new AddTagsToStreamCommand({
        StreamName: 's',
        Tags: { ['k'.repeat(128)]: 'v'.repeat(256), 'a b_.:/=+-@%': '' },
      }),
    );
    expect((await g.sdk.send(new ListTagsForStreamCommand({ StreamName: 's' }))).Tags).toHaveLength(
      2,
    );
    await g.sdk.send(
      new IncreaseStreamRetentionPeriodCommand({ StreamName: 's', RetentionPeriodHours: 8760 }),
    );
    await g.sdk.send(
      new DecreaseStreamRetentionPeriodCommand({ StreamName: 's', RetentionPeriodHours: 24 }),
    );
  });
});
