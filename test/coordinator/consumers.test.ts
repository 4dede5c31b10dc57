import { describe, expect, it } from 'vitest';
import { consumerArn, parseConsumerArn } from '../../src/common/arn.js';
import {
  LimitExceededError,
  ResourceInUseError,
  ResourceNotFoundError,
} from '../../src/common/errors.js';
import { leaderDuties } from '../../src/coordinator/leader-duties.js';
import { applyCommand } from '../../src/coordinator/metadata-machine.js';
import type { MetadataState } from '../../src/coordinator/model.js';
import { context, createStream, EMPTY, registerBroker, run } from './fixtures.js';

/**
 * The enhanced fan-out consumer registry in the metadata machine: Kinesis' lifecycle (CREATING,
 * ACTIVE, DELETING, gone), its limits (20 per stream, 5 CREATING in the account), its refusals,
 * and the lifecycle turns the coordinator leader proposes.
 */

function activeStream(name = 's'): MetadataState {
  let state = EMPTY;
  for (let n = 1; n <= 3; n++) state = registerBroker(state);
  state = run(state, createStream(name, 1));
  const stream = state.streams.get(name);
  return run(state, {
    type: 'setStreamStatus',
    name,
    incarnation: stream?.incarnation ?? 0,
    status: 'ACTIVE',
  });
}

const register = (consumerName: string, nowMs = 10_000, name = 's') =>
  ({ type: 'registerConsumer', name, consumerName, nowMs }) as const;

function turn(state: MetadataState, name = 's'): MetadataState {
  const incarnation = state.streams.get(name)?.incarnation ?? 0;
  return run(state, { type: 'consumerTurn', name, incarnation });
}

const consumers = (state: MetadataState, name = 's') => state.streams.get(name)?.consumers;

describe('the consumer registry', () => {
  it('registers a consumer CREATING, makes it ACTIVE at the next turn, and removes it after deregistering', () => {
    let state = run(activeStream(), register('app', 12_345));
    expect(consumers(state)).toEqual([{ name: 'app', status: 'CREATING', createdMs: 12_345 }]);
    state = turn(state);
    expect(consumers(state)).toEqual([{ name: 'app', status: 'ACTIVE', createdMs: 12_345 }]);
    state = run(state, { type: 'deregisterConsumer', name: 's', consumerName: 'app' });
    expect(consumers(state)).toEqual([{ name: 'app', status: 'DELETING', createdMs: 12_345 }]);
    // Deregistering again while DELETING changes nothing.
    expect(
      applyCommand(state, { type: 'deregisterConsumer', name: 's', consumerName: 'app' }, context),
    ).toEqual([]);
    state = turn(state);
    expect(consumers(state)).toBeUndefined();
    // A turn with nothing to do changes nothing.
    expect(
      applyCommand(
        state,
        { type: 'consumerTurn', name: 's', incarnation: state.streams.get('s')?.incarnation ?? 0 },
        context,
      ),
    ).toEqual([]);
  });

  it('refuses a name already registered on the stream, and an unknown consumer', () => {
    const state = run(activeStream(), register('app'));
    expect(() => applyCommand(state, register('app'), context)).toThrow(ResourceInUseError);
    expect(() =>
      applyCommand(state, { type: 'deregisterConsumer', name: 's', consumerName: 'x' }, context),
    ).toThrow(ResourceNotFoundError);
    expect(() => applyCommand(state, register('app', 1, 'nope'), context)).toThrow(
      ResourceNotFoundError,
    );
  });

  it('holds 20 consumers per stream, and 5 in CREATING at once in the account', () => {
    let state = activeStream();
    for (let i = 0; i < 5; i++) state = run(state, register(`c${i}`));
    expect(() => applyCommand(state, register('c5'), context)).toThrow(/5 consumers in CREATING/);
    state = turn(state);
    for (let i = 5; i < 20; i += 5) {
      for (let k = i; k < i + 5; k++) state = run(state, register(`c${k}`));
      state = turn(state);
    }
    expect(consumers(state)).toHaveLength(20);
    expect(() => applyCommand(state, register('c20'), context)).toThrow(LimitExceededError);
    expect(() => applyCommand(state, register('c20'), context)).toThrow(/20 registered consumers/);
  });

  it('registers only on an ACTIVE or UPDATING stream', () => {
    let state = EMPTY;
    for (let n = 1; n <= 3; n++) state = registerBroker(state);
    state = run(state, createStream('s', 1));
    expect(() => applyCommand(state, register('app'), context)).toThrow(ResourceInUseError);
  });

  it('gives a re-registered name a new creation time, never an earlier one than the others', () => {
    let state = run(activeStream(), register('a', 50_000));
    state = run(state, register('b', 40_000));
    expect(consumers(state)?.map((c) => c.createdMs)).toEqual([50_000, 50_000]);
    state = turn(run(state, { type: 'deregisterConsumer', name: 's', consumerName: 'a' }));
    state = run(state, register('a', 90_000));
    expect(consumers(state)).toEqual([
      { name: 'b', status: 'ACTIVE', createdMs: 50_000 },
      { name: 'a', status: 'CREATING', createdMs: 90_000 },
    ]);
  });

  it('does not delete a stream with consumers unless EnforceConsumerDeletion is set', () => {
    const state = turn(run(activeStream(), register('app')));
    expect(() => applyCommand(state, { type: 'deleteStream', name: 's' }, context)).toThrow(
      /registered consumers/,
    );
    const deleted = run(state, { type: 'deleteStream', name: 's', enforceConsumerDeletion: true });
    expect(deleted.streams.get('s')?.status).toBe('DELETING');
  });

  it('is carried forward by the coordinator leader: a turn for each stream with consumers to move', () => {
    let state = run(activeStream(), register('app'));
    const duties = (s: MetadataState) =>
      leaderDuties({
        state: s,
        nowMs: 20_000,
        verdicts: [],
        keyRotationMs: 3_600_000,
        newSecret: () => Buffer.alloc(32, 7),
        ledShards: new Set<number>(),
      }).filter((c) => c.type === 'consumerTurn');
    const incarnation = state.streams.get('s')?.incarnation ?? 0;
    expect(duties(state)).toEqual([{ type: 'consumerTurn', name: 's', incarnation }]);
    for (const c of duties(state)) state = run(state, c);
    expect(duties(state)).toEqual([]);
    state = run(state, { type: 'deregisterConsumer', name: 's', consumerName: 'app' });
    expect(duties(state)).toEqual([{ type: 'consumerTurn', name: 's', incarnation }]);
  });

  it('writes consumer ARNs as Kinesis does, and reads them back', () => {
    const identity = { region: 'eu-west-1', accountId: '123456789012' };
    const arn = consumerArn(identity, 'orders', 'billing.v2', 1_700_000_123_456);
    expect(arn).toBe(
      'arn:aws:kinesis:eu-west-1:123456789012:stream/orders/consumer/billing.v2:1700000123',
    );
    expect(parseConsumerArn(arn)).toEqual({
      streamName: 'orders',
      consumerName: 'billing.v2',
      createdS: 1_700_000_123,
    });
    expect(
      parseConsumerArn('arn:aws:kinesis:eu-west-1:123456789012:stream/orders'),
    ).toBeUndefined();
  });
});
