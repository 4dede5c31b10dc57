import { afterEach, describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import { writeInOrder } from '../../src/client/ordered-writer.js';
import { startInProcessCluster, type InProcessCluster } from '../helpers/in-process-cluster.js';
import { readShardLines } from '../helpers/read-shard.js';
import { parseSequenceNumber } from '../../src/common/sequence-number.js';
import { ShardIteratorType } from '../../src/gen/rheos/v1/data.js';
import { createClient } from '../../src/client/client.js';

/**
 * Three brokers in one process, each with its own LevelDB, talking real gRPC: the replicated write
 * path end to end (routing to leaders, commit, apply, reads on every replica), a leader that goes
 * away, and a replica that comes back and catches up.
 */

interface Cluster extends InProcessCluster {
  /** One client of every broker. */
  readonly client: RheosClient;
}

const running: InProcessCluster[] = [];
afterEach(async () => {
  for (const cluster of running.splice(0)) await cluster.close();
});

async function startCluster(shards: number): Promise<Cluster> {
  const cluster = await startInProcessCluster({
    clusterId: 'test',
    streams: [{ name: 'events', shardCount: shards, replicationFactor: 3, unlimited: true }],
  });
  running.push(cluster);
  return { ...cluster, client: cluster.newClient() };
}

function readShard(client: RheosClient, shardId: string): Promise<string[]> {
  return readShardLines(client, 'events', shardId);
}

/** Every replica's committed records of a shard, read directly from each broker. */
async function replicaContents(cluster: Cluster, shard: number): Promise<string[][]> {
  const out: string[][] = [];
  for (const broker of cluster.brokers) {
    const replica = broker?.host.get(shard);
    if (replica === undefined) continue;
    const result = await replica.read(
      { index: 1, offset: 0 },
      { maxRecords: 100_000, maxBytes: 1 << 30 },
    );
    out.push(
      result.records.map((r) => `${r.position.index}.${r.position.offset} ${r.data.toString()}`),
    );
  }
  return out;
}

async function writeValues(
  client: RheosClient,
  from: number,
  count: number,
): Promise<Map<string, string>> {
  const acked = new Map<string, string>();
  const values = Array.from({ length: count }, (_, i) => `v${from + i}`);
  await writeInOrder(
    values.map((v) => ({ partitionKey: v, data: Buffer.from(v) })),
    {
      client,
      streamName: 'events',
      maxBatchRecords: 100,
      onStored: (s) => acked.set(s.record.data.toString(), `${s.shardId} ${s.sequenceNumber}`),
    },
  );
  return acked;
}

async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('replicated shards (three brokers in one process)', () => {
  it('acknowledges writes on the leaders and every replica holds the same records', async () => {
    const cluster = await startCluster(2);
    const acked = await writeValues(cluster.client, 0, 1_000);
    expect(acked.size).toBe(1_000);
    const { shards } = await cluster.client.listShards({ streamName: 'events' });
    let read = 0;
    for (const shard of shards) {
      const records = await readShard(cluster.client, shard.shardId);
      read += records.length;
      for (const line of records) {
        const [seq, value] = line.split(' ') as [string, string];
        expect(acked.get(value)).toBe(`${shard.shardId} ${seq}`);
      }
    }
    expect(read).toBe(1_000);
    for (const incarnation of [1, 2]) {
      await waitFor('replicas to apply everything', async () => {
        const contents = await replicaContents(cluster, incarnation);
        return (
          contents.length === 3 &&
          contents.every((c) => c.length === (contents[0] as string[]).length)
        );
      });
      const [a, b, c] = await replicaContents(cluster, incarnation);
      expect(b).toEqual(a);
      expect(c).toEqual(a);
    }
  });

  it('a leader that stops is replaced; a replica that returns catches up', async () => {
    const cluster = await startCluster(1);
    await writeValues(cluster.client, 0, 300);
    const leader = cluster.brokers.findIndex((b) => b?.host.get(1)?.isLeader === true) + 1;
    expect(leader).toBeGreaterThan(0);
    await cluster.stop(leader);
    const after = await writeValues(cluster.client, 300, 300);
    expect(after.size).toBe(300);
    await cluster.start(leader);
    await waitFor('the returning replica to catch up', async () => {
      const contents = await replicaContents(cluster, 1);
      return contents.length === 3 && contents.every((c) => c.length >= 600);
    });
    const [a, b, c] = await replicaContents(cluster, 1);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    const values = new Set((a as string[]).map((line) => line.split(' ')[1]));
    for (let i = 0; i < 600; i++) expect(values.has(`v${i}`)).toBe(true);
  });

  it('a follower at its tip sees every write acknowledged before the read (ReadIndex), not just what it has heard of', async () => {
    const cluster = await startCluster(1);
    await writeValues(cluster.client, 0, 10);
    for (let i = 0; i < 30; i++) {
      const value = `tip-${i}`;
      const ack = await cluster.client.putRecord({
        streamName: 'events',
        partitionKey: value,
        data: Buffer.from(value),
      });
      const at = parseSequenceNumber(ack.sequenceNumber);
      expect(at).toBeDefined();
      const followers = cluster.running().filter(([, b]) => b.host.get(1)?.isLeader === false);
      expect(followers.length).toBe(2);
      // Read at once, before any heartbeat could tell the followers the new commit index.
      const reads = await Promise.all(
        followers.map(([, b]) =>
          (b.host.get(1) as NonNullable<ReturnType<typeof b.host.get>>).read(
            { index: at?.index ?? 0, offset: 0 },
            { maxRecords: 10, maxBytes: 1 << 20 },
          ),
        ),
      );
      for (const read of reads) {
        expect(read.records.map((r) => r.data.toString())).toEqual([value]);
        expect(read.caughtUp).toBe(true);
        expect(read.unconfirmed).toBeUndefined();
      }
    }
  });

  it('a replica that cannot reach a leader never reports itself caught up (MillisBehindLatest > 0)', async () => {
    const cluster = await startCluster(1);
    await writeValues(cluster.client, 0, 10);
    const lone = cluster.running().find(([, b]) => b.host.get(1)?.isLeader === false)?.[0];
    expect(lone).toBeDefined();
    for (const [id] of cluster.running()) if (id !== lone) await cluster.stop(id);
    const client = createClient({ endpoints: [cluster.api(lone ?? 0)], deadlineMs: 5_000 });
    try {
      const { shardIterator } = await client.getShardIterator({
        streamName: 'events',
        shardId: 'shardId-000000000000',
        shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
      });
      const page = await client.getRecords({ shardIterator });
      // Everything it holds, but it cannot say nothing newer was committed elsewhere.
      expect(page.records.length).toBe(10);
      expect(page.millisBehindLatest).toBeGreaterThan(0);
      const again = await client.getRecords({ shardIterator: page.nextShardIterator });
      expect(again.records).toEqual([]);
      expect(again.millisBehindLatest).toBeGreaterThan(0);
    } finally {
      client.close();
    }
  });
});
