import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { readFanOut } from '../../src/client/fanout-consumer.js';
import { registerActiveConsumer } from '../helpers/consumers.js';
import { readLineage, splitFirstOpenShard, waitActive } from '../helpers/lineage.js';
import { ClusterHarness } from './harness.js';

/**
 * Enhanced fan-out on real processes (3 brokers, RF 3, one coordinator): four registered
 * consumers read one stream through SubscribeToShard while it is written, while the leader of a
 * shard is killed (kill -9) and brought back, and while a shard is split; subscriptions last 6 s,
 * so each consumer renews every shard's subscription several times. Afterwards the stream is read
 * by polling (the ground truth): each consumer received exactly what each shard holds, in the
 * shard's order, nothing skipped at a renewal or a failover and nothing repeated, and every
 * acknowledged record is in the stream.
 */

const STREAM = 'fanned';
const CONSUMERS = 4;
const KEYS = 64;
const WRITE_MS = 24_000;

let harness: ClusterHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('enhanced fan-out on a 3-broker cluster', () => {
  it('four consumers each receive every record of every shard, in order, through a leader kill, a split and renewals', async () => {
    harness = await ClusterHarness.start({
      brokers: 3,
      coordinators: 1,
      streams: [{ name: STREAM, shardCount: 3 }],
      tickMs: 50,
      // Longer than the 5 s takeover time, so a renewal is never refused.
      subscriptionLifetimeMs: 6_000,
    });
    const h = harness;
    const t0 = performance.now();
    const lines: string[] = [];
    const log = (line: string) =>
      lines.push(`${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s ${line}`);
    const control = h.client(10_000);
    await waitActive(control, STREAM);
    const arns: string[] = [];
    for (let i = 0; i < CONSUMERS; i++)
      arns.push(await registerActiveConsumer(control, STREAM, `app-${i}`));

    // The consumers, each with its own client (its own channels), as separate applications.
    const stop = new AbortController();
    const subscriptions = new Array<number>(CONSUMERS).fill(0);
    const received: Array<Array<{ shardId: string; sequenceNumber: string }>> = arns.map(() => []);
    const readers = arns.map(async (consumerArn, i) => {
      const client = h.client(5_000);
      for await (const { shardId, record } of readFanOut({
        client,
        streamName: STREAM,
        consumerArn,
        from: { type: 'TRIM_HORIZON' },
        signal: stop.signal,
        backoff: { initialMs: 50, maxMs: 1_000 },
        onSubscribe: () => subscriptions[i]!++,
      })) {
        received[i]!.push({ shardId, sequenceNumber: record.sequenceNumber });
      }
    });

    // The writer: batches of 40 records over 64 keys; only acknowledged records are counted.
    const writer = h.client(5_000);
    const acknowledged = new Set<string>();
    let n = 0;
    let writing = true;
    const writes = (async () => {
      while (writing) {
        const records = Array.from({ length: 40 }, () => {
          const i = n++;
          return { partitionKey: `k${i % KEYS}`, data: Buffer.from(`r${i}`) };
        });
        try {
          const answer = await writer.putRecords({ streamName: STREAM, records });
          answer.records.forEach((r, i) => {
            if (r.errorCode === '')
              acknowledged.add((records[i] as { data: Buffer }).data.toString());
          });
        } catch {
          // A failed call acknowledged nothing; writing goes on.
        }
        await sleep(20);
      }
    })();

    await sleep(WRITE_MS / 4);
    const routes = await control.shardRoutes(STREAM, true);
    const victim = routes.open[0]?.leader?.brokerId ?? (h.ids[0] as number);
    await h.kill(victim);
    log(`killed broker ${victim}, leader of ${routes.open[0]?.shardId} (kill -9)`);
    await sleep(2_000);
    await h.startBroker(victim);
    log(`broker ${victim} back`);

    await sleep(WRITE_MS / 4);
    const first = await splitFirstOpenShard(control, STREAM);
    log(`split ${first}`);

    await sleep(WRITE_MS / 2);
    writing = false;
    await writes;
    log(`wrote ${n} records, ${acknowledged.size} acknowledged`);

    // The ground truth: every shard read by polling, parents before children.
    const stored = await readLineage(control, STREAM);
    const truth = new Map<string, string[]>();
    for (const { shardId, record } of stored) {
      truth.set(shardId, [...(truth.get(shardId) ?? []), record.sequenceNumber]);
    }
    const storedData = new Set(stored.map(({ record }) => record.data.toString()));
    const lost = [...acknowledged].filter((d) => !storedData.has(d));

    // Let the consumers catch up (bounded), then stop them.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && received.some((r) => r.length < stored.length)) {
      await sleep(100);
    }
    stop.abort();
    await Promise.all(readers);

    const problems: string[] = [];
    received.forEach((items, i) => {
      const got = new Map<string, string[]>();
      for (const { shardId, sequenceNumber } of items) {
        got.set(shardId, [...(got.get(shardId) ?? []), sequenceNumber]);
      }
      for (const [shardId, expected] of truth) {
        const actual = got.get(shardId) ?? [];
        const same = actual.length === expected.length && actual.every((s, k) => s === expected[k]);
        if (!same) {
          const k = actual.findIndex((s, j) => s !== expected[j]);
          problems.push(
            `consumer ${i}, ${shardId}: ${actual.length} of ${expected.length} records; first difference at ${k}`,
          );
        }
      }
      for (const shardId of got.keys()) {
        if (!truth.has(shardId)) problems.push(`consumer ${i}: records from unknown ${shardId}`);
      }
    });
    log(
      `stored ${stored.length} records in ${truth.size} shards; lost ${lost.length}; ` +
        `received ${received.map((r) => r.length).join(', ')}; subscriptions ${subscriptions.join(', ')}`,
    );
    for (const p of problems.slice(0, 10)) log(p);
    console.log(lines.join('\n'));

    expect(lost).toEqual([]);
    expect(problems).toEqual([]);
    expect(truth.size).toBe(5);
    // Three shards for 24 s with 6-s subscriptions, a failover and two children: each consumer
    // subscribed far more often than once per shard.
    for (const count of subscriptions) expect(count).toBeGreaterThanOrEqual(12);
  }, 240_000);
});
