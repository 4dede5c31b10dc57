import { assert } from '../common/assert.js';
import { MAX_BROKER_ID } from '../common/replica-id.js';
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
  consumersAfterTurn,
  consumersOf,
  withDeregisteredConsumer,
  withRegisteredConsumer,
} from './consumers.js';
import {
  joinedGroup,
  requireGroup,
  streamOfGroup,
  withCheckpoint,
  withReleasedLease,
  withTakenLease,
  type LeaseCheckpoint,
  type LeaseRelease,
  type LeaseTake,
} from './groups.js';
import { PlacementError, placeShards } from './placement.js';
import {
  checkCanReshard,
  expiredClosedShards,
  finishReshard,
  peakExtraShards,
  planMerge,
  planScale,
  planSplit,
  recordSeal,
  StaleStepError,
  startStep,
} from './reshard.js';
import {
  withAbortedMove,
  withFinishedMove,
  withStartedMove,
  type MoveRef,
} from './replica-moves.js';
import {
  takesReplicas,
  type MoveReason,
  type ReshardIntent,
  type ReshardStep,
  type AccountLimits,
  type BrokerRecord,
  type BrokerState,
  type Counters,
  type GroupRecord,
  type GroupStart,
  type IteratorKeyRecord,
  type MetadataState,
  type ShardRecord,
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
  | {
      readonly type: 'deleteStream';
      readonly name: string;
      /** Kinesis' EnforceConsumerDeletion: without it, a stream with consumers is not deleted. */
      readonly enforceConsumerDeletion?: boolean;
    }
  | {
      /** RegisterStreamConsumer: the consumer is CREATING until the next lifecycle turn. */
      readonly type: 'registerConsumer';
      readonly name: string;
      readonly consumerName: string;
      readonly nowMs: number;
    }
  | { readonly type: 'deregisterConsumer'; readonly name: string; readonly consumerName: string }
  | {
      /** The lifecycle turn of a stream's consumers: CREATING to ACTIVE, DELETING removed. */
      readonly type: 'consumerTurn';
      readonly name: string;
      readonly incarnation: number;
    }
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
      /** A broker joins (no id: a new one, given the next id) or comes back with new addresses. */
      readonly type: 'registerBroker';
      readonly id?: number;
      readonly zone: string;
      readonly api: string;
      readonly peer: string;
      readonly nowMs: number;
      /** A new broker's registration token (see BrokerRecord.token). */
      readonly token?: string;
      /**
       * The broker's data folder says it registered before under `id`: if the metadata does not
       * know that id, it was lost (or is another cluster's), and nothing may be placed on it.
       */
      readonly returning?: boolean;
    }
  | {
      /** The coordinator's failure detector: a broker stopped (or resumed) heartbeating. */
      readonly type: 'setBrokerState';
      readonly id: number;
      readonly state: BrokerState;
      readonly nowMs: number;
    }
  | {
      /** SplitShard, MergeShards or UpdateShardCount: the steps were planned by the control plane. */
      readonly type: 'startReshard';
      readonly name: string;
      readonly operation: ReshardIntent['operation'];
      /**
       * SplitShard/MergeShards: the shard ids the request named (checked again here, against the
       * state the command applies to). UpdateShardCount: the target.
       */
      readonly request:
        | { readonly kind: 'split'; readonly shardId: string; readonly hashKey: string }
        | { readonly kind: 'merge'; readonly shardId: string; readonly adjacentShardId: string }
        | { readonly kind: 'scale'; readonly targetShardCount: number };
      readonly nowMs: number;
      /** Started by on-demand scaling (on-demand.ts): allowed on ON_DEMAND streams. */
      readonly automatic?: true;
    }
  | {
      /** A parent of the reshard under way committed its SEAL entry (ending sequence number). */
      readonly type: 'recordSeal';
      readonly name: string;
      readonly incarnation: number;
      readonly shardId: string;
      readonly endingSequenceNumber: string;
      readonly nowMs: number;
    }
  | {
      /** Closed shards past their retention leave the stream. */
      readonly type: 'expireClosedShards';
      readonly name: string;
      readonly incarnation: number;
      readonly nowMs: number;
    }
  | {
      /** A worker of a consumer group starts: the group is created on its first worker. */
      readonly type: 'joinGroup';
      readonly application: string;
      readonly streamName: string;
      readonly start: GroupStart;
      readonly nowMs: number;
    }
  | ({ readonly type: 'takeLease'; readonly application: string } & LeaseTake)
  | ({ readonly type: 'checkpointLease'; readonly application: string } & LeaseCheckpoint)
  | ({ readonly type: 'releaseLease'; readonly application: string } & LeaseRelease)
  | { readonly type: 'deleteGroup'; readonly application: string }
  | ({
      /** A replica move starts: the target joins the shard's replicas (see replica-moves.ts). */
      readonly type: 'startMove';
      readonly reason: MoveReason;
      readonly nowMs: number;
    } & MoveRef)
  | ({ readonly type: 'finishMove' } & MoveRef)
  | ({ readonly type: 'abortMove' } & MoveRef)
  | { readonly type: 'setBrokerDraining'; readonly id: number; readonly draining: boolean }
  | {
      /**
       * Preferred leaders (the first of each replica set) are spread evenly again over the
       * brokers that take leaderships (after moves, a join or a drain).
       */
      readonly type: 'balanceLeaders';
    }
  | {
      readonly type: 'rotateIteratorKey';
      readonly secretBase64: string;
      readonly nowMs: number;
      /** How many keys to keep, newest included. */
      readonly keep: number;
    };

export type MetadataChange =
  | { readonly kind: 'stream'; readonly name: string; readonly value: StreamRecord | undefined }
  | { readonly kind: 'broker'; readonly id: number; readonly value: BrokerRecord | undefined }
  | { readonly kind: 'counters'; readonly value: Counters }
  | { readonly kind: 'iteratorKeys'; readonly value: readonly IteratorKeyRecord[] }
  | {
      readonly kind: 'group';
      readonly application: string;
      readonly value: GroupRecord | undefined;
    };

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
      if (consumersOf(stream).length > 0 && command.enforceConsumerDeletion !== true) {
        throw new ResourceInUseError(
          `Stream ${stream.name} under account ${context.accountId} has registered consumers; deregister them or set EnforceConsumerDeletion.`,
        );
      }
      return [streamChange({ ...stream, status: 'DELETING' })];
    }
    case 'registerConsumer': {
      const stream = requireStream(state, command.name, context);
      if (stream.status !== 'ACTIVE' && stream.status !== 'UPDATING') throw inUse(stream, context);
      return [
        streamChange(
          withRegisteredConsumer(
            state,
            stream,
            command.consumerName,
            command.nowMs,
            context.accountId,
          ),
        ),
      ];
    }
    case 'deregisterConsumer': {
      const stream = requireStream(state, command.name, context);
      const next = withDeregisteredConsumer(stream, command.consumerName, context.accountId);
      return next === stream ? [] : [streamChange(next)];
    }
    case 'consumerTurn': {
      const stream = state.streams.get(command.name);
      if (stream === undefined || stream.incarnation !== command.incarnation) return [];
      const next = consumersAfterTurn(stream);
      return next === undefined ? [] : [streamChange(next)];
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
    case 'startReshard':
      return startReshard(state, command, context);
    case 'recordSeal':
      return recordSealCommand(state, command);
    case 'expireClosedShards': {
      const stream = state.streams.get(command.name);
      if (stream === undefined || stream.incarnation !== command.incarnation) return [];
      const expired = new Set(expiredClosedShards(stream, command.nowMs).map((s) => s.shardId));
      if (expired.size === 0) return [];
      return [
        streamChange({ ...stream, shards: stream.shards.filter((s) => !expired.has(s.shardId)) }),
      ];
    }
    case 'registerBroker':
      return registerBroker(state, command);
    case 'setBrokerState': {
      const broker = state.brokers.get(command.id);
      if (broker === undefined) {
        throw new ResourceNotFoundError(`Broker ${command.id} is not registered.`);
      }
      if (broker.state === command.state) return [];
      return [
        {
          kind: 'broker',
          id: broker.id,
          value: { ...broker, state: command.state, stateSinceMs: command.nowMs },
        },
      ];
    }
    case 'startMove':
      return [streamChange(withStartedMove(state, command))];
    case 'finishMove': {
      const stream = withFinishedMove(state, command);
      return stream === undefined ? [] : [streamChange(stream)];
    }
    case 'abortMove': {
      const stream = withAbortedMove(state, command);
      return stream === undefined ? [] : [streamChange(stream)];
    }
    case 'setBrokerDraining': {
      const broker = state.brokers.get(command.id);
      if (broker === undefined) {
        throw new ResourceNotFoundError(`Broker ${command.id} is not registered.`);
      }
      if ((broker.draining === true) === command.draining) return [];
      const { draining: _was, ...rest } = broker;
      return [
        {
          kind: 'broker',
          id: broker.id,
          value: command.draining ? { ...rest, draining: true } : rest,
        },
      ];
    }
    case 'balanceLeaders': {
      if (!leaderBalanceWanted(state)) return [];
      const placed = placeReplicas(state, 0, 1);
      return (placed?.otherStreams ?? []).map(streamChange);
    }
    case 'joinGroup': {
      const stream = requireStream(state, command.streamName, context);
      const group = joinedGroup(state, command.application, stream, command.start, command.nowMs);
      return group === undefined ? [] : [groupChange(group)];
    }
    case 'takeLease': {
      const group = requireGroup(state, command.application);
      return [groupChange(withTakenLease(group, streamOfGroup(state, group), command))];
    }
    case 'checkpointLease': {
      const group = requireGroup(state, command.application);
      return [groupChange(withCheckpoint(group, streamOfGroup(state, group), command))];
    }
    case 'releaseLease': {
      const group = requireGroup(state, command.application);
      return [groupChange(withReleasedLease(group, streamOfGroup(state, group), command))];
    }
    case 'deleteGroup': {
      requireGroup(state, command.application);
      return [{ kind: 'group', application: command.application, value: undefined }];
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
  let brokers = state.brokers;
  let counters = state.counters;
  let iteratorKeys = state.iteratorKeys;
  let groups = state.groups;
  for (const change of changes) {
    if (change.kind === 'stream') {
      const next = new Map(streams);
      if (change.value === undefined) next.delete(change.name);
      else next.set(change.name, change.value);
      streams = next;
    } else if (change.kind === 'broker') {
      const next = new Map(brokers);
      if (change.value === undefined) next.delete(change.id);
      else next.set(change.id, change.value);
      brokers = next;
    } else if (change.kind === 'group') {
      const next = new Map(groups);
      if (change.value === undefined) next.delete(change.application);
      else next.set(change.application, change.value);
      groups = next;
    } else if (change.kind === 'counters') {
      counters = change.value;
    } else {
      iteratorKeys = change.value;
    }
  }
  return { streams, brokers, counters, iteratorKeys, groups };
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
  checkShardLimit(state, command.shardCount, context);
  if (command.mode === 'ON_DEMAND') checkOnDemandRoom(state, context);
  const counters = state.counters;
  let placement;
  try {
    placement = placeReplicas(state, command.shardCount, command.replicationFactor);
  } catch (error) {
    if (!(error instanceof PlacementError)) throw error;
    throw new InvalidArgumentError(error.message, { cause: error });
  }
  const ranges = evenHashRanges(command.shardCount);
  const shards = ranges.map((range, ordinal): ShardRecord => {
    const incarnation = counters.nextShardIncarnation + ordinal;
    const replicas = placement?.shards[ordinal];
    return {
      shardId: formatShardId(ordinal),
      incarnation,
      hashKeyStart: range.start.toString(),
      hashKeyEnd: range.end.toString(),
      createdMs: command.nowMs,
      ...(replicas === undefined ? {} : { replicas }),
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
    ...(placement?.otherStreams ?? []).map(streamChange),
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

/** Whether a balanceLeaders command would change any preferred leader now. */
export function leaderBalanceWanted(state: MetadataState): boolean {
  if (![...state.brokers.values()].some(takesReplicas)) return false;
  try {
    return (placeReplicas(state, 0, 1)?.otherStreams.length ?? 0) > 0;
  } catch (error) {
    if (error instanceof PlacementError) return false;
    throw error;
  }
}

/**
 * Replica sets for a new stream's shards when brokers have registered (a single node has none, and
 * its shards no replica sets), with the streams whose preferred leaders the balancing moved.
 */
function placeReplicas(
  state: MetadataState,
  shardCount: number,
  replicationFactor: number,
): { shards: number[][]; otherStreams: StreamRecord[] } | undefined {
  if (state.brokers.size === 0) return undefined;
  const existing: number[][] = [];
  const where: Array<{ stream: string; shard: number }> = [];
  // A canonical order: a member that reloaded its state from disk iterates its maps in another
  // order than one that built them command by command, and both must place alike.
  const streams = [...state.streams.values()].sort((a, b) => a.incarnation - b.incarnation);
  for (const stream of streams) {
    stream.shards.forEach((shard, i) => {
      if (shard.closedMs !== undefined || shard.replicas === undefined) return;
      existing.push([...shard.replicas]);
      where.push({ stream: stream.name, shard: i });
    });
  }
  const placement = placeShards({
    brokers: [...state.brokers.values()].map((b) => ({
      id: b.id,
      zone: b.zone,
      // A draining broker takes no new replicas and no leaderships.
      up: takesReplicas(b),
    })),
    existing,
    shardCount,
    replicationFactor,
  });
  const changed = new Map<string, StreamRecord>();
  for (const { index, leader } of placement.leaderChanges) {
    const at = where[index] as { stream: string; shard: number };
    const stream = changed.get(at.stream) ?? (state.streams.get(at.stream) as StreamRecord);
    const shards = [...stream.shards];
    const shard = shards[at.shard] as ShardRecord;
    const replicas = shard.replicas ?? [];
    shards[at.shard] = { ...shard, replicas: [leader, ...replicas.filter((id) => id !== leader)] };
    changed.set(at.stream, { ...stream, shards });
  }
  return { shards: placement.shards, otherStreams: [...changed.values()] };
}

function registerBroker(
  state: MetadataState,
  command: Extract<MetadataCommand, { type: 'registerBroker' }>,
): MetadataChange[] {
  const nextId = state.counters.nextBrokerId ?? 1;
  const byToken =
    command.id === undefined && command.token !== undefined
      ? [...state.brokers.values()].find((b) => b.token === command.token)
      : undefined;
  const id = command.id ?? byToken?.id ?? nextId;
  if (!Number.isSafeInteger(id) || id < 1 || id > MAX_BROKER_ID) {
    throw new InvalidArgumentError(
      `Broker id ${id} must be an integer from 1 to ${MAX_BROKER_ID}.`,
    );
  }
  const existing = state.brokers.get(id);
  if (
    existing?.token !== undefined &&
    command.token !== undefined &&
    existing.token !== command.token
  ) {
    // Another data folder: a broker whose disk was lost must never rejoin its groups under its
    // old id (it would vote without the entries it once acknowledged).
    throw new InvalidArgumentError(
      `Broker ${id} registered before from another data folder; a broker that lost its data joins under a new id (start it without --id).`,
    );
  }
  if (command.returning === true && existing === undefined) {
    throw new InvalidArgumentError(
      `Broker ${id} is not known to these coordinators: their metadata was lost, or the broker belongs to another cluster. Nothing will be placed on it.`,
    );
  }
  const record: BrokerRecord = {
    id,
    zone: command.zone,
    api: command.api,
    peer: command.peer,
    registeredMs: existing?.registeredMs ?? command.nowMs,
    state: 'up',
    stateSinceMs: existing?.state === 'up' ? existing.stateSinceMs : command.nowMs,
    ...(existing?.token !== undefined
      ? { token: existing.token }
      : command.token === undefined
        ? {}
        : { token: command.token }),
  };
  const changes: MetadataChange[] = [];
  if (
    existing === undefined ||
    existing.zone !== record.zone ||
    existing.api !== record.api ||
    existing.peer !== record.peer ||
    existing.state !== 'up'
  ) {
    changes.push({ kind: 'broker', id, value: record });
  }
  if (id >= nextId) {
    changes.push({ kind: 'counters', value: { ...state.counters, nextBrokerId: id + 1 } });
  }
  return changes;
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

/** `extra` more shards must fit the account's shard limit. */
function checkShardLimit(state: MetadataState, extra: number, context: MachineContext): void {
  const counted = totalOpenShards(state);
  if (counted + extra > context.limits.shardLimit) {
    throw new LimitExceededError(
      `This request would exceed the shard limit for the account ${context.accountId} in ` +
        `this region. Current shard count for the account: ${counted}. Limit: ` +
        `${context.limits.shardLimit}. Number of additional shards that would have resulted from ` +
        `this request: ${extra}.`,
    );
  }
}

/** Shards counted against the account's limit: open ones and children not yet opened. */
function totalOpenShards(state: MetadataState): number {
  let count = 0;
  for (const stream of state.streams.values()) {
    count += stream.shards.filter((s) => s.endingSequenceNumber === undefined).length;
  }
  return count;
}

function startReshard(
  state: MetadataState,
  command: Extract<MetadataCommand, { type: 'startReshard' }>,
  context: MachineContext,
): MetadataChange[] {
  const stream = requireStream(state, command.name, context);
  const request = command.request;
  const resharding = [...state.streams.values()].filter((s) => s.reshard !== undefined).length;
  checkCanReshard(stream, resharding, command.operation, context, command.automatic === true);
  let steps: ReshardStep[];
  if (request.kind === 'split') {
    steps = [planSplit(stream, request.shardId, request.hashKey, context)];
  } else if (request.kind === 'merge') {
    steps = [planMerge(stream, request.shardId, request.adjacentShardId, context)];
  } else {
    steps = planScale(stream, request.targetShardCount, context);
  }
  const first = steps[0];
  if (first === undefined) return [];
  checkShardLimit(state, peakExtraShards(steps), context);
  const base = {
    operation: command.operation,
    startedMs: command.nowMs,
    remaining: steps.slice(1),
    ...(request.kind === 'scale' ? { targetShardCount: request.targetShardCount } : {}),
  };
  try {
    return startNextStep(state, stream, first, base, command.nowMs);
  } catch (error) {
    if (!(error instanceof PlacementError)) throw error;
    throw new InvalidArgumentError(error.message, { cause: error });
  }
}

/**
 * Replica sets for a step's children: placed like a new stream's shards while enough brokers are
 * up, else on the first parent's replicas. A broker whose heartbeats are late (or one that is down
 * for a while) must not stop a split: the parent already lives on those brokers and keeps a
 * majority, so its children can too, and balancing can move them later.
 */
function placeChildren(
  state: MetadataState,
  stream: StreamRecord,
  count: number,
  parents: readonly ShardRecord[],
): ReadonlyArray<readonly number[]> | undefined {
  try {
    return placeReplicas(state, count, stream.replicationFactor)?.shards;
  } catch (error) {
    const fallback = parents[0]?.replicas;
    if (!(error instanceof PlacementError) || fallback === undefined) throw error;
    if (fallback.length < stream.replicationFactor) throw error;
    return Array.from({ length: count }, () => [...fallback]);
  }
}

/** Creates a step's children (placed like a new stream's shards) and names them in the intent. */
function startNextStep(
  state: MetadataState,
  stream: StreamRecord,
  step: ReshardStep,
  base: Omit<ReshardIntent, 'parents' | 'children'>,
  nowMs: number,
): MetadataChange[] {
  const counters = state.counters;
  // The children are placed like a new stream's shards, but the preferred leaders of shards
  // already serving are left alone: moving them would hand over leaderships (and pause writes)
  // at every step of a reshard.
  const next = startStep(
    stream,
    step,
    base,
    nowMs,
    counters.nextShardIncarnation,
    (count, parents) => placeChildren(state, stream, count, parents),
  );
  const childCount = next.shards.length - stream.shards.length;
  return [
    streamChange(next),
    {
      kind: 'counters',
      value: { ...counters, nextShardIncarnation: counters.nextShardIncarnation + childCount },
    },
  ];
}

function recordSealCommand(
  state: MetadataState,
  command: Extract<MetadataCommand, { type: 'recordSeal' }>,
): MetadataChange[] {
  const stream = state.streams.get(command.name);
  if (stream === undefined || stream.incarnation !== command.incarnation) return [];
  const sealed = recordSeal(stream, command.shardId, command.endingSequenceNumber, command.nowMs);
  if (sealed === undefined) return [];
  const intent = stream.reshard;
  if (!sealed.stepDone || intent === undefined) return [streamChange(sealed.stream)];
  const [next, ...rest] = intent.remaining;
  if (next !== undefined) {
    const { parents: _p, children: _c, ...base } = intent;
    try {
      return startNextStep(state, sealed.stream, next, { ...base, remaining: rest }, command.nowMs);
    } catch (error) {
      // The plan cannot go on (too few brokers up to place the next children, or a step that no
      // longer fits): what is done stays done, and the stream is ACTIVE again.
      if (!(error instanceof PlacementError) && !(error instanceof StaleStepError)) throw error;
    }
  }
  return [streamChange(finishReshard(sealed.stream))];
}

function streamChange(stream: StreamRecord): MetadataChange {
  return { kind: 'stream', name: stream.name, value: stream };
}

function groupChange(group: GroupRecord): MetadataChange {
  return { kind: 'group', application: group.application, value: group };
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
