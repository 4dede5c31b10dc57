import { describe, expect, it } from 'vitest';
import { DEFAULT_SHARD_LIMITS } from '../../src/common/limits.js';
import { applyCommand, type MetadataCommand } from '../../src/coordinator/metadata-machine.js';
import {
  DEFAULT_ACCOUNT_LIMITS,
  INITIAL_COUNTERS,
  isOpen,
  type MetadataState,
} from '../../src/coordinator/model.js';
import { OnDemandScaler } from '../../src/coordinator/on-demand.js';
import { ValidationError } from '../../src/common/errors.js';

/**
 * On-demand scaling decisions on a manual clock: a shard hot for the split time is split in the
 * middle, not before; two adjacent cold shards are merged after the cool-down, never below the
 * minimum; a break in the heat or the cold starts the timer again; users still cannot reshard an
 * ON_DEMAND stream themselves.
 */

const context = { accountId: '123456789012', limits: DEFAULT_ACCOUNT_LIMITS };
const OPTIONS = {
  splitAboveBytesPerSecond: 1_000,
  splitAfterMs: 10_000,
  mergeBelowBytesPerSecond: 100,
  mergeAfterMs: 30_000,
  minShards: 2,
};

function apply(state: MetadataState, command: MetadataCommand): MetadataState {
  const streams = new Map(state.streams);
  let counters = state.counters;
  for (const change of applyCommand(state, command, context)) {
    if (change.kind === 'stream') {
      if (change.value === undefined) streams.delete(change.name);
      else streams.set(change.name, change.value);
    } else if (change.kind === 'counters') counters = change.value;
  }
  return { ...state, streams, counters };
}

function onDemandStream(shardCount: number): MetadataState {
  let state: MetadataState = {
    streams: new Map(),
    brokers: new Map(),
    counters: INITIAL_COUNTERS,
    iteratorKeys: [],
    groups: new Map(),
  };
  state = apply(state, {
    type: 'createStream',
    name: 'od',
    shardCount,
    mode: 'ON_DEMAND',
    shardLimits: DEFAULT_SHARD_LIMITS,
    replicationFactor: 1,
    tags: {},
    nowMs: 0,
  });
  return apply(state, { type: 'setStreamStatus', name: 'od', incarnation: 1, status: 'ACTIVE' });
}

const rates = (state: MetadataState, rate: (i: number) => number) =>
  new Map(
    (state.streams.get('od')?.shards ?? []).filter(isOpen).map((s, i) => [s.incarnation, rate(i)]),
  );

describe('on-demand scaling', () => {
  it('splits a shard that stays hot for the split time, in the middle of its range', () => {
    const state = onDemandStream(2);
    const scaler = new OnDemandScaler(OPTIONS);
    const hot = rates(state, (i) => (i === 1 ? 5_000 : 10));
    expect(scaler.decide(state, hot, 0)).toEqual([]);
    expect(scaler.decide(state, hot, 9_999)).toEqual([]);
    const [command] = scaler.decide(state, hot, 10_000);
    expect(command).toMatchObject({
      type: 'startReshard',
      operation: 'SplitShard',
      automatic: true,
      request: { kind: 'split', shardId: 'shardId-000000000001' },
    });
    const split = apply(state, command as MetadataCommand);
    expect(split.streams.get('od')?.status).toBe('UPDATING');
  });

  it('starts the timer again after a break in the heat', () => {
    const state = onDemandStream(2);
    const scaler = new OnDemandScaler(OPTIONS);
    const hot = rates(state, () => 5_000);
    scaler.decide(state, hot, 0);
    scaler.decide(
      state,
      rates(state, () => 500),
      5_000,
    );
    expect(scaler.decide(state, hot, 12_000)).toEqual([]);
    expect(scaler.decide(state, hot, 22_000)).toHaveLength(1);
  });

  it('merges two adjacent cold shards after the cool-down, never below the minimum', () => {
    let state = onDemandStream(3);
    const scaler = new OnDemandScaler(OPTIONS);
    const cold = () => rates(state, () => 0);
    expect(scaler.decide(state, cold(), 0)).toEqual([]);
    expect(scaler.decide(state, cold(), 29_999)).toEqual([]);
    const [merge] = scaler.decide(state, cold(), 30_000);
    expect(merge).toMatchObject({ operation: 'MergeShards', request: { kind: 'merge' } });
    state = apply(state, merge as MetadataCommand);
    expect(state.streams.get('od')?.status).toBe('UPDATING');
    // At the minimum (2 open shards once the merge is done), cold shards stay.
    const two = onDemandStream(2);
    const again = new OnDemandScaler(OPTIONS);
    again.decide(
      two,
      rates(two, () => 0),
      0,
    );
    expect(
      again.decide(
        two,
        rates(two, () => 0),
        100_000,
      ),
    ).toEqual([]);
  });

  it('users cannot split or merge an ON_DEMAND stream themselves', () => {
    const state = onDemandStream(2);
    expect(() =>
      apply(state, {
        type: 'startReshard',
        name: 'od',
        operation: 'SplitShard',
        request: { kind: 'split', shardId: 'shardId-000000000000', hashKey: '1000' },
        nowMs: 0,
      }),
    ).toThrow(ValidationError);
  });
});
