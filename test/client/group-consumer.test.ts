import { afterEach, describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import { consumeGroup, type GroupConsumer } from '../../src/client/group-consumer.js';
import {
  startGroupWorker,
  type GroupWorker,
  type GroupWorkerClient,
  type ShutdownReason,
} from '../../src/client/group-worker.js';
import { ResourceNotFoundError } from '../../src/common/errors.js';
import { registerActiveConsumer } from '../helpers/consumers.js';
import { splitFirstOpenShard } from '../helpers/lineage.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The consumer group's async-iterator form, and workers reading by enhanced fan-out, against one
 * node (real gRPC, real LevelDB). With a checkpoint after every batch and only graceful moves of
 * leases, every record is processed exactly once: a lease released by a stopping worker carries
 * its checkpoint to the next holder.
 */

let node: TestNode | undefined;
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop().catch(() => undefined);
  await node?.stop();
  node = undefined;
});

const FAILOVER_MS = 1_500;

interface Processed {
  readonly worker: string;
  readonly shardId: string;
  readonly data: string;
  readonly sequenceNumber: string;
}

async function putRange(client: RheosClient, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 250) {
    const records = [];
    for (let k = i; k < Math.min(to, i + 250); k++) {
      records.push({ partitionKey: `key-${k % 40}`, data: Buffer.from(`r${k}`) });
    }
    const answer = await client.putRecords({ streamName: 's', records });
    expect(answer.failedRecordCount).toBe(0);
  }
}

function waitAll(processed: readonly Processed[], count: number): Promise<true> {
  return waitUntil(
    `all ${count} records to be processed`,
    () => {
      const seen = new Set(processed.map((p) => p.data));
      for (let i = 0; i < count; i++) if (!seen.has(`r${i}`)) return undefined;
      return true;
    },
    30_000,
  );
}

/** Exactly once, and each shard's records in sequence order. */
function expectOnceInOrder(processed: readonly Processed[], total: number): void {
  expect(processed.length).toBe(total);
  expect(new Set(processed.map((p) => p.data)).size).toBe(total);
  const lastOfShard = new Map<string, string>();
  for (const p of processed) {
    const last = lastOfShard.get(p.shardId);
    if (last !== undefined) expect(p.sequenceNumber > last).toBe(true);
    lastOfShard.set(p.shardId, p.sequenceNumber);
  }
}

async function startNode(): Promise<RheosClient> {
  node = await startTestNode({ groupFailoverMs: FAILOVER_MS, limits: 'off' });
  await node.client.createStream({ streamName: 's', shardCount: 4 });
  await node.client.waitForStreamActive('s');
  return node.client;
}

describe('consumeGroup (the async-iterator form)', () => {
  it('shares the shards; breaking out of one loop hands its leases, checkpointed, to the other', async () => {
    const client = await startNode();
    const processed: Processed[] = [];
    let breakC1 = false;
    const run = (consumer: GroupConsumer, name: string) =>
      (async () => {
        for await (const batch of consumer) {
          // Leaves with a batch in hand and unprocessed: it must reach the other consumer.
          if (name === 'c1' && breakC1) break;
          for (const r of batch.records) {
            processed.push({
              worker: name,
              shardId: batch.shardId,
              data: r.data.toString(),
              sequenceNumber: r.sequenceNumber,
            });
          }
          await batch.checkpoint();
        }
      })();
    const open = (name: string) => {
      const consumer = consumeGroup({
        client,
        application: 'app',
        streamName: 's',
        workerId: name,
        heartbeatIntervalMs: 100,
      });
      stops.push(() => consumer.stop());
      return consumer;
    };
    const c1 = open('c1');
    const c2 = open('c2');
    const loop1 = run(c1, 'c1');
    const loop2 = run(c2, 'c2');
    // Balanced before any record is written, so no lease moves while records are in hand.
    await waitUntil('the shards to be shared', () =>
      c1.shards().length === 2 && c2.shards().length === 2 ? true : undefined,
    );
    await putRange(client, 0, 2_000);
    await waitAll(processed, 2_000);
    expect(new Set(processed.map((p) => p.worker))).toEqual(new Set(['c1', 'c2']));

    breakC1 = true;
    await putRange(client, 2_000, 4_000);
    await loop1;
    expect(c1.shards()).toEqual([]);
    await waitAll(processed, 4_000);
    expect(c2.shards()).toHaveLength(4);
    expectOnceInOrder(processed, 4_000);

    await c2.stop();
    await loop2;
    const { group } = await client.describeGroup({ application: 'app' });
    expect(group?.leases.map((l) => l.owner)).toEqual(['', '', '', '']);
  }, 60_000);

  it('ends the loop with the error that stopped the worker (an unknown stream)', async () => {
    const client = await startNode();
    const consumer = consumeGroup({ client, application: 'lost', streamName: 'missing' });
    stops.push(() => consumer.stop());
    const loop = (async () => {
      for await (const _batch of consumer)
        throw new Error('no batch can come from a missing stream');
    })();
    await expect(loop).rejects.toBeInstanceOf(ResourceNotFoundError);
  });
});

describe('group workers reading by enhanced fan-out', () => {
  it('read every shard by SubscribeToShard only, follow a split, and hand over at a graceful stop', async () => {
    const client = await startNode();
    const consumerArn = await registerActiveConsumer(client, 's', 'app-fan');
    // Counts the reads, to show that no record came by GetRecords.
    const calls = { getRecords: 0, subscribeToShard: 0 };
    const counted: GroupWorkerClient = {
      groupHeartbeat: (r) => client.groupHeartbeat(r),
      takeLease: (r) => client.takeLease(r),
      checkpointLease: (r) => client.checkpointLease(r),
      releaseLease: (r) => client.releaseLease(r),
      getShardIterator: (r) => client.getShardIterator(r),
      getRecords: (...args) => {
        calls.getRecords++;
        return client.getRecords(...args);
      },
      subscribeToShard: (...args) => {
        calls.subscribeToShard++;
        return client.subscribeToShard(...args);
      },
      shardRoutes: (...args) => client.shardRoutes(...args),
    };
    const processed: Processed[] = [];
    const shutdowns: Array<{ shardId: string; reason: ShutdownReason }> = [];
    const start = (workerId: string): GroupWorker => {
      const worker = startGroupWorker({
        client: counted,
        application: 'fan',
        streamName: 's',
        workerId,
        fanOutConsumerArn: consumerArn,
        heartbeatIntervalMs: 100,
        processRecords: async ({ shardId, records, checkpointer }) => {
          for (const r of records) {
            processed.push({
              worker: workerId,
              shardId,
              data: r.data.toString(),
              sequenceNumber: r.sequenceNumber,
            });
          }
          await checkpointer.checkpoint();
        },
        shutdown: async ({ shardId, reason, checkpointer }) => {
          shutdowns.push({ shardId, reason });
          if (reason === 'REQUESTED') await checkpointer?.checkpoint();
        },
      });
      stops.push(() => worker.abandon());
      return worker;
    };
    const w1 = start('w1');
    await waitUntil('w1 to hold every shard', () => (w1.shards().length === 4 ? true : undefined));
    await putRange(client, 0, 2_000);
    await waitAll(processed, 2_000);

    const parentId = await splitFirstOpenShard(client, 's', 30_000);
    await putRange(client, 2_000, 4_000);
    await waitAll(processed, 4_000);
    expect(shutdowns).toContainEqual({ shardId: parentId, reason: 'SHARD_END' });
    const children = new Set(
      processed.filter((p) => p.shardId > 'shardId-000000000003').map((p) => p.shardId),
    );
    expect(children.size).toBe(2);

    // A graceful stop checkpoints and releases; the next worker goes on from there.
    await w1.stop();
    const w2 = start('w2');
    await putRange(client, 4_000, 5_000);
    await waitAll(processed, 5_000);
    expect(w2.shards()).toHaveLength(5);
    expectOnceInOrder(processed, 5_000);
    expect(processed.filter((p) => p.worker === 'w2').length).toBe(1_000);
    expect(calls.getRecords).toBe(0);
    expect(calls.subscribeToShard).toBeGreaterThanOrEqual(7);
    await w2.stop();
  }, 60_000);
});
