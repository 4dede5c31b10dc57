import { afterEach, describe, expect, it } from 'vitest';
import { readFanOut } from '../../src/client/fanout-consumer.js';
import { encodeAggregate } from '../../src/client/kpl-aggregation.js';
import type { LineageItem } from '../../src/client/lineage-reader.js';
import { subscribeShard, type FanOutClient } from '../../src/client/shard-subscriber.js';
import {
  NotLeaderError,
  ResourceInUseError,
  ResourceNotFoundError,
} from '../../src/common/errors.js';
import {
  ShardIteratorType,
  SubscribeToShardResponse,
  type StartingPosition,
  type SubscribeToShardRequest,
} from '../../src/gen/rheos/v1/data.js';
import { Record as StreamRecord, type Shard } from '../../src/gen/rheos/v1/stream.js';
import { registerActiveConsumer } from '../helpers/consumers.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

/**
 * The fan-out consumer. `subscribeShard` against a scripted SubscribeToShard (subscriptions that
 * end by their lifetime, a leader that goes away mid-subscription, a takeover refused, a closed
 * shard's end): every record comes out once, in order, each new subscription starting after the
 * last continuation. Then `readFanOut` against a real node whose subscriptions last 300 ms, while
 * the stream is split and merged under writes: two consumers each see every record once, each
 * key in order.
 */

const SHARD = 'shardId-000000000000';
const ARN = 'arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/app:1';

function seq(n: number): string {
  return String(n).padStart(20, '0');
}

/** A shard of `count` records served in events of `perEvent`, with faults at set subscriptions. */
class ScriptedShard implements FanOutClient {
  readonly requests: StartingPosition[] = [];
  routeRefreshes = 0;
  constructor(
    private readonly records: StreamRecord[],
    private readonly script: {
      perEvent: number;
      /** Events per subscription before it ends by its lifetime. */
      eventsPerSubscription: number;
      /** Subscription number -> the error it fails with after its first event (or at once). */
      failures: Map<number, { error: Error; atOnce: boolean }>;
      children?: boolean;
    },
  ) {}

  async *subscribeToShard(
    request: Partial<SubscribeToShardRequest>,
  ): AsyncGenerator<SubscribeToShardResponse> {
    const position = request.startingPosition as StartingPosition;
    const number = this.requests.push(position) - 1;
    const failure = this.script.failures.get(number);
    if (failure?.atOnce === true) throw failure.error;
    let next = this.startIndex(position);
    for (let e = 0; e < this.script.eventsPerSubscription; e++) {
      const batch = this.records.slice(next, next + this.script.perEvent);
      next += batch.length;
      const atEnd = next >= this.records.length && this.script.children === true;
      yield SubscribeToShardResponse.fromPartial({
        records: batch,
        continuationSequenceNumber: batch.at(-1)?.sequenceNumber ?? seq(next),
        millisBehindLatest: 0,
        childShards: atEnd
          ? [{ shardId: 'shardId-000000000001', parentShards: [SHARD], hashKeyRange: undefined }]
          : [],
      });
      if (atEnd) return;
      if (failure !== undefined) throw failure.error;
    }
  }

  async shardRoutes(): Promise<never> {
    this.routeRefreshes++;
    return undefined as never;
  }

  private startIndex(position: StartingPosition): number {
    if (position.type === ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON) return 0;
    const at = this.records.findIndex((r) => r.sequenceNumber === position.sequenceNumber);
    if (at < 0) {
      // An idle event's continuation: the position number itself.
      return Number(position.sequenceNumber);
    }
    return position.type === ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER
      ? at + 1
      : at;
  }
}

function plainRecords(count: number): StreamRecord[] {
  return Array.from({ length: count }, (_, i) =>
    StreamRecord.fromPartial({
      sequenceNumber: seq(i + 1),
      partitionKey: 'k',
      data: Buffer.from(`r${i}`),
    }),
  );
}

async function drain(iterable: AsyncIterable<{ data: Uint8Array }>): Promise<string[]> {
  const out: string[] = [];
  for await (const record of iterable) out.push(Buffer.from(record.data).toString());
  return out;
}

const FAST = { initialMs: 1, maxMs: 5 };

describe('subscribeShard', () => {
  it('renews each ended subscription from its continuation and retries a lost leader, with nothing skipped or repeated', async () => {
    const records = plainRecords(100);
    const shard = new ScriptedShard(records, {
      perEvent: 7,
      eventsPerSubscription: 3,
      failures: new Map([
        [2, { error: new NotLeaderError('the leader moved'), atOnce: false }],
        [4, { error: new ResourceInUseError('a subscription started < 5 s ago'), atOnce: true }],
      ]),
      children: true,
    });
    let children: readonly { shardId: string }[] = [];
    let subscriptions = 0;
    const seen = await drain(
      subscribeShard({
        client: shard,
        streamName: 's',
        consumerArn: ARN,
        shardId: SHARD,
        from: { type: 'TRIM_HORIZON' },
        backoff: FAST,
        onEnd: (c) => (children = c),
        onSubscribe: () => subscriptions++,
      }),
    );
    expect(seen).toEqual(records.map((r) => Buffer.from(r.data).toString()));
    expect(children.map((c) => c.shardId)).toEqual(['shardId-000000000001']);
    expect(subscriptions).toBe(shard.requests.length);
    expect(subscriptions).toBeGreaterThan(5);
    // Each renewal started AFTER the last record delivered.
    for (const position of shard.requests.slice(1)) {
      expect(position.type).toBe(ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER);
    }
    expect(shard.routeRefreshes).toBe(2);
  });

  it('does not retry what retrying cannot mend (a consumer that no longer exists)', async () => {
    const shard = new ScriptedShard(plainRecords(10), {
      perEvent: 5,
      eventsPerSubscription: 1,
      failures: new Map([[1, { error: new ResourceNotFoundError('no consumer'), atOnce: true }]]),
    });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const r of subscribeShard({
        client: shard,
        streamName: 's',
        consumerArn: ARN,
        shardId: SHARD,
        from: { type: 'TRIM_HORIZON' },
        backoff: FAST,
      })) {
        seen.push(Buffer.from(r.data).toString());
      }
    })();
    await expect(reading).rejects.toBeInstanceOf(ResourceNotFoundError);
    expect(seen).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
  });

  it('deaggregates KPL records and resumes inside an aggregate after a sub-sequence number', async () => {
    const members = Array.from({ length: 5 }, (_, i) => ({
      partitionKey: `p${i}`,
      data: Buffer.from(`m${i}`),
    }));
    const aggregate = StreamRecord.fromPartial({
      sequenceNumber: seq(1),
      partitionKey: 'a',
      data: encodeAggregate(members),
    });
    const shard = new ScriptedShard([aggregate, ...plainRecords(3).slice(1)], {
      perEvent: 10,
      eventsPerSubscription: 1,
      failures: new Map(),
      children: true,
    });
    const seen = await drain(
      subscribeShard({
        client: shard,
        streamName: 's',
        consumerArn: ARN,
        shardId: SHARD,
        from: { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: seq(1), subSequenceNumber: 2 },
        backoff: FAST,
      }),
    );
    expect(seen).toEqual(['m3', 'm4', 'r1', 'r2']);
    // The aggregate itself was asked for again, to cut its earlier members.
    expect(shard.requests[0]?.type).toBe(ShardIteratorType.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER);
  });
});

describe('readFanOut against a real node', () => {
  let node: TestNode | undefined;
  afterEach(async () => {
    await node?.stop();
    node = undefined;
  });

  it('two consumers each read every record once, each key in order, through renewals, a split and a merge', async () => {
    node = await startTestNode({
      subscriptionLimits: { lifetimeMs: 300, takeoverAfterMs: 50, maxOpen: 100 },
    });
    const { client } = node;
    const streamName = 'fan';
    await client.createStream({ streamName, shardCount: 2 });
    await client.waitForStreamActive(streamName);
    const arns = [
      await registerActiveConsumer(client, 'fan', 'one'),
      await registerActiveConsumer(client, 'fan', 'two'),
    ];

    const keys = Array.from({ length: 16 }, (_, i) => `key-${i}`);
    const sent: string[] = [];
    let n = 0;
    const putRound = async () => {
      const records = keys.map((key) => ({
        partitionKey: key,
        data: Buffer.from(`${key}#${n++}`),
      }));
      const answer = await client.putRecords({ streamName, records });
      expect(answer.failedRecordCount).toBe(0);
      sent.push(...records.map((r) => r.data.toString()));
    };
    const open = async (): Promise<Shard[]> =>
      (await client.listShards({ streamName })).shards
        .filter((s) => s.sequenceNumberRange?.endingSequenceNumber === '')
        .sort((a, b) =>
          BigInt(a.hashKeyRange!.startingHashKey) < BigInt(b.hashKeyRange!.startingHashKey)
            ? -1
            : 1,
        );

    await putRound();
    const stop = new AbortController();
    const subscriptions = [0, 0];
    const seen: string[][] = [[], []];
    const readers = arns.map(async (consumerArn, i) => {
      const items: AsyncIterable<LineageItem> = readFanOut({
        client,
        streamName,
        consumerArn,
        from: { type: 'TRIM_HORIZON' },
        signal: stop.signal,
        backoff: { initialMs: 20, maxMs: 200 },
        onSubscribe: () => subscriptions[i]!++,
      });
      for await (const item of items) seen[i]!.push(Buffer.from(item.record.data).toString());
    });

    const rounds = async (count: number) => {
      for (let r = 0; r < count; r++) {
        await putRound();
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    };
    await rounds(10);
    const [first] = await open();
    const range = first!.hashKeyRange!;
    await client.splitShard({
      streamName,
      shardToSplit: first!.shardId,
      newStartingHashKey: (
        (BigInt(range.startingHashKey) + BigInt(range.endingHashKey) + 1n) /
        2n
      ).toString(),
    });
    await rounds(10);
    await client.waitForStreamActive(streamName, 60_000);
    const [a, b] = await open();
    await client.mergeShards({
      streamName,
      shardToMerge: a!.shardId,
      adjacentShardToMerge: b!.shardId,
    });
    await rounds(10);
    await client.waitForStreamActive(streamName, 60_000);
    await rounds(5);

    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && seen.some((s) => s.length < sent.length)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    stop.abort();
    await Promise.all(readers);

    for (const s of seen) {
      expect(s.length).toBe(sent.length);
      expect(new Set(s)).toEqual(new Set(sent));
      // Per key, the order in which the records were put.
      for (const key of keys) {
        const order = (xs: string[]) => xs.filter((x) => x.startsWith(`${key}#`));
        expect(order(s)).toEqual(order(sent));
      }
    }
    // Subscriptions of 300 ms over a few seconds: each consumer renewed many times.
    for (const count of subscriptions) expect(count).toBeGreaterThan(10);
  });
});
