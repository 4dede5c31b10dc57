import { afterEach, describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import { UNLIMITED_SHARD_LIMITS } from '../../src/common/limits.js';
import { readLineage, waitActive } from '../helpers/lineage.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

/**
 * An idempotent producer's retry that overlaps what the shard stored: the first attempt was
 * stored in part (a throttle cut it) and its answer was lost, so the retry carries stored records
 * followed by new ones. The shard answers the stored part as duplicates, with the original
 * sequence numbers, and stores the rest once; a sealed shard refuses the rest record by record, so
 * the producer sends only that to the children.
 */

let node: TestNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

const SHARD = 'shardId-000000000000';

async function start(): Promise<RheosClient> {
  node = await startTestNode();
  await node.client.createStream({
    streamName: 's',
    shardCount: 1,
    shardLimits: UNLIMITED_SHARD_LIMITS,
  });
  await node.client.waitForStreamActive('s');
  return node.client;
}

function batch(firstSequence: number, from: number, to: number) {
  const records = [];
  for (let i = from; i < to; i++)
    records.push({ partitionKey: `k${i}`, data: Buffer.from(`r${i}`) });
  return {
    streamName: 's',
    records,
    producer: { producerId: 42, epoch: 1, firstSequence, shardId: SHARD },
  };
}

describe('an idempotent retry overlapping stored records', () => {
  it('answers the stored part as duplicates with their sequence numbers and stores the rest once', async () => {
    const client = await start();
    const first = await client.putToShard(SHARD, batch(0, 0, 3));
    expect(first.failedRecordCount).toBe(0);
    const retry = await client.putToShard(SHARD, batch(0, 0, 5));
    expect(retry.failedRecordCount).toBe(0);
    expect(retry.records.map((r) => r.duplicate)).toEqual([true, true, true, false, false]);
    expect(retry.records.slice(0, 3).map((r) => r.sequenceNumber)).toEqual(
      first.records.map((r) => r.sequenceNumber),
    );
    const next = await client.putToShard(SHARD, batch(5, 5, 6));
    expect(next.records[0]?.duplicate).toBe(false);
    const read = await readLineage(client, 's');
    expect(read.map((r) => Buffer.from(r.record.data).toString())).toEqual([
      'r0',
      'r1',
      'r2',
      'r3',
      'r4',
      'r5',
    ]);
    expect(read.map((r) => r.record.sequenceNumber)).toEqual([
      ...first.records.map((r) => r.sequenceNumber),
      ...retry.records.slice(3).map((r) => r.sequenceNumber),
      next.records[0]?.sequenceNumber,
    ]);
  });

  it('on a sealed shard, answers the stored part and refuses only the rest as sealed', async () => {
    const client = await start();
    const first = await client.putToShard(SHARD, batch(0, 0, 3));
    await client.splitShard({
      streamName: 's',
      shardToSplit: SHARD,
      newStartingHashKey: (1n << 127n).toString(),
    });
    await waitActive(client, 's');
    const retry = await client.putToShard(SHARD, batch(0, 0, 5));
    expect(retry.failedRecordCount).toBe(2);
    expect(retry.records.map((r) => r.errorCode)).toEqual([
      '',
      '',
      '',
      'ShardSealedException',
      'ShardSealedException',
    ]);
    expect(retry.records.slice(0, 3).map((r) => [r.sequenceNumber, r.duplicate])).toEqual(
      first.records.map((r) => [r.sequenceNumber, true]),
    );
    const read = await readLineage(client, 's');
    expect(read.map((r) => Buffer.from(r.record.data).toString())).toEqual(['r0', 'r1', 'r2']);
  });

  it('still refuses a batch that skips ahead (a gap), whole', async () => {
    const client = await start();
    await client.putToShard(SHARD, batch(0, 0, 3));
    await expect(client.putToShard(SHARD, batch(4, 4, 6))).rejects.toThrow(
      /OutOfOrderSequence|expected sequence number 3/,
    );
    const read = await readLineage(client, 's');
    expect(read).toHaveLength(3);
  });
});
