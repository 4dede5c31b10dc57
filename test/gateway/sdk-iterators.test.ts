import {
  ExpiredIteratorException,
  GetRecordsCommand,
  PutRecordsCommand,
  type GetShardIteratorCommandInput,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { arnOf, shardId, UNLIMITED } from '../api/helpers.js';
import {
  createActiveSdk,
  expectSdkError,
  HANDLERS,
  sdkIterator,
  sdkReadAll,
  text,
  useGateway,
} from './sdk-helpers.js';

/**
 * The five iterator types through the AWS SDK, over HTTP/2 and HTTP/1.1: where each one starts,
 * AT_TIMESTAMP with a Date to the millisecond, and expiry after 5 minutes, all on a ManualClock.
 */

/** Puts `texts` as one PutRecords into shard 0 and returns their sequence numbers. */
async function putBatch(sdk: KinesisClient, texts: readonly string[]): Promise<string[]> {
  const put = await sdk.send(
    new PutRecordsCommand({
      StreamName: 's',
      Records: texts.map((t) => ({
        PartitionKey: 'k',
        ExplicitHashKey: '0',
        Data: Buffer.from(t),
      })),
    }),
  );
  expect(put.FailedRecordCount).toBe(0);
  for (const r of put.Records!) expect(r.ShardId).toBe(shardId(0));
  return put.Records!.map((r) => r.SequenceNumber!);
}

describe.each(HANDLERS)('%s', (_label, kind) => {
  const gateway = useGateway(kind);

  async function start() {
    const clock = new ManualClock(1_770_000_000_000);
    const g = await gateway.start({ clock, defaultShardLimits: UNLIMITED });
    await createActiveSdk(g.sdk, 's', 2);
    const iterator = (input: Partial<GetShardIteratorCommandInput>) =>
      sdkIterator(g.sdk, {
        StreamName: 's',
        ShardId: shardId(0),
        ShardIteratorType: 'TRIM_HORIZON',
        ...input,
      });
    const texts = async (shardIterator: string) =>
      (await sdkReadAll(g.sdk, shardIterator)).records.map(text);
    return { ...g, clock, iterator, texts };
  }

  it('TRIM_HORIZON starts at the oldest record', async () => {
    const { sdk, iterator, texts } = await start();
    await putBatch(sdk, ['a', 'b']);
    await putBatch(sdk, ['c']);
    expect(await texts(await iterator({ ShardIteratorType: 'TRIM_HORIZON' }))).toEqual([
      'a',
      'b',
      'c',
    ]);
    // The other shard is empty, and its iterator is its own.
    expect(await texts(await iterator({ ShardId: shardId(1) }))).toEqual([]);
  });

  it('LATEST sees only records put after the iterator was made', async () => {
    const { sdk, iterator, texts } = await start();
    await putBatch(sdk, ['old1', 'old2']);
    const latest = await iterator({ ShardIteratorType: 'LATEST' });
    const before = await sdk.send(new GetRecordsCommand({ ShardIterator: latest }));
    expect(before.Records).toEqual([]);
    expect(before.NextShardIterator).toMatch(/\S/);
    await putBatch(sdk, ['new1', 'new2']);
    await putBatch(sdk, ['new3']);
    expect(await texts(latest)).toEqual(['new1', 'new2', 'new3']);
    expect(await texts(before.NextShardIterator!)).toEqual(['new1', 'new2', 'new3']);
  });

  it('AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER start at or just after any record, mid-batch included', async () => {
    const { sdk, iterator, texts } = await start();
    const first = await putBatch(sdk, ['a0', 'a1', 'a2', 'a3']);
    const second = await putBatch(sdk, ['b0', 'b1']);
    const all = [...first, ...second];
    const names = ['a0', 'a1', 'a2', 'a3', 'b0', 'b1'];
    for (let i = 0; i < all.length; i++) {
      const at = await iterator({
        ShardIteratorType: 'AT_SEQUENCE_NUMBER',
        StartingSequenceNumber: all[i]!,
      });
      expect(await texts(at)).toEqual(names.slice(i));
      const after = await iterator({
        ShardIteratorType: 'AFTER_SEQUENCE_NUMBER',
        StartingSequenceNumber: all[i]!,
      });
      expect(await texts(after)).toEqual(names.slice(i + 1));
    }
    const afterLast = await iterator({
      ShardIteratorType: 'AFTER_SEQUENCE_NUMBER',
      StartingSequenceNumber: second[1]!,
    });
    await putBatch(sdk, ['c0']);
    expect(await texts(afterLast)).toEqual(['c0']);
    // The records carry exactly the sequence numbers they were stored with.
    const fromA2 = await sdkReadAll(
      sdk,
      await iterator({
        ShardIteratorType: 'AT_SEQUENCE_NUMBER',
        StartingSequenceNumber: first[2]!,
      }),
    );
    expect(fromA2.records.map((r) => r.SequenceNumber).slice(0, 4)).toEqual(all.slice(2));
  });

  it('AT_TIMESTAMP (a Date) starts at the first record that arrived at or after it, to the millisecond', async () => {
    const { sdk, clock, iterator, texts } = await start();
    const t0 = clock.nowMs();
    await putBatch(sdk, ['a0', 'a1']);
    clock.advance(1000);
    await putBatch(sdk, ['b0', 'b1']);
    clock.advance(1);
    await putBatch(sdk, ['c0']);
    const atTime = (ms: number) =>
      iterator({ ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(ms) });
    const everything = ['a0', 'a1', 'b0', 'b1', 'c0'];
    expect(await texts(await atTime(0))).toEqual(everything);
    expect(await texts(await atTime(t0 - 60_000))).toEqual(everything);
    expect(await texts(await atTime(t0))).toEqual(everything);
    expect(await texts(await atTime(t0 + 1))).toEqual(['b0', 'b1', 'c0']);
    expect(await texts(await atTime(t0 + 999))).toEqual(['b0', 'b1', 'c0']);
    expect(await texts(await atTime(t0 + 1000))).toEqual(['b0', 'b1', 'c0']);
    expect(await texts(await atTime(t0 + 1001))).toEqual(['c0']);
    const future = await atTime(t0 + 1002);
    expect(await texts(future)).toEqual([]);
    // A timestamp after the tip behaves like LATEST: later records are seen.
    await putBatch(sdk, ['d0']);
    expect(await texts(future)).toEqual(['d0']);
    // The arrival timestamps (Dates) are what AT_TIMESTAMP searched by.
    const records = (await sdkReadAll(sdk, await atTime(0))).records;
    for (const r of records) expect(r.ApproximateArrivalTimestamp).toBeInstanceOf(Date);
    expect(records.map((r) => r.ApproximateArrivalTimestamp!.getTime())).toEqual([
      t0,
      t0,
      t0 + 1000,
      t0 + 1000,
      t0 + 1001,
      t0 + 1001,
    ]);
  });

  it('GetRecords honours Limit and StreamARN, and hands out NextShardIterator and MillisBehindLatest', async () => {
    const { sdk, clock, iterator } = await start();
    await putBatch(sdk, ['a', 'b']);
    clock.advance(2500);
    await putBatch(sdk, ['c']);
    const page1 = await sdk.send(
      new GetRecordsCommand({ ShardIterator: await iterator({}), Limit: 2, StreamARN: arnOf('s') }),
    );
    expect(page1.Records!.map(text)).toEqual(['a', 'b']);
    // 'b' arrived 2.5 s before the newest record.
    expect(page1.MillisBehindLatest).toBe(2500);
    const page2 = await sdk.send(
      new GetRecordsCommand({ ShardIterator: page1.NextShardIterator!, Limit: 2 }),
    );
    expect(page2.Records!.map(text)).toEqual(['c']);
    expect(page2.MillisBehindLatest).toBe(0);
    const page3 = await sdk.send(
      new GetRecordsCommand({ ShardIterator: page2.NextShardIterator! }),
    );
    expect(page3.Records).toEqual([]);
    expect(page3.MillisBehindLatest).toBe(0);
    expect(page3.NextShardIterator).toMatch(/\S/);
  });

  it('accepts an iterator for 5 minutes, then fails with ExpiredIteratorException', async () => {
    const { sdk, clock, iterator } = await start();
    await putBatch(sdk, ['a', 'b']);
    const it0 = await iterator({});
    clock.advance(299_999);
    const page = await sdk.send(new GetRecordsCommand({ ShardIterator: it0, Limit: 1 }));
    expect(page.Records!.map(text)).toEqual(['a']);
    clock.advance(2); // 300,001 ms after the iterator was issued
    const expired = await expectSdkError(
      sdk.send(new GetRecordsCommand({ ShardIterator: it0 })),
      'ExpiredIteratorException',
      /expired/i,
    );
    expect(expired.error).toBeInstanceOf(ExpiredIteratorException);
    // The next iterator was issued at read time, so it is still fresh.
    const rest = await sdk.send(new GetRecordsCommand({ ShardIterator: page.NextShardIterator! }));
    expect(rest.Records!.map(text)).toEqual(['b']);
    clock.advance(300_001);
    await expectSdkError(
      sdk.send(new GetRecordsCommand({ ShardIterator: rest.NextShardIterator! })),
      'ExpiredIteratorException',
    );
    // Every type of iterator expires the same way.
    const [seq] = await putBatch(sdk, ['c']);
    const fresh = await Promise.all(
      [
        { ShardIteratorType: 'TRIM_HORIZON' as const },
        { ShardIteratorType: 'LATEST' as const },
        { ShardIteratorType: 'AT_SEQUENCE_NUMBER' as const, StartingSequenceNumber: seq! },
        { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER' as const, StartingSequenceNumber: seq! },
        { ShardIteratorType: 'AT_TIMESTAMP' as const, Timestamp: new Date(clock.nowMs()) },
      ].map((input) => iterator(input)),
    );
    clock.advance(300_001);
    for (const shardIterator of fresh) {
      await expectSdkError(
        sdk.send(new GetRecordsCommand({ ShardIterator: shardIterator })),
        'ExpiredIteratorException',
      );
    }
  });
});
