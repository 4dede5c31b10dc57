import { describe, expect, it } from 'vitest';
import { DEFAULT_SHARD_LIMITS } from '../../src/common/limits.js';
import { applyCommand, type MetadataCommand } from '../../src/coordinator/metadata-machine.js';
import {
  DEFAULT_ACCOUNT_LIMITS,
  INITIAL_COUNTERS,
  replicaIdIn,
  type BrokerRecord,
  type MetadataState,
  type ShardRecord,
} from '../../src/coordinator/model.js';
import { planMoves } from '../../src/coordinator/rebalance.js';
import { movesInFlight } from '../../src/coordinator/replica-moves.js';
import { InvalidArgumentError, ResourceInUseError } from '../../src/common/errors.js';
import { replicaIdOf } from '../../src/common/replica-id.js';

/**
 * The planner of replica moves and the machine's move commands, on metadata built command by
 * command: replacement of a dead broker's replicas, draining, balancing onto a new broker, zone
 * spread, the concurrency limit, and ids that never rejoin a group.
 */

const context = { accountId: '123456789012', limits: DEFAULT_ACCOUNT_LIMITS };
const OPTIONS = { maxConcurrentMoves: 100, replaceDownAfterMs: 60_000 };

function empty(): MetadataState {
  return {
    streams: new Map(),
    brokers: new Map(),
    counters: INITIAL_COUNTERS,
    iteratorKeys: [],
    groups: new Map(),
  };
}

function apply(state: MetadataState, command: MetadataCommand): MetadataState {
  const streams = new Map(state.streams);
  const brokers = new Map(state.brokers);
  let counters = state.counters;
  for (const change of applyCommand(state, command, context)) {
    if (change.kind === 'stream') {
      if (change.value === undefined) streams.delete(change.name);
      else streams.set(change.name, change.value);
    } else if (change.kind === 'broker') {
      if (change.value === undefined) brokers.delete(change.id);
      else brokers.set(change.id, change.value);
    } else if (change.kind === 'counters') {
      counters = change.value;
    }
  }
  return { ...state, streams, brokers, counters };
}

function cluster(brokers: number, zones: string[] = [], shards = 8): MetadataState {
  let state = empty();
  for (let id = 1; id <= brokers; id++) {
    state = apply(state, {
      type: 'registerBroker',
      zone: zones[id - 1] ?? '',
      api: `127.0.0.${id}:1`,
      peer: `127.0.0.${id}:2`,
      nowMs: 0,
    });
  }
  state = apply(state, {
    type: 'createStream',
    name: 's',
    shardCount: shards,
    mode: 'PROVISIONED',
    shardLimits: DEFAULT_SHARD_LIMITS,
    replicationFactor: 3,
    tags: {},
    nowMs: 0,
  });
  const stream = state.streams.get('s');
  return apply(state, {
    type: 'setStreamStatus',
    name: 's',
    incarnation: stream?.incarnation ?? 0,
    status: 'ACTIVE',
  });
}

function withBroker(
  state: MetadataState,
  id: number,
  change: Partial<BrokerRecord>,
): MetadataState {
  const brokers = new Map(state.brokers);
  brokers.set(id, { ...(state.brokers.get(id) as BrokerRecord), ...change });
  return { ...state, brokers };
}

/** Starts every planned move and finishes it, as the driver would once the log agrees. */
function carryOut(state: MetadataState, nowMs: number, rounds = 50): MetadataState {
  for (let round = 0; round < rounds; round++) {
    const planned = planMoves(state, nowMs, OPTIONS);
    if (planned.length === 0) return state;
    for (const move of planned) {
      state = apply(state, { type: 'startMove', ...move, nowMs });
      state = apply(state, { type: 'finishMove', ...move });
    }
  }
  throw new Error('the planner did not settle');
}

const load = (state: MetadataState) => {
  const counts = new Map<number, number>([...state.brokers.keys()].map((id) => [id, 0]));
  for (const shard of state.streams.get('s')?.shards ?? []) {
    for (const id of shard.replicas ?? []) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
};

describe('planning replica moves', () => {
  it('a new broker fills up until replica counts differ by at most one', () => {
    let state = cluster(4);
    state = apply(state, { type: 'registerBroker', zone: '', api: 'x:1', peer: 'x:2', nowMs: 0 });
    expect(load(state).get(5)).toBe(0);
    state = carryOut(state, 0);
    const counts = [...load(state).values()];
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(load(state).get(5)).toBeGreaterThanOrEqual(4);
    for (const shard of state.streams.get('s')?.shards ?? []) {
      expect(new Set(shard.replicas).size).toBe(3);
      expect(shard.move).toBeUndefined();
    }
  });

  it("a draining broker's replicas all leave it, and it takes no new ones", () => {
    let state = cluster(4);
    state = apply(state, { type: 'setBrokerDraining', id: 2, draining: true });
    state = carryOut(state, 0);
    expect(load(state).get(2)).toBe(0);
    const rest = [1, 3, 4].map((id) => load(state).get(id) ?? 0);
    expect(Math.max(...rest) - Math.min(...rest)).toBeLessThanOrEqual(1);
    for (const shard of state.streams.get('s')?.shards ?? []) {
      expect(shard.retiredReplicas ?? []).not.toContain(shard.replicas?.[0]);
    }
  });

  it('replicas of a broker down for longer than the timeout are re-created elsewhere, not before', () => {
    let state = cluster(5);
    state = withBroker(state, 3, { state: 'down', stateSinceMs: 1_000 });
    expect(planMoves(state, 1_000 + OPTIONS.replaceDownAfterMs - 1, OPTIONS)).toEqual([]);
    const planned = planMoves(state, 1_000 + OPTIONS.replaceDownAfterMs, OPTIONS);
    expect(planned.length).toBeGreaterThan(0);
    expect(planned.every((m) => m.from === 3 && m.reason === 'replace')).toBe(true);
    state = carryOut(state, 1_000 + OPTIONS.replaceDownAfterMs);
    expect(load(state).get(3)).toBe(0);
  });

  it('keeps replicas spread over the zones when balancing', () => {
    const zones = ['a', 'b', 'c', 'a'];
    let state = cluster(4, zones);
    state = apply(state, { type: 'registerBroker', zone: 'b', api: 'x:1', peer: 'x:2', nowMs: 0 });
    state = carryOut(state, 0);
    const zoneOf = new Map([...state.brokers.values()].map((b) => [b.id, b.zone]));
    for (const shard of state.streams.get('s')?.shards ?? []) {
      expect(new Set(shard.replicas?.map((id) => zoneOf.get(id))).size).toBe(3);
    }
  });

  it('starts at most the allowed number of moves, counting those in flight', () => {
    let state = cluster(4);
    state = apply(state, { type: 'setBrokerDraining', id: 1, draining: true });
    const limited = { ...OPTIONS, maxConcurrentMoves: 2 };
    const first = planMoves(state, 0, limited);
    expect(first).toHaveLength(2);
    state = apply(state, { type: 'startMove', ...(first[0] as (typeof first)[0]), nowMs: 0 });
    expect(movesInFlight(state)).toHaveLength(1);
    expect(planMoves(state, 0, limited)).toHaveLength(1);
  });
});

describe('move commands', () => {
  it('a started move adds the target; finishing drops the source and retires its replica id', () => {
    let state = cluster(4);
    const shard = state.streams.get('s')?.shards[0];
    const replicas = shard?.replicas ?? [];
    const from = replicas[0] as number;
    const to = [1, 2, 3, 4].find((id) => !replicas.includes(id)) as number;
    const ref = { name: 's', incarnation: 1, shardId: shard?.shardId ?? '', from, to };
    state = apply(state, { type: 'startMove', ...ref, reason: 'balance', nowMs: 5 });
    let moved = state.streams.get('s')?.shards[0];
    expect(moved?.replicas).toEqual([...replicas, to]);
    expect(moved?.bootstrapReplicas).toEqual(replicas);
    expect(() => apply(state, { type: 'startMove', ...ref, reason: 'balance', nowMs: 6 })).toThrow(
      ResourceInUseError,
    );
    state = apply(state, { type: 'finishMove', ...ref });
    moved = state.streams.get('s')?.shards[0];
    // The target took the source's place as preferred leader.
    expect(moved?.replicas).toEqual([to, ...replicas.slice(1)]);
    expect(moved?.bootstrapReplicas).toEqual(replicas);
    expect(moved?.retiredReplicas).toEqual([from]);
    expect(moved?.move).toBeUndefined();
    // A finish seen twice changes nothing.
    expect(applyCommand(state, { type: 'finishMove', ...ref }, context)).toEqual([]);
    // The source may take a replica of the group again, under a new replica id; moving it back
    // and away once more retires that id too, and its third replica would be generation 2.
    expect(replicaIdIn(moved as ShardRecord, from)).toBe(replicaIdOf(from, 1));
    const back = { ...ref, from: to, to: from };
    state = apply(state, { type: 'startMove', ...back, reason: 'balance', nowMs: 7 });
    state = apply(state, { type: 'finishMove', ...back });
    moved = state.streams.get('s')?.shards[0];
    expect(moved?.replicas).toEqual(replicas);
    expect(moved?.retiredReplicas).toEqual([from, to]);
    expect(replicaIdIn(moved as ShardRecord, from)).toBe(replicaIdOf(from, 1));
    state = apply(state, { type: 'startMove', ...ref, reason: 'balance', nowMs: 8 });
    state = apply(state, { type: 'finishMove', ...ref });
    moved = state.streams.get('s')?.shards[0];
    expect(moved?.retiredReplicas).toEqual([from, to, replicaIdOf(from, 1)]);
    expect(replicaIdIn(moved as ShardRecord, to)).toBe(replicaIdOf(to, 1));
    expect(replicaIdIn(moved as ShardRecord, from)).toBe(replicaIdOf(from, 2));
  });

  it('an aborted move drops the target again; a draining broker is no target', () => {
    let state = cluster(4);
    const shard = state.streams.get('s')?.shards[1];
    const replicas = shard?.replicas ?? [];
    const to = [1, 2, 3, 4].find((id) => !replicas.includes(id)) as number;
    const ref = {
      name: 's',
      incarnation: 1,
      shardId: shard?.shardId ?? '',
      from: replicas[1] as number,
      to,
    };
    const draining = apply(state, { type: 'setBrokerDraining', id: to, draining: true });
    expect(() =>
      apply(draining, { type: 'startMove', ...ref, reason: 'balance', nowMs: 0 }),
    ).toThrow(InvalidArgumentError);
    state = apply(state, { type: 'startMove', ...ref, reason: 'balance', nowMs: 0 });
    state = apply(state, { type: 'abortMove', ...ref });
    const after = state.streams.get('s')?.shards[1];
    expect(after?.replicas).toEqual(replicas);
    expect(after?.retiredReplicas).toEqual([to]);
  });
});
