import { describe, expect, it } from 'vitest';
import { UNLIMITED_SHARD_LIMITS } from '../../src/common/limits.js';
import { assignmentsFor } from '../../src/coordinator/assignments.js';
import {
  applyCommand,
  withChanges,
  type MetadataCommand,
} from '../../src/coordinator/metadata-machine.js';
import {
  DEFAULT_ACCOUNT_LIMITS,
  INITIAL_COUNTERS,
  type MetadataState,
} from '../../src/coordinator/model.js';

const context = { accountId: '123456789012', limits: DEFAULT_ACCOUNT_LIMITS };

function run(state: MetadataState, command: MetadataCommand): MetadataState {
  return withChanges(state, applyCommand(state, command, context));
}

describe('assignments', () => {
  it('lists exactly the replicas placed on a broker, every replica on some broker, none of a deleting stream', () => {
    let state: MetadataState = {
      streams: new Map(),
      brokers: new Map(),
      counters: INITIAL_COUNTERS,
      iteratorKeys: [],
    };
    for (let n = 1; n <= 4; n++) {
      state = run(state, {
        type: 'registerBroker',
        zone: '',
        api: `h${n}:1`,
        peer: `h${n}:2`,
        nowMs: 0,
      });
    }
    for (const [name, shards] of [
      ['a', 5],
      ['b', 3],
    ] as const) {
      state = run(state, {
        type: 'createStream',
        name,
        shardCount: shards,
        mode: 'PROVISIONED',
        shardLimits: UNLIMITED_SHARD_LIMITS,
        replicationFactor: 3,
        tags: {},
        nowMs: 0,
      });
    }
    const perShard = new Map<number, number[]>();
    for (let broker = 1; broker <= 4; broker++) {
      for (const a of assignmentsFor(state, broker)) {
        expect(a.voters).toContain(broker);
        perShard.set(a.shardIncarnation, [...(perShard.get(a.shardIncarnation) ?? []), broker]);
      }
    }
    expect(perShard.size).toBe(8);
    for (const [incarnation, brokers] of perShard) {
      const shard = [...state.streams.values()]
        .flatMap((s) => s.shards)
        .find((s) => s.incarnation === incarnation);
      expect(brokers).toEqual([...(shard?.replicas ?? [])].sort((x, y) => x - y));
    }
    state = run(state, { type: 'setStreamStatus', name: 'a', incarnation: 1, status: 'ACTIVE' });
    state = run(state, { type: 'deleteStream', name: 'a' });
    for (let broker = 1; broker <= 4; broker++) {
      for (const a of assignmentsFor(state, broker)) expect(a.streamName).toBe('b');
    }
  });
});
