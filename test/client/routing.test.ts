import { Client, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createClient, type RheosClient } from '../../src/client/client.js';
import { PutStreams } from '../../src/client/put-stream.js';
import { endpointFor, routeRecord, ShardRoutes } from '../../src/client/shard-routes.js';
import { sleep } from '../../src/common/backoff.js';
import { NotLeaderError, RheosError } from '../../src/common/errors.js';
import { fromServiceError } from '../../src/common/grpc-errors.js';
import { MAX_HASH_KEY, partitionKeyToHashKey } from '../../src/common/hash-key.js';
import type { BrokerAddress, GetShardMapResponse } from '../../src/gen/rheos/v1/cluster.js';
import {
  DataPlaneServiceClient,
  PutRecordRequest,
  PutRecordsRequest,
  ShardIteratorType,
} from '../../src/gen/rheos/v1/data.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import {
  BROKER_IDS,
  startInProcessCluster,
  type InProcessCluster,
} from '../helpers/in-process-cluster.js';
import { readShardLines } from '../helpers/read-shard.js';

/**
 * The native client's connection and routing layer against real brokers (three in one process,
 * real gRPC): the shard map cache, writes sent to each shard's leader whatever broker the client
 * was seeded with, NOT_LEADER hints followed, routes dropped when a broker stops answering,
 * retries spaced by backoff, and errors that keep their `retriable` / `indeterminate` flags.
 * ShardRoutes is also tested on its own with an injected fetcher.
 */

// ---------------------------------------------------------------------------------------------
// A three-broker cluster in this process (as in test/broker/raft-cluster.test.ts)

type Cluster = InProcessCluster;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * Streams: `events`, 3 shards on all three brokers (RF 3); `sparse`, 3 shards with one replica
 * each (shard k on broker k + 1), so each broker holds no replica of two of its shards.
 */
async function startCluster(): Promise<Cluster> {
  const cluster = await startInProcessCluster({
    clusterId: 'routing',
    streams: [
      { name: 'events', shardCount: 3, replicationFactor: 3, unlimited: true },
      { name: 'sparse', shardCount: 3, replicationFactor: 1, unlimited: true },
    ],
  });
  cleanups.push(() => cluster.close());
  return cluster;
}

async function startSingleNode(): Promise<TestNode> {
  const node = await startTestNode();
  cleanups.push(() => node.stop());
  return node;
}

interface ShardInfo {
  readonly shardId: string;
  readonly incarnation: number;
  readonly start: bigint;
  readonly end: bigint;
  readonly replicas: readonly number[];
}

function shardsOf(cluster: Cluster, stream: string): ShardInfo[] {
  const [first] = cluster.running();
  const record = first?.[1].broker.directory().stream(stream);
  if (record === undefined) throw new Error(`no stream ${stream}`);
  return record.shards.map((s) => ({
    shardId: s.shardId,
    incarnation: s.incarnation,
    start: BigInt(s.hashKeyStart),
    end: BigInt(s.hashKeyEnd),
    replicas: s.replicas ?? [],
  }));
}

function shardOfKey(shards: readonly ShardInfo[], partitionKey: string): ShardInfo {
  const hash = partitionKeyToHashKey(partitionKey);
  const shard = shards.find((s) => s.start <= hash && hash <= s.end);
  if (shard === undefined) throw new Error(`no shard owns ${partitionKey}`);
  return shard;
}

/** The one running broker that leads the shard, if exactly one does. */
function leaderOf(cluster: Cluster, incarnation: number): number | undefined {
  const leaders = cluster
    .running()
    .filter(([, b]) => b.host.get(incarnation)?.isLeader === true)
    .map(([id]) => id);
  return leaders.length === 1 ? leaders[0] : undefined;
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
    await sleep(20);
  }
}

/** Waits until every shard of the stream has a leader that every running replica knows. */
async function waitForLeaders(cluster: Cluster, stream: string): Promise<Map<number, number>> {
  const leaders = new Map<number, number>();
  await waitFor(`leaders of ${stream}`, () => {
    leaders.clear();
    for (const shard of shardsOf(cluster, stream)) {
      const leader = leaderOf(cluster, shard.incarnation);
      if (leader === undefined) return false;
      for (const [, broker] of cluster.running()) {
        const replica = broker.host.get(shard.incarnation);
        if (replica !== undefined && replica.leaderId() !== leader) return false;
      }
      leaders.set(shard.incarnation, leader);
    }
    return true;
  });
  return leaders;
}

/** Every record's data in one shard, oldest first. */
const readShard = readShardLines;

const values = (lines: readonly string[]) => lines.map((l) => l.split(' ')[1] as string);

async function failureOf(call: Promise<unknown>): Promise<RheosError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof RheosError) return error;
    throw error;
  }
  throw new Error('the call succeeded');
}

const shape = (e: RheosError) => ({
  name: e.name,
  message: e.message,
  retriable: e.retriable,
  indeterminate: e.indeterminate,
});

interface SentCall {
  /** The RPC's name, e.g. 'PutRecords'. */
  readonly method: string;
  readonly endpoint: string;
}

/**
 * Records every call any client makes from now on (method and target): unary gRPC calls, and the
 * PutRecords calls pipelined on a PutRecordsStream, in the order they were made.
 */
function recordCalls(): () => SentCall[] {
  const unary = vi.spyOn(Client.prototype, 'makeUnaryRequest');
  const pipelined = vi.spyOn(PutStreams.prototype, 'send');
  return () =>
    [
      ...unary.mock.calls.map((args, i) => ({
        order: unary.mock.invocationCallOrder[i] as number,
        method: String(args[0]).split('/').pop() as string,
        endpoint: (unary.mock.contexts[i] as Client).getChannel().getTarget().replace(/^dns:/, ''),
      })),
      ...pipelined.mock.calls.map((args, i) => ({
        order: pipelined.mock.invocationCallOrder[i] as number,
        method: 'PutRecords',
        endpoint: args[0],
      })),
    ]
      .sort((a, b) => a.order - b.order)
      .map(({ method, endpoint }) => ({ method, endpoint }));
}

interface TestRecord {
  readonly partitionKey: string;
  readonly explicitHashKey: string;
  readonly data: Buffer;
}

/** Records spread round-robin over the shards by explicit hash key. */
function spread(shards: readonly ShardInfo[], from: number, count: number): TestRecord[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    const shard = shards[i % shards.length] as ShardInfo;
    return {
      partitionKey: `pk${i}`,
      explicitHashKey: (shard.start + BigInt(i)).toString(),
      data: Buffer.from(`v${i}`),
    };
  });
}

/**
 * PutRecords until every record is stored (failed ones retried), recording what the client
 * acknowledged (value -> "shardId sequenceNumber"). Gives up after `timeoutMs`.
 */
async function putUntilStored(
  client: RheosClient,
  stream: string,
  records: readonly TestRecord[],
  acked: Map<string, string>,
  timeoutMs = 20_000,
): Promise<{ calls: number; failures: string[] }> {
  let pending = records;
  const failures: string[] = [];
  const deadline = Date.now() + timeoutMs;
  let calls = 0;
  while (pending.length > 0) {
    if (Date.now() > deadline) {
      throw new Error(
        `${pending.length} records unstored after ${timeoutMs} ms: ${failures.join(', ')}`,
      );
    }
    calls++;
    try {
      const response = await client.putRecords({ streamName: stream, records: [...pending] });
      const next: TestRecord[] = [];
      response.records.forEach((r, i) => {
        const record = pending[i] as TestRecord;
        if (r.errorCode === '')
          acked.set(record.data.toString(), `${r.shardId} ${r.sequenceNumber}`);
        else {
          next.push(record);
          failures.push(r.errorCode);
        }
      });
      pending = next;
    } catch (error) {
      if (!(error instanceof RheosError) || !error.retriable) throw error;
      failures.push(error.name);
    }
    if (pending.length > 0) await sleep(100);
  }
  return { calls, failures };
}

// ---------------------------------------------------------------------------------------------

describe('client routing against three in-process brokers', () => {
  it('a client seeded with one broker sends each shard its records through the shard map, first try', async () => {
    const cluster = await startCluster();
    const eventLeaders = await waitForLeaders(cluster, 'events');
    const sparseLeaders = await waitForLeaders(cluster, 'sparse');
    // The seed: a broker that leads the fewest `events` shards, so it follows at least one.
    const led = (id: number) => [...eventLeaders.values()].filter((l) => l === id).length;
    const seed = [...BROKER_IDS].sort((a, b) => led(a) - led(b))[0] as number;
    expect(led(seed)).toBeLessThan(3);

    const calls = recordCalls();
    // One attempt per shard call: a record sent anywhere but its shard's leader would fail.
    const client = cluster.newClient({ endpoints: [cluster.api(seed)], maxRouteAttempts: 1 });
    for (const [stream, leaders] of [
      ['events', eventLeaders],
      ['sparse', sparseLeaders],
    ] as const) {
      const shards = shardsOf(cluster, stream);
      const records = Array.from({ length: 60 }, (_, i) => ({
        partitionKey: `${stream}-key-${i}`,
        data: Buffer.from(`${stream}-v${i}`),
      }));
      const expected = new Map(shards.map((s) => [s.shardId, [] as string[]]));
      for (const r of records)
        expected.get(shardOfKey(shards, r.partitionKey).shardId)?.push(r.data.toString());
      for (const list of expected.values()) expect(list.length).toBeGreaterThan(0);

      const before = calls().length;
      const response = await client.putRecords({ streamName: stream, records });
      expect(response.failedRecordCount).toBe(0);
      response.records.forEach((r, i) => {
        const record = records[i] as { partitionKey: string };
        expect(r.shardId).toBe(shardOfKey(shards, record.partitionKey).shardId);
      });
      // One GetShardMap at the seed, then one PutRecords per shard, each at the shard's leader.
      const sent = calls().slice(before);
      expect(sent.filter((c) => c.method === 'GetShardMap')).toEqual([
        { method: 'GetShardMap', endpoint: cluster.api(seed) },
      ]);
      const puts = sent.filter((c) => c.method === 'PutRecords').map((c) => c.endpoint);
      expect(puts).toHaveLength(3);
      expect(new Set(puts)).toEqual(
        new Set(shards.map((s) => cluster.api(leaders.get(s.incarnation) as number))),
      );
      if (stream === 'sparse') {
        // The seed holds one of the three shards: two of the writes went elsewhere.
        expect(puts.filter((e) => e !== cluster.api(seed))).toHaveLength(2);
      }

      const reader = cluster.newClient({ endpoints: [cluster.api(seed)] });
      for (const shard of shards) {
        const stored = values(await readShard(reader, stream, shard.shardId));
        expect(stored).toEqual(expected.get(shard.shardId));
      }
    }
  });

  it('after a shard leader stops, writes reach the new leader and every acknowledged record is kept', async () => {
    const cluster = await startCluster();
    const leaders = await waitForLeaders(cluster, 'events');
    const shards = shardsOf(cluster, 'events');
    const client = cluster.newClient();
    const acked = new Map<string, string>();
    const first = await putUntilStored(client, 'events', spread(shards, 0, 30), acked);
    expect(first).toEqual({ calls: 1, failures: [] });

    const victim = shards[0] as ShardInfo;
    const oldLeader = leaders.get(victim.incarnation) as number;
    const calls = recordCalls();
    await cluster.stop(oldLeader);
    // The client's cached route still names the stopped broker.
    const second = await putUntilStored(client, 'events', spread(shards, 30, 30), acked);
    expect(acked.size).toBe(60);
    const newLeader = leaderOf(cluster, victim.incarnation);
    expect(newLeader).toBeDefined();
    expect(newLeader).not.toBe(oldLeader);
    // The cached route named the stopped broker, so it was tried first.
    expect(calls()).toContainEqual({ method: 'PutRecords', endpoint: cluster.api(oldLeader) });
    expect(
      second.failures.every((f) => f === 'NotLeaderException' || f === 'InternalFailure'),
    ).toBe(true);

    // Once refreshed, a write spanning all shards goes straight to the leaders in one call.
    await waitForLeaders(cluster, 'events');
    const before = calls().length;
    const third = await putUntilStored(client, 'events', spread(shards, 60, 3), acked);
    expect(third).toEqual({ calls: 1, failures: [] });
    // The route that failed was dropped: this write fetched the shard map again.
    const sent = calls().slice(before);
    expect(sent.filter((c) => c.method === 'GetShardMap').length).toBeGreaterThanOrEqual(1);
    const puts = sent.filter((c) => c.method === 'PutRecords');
    expect(puts).toHaveLength(3);
    expect(puts.map((c) => c.endpoint)).toContain(cluster.api(newLeader as number));
    expect(puts.map((c) => c.endpoint)).not.toContain(cluster.api(oldLeader));

    // Nothing the client acknowledged is missing, at the sequence number it was given.
    const reader = cluster.newClient();
    const stored = new Map<string, string>();
    for (const shard of shards) {
      for (const line of await readShard(reader, 'events', shard.shardId)) {
        const [seq, value] = line.split(' ') as [string, string];
        stored.set(value, `${shard.shardId} ${seq}`);
      }
    }
    for (const [value, where] of acked) expect(stored.get(value), value).toBe(where);
  });

  it('a follower answers a direct write with NotLeaderException naming the leader', async () => {
    const cluster = await startCluster();
    const leaders = await waitForLeaders(cluster, 'events');
    await waitForLeaders(cluster, 'sparse');
    const shard = shardsOf(cluster, 'events')[0] as ShardInfo;
    const leader = leaders.get(shard.incarnation) as number;
    const follower = BROKER_IDS.find((id) => id !== leader) as number;
    const raw = new DataPlaneServiceClient(cluster.api(follower), credentials.createInsecure());
    cleanups.push(() => raw.close());

    const refusedPut = () =>
      new Promise<ServiceError>((resolve, reject) =>
        raw.putRecord(
          PutRecordRequest.fromPartial({
            streamName: 'events',
            partitionKey: 'direct',
            explicitHashKey: shard.start.toString(),
            data: Buffer.from('direct-put'),
          }),
          (error) => (error ? resolve(error) : reject(new Error('the follower took the write'))),
        ),
      );
    const refusedPuts = () =>
      new Promise<ServiceError>((resolve, reject) =>
        raw.putRecords(
          PutRecordsRequest.fromPartial({
            streamName: 'events',
            records: [
              {
                partitionKey: 'direct',
                explicitHashKey: shard.start.toString(),
                data: Buffer.from('direct-puts'),
              },
            ],
          }),
          (error) => (error ? resolve(error) : reject(new Error('the follower took the write'))),
        ),
      );
    for (const error of [await refusedPut(), await refusedPuts()]) {
      expect(error.code).toBe(status.UNAVAILABLE);
      expect(error.metadata.get('rheos-error-name')).toEqual(['NotLeaderException']);
      expect(error.metadata.get('rheos-retriable')).toEqual(['true']);
      expect(error.metadata.get('rheos-indeterminate')).toEqual(['false']);
      expect(error.metadata.get('rheos-leader-id')).toEqual([String(leader)]);
      expect(error.metadata.get('rheos-leader-endpoint')).toEqual([cluster.api(leader)]);
      const mapped = fromServiceError(error);
      expect(mapped).toBeInstanceOf(NotLeaderError);
      expect(mapped.name).toBe('NotLeaderException');
      expect(mapped.retriable).toBe(true);
      expect(mapped.indeterminate).toBe(false);
      expect((mapped as NotLeaderError).leader).toEqual({
        brokerId: leader,
        endpoint: cluster.api(leader),
      });
    }

    // A broker holding no replica of a shard names the broker that does.
    const sparse = shardsOf(cluster, 'sparse');
    const elsewhere = sparse.find((s) => !s.replicas.includes(follower)) as ShardInfo;
    const holder = elsewhere.replicas[0] as number;
    const notHosted = await new Promise<ServiceError>((resolve, reject) =>
      raw.putRecord(
        PutRecordRequest.fromPartial({
          streamName: 'sparse',
          partitionKey: 'direct',
          explicitHashKey: elsewhere.start.toString(),
          data: Buffer.from('direct-put'),
        }),
        (error) => (error ? resolve(error) : reject(new Error('a non-replica took the write'))),
      ),
    );
    expect(notHosted.metadata.get('rheos-error-name')).toEqual(['NotLeaderException']);
    expect(notHosted.metadata.get('rheos-leader-id')).toEqual([String(holder)]);
    expect(notHosted.metadata.get('rheos-leader-endpoint')).toEqual([cluster.api(holder)]);

    // Refused means nothing was written.
    const stored = values(await readShard(cluster.newClient(), 'events', shard.shardId));
    expect(stored).toEqual([]);
  });

  it('a client whose cached leader lost leadership gets a definite NotLeaderError with the hint, then follows it', async () => {
    const cluster = await startCluster();
    const leaders = await waitForLeaders(cluster, 'events');
    const shard = shardsOf(cluster, 'events')[1] as ShardInfo;
    const oldLeader = leaders.get(shard.incarnation) as number;
    const newLeader = BROKER_IDS.find((id) => id !== oldLeader) as number;
    const client = cluster.newClient({ maxRouteAttempts: 1 });
    const put = (data: string) =>
      client.putRecord({
        streamName: 'events',
        partitionKey: data,
        explicitHashKey: shard.start.toString(),
        data: Buffer.from(data),
      });
    await put('before');

    // Move the shard's leadership without stopping anyone: the client's route is now stale.
    await waitFor('leadership to move', () => {
      const from = cluster.broker(oldLeader).host.get(shard.incarnation);
      const to = cluster.broker(newLeader).host.get(shard.incarnation);
      if (to?.isLeader === true && from?.leaderId() === newLeader) return true;
      if (from?.isLeader === true) {
        from.node.transferLeadership(newLeader);
        cluster.broker(oldLeader).host.touch(shard.incarnation);
      }
      return false;
    });

    const calls = recordCalls();
    const refused = await failureOf(put('refused'));
    expect(refused).toBeInstanceOf(NotLeaderError);
    expect(refused.retriable).toBe(true);
    expect(refused.indeterminate).toBe(false);
    expect((refused as NotLeaderError).leader).toEqual({
      brokerId: newLeader,
      endpoint: cluster.api(newLeader),
    });
    expect(calls()).toEqual([{ method: 'PutRecord', endpoint: cluster.api(oldLeader) }]);

    // The hint updated the cached route: the next write goes straight to the new leader.
    await put('after');
    expect(calls().slice(1)).toEqual([{ method: 'PutRecord', endpoint: cluster.api(newLeader) }]);

    const stored = values(await readShard(cluster.newClient(), 'events', shard.shardId));
    expect(stored).toEqual(['before', 'after']);
  });

  it('retries an unreachable shard with backoff, fails definitely, and reconnects when it returns', async () => {
    const cluster = await startCluster();
    await waitForLeaders(cluster, 'sparse');
    // A shard with one replica: when its broker is down, no one else can take its writes.
    const shard = shardsOf(cluster, 'sparse')[2] as ShardInfo;
    const holder = shard.replicas[0] as number;
    const client = cluster.newClient({
      maxRouteAttempts: 4,
      backoff: { initialMs: 100, maxMs: 400 },
    });
    const put = (data: string) =>
      client.putRecord({
        streamName: 'sparse',
        partitionKey: data,
        explicitHashKey: shard.start.toString(),
        data: Buffer.from(data),
      });
    await put('before');
    await cluster.stop(holder);

    const calls = recordCalls();
    const started = Date.now();
    const error = await failureOf(put('while-down'));
    const elapsedMs = Date.now() - started;
    expect(error.name).toBe('ServiceUnavailableException');
    expect(error.retriable).toBe(true);
    // The broker was never reached, so nothing can have been written.
    expect(error.indeterminate).toBe(false);
    // Four attempts at the only replica, with at least 50 + 100 + 200 ms of backoff between them
    // (full jitter keeps at least half of each 100, 200, 400 ms step).
    expect(calls()).toEqual(
      Array.from({ length: 4 }, () => ({ method: 'PutRecord', endpoint: cluster.api(holder) })),
    );
    expect(elapsedMs).toBeGreaterThanOrEqual(350);

    await cluster.start(holder);
    await waitForLeaders(cluster, 'sparse');
    let reconnected = false;
    const deadline = Date.now() + 20_000;
    while (!reconnected && Date.now() < deadline) {
      try {
        await put('after');
        reconnected = true;
      } catch (e) {
        if (!(e instanceof RheosError) || !e.retriable || e.indeterminate) throw e;
        await sleep(100);
      }
    }
    expect(reconnected).toBe(true);
    const stored = values(await readShard(cluster.newClient(), 'sparse', shard.shardId));
    expect(stored).toEqual(['before', 'after']);
  });

  it('an unknown stream or shard is a definite ResourceNotFoundException, as on a single node, without a routing loop', async () => {
    const cluster = await startCluster();
    await waitForLeaders(cluster, 'events');
    const single = await startSingleNode();
    await single.client.createStream({ streamName: 'events', shardCount: 3 });
    await single.client.waitForStreamActive('events');

    const ops: Array<[string, (c: RheosClient) => Promise<unknown>]> = [
      [
        'PutRecords to an unknown stream',
        (c) =>
          c.putRecords({
            streamName: 'nope',
            records: [
              { partitionKey: 'a', data: Buffer.from('a') },
              {
                partitionKey: 'b',
                explicitHashKey: MAX_HASH_KEY.toString(),
                data: Buffer.from('b'),
              },
            ],
          }),
      ],
      [
        'PutRecord to an unknown stream',
        (c) => c.putRecord({ streamName: 'nope', partitionKey: 'a', data: Buffer.from('a') }),
      ],
      [
        'GetShardIterator on an unknown stream',
        (c) =>
          c.getShardIterator({
            streamName: 'nope',
            shardId: 'shardId-000000000000',
            shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
          }),
      ],
      [
        'GetShardIterator on an unknown shard',
        (c) =>
          c.getShardIterator({
            streamName: 'events',
            shardId: 'shardId-000000000099',
            shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
          }),
      ],
    ];
    const client = cluster.newClient();
    const calls = recordCalls();
    for (const [what, op] of ops) {
      const expected = await failureOf(op(single.client));
      expect(expected.name, what).toBe('ResourceNotFoundException');
      const before = calls().length;
      const actual = await failureOf(op(client));
      expect(shape(actual), what).toEqual(shape(expected));
      expect(actual.retriable, what).toBe(false);
      expect(actual.indeterminate, what).toBe(false);
      // At most a GetShardMap and the call itself: no retrying around the cluster.
      expect(calls().length - before, what).toBeLessThanOrEqual(2);
    }
  });

  it('unknown streams and invalid requests keep their definite errors when the first endpoint is down', async () => {
    const cluster = await startCluster();
    await waitForLeaders(cluster, 'events');
    await cluster.stop(1);
    // Each call on a new client, whose first endpoint (the stopped broker) is where it starts.
    const cases: Array<[string, (c: RheosClient) => Promise<unknown>, string]> = [
      [
        'PutRecords to an unknown stream',
        (c) =>
          c.putRecords({
            streamName: 'nope',
            records: [{ partitionKey: 'a', data: Buffer.from('a') }],
          }),
        'ResourceNotFoundException',
      ],
      [
        'PutRecord to an unknown stream',
        (c) => c.putRecord({ streamName: 'nope', partitionKey: 'a', data: Buffer.from('a') }),
        'ResourceNotFoundException',
      ],
      [
        'GetShardIterator on an unknown shard',
        (c) =>
          c.getShardIterator({
            streamName: 'events',
            shardId: 'shardId-000000000099',
            shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
          }),
        'ResourceNotFoundException',
      ],
      [
        'PutRecords with no records',
        (c) => c.putRecords({ streamName: 'events', records: [] }),
        'ValidationException',
      ],
      [
        'PutRecord with an empty partition key',
        (c) => c.putRecord({ streamName: 'events', partitionKey: '', data: Buffer.from('x') }),
        'ValidationException',
      ],
    ];
    for (const [what, op, name] of cases) {
      const error = await failureOf(op(cluster.newClient()));
      expect({ name: error.name, retriable: error.retriable }, what).toEqual({
        name,
        retriable: false,
      });
      expect(error.indeterminate, what).toBe(false);
    }
  });

  it('invalid requests get the same ValidationException as a single node, and nothing is written', async () => {
    const cluster = await startCluster();
    await waitForLeaders(cluster, 'events');
    const single = await startSingleNode();
    await single.client.createStream({ streamName: 'events', shardCount: 3 });
    await single.client.waitForStreamActive('events');
    const shards = shardsOf(cluster, 'events');
    const good = spread(shards, 0, 3);

    const ops: Array<[string, (c: RheosClient) => Promise<unknown>]> = [
      ['PutRecords with no records', (c) => c.putRecords({ streamName: 'events', records: [] })],
      [
        'PutRecords with a bad stream name',
        (c) => c.putRecords({ streamName: 'bad name!', records: good }),
      ],
      [
        'PutRecords over the record limit',
        (c) => c.putRecords({ streamName: 'events', records: spread(shards, 0, 501) }),
      ],
      [
        'PutRecords spanning shards with one empty partition key',
        (c) =>
          c.putRecords({
            streamName: 'events',
            records: [...good, { partitionKey: '', data: Buffer.from('x') }],
          }),
      ],
      [
        'PutRecords spanning shards with one bad explicit hash key',
        (c) =>
          c.putRecords({
            streamName: 'events',
            records: [
              ...good,
              { partitionKey: 'x', explicitHashKey: 'abc', data: Buffer.from('x') },
            ],
          }),
      ],
      [
        'PutRecord with an empty partition key',
        (c) => c.putRecord({ streamName: 'events', partitionKey: '', data: Buffer.from('x') }),
      ],
    ];
    const client = cluster.newClient();
    const calls = recordCalls();
    for (const [what, op] of ops) {
      const expected = await failureOf(op(single.client));
      expect(['ValidationException', 'InvalidArgumentException'], what).toContain(expected.name);
      const before = calls().length;
      const actual = await failureOf(op(client));
      expect(shape(actual), what).toEqual(shape(expected));
      expect(actual.retriable, what).toBe(false);
      expect(actual.indeterminate, what).toBe(false);
      expect(calls().length - before, what).toBeLessThanOrEqual(2);
    }
    // Refused whole: not one of the valid records of those requests was stored anywhere.
    const reader = cluster.newClient();
    for (const shard of shards) {
      expect(await readShard(reader, 'events', shard.shardId)).toEqual([]);
    }
  });
});

describe('the client shard map cache', () => {
  it('asks GetShardMap once for repeated writes and reads, and again after refreshRoutes', async () => {
    const node = await startSingleNode();
    await node.client.createStream({ streamName: 'cached', shardCount: 2 });
    await node.client.waitForStreamActive('cached');
    const client = createClient({ endpoint: node.node.grpcAddress });
    cleanups.push(() => client.close());
    const calls = recordCalls();
    const maps = () => calls().filter((c) => c.method === 'GetShardMap').length;

    await client.putRecord({ streamName: 'cached', partitionKey: 'a', data: Buffer.from('1') });
    expect(maps()).toBe(1);
    await client.putRecords({
      streamName: 'cached',
      records: Array.from({ length: 20 }, (_, i) => ({
        partitionKey: `k${i}`,
        data: Buffer.from(`${i}`),
      })),
    });
    await client.putRecord({ streamName: 'cached', partitionKey: 'b', data: Buffer.from('2') });
    await client.getShardIterator({
      streamName: 'cached',
      shardId: 'shardId-000000000000',
      shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_LATEST,
    });
    expect(maps()).toBe(1);

    client.refreshRoutes('cached');
    await client.putRecord({ streamName: 'cached', partitionKey: 'c', data: Buffer.from('3') });
    expect(maps()).toBe(2);
    await client.putRecord({ streamName: 'cached', partitionKey: 'd', data: Buffer.from('4') });
    expect(maps()).toBe(2);
  });
});

describe('ShardRoutes', () => {
  const MID = 1n << 127n;
  const broker = (id: number): BrokerAddress => ({ brokerId: id, endpoint: `host${id}:1` });
  const map = (streamName: string): GetShardMapResponse => ({
    streamName,
    shards: [
      {
        shardId: 'shardId-000000000000',
        hashKeyStart: '0',
        hashKeyEnd: MAX_HASH_KEY.toString(),
        open: false,
        replicas: [broker(3)],
      },
      {
        shardId: 'shardId-000000000002',
        hashKeyStart: MID.toString(),
        hashKeyEnd: MAX_HASH_KEY.toString(),
        open: true,
        replicas: [broker(2), broker(3), broker(1)],
        leader: broker(2),
      },
      {
        shardId: 'shardId-000000000001',
        hashKeyStart: '0',
        hashKeyEnd: (MID - 1n).toString(),
        open: true,
        replicas: [broker(1), broker(2), broker(3)],
      },
    ],
  });
  const counting = () => {
    const asked: string[] = [];
    const routes = new ShardRoutes(async (name) => {
      asked.push(name);
      await sleep(1);
      return map(name);
    });
    return { asked, routes };
  };

  it('reuses one fetch for repeated and concurrent gets, and fetches again after invalidate', async () => {
    const { asked, routes } = counting();
    const [a, b] = await Promise.all([routes.get('s'), routes.get('s')]);
    const c = await routes.get('s');
    expect(asked).toEqual(['s']);
    expect(b).toBe(a);
    expect(c).toBe(a);
    await routes.get('t');
    expect(asked).toEqual(['s', 't']);

    routes.invalidate('s');
    const d = await routes.get('s');
    expect(asked).toEqual(['s', 't', 's']);
    expect(d).not.toBe(a);
    await routes.get('t');
    expect(asked).toEqual(['s', 't', 's']);
  });

  it('does not keep a failed fetch', async () => {
    let fail = true;
    let fetches = 0;
    const routes = new ShardRoutes(async (name) => {
      fetches++;
      if (fail) throw new Error('unreachable');
      return map(name);
    });
    await expect(routes.get('s')).rejects.toThrow('unreachable');
    fail = false;
    await expect(routes.get('s')).resolves.toMatchObject({ streamName: 's' });
    expect(fetches).toBe(2);
  });

  it('forgets the oldest stream beyond maxStreams', async () => {
    const asked: string[] = [];
    const routes = new ShardRoutes(async (name) => {
      asked.push(name);
      return map(name);
    }, 2);
    await routes.get('a');
    await routes.get('b');
    await routes.get('c');
    await routes.get('b');
    await routes.get('c');
    expect(asked).toEqual(['a', 'b', 'c']);
    await routes.get('a');
    expect(asked).toEqual(['a', 'b', 'c', 'a']);
  });

  it('routes records to open shards by hash range and records NOT_LEADER hints', async () => {
    const { routes } = counting();
    const s = await routes.get('s');
    expect(s.open.map((r) => r.shardId)).toEqual(['shardId-000000000001', 'shardId-000000000002']);
    expect(routeRecord(s, { partitionKey: 'x', explicitHashKey: '0' })?.shardId).toBe(
      'shardId-000000000001',
    );
    expect(
      routeRecord(s, { partitionKey: 'x', explicitHashKey: (MID - 1n).toString() })?.shardId,
    ).toBe('shardId-000000000001');
    expect(routeRecord(s, { partitionKey: 'x', explicitHashKey: MID.toString() })?.shardId).toBe(
      'shardId-000000000002',
    );
    expect(routeRecord(s, { partitionKey: 'x', explicitHashKey: 'abc' })).toBeUndefined();
    const byKey = partitionKeyToHashKey('some key') < MID ? '1' : '2';
    expect(routeRecord(s, { partitionKey: 'some key' })?.shardId).toBe(
      `shardId-00000000000${byKey}`,
    );

    // The leader when known, else each replica in turn.
    const led = s.byId.get('shardId-000000000002');
    const unled = s.byId.get('shardId-000000000001');
    if (led === undefined || unled === undefined) throw new Error('shards missing');
    expect([0, 1, 2].map((a) => endpointFor(led, a))).toEqual(['host2:1', 'host2:1', 'host2:1']);
    expect([0, 1, 2, 3].map((a) => endpointFor(unled, a))).toEqual([
      'host1:1',
      'host2:1',
      'host3:1',
      'host1:1',
    ]);

    await routes.setLeader('s', 'shardId-000000000001', broker(3));
    expect(endpointFor(unled, 0)).toBe('host3:1');
    expect((await routes.get('s')).byId.get('shardId-000000000001')?.leader).toEqual(broker(3));
  });
});
