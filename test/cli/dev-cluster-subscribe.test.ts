import {
  DescribeStreamConsumerCommand,
  DescribeStreamSummaryCommand,
  ListShardsCommand,
  PutRecordsCommand,
  RegisterStreamConsumerCommand,
  SubscribeToShardCommand,
  CreateStreamCommand,
  type KinesisClient,
  type StartingPosition,
} from '@aws-sdk/client-kinesis';
import { rm } from 'node:fs/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { sdkClient } from '../gateway/sdk-helpers.js';
import { tempDir } from '../helpers/node.js';
import { killAllChildren, startDevServer, waitDevReady } from '../helpers/processes.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Enhanced fan-out as an AWS user sees it, against `rheos dev --brokers 3` (a coordinator and
 * three broker processes, RF 3), with subscriptions of 6 s: the real AWS SDK v3 (HTTP/2) registers
 * a consumer, subscribes to every shard, and receives every record put meanwhile, in order per
 * shard; each shard's subscription is renewed from its ContinuationSequenceNumber after its
 * lifetime, with nothing lost or repeated.
 */

const dirs: string[] = [];
afterEach(killAllChildren);
afterAll(async () => {
  await killAllChildren();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Reads one shard through renewed subscriptions until `stop`, appending the data of each record to
 * `seen` as it arrives (so the test can watch progress).
 */
async function readShard(
  sdk: KinesisClient,
  consumerArn: string,
  shardId: string,
  stop: AbortSignal,
  counts: { subscriptions: number },
  seen: string[],
): Promise<void> {
  let position: StartingPosition = { Type: 'TRIM_HORIZON' };
  for (let attempt = 0; attempt < 200 && !stop.aborted; attempt++) {
    try {
      const answer = await sdk.send(
        new SubscribeToShardCommand({
          ConsumerARN: consumerArn,
          ShardId: shardId,
          StartingPosition: position,
        }),
        { abortSignal: stop },
      );
      counts.subscriptions++;
      for await (const message of answer.EventStream ?? []) {
        const event = message.SubscribeToShardEvent;
        if (event === undefined) continue;
        for (const r of event.Records ?? []) seen.push(Buffer.from(r.Data ?? []).toString());
        if (event.ContinuationSequenceNumber !== undefined) {
          position = {
            Type: 'AFTER_SEQUENCE_NUMBER',
            SequenceNumber: event.ContinuationSequenceNumber,
          };
        }
      }
    } catch {
      if (stop.aborted) break;
      // A renewal sooner than the takeover time, or a moment without a leader: try again.
      await sleep(200);
    }
  }
}

describe('SubscribeToShard through the Kinesis HTTP API of rheos dev --brokers 3', () => {
  it('the AWS SDK subscribes to every shard and receives every record, in order, across renewals', async () => {
    const dataDir = await tempDir('rheos-dev-subscribe-');
    dirs.push(dataDir);
    const server = await startDevServer(dataDir, [
      '--brokers',
      '3',
      '--subscription-lifetime-ms',
      '6000',
    ]);
    await waitDevReady(server);
    const sdk = sdkClient(Number(new URL(server.httpEndpoint).port), 'h2');
    try {
      const name = 'pushed';
      await sdk.send(new CreateStreamCommand({ StreamName: name, ShardCount: 2 }));
      const summary = await waitUntil(
        `${name} to be ACTIVE`,
        async () => {
          const { StreamDescriptionSummary: s } = await sdk.send(
            new DescribeStreamSummaryCommand({ StreamName: name }),
          );
          return s?.StreamStatus === 'ACTIVE' ? s : undefined;
        },
        60_000,
      );
      const { Consumer: c } = await sdk.send(
        new RegisterStreamConsumerCommand({ StreamARN: summary.StreamARN, ConsumerName: 'app' }),
      );
      const consumerArn = c?.ConsumerARN as string;
      await waitUntil(
        'the consumer to be ACTIVE',
        async () => {
          const { ConsumerDescription: d } = await sdk.send(
            new DescribeStreamConsumerCommand({ ConsumerARN: consumerArn }),
          );
          return d?.ConsumerStatus === 'ACTIVE' ? true : undefined;
        },
        30_000,
      );
      const shards = (await sdk.send(new ListShardsCommand({ StreamName: name }))).Shards ?? [];
      expect(shards).toHaveLength(2);

      const stop = new AbortController();
      const counts = shards.map(() => ({ subscriptions: 0 }));
      const received: string[][] = shards.map(() => []);
      const readers = shards.map((s, i) =>
        readShard(sdk, consumerArn, s.ShardId as string, stop.signal, counts[i]!, received[i]!),
      );
      // Records for 14 s, so every shard's 6-s subscription is renewed at least once.
      const sent = new Map<string, string[]>();
      let n = 0;
      const until = Date.now() + 14_000;
      while (Date.now() < until) {
        const Records = Array.from({ length: 20 }, () => {
          const i = n++;
          return { PartitionKey: `k${i % 8}`, Data: Buffer.from(`r${i}`) };
        });
        const answer = await sdk.send(new PutRecordsCommand({ StreamName: name, Records }));
        expect(answer.FailedRecordCount).toBe(0);
        (answer.Records ?? []).forEach((r, i) => {
          const list = sent.get(r.ShardId as string) ?? [];
          list.push(Records[i]!.Data.toString());
          sent.set(r.ShardId as string, list);
        });
        await sleep(50);
      }
      const expected = shards.map((s) => sent.get(s.ShardId as string) ?? []);
      for (const list of expected) expect(list.length).toBeGreaterThan(0);
      // Stop once every reader has caught up, and a moment later so a repeat would show.
      await waitUntil(
        'the subscriptions to deliver every record',
        () => (received.every((list, i) => list.length >= expected[i]!.length) ? true : undefined),
        30_000,
      ).catch(() => undefined);
      await sleep(500);
      stop.abort();
      await Promise.all(readers);
      expect(received).toEqual(expected);
      for (const count of counts) expect(count.subscriptions).toBeGreaterThanOrEqual(2);
    } finally {
      sdk.destroy();
    }
  }, 120_000);
});
