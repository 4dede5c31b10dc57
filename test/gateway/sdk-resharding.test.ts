import {
  DescribeStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  ListShardsCommand,
  MergeShardsCommand,
  PutRecordsCommand,
  SplitShardCommand,
  UpdateShardCountCommand,
  type _Record,
  type ChildShard,
  type KinesisClient,
  type KinesisServiceException,
  type ScalingType,
  type Shard,
  type ShardFilterType,
} from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { arnOf, MAX_HASH_KEY, shardId, UNLIMITED } from '../api/helpers.js';
import {
  createActiveSdk,
  expectSdkContiguousRanges,
  expectSdkError,
  sdkIterator,
  text,
  useGateway,
  waitActive,
} from './sdk-helpers.js';

/**
 * Resharding through the real AWS SDK for JavaScript v3 in its default configuration (HTTP/2):
 * SplitShard, MergeShards and UpdateShardCount, each followed by a wait for ACTIVE; records written
 * before, during and after every change, then every generation read in lineage order (a parent to
 * its end, where GetRecords answers no NextShardIterator and names its ChildShards, before any of
 * its children; a merged child only once both parents are done), checking that every record
 * appears exactly once and each partition key keeps its order. Also the lineage in ListShards
 * (every ShardFilter type) and DescribeStream, and Kinesis' errors for bad requests.
 *
 * Error names, from the AWS Kinesis API reference (SplitShard, MergeShards, UpdateShardCount) and
 * the Smithy model the SDK is generated from:
 * - A shard the stream does not have: ResourceNotFoundException ("Could not find shard ...").
 * - A shard already split or merged: ResourceInUseException ("... has already been merged or
 *   split, and thus is not eligible for merging or splitting").
 * - NewStartingHashKey not strictly between StartingHashKey + 1 and EndingHashKey of the shard:
 *   InvalidArgumentException ("NewStartingHashKey ... is not both greater than one plus the
 *   shard's StartingHashKey ... and less than the shard's EndingHashKey ...").
 * - NewStartingHashKey not matching the model's pattern `0|([1-9]\d{0,38})`, and any missing
 *   required member: ValidationException (the model's constraints).
 * - Shards that are not an adjacent pair (a shard with itself included): InvalidArgumentException
 *   ("... are not an adjacent pair of shards eligible for merging").
 * - UpdateShardCount above double or below half the open shard count: the reference lists these
 *   among the operation's default limits without naming the error; InvalidArgumentException ("a
 *   specified parameter exceeds its restrictions") is the documented error that fits a
 *   TargetShardCount outside its limits, and it is what other Kinesis emulators validated against
 *   AWS answer (LimitExceededException is for the account's shard limit and the call rate).
 * - ScalingType missing or outside [UNIFORM_SCALING], TargetShardCount missing or below 1:
 *   ValidationException.
 * - A split or merge while the stream is UPDATING: the reference says "If a stream is in CREATING
 *   or UPDATING or DELETING states, ... returns a ResourceInUseException" (SplitShard and
 *   MergeShards alike), and Rheos does; the test checks that the second request changed nothing.
 *   (LimitExceededException, which the SDK retries as throttling, is for too many streams being
 *   resharded at once.)
 */

const KEYS = Array.from({ length: 12 }, (_, i) => `key-${i}`);
const MID = ((MAX_HASH_KEY + 1n) / 2n).toString();
const QUARTER = ((MAX_HASH_KEY + 1n) / 4n).toString();

/** What was written, in order, overall and per partition key. */
class Ledger {
  readonly sent: string[] = [];
  readonly byKey = new Map<string, string[]>();
  private n = 0;

  /** PutRecords of `count` records round-robin over KEYS; every one must be accepted. */
  async put(sdk: KinesisClient, streamName: string, tag: string, count = 36): Promise<void> {
    const batch = Array.from({ length: count }, () => {
      const n = this.n++;
      return { key: KEYS[n % KEYS.length] as string, data: `${tag}-${n}` };
    });
    const answer = await sdk.send(
      new PutRecordsCommand({
        StreamName: streamName,
        Records: batch.map((r) => ({ PartitionKey: r.key, Data: Buffer.from(r.data) })),
      }),
    );
    expect(answer.FailedRecordCount, JSON.stringify(answer.Records?.find((r) => r.ErrorCode))).toBe(
      0,
    );
    for (const r of batch) {
      this.sent.push(r.data);
      const list = this.byKey.get(r.key) ?? [];
      list.push(r.data);
      this.byKey.set(r.key, list);
    }
  }
}

async function listAll(sdk: KinesisClient, streamName: string): Promise<Shard[]> {
  const shards: Shard[] = [];
  let token: string | undefined;
  for (let page = 0; page < 100; page++) {
    const answer = await sdk.send(
      new ListShardsCommand(
        token === undefined ? { StreamName: streamName, MaxResults: 5 } : { NextToken: token },
      ),
    );
    shards.push(...(answer.Shards ?? []));
    token = answer.NextToken;
    if (token === undefined) return shards;
  }
  throw new Error('ListShards did not end');
}

function isClosed(shard: Shard): boolean {
  return shard.SequenceNumberRange?.EndingSequenceNumber !== undefined;
}

function byStartingHashKey(shards: readonly Shard[]): Shard[] {
  return [...shards].sort((a, b) => {
    const x = BigInt(a.HashKeyRange!.StartingHashKey!);
    const y = BigInt(b.HashKeyRange!.StartingHashKey!);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

interface ShardRead {
  readonly records: _Record[];
  /** True when GetRecords answered no NextShardIterator: the shard is closed and fully read. */
  readonly ended: boolean;
  readonly children: ChildShard[];
}

/**
 * Reads one shard from TRIM_HORIZON: a closed shard until GetRecords answers no NextShardIterator
 * (an empty page before that is polled on, bounded), an open one until a page comes back empty.
 */
async function readShard(
  sdk: KinesisClient,
  streamName: string,
  id: string,
  closed: boolean,
): Promise<ShardRead> {
  const records: _Record[] = [];
  let iterator = await sdkIterator(sdk, {
    StreamName: streamName,
    ShardId: id,
    ShardIteratorType: 'TRIM_HORIZON',
  });
  const deadline = Date.now() + 30_000;
  for (let call = 0; call < 5_000 && Date.now() < deadline; call++) {
    const page = await sdk.send(new GetRecordsCommand({ ShardIterator: iterator }));
    records.push(...(page.Records ?? []));
    if (page.NextShardIterator === undefined) {
      expect(closed, `${id} ended but is listed open`).toBe(true);
      return { records, ended: true, children: page.ChildShards ?? [] };
    }
    expect(page.NextShardIterator).toMatch(/^\S+$/);
    // Children are named only at the end of a closed shard.
    expect(page.ChildShards ?? []).toEqual([]);
    if ((page.Records ?? []).length === 0) {
      if (!closed) return { records, ended: false, children: [] };
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    iterator = page.NextShardIterator;
  }
  throw new Error(`shard ${id} did not end (${records.length} records read)`);
}

/**
 * Reads every generation as a lineage-aware consumer (the KCL) does: the shards without a listed
 * parent first, each to its end, then the children its last GetRecords names in ChildShards; a
 * child is read only once every one of its parents is done. Checks that ChildShards agree with
 * the listing and that every listed shard is reached.
 */
async function readLineage(
  sdk: KinesisClient,
  streamName: string,
): Promise<Array<{ shardId: string; record: _Record }>> {
  const shards = await listAll(sdk, streamName);
  const byId = new Map(shards.map((s) => [s.ShardId!, s]));
  const parentsOf = (s: Shard) =>
    [s.ParentShardId, s.AdjacentParentShardId].filter(
      (p): p is string => p !== undefined && byId.has(p),
    );
  const queue = shards.filter((s) => parentsOf(s).length === 0).map((s) => s.ShardId!);
  const done = new Set<string>();
  const order: string[] = [];
  const out: Array<{ shardId: string; record: _Record }> = [];
  while (queue.length > 0) {
    const id = queue.shift()!;
    if (done.has(id)) continue;
    const shard = byId.get(id)!;
    expect(
      parentsOf(shard).filter((p) => !done.has(p)),
      `${id} read before its parents`,
    ).toEqual([]);
    const read = await readShard(sdk, streamName, id, isClosed(shard));
    expect(read.ended, `${id} ended`).toBe(isClosed(shard));
    for (const record of read.records) out.push({ shardId: id, record });
    if (isClosed(shard)) {
      const ending = BigInt(shard.SequenceNumberRange!.EndingSequenceNumber!);
      for (const r of read.records) expect(BigInt(r.SequenceNumber!) <= ending).toBe(true);
    }
    done.add(id);
    order.push(id);
    for (const child of read.children) {
      const listed = byId.get(child.ShardId!);
      expect(listed, `child ${child.ShardId} of ${id} is listed`).toBeDefined();
      expect([...(child.ParentShards ?? [])].sort()).toEqual(parentsOf(listed!).sort());
      expect(child.ParentShards).toContain(id);
      expect(child.HashKeyRange).toEqual(listed!.HashKeyRange);
      // A merged child waits for its other parent, which names it too when it ends.
      if ((child.ParentShards ?? []).every((p) => done.has(p))) queue.push(child.ShardId!);
    }
  }
  expect([...order].sort()).toEqual(shards.map((s) => s.ShardId!).sort());
  return out;
}

/** Every record written appears exactly once, and each partition key's records in write order. */
async function expectLineage(sdk: KinesisClient, streamName: string, ledger: Ledger) {
  const read = await readLineage(sdk, streamName);
  const texts = read.map((r) => text(r.record));
  expect(new Set(texts).size, 'no record read twice').toBe(texts.length);
  expect([...texts].sort()).toEqual([...ledger.sent].sort());
  const byKey = new Map<string, string[]>();
  for (const { record } of read) {
    const list = byKey.get(record.PartitionKey!) ?? [];
    list.push(text(record));
    byKey.set(record.PartitionKey!, list);
  }
  expect(byKey).toEqual(ledger.byKey);
}

describe('resharding through the AWS SDK (HTTP/2)', () => {
  const gateway = useGateway('h2');

  async function start(shards: number, clock?: ManualClock) {
    const g = await gateway.start({
      defaultShardLimits: UNLIMITED,
      ...(clock === undefined ? {} : { clock }),
    });
    await createActiveSdk(g.sdk, 's', shards);
    return g;
  }

  async function status(sdk: KinesisClient): Promise<string | undefined> {
    const { StreamDescriptionSummary: s } = await sdk.send(
      new DescribeStreamSummaryCommand({ StreamName: 's' }),
    );
    return s?.StreamStatus;
  }

  it('SplitShard: the parent closes, two children open, every record once in key order', async () => {
    const { sdk } = await start(1);
    const ledger = new Ledger();
    await ledger.put(sdk, 's', 'before');
    await sdk.send(
      new SplitShardCommand({
        StreamName: 's',
        ShardToSplit: shardId(0),
        NewStartingHashKey: MID,
      }),
    );
    expect(['UPDATING', 'ACTIVE']).toContain(await status(sdk));
    await ledger.put(sdk, 's', 'during');
    expect((await waitActive(sdk, 's')).OpenShardCount).toBe(2);
    await ledger.put(sdk, 's', 'after');

    const shards = await listAll(sdk, 's');
    expect(shards.map((s) => s.ShardId)).toEqual([shardId(0), shardId(1), shardId(2)]);
    const [parent, low, high] = shards;
    expect(parent!.SequenceNumberRange!.EndingSequenceNumber).toMatch(/^\d+$/);
    expect(low).toMatchObject({
      ParentShardId: shardId(0),
      HashKeyRange: { StartingHashKey: '0', EndingHashKey: (BigInt(MID) - 1n).toString() },
    });
    expect(high).toMatchObject({
      ParentShardId: shardId(0),
      HashKeyRange: { StartingHashKey: MID, EndingHashKey: MAX_HASH_KEY.toString() },
    });
    for (const child of [low!, high!]) {
      expect(child.AdjacentParentShardId).toBeUndefined();
      expect(isClosed(child)).toBe(false);
    }
    // The parent read to its end: no NextShardIterator, both children named.
    const end = await readShard(sdk, 's', shardId(0), true);
    expect(end.ended).toBe(true);
    expect(end.children).toEqual([
      { ShardId: shardId(1), ParentShards: [shardId(0)], HashKeyRange: low!.HashKeyRange },
      { ShardId: shardId(2), ParentShards: [shardId(0)], HashKeyRange: high!.HashKeyRange },
    ]);
    expect(end.records.map(text).filter((t) => t.startsWith('after'))).toEqual([]);
    await expectLineage(sdk, 's', ledger);

    // LATEST on the closed parent ends at once, and so does an iterator made from the end.
    const latest = await sdkIterator(sdk, {
      StreamName: 's',
      ShardId: shardId(0),
      ShardIteratorType: 'LATEST',
    });
    const atEnd = await sdk.send(new GetRecordsCommand({ ShardIterator: latest }));
    expect(atEnd.Records).toEqual([]);
    expect(atEnd.NextShardIterator).toBeUndefined();
    expect(atEnd.ChildShards?.map((c) => c.ShardId)).toEqual([shardId(1), shardId(2)]);
  });

  it('MergeShards: two adjacent shards close into one child with both parents', async () => {
    const { sdk } = await start(3);
    const ledger = new Ledger();
    await ledger.put(sdk, 's', 'before');
    await sdk.send(
      new MergeShardsCommand({
        StreamName: 's',
        ShardToMerge: shardId(2),
        AdjacentShardToMerge: shardId(1),
      }),
    );
    await ledger.put(sdk, 's', 'during');
    expect((await waitActive(sdk, 's')).OpenShardCount).toBe(2);
    await ledger.put(sdk, 's', 'after');

    const shards = await listAll(sdk, 's');
    const byId = new Map(shards.map((s) => [s.ShardId, s]));
    const child = byId.get(shardId(3))!;
    expect(child).toMatchObject({
      ParentShardId: shardId(2),
      AdjacentParentShardId: shardId(1),
      HashKeyRange: {
        StartingHashKey: byId.get(shardId(1))!.HashKeyRange!.StartingHashKey,
        EndingHashKey: byId.get(shardId(2))!.HashKeyRange!.EndingHashKey,
      },
    });
    expect(shards.filter((s) => !isClosed(s)).map((s) => s.ShardId)).toEqual([
      shardId(0),
      shardId(3),
    ]);
    expectSdkContiguousRanges(byStartingHashKey(shards.filter((s) => !isClosed(s))));
    for (const parent of [shardId(1), shardId(2)]) {
      const end = await readShard(sdk, 's', parent, true);
      expect(end.ended).toBe(true);
      expect(end.children).toEqual([
        {
          ShardId: shardId(3),
          ParentShards: [shardId(2), shardId(1)],
          HashKeyRange: child.HashKeyRange,
        },
      ]);
    }
    await expectLineage(sdk, 's', ledger);
  });

  it('UpdateShardCount 2 -> 4 -> 2 -> 3 -> 2: uniform ranges each time, every generation in order', async () => {
    const { sdk } = await start(2);
    const ledger = new Ledger();
    let current = 2;
    for (const target of [4, 2, 3, 2]) {
      await ledger.put(sdk, 's', `before-${target}`);
      const answer = await sdk.send(
        new UpdateShardCountCommand({
          StreamName: 's',
          TargetShardCount: target,
          ScalingType: 'UNIFORM_SCALING',
        }),
      );
      expect(answer).toMatchObject({
        StreamName: 's',
        StreamARN: arnOf('s'),
        CurrentShardCount: current,
        TargetShardCount: target,
      });
      await ledger.put(sdk, 's', `during-${target}`);
      expect((await waitActive(sdk, 's')).OpenShardCount).toBe(target);
      const open = await sdk.send(
        new ListShardsCommand({ StreamName: 's', ShardFilter: { Type: 'AT_LATEST' } }),
      );
      const sorted = byStartingHashKey(open.Shards ?? []);
      expect(sorted).toHaveLength(target);
      expectSdkContiguousRanges(sorted);
      const width = (MAX_HASH_KEY + 1n) / BigInt(target);
      sorted.forEach((s, i) =>
        expect(BigInt(s.HashKeyRange!.StartingHashKey!)).toBe(width * BigInt(i)),
      );
      current = target;
    }
    await ledger.put(sdk, 's', 'last');
    await expectLineage(sdk, 's', ledger);
  });

  it('split, merge across generations, then UpdateShardCount: the whole lineage reads in order', async () => {
    const { sdk } = await start(2);
    const ledger = new Ledger();
    const change = async (label: string, send: () => Promise<unknown>, open: number) => {
      await ledger.put(sdk, 's', `before-${label}`);
      await send();
      await ledger.put(sdk, 's', `during-${label}`);
      expect((await waitActive(sdk, 's')).OpenShardCount).toBe(open);
      await ledger.put(sdk, 's', `after-${label}`);
    };
    // shard 0 = [0, MID), shard 1 = [MID, MAX]; shard 0 splits at a quarter into 2 and 3.
    await change(
      'split',
      () =>
        sdk.send(
          new SplitShardCommand({
            StreamName: 's',
            ShardToSplit: shardId(0),
            NewStartingHashKey: QUARTER,
          }),
        ),
      3,
    );
    // A child of the split merges with a shard of the first generation: shard 4 = [QUARTER, MAX].
    await change(
      'merge',
      () =>
        sdk.send(
          new MergeShardsCommand({
            StreamName: 's',
            ShardToMerge: shardId(1),
            AdjacentShardToMerge: shardId(3),
          }),
        ),
      2,
    );
    const merged = (await listAll(sdk, 's')).find((s) => s.ShardId === shardId(4));
    expect(merged).toMatchObject({
      ParentShardId: shardId(1),
      AdjacentParentShardId: shardId(3),
      HashKeyRange: { StartingHashKey: QUARTER, EndingHashKey: MAX_HASH_KEY.toString() },
    });
    await change(
      'up',
      () =>
        sdk.send(
          new UpdateShardCountCommand({
            StreamName: 's',
            TargetShardCount: 4,
            ScalingType: 'UNIFORM_SCALING',
          }),
        ),
      4,
    );
    await change(
      'down',
      () =>
        sdk.send(
          new UpdateShardCountCommand({
            StreamName: 's',
            TargetShardCount: 2,
            ScalingType: 'UNIFORM_SCALING',
          }),
        ),
      2,
    );
    const shards = await listAll(sdk, 's');
    expect(shards.length).toBeGreaterThan(8);
    await expectLineage(sdk, 's', ledger);
  });

  it('ListShards with every ShardFilter type after a split', async () => {
    const clock = new ManualClock(1_790_000_000_000);
    const { sdk } = await start(1, clock);
    const t0 = clock.nowMs();
    clock.advance(1_000);
    await sdk.send(
      new SplitShardCommand({ StreamName: 's', ShardToSplit: shardId(0), NewStartingHashKey: MID }),
    );
    await waitActive(sdk, 's');
    clock.advance(1_000);
    const t2 = clock.nowMs();
    const ids = async (Type: ShardFilterType, extra: { ShardId?: string; Timestamp?: Date } = {}) =>
      (
        await sdk.send(new ListShardsCommand({ StreamName: 's', ShardFilter: { Type, ...extra } }))
      ).Shards?.map((s) => s.ShardId);
    const all = [shardId(0), shardId(1), shardId(2)];
    const children = [shardId(1), shardId(2)];
    // Only the open shards.
    expect(await ids('AT_LATEST')).toEqual(children);
    // The oldest generation still held.
    expect(await ids('AT_TRIM_HORIZON')).toEqual([shardId(0)]);
    // Everything still held.
    expect(await ids('FROM_TRIM_HORIZON')).toEqual(all);
    expect(await ids('AFTER_SHARD_ID', { ShardId: shardId(0) })).toEqual(children);
    expect(await ids('AFTER_SHARD_ID', { ShardId: shardId(1) })).toEqual([shardId(2)]);
    // Open at the time: before the split the parent, after it the children.
    expect(await ids('AT_TIMESTAMP', { Timestamp: new Date(t0) })).toEqual([shardId(0)]);
    expect(await ids('AT_TIMESTAMP', { Timestamp: new Date(t2) })).toEqual(children);
    // Open at or after the time.
    expect(await ids('FROM_TIMESTAMP', { Timestamp: new Date(t0) })).toEqual(all);
    expect(await ids('FROM_TIMESTAMP', { Timestamp: new Date(t2) })).toEqual(children);
    // A filter type outside the enum is the gateway's ValidationException.
    await expectSdkError(
      sdk.send(
        new ListShardsCommand({
          StreamName: 's',
          ShardFilter: { Type: 'AT_SOMETIME' as ShardFilterType },
        }),
      ),
      'ValidationException',
      /AT_SOMETIME/,
    );
  });

  it('DescribeStream shows ParentShardId, AdjacentParentShardId and EndingSequenceNumber', async () => {
    const { sdk } = await start(2);
    const ledger = new Ledger();
    await ledger.put(sdk, 's', 'a');
    await sdk.send(
      new SplitShardCommand({
        StreamName: 's',
        ShardToSplit: shardId(1),
        NewStartingHashKey: (BigInt(MID) + BigInt(QUARTER)).toString(),
      }),
    );
    await waitActive(sdk, 's');
    await sdk.send(
      new MergeShardsCommand({
        StreamName: 's',
        ShardToMerge: shardId(0),
        AdjacentShardToMerge: shardId(2),
      }),
    );
    await waitActive(sdk, 's');
    const { StreamDescription: d } = await sdk.send(new DescribeStreamCommand({ StreamName: 's' }));
    expect(d?.StreamStatus).toBe('ACTIVE');
    expect(d?.HasMoreShards).toBe(false);
    const shards = new Map(d!.Shards!.map((s) => [s.ShardId!, s]));
    expect([...shards.keys()]).toEqual([0, 1, 2, 3, 4].map(shardId));
    for (const closed of [shardId(0), shardId(1), shardId(2)]) {
      const s = shards.get(closed)!;
      const range = s.SequenceNumberRange!;
      expect(range.EndingSequenceNumber, closed).toMatch(/^\d+$/);
      expect(BigInt(range.EndingSequenceNumber!) >= BigInt(range.StartingSequenceNumber!)).toBe(
        true,
      );
    }
    for (const open of [shardId(3), shardId(4)]) {
      expect(shards.get(open)!.SequenceNumberRange!.EndingSequenceNumber, open).toBeUndefined();
    }
    expect(shards.get(shardId(0))!.ParentShardId).toBeUndefined();
    expect(shards.get(shardId(2))).toMatchObject({ ParentShardId: shardId(1) });
    expect(shards.get(shardId(2))!.AdjacentParentShardId).toBeUndefined();
    expect(shards.get(shardId(3))).toMatchObject({ ParentShardId: shardId(1) });
    expect(shards.get(shardId(4))).toMatchObject({
      ParentShardId: shardId(0),
      AdjacentParentShardId: shardId(2),
      HashKeyRange: {
        StartingHashKey: '0',
        EndingHashKey: (BigInt(MID) + BigInt(QUARTER) - 1n).toString(),
      },
    });
    // A child starts after its parents ended.
    const ending = (id: string) =>
      BigInt(shards.get(id)!.SequenceNumberRange!.EndingSequenceNumber!);
    const starting = (id: string) =>
      BigInt(shards.get(id)!.SequenceNumberRange!.StartingSequenceNumber!);
    expect(starting(shardId(4)) > ending(shardId(0))).toBe(true);
    expect(starting(shardId(4)) > ending(shardId(2))).toBe(true);
    await expectLineage(sdk, 's', ledger);
  });

  describe("Kinesis' errors", () => {
    it('SplitShard', async () => {
      const { sdk, once } = await start(2);
      const split = (input: Record<string, unknown>) =>
        sdk.send(new SplitShardCommand({ StreamName: 's', ...input } as never));
      const secondStart = BigInt(MID);
      await expectSdkError(
        split({ ShardToSplit: shardId(7), NewStartingHashKey: '5' }),
        'ResourceNotFoundException',
        /Could not find shard shardId-000000000007 in stream s under account 000000000000/,
      );
      await expectSdkError(
        sdk.send(
          new SplitShardCommand({
            StreamName: 'missing',
            ShardToSplit: shardId(0),
            NewStartingHashKey: '5',
          }),
        ),
        'ResourceNotFoundException',
        /missing/,
      );
      // Equal to the shard's StartingHashKey (or one above), at or past its EndingHashKey,
      // inside another shard, beyond the hash space.
      for (const [shard, key] of [
        [shardId(0), '0'],
        [shardId(0), '1'],
        [shardId(1), MID],
        [shardId(0), (secondStart - 1n).toString()],
        [shardId(0), (secondStart + 5n).toString()],
        [shardId(1), MAX_HASH_KEY.toString()],
        [shardId(1), (MAX_HASH_KEY + 1n).toString()],
      ] as const) {
        await expectSdkError(
          split({ ShardToSplit: shard, NewStartingHashKey: key }),
          'InvalidArgumentException',
          /NewStartingHashKey/,
        );
      }
      // Not a number: the model's pattern.
      for (const key of ['12x', '-5', '0x10', '1e5', '007', ' 5', '1'.repeat(40)]) {
        await expectSdkError(
          split({ ShardToSplit: shardId(0), NewStartingHashKey: key }),
          'ValidationException',
          /newStartingHashKey/,
        );
      }
      // Missing required members.
      await expectSdkError(
        split({ ShardToSplit: shardId(0) }),
        'ValidationException',
        /newStartingHashKey/,
      );
      await expectSdkError(
        split({ NewStartingHashKey: '5' }),
        'ValidationException',
        /shardToSplit/,
      );
      await expectSdkError(
        sdk.send(
          new SplitShardCommand({ ShardToSplit: shardId(0), NewStartingHashKey: '5' } as never),
        ),
        'ValidationException',
        /streamName/,
      );
      // A JSON number where the model has a string.
      await expectSdkError(
        split({ ShardToSplit: shardId(0), NewStartingHashKey: 5 }),
        'SerializationException',
        /NewStartingHashKey/,
      );
      expect(await status(sdk)).toBe('ACTIVE');

      // One reshard at a time: a second one while UPDATING is refused (see the header comment for
      // the name) and changes nothing.
      await sdk.send(
        new SplitShardCommand({
          StreamName: 's',
          ShardToSplit: shardId(0),
          NewStartingHashKey: '5000',
        }),
      );
      const refused = await once
        .send(
          new SplitShardCommand({
            StreamName: 's',
            ShardToSplit: shardId(1),
            NewStartingHashKey: (secondStart + 5000n).toString(),
          }),
        )
        .then(
          () => undefined,
          (e: KinesisServiceException) => e,
        );
      expect(refused?.name).toBe('ResourceInUseException');
      expect(refused?.$metadata.httpStatusCode).toBe(400);
      expect(refused?.message).toMatch(/stream s/i);
      expect((await waitActive(sdk, 's')).OpenShardCount).toBe(3);
      expect((await listAll(sdk, 's')).map((s) => s.ShardId)).toEqual([0, 1, 2, 3].map(shardId));
      // The parent is closed now.
      await expectSdkError(
        split({ ShardToSplit: shardId(0), NewStartingHashKey: '6000' }),
        'ResourceInUseException',
        /has already been merged or split/,
      );
    });

    it('MergeShards', async () => {
      const { sdk, once } = await start(4);
      const merge = (input: Record<string, unknown>) =>
        sdk.send(new MergeShardsCommand({ StreamName: 's', ...input } as never));
      await expectSdkError(
        merge({ ShardToMerge: shardId(0), AdjacentShardToMerge: shardId(2) }),
        'InvalidArgumentException',
        /Shards shardId-000000000000 and shardId-000000000002 in stream s under account 000000000000 are not an adjacent pair of shards eligible for merging/,
      );
      await expectSdkError(
        merge({ ShardToMerge: shardId(1), AdjacentShardToMerge: shardId(1) }),
        'InvalidArgumentException',
        /not an adjacent pair of shards/,
      );
      await expectSdkError(
        merge({ ShardToMerge: shardId(1), AdjacentShardToMerge: shardId(9) }),
        'ResourceNotFoundException',
        /Could not find shard shardId-000000000009/,
      );
      await expectSdkError(
        merge({ ShardToMerge: shardId(1) }),
        'ValidationException',
        /adjacentShardToMerge/,
      );
      await expectSdkError(
        merge({ AdjacentShardToMerge: shardId(1) }),
        'ValidationException',
        /shardToMerge/,
      );
      // Outside the model's ShardId pattern [a-zA-Z0-9_.-]+ (a well-formed unknown id is the
      // ResourceNotFoundException above).
      await expectSdkError(
        merge({ ShardToMerge: 'shard/0', AdjacentShardToMerge: shardId(1) }),
        'ValidationException',
        /shardToMerge/,
      );
      await expectSdkError(
        merge({ ShardToMerge: 'shard-zero', AdjacentShardToMerge: shardId(1) }),
        'ResourceNotFoundException',
        /Could not find shard shard-zero/,
      );
      expect(await status(sdk)).toBe('ACTIVE');

      await sdk.send(
        new MergeShardsCommand({
          StreamName: 's',
          ShardToMerge: shardId(0),
          AdjacentShardToMerge: shardId(1),
        }),
      );
      const refused = await once
        .send(
          new MergeShardsCommand({
            StreamName: 's',
            ShardToMerge: shardId(2),
            AdjacentShardToMerge: shardId(3),
          }),
        )
        .then(
          () => undefined,
          (e: KinesisServiceException) => e,
        );
      expect(refused?.name).toBe('ResourceInUseException');
      expect((await waitActive(sdk, 's')).OpenShardCount).toBe(3);
      // A closed parent cannot merge again.
      await expectSdkError(
        merge({ ShardToMerge: shardId(1), AdjacentShardToMerge: shardId(2) }),
        'ResourceInUseException',
        /has already been merged or split/,
      );
      // The child merges with its neighbour.
      await merge({ ShardToMerge: shardId(4), AdjacentShardToMerge: shardId(2) });
      expect((await waitActive(sdk, 's')).OpenShardCount).toBe(2);
    });

    it('UpdateShardCount', async () => {
      const { sdk } = await start(4);
      const update = (input: Record<string, unknown>) =>
        sdk.send(new UpdateShardCountCommand({ StreamName: 's', ...input } as never));
      await expectSdkError(
        update({ TargetShardCount: 9, ScalingType: 'UNIFORM_SCALING' }),
        'InvalidArgumentException',
        /above double the current open shard count \(4\)/,
      );
      await expectSdkError(
        update({ TargetShardCount: 1, ScalingType: 'UNIFORM_SCALING' }),
        'InvalidArgumentException',
        /below half the current open shard count \(4\)/,
      );
      await expectSdkError(update({ TargetShardCount: 4 }), 'ValidationException', /scalingType/);
      await expectSdkError(
        update({ TargetShardCount: 4, ScalingType: 'EVEN_SCALING' as ScalingType }),
        'ValidationException',
        /EVEN_SCALING.*UNIFORM_SCALING/,
      );
      await expectSdkError(
        update({ ScalingType: 'UNIFORM_SCALING' }),
        'ValidationException',
        /targetShardCount/,
      );
      await expectSdkError(
        update({ TargetShardCount: 0, ScalingType: 'UNIFORM_SCALING' }),
        'ValidationException',
        /targetShardCount/,
      );
      await expectSdkError(
        sdk.send(
          new UpdateShardCountCommand({
            StreamName: 'missing',
            TargetShardCount: 2,
            ScalingType: 'UNIFORM_SCALING',
          }),
        ),
        'ResourceNotFoundException',
        /missing/,
      );
      expect((await waitActive(sdk, 's')).OpenShardCount).toBe(4);
      // Exactly double and exactly half are within the limits.
      await update({ TargetShardCount: 8, ScalingType: 'UNIFORM_SCALING' });
      expect((await waitActive(sdk, 's')).OpenShardCount).toBe(8);
      await update({ TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' });
      expect((await waitActive(sdk, 's')).OpenShardCount).toBe(4);
      // ON_DEMAND streams do not take UpdateShardCount.
      await createActiveSdk(sdk, 'od', null, { StreamModeDetails: { StreamMode: 'ON_DEMAND' } });
      await expectSdkError(
        sdk.send(
          new UpdateShardCountCommand({
            StreamName: 'od',
            TargetShardCount: 2,
            ScalingType: 'UNIFORM_SCALING',
          }),
        ),
        'ValidationException',
        /ON_DEMAND/,
      );
    });
  });
});
