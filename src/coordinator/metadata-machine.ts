import { assert } from '../common/assert.js';
import {
  InvalidArgumentError,
  LimitExceededError,
  ResourceInUseError,
  ResourceNotFoundError,
} from '../common/errors.js';
import { evenHashRanges } from '../common/hash-key.js';
import {
  RETENTION_DEFAULT_HOURS,
  TAGS_PER_STREAM_MAX,
  type ShardThroughputLimits,
} from '../common/limits.js';
import { formatSequenceNumber } from '../common/sequence-number.js';
import { formatShardId } from '../common/shard-id.js';
import {
  openShardCount,
  type AccountLimits,
  type Counters,
  type IteratorKeyRecord,
  type MetadataState,
  type StreamMode,
  type StreamRecord,
  type StreamStatus,
} from './model.js';

/**
 * The metadata state machine: a pure function from (state, command) to (result, changes). It reads
 * no clock and draws no random numbers (commands carry them), so the same command log gives the same
 * state on every replica once the coordinator is a Raft group. Checks that depend on state
 * (existence, limits) live here; checks of the request's shape live in the control plane.
 */

export type MetadataCommand =
  | {
      readonly type: 'createStream';
      readonly name: string;
      readonly shardCount: number;
      readonly mode: StreamMode;
      readonly shardLimits: ShardThroughputLimits;
      readonly replicationFactor: number;
      readonly tags: Readonly<Record<string, string>>;
      readonly nowMs: number;
    }
  | {
      readonly type: 'setStreamStatus';
      readonly name: string;
      readonly incarnation: number;
      readonly status: StreamStatus;
    }
  | { readonly type: 'deleteStream'; readonly name: string }
  | { readonly type: 'removeStream'; readonly name: string; readonly incarnation: number }
  | {
      readonly type: 'addTags';
      readonly name: string;
      readonly tags: Readonly<Record<string, string>>;
    }
  | { readonly type: 'removeTags'; readonly name: string; readonly keys: readonly string[] }
  | {
      readonly type: 'setRetention';
      readonly name: string;
      readonly hours: number;
      readonly direction: 'increase' | 'decrease';
    }
  | { readonly type: 'setStreamMode'; readonly name: string; readonly mode: StreamMode }
  | {
      readonly type: 'rotateIteratorKey';
      readonly secretBase64: string;
      readonly nowMs: number;
      /** How many keys to keep, newest included. */
      readonly keep: number;
    };

export type MetadataChange =
  | { readonly kind: 'stream'; readonly name: string; readonly value: StreamRecord | undefined }
  | { readonly kind: 'counters'; readonly value: Counters }
  | { readonly kind: 'iteratorKeys'; readonly value: readonly IteratorKeyRecord[] };

export interface MachineContext {
  readonly accountId: string;
  readonly limits: AccountLimits;
}

export function applyCommand(
  state: MetadataState,
  command: MetadataCommand,
  context: MachineContext,
): MetadataChange[] {
  switch (command.type) {
    case 'createStream':
      return createStream(state, command, context);
    case 'setStreamStatus': {
      const stream = requireStream(state, command.name, context);
      if (stream.incarnation !== command.incarnation) return [];
      return [streamChange({ ...stream, status: command.status })];
    }
    case 'deleteStream': {
      const stream = requireStream(state, command.name, context);
      if (stream.status !== 'ACTIVE') throw inUse(stream, context);
      return [streamChange({ ...stream, status: 'DELETING' })];
    }
    case 'removeStream': {
      const stream = state.streams.get(command.name);
      if (stream === undefined || stream.incarnation !== command.incarnation) return [];
      assert(stream.status === 'DELETING', 'only a DELETING stream is removed');
      return [{ kind: 'stream', name: command.name, value: undefined }];
    }
    case 'addTags': {
      const stream = requireActive(state, command.name, context);
      const tags = { ...stream.tags, ...command.tags };
      if (Object.keys(tags).length > TAGS_PER_STREAM_MAX) {
        throw new InvalidArgumentError(
          `Failed to add tags to stream ${stream.name} under account ${context.accountId} because ` +
            `a given stream cannot have more than ${TAGS_PER_STREAM_MAX} tags associated with it.`,
        );
      }
      return [streamChange({ ...stream, tags })];
    }
    case 'removeTags': {
      const stream = requireActive(state, command.name, context);
      const tags = { ...stream.tags };
      for (const key of command.keys) delete tags[key];
      return [streamChange({ ...stream, tags })];
    }
    case 'setRetention':
      return setRetention(state, command, context);
    case 'setStreamMode': {
      const stream = requireActive(state, command.name, context);
      if (stream.mode === command.mode) return [];
      if (command.mode === 'ON_DEMAND') checkOnDemandRoom(state, context);
      return [streamChange({ ...stream, mode: command.mode })];
    }
    case 'rotateIteratorKey': {
      const key: IteratorKeyRecord = {
        id: state.counters.nextIteratorKeyId,
        secretBase64: command.secretBase64,
        createdMs: command.nowMs,
      };
      const keys = [...state.iteratorKeys, key].slice(-Math.max(1, command.keep));
      return [
        { kind: 'iteratorKeys', value: keys },
        { kind: 'counters', value: { ...state.counters, nextIteratorKeyId: key.id + 1 } },
      ];
    }
  }
}

/** Applies changes to a state, giving the next state. */
export function withChanges(
  state: MetadataState,
  changes: readonly MetadataChange[],
): MetadataState {
  let streams = state.streams;
  let counters = state.counters;
  let iteratorKeys = state.iteratorKeys;
  for (const change of changes) {
    if (change.kind === 'stream') {
      const next = new Map(streams);
      if (change.value === undefined) next.delete(change.name);
      else next.set(change.name, change.value);
      streams = next;
    } else if (change.kind === 'counters') {
      counters = change.value;
    } else {
      iteratorKeys = change.value;
    }
  }
  return { streams, counters, iteratorKeys };
}

function createStream(
  state: MetadataState,
  command: Extract<MetadataCommand, { type: 'createStream' }>,
  context: MachineContext,
): MetadataChange[] {
  if (state.streams.has(command.name)) {
    throw new ResourceInUseError(
      `Stream ${command.name} under account ${context.accountId} already exists.`,
    );
  }
  const openShards = totalOpenShards(state);
  if (openShards + command.shardCount > context.limits.shardLimit) {
    throw new LimitExceededError(
      `This request would exceed the shard limit for the account ${context.accountId} in ` +
        `this region. Current shard count for the account: ${openShards}. Limit: ` +
        `${context.limits.shardLimit}. Number of additional shards that would have resulted from ` +
        `this request: ${command.shardCount}.`,
    );
  }
  if (command.mode === 'ON_DEMAND') checkOnDemandRoom(state, context);
  const counters = state.counters;
  const ranges = evenHashRanges(command.shardCount);
  const shards = ranges.map((range, ordinal) => {
    const incarnation = counters.nextShardIncarnation + ordinal;
    return {
      shardId: formatShardId(ordinal),
      incarnation,
      hashKeyStart: range.start.toString(),
      hashKeyEnd: range.end.toString(),
      createdMs: command.nowMs,
    };
  });
  const stream: StreamRecord = {
    name: command.name,
    incarnation: counters.nextStreamIncarnation,
    status: 'CREATING',
    mode: command.mode,
    createdMs: command.nowMs,
    retentionHours: RETENTION_DEFAULT_HOURS,
    shardLimits: command.shardLimits,
    replicationFactor: command.replicationFactor,
    tags: { ...command.tags },
    shards,
  };
  return [
    streamChange(stream),
    {
      kind: 'counters',
      value: {
        ...counters,
        nextStreamIncarnation: counters.nextStreamIncarnation + 1,
        nextShardIncarnation: counters.nextShardIncarnation + command.shardCount,
      },
    },
  ];
}

function setRetention(
  state: MetadataState,
  command: Extract<MetadataCommand, { type: 'setRetention' }>,
  context: MachineContext,
): MetadataChange[] {
  const stream = requireActive(state, command.name, context);
  if (command.direction === 'increase' && command.hours < stream.retentionHours) {
    throw new InvalidArgumentError(
      `Requested retention period (${command.hours} hours) for stream ${stream.name} can not be ` +
        `shorter than existing retention period (${stream.retentionHours} hours). Use ` +
        `DecreaseRetentionPeriod API.`,
    );
  }
  if (command.direction === 'decrease' && command.hours > stream.retentionHours) {
    throw new InvalidArgumentError(
      `Requested retention period (${command.hours} hours) for stream ${stream.name} can not be ` +
        `longer than existing retention period (${stream.retentionHours} hours). Use ` +
        `IncreaseRetentionPeriod API.`,
    );
  }
  if (command.hours === stream.retentionHours) return [];
  return [streamChange({ ...stream, retentionHours: command.hours })];
}

/** One more ON_DEMAND stream must fit the account's on-demand stream count limit. */
function checkOnDemandRoom(state: MetadataState, context: MachineContext): void {
  const onDemand = [...state.streams.values()].filter((s) => s.mode === 'ON_DEMAND').length;
  if (onDemand >= context.limits.onDemandStreamCountLimit) {
    throw new LimitExceededError(
      `This request would exceed the on-demand stream count limit of ` +
        `${context.limits.onDemandStreamCountLimit} for account ${context.accountId}.`,
    );
  }
}

function totalOpenShards(state: MetadataState): number {
  let count = 0;
  for (const stream of state.streams.values()) count += openShardCount(stream);
  return count;
}

function streamChange(stream: StreamRecord): MetadataChange {
  return { kind: 'stream', name: stream.name, value: stream };
}

export function streamNotFound(
  name: string,
  context: { accountId: string },
): ResourceNotFoundError {
  return new ResourceNotFoundError(`Stream ${name} under account ${context.accountId} not found.`);
}

function inUse(stream: StreamRecord, context: MachineContext): ResourceInUseError {
  return new ResourceInUseError(
    `Stream ${stream.name} under account ${context.accountId} is in use (status ${stream.status}).`,
  );
}

function requireStream(state: MetadataState, name: string, context: MachineContext): StreamRecord {
  const stream = state.streams.get(name);
  if (stream === undefined) throw streamNotFound(name, context);
  return stream;
}

function requireActive(state: MetadataState, name: string, context: MachineContext): StreamRecord {
  const stream = requireStream(state, name, context);
  if (stream.status !== 'ACTIVE') throw inUse(stream, context);
  return stream;
}

/** The first sequence number a shard can hold. */
export function startingSequenceNumber(shardIncarnation: number): string {
  return formatSequenceNumber({ incarnation: shardIncarnation, index: 0, offset: 0 });
}
