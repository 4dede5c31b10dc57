import { afterEach, describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import {
  InvalidArgumentError,
  ResourceInUseError,
  ResourceNotFoundError,
} from '../../src/common/errors.js';
import { ShardIteratorType, type SubscribeToShardResponse } from '../../src/gen/rheos/v1/data.js';
import type { NodeConfig } from '../../src/server/node.js';
import { registerActiveConsumer } from '../helpers/consumers.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

/**
 * SubscribeToShard on a single node through the native gRPC API: records pushed in order as they
 * commit, from any starting position; a subscription that ends by its lifetime is continued from
 * its ContinuationSequenceNumber with nothing lost or repeated; a repeat within the takeover time
 * is refused and a later one takes over; a closed shard's last event names its children; bad
 * requests get Kinesis' errors.
 */

let node: TestNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

const SHARD = 'shardId-000000000000';
const TRIM_HORIZON = { type: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON };

async function start(overrides: Partial<NodeConfig> = {}): Promise<{
  client: RheosClient;
  consumerArn: string;
}> {
  node = await startTestNode(overrides);
  const { client } = node;
  await client.createStream({ streamName: 's', shardCount: 1 });
  await client.waitForStreamActive('s');
  const consumerArn = await registerActiveConsumer(client, 's', 'app');
  return { client, consumerArn };
}

async function put(client: RheosClient, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 100) {
    const records = [];
    for (let k = i; k < Math.min(to, i + 100); k++) {
      records.push({ partitionKey: `k${k % 7}`, data: Buffer.from(`r${k}`) });
    }
    const answer = await client.putRecords({ streamName: 's', records });
    expect(answer.failedRecordCount).toBe(0);
  }
}

/** Reads events until `count` records came (or the subscription ended); then stops it. */
async function collect(
  events: AsyncIterable<SubscribeToShardResponse>,
  count: number,
  controller?: AbortController,
): Promise<{ data: string[]; last: SubscribeToShardResponse | undefined; ended: boolean }> {
  const data: string[] = [];
  let last: SubscribeToShardResponse | undefined;
  for await (const event of events) {
    last = event;
    data.push(...event.records.map((r) => Buffer.from(r.data).toString()));
    if (data.length >= count) {
      controller?.abort();
      return { data, last, ended: false };
    }
  }
  return { data, last, ended: true };
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `r${from + i}`);

describe('SubscribeToShard (native)', () => {
  it('pushes what is stored and then each record as it commits, in order', async () => {
    const { client, consumerArn } = await start();
    await put(client, 0, 300);
    const controller = new AbortController();
    const events = client.subscribeToShard(
      { consumerArn, shardId: SHARD, startingPosition: TRIM_HORIZON },
      { signal: controller.signal },
    );
    const reading = collect(events, 1_000, controller);
    await put(client, 300, 1_000);
    const { data, last } = await reading;
    expect(data).toEqual(range(0, 1_000));
    expect(last?.millisBehindLatest).toBe(0);
    expect(last?.continuationSequenceNumber).toBe(last?.records.at(-1)?.sequenceNumber);
  });

  it('continues a subscription that ended by its lifetime from its continuation, losing and repeating nothing', async () => {
    const { client, consumerArn } = await start({
      subscriptionLimits: { lifetimeMs: 200, takeoverAfterMs: 0, maxOpen: 100 },
    });
    const writing = (async () => {
      for (let i = 0; i < 20; i++) {
        await put(client, i * 50, (i + 1) * 50);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const seen: string[] = [];
    let position: { type: ShardIteratorType; sequenceNumber?: string } = TRIM_HORIZON;
    let subscriptions = 0;
    for (; subscriptions < 100 && seen.length < 1_000; subscriptions++) {
      const events = client.subscribeToShard({
        consumerArn,
        shardId: SHARD,
        startingPosition: position,
      });
      const { data, last, ended } = await collect(events, 1_000 - seen.length);
      seen.push(...data);
      if (!ended) break;
      if (last !== undefined) {
        position = {
          type: ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER,
          sequenceNumber: last.continuationSequenceNumber,
        };
      }
    }
    await writing;
    expect(seen).toEqual(range(0, 1_000));
    expect(subscriptions).toBeGreaterThan(1);
  });

  it('refuses a repeat within the takeover time; a later one takes over', async () => {
    const { client, consumerArn } = await start({
      subscriptionLimits: { lifetimeMs: 60_000, takeoverAfterMs: 300, maxOpen: 100 },
    });
    await put(client, 0, 10);
    const request = { consumerArn, shardId: SHARD, startingPosition: TRIM_HORIZON };
    const first = client.subscribeToShard(request)[Symbol.asyncIterator]();
    expect((await first.next()).value?.records).toHaveLength(10);
    await expect(client.subscribeToShard(request).next()).rejects.toBeInstanceOf(
      ResourceInUseError,
    );
    await new Promise((resolve) => setTimeout(resolve, 350));
    const second = client.subscribeToShard(request)[Symbol.asyncIterator]();
    expect((await second.next()).value?.records).toHaveLength(10);
    // The first one was taken over: it ends.
    let rest = 0;
    for (let r = await first.next(); !r.done; r = await first.next()) rest++;
    expect(rest).toBeLessThan(1_000);
    await second.return(undefined);
  });

  it("ends a closed shard's subscription with an event naming its children", async () => {
    const { client, consumerArn } = await start();
    await put(client, 0, 50);
    await client.splitShard({
      streamName: 's',
      shardToSplit: SHARD,
      newStartingHashKey: (1n << 127n).toString(),
    });
    await client.waitForStreamActive('s');
    const { data, last, ended } = await collect(
      client.subscribeToShard({ consumerArn, shardId: SHARD, startingPosition: TRIM_HORIZON }),
      1_000_000,
    );
    expect(ended).toBe(true);
    expect(data).toEqual(range(0, 50));
    expect(last?.childShards.map((c) => c.shardId).sort()).toEqual([
      'shardId-000000000001',
      'shardId-000000000002',
    ]);
  });

  it('ends a subscription open at the tip when its shard is split under it (not at its lifetime)', async () => {
    // A lifetime beyond the test's timeout: only the seal itself can end this subscription.
    const { client, consumerArn } = await start({
      subscriptionLimits: { lifetimeMs: 600_000, takeoverAfterMs: 0, maxOpen: 100 },
    });
    await put(client, 0, 50);
    const events = client.subscribeToShard({
      consumerArn,
      shardId: SHARD,
      startingPosition: TRIM_HORIZON,
    });
    const reading = collect(events, 1_000_000);
    // Read to the tip first, so the subscription is waiting for commits when the seal comes.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await client.splitShard({
      streamName: 's',
      shardToSplit: SHARD,
      newStartingHashKey: (1n << 127n).toString(),
    });
    const { data, last, ended } = await reading;
    expect(ended).toBe(true);
    expect(data).toEqual(range(0, 50));
    expect(last?.childShards.map((c) => c.shardId).sort()).toEqual([
      'shardId-000000000001',
      'shardId-000000000002',
    ]);
  }, 30_000);

  it("gives Kinesis' errors for unknown consumers and shards and bad positions", async () => {
    const { client, consumerArn } = await start();
    const next = (request: Parameters<RheosClient['subscribeToShard']>[0]) =>
      client.subscribeToShard(request).next();
    await expect(
      next({
        consumerArn: consumerArn.replace('app', 'nobody'),
        shardId: SHARD,
        startingPosition: TRIM_HORIZON,
      }),
    ).rejects.toBeInstanceOf(ResourceNotFoundError);
    await expect(
      next({ consumerArn, shardId: 'shardId-000000000009', startingPosition: TRIM_HORIZON }),
    ).rejects.toBeInstanceOf(ResourceNotFoundError);
    await expect(
      next({
        consumerArn,
        shardId: SHARD,
        startingPosition: { type: ShardIteratorType.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER },
      }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(next({ consumerArn: 'junk', shardId: SHARD })).rejects.toThrow(/consumerARN/);
  });
});
