import { ChannelPool, unaryCall, type UnaryMethod } from '../common/grpc-call.js';
import { NotLeaderError, RheosError } from '../common/errors.js';
import {
  ClusterServiceService as Cluster,
  type MoveReplicaResponse,
} from '../gen/rheos/v1/cluster.js';
import { ReplicaRole } from '../gen/rheos/v1/coordinator.js';
import { replicaIdIn, type MetadataState, type ShardRecord } from './model.js';
import type { ReplicaReports } from './replica-reports.js';

/**
 * Calls the coordinator makes on the broker leading a shard: SealShard (a split or merge) and
 * MoveReplica (a step of a replica move). Each goes to the replica the heartbeats say leads,
 * follows NOT_LEADER hints, then tries the other replicas in turn.
 */

export interface ShardLeaderCallsOptions {
  readonly clusterId: string;
  readonly state: () => MetadataState;
  readonly reports: ReplicaReports;
  readonly monotonicMs: () => number;
  /** Per call. */
  readonly deadlineMs?: number;
}

export class ShardLeaderCalls {
  private readonly channels = new ChannelPool();

  constructor(private readonly options: ShardLeaderCallsOptions) {}

  async seal(parent: ShardRecord, children: readonly string[]): Promise<string> {
    const response = await this.onLeader(parent, Cluster.sealShard, {
      clusterId: this.options.clusterId,
      shardIncarnation: parent.incarnation,
      childShardIds: [...children],
    });
    return response.endingSequenceNumber;
  }

  moveReplica(
    shard: ShardRecord,
    from: number,
    to: number,
    abort: boolean,
  ): Promise<MoveReplicaResponse> {
    return this.onLeader(shard, Cluster.moveReplica, {
      clusterId: this.options.clusterId,
      shardIncarnation: shard.incarnation,
      fromBroker: from,
      toBroker: to,
      fromReplica: replicaIdIn(shard, from),
      toReplica: replicaIdIn(shard, to),
      abort,
    });
  }

  private async onLeader<Req, Res>(
    shard: ShardRecord,
    method: UnaryMethod<Req, Res>,
    request: Req,
  ): Promise<Res> {
    const { state, reports, monotonicMs } = this.options;
    const brokers = state().brokers;
    const replicas = shard.replicas ?? [];
    const now = monotonicMs();
    const leaderFirst = [...replicas].sort(
      (a, b) =>
        Number(reports.roleOf(b, shard.incarnation, now) === ReplicaRole.REPLICA_ROLE_LEADER) -
        Number(reports.roleOf(a, shard.incarnation, now) === ReplicaRole.REPLICA_ROLE_LEADER),
    );
    const endpoints = leaderFirst
      .map((id) => brokers.get(id)?.api)
      .filter((e): e is string => e !== undefined);
    let lastError: unknown = new Error(`shard ${shard.shardId} has no replica to ask`);
    const queue = [...endpoints];
    for (let attempt = 0; attempt < endpoints.length + 2; attempt++) {
      const endpoint = queue.shift();
      if (endpoint === undefined) break;
      try {
        return await unaryCall(
          this.channels.get(endpoint),
          method,
          request,
          this.options.deadlineMs ?? 3_000,
        );
      } catch (error) {
        lastError = error;
        if (!(error instanceof RheosError) || !error.retriable) throw error;
        // The hinted leader goes next; a replica that failed otherwise goes to the back.
        if (error instanceof NotLeaderError && error.leader !== undefined) {
          queue.unshift(error.leader.endpoint);
        } else {
          queue.push(endpoint);
        }
      }
    }
    throw lastError;
  }

  close(): void {
    this.channels.close();
  }
}
