import { UNLIMITED_SHARD_LIMITS } from '../../src/common/limits.js';
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

/** Shared by the coordinator's tests: a machine context, an empty state and command helpers. */

export const context = { accountId: '123456789012', limits: DEFAULT_ACCOUNT_LIMITS };

export const EMPTY: MetadataState = {
  streams: new Map(),
  brokers: new Map(),
  counters: INITIAL_COUNTERS,
  iteratorKeys: [],
  groups: new Map(),
};

/** The state after `command` (which must be accepted). */
export function run(state: MetadataState, command: MetadataCommand): MetadataState {
  return withChanges(state, applyCommand(state, command, context));
}

export function createStream(
  name: string,
  shardCount: number,
  replicationFactor = 3,
): Extract<MetadataCommand, { type: 'createStream' }> {
  return {
    type: 'createStream',
    name,
    shardCount,
    mode: 'PROVISIONED',
    shardLimits: UNLIMITED_SHARD_LIMITS,
    replicationFactor,
    tags: {},
    nowMs: 2_000,
  };
}

/** Registers the next broker, at 127.0.0.(n+1). */
export function registerBroker(state: MetadataState, zone = '', id?: number): MetadataState {
  const n = state.brokers.size + 1;
  return run(state, {
    type: 'registerBroker',
    ...(id === undefined ? {} : { id }),
    zone,
    api: `127.0.0.${n + 1}:7400`,
    peer: `127.0.0.${n + 1}:7401`,
    nowMs: 1_000,
  });
}
