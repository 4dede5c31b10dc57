import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  LeaseLostError,
  ResourceInUseError,
  ResourceNotFoundError,
} from '../../src/common/errors.js';
import { formatSequenceNumber } from '../../src/common/sequence-number.js';
import { leasesOf, parentsFinished, type LeaseView } from '../../src/coordinator/groups.js';
import { applyCommand, type MetadataCommand } from '../../src/coordinator/metadata-machine.js';
import {
  concernsBrokers,
  recordsOf,
  stateFromRecords,
} from '../../src/coordinator/metadata-records.js';
import type {
  GroupRecord,
  GroupStart,
  MetadataState,
  StreamRecord,
} from '../../src/coordinator/model.js';
import { context, createStream, EMPTY, registerBroker, run } from './fixtures.js';

/**
 * Consumer groups in the metadata machine: leases per shard with the KCL's columns, fenced by the
 * lease counter, checkpoints only by the holder and only inside the lease's shard, children
 * waiting for their parents to be read to their end, and groups kept apart from what brokers see.
 */

const APP = 'billing';

function activeStream(shards: number, nowMs = 2_000): MetadataState {
  let state = EMPTY;
  for (let i = 0; i < 3; i++) state = registerBroker(state);
  state = run(state, { ...createStream('s', shards), nowMs });
  const stream = state.streams.get('s') as StreamRecord;
  return run(state, {
    type: 'setStreamStatus',
    name: 's',
    incarnation: stream.incarnation,
    status: 'ACTIVE',
  });
}

function join(state: MetadataState, start: GroupStart = { type: 'TRIM_HORIZON' }, nowMs = 3_000) {
  return run(state, { type: 'joinGroup', application: APP, streamName: 's', start, nowMs });
}

function leases(state: MetadataState): LeaseView[] {
  const group = state.groups.get(APP) as GroupRecord;
  return leasesOf(group, state.streams.get('s') as StreamRecord);
}

function lease(state: MetadataState, shardId: string): LeaseView {
  return leases(state).find((l) => l.shardId === shardId) as LeaseView;
}

function refused(state: MetadataState, command: MetadataCommand): unknown {
  try {
    applyCommand(state, command, context);
  } catch (error) {
    return error;
  }
  throw new Error(`${command.type} was accepted`);
}

const take = (shardId: string, worker: string, expectedCounter: number): MetadataCommand => ({
  type: 'takeLease',
  application: APP,
  shardId,
  worker,
  expectedCounter,
});

const checkpoint = (
  shardId: string,
  worker: string,
  counter: number,
  sequenceNumber: string,
  subSequenceNumber = 0,
): MetadataCommand => ({
  type: 'checkpointLease',
  application: APP,
  shardId,
  worker,
  counter,
  sequenceNumber,
  subSequenceNumber,
});

function sequenceOf(state: MetadataState, shardId: string, index: number): string {
  const shard = (state.streams.get('s') as StreamRecord).shards.find((s) => s.shardId === shardId);
  return formatSequenceNumber({ incarnation: shard?.incarnation ?? -1, index, offset: 0 });
}

/** Splits shardId-000000000000 in two and seals it at index 100. */
function split(state: MetadataState, nowMs: number): MetadataState {
  const stream = state.streams.get('s') as StreamRecord;
  const parent = stream.shards[0];
  const middle = (BigInt(parent?.hashKeyStart ?? 0) + BigInt(parent?.hashKeyEnd ?? 0)) / 2n;
  let next = run(state, {
    type: 'startReshard',
    name: 's',
    operation: 'SplitShard',
    request: { kind: 'split', shardId: 'shardId-000000000000', hashKey: middle.toString() },
    nowMs,
  });
  next = run(next, {
    type: 'recordSeal',
    name: 's',
    incarnation: stream.incarnation,
    shardId: 'shardId-000000000000',
    endingSequenceNumber: sequenceOf(next, 'shardId-000000000000', 100),
    nowMs: nowMs + 1,
  });
  return next;
}

describe('consumer groups in the metadata machine', () => {
  it('creates a group on its first worker; every shard has a fresh lease: nobody, counter 0, at the start', () => {
    const state = join(activeStream(3));
    expect(leases(state).map((l) => [l.shardId, l.owner, l.counter, l.checkpoint])).toEqual([
      ['shardId-000000000000', undefined, 0, 'TRIM_HORIZON'],
      ['shardId-000000000001', undefined, 0, 'TRIM_HORIZON'],
      ['shardId-000000000002', undefined, 0, 'TRIM_HORIZON'],
    ]);
    // Nothing is stored until a worker acts.
    expect(state.groups.get(APP)?.leases).toEqual([]);
    // A second worker joining changes nothing; another stream for the same name is refused.
    expect(applyCommand(state, joinCommand('s'), context)).toEqual([]);
    const other = run(state, { ...createStream('t', 1), nowMs: 2_500 });
    expect(refused(other, joinCommand('t'))).toBeInstanceOf(ResourceInUseError);
    expect(refused(EMPTY, joinCommand('s'))).toBeInstanceOf(ResourceNotFoundError);
  });

  it('fences every take by the counter the taker saw: one of two racing takers wins', () => {
    let state = join(activeStream(2));
    state = run(state, take('shardId-000000000000', 'w1', 0));
    expect(lease(state, 'shardId-000000000000')).toMatchObject({ owner: 'w1', counter: 1 });
    // w2 saw the free lease at counter 0 too: it lost the race.
    const lost = refused(state, take('shardId-000000000000', 'w2', 0));
    expect(lost).toBeInstanceOf(LeaseLostError);
    expect(String(lost)).toMatch(/counter 1, not 0/);
    // Taking from a worker (expired, or stolen) counts an owner switch.
    state = run(state, take('shardId-000000000000', 'w2', 1));
    expect(lease(state, 'shardId-000000000000')).toMatchObject({
      owner: 'w2',
      counter: 2,
      ownerSwitchesSinceCheckpoint: 1,
    });
  });

  it('takes checkpoints only from the holder at its counter, and only inside the shard', () => {
    let state = join(activeStream(2));
    state = run(state, take('shardId-000000000000', 'w1', 0));
    const seq = sequenceOf(state, 'shardId-000000000000', 7);
    state = run(state, checkpoint('shardId-000000000000', 'w1', 1, seq, 3));
    expect(lease(state, 'shardId-000000000000')).toMatchObject({
      checkpoint: seq,
      checkpointSubSequenceNumber: 3,
    });
    // Bad use, each with a clear error and no change.
    const otherShard = sequenceOf(state, 'shardId-000000000001', 7);
    const cases: Array<[MetadataCommand, unknown, RegExp]> = [
      [checkpoint('shardId-000000000000', 'w2', 1, seq), LeaseLostError, /w2 no longer holds/],
      [checkpoint('shardId-000000000000', 'w1', 0, seq), LeaseLostError, /counter is 1, not 0/],
      [
        checkpoint('shardId-000000000000', 'w1', 1, otherShard),
        InvalidArgumentError,
        /not a sequence number of that shard/,
      ],
      [checkpoint('shardId-000000000000', 'w1', 1, 'banana'), InvalidArgumentError, /not a seq/],
      [checkpoint('shardId-000000000000', 'w1', 1, 'SHARD_END'), InvalidArgumentError, /open/],
      [checkpoint('shardId-000000000000', 'w1', 1, seq, -1), InvalidArgumentError, /sub-seq/],
      [checkpoint('shardId-000000000009', 'w1', 1, seq), ResourceNotFoundError, /not a shard/],
      [checkpoint('shardId-000000000001', 'w1', 0, otherShard), LeaseLostError, /it is free/],
    ];
    for (const [command, type, message] of cases) {
      const error = refused(state, command);
      expect(error).toBeInstanceOf(type);
      expect(String(error)).toMatch(message);
    }
    // After the lease moved, the old holder's checkpoint is refused, naming the new one.
    state = run(state, take('shardId-000000000000', 'w2', 1));
    expect(String(refused(state, checkpoint('shardId-000000000000', 'w1', 1, seq)))).toMatch(
      /worker w2 holds it/,
    );
  });

  it('releases a lease with its checkpoint kept; only the holder may', () => {
    let state = join(activeStream(1));
    state = run(state, take('shardId-000000000000', 'w1', 0));
    const seq = sequenceOf(state, 'shardId-000000000000', 3);
    state = run(state, checkpoint('shardId-000000000000', 'w1', 1, seq));
    const release: MetadataCommand = {
      type: 'releaseLease',
      application: APP,
      shardId: 'shardId-000000000000',
      worker: 'w1',
      counter: 1,
    };
    expect(refused(state, { ...release, worker: 'w2' })).toBeInstanceOf(LeaseLostError);
    state = run(state, release);
    expect(lease(state, 'shardId-000000000000').owner).toBeUndefined();
    expect(lease(state, 'shardId-000000000000')).toMatchObject({ counter: 2, checkpoint: seq });
    expect(refused(state, release)).toBeInstanceOf(LeaseLostError);
  });

  it('gives children of a split fresh leases at TRIM_HORIZON that wait for the parent to be finished', () => {
    let state = join(activeStream(2), { type: 'LATEST' });
    state = run(state, take('shardId-000000000000', 'w1', 0));
    state = split(state, 4_000);
    const all = leases(state);
    expect(all.map((l) => l.shardId)).toEqual([
      'shardId-000000000000',
      'shardId-000000000001',
      'shardId-000000000002',
      'shardId-000000000003',
    ]);
    const child = lease(state, 'shardId-000000000002');
    // A LATEST group still reads a child from its start: nothing written to it is skipped.
    expect(child).toMatchObject({ checkpoint: 'TRIM_HORIZON', counter: 0 });
    expect(child.parentShardIds).toEqual(['shardId-000000000000']);
    expect(parentsFinished(child, all)).toBe(false);
    expect(String(refused(state, take('shardId-000000000002', 'w2', 0)))).toMatch(
      /waits for its parents/,
    );
    // Beyond the parent's end is refused; its end is accepted, and frees the children.
    const end = (state.streams.get('s') as StreamRecord).shards[0]?.endingSequenceNumber as string;
    const past = sequenceOf(state, 'shardId-000000000000', 101);
    expect(String(refused(state, checkpoint('shardId-000000000000', 'w1', 1, past)))).toMatch(
      /beyond the shard's end/,
    );
    state = run(state, checkpoint('shardId-000000000000', 'w1', 1, end));
    state = run(state, checkpoint('shardId-000000000000', 'w1', 1, 'SHARD_END'));
    expect(parentsFinished(lease(state, 'shardId-000000000002'), leases(state))).toBe(true);
    state = run(state, take('shardId-000000000002', 'w2', 0));
    expect(lease(state, 'shardId-000000000002').owner).toBe('w2');
    // A finished lease is never taken again.
    expect(String(refused(state, take('shardId-000000000000', 'w3', 1)))).toMatch(/to its end/);
  });

  it('counts shards closed before a LATEST group existed as read', () => {
    const state = join(split(activeStream(2), 2_500), { type: 'LATEST' }, 9_000);
    expect(lease(state, 'shardId-000000000000').checkpoint).toBe('SHARD_END');
    expect(lease(state, 'shardId-000000000001').checkpoint).toBe('LATEST');
    // The children opened before the group: they start where the group starts.
    expect(lease(state, 'shardId-000000000002').checkpoint).toBe('LATEST');
    expect(parentsFinished(lease(state, 'shardId-000000000002'), leases(state))).toBe(true);
  });

  it('stores groups with the metadata, but keeps them from brokers', () => {
    let state = join(activeStream(1));
    state = run(state, take('shardId-000000000000', 'w1', 0));
    const records = recordsOf(state);
    expect(stateFromRecords(new Map(Object.entries(records))).groups).toEqual(state.groups);
    expect(
      Object.keys(recordsOf(state, { groups: false })).some((k) => k.startsWith('group/')),
    ).toBe(false);
    const changes = applyCommand(state, take('shardId-000000000000', 'w2', 1), context);
    expect(changes.some(concernsBrokers)).toBe(false);
    state = run(state, { type: 'deleteGroup', application: APP });
    expect(state.groups.size).toBe(0);
    expect(refused(state, { type: 'deleteGroup', application: APP })).toBeInstanceOf(
      ResourceNotFoundError,
    );
  });

  it('refuses leases of a group whose stream was deleted and created again', () => {
    let state = join(activeStream(1));
    const stream = state.streams.get('s') as StreamRecord;
    state = run(state, { type: 'deleteStream', name: 's' });
    state = run(state, { type: 'removeStream', name: 's', incarnation: stream.incarnation });
    state = run(state, { ...createStream('s', 1), nowMs: 5_000 });
    expect(String(refused(state, take('shardId-000000000000', 'w1', 0)))).toMatch(/was deleted/);
  });
});

function joinCommand(streamName: string): MetadataCommand {
  return {
    type: 'joinGroup',
    application: APP,
    streamName,
    start: { type: 'TRIM_HORIZON' },
    nowMs: 3_500,
  };
}
