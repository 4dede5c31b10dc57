import { describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import { ManualClock } from '../../src/common/clock.js';
import { ScalingType, ShardFilterType } from '../../src/gen/rheos/v1/control.js';
import { StreamMode, StreamStatus } from '../../src/gen/rheos/v1/stream.js';
import { listAll, readLineage, readShardToEnd, waitActive } from '../helpers/lineage.js';
import {
  createActive,
  expectContiguousRanges,
  expectError,
  HOUR_MS,
  It,
  iteratorFor,
  MAX_HASH_KEY,
  shardId,
  UNLIMITED,
  useNodes,
} from './helpers.js';

/**
 * Resharding on the single node: SplitShard, MergeShards and UpdateShardCount carried out as
 * sealed cutovers, lineage in ListShards/DescribeStream/GetRecords, Kinesis' validation, closed
 * shards expiring with retention, and the seal surviving a restart.
 */

const nodes = useNodes();

const KEYS = Array.from({ length: 12 }, (_, i) => `key-${i}`);

async function start(shards = 1, clock?: ManualClock) {
  const t = await nodes.start({ defaultShardLimits: UNLIMITED, ...(clock ? { clock } : {}) });
  await createActive(t.client, 's', shards);
  return t;
}

/** Puts `count` records round-robin over KEYS, data `${tag}-${n}`; returns what was sent per key. */
async function putRound(client: RheosClient, tag: string, count = 60): Promise<void> {
  const records = Array.from({ length: count }, (_, n) => ({
    partitionKey: KEYS[n % KEYS.length] as string,
    data: Buffer.from(`${tag}-${n}`),
  }));
  const answer = await client.putRecords({ streamName: 's', records });
  expect(answer.failedRecordCount).toBe(0);
}

/** Reads the whole lineage: every record once, and each key's records in the order sent. */
async function expectLineage(client: RheosClient, expected: readonly string[]): Promise<void> {
  const read = await readLineage(client, 's');
  const seen = read.map((r) => r.record.data.toString());
  expect([...seen].sort()).toEqual([...expected].sort());
  const byKey = new Map<string, string[]>();
  for (const { record } of read) {
    const list = byKey.get(record.partitionKey) ?? [];
    list.push(record.data.toString());
    byKey.set(record.partitionKey, list);
  }
  const sentByKey = new Map<string, string[]>();
  for (const text of expected) {
    const n = Number(text.slice(text.lastIndexOf('-') + 1));
    const key = KEYS[n % KEYS.length] as string;
    const list = sentByKey.get(key) ?? [];
    list.push(text);
    sentByKey.set(key, list);
  }
  expect(byKey).toEqual(sentByKey);
}

function sent(tag: string, count = 60): string[] {
  return Array.from({ length: count }, (_, n) => `${tag}-${n}`);
}

describe('SplitShard', () => {
  it('closes the parent with an ending sequence number and opens two children', async () => {
    const t = await start(1);
    await putRound(t.client, 'a');
    const mid = (MAX_HASH_KEY + 1n) / 2n;
    await t.client.splitShard({
      streamName: 's',
      shardToSplit: shardId(0),
      newStartingHashKey: mid.toString(),
    });
    await waitActive(t.client, 's');
    await putRound(t.client, 'b');
    const shards = await listAll(t.client, 's');
    expect(shards.map((s) => s.shardId)).toEqual([shardId(0), shardId(1), shardId(2)]);
    const [parent, low, high] = shards;
    expect(parent?.sequenceNumberRange?.endingSequenceNumber).toMatch(/^\d{38}$/);
    expect(low).toMatchObject({
      parentShardId: shardId(0),
      adjacentParentShardId: '',
      hashKeyRange: { startingHashKey: '0', endingHashKey: (mid - 1n).toString() },
    });
    expect(high?.hashKeyRange?.startingHashKey).toBe(mid.toString());
    expect(high?.hashKeyRange?.endingHashKey).toBe(MAX_HASH_KEY.toString());
    expect(low?.sequenceNumberRange?.endingSequenceNumber).toBe('');
    // The parent reads to its end, then names its children; every record before the seal is
    // below its ending sequence number.
    const end = await readShardToEnd(t.client, 's', shardId(0));
    expect(end.closed).toBe(true);
    expect(end.children).toEqual([shardId(1), shardId(2)]);
    expect(end.records).toHaveLength(60);
    const ending = BigInt(parent?.sequenceNumberRange?.endingSequenceNumber ?? '0');
    for (const r of end.records) expect(BigInt(r.sequenceNumber) < ending).toBe(true);
    await expectLineage(t.client, [...sent('a'), ...sent('b')]);
  });

  it('sends later writes to the children, and LATEST on the parent ends at once', async () => {
    const t = await start(1);
    await t.client.splitShard({
      streamName: 's',
      shardToSplit: shardId(0),
      newStartingHashKey: '1000',
    });
    await waitActive(t.client, 's');
    const put = await t.client.putRecord({
      streamName: 's',
      partitionKey: 'x',
      data: Buffer.from('1'),
    });
    expect([shardId(1), shardId(2)]).toContain(put.shardId);
    const latest = await iteratorFor(t.client, 's', shardId(0), It.SHARD_ITERATOR_TYPE_LATEST);
    const answer = await t.client.getRecords({ shardIterator: latest });
    expect(answer.records).toEqual([]);
    expect(answer.nextShardIterator).toBe('');
    expect(answer.childShards.map((c) => c.shardId)).toEqual([shardId(1), shardId(2)]);
    expect(answer.childShards[0]?.parentShards).toEqual([shardId(0)]);
    expect(answer.childShards[0]?.hashKeyRange).toEqual({
      startingHashKey: '0',
      endingHashKey: '999',
    });
  });

  it("answers Kinesis' errors for bad requests", async () => {
    const t = await start(2);
    const c = t.client;
    const [, second] = await listAll(c, 's');
    const start1 = second?.hashKeyRange?.startingHashKey as string;
    await expectError(
      c.splitShard({ streamName: 's', shardToSplit: shardId(7), newStartingHashKey: '5' }),
      'ResourceNotFoundException',
      /Could not find shard shardId-000000000007 in stream s/,
    );
    await expectError(
      c.splitShard({ streamName: 's', shardToSplit: shardId(1), newStartingHashKey: start1 }),
      'InvalidArgumentException',
      /is not both greater than one plus the shard's StartingHashKey/,
    );
    await expectError(
      c.splitShard({ streamName: 's', shardToSplit: shardId(0), newStartingHashKey: start1 }),
      'InvalidArgumentException',
      /NewStartingHashKey/,
    );
    await expectError(
      c.splitShard({ streamName: 's', shardToSplit: shardId(0), newStartingHashKey: '12x' }),
      'ValidationException',
      /newStartingHashKey/,
    );
    await expectError(
      c.splitShard({ streamName: 's', shardToSplit: shardId(0) }),
      'ValidationException',
      /newStartingHashKey/,
    );
    await expectError(
      c.splitShard({ streamName: 'nope', shardToSplit: shardId(0), newStartingHashKey: '5' }),
      'ResourceNotFoundException',
    );
    // One reshard at a time: a second request while UPDATING is refused, as Kinesis does.
    await c.splitShard({ streamName: 's', shardToSplit: shardId(0), newStartingHashKey: '5000' });
    await expectError(
      c.splitShard({ streamName: 's', shardToSplit: shardId(1), newStartingHashKey: '5000' }),
      'ResourceInUseException',
      /not ACTIVE, instead in state UPDATING/,
    );
    await waitActive(c, 's');
    await expectError(
      c.splitShard({ streamName: 's', shardToSplit: shardId(0), newStartingHashKey: '6000' }),
      'ResourceInUseException',
      /has already been merged or split/,
    );
  });
});

describe('ON_DEMAND streams', () => {
  it('refuse SplitShard and MergeShards (provisioned mode only, as Kinesis)', async () => {
    const t = await start(1);
    const c = t.client;
    await c.createStream({ streamName: 'od', streamMode: StreamMode.STREAM_MODE_ON_DEMAND });
    await c.waitForStreamActive('od', 30_000, 5);
    await expectError(
      c.splitShard({ streamName: 'od', shardToSplit: shardId(0), newStartingHashKey: '5000' }),
      'ValidationException',
      /SplitShard is not supported for stream od .* in ON_DEMAND mode/,
    );
    await expectError(
      c.mergeShards({
        streamName: 'od',
        shardToMerge: shardId(0),
        adjacentShardToMerge: shardId(1),
      }),
      'ValidationException',
      /MergeShards is not supported for stream od .* in ON_DEMAND mode/,
    );
  });
});

describe('MergeShards', () => {
  it('merges two adjacent shards into one child with both parents', async () => {
    const t = await start(3);
    await putRound(t.client, 'a');
    await t.client.mergeShards({
      streamName: 's',
      shardToMerge: shardId(2),
      adjacentShardToMerge: shardId(1),
    });
    await waitActive(t.client, 's');
    await putRound(t.client, 'b');
    const shards = await listAll(t.client, 's');
    const child = shards.find((s) => s.shardId === shardId(3));
    expect(child).toMatchObject({ parentShardId: shardId(2), adjacentParentShardId: shardId(1) });
    const open = shards.filter((s) => s.sequenceNumberRange?.endingSequenceNumber === '');
    expect(open.map((s) => s.shardId)).toEqual([shardId(0), shardId(3)]);
    expectContiguousRanges(
      [...open].sort((a, b) =>
        BigInt(a.hashKeyRange?.startingHashKey ?? 0) < BigInt(b.hashKeyRange?.startingHashKey ?? 0)
          ? -1
          : 1,
      ),
    );
    for (const parent of [shardId(1), shardId(2)]) {
      const end = await readShardToEnd(t.client, 's', parent);
      expect(end).toMatchObject({ closed: true, children: [shardId(3)] });
    }
    await expectLineage(t.client, [...sent('a'), ...sent('b')]);
  });

  it("answers Kinesis' errors for bad requests", async () => {
    const t = await start(3);
    const c = t.client;
    await expectError(
      c.mergeShards({
        streamName: 's',
        shardToMerge: shardId(0),
        adjacentShardToMerge: shardId(2),
      }),
      'InvalidArgumentException',
      /are not an adjacent pair of shards eligible for merging/,
    );
    await expectError(
      c.mergeShards({
        streamName: 's',
        shardToMerge: shardId(1),
        adjacentShardToMerge: shardId(1),
      }),
      'InvalidArgumentException',
      /not an adjacent pair/,
    );
    await expectError(
      c.mergeShards({
        streamName: 's',
        shardToMerge: shardId(1),
        adjacentShardToMerge: shardId(9),
      }),
      'ResourceNotFoundException',
      /Could not find shard/,
    );
    await expectError(
      c.mergeShards({ streamName: 's', shardToMerge: shardId(1) }),
      'ValidationException',
      /adjacentShardToMerge/,
    );
  });
});

describe('UpdateShardCount', () => {
  it('scales up and down with uniform ranges, every generation readable in order', async () => {
    const t = await start(2);
    const expected: string[] = [];
    let round = 0;
    for (const target of [4, 3, 6, 3, 2]) {
      const tag = `r${round++}`;
      await putRound(t.client, tag);
      expected.push(...sent(tag));
      const answer = await t.client.updateShardCount({
        streamName: 's',
        targetShardCount: target,
        scalingType: ScalingType.SCALING_TYPE_UNIFORM_SCALING,
      });
      expect(answer.targetShardCount).toBe(target);
      await waitActive(t.client, 's');
      const open = await t.client.listShards({
        streamName: 's',
        shardFilter: { type: ShardFilterType.SHARD_FILTER_TYPE_AT_LATEST, shardId: '' },
      });
      expect(open.shards).toHaveLength(target);
      const starts = open.shards
        .map((s) => BigInt(s.hashKeyRange?.startingHashKey ?? 0))
        .sort((a, b) => (a < b ? -1 : 1));
      const width = (MAX_HASH_KEY + 1n) / BigInt(target);
      starts.forEach((s, i) => expect(s).toBe(width * BigInt(i)));
    }
    await putRound(t.client, 'last');
    expected.push(...sent('last'));
    await expectLineage(t.client, expected);
    const summary = await t.client.describeStreamSummary({ streamName: 's' });
    expect(summary.streamDescriptionSummary?.openShardCount).toBe(2);
  });

  it("answers Kinesis' errors for bad requests", async () => {
    const t = await start(4);
    const c = t.client;
    const uniform = ScalingType.SCALING_TYPE_UNIFORM_SCALING;
    await expectError(
      c.updateShardCount({ streamName: 's', targetShardCount: 9, scalingType: uniform }),
      'InvalidArgumentException',
      /above double/,
    );
    await expectError(
      c.updateShardCount({ streamName: 's', targetShardCount: 1, scalingType: uniform }),
      'InvalidArgumentException',
      /below half/,
    );
    await expectError(
      c.updateShardCount({ streamName: 's', targetShardCount: 4 }),
      'ValidationException',
      /scalingType/,
    );
    await expectError(
      c.updateShardCount({ streamName: 's', scalingType: uniform }),
      'ValidationException',
      /targetShardCount/,
    );
    await expectError(
      c.updateShardCount({ streamName: 's', targetShardCount: 0, scalingType: uniform }),
      'ValidationException',
      /targetShardCount/,
    );
  });
});

describe('lineage in the listings', () => {
  it('ListShards filters and DescribeStream show closed shards and their children', async () => {
    const clock = new ManualClock(1_790_000_000_000);
    const t = await start(1, clock);
    const t0 = clock.nowMs();
    clock.advance(1_000);
    await t.client.splitShard({
      streamName: 's',
      shardToSplit: shardId(0),
      newStartingHashKey: '77',
    });
    await waitActive(t.client, 's');
    const ids = async (
      type: ShardFilterType,
      extra: { shardId?: string; timestampMs?: number } = {},
    ) =>
      (
        await t.client.listShards({ streamName: 's', shardFilter: { type, shardId: '', ...extra } })
      ).shards.map((s) => s.shardId);
    const all = [shardId(0), shardId(1), shardId(2)];
    expect(await ids(ShardFilterType.SHARD_FILTER_TYPE_AT_LATEST)).toEqual([
      shardId(1),
      shardId(2),
    ]);
    expect(await ids(ShardFilterType.SHARD_FILTER_TYPE_AT_TRIM_HORIZON)).toEqual([shardId(0)]);
    expect(await ids(ShardFilterType.SHARD_FILTER_TYPE_FROM_TRIM_HORIZON)).toEqual(all);
    expect(
      await ids(ShardFilterType.SHARD_FILTER_TYPE_AFTER_SHARD_ID, { shardId: shardId(0) }),
    ).toEqual([shardId(1), shardId(2)]);
    expect(await ids(ShardFilterType.SHARD_FILTER_TYPE_AT_TIMESTAMP, { timestampMs: t0 })).toEqual([
      shardId(0),
    ]);
    expect(
      await ids(ShardFilterType.SHARD_FILTER_TYPE_FROM_TIMESTAMP, { timestampMs: t0 }),
    ).toEqual(all);
    const described = await t.client.describeStream({ streamName: 's' });
    expect(described.streamDescription?.shards.map((s) => s.shardId)).toEqual(all);
    expect(described.streamDescription?.streamStatus).toBe(StreamStatus.STREAM_STATUS_ACTIVE);
  });

  it('closed shards leave the stream once their retention has passed', async () => {
    const clock = new ManualClock(1_790_000_000_000);
    const t = await start(1, clock);
    await putRound(t.client, 'a');
    await t.client.splitShard({
      streamName: 's',
      shardToSplit: shardId(0),
      newStartingHashKey: '77',
    });
    await waitActive(t.client, 's');
    clock.advance(23 * HOUR_MS);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await listAll(t.client, 's')).map((s) => s.shardId)).toContain(shardId(0));
    clock.advance(2 * HOUR_MS);
    const deadline = Date.now() + 10_000;
    while ((await listAll(t.client, 's')).some((s) => s.shardId === shardId(0))) {
      if (Date.now() > deadline) throw new Error('the closed shard did not expire');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await listAll(t.client, 's')).map((s) => s.shardId)).toEqual([shardId(1), shardId(2)]);
    // Its children are now the oldest generation.
    const oldest = await t.client.listShards({
      streamName: 's',
      shardFilter: { type: ShardFilterType.SHARD_FILTER_TYPE_AT_TRIM_HORIZON, shardId: '' },
    });
    expect(oldest.shards.map((s) => s.shardId)).toEqual([shardId(1), shardId(2)]);
    await expectError(
      t.client.getShardIterator({
        streamName: 's',
        shardId: shardId(0),
        shardIteratorType: It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
      }),
      'ResourceNotFoundException',
    );
  });
});

describe('durability', () => {
  it('a sealed shard stays sealed across a restart', async () => {
    const t = await start(1);
    await putRound(t.client, 'a');
    await t.client.splitShard({
      streamName: 's',
      shardToSplit: shardId(0),
      newStartingHashKey: '77',
    });
    await waitActive(t.client, 's');
    await putRound(t.client, 'b');
    const again = await nodes.restart(t);
    const end = await readShardToEnd(again.client, 's', shardId(0));
    expect(end).toMatchObject({ closed: true, children: [shardId(1), shardId(2)] });
    expect(end.records).toHaveLength(60);
    await putRound(again.client, 'c');
    await expectLineage(again.client, [...sent('a'), ...sent('b'), ...sent('c')]);
  });
});

describe('writes during a split', () => {
  it('several producers write through the cutover: every acknowledged record once, in key order', async () => {
    const t = await start(2);
    let stop = false;
    const acked: string[] = [];
    const producer = async (p: number) => {
      for (let n = 0; !stop && n < 100_000; n++) {
        const text = `p${p}-${n}`;
        // One key per producer, written one at a time: its acknowledged order is its order.
        await t.client.putRecord({
          streamName: 's',
          partitionKey: `producer-${p}`,
          data: Buffer.from(text),
        });
        acked.push(text);
      }
    };
    const producers = [0, 1, 2, 3].map(producer);
    for (const target of [4, 2, 3]) {
      await new Promise((resolve) => setTimeout(resolve, 150));
      await t.client.updateShardCount({
        streamName: 's',
        targetShardCount: target,
        scalingType: ScalingType.SCALING_TYPE_UNIFORM_SCALING,
      });
      await waitActive(t.client, 's');
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
    stop = true;
    await Promise.all(producers);
    const read = await readLineage(t.client, 's');
    const texts = read.map((r) => r.record.data.toString());
    expect(new Set(texts).size).toBe(texts.length);
    expect([...texts].sort()).toEqual([...acked].sort());
    for (let p = 0; p < 4; p++) {
      const mine = texts.filter((x) => x.startsWith(`p${p}-`)).map((x) => Number(x.split('-')[1]));
      expect(mine).toEqual([...mine].sort((a, b) => a - b));
    }
    expect(acked.length).toBeGreaterThan(100);
  });
});
