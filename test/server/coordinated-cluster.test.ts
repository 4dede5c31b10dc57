import {
  CreateStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  PutRecordsCommand,
  waitUntilStreamExists,
} from '@aws-sdk/client-kinesis';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type RheosClient } from '../../src/client/client.js';
import { MAX_HASH_KEY } from '../../src/common/hash-key.js';
import { systemClock } from '../../src/common/clock.js';
import { UNLIMITED_SHARD_LIMITS } from '../../src/common/limits.js';
import { ShardIteratorType } from '../../src/gen/rheos/v1/data.js';
import { CoordinatorLink } from '../../src/coordinator/coordinator-link.js';
import { CoordinatorServiceService } from '../../src/gen/rheos/v1/coordinator.js';
import { startBroker, type RunningBroker } from '../../src/server/broker-node.js';
import { startCoordinator, type RunningCoordinator } from '../../src/server/coordinator-node.js';
import { openBrokerStore } from '../../src/storage/log-store.js';
import { storedGroups } from '../../src/storage/shard-log.js';
import { tempDir } from '../helpers/node.js';
import { freePort } from '../helpers/processes.js';
import { waitUntil } from '../helpers/wait.js';
import { sdkClient } from '../gateway/sdk-helpers.js';

/**
 * A coordinator and three brokers in one process (real gRPC, real LevelDB): what a broker does
 * with what the coordinator tells it. It registers once and keeps its id across restarts, opens
 * the replicas placed on it, deletes them when their stream is deleted, and refuses a data
 * folder of another cluster.
 */

const CLUSTER = 'inproc';
const GROUP_FAILOVER_MS = 1_500;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

interface Cluster {
  coordinator: RunningCoordinator;
  /** Stops the coordinator, or starts it again on its data (same addresses). */
  stopCoordinator(): Promise<void>;
  restartCoordinator(): Promise<void>;
  coordinatorApi: string;
  dirs: string[];
  brokers: Array<RunningBroker | undefined>;
  addresses: Array<{ api: string; peer: string }>;
  start(
    n: number,
    overrides?: {
      clusterId?: string;
      brokerId?: number;
      httpListen?: string;
      offlineStartAfterMs?: number;
    },
  ): Promise<RunningBroker>;
  client(): RheosClient;
}

async function startCluster(): Promise<Cluster> {
  const coordinatorDir = await tempDir('rheos-coord-');
  const coordinatorApi = `127.0.0.1:${await freePort()}`;
  const coordinatorPeer = `127.0.0.1:${await freePort()}`;
  const launch = () =>
    startCoordinator({
      clusterId: CLUSTER,
      id: 1,
      members: new Map([[1, { api: coordinatorApi, peer: coordinatorPeer }]]),
      dataDir: coordinatorDir,
      clock: systemClock,
      tickMs: 20,
      heartbeatIntervalMs: 100,
      groupFailoverMs: GROUP_FAILOVER_MS,
    });
  const coordinator = await launch();
  cleanups.push(async () => {
    await cluster.coordinator.close();
    await rm(coordinatorDir, { recursive: true, force: true });
  });
  const dirs: string[] = [];
  const addresses: Array<{ api: string; peer: string }> = [];
  for (let n = 0; n < 3; n++) {
    const dir = await tempDir('rheos-broker-');
    dirs.push(dir);
    addresses.push({ api: `127.0.0.1:${await freePort()}`, peer: `127.0.0.1:${await freePort()}` });
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
  }
  const cluster: Cluster = {
    coordinator,
    stopCoordinator: () => cluster.coordinator.close(),
    restartCoordinator: async () => {
      cluster.coordinator = await launch();
    },
    coordinatorApi,
    dirs,
    brokers: [undefined, undefined, undefined],
    addresses,
    start: async (n, overrides = {}) => {
      const broker = await startBroker({
        cluster: {
          clusterId: overrides.clusterId ?? CLUSTER,
          coordinators: [coordinatorApi],
          registerTimeoutMs: 10_000,
          ...(overrides.offlineStartAfterMs === undefined
            ? {}
            : { offlineStartAfterMs: overrides.offlineStartAfterMs }),
        },
        ...(overrides.brokerId === undefined ? {} : { brokerId: overrides.brokerId }),
        dataDir: dirs[n] as string,
        apiListen: (addresses[n] as { api: string }).api,
        peerListen: (addresses[n] as { peer: string }).peer,
        tickMs: 20,
        retentionCheckIntervalMs: 0,
        ...(overrides.httpListen === undefined ? {} : { httpListen: overrides.httpListen }),
      });
      cluster.brokers[n] = broker;
      cleanups.push(() => broker.close());
      return broker;
    },
    client: () => {
      const c = createClient({ endpoints: addresses.map((a) => a.api), deadlineMs: 5_000 });
      cleanups.push(async () => c.close());
      return c;
    },
  };
  return cluster;
}

const storedOn = async (dir: string): Promise<number[]> => {
  const kv = await openBrokerStore(dir);
  try {
    return await storedGroups(kv);
  } finally {
    await kv.close();
  }
};

describe('brokers placed by a coordinator (in one process)', () => {
  it('register once, keep their ids across restarts, open placed replicas and delete them with their stream', async () => {
    const c = await startCluster();
    const ids = [];
    for (let n = 0; n < 3; n++) ids.push((await c.start(n)).id);
    // Ids are handed out once each, and stored in the data folder before anything is served.
    expect([...ids].sort()).toEqual([1, 2, 3]);
    for (let n = 0; n < 3; n++) {
      const saved = JSON.parse(
        await readFile(join(c.dirs[n] as string, 'broker-id.json'), 'utf8'),
      ) as Record<string, unknown>;
      expect(saved).toEqual({ clusterId: CLUSTER, brokerId: ids[n], token: expect.any(String) });
    }
    const client = c.client();
    await client.createStream({
      streamName: 'keep',
      shardCount: 2,
      shardLimits: UNLIMITED_SHARD_LIMITS,
    });
    await client.createStream({
      streamName: 'drop',
      shardCount: 3,
      shardLimits: UNLIMITED_SHARD_LIMITS,
    });
    await client.waitForStreamActive('keep', 20_000);
    await client.waitForStreamActive('drop', 20_000);
    // Writes go to each shard's leader; every broker holds all 5 replicas (factor 3 on 3 brokers).
    const put = await client.putRecords({
      streamName: 'keep',
      records: Array.from({ length: 50 }, (_, i) => ({
        partitionKey: `k${i}`,
        data: Buffer.from(`v${i}`),
      })),
    });
    expect(put.failedRecordCount).toBe(0);
    await waitUntil('every broker to open the 5 replicas', async () =>
      c.brokers.every((b) => [...(b as RunningBroker).host.groups()].length === 5)
        ? true
        : undefined,
    );

    // Any broker answers `rheos admin cluster` (passing it to the coordinators).
    const viaBroker = new CoordinatorLink({ endpoints: [(c.addresses[2] as { api: string }).api] });
    cleanups.push(async () => viaBroker.close());
    const cluster = await viaBroker.call(CoordinatorServiceService.describeCluster, {}, true);
    expect(cluster.brokers.map((b) => [b.brokerId, b.replicas.length])).toEqual([
      [1, 5],
      [2, 5],
      [3, 5],
    ]);

    // A restarted broker comes back under the same id with its replicas.
    const restartedId = ids[1];
    await c.brokers[1]?.close();
    const again = await c.start(1);
    expect(again.id).toBe(restartedId);
    await waitUntil('the restarted broker to reopen its replicas', async () =>
      [...again.host.groups()].length === 5 ? true : undefined,
    );

    // Deleting a stream deletes its replicas from every broker's disk.
    await client.deleteStream({ streamName: 'drop' });
    await waitUntil('every broker to drop the deleted stream’s replicas', async () =>
      c.brokers.every((b) => [...(b as RunningBroker).host.groups()].length === 2)
        ? true
        : undefined,
    );
    const shards = (await client.listShards({ streamName: 'keep' })).shards.length;
    expect(shards).toBe(2);
    for (let n = 0; n < 3; n++) await c.brokers[n]?.close();
    for (const dir of c.dirs) expect(await storedOn(dir)).toHaveLength(2);

    // The records written before are all still there, after all of that.
    for (let n = 0; n < 3; n++) await c.start(n);
    const reader = c.client();
    let total = 0;
    for (const shard of (await reader.listShards({ streamName: 'keep' })).shards) {
      const { shardIterator } = await reader.getShardIterator({
        streamName: 'keep',
        shardId: shard.shardId,
        shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
      });
      const records = await reader.getRecords({ shardIterator, limit: 1000 });
      total += records.records.length;
    }
    expect(total).toBe(50);
  }, 60_000);

  it('a client whose shard map predates a split still writes every key (told ShardSealed, not bounced between leaders)', async () => {
    const c = await startCluster();
    for (let n = 0; n < 3; n++) await c.start(n);
    const control = c.client();
    await control.createStream({
      streamName: 'split',
      shardCount: 1,
      shardLimits: UNLIMITED_SHARD_LIMITS,
    });
    await control.waitForStreamActive('split', 20_000);
    // `stale` learns the one-shard map, and keeps it through the split.
    const stale = c.client();
    const keys = Array.from({ length: 64 }, (_, i) => `key-${i}`);
    const put = (client: RheosClient, tag: string) =>
      client.putRecords({
        streamName: 'split',
        records: keys.map((k) => ({ partitionKey: k, data: Buffer.from(`${tag}-${k}`) })),
      });
    expect((await put(stale, 'before')).failedRecordCount).toBe(0);
    // A fresh client writes through the cutover too, so the broker leading the parent has
    // re-routed records itself (its own client never told of the seal).
    await control.splitShard({
      streamName: 'split',
      shardToSplit: 'shardId-000000000000',
      newStartingHashKey: ((MAX_HASH_KEY + 1n) / 2n).toString(),
    });
    await control.waitForStreamActive('split', 20_000);
    for (let round = 0; round < 5; round++) {
      const answer = await put(stale, `after-${round}`);
      expect(answer.records.filter((r) => r.errorCode !== '')).toEqual([]);
      for (const r of answer.records)
        expect(['shardId-000000000001', 'shardId-000000000002']).toContain(r.shardId);
    }
    const one = await stale.putRecord({
      streamName: 'split',
      partitionKey: 'single',
      data: Buffer.from('x'),
    });
    expect(one.shardId).not.toBe('shardId-000000000000');
  });

  it('registers fan-out consumers through any broker; the coordinator leader makes them ACTIVE and removes them; the shard leader pushes records to them', async () => {
    const c = await startCluster();
    for (let n = 0; n < 3; n++) await c.start(n);
    const client = c.client();
    await client.createStream({ streamName: 'fan', shardCount: 1 });
    await client.waitForStreamActive('fan', 20_000);
    const streamArn = 'arn:aws:kinesis:us-east-1:000000000000:stream/fan';
    const { consumer } = await client.registerStreamConsumer({ streamArn, consumerName: 'app' });
    const consumerArn = consumer?.consumerArn as string;
    const statusOf = async () =>
      (await client.describeStreamConsumer({ consumerArn })).consumerDescription?.consumerStatus;
    for (
      let attempt = 0;
      attempt < 200 && (await statusOf()) !== 'CONSUMER_STATUS_ACTIVE';
      attempt++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await statusOf()).toBe('CONSUMER_STATUS_ACTIVE');
    // The shard's leader pushes what is put, whichever broker the client reached first.
    const controller = new AbortController();
    const events = client.subscribeToShard(
      {
        consumerArn,
        shardId: 'shardId-000000000000',
        startingPosition: { type: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON },
      },
      { signal: controller.signal },
    );
    const received: string[] = [];
    const reading = (async () => {
      for await (const event of events) {
        received.push(...event.records.map((r) => Buffer.from(r.data).toString()));
        if (received.length >= 100) controller.abort();
      }
    })();
    await client.putRecords({
      streamName: 'fan',
      records: Array.from({ length: 100 }, (_, i) => ({
        partitionKey: `k${i}`,
        data: Buffer.from(`r${i}`),
      })),
    });
    await reading;
    expect(received).toEqual(Array.from({ length: 100 }, (_, i) => `r${i}`));
    await client.deregisterStreamConsumer({ streamArn, consumerName: 'app' });
    let listed = 1;
    for (let attempt = 0; attempt < 200 && listed > 0; attempt++) {
      listed = (await client.listStreamConsumers({ streamArn })).consumers.length;
      if (listed > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(listed).toBe(0);
  });

  it('serves consumer groups through any broker; checkpoints do not move the metadata version brokers fetch; a coordinator restart keeps leases and restarts their timers', async () => {
    const c = await startCluster();
    for (let n = 0; n < 3; n++) await c.start(n);
    const client = c.client();
    await client.createStream({ streamName: 'grp', shardCount: 2 });
    await client.waitForStreamActive('grp', 20_000);
    const app = { application: 'app' };
    await client.groupHeartbeat({ ...app, workerId: 'w1', streamName: 'grp' });
    const { lease } = await client.takeLease({
      ...app,
      workerId: 'w1',
      shardId: 'shardId-000000000000',
      expectedCounter: 0,
    });
    expect(lease).toMatchObject({ owner: 'w1', counter: 1 });
    const { records } = await client.putRecords({
      streamName: 'grp',
      records: Array.from({ length: 20 }, (_, i) => ({
        partitionKey: `k${i}`,
        data: Buffer.from(`r${i}`),
      })),
    });
    const inShard = records.filter((r) => r.shardId === 'shardId-000000000000');
    expect(inShard.length).toBeGreaterThan(0);
    const brokerVersion = c.coordinator.replica.brokerVersion;
    const applied = c.coordinator.replica.appliedIndex;
    for (const r of inShard) {
      await client.checkpointLease({
        ...app,
        workerId: 'w1',
        shardId: 'shardId-000000000000',
        counter: 1,
        sequenceNumber: r.sequenceNumber,
      });
    }
    expect(c.coordinator.replica.appliedIndex).toBeGreaterThanOrEqual(applied + inShard.length);
    expect(c.coordinator.replica.brokerVersion).toBe(brokerVersion);

    await c.stopCoordinator();
    await c.restartCoordinator();
    const leaseNow = async () =>
      (await client.describeGroup(app)).group?.leases.find(
        (l) => l.shardId === 'shardId-000000000000',
      );
    // Kept, and not expired: the new leadership has not heard from w1 yet, so its timer starts now.
    const kept = await waitUntil('the coordinator to answer again', () =>
      leaseNow().catch(() => undefined),
    );
    expect(kept).toMatchObject({
      owner: 'w1',
      counter: 1,
      checkpoint: inShard[inShard.length - 1]?.sequenceNumber,
      expired: false,
    });
    // w1 stays silent: after the failover time another worker may take its lease.
    await waitUntil('w1 to expire', async () => ((await leaseNow())?.expired ? true : undefined));
    await client.takeLease({
      ...app,
      workerId: 'w2',
      shardId: 'shardId-000000000000',
      expectedCounter: 1,
    });
    expect(await leaseNow()).toMatchObject({ owner: 'w2', counter: 2 });
  });

  it('a broker refuses a data folder of another cluster, and a second id for its folder', async () => {
    const c = await startCluster();
    const first = await c.start(0);
    await first.close();
    await expect(c.start(0, { clusterId: 'other' })).rejects.toThrow(/cluster/);
    await expect(c.start(0, { brokerId: first.id + 1 })).rejects.toThrow(/belongs to broker/);
  }, 30_000);

  it('never lets a folder take over another broker’s replicas or id', async () => {
    const c = await startCluster();
    const brokers = [await c.start(0), await c.start(1), await c.start(2)];
    const client = c.client();
    await client.createStream({
      streamName: 's',
      shardCount: 1,
      shardLimits: UNLIMITED_SHARD_LIMITS,
    });
    await client.waitForStreamActive('s', 20_000);
    await waitUntil('the replicas to open', async () =>
      brokers.every((b) => [...b.host.groups()].length === 1) ? true : undefined,
    );
    const victim = brokers[0] as RunningBroker;
    await victim.close();
    // Its identity file is gone but its replicas are not: registering anew would delete them.
    await rm(join(c.dirs[0] as string, 'broker-id.json'));
    await expect(c.start(0)).rejects.toThrow(/no broker-id.json/);
    expect(await storedOn(c.dirs[0] as string)).toHaveLength(1);
    // A wiped folder may not take the old id either (it would vote without what it had).
    await rm(c.dirs[0] as string, { recursive: true, force: true });
    await expect(c.start(0, { brokerId: victim.id })).rejects.toThrow(/another data folder/);
    // Started plainly, it joins as a new broker.
    const fresh = await c.start(0);
    expect(fresh.id).toBe(4);
  }, 60_000);

  it('serves the Kinesis HTTP API on a broker: the AWS SDK creates, writes every shard and reads it all back through one broker', async () => {
    const c = await startCluster();
    const gateway = await c.start(0, { httpListen: '127.0.0.1:0' });
    await c.start(1);
    await c.start(2);
    const sdk = sdkClient(gateway.httpPort as number, 'h2');
    cleanups.push(async () => sdk.destroy());
    await sdk.send(new CreateStreamCommand({ StreamName: 'aws', ShardCount: 3 }));
    await waitUntilStreamExists({ client: sdk, maxWaitTime: 30 }, { StreamName: 'aws' });
    // One record per shard, whichever broker leads it.
    const third = 2n ** 128n / 3n;
    const keys = [0n, third + 1n, 2n * third + 1n].map(String);
    const put = await sdk.send(
      new PutRecordsCommand({
        StreamName: 'aws',
        Records: keys.map((k, i) => ({
          PartitionKey: 'p',
          ExplicitHashKey: k,
          Data: Buffer.from(`r${i}`),
        })),
      }),
    );
    expect(put.FailedRecordCount).toBe(0);
    const shardIds = new Set(put.Records?.map((r) => r.ShardId));
    expect(shardIds.size).toBe(3);
    const read: string[] = [];
    for (const shardId of [...shardIds].sort()) {
      const { ShardIterator } = await sdk.send(
        new GetShardIteratorCommand({
          StreamName: 'aws',
          ShardId: shardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      );
      const { Records } = await sdk.send(new GetRecordsCommand({ ShardIterator }));
      read.push(...(Records ?? []).map((r) => Buffer.from(r.Data ?? []).toString()));
    }
    expect(read.sort()).toEqual(['r0', 'r1', 'r2']);
  }, 60_000);

  it('a broker restarted while no coordinator answers starts from its copy of the metadata, serves its replicas, and registers once they are back', async () => {
    const c = await startCluster();
    for (let n = 0; n < 3; n++) await c.start(n);
    const client = c.client();
    await client.createStream({
      streamName: 'calm',
      shardCount: 2,
      shardLimits: UNLIMITED_SHARD_LIMITS,
    });
    await client.waitForStreamActive('calm', 20_000);
    const write = async (from: number, count: number) => {
      const put = await client.putRecords({
        streamName: 'calm',
        records: Array.from({ length: count }, (_, i) => ({
          partitionKey: `k${from + i}`,
          data: Buffer.from(`v${from + i}`),
        })),
      });
      expect(put.failedRecordCount).toBe(0);
    };
    await write(0, 20);
    // (A broker's copy is as new as its last heartbeat, so some may still hold the stream as
    // CREATING when the coordinator goes: they serve it all the same, since they cannot ask.)
    await c.stopCoordinator();
    // Restarted with the coordinators gone, broker 1 comes up from its copy.
    await c.brokers[0]?.close();
    const back = await c.start(0, { offlineStartAfterMs: 300 });
    await waitUntil('its replicas to open', async () =>
      [...back.host.groups()].length === 2 ? true : undefined,
    );
    // Writes and reads go on: Raft needs no coordinator.
    await write(20, 20);
    const direct = createClient({
      endpoint: (c.addresses[0] as { api: string }).api,
      deadlineMs: 5_000,
    });
    cleanups.push(async () => direct.close());
    let total = 0;
    for (const shardId of ['shardId-000000000000', 'shardId-000000000001']) {
      const { shardIterator } = await direct.getShardIterator({
        streamName: 'calm',
        shardId,
        shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
      });
      total += (await direct.getRecords({ shardIterator, limit: 1000 })).records.length;
    }
    expect(total).toBe(40);
    // The coordinator returns: the broker is registered and heard from again.
    await c.restartCoordinator();
    const link = new CoordinatorLink({ endpoints: [c.coordinatorApi] });
    cleanups.push(async () => link.close());
    await waitUntil('the broker to report to the coordinator', async () => {
      // (The coordinator may still be electing itself: then ask again.)
      const cluster = await link
        .call(CoordinatorServiceService.describeCluster, {}, true)
        .catch(() => undefined);
      const b = cluster?.brokers.find((x) => x.brokerId === back.id);
      return b?.lastHeartbeatAgeMs !== undefined && b.state === 'up' ? true : undefined;
    });
  }, 60_000);
});
