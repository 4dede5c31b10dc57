import {
  ListShardsCommand,
  PutRecordsCommand,
  RegisterStreamConsumerCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  SplitShardCommand,
  SubscribeToShardCommand,
  ValidationException,
  type KinesisClient,
  type StartingPosition,
  type SubscribeToShardEvent,
} from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { createActiveSdk, HANDLERS, useGateway, waitActive } from './sdk-helpers.js';

/**
 * SubscribeToShard through the real AWS SDK v3 and the Kinesis gateway: the SDK reads our
 * `application/vnd.amazon.eventstream` answer (initial-response, then SubscribeToShardEvent
 * messages, checked by their CRCs) into typed events; records come in order as they are put; a
 * subscription that ends by its lifetime is continued from its ContinuationSequenceNumber with
 * nothing lost or repeated; a closed shard's last event names its children; a refused
 * subscription is an ordinary error the SDK throws from `send`.
 */

async function registerActive(sdk: KinesisClient, streamArn: string): Promise<string> {
  const { Consumer: c } = await sdk.send(
    new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'app' }),
  );
  const { DescribeStreamConsumerCommand } = await import('@aws-sdk/client-kinesis');
  for (let attempt = 0; attempt < 500; attempt++) {
    const { ConsumerDescription: d } = await sdk.send(
      new DescribeStreamConsumerCommand({ ConsumerARN: c?.ConsumerARN }),
    );
    if (d?.ConsumerStatus === 'ACTIVE') return c?.ConsumerARN as string;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('the consumer did not become ACTIVE');
}

async function put(sdk: KinesisClient, name: string, from: number, to: number): Promise<void> {
  const Records = [];
  for (let i = from; i < to; i++) {
    Records.push({ PartitionKey: `k${i % 5}`, Data: Buffer.from(`r${i}`) });
  }
  const answer = await sdk.send(new PutRecordsCommand({ StreamName: name, Records }));
  expect(answer.FailedRecordCount).toBe(0);
}

/** One subscription's events until it ends (or `want` records came, then it is aborted). */
async function subscribe(
  sdk: KinesisClient,
  consumerArn: string,
  shardId: string,
  position: StartingPosition,
  want = Number.POSITIVE_INFINITY,
): Promise<{ events: SubscribeToShardEvent[]; data: string[]; ended: boolean }> {
  const abort = new AbortController();
  const answer = await sdk.send(
    new SubscribeToShardCommand({
      ConsumerARN: consumerArn,
      ShardId: shardId,
      StartingPosition: position,
    }),
    { abortSignal: abort.signal },
  );
  const events: SubscribeToShardEvent[] = [];
  const data: string[] = [];
  try {
    for await (const message of answer.EventStream ?? []) {
      const event = message.SubscribeToShardEvent;
      if (event === undefined) continue;
      events.push(event);
      for (const r of event.Records ?? []) data.push(Buffer.from(r.Data ?? []).toString());
      if (data.length >= want) {
        abort.abort();
        return { events, data, ended: false };
      }
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  }
  return { events, data, ended: true };
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `r${from + i}`);

describe.each(HANDLERS)('SubscribeToShard through the AWS SDK over %s', (_label, kind) => {
  const gateway = useGateway(kind);

  it('pushes records in order as they are put, with Kinesis fields the SDK parses', async () => {
    const { sdk } = await gateway.start();
    const summary = await createActiveSdk(sdk, 'pushed', 1);
    const consumerArn = await registerActive(sdk, summary.StreamARN as string);
    await put(sdk, 'pushed', 0, 20);
    const before = Date.now();
    const reading = subscribe(
      sdk,
      consumerArn,
      'shardId-000000000000',
      { Type: 'TRIM_HORIZON' },
      120,
    );
    for (let i = 20; i < 120; i += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await put(sdk, 'pushed', i, i + 20);
    }
    const { events, data } = await reading;
    expect(data).toEqual(range(0, 120));
    const first = events[0]?.Records?.[0];
    expect(first?.SequenceNumber).toMatch(/^\d+$/);
    expect(first?.PartitionKey).toBe('k0');
    expect(first?.ApproximateArrivalTimestamp).toBeInstanceOf(Date);
    expect(Math.abs((first?.ApproximateArrivalTimestamp as Date).getTime() - before)).toBeLessThan(
      60_000,
    );
    const last = events.at(-1);
    expect(last?.ContinuationSequenceNumber).toBe(last?.Records?.at(-1)?.SequenceNumber);
    expect(typeof last?.MillisBehindLatest).toBe('number');
  });

  it('continues a subscription ended by its lifetime from its continuation, losing and repeating nothing', async () => {
    const { sdk } = await gateway.start({
      subscriptionLimits: { lifetimeMs: 300, takeoverAfterMs: 0, maxOpen: 100 },
    });
    const summary = await createActiveSdk(sdk, 'renewed', 1);
    const consumerArn = await registerActive(sdk, summary.StreamARN as string);
    const writing = (async () => {
      for (let i = 0; i < 15; i++) {
        await put(sdk, 'renewed', i * 20, (i + 1) * 20);
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
    })();
    const seen: string[] = [];
    let position: StartingPosition = { Type: 'TRIM_HORIZON' };
    let subscriptions = 0;
    for (; subscriptions < 100 && seen.length < 300; subscriptions++) {
      const { events, data, ended } = await subscribe(
        sdk,
        consumerArn,
        'shardId-000000000000',
        position,
        300 - seen.length,
      );
      seen.push(...data);
      if (!ended) break;
      const continuation = events.at(-1)?.ContinuationSequenceNumber;
      if (continuation !== undefined) {
        position = { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: continuation };
      }
    }
    await writing;
    expect(seen).toEqual(range(0, 300));
    expect(subscriptions).toBeGreaterThan(1);
  });

  it("ends a closed shard's subscription with its children", async () => {
    const { sdk } = await gateway.start();
    const summary = await createActiveSdk(sdk, 'split', 1);
    const consumerArn = await registerActive(sdk, summary.StreamARN as string);
    await put(sdk, 'split', 0, 10);
    await sdk.send(
      new SplitShardCommand({
        StreamName: 'split',
        ShardToSplit: 'shardId-000000000000',
        NewStartingHashKey: (2n ** 127n).toString(),
      }),
    );
    await waitActive(sdk, 'split');
    const { events, data, ended } = await subscribe(sdk, consumerArn, 'shardId-000000000000', {
      Type: 'TRIM_HORIZON',
    });
    expect(ended).toBe(true);
    expect(data).toEqual(range(0, 10));
    const children = events.at(-1)?.ChildShards ?? [];
    const listed = await sdk.send(new ListShardsCommand({ StreamName: 'split' }));
    const open = (listed.Shards ?? []).filter((s) => s.ParentShardId === 'shardId-000000000000');
    expect(children.map((c) => c.ShardId).sort()).toEqual(open.map((s) => s.ShardId).sort());
    for (const child of children) expect(child.ParentShards).toEqual(['shardId-000000000000']);
  });

  it('refuses an unknown consumer, a repeat within the takeover time, and bad input as Kinesis does', async () => {
    const { sdk, once } = await gateway.start({
      subscriptionLimits: { lifetimeMs: 60_000, takeoverAfterMs: 60_000, maxOpen: 100 },
    });
    const summary = await createActiveSdk(sdk, 'refused', 1);
    const consumerArn = await registerActive(sdk, summary.StreamARN as string);
    const request = {
      ConsumerARN: consumerArn,
      ShardId: 'shardId-000000000000',
      StartingPosition: { Type: 'LATEST' as const },
    };
    await expect(
      once.send(
        new SubscribeToShardCommand({
          ...request,
          ConsumerARN: `${summary.StreamARN}/consumer/nobody:1`,
        }),
      ),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    const abort = new AbortController();
    const first = await sdk.send(new SubscribeToShardCommand(request), {
      abortSignal: abort.signal,
    });
    expect(first.EventStream).toBeDefined();
    await expect(once.send(new SubscribeToShardCommand(request))).rejects.toBeInstanceOf(
      ResourceInUseException,
    );
    abort.abort();
    await expect(
      once.send(
        new SubscribeToShardCommand({
          ...request,
          StartingPosition: { Type: 'AT_SEQUENCE_NUMBER' },
        }),
      ),
    ).rejects.toThrow();
    await expect(
      once.send(new SubscribeToShardCommand({ ...request, ShardId: 'not a shard id' })),
    ).rejects.toBeInstanceOf(ValidationException);
  });
});
