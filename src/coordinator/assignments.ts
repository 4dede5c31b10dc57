import type { MetadataState } from './model.js';

/**
 * The replicas a broker should host, as the coordinator tells it in every heartbeat answer: every
 * shard of every stream that is not being deleted whose replica set names the broker. The broker
 * reconciles: it opens the replicas it lacks and deletes those no longer listed.
 */

export interface ReplicaAssignment {
  readonly shardIncarnation: number;
  readonly streamName: string;
  readonly shardId: string;
  readonly voters: readonly number[];
}

export function assignmentsFor(state: MetadataState, brokerId: number): ReplicaAssignment[] {
  const out: ReplicaAssignment[] = [];
  for (const stream of state.streams.values()) {
    if (stream.status === 'DELETING') continue;
    for (const shard of stream.shards) {
      if (shard.replicas === undefined || !shard.replicas.includes(brokerId)) continue;
      out.push({
        shardIncarnation: shard.incarnation,
        streamName: stream.name,
        shardId: shard.shardId,
        // Sorted: the preferred leader (first) is advice, not membership.
        voters: [...shard.replicas].sort((a, b) => a - b),
      });
    }
  }
  return out.sort((a, b) => a.shardIncarnation - b.shardIncarnation);
}
