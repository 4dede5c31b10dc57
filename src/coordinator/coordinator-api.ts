import type { Clock } from '../common/clock.js';
import { InvalidArgumentError, NotLeaderError, ServiceUnavailableError } from '../common/errors.js';
import type { UnaryMethod } from '../common/grpc-call.js';
import { Validator } from '../common/validation.js';
import { ControlPlaneServiceService as Control } from '../gen/rheos/v1/control.js';
import {
  CoordinatorServiceService as Coordinator,
  type ClusterBroker,
  type DescribeClusterResponse,
  type GetMetadataResponse,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type RegisterBrokerRequest,
  type RegisterBrokerResponse,
} from '../gen/rheos/v1/coordinator.js';
import type { CoordinatorApi } from '../server/grpc-server.js';
import type { CallContext, ControlApi } from '../server/native-api.js';
import { assignmentsFor } from './assignments.js';
import type { ControlPlane } from './control-plane.js';
import type { CoordinatorLink } from './coordinator-link.js';
import type { FailureDetector } from './failure-detector.js';
import type { MetadataReplica } from './metadata-replica.js';
import { recordsOf } from './metadata-records.js';
import type { ReplicaReports } from './replica-reports.js';
import { movesInFlight } from './replica-moves.js';

/**
 * What one coordinator serves. Reads (control-plane reads, GetMetadata) are answered by any
 * coordinator after a ReadIndex round, so they reflect every change acknowledged before them.
 * Changes, registrations and heartbeats (which feed the leader's failure detector) run on the
 * leader: a follower forwards them once, marked, and a coordinator that receives a forwarded call
 * it cannot serve answers NOT_LEADER with its hint, which the forwarding link follows.
 */

export interface CoordinatorServicesOptions {
  readonly replica: MetadataReplica;
  readonly controlPlane: ControlPlane;
  readonly clusterId: string;
  readonly clock: Clock;
  readonly heartbeatIntervalMs: number;
  readonly detector: FailureDetector;
  readonly reports: ReplicaReports;
  /** To the other coordinators, for forwarding. */
  readonly link: CoordinatorLink;
  /** Every coordinator's id and client address. */
  readonly coordinators: ReadonlyMap<number, string>;
  /** The last step the move driver saw of each move in flight, by shard incarnation. */
  readonly moveSteps?: () => ReadonlyMap<number, string>;
}

export interface CoordinatorServices {
  readonly coordinator: CoordinatorApi;
  readonly control: ControlApi;
}

export function coordinatorServices(options: CoordinatorServicesOptions): CoordinatorServices {
  const { replica, controlPlane: cp, link } = options;

  /** Runs `local` on the leader, or forwards the call to the leader this coordinator knows. */
  const onLeader = async <Req, Res>(
    method: UnaryMethod<Req, Res>,
    request: Req,
    context: CallContext | undefined,
    idempotent: boolean,
    local: () => Promise<Res>,
  ): Promise<Res> => {
    if (replica.isLeader) {
      try {
        return await local();
      } catch (error) {
        // Leadership moved between the check and the proposal: nothing was proposed here.
        if (!(error instanceof NotLeaderError)) throw error;
      }
    }
    const lead = replica.leaderId();
    const endpoint = lead === undefined ? undefined : options.coordinators.get(lead);
    if (context?.forwarded === true || endpoint === undefined) throw replica.notLeader();
    // Few, short attempts: the caller's own link retries, so hops do not multiply into minutes.
    return link.call(method, request, idempotent, {
      forwarded: true,
      endpoint,
      maxAttempts: 3,
      deadlineMs: 3_000,
    });
  };

  /** Runs a read after this coordinator has applied everything committed before it began. */
  const linearizable = async <Res>(read: () => Res | Promise<Res>): Promise<Res> => {
    try {
      await replica.read();
    } catch (error) {
      if (error instanceof NotLeaderError) {
        throw new ServiceUnavailableError('No coordinator leader is known yet; retry shortly.', {
          cause: error,
        });
      }
      throw error;
    }
    return read();
  };

  const checkCluster = (clusterId: string): void => {
    if (clusterId !== options.clusterId) {
      throw new InvalidArgumentError(
        `This coordinator belongs to cluster ${JSON.stringify(options.clusterId)}, not ${JSON.stringify(clusterId)}.`,
      );
    }
  };

  const registerLocally = async (
    request: RegisterBrokerRequest,
  ): Promise<RegisterBrokerResponse> => {
    const token = request.registrationToken === '' ? undefined : request.registrationToken;
    const changes = await replica.propose({
      type: 'registerBroker',
      ...(request.brokerId === undefined ? {} : { id: request.brokerId }),
      zone: request.zone,
      api: request.apiEndpoint,
      peer: request.peerEndpoint,
      nowMs: options.clock.nowMs(),
      ...(token === undefined ? {} : { token }),
      ...(request.returning ? { returning: true } : {}),
    });
    const registered = changes.find((c) => c.kind === 'broker');
    // Nothing changed (the same broker again): its id is the one its token or request names.
    const brokerId =
      registered?.kind === 'broker'
        ? registered.id
        : (request.brokerId ??
          [...replica.state.brokers.values()].find((b) => token !== undefined && b.token === token)
            ?.id);
    if (brokerId === undefined) throw new Error('registerBroker changed no broker');
    options.detector.heartbeat(brokerId, options.clock.monotonicMs());
    return { brokerId, heartbeatIntervalMs: options.heartbeatIntervalMs };
  };

  const heartbeatLocally = (request: HeartbeatRequest): HeartbeatResponse => {
    if (!replica.state.brokers.has(request.brokerId)) {
      throw new InvalidArgumentError(
        `Broker ${request.brokerId} is not registered; register first.`,
      );
    }
    const nowMs = options.clock.monotonicMs();
    if (options.reports.record(request.brokerId, request, request.replicas, nowMs)) {
      options.detector.heartbeat(request.brokerId, nowMs);
    }
    return { metadataVersion: replica.brokerVersion };
  };

  const describeLocally = async (): Promise<DescribeClusterResponse> => {
    await replica.read();
    const state = replica.state;
    const nowMs = options.clock.monotonicMs();
    const leaderId = replica.leaderId();
    const brokers: ClusterBroker[] = [...state.brokers.values()]
      .sort((a, b) => a.id - b.id)
      .map((b) => {
        const age = options.reports.ageMs(b.id, nowMs);
        return {
          brokerId: b.id,
          zone: b.zone,
          apiEndpoint: b.api,
          state: b.state,
          draining: b.draining === true,
          ...(age === undefined ? {} : { lastHeartbeatAgeMs: age }),
          replicas: assignmentsFor(state, b.id).map((a) => ({
            streamName: a.streamName,
            shardId: a.shardId,
            shardIncarnation: a.shardIncarnation,
            reportedRole: options.reports.roleOf(b.id, a.shardIncarnation, nowMs),
          })),
        };
      });
    return {
      metadataVersion: replica.brokerVersion,
      coordinators: [...options.coordinators]
        .sort(([a], [b]) => a - b)
        .map(([id, endpoint]) => ({
          coordinatorId: id,
          apiEndpoint: endpoint,
          leader: id === leaderId,
        })),
      brokers,
      moves: movesInFlight(state).map(({ stream, shard, move }) => ({
        streamName: stream.name,
        shardId: shard.shardId,
        fromBroker: move.from,
        toBroker: move.to,
        reason: move.reason,
        ageMs: Math.max(0, options.clock.nowMs() - move.startedMs),
        step: options.moveSteps?.().get(shard.incarnation) ?? '',
      })),
    };
  };

  const coordinator: CoordinatorApi = {
    registerBroker: async (request, context) => {
      checkCluster(request.clusterId);
      new Validator()
        .required('apiEndpoint', request.apiEndpoint)
        .required('peerEndpoint', request.peerEndpoint)
        .throwIfInvalid();
      return onLeader(Coordinator.registerBroker, request, context, true, () =>
        registerLocally(request),
      );
    },
    heartbeat: (request, context) => {
      checkCluster(request.clusterId);
      return onLeader(Coordinator.heartbeat, request, context, true, async () =>
        heartbeatLocally(request),
      );
    },
    getMetadata: (request): Promise<GetMetadataResponse> => {
      checkCluster(request.clusterId);
      return linearizable(() => ({
        version: replica.brokerVersion,
        recordsJson: Buffer.from(
          JSON.stringify(recordsOf(replica.state, { groups: false })),
          'utf8',
        ),
      }));
    },
    describeCluster: (request, context) =>
      onLeader(Coordinator.describeCluster, request, context, true, describeLocally),
    setBrokerDraining: (request, context) =>
      onLeader(Coordinator.setBrokerDraining, request, context, true, async () => {
        await replica.propose({
          type: 'setBrokerDraining',
          id: request.brokerId,
          draining: request.draining,
        });
        return {};
      }),
  };

  /** A change: on the leader, through the metadata state machine. */
  const change = <Req, Res>(
    method: UnaryMethod<Req, Res>,
    run: (request: Req) => Promise<void>,
  ) => {
    return async (request: Req, context?: CallContext): Promise<void> => {
      await onLeader(method, request, context, false, async () => {
        await run(request);
        return {} as Res;
      });
    };
  };

  const control: ControlApi = {
    createStream: change(Control.createStream, (r) => cp.createStream(r)),
    deleteStream: change(Control.deleteStream, (r) => cp.deleteStream(r)),
    addTagsToStream: change(Control.addTagsToStream, (r) => cp.addTagsToStream(r)),
    removeTagsFromStream: change(Control.removeTagsFromStream, (r) => cp.removeTagsFromStream(r)),
    increaseStreamRetentionPeriod: change(Control.increaseStreamRetentionPeriod, (r) =>
      cp.increaseStreamRetentionPeriod(r),
    ),
    decreaseStreamRetentionPeriod: change(Control.decreaseStreamRetentionPeriod, (r) =>
      cp.decreaseStreamRetentionPeriod(r),
    ),
    updateStreamMode: change(Control.updateStreamMode, (r) => cp.updateStreamMode(r)),
    splitShard: change(Control.splitShard, (r) => cp.splitShard(r)),
    mergeShards: change(Control.mergeShards, (r) => cp.mergeShards(r)),
    updateShardCount: (request, context) =>
      onLeader(Control.updateShardCount, request, context, false, () =>
        cp.updateShardCount(request),
      ),
    describeStream: (r) => linearizable(() => cp.describeStream(r)),
    describeStreamSummary: (r) => linearizable(() => cp.describeStreamSummary(r)),
    listStreams: (r) => linearizable(() => cp.listStreams(r)),
    listShards: (r) => linearizable(() => cp.listShards(r)),
    listTagsForStream: (r) => linearizable(() => cp.listTagsForStream(r)),
    describeLimits: () => linearizable(() => cp.describeLimits()),
    registerStreamConsumer: (request, context) =>
      onLeader(Control.registerStreamConsumer, request, context, false, () =>
        cp.registerStreamConsumer(request),
      ),
    describeStreamConsumer: (r) => linearizable(() => cp.describeStreamConsumer(r)),
    listStreamConsumers: (r) => linearizable(() => cp.listStreamConsumers(r)),
    deregisterStreamConsumer: change(Control.deregisterStreamConsumer, (r) =>
      cp.deregisterStreamConsumer(r),
    ),
    // Groups are served by the leader: it alone has heard the workers' heartbeats.
    groupHeartbeat: (request, context) =>
      onLeader(Control.groupHeartbeat, request, context, true, () => cp.groups.heartbeat(request)),
    takeLease: (request, context) =>
      onLeader(Control.takeLease, request, context, false, () => cp.groups.take(request)),
    checkpointLease: change(Control.checkpointLease, (r) => cp.groups.checkpoint(r)),
    releaseLease: change(Control.releaseLease, (r) => cp.groups.release(r)),
    describeGroup: (request, context) =>
      onLeader(Control.describeGroup, request, context, true, async () =>
        cp.groups.describe(request),
      ),
    listGroups: () => linearizable(() => cp.groups.list()),
    deleteGroup: change(Control.deleteGroup, (r) => cp.groups.delete(r)),
  };

  return { coordinator, control };
}
