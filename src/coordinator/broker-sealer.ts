import { ChannelPool, unaryCall } from '../common/grpc-call.js';
import { NotLeaderError, RheosError } from '../common/errors.js';
import { ClusterServiceService as Cluster } from '../gen/rheos/v1/cluster.js';
import { ReplicaRole } from '../gen/rheos/v1/coordinator.js';
import type { MetadataState, ShardRecord } from './model.js';
import type { ReplicaReports } from './replica-reports.js';

/**
 * How the coordinator seals a parent shard in a cluster: SealShard on the broker leading it (as
 * the heartbeats say), following NOT_LEADER hints, then the other replicas in turn.
 */

export interface BrokerSealerOptions {
  readonly clusterId: string;
  readonly state: () => MetadataState;
  readonly reports: ReplicaReports;
  readonly monotonicMs: () => number;
  /** Per call. */
  readonly deadlineMs?: number;
}

export class BrokerSealer {
  private readonly channels = new ChannelPool();

  constructor(private readonly options: BrokerSealerOptions) {}

  async seal(parent: ShardRecord, children: readonly string[]): Promise<string> {
    const { state, reports, monotonicMs } = this.options;
    const brokers = state().brokers;
    const replicas = parent.replicas ?? [];
    const now = monotonicMs();
    const leaderFirst = [...replicas].sort(
      (a, b) =>
        Number(reports.roleOf(b, parent.incarnation, now) === ReplicaRole.REPLICA_ROLE_LEADER) -
        Number(reports.roleOf(a, parent.incarnation, now) === ReplicaRole.REPLICA_ROLE_LEADER),
    );
    const endpoints = leaderFirst
      .map((id) => brokers.get(id)?.api)
      .filter((e): e is string => e !== undefined);
    let lastError: unknown = new Error(`shard ${parent.shardId} has no replica to seal`);
    const queue = [...endpoints];
    for (let attempt = 0; attempt < endpoints.length + 2; attempt++) {
      const endpoint = queue.shift();
      if (endpoint === undefined) break;
      try {
        const response = await unaryCall(
          this.channels.get(endpoint),
          Cluster.sealShard,
          {
            clusterId: this.options.clusterId,
            shardIncarnation: parent.incarnation,
            childShardIds: [...children],
          },
          this.options.deadlineMs ?? 3_000,
        );
        return response.endingSequenceNumber;
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
