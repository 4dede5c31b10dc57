import {
  InvalidArgumentError,
  ResourceInUseError,
  ResourceNotFoundError,
} from '../common/errors.js';
import {
  replicaIdIn,
  takesReplicas,
  type MetadataState,
  type MoveReason,
  type ReplicaMove,
  type ShardRecord,
  type StreamRecord,
} from './model.js';

/**
 * Replica moves in the metadata: starting one adds the target to the shard's replicas (so its
 * broker opens an empty replica that the leader then fills) and records the move; finishing one
 * drops the source (whose broker then deletes its copy), aborting one drops the target; either
 * retires the replica id that left, so a broker joining the group again comes back as a new
 * member (see replica-id.ts). The
 * membership changes themselves happen in the shard's Raft log, driven by the coordinator leader
 * (elasticity-driver.ts); the metadata says where replicas should be, the log who votes.
 */

export interface MoveRef {
  readonly name: string;
  readonly incarnation: number;
  readonly shardId: string;
  readonly from: number;
  readonly to: number;
}

export interface MoveInFlight {
  readonly stream: StreamRecord;
  readonly shard: ShardRecord;
  readonly move: ReplicaMove;
}

export function movesInFlight(state: MetadataState): MoveInFlight[] {
  const moves: MoveInFlight[] = [];
  for (const stream of [...state.streams.values()].sort((a, b) => a.incarnation - b.incarnation)) {
    for (const shard of stream.shards) {
      if (shard.move !== undefined) moves.push({ stream, shard, move: shard.move });
    }
  }
  return moves;
}

export function withStartedMove(
  state: MetadataState,
  ref: MoveRef & { readonly reason: MoveReason; readonly nowMs: number },
): StreamRecord {
  const { stream, shard, index } = locate(state, ref);
  const replicas = shard.replicas ?? [];
  if (shard.move !== undefined) {
    throw new ResourceInUseError(`Shard ${shard.shardId} is already moving a replica.`);
  }
  if (shard.pending === true) {
    throw new ResourceInUseError(`Shard ${shard.shardId} is not open yet.`);
  }
  if (!replicas.includes(ref.from)) {
    throw new InvalidArgumentError(`Broker ${ref.from} holds no replica of ${shard.shardId}.`);
  }
  if (replicas.includes(ref.to)) {
    throw new InvalidArgumentError(`Broker ${ref.to} already holds a replica of ${shard.shardId}.`);
  }
  const target = state.brokers.get(ref.to);
  if (target === undefined || !takesReplicas(target)) {
    throw new InvalidArgumentError(`Broker ${ref.to} is not up, or is draining.`);
  }
  const moved: ShardRecord = {
    ...shard,
    bootstrapReplicas: shard.bootstrapReplicas ?? replicas,
    replicas: [...replicas, ref.to],
    move: { from: ref.from, to: ref.to, reason: ref.reason, startedMs: ref.nowMs },
  };
  return withShard(stream, index, moved);
}

/** The move is done in the log: the source leaves the replicas. Undefined: no such move (stale). */
export function withFinishedMove(state: MetadataState, ref: MoveRef): StreamRecord | undefined {
  const found = findMove(state, ref);
  if (found === undefined) return undefined;
  const { stream, shard, index } = found;
  const { move: _done, ...rest } = shard;
  const replicas = (shard.replicas ?? []).filter((id) => id !== ref.from);
  // The target takes the source's place in the order (the first replica is the preferred leader).
  const ordered =
    shard.replicas?.[0] === ref.from
      ? [ref.to, ...replicas.filter((id) => id !== ref.to)]
      : replicas;
  return withShard(stream, index, {
    ...rest,
    replicas: ordered,
    retiredReplicas: [...(shard.retiredReplicas ?? []), replicaIdIn(shard, ref.from)],
  });
}

/**
 * The move was given up (its target went down or is draining) and the target is out of the
 * group's membership again: the target leaves the replicas (a later move there uses its next
 * replica id).
 */
export function withAbortedMove(state: MetadataState, ref: MoveRef): StreamRecord | undefined {
  const found = findMove(state, ref);
  if (found === undefined) return undefined;
  const { stream, shard, index } = found;
  const { move: _aborted, ...rest } = shard;
  return withShard(stream, index, {
    ...rest,
    replicas: (shard.replicas ?? []).filter((id) => id !== ref.to),
    retiredReplicas: [...(shard.retiredReplicas ?? []), replicaIdIn(shard, ref.to)],
  });
}

function findMove(
  state: MetadataState,
  ref: MoveRef,
): { stream: StreamRecord; shard: ShardRecord; index: number } | undefined {
  const stream = state.streams.get(ref.name);
  if (stream === undefined || stream.incarnation !== ref.incarnation) return undefined;
  const index = stream.shards.findIndex((s) => s.shardId === ref.shardId);
  const shard = stream.shards[index];
  if (shard?.move === undefined) return undefined;
  if (shard.move.from !== ref.from || shard.move.to !== ref.to) return undefined;
  return { stream, shard, index };
}

function locate(
  state: MetadataState,
  ref: MoveRef,
): { stream: StreamRecord; shard: ShardRecord; index: number } {
  const stream = state.streams.get(ref.name);
  if (stream === undefined || stream.incarnation !== ref.incarnation) {
    throw new ResourceNotFoundError(`Stream ${ref.name} not found.`);
  }
  const index = stream.shards.findIndex((s) => s.shardId === ref.shardId);
  const shard = stream.shards[index];
  if (shard === undefined) throw new ResourceNotFoundError(`Shard ${ref.shardId} not found.`);
  return { stream, shard, index };
}

function withShard(stream: StreamRecord, index: number, shard: ShardRecord): StreamRecord {
  const shards = [...stream.shards];
  shards[index] = shard;
  return { ...stream, shards };
}
