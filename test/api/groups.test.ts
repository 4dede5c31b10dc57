import { afterEach, describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import { ManualClock } from '../../src/common/clock.js';
import {
  InvalidArgumentError,
  LeaseLostError,
  ResourceInUseError,
  ResourceNotFoundError,
  ValidationError,
} from '../../src/common/errors.js';
import { GroupInitialPosition, type Lease } from '../../src/gen/rheos/v1/control.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

/**
 * Consumer groups through the native gRPC API of one node: the first worker's heartbeat creates
 * the group; a lease is taken, checkpointed and released by its holder; a live worker's lease is
 * refused to others unless stolen, and taken freely once its owner is silent for the failover
 * time; a worker that lost its lease gets LeaseLostException for its checkpoint; bad use gets
 * clear errors. Time is a manual clock, so expiry is exact.
 */

let node: TestNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

const APP = 'billing';
const FAILOVER_MS = 10_000;
const S0 = 'shardId-000000000000';
const S1 = 'shardId-000000000001';

async function start(): Promise<{ client: RheosClient; clock: ManualClock }> {
  const clock = new ManualClock(1_790_000_000_000);
  node = await startTestNode({ clock, groupFailoverMs: FAILOVER_MS });
  const { client } = node;
  await client.createStream({ streamName: 's', shardCount: 2 });
  await client.waitForStreamActive('s');
  return { client, clock };
}

const heartbeat = (client: RheosClient, workerId: string) =>
  client.groupHeartbeat({
    application: APP,
    workerId,
    streamName: 's',
    initialPosition: GroupInitialPosition.GROUP_INITIAL_POSITION_TRIM_HORIZON,
  });

async function leaseOf(client: RheosClient, shardId: string): Promise<Lease> {
  const { group } = await client.describeGroup({ application: APP });
  return group?.leases.find((l) => l.shardId === shardId) as Lease;
}

async function sequenceNumberIn(client: RheosClient, shardId: string): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const { records } = await client.putRecords({
      streamName: 's',
      records: [{ partitionKey: `k${i}`, data: Buffer.from('x') }],
    });
    if (records[0]?.shardId === shardId) return records[0].sequenceNumber;
  }
  throw new Error(`no record went to ${shardId}`);
}

async function rejects(call: Promise<unknown>): Promise<unknown> {
  try {
    await call;
  } catch (error) {
    return error;
  }
  throw new Error('the call succeeded');
}

describe('consumer groups on one node', () => {
  it('creates the group on the first heartbeat and answers with every lease and the live workers', async () => {
    const { client } = await start();
    const { group } = await heartbeat(client, 'w1');
    expect(group?.streamName).toBe('s');
    expect(group?.failoverMs).toBe(FAILOVER_MS);
    expect(group?.liveWorkers).toEqual(['w1']);
    expect(
      group?.leases.map((l) => [l.shardId, l.owner, l.counter, l.checkpoint, l.ready]),
    ).toEqual([
      [S0, '', 0, 'TRIM_HORIZON', true],
      [S1, '', 0, 'TRIM_HORIZON', true],
    ]);
    await heartbeat(client, 'w2');
    expect((await client.describeGroup({ application: APP })).group?.liveWorkers).toEqual([
      'w1',
      'w2',
    ]);
    expect((await client.listGroups()).applications).toEqual([APP]);
  });

  it('lets the holder checkpoint and release; refuses a live worker’s lease unless stolen', async () => {
    const { client } = await start();
    await heartbeat(client, 'w1');
    await heartbeat(client, 'w2');
    const { lease } = await client.takeLease({
      application: APP,
      workerId: 'w1',
      shardId: S0,
      expectedCounter: 0,
    });
    expect(lease).toMatchObject({ owner: 'w1', counter: 1 });
    const seq = await sequenceNumberIn(client, S0);
    await client.checkpointLease({
      application: APP,
      workerId: 'w1',
      shardId: S0,
      counter: 1,
      sequenceNumber: seq,
      subSequenceNumber: 0,
    });
    expect(await leaseOf(client, S0)).toMatchObject({ checkpoint: seq, expired: false });
    // w1 is alive: w2 must steal to take its lease.
    const inUse = await rejects(
      client.takeLease({ application: APP, workerId: 'w2', shardId: S0, expectedCounter: 1 }),
    );
    expect(inUse).toBeInstanceOf(ResourceInUseError);
    expect(String(inUse)).toMatch(/held by worker w1, which is alive/);
    await client.takeLease({
      application: APP,
      workerId: 'w2',
      shardId: S0,
      expectedCounter: 1,
      steal: true,
    });
    expect(await leaseOf(client, S0)).toMatchObject({
      owner: 'w2',
      counter: 2,
      ownerSwitchesSinceCheckpoint: 1,
    });
    // The loser finds out at its next checkpoint.
    const lost = await rejects(
      client.checkpointLease({
        application: APP,
        workerId: 'w1',
        shardId: S0,
        counter: 1,
        sequenceNumber: seq,
      }),
    );
    expect(lost).toBeInstanceOf(LeaseLostError);
    expect(String(lost)).toMatch(/worker w2 holds it/);
    await client.releaseLease({ application: APP, workerId: 'w2', shardId: S0, counter: 2 });
    expect(await leaseOf(client, S0)).toMatchObject({ owner: '', counter: 3, checkpoint: seq });
  });

  it('frees the leases of a worker silent for the failover time, not before', async () => {
    const { client, clock } = await start();
    await heartbeat(client, 'w1');
    await client.takeLease({ application: APP, workerId: 'w1', shardId: S1, expectedCounter: 0 });
    await heartbeat(client, 'w2');
    clock.advance(FAILOVER_MS - 1);
    await heartbeat(client, 'w2');
    expect((await leaseOf(client, S1)).expired).toBe(false);
    expect(
      await rejects(
        client.takeLease({ application: APP, workerId: 'w2', shardId: S1, expectedCounter: 1 }),
      ),
    ).toBeInstanceOf(ResourceInUseError);
    clock.advance(1);
    const { group } = await heartbeat(client, 'w2');
    expect(group?.liveWorkers).toEqual(['w2']);
    expect(group?.leases.find((l) => l.shardId === S1)).toMatchObject({
      owner: 'w1',
      expired: true,
    });
    await client.takeLease({ application: APP, workerId: 'w2', shardId: S1, expectedCounter: 1 });
    expect(await leaseOf(client, S1)).toMatchObject({ owner: 'w2', counter: 2 });
  });

  it('keeps leases and checkpoints across a restart, and restarts the lease timers', async () => {
    const { client, clock } = await start();
    await heartbeat(client, 'w1');
    await client.takeLease({ application: APP, workerId: 'w1', shardId: S0, expectedCounter: 0 });
    const seq = await sequenceNumberIn(client, S0);
    await client.checkpointLease({
      application: APP,
      workerId: 'w1',
      shardId: S0,
      counter: 1,
      sequenceNumber: seq,
    });
    clock.advance(FAILOVER_MS * 5);
    node = await (node as TestNode).restart({ clock, groupFailoverMs: FAILOVER_MS });
    const after = node.client;
    // The node has not heard from w1 since it started: w1's lease is not expired yet.
    expect(await leaseOf(after, S0)).toMatchObject({
      owner: 'w1',
      counter: 1,
      checkpoint: seq,
      expired: false,
    });
    clock.advance(FAILOVER_MS);
    expect((await leaseOf(after, S0)).expired).toBe(true);
  });

  it('answers bad use with clear errors', async () => {
    const { client } = await start();
    await heartbeat(client, 'w1');
    const seq = await sequenceNumberIn(client, S0);
    const cases: Array<[Promise<unknown>, unknown, RegExp]> = [
      [client.describeGroup({ application: 'nope' }), ResourceNotFoundError, /not found/],
      [
        client.groupHeartbeat({ application: 'bad name!', workerId: 'w1', streamName: 's' }),
        ValidationError,
        /application/,
      ],
      [client.groupHeartbeat({ application: 'x', workerId: 'w1' }), ValidationError, /streamName/],
      [
        client.groupHeartbeat({ application: 'x', workerId: 'w1', streamName: 'none' }),
        ResourceNotFoundError,
        /none/,
      ],
      // A checkpoint of a lease never taken, and a sequence number of another shard.
      [
        client.checkpointLease({
          application: APP,
          workerId: 'w1',
          shardId: S0,
          counter: 0,
          sequenceNumber: seq,
        }),
        LeaseLostError,
        /it is free/,
      ],
      [
        client.takeLease({ application: APP, workerId: 'w1', shardId: 'shardId-000000000009' }),
        ResourceNotFoundError,
        /not a shard/,
      ],
    ];
    for (const [call, type, message] of cases) {
      const error = await rejects(call);
      expect(error).toBeInstanceOf(type);
      expect(String(error)).toMatch(message);
    }
    await client.takeLease({ application: APP, workerId: 'w1', shardId: S1, expectedCounter: 0 });
    const beyond = await rejects(
      client.checkpointLease({
        application: APP,
        workerId: 'w1',
        shardId: S1,
        counter: 1,
        sequenceNumber: seq,
      }),
    );
    expect(beyond).toBeInstanceOf(InvalidArgumentError);
    expect(String(beyond)).toMatch(/not a sequence number of that shard/);
    await client.deleteGroup({ application: APP });
    expect((await client.listGroups()).applications).toEqual([]);
  });
});
