import type { Clock } from '../common/clock.js';
import { ResourceInUseError } from '../common/errors.js';
import { GROUP_NAME_PATTERN, WORKER_ID_PATTERN } from '../common/limits.js';
import { Validator } from '../common/validation.js';
import {
  GroupInitialPosition,
  type CheckpointLeaseRequest,
  type DeleteGroupRequest,
  type DescribeGroupRequest,
  type DescribeGroupResponse,
  type GroupDescription,
  type GroupHeartbeatRequest,
  type GroupHeartbeatResponse,
  type Lease,
  type ListGroupsResponse,
  type ReleaseLeaseRequest,
  type TakeLeaseRequest,
  type TakeLeaseResponse,
} from '../gen/rheos/v1/control.js';
import { GroupLiveness } from './group-liveness.js';
import {
  leasesOf,
  parentsFinished,
  requireGroup,
  streamOfGroup,
  type LeaseView,
} from './groups.js';
import type { MetadataService } from './metadata-service.js';
import type { GroupRecord, GroupStart } from './model.js';

/**
 * The consumer-group operations of the control plane, served by the coordinator leader (or the
 * single node): heartbeats are answered from memory (group-liveness.ts) with the whole group, and
 * only takes, checkpoints, releases and the group's creation and deletion go through the
 * metadata machine. Whether a take is allowed (the lease is free, its owner expired, or the taker
 * steals it) is decided here, on the leader; the machine fences it by the counter.
 */

export interface GroupOperationsOptions {
  readonly metadata: Pick<MetadataService, 'state' | 'propose'> & {
    /** The leadership the calls are served under (a Raft term); absent: one, forever. */
    readonly leadershipEpoch?: () => number;
  };
  readonly clock: Clock;
  /** A worker silent this long loses its leases to whoever takes them. */
  readonly failoverMs?: number;
}

export class GroupOperations {
  private readonly liveness: GroupLiveness;

  constructor(private readonly options: GroupOperationsOptions) {
    this.liveness = new GroupLiveness(options.clock, options.failoverMs);
  }

  async heartbeat(request: GroupHeartbeatRequest): Promise<GroupHeartbeatResponse> {
    const v = checkWorker(request.application, request.workerId);
    const existing = this.options.metadata.state.groups.get(request.application);
    if (existing === undefined || request.streamName !== '') {
      v.streamName('streamName', request.streamName);
    }
    if (request.initialPosition === GroupInitialPosition.GROUP_INITIAL_POSITION_AT_TIMESTAMP) {
      v.range('initialTimestampMs', request.initialTimestampMs, 0, Number.MAX_SAFE_INTEGER);
    }
    v.throwIfInvalid();
    this.lead();
    if (
      existing === undefined ||
      (request.streamName !== '' && existing.streamName !== request.streamName)
    ) {
      // Creates the group, or refuses a second stream for it (ResourceInUseException).
      await this.options.metadata.propose({
        type: 'joinGroup',
        application: request.application,
        streamName: request.streamName,
        start: startOf(request),
        nowMs: this.options.clock.nowMs(),
      });
    }
    this.liveness.heartbeat(request.application, request.workerId);
    return { group: this.description(request.application) };
  }

  async take(request: TakeLeaseRequest): Promise<TakeLeaseResponse> {
    const v = checkWorker(request.application, request.workerId);
    v.required('shardId', request.shardId);
    v.range('expectedCounter', request.expectedCounter, 0, Number.MAX_SAFE_INTEGER);
    v.throwIfInvalid();
    this.lead();
    const lease = this.lease(request.application, request.shardId);
    if (
      lease?.owner !== undefined &&
      lease.owner !== request.workerId &&
      !request.steal &&
      !this.liveness.isExpired(request.application, lease.owner)
    ) {
      throw new ResourceInUseError(
        `The lease of consumer group ${request.application} on ${request.shardId} is held by worker ${lease.owner}, which is alive; steal it to take it.`,
      );
    }
    this.liveness.heartbeat(request.application, request.workerId);
    await this.options.metadata.propose({
      type: 'takeLease',
      application: request.application,
      shardId: request.shardId,
      worker: request.workerId,
      expectedCounter: request.expectedCounter,
    });
    const taken = this.lease(request.application, request.shardId) as LeaseView;
    return { lease: this.leaseMessage(request.application, taken, [taken]) };
  }

  async checkpoint(request: CheckpointLeaseRequest): Promise<void> {
    const v = checkWorker(request.application, request.workerId);
    v.required('shardId', request.shardId);
    v.required('sequenceNumber', request.sequenceNumber);
    v.throwIfInvalid();
    this.lead();
    this.liveness.heartbeat(request.application, request.workerId);
    await this.options.metadata.propose({
      type: 'checkpointLease',
      application: request.application,
      shardId: request.shardId,
      worker: request.workerId,
      counter: request.counter,
      sequenceNumber: request.sequenceNumber,
      subSequenceNumber: request.subSequenceNumber,
    });
  }

  async release(request: ReleaseLeaseRequest): Promise<void> {
    const v = checkWorker(request.application, request.workerId);
    v.required('shardId', request.shardId);
    v.throwIfInvalid();
    this.lead();
    await this.options.metadata.propose({
      type: 'releaseLease',
      application: request.application,
      shardId: request.shardId,
      worker: request.workerId,
      counter: request.counter,
    });
  }

  describe(request: DescribeGroupRequest): DescribeGroupResponse {
    checkApplication(new Validator(), request.application).throwIfInvalid();
    this.lead();
    return { group: this.description(request.application) };
  }

  list(): ListGroupsResponse {
    return { applications: [...this.options.metadata.state.groups.keys()].sort() };
  }

  async delete(request: DeleteGroupRequest): Promise<void> {
    checkApplication(new Validator(), request.application).throwIfInvalid();
    await this.options.metadata.propose({ type: 'deleteGroup', application: request.application });
    this.liveness.forget(request.application);
  }

  private lead(): void {
    this.liveness.lead(this.options.metadata.leadershipEpoch?.() ?? 0);
  }

  private lease(application: string, shardId: string): LeaseView | undefined {
    const state = this.options.metadata.state;
    const group = requireGroup(state, application);
    return leasesOf(group, streamOfGroup(state, group)).find((l) => l.shardId === shardId);
  }

  private description(application: string): GroupDescription {
    const state = this.options.metadata.state;
    const group = requireGroup(state, application);
    const leases = leasesOf(group, streamOfGroup(state, group));
    return {
      application,
      streamName: group.streamName,
      createdMs: group.createdMs,
      initialPosition: positionOf(group),
      initialTimestampMs: group.start.type === 'AT_TIMESTAMP' ? group.start.timestampMs : 0,
      leases: leases.map((l) => this.leaseMessage(application, l, leases)),
      liveWorkers: this.liveness.liveWorkers(application),
      failoverMs: this.liveness.failoverMs,
    };
  }

  private leaseMessage(application: string, lease: LeaseView, all: readonly LeaseView[]): Lease {
    return {
      shardId: lease.shardId,
      owner: lease.owner ?? '',
      counter: lease.counter,
      checkpoint: lease.checkpoint,
      checkpointSubSequenceNumber: lease.checkpointSubSequenceNumber,
      ownerSwitchesSinceCheckpoint: lease.ownerSwitchesSinceCheckpoint,
      parentShardIds: [...lease.parentShardIds],
      endingSequenceNumber: lease.endingSequenceNumber ?? '',
      expired: lease.owner !== undefined && this.liveness.isExpired(application, lease.owner),
      ready: lease.checkpoint !== 'SHARD_END' && parentsFinished(lease, all),
    };
  }
}

function checkApplication(v: Validator, application: string): Validator {
  return v.pattern('application', application, GROUP_NAME_PATTERN, GROUP_NAME_PATTERN.source);
}

function checkWorker(application: string, workerId: string): Validator {
  return checkApplication(new Validator(), application).pattern(
    'workerId',
    workerId,
    WORKER_ID_PATTERN,
    WORKER_ID_PATTERN.source,
  );
}

function startOf(request: GroupHeartbeatRequest): GroupStart {
  switch (request.initialPosition) {
    case GroupInitialPosition.GROUP_INITIAL_POSITION_LATEST:
      return { type: 'LATEST' };
    case GroupInitialPosition.GROUP_INITIAL_POSITION_AT_TIMESTAMP:
      return { type: 'AT_TIMESTAMP', timestampMs: request.initialTimestampMs };
    default:
      return { type: 'TRIM_HORIZON' };
  }
}

function positionOf(group: GroupRecord): GroupInitialPosition {
  switch (group.start.type) {
    case 'LATEST':
      return GroupInitialPosition.GROUP_INITIAL_POSITION_LATEST;
    case 'AT_TIMESTAMP':
      return GroupInitialPosition.GROUP_INITIAL_POSITION_AT_TIMESTAMP;
    case 'TRIM_HORIZON':
      return GroupInitialPosition.GROUP_INITIAL_POSITION_TRIM_HORIZON;
  }
}
