import {
  InvalidArgumentError,
  LeaseLostError,
  LimitExceededError,
  ResourceInUseError,
  ResourceNotFoundError,
} from '../common/errors.js';
import { GROUPS_MAX } from '../common/limits.js';
import { comparePositions, parseSequenceNumber } from '../common/sequence-number.js';
import {
  isListed,
  type GroupRecord,
  type GroupStart,
  type LeaseRecord,
  type MetadataState,
  type ShardRecord,
  type StreamRecord,
} from './model.js';

/**
 * Consumer groups (what the KCL keeps in DynamoDB), as pure steps of the metadata machine. Only
 * what must survive a coordinator failover is here, and only changes of owner and checkpoints
 * are commands: whether a lease's owner is still alive is the coordinator leader's memory of
 * heartbeats (group-liveness.ts), which decides whether a take is allowed before proposing it.
 * What the machine enforces is the fencing: every take, checkpoint and release names the lease
 * counter it saw, and one that saw an older counter is refused with LeaseLostException.
 */

/** A lease with what a worker needs to know of its shard. */
export interface LeaseView extends LeaseRecord {
  readonly shardIncarnation: number;
  readonly parentShardIds: readonly string[];
  /** The shard was closed by a split or merge: it ends at `endingSequenceNumber`. */
  readonly endingSequenceNumber?: string;
}

export function requireGroup(state: MetadataState, application: string): GroupRecord {
  const group = state.groups.get(application);
  if (group === undefined) {
    throw new ResourceNotFoundError(`Consumer group ${application} not found.`);
  }
  return group;
}

/** The group's stream, as long as it is the stream the group was created on. */
export function streamOfGroup(state: MetadataState, group: GroupRecord): StreamRecord {
  const stream = state.streams.get(group.streamName);
  if (stream === undefined || stream.incarnation !== group.streamIncarnation) {
    throw new ResourceNotFoundError(
      `Stream ${group.streamName} of consumer group ${group.application} was deleted; delete the group and create it again.`,
    );
  }
  return stream;
}

/** A new group on `stream`, or the existing one if it reads the same stream. */
export function joinedGroup(
  state: MetadataState,
  application: string,
  stream: StreamRecord,
  start: GroupStart,
  nowMs: number,
): GroupRecord | undefined {
  const existing = state.groups.get(application);
  if (existing !== undefined) {
    if (existing.streamName !== stream.name || existing.streamIncarnation !== stream.incarnation) {
      throw new ResourceInUseError(
        `Consumer group ${application} already reads stream ${existing.streamName}; a group reads one stream.`,
      );
    }
    return undefined;
  }
  if (state.groups.size >= GROUPS_MAX) {
    throw new LimitExceededError(
      `There are already ${GROUPS_MAX} consumer groups, the most allowed.`,
    );
  }
  return {
    application,
    streamName: stream.name,
    streamIncarnation: stream.incarnation,
    createdMs: nowMs,
    start,
    leases: [],
  };
}

/**
 * The lease a listed shard has before any worker touched it: nobody's, at the group's start. A
 * shard created after the group (a child of a reshard) starts at TRIM_HORIZON, so nothing written
 * to it is skipped; with LATEST, shards already closed when the group was created count as read.
 */
export function freshLease(group: GroupRecord, shard: ShardRecord): LeaseRecord {
  let checkpoint: string = group.start.type;
  if (shard.createdMs >= group.createdMs) checkpoint = 'TRIM_HORIZON';
  else if (group.start.type === 'LATEST' && shard.endingSequenceNumber !== undefined) {
    checkpoint = 'SHARD_END';
  }
  return {
    shardId: shard.shardId,
    counter: 0,
    checkpoint,
    checkpointSubSequenceNumber: 0,
    ownerSwitchesSinceCheckpoint: 0,
  };
}

/** Every listed shard's lease, in shard-id order. */
export function leasesOf(group: GroupRecord, stream: StreamRecord): LeaseView[] {
  const stored = new Map(group.leases.map((l) => [l.shardId, l]));
  const listed = new Set(stream.shards.filter(isListed).map((s) => s.shardId));
  return stream.shards.filter(isListed).map((shard) => ({
    ...(stored.get(shard.shardId) ?? freshLease(group, shard)),
    shardIncarnation: shard.incarnation,
    // Parents that retention removed are finished by definition.
    parentShardIds: [shard.parentShardId, shard.adjacentParentShardId].filter(
      (p): p is string => p !== undefined && listed.has(p),
    ),
    ...(shard.endingSequenceNumber === undefined
      ? {}
      : { endingSequenceNumber: shard.endingSequenceNumber }),
  }));
}

/** Whether every parent of the lease's shard has been read to its end (children wait for it). */
export function parentsFinished(lease: LeaseView, leases: readonly LeaseView[]): boolean {
  return lease.parentShardIds.every(
    (p) => leases.find((l) => l.shardId === p)?.checkpoint === 'SHARD_END',
  );
}

export interface LeaseTake {
  readonly shardId: string;
  readonly worker: string;
  readonly expectedCounter: number;
}

/** The group with `worker` holding the lease; refused if the counter moved or the shard waits. */
export function withTakenLease(
  group: GroupRecord,
  stream: StreamRecord,
  take: LeaseTake,
): GroupRecord {
  const leases = leasesOf(group, stream);
  const lease = requireLease(group, leases, take.shardId);
  if (lease.counter !== take.expectedCounter) {
    throw new LeaseLostError(
      `The lease of consumer group ${group.application} on ${take.shardId} is at counter ${lease.counter}, not ${take.expectedCounter}: another worker changed it.`,
    );
  }
  if (lease.checkpoint === 'SHARD_END') {
    throw new InvalidArgumentError(
      `Shard ${take.shardId} has been read to its end by consumer group ${group.application}; its lease cannot be taken.`,
    );
  }
  if (!parentsFinished(lease, leases)) {
    throw new InvalidArgumentError(
      `Shard ${take.shardId} waits for its parents (${lease.parentShardIds.join(', ')}) to be read to their end by consumer group ${group.application}.`,
    );
  }
  const switched = lease.owner !== undefined && lease.owner !== take.worker;
  return withLease(group, stream, {
    ...recordOf(lease),
    owner: take.worker,
    counter: lease.counter + 1,
    ownerSwitchesSinceCheckpoint: lease.ownerSwitchesSinceCheckpoint + (switched ? 1 : 0),
  });
}

export interface LeaseCheckpoint {
  readonly shardId: string;
  readonly worker: string;
  readonly counter: number;
  /** A sequence number of the shard, or SHARD_END once the shard has been read to its end. */
  readonly sequenceNumber: string;
  readonly subSequenceNumber: number;
}

/** The group with the lease's checkpoint moved; only its holder, at its counter, may. */
export function withCheckpoint(
  group: GroupRecord,
  stream: StreamRecord,
  checkpoint: LeaseCheckpoint,
): GroupRecord {
  const leases = leasesOf(group, stream);
  const lease = requireHeld(group, leases, checkpoint);
  const what = `Checkpoint ${checkpoint.sequenceNumber} of consumer group ${group.application} on ${checkpoint.shardId}`;
  if (!Number.isSafeInteger(checkpoint.subSequenceNumber) || checkpoint.subSequenceNumber < 0) {
    throw new InvalidArgumentError(`${what}: the sub-sequence number must be 0 or more.`);
  }
  if (checkpoint.sequenceNumber === 'SHARD_END') {
    if (lease.endingSequenceNumber === undefined) {
      throw new InvalidArgumentError(`${what}: the shard is open; it has no end to checkpoint.`);
    }
  } else {
    const parts = parseSequenceNumber(checkpoint.sequenceNumber);
    if (parts === undefined || parts.incarnation !== lease.shardIncarnation) {
      throw new InvalidArgumentError(`${what}: not a sequence number of that shard.`);
    }
    const end =
      lease.endingSequenceNumber === undefined
        ? undefined
        : parseSequenceNumber(lease.endingSequenceNumber);
    if (end !== undefined && comparePositions(parts, end) > 0) {
      throw new InvalidArgumentError(
        `${what}: beyond the shard's end (${lease.endingSequenceNumber}).`,
      );
    }
  }
  return withLease(group, stream, {
    ...recordOf(lease),
    checkpoint: checkpoint.sequenceNumber,
    checkpointSubSequenceNumber:
      checkpoint.sequenceNumber === 'SHARD_END' ? 0 : checkpoint.subSequenceNumber,
    ownerSwitchesSinceCheckpoint: 0,
  });
}

export interface LeaseRelease {
  readonly shardId: string;
  readonly worker: string;
  readonly counter: number;
}

/** The group with the lease free again (a worker shutting down, or giving a lease up). */
export function withReleasedLease(
  group: GroupRecord,
  stream: StreamRecord,
  release: LeaseRelease,
): GroupRecord {
  const leases = leasesOf(group, stream);
  const lease = requireHeld(group, leases, release);
  const { owner: _released, ...rest } = recordOf(lease);
  return withLease(group, stream, { ...rest, counter: lease.counter + 1 });
}

function requireLease(
  group: GroupRecord,
  leases: readonly LeaseView[],
  shardId: string,
): LeaseView {
  const lease = leases.find((l) => l.shardId === shardId);
  if (lease === undefined) {
    throw new ResourceNotFoundError(
      `Shard ${shardId} is not a shard of stream ${group.streamName} (consumer group ${group.application}).`,
    );
  }
  return lease;
}

function requireHeld(
  group: GroupRecord,
  leases: readonly LeaseView[],
  held: { readonly shardId: string; readonly worker: string; readonly counter: number },
): LeaseView {
  const lease = requireLease(group, leases, held.shardId);
  if (lease.owner !== held.worker || lease.counter !== held.counter) {
    throw new LeaseLostError(
      `Worker ${held.worker} no longer holds the lease of consumer group ${group.application} on ${held.shardId}` +
        (lease.owner === undefined
          ? ' (it is free).'
          : lease.owner === held.worker
            ? ` (its counter is ${lease.counter}, not ${held.counter}).`
            : ` (worker ${lease.owner} holds it).`),
    );
  }
  return lease;
}

function recordOf(lease: LeaseView): LeaseRecord {
  return {
    shardId: lease.shardId,
    ...(lease.owner === undefined ? {} : { owner: lease.owner }),
    counter: lease.counter,
    checkpoint: lease.checkpoint,
    checkpointSubSequenceNumber: lease.checkpointSubSequenceNumber,
    ownerSwitchesSinceCheckpoint: lease.ownerSwitchesSinceCheckpoint,
  };
}

/** The group with `lease` stored, and leases of shards the stream no longer lists dropped. */
function withLease(group: GroupRecord, stream: StreamRecord, lease: LeaseRecord): GroupRecord {
  const listed = new Set(stream.shards.filter(isListed).map((s) => s.shardId));
  const leases = group.leases.filter((l) => l.shardId !== lease.shardId && listed.has(l.shardId));
  leases.push(lease);
  leases.sort((a, b) => (a.shardId < b.shardId ? -1 : a.shardId > b.shardId ? 1 : 0));
  return { ...group, leases };
}
