import { afterEach, describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import {
  startGroupWorker,
  type GroupWorker,
  type ShutdownReason,
} from '../../src/client/group-worker.js';
import { splitFirstOpenShard } from '../helpers/lineage.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Consumer-group workers against one node (real gRPC, real LevelDB): workers share the shards,
 * a joining worker gets its share by stealing, a crashed worker's leases are taken once it is
 * silent for the failover time, a split's children start only after their parent was read to its
 * end; every record is processed at least once, each shard's records in order per holder, and
 * records are processed twice only on shards whose lease moved without a checkpoint of them.
 */

let node: TestNode | undefined;
const workers: GroupWorker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.abandon();
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

async function putMany(
  client: RheosClient,
  from: number,
  to: number,
): Promise<Map<string, string>> {
  const shardOf = new Map<string, string>();
  for (let i = from; i < to; i += 250) {
    const records = [];
    for (let k = i; k < Math.min(to, i + 250); k++) {
      records.push({ partitionKey: `key-${k % 40}`, data: Buffer.from(`r${k}`) });
    }
    const answer = await client.putRecords({ streamName: 's', records });
    expect(answer.failedRecordCount).toBe(0);
    answer.records.forEach((r, j) => shardOf.set(`r${i + j}`, r.shardId));
  }
  return shardOf;
}

describe('consumer-group workers', () => {
  it('share the shards, rebalance on a join, take over from a crashed worker, and finish parents before children', async () => {
    node = await startTestNode({ groupFailoverMs: FAILOVER_MS, limits: 'off' });
    const { client } = node;
    await client.createStream({ streamName: 's', shardCount: 4 });
    await client.waitForStreamActive('s');
    const processed: Processed[] = [];
    const shutdowns: Array<{ worker: string; shardId: string; reason: ShutdownReason }> = [];
    const start = (workerId: string) => {
      const worker = startGroupWorker({
        client,
        application: 'app',
        streamName: 's',
        workerId,
        heartbeatIntervalMs: 200,
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
        shutdown: async ({ shardId, reason }) => {
          shutdowns.push({ worker: workerId, shardId, reason });
        },
      });
      workers.push(worker);
      return worker;
    };
    const seen = () => new Set(processed.map((p) => p.data));
    let total = 0;
    const expectAll = async (count: number) =>
      waitUntil(
        `all ${count} records to be processed`,
        () => {
          const s = seen();
          for (let i = 0; i < count; i++) if (!s.has(`r${i}`)) return undefined;
          return true;
        },
        30_000,
      );

    const w1 = start('w1');
    const w2 = start('w2');
    await putMany(client, 0, 2_000);
    total = 2_000;
    await expectAll(total);
    await waitUntil('the shards to be shared', () =>
      w1.shards().length === 2 && w2.shards().length === 2 ? true : undefined,
    );

    // A third worker joins: it steals until the shares differ by at most one.
    const w3 = start('w3');
    await waitUntil(
      'the join to be balanced',
      () => {
        const counts = [w1, w2, w3].map((w) => w.shards().length);
        return Math.max(...counts) - Math.min(...counts) <= 1 &&
          counts.reduce((a, b) => a + b, 0) === 4
          ? true
          : undefined;
      },
      20_000,
    );
    await putMany(client, total, total + 1_000);
    total += 1_000;
    await expectAll(total);

    // w3 crashes: no release, no checkpoint. Its leases move once it is silent long enough.
    const orphaned = w3.shards();
    await w3.abandon();
    await putMany(client, total, total + 1_000);
    total += 1_000;
    await expectAll(total);
    expect(w1.shards().length + w2.shards().length).toBe(4);

    // A split: the children start only after the parent's SHARD_END.
    const parentId = await splitFirstOpenShard(client, 's', 30_000);
    const after = await putMany(client, total, total + 1_000);
    total += 1_000;
    await expectAll(total);
    expect(shutdowns.some((s) => s.shardId === parentId && s.reason === 'SHARD_END')).toBe(true);
    const lastParent = processed.map((p) => p.shardId).lastIndexOf(parentId);
    const children = new Set([...after.values()].filter((id) => id > 'shardId-000000000003'));
    expect(children.size).toBeGreaterThan(0);
    const firstChild = processed.findIndex((p) => children.has(p.shardId));
    expect(firstChild).toBeGreaterThan(lastParent);

    // At least once, in order per holder; repeats only on shards whose lease moved.
    const counts = new Map<string, number>();
    for (const p of processed) counts.set(p.data, (counts.get(p.data) ?? 0) + 1);
    const repeated = new Set(
      processed.filter((p) => (counts.get(p.data) ?? 0) > 1).map((p) => p.shardId),
    );
    const moved = new Set([
      ...orphaned,
      ...shutdowns.filter((s) => s.reason === 'LEASE_LOST').map((s) => s.shardId),
    ]);
    for (const shardId of repeated) expect(moved.has(shardId)).toBe(true);
    const byHolder = new Map<string, string[]>();
    for (const p of processed) {
      const key = `${p.worker}/${p.shardId}`;
      byHolder.set(key, [...(byHolder.get(key) ?? []), p.sequenceNumber]);
    }
    for (const [key, sequence] of byHolder) {
      // A holder that never lost the shard read it strictly forward (fixed-width numbers).
      const [worker, shardId] = key.split('/') as [string, string];
      if (
        shutdowns.some(
          (x) => x.worker === worker && x.shardId === shardId && x.reason === 'LEASE_LOST',
        )
      )
        continue;
      for (let i = 1; i < sequence.length; i++) {
        expect((sequence[i] as string) > (sequence[i - 1] as string)).toBe(true);
      }
    }
    console.log(
      `group workers: ${total} records, ${processed.length} processed (${processed.length - total} repeats on ${repeated.size} moved shards)`,
    );

    await w1.stop();
    await w2.stop();
    const { group } = await client.describeGroup({ application: 'app' });
    // Every lease still to be read was released (finished ones keep their last owner).
    expect(group?.leases.filter((l) => l.owner !== '' && l.checkpoint !== 'SHARD_END')).toEqual([]);
  }, 120_000);
});
