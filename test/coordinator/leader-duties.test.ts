import { describe, expect, it } from 'vitest';
import { leaderDuties } from '../../src/coordinator/leader-duties.js';
import type { MetadataState } from '../../src/coordinator/model.js';
import { createStream, EMPTY, registerBroker, run } from './fixtures.js';

const HOUR_MS = 3_600_000;

function duties(state: MetadataState, nowMs: number, verdicts = []) {
  return leaderDuties({
    state,
    nowMs,
    verdicts,
    keyRotationMs: HOUR_MS,
    newSecret: () => Buffer.alloc(32, 7),
    ledShards: new Set<number>(),
  });
}

describe('coordinator leader duties', () => {
  it('creates the first iterator key, rotates it hourly, and keeps enough to outlive iterators', () => {
    let state = EMPTY;
    const first = duties(state, 0);
    expect(first).toEqual([expect.objectContaining({ type: 'rotateIteratorKey', nowMs: 0 })]);
    for (const c of first) state = run(state, c);
    expect(duties(state, HOUR_MS - 1)).toEqual([]);
    for (let h = 1; h <= 5; h++) for (const c of duties(state, h * HOUR_MS)) state = run(state, c);
    expect(state.iteratorKeys.map((k) => k.id)).toEqual([4, 5, 6]);
  });

  it('turns verdicts into broker state changes, and moves streams through their lifecycle', () => {
    let state: MetadataState = {
      ...EMPTY,
      iteratorKeys: [{ id: 1, secretBase64: 'AA==', createdMs: 0 }],
    };
    for (let n = 1; n <= 3; n++) state = registerBroker(state);
    state = run(state, createStream('orders', 2));
    const shards = state.streams.get('orders')?.shards.map((s) => s.incarnation) ?? [];
    const withLeaders = (ledShards: number[]) =>
      leaderDuties({
        state,
        nowMs: 10,
        verdicts: [{ id: 2, state: 'down' }],
        keyRotationMs: HOUR_MS,
        newSecret: () => Buffer.alloc(32),
        ledShards: new Set(ledShards),
      });
    // Not ACTIVE while any shard has no reported leader: a client waiting for ACTIVE could not
    // write to it yet.
    expect(withLeaders(shards.slice(0, 1))).toEqual([
      { type: 'setBrokerState', id: 2, state: 'down', nowMs: 10 },
    ]);
    const commands = withLeaders(shards);
    expect(commands).toEqual([
      { type: 'setBrokerState', id: 2, state: 'down', nowMs: 10 },
      { type: 'setStreamStatus', name: 'orders', incarnation: 1, status: 'ACTIVE' },
    ]);
    for (const c of commands) state = run(state, c);
    expect(state.streams.get('orders')?.status).toBe('ACTIVE');
    expect(state.brokers.get(2)?.state).toBe('down');
    state = run(state, { type: 'deleteStream', name: 'orders' });
    for (const c of duties(state, 20)) state = run(state, c);
    expect(state.streams.has('orders')).toBe(false);
    expect(duties(state, 30)).toEqual([]);
  });
});
