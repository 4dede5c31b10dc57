import { describe, expect, it } from 'vitest';
import { assignmentsFor } from '../../src/coordinator/assignments.js';
import { createStream, EMPTY, registerBroker, run } from './fixtures.js';

describe('assignments', () => {
  it('lists exactly the replicas placed on a broker, every replica on some broker, none of a deleting stream', () => {
    let state = EMPTY;
    for (let n = 1; n <= 4; n++) state = registerBroker(state);
    for (const [name, shards] of [
      ['a', 5],
      ['b', 3],
    ] as const) {
      state = run(state, createStream(name, shards));
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
