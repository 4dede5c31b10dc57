import { afterEach, describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import {
  createProducer,
  type ProducerClient,
  type ProducerOptions,
  type RecordResult,
} from '../../src/client/producer.js';
import { ProducerClosedError } from '../../src/client/producer-errors.js';
import {
  InternalFailureError,
  ResourceNotFoundError,
  ValidationError,
} from '../../src/common/errors.js';
import { UNLIMITED_SHARD_LIMITS } from '../../src/common/limits.js';
import { readLineage, waitActive } from '../helpers/lineage.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

/**
 * The buffered producer against a real in-process node: every record stored once, each key's
 * records in the order they were sent, through throttling, a split under load and answers lost
 * on the way back (with idempotence: no duplicates; without: duplicates, which shows the test can
 * see them); backpressure holds the buffer to its bound; bad use gets clear errors.
 */

let node: TestNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

async function stream(name: string, shardCount: number, limited = false): Promise<RheosClient> {
  node = await startTestNode();
  const { client } = node;
  await client.createStream({
    streamName: name,
    shardCount,
    ...(limited ? {} : { shardLimits: UNLIMITED_SHARD_LIMITS }),
  });
  await client.waitForStreamActive(name);
  return client;
}

/** Record i of key k carries "k:i", so order and duplicates can be checked from the data. */
function recordsFor(keys: number, perKey: number): { partitionKey: string; data: string }[] {
  const out: { partitionKey: string; data: string }[] = [];
  for (let i = 0; i < perKey; i++) {
    for (let k = 0; k < keys; k++) out.push({ partitionKey: `key-${k}`, data: `key-${k}:${i}` });
  }
  return out;
}

interface Audit {
  readonly total: number;
  readonly duplicates: number;
  readonly missing: number;
  readonly outOfOrder: number;
}

/** Reads the whole stream in lineage order and checks it against what was sent. */
async function audit(
  client: RheosClient,
  name: string,
  sent: readonly { data: string }[],
): Promise<Audit> {
  const read = await readLineage(client, name);
  const seen = new Map<string, number>();
  const lastOfKey = new Map<string, number>();
  let outOfOrder = 0;
  for (const { record } of read) {
    const text = Buffer.from(record.data).toString('utf8');
    seen.set(text, (seen.get(text) ?? 0) + 1);
    const [key, index] = text.split(':') as [string, string];
    const i = Number(index);
    if ((lastOfKey.get(key) ?? -1) > i) outOfOrder++;
    lastOfKey.set(key, Math.max(lastOfKey.get(key) ?? -1, i));
  }
  let duplicates = 0;
  let missing = 0;
  for (const { data } of sent) {
    const n = seen.get(data) ?? 0;
    if (n === 0) missing++;
    if (n > 1) duplicates += n - 1;
  }
  return { total: read.length, duplicates, missing, outOfOrder };
}

/** A client that loses the answer of every `every`-th call after the call took effect. */
function losingAnswers(client: RheosClient, every: number): ProducerClient & { lost: number } {
  let calls = 0;
  const wrapper = {
    lost: 0,
    shardRoutes: client.shardRoutes.bind(client),
    async putToShard(...args: Parameters<RheosClient['putToShard']>) {
      const response = await client.putToShard(...args);
      if (++calls % every === 0 && response.failedRecordCount === 0) {
        wrapper.lost++;
        throw new InternalFailureError('the answer was lost (test)');
      }
      return response;
    },
  };
  return wrapper;
}

function options(client: ProducerClient, more: Partial<ProducerOptions> = {}): ProducerOptions {
  return { client, streamName: 's', lingerMs: 5, backoff: { initialMs: 5, maxMs: 50 }, ...more };
}

describe('buffered producer', () => {
  it('stores every record once, in key order, and reports where each went', async () => {
    const client = await stream('s', 4);
    const producer = createProducer(options(client));
    const sent = recordsFor(50, 40);
    const outcomes = await producer.putMany(sent);
    await producer.close();
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const results = outcomes.map((o) => (o.ok ? o.result : undefined)) as RecordResult[];
    // Sequence numbers grow within a shard in the order records were sent.
    const lastByShard = new Map<string, bigint>();
    for (const r of results) {
      const seq = BigInt(r.sequenceNumber);
      expect(seq > (lastByShard.get(r.shardId) ?? -1n)).toBe(true);
      lastByShard.set(r.shardId, seq);
    }
    expect(lastByShard.size).toBe(4);
    expect(await audit(client, 's', sent)).toEqual({
      total: sent.length,
      duplicates: 0,
      missing: 0,
      outOfOrder: 0,
    });
    const stats = producer.stats();
    expect(stats.recordsStored).toBe(sent.length);
    // Batched: far fewer calls than records.
    expect(stats.batchesSent).toBeLessThan(sent.length / 10);
  });

  it('retries throttled records until they are stored, keeping key order', async () => {
    const client = await stream('s', 1, true);
    const producer = createProducer(options(client, { recordTtlMs: 60_000 }));
    // 3,000 records against 1,000 records/s per shard: throttled for about two seconds.
    const sent = recordsFor(10, 300);
    const outcomes = await producer.putMany(sent);
    await producer.close();
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(producer.stats().recordsThrottled).toBeGreaterThan(0);
    expect(await audit(client, 's', sent)).toMatchObject({
      duplicates: 0,
      missing: 0,
      outOfOrder: 0,
    });
  });

  it('with idempotence, answers lost after the write never become duplicates', async () => {
    const client = await stream('s', 2);
    const lossy = losingAnswers(client, 3);
    const producer = createProducer(options(lossy));
    const sent = recordsFor(20, 50);
    const outcomes = await producer.putMany(sent);
    await producer.close();
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(lossy.lost).toBeGreaterThan(0);
    const caught = outcomes.filter((o) => o.ok && o.result.duplicate).length;
    expect(caught).toBeGreaterThan(0);
    expect(producer.stats().duplicatesCaught).toBe(caught);
    expect(await audit(client, 's', sent)).toEqual({
      total: sent.length,
      duplicates: 0,
      missing: 0,
      outOfOrder: 0,
    });
    // A duplicate's sequence number is the original's: no two records share one.
    const seqs = outcomes.map((o) => (o.ok ? o.result.sequenceNumber : ''));
    expect(new Set(seqs).size).toBe(sent.length);
  });

  it('retries a batch whose answer was lost as it was, while more records wait behind it', async () => {
    // Regression: the retry took new records along, so the shard saw a batch overlapping stored
    // ones, refused it as out of order, and the producer renumbered it under a new epoch, storing
    // the first records twice.
    const client = await stream('s', 1);
    const lossy = losingAnswers(client, 2);
    const producer = createProducer(options(lossy, { backoff: { initialMs: 20, maxMs: 20 } }));
    const sent = recordsFor(5, 40);
    // Small batches (a few records, then a pause past the linger), so more records are queued
    // while a lost batch waits out its backoff.
    async function* trickle() {
      for (let i = 0; i < sent.length; i++) {
        if (i % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 8));
        yield sent[i] as { partitionKey: string; data: string };
      }
    }
    const outcomes = await producer.putMany(trickle());
    await producer.close();
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(lossy.lost).toBeGreaterThan(0);
    expect(producer.stats().epochBumps).toBe(0);
    expect(producer.stats().duplicatesCaught).toBeGreaterThan(0);
    expect(await audit(client, 's', sent)).toEqual({
      total: sent.length,
      duplicates: 0,
      missing: 0,
      outOfOrder: 0,
    });
  });

  it('without idempotence, the same lost answers store records twice (the check can fail)', async () => {
    const client = await stream('s', 2);
    const lossy = losingAnswers(client, 3);
    const producer = createProducer(options(lossy, { idempotent: false }));
    const sent = recordsFor(20, 50);
    const outcomes = await producer.putMany(sent);
    await producer.close();
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const result = await audit(client, 's', sent);
    expect(result.missing).toBe(0);
    expect(result.duplicates).toBeGreaterThan(0);
  });

  it('follows a split under load: every record once, parents before children', async () => {
    const client = await stream('s', 2);
    const producer = createProducer(options(client));
    const sent = recordsFor(40, 100);
    // Three phases, so the split always lands in the middle of the writing whatever the machine's
    // speed: records before it, records while it runs (paced), records after it finished. Each
    // phase is sent after the one before, so each key's records are sent in order.
    const first = await producer.putMany(sent.slice(0, 1000));
    const split = client.splitShard({
      streamName: 's',
      shardToSplit: 'shardId-000000000000',
      newStartingHashKey: (1n << 126n).toString(),
    });
    let splitDone = false;
    void split.then(() => (splitDone = true));
    async function* during() {
      for (let i = 1000; i < 3000; i++) {
        if (i % 100 === 0 && !splitDone) await new Promise((resolve) => setTimeout(resolve, 5));
        yield sent[i] as { partitionKey: string; data: string };
      }
    }
    const second = await producer.putMany(during());
    await split;
    await waitActive(client, 's');
    const third = producer.putMany(sent.slice(3000));
    const outcomes = [...first, ...(await second), ...(await third)];
    await producer.close();
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    const shards = new Set(outcomes.map((o) => (o.ok ? o.result.shardId : '')));
    expect(shards.size).toBeGreaterThan(2);
    expect(await audit(client, 's', sent)).toEqual({
      total: sent.length,
      duplicates: 0,
      missing: 0,
      outOfOrder: 0,
    });
  });

  it('holds at most maxBufferedBytes (plus one record) while the shard is slow', async () => {
    const client = await stream('s', 1, true);
    const maxBufferedBytes = 64 * 1024;
    const producer = createProducer(options(client, { maxBufferedBytes, recordTtlMs: 60_000 }));
    let peak = 0;
    const receipts: Promise<RecordResult>[] = [];
    for (let i = 0; i < 400; i++) {
      const receipt = await producer.send({
        partitionKey: `k${i % 7}`,
        data: Buffer.alloc(1000, i),
      });
      receipts.push(receipt.stored);
      peak = Math.max(peak, producer.stats().bufferedBytes);
    }
    await Promise.all(receipts);
    await producer.close();
    expect(peak).toBeLessThanOrEqual(maxBufferedBytes + 1010);
    // The limit was reached, so send() did wait: 400 KB went through a 64 KB buffer.
    expect(peak).toBeGreaterThan(maxBufferedBytes / 2);
    expect(producer.stats().bufferedBytes).toBe(0);
  });

  it('goes on numbering a shard whose lane was replaced while the routes lagged its seal', async () => {
    // Regression: a replaced lane numbered the sealed parent from 0 again, so the parent's table
    // took the batch for a retry of stored ones and answered "duplicate" for records never
    // stored. Here the routes stay a moment behind the split on purpose.
    const client = await stream('s', 1);
    const stale = await client.shardRoutes('s', true);
    let staleAnswers = 3;
    const lagging: ProducerClient = {
      putToShard: client.putToShard.bind(client),
      async shardRoutes(name, fresh) {
        if (fresh === true && staleAnswers > 0) {
          staleAnswers--;
          return stale;
        }
        return client.shardRoutes(name, fresh);
      },
    };
    const producer = createProducer(options(lagging));
    const sent = recordsFor(20, 50);
    const before = await producer.putMany(sent.slice(0, 500));
    await client.splitShard({
      streamName: 's',
      shardToSplit: 'shardId-000000000000',
      newStartingHashKey: (1n << 127n).toString(),
    });
    await waitActive(client, 's');
    const after = await producer.putMany(sent.slice(500));
    await producer.close();
    const outcomes = [...before, ...after];
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(await audit(client, 's', sent)).toEqual({
      total: sent.length,
      duplicates: 0,
      missing: 0,
      outOfOrder: 0,
    });
    expect(after.filter((o) => o.ok && o.result.duplicate)).toEqual([]);
    // The lag was seen: a lane was replaced for the sealed shard at least once.
    expect(staleAnswers).toBeLessThan(3);
  });

  it('gives clear errors for bad use', async () => {
    const client = await stream('s', 1);
    const producer = createProducer(options(client));
    await expect(producer.put({ partitionKey: '', data: 'x' })).rejects.toThrow(ValidationError);
    await expect(
      producer.put({ partitionKey: 'k', data: Buffer.alloc(1024 * 1024) }),
    ).rejects.toThrow(/1048576 bytes/);
    await expect(
      producer.put({ partitionKey: 'k', data: 'x', explicitHashKey: 'abc' }),
    ).rejects.toThrow(ValidationError);
    await producer.close();
    await expect(producer.put({ partitionKey: 'k', data: 'x' })).rejects.toThrow(
      ProducerClosedError,
    );
    const lost = createProducer({ client, streamName: 'no-such-stream' });
    await expect(lost.put({ partitionKey: 'k', data: 'x' })).rejects.toThrow(ResourceNotFoundError);
    await lost.close();
  });
});
