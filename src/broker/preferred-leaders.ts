import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { replicaIdIn, type MetadataState } from '../coordinator/model.js';
import type { RaftHost } from './raft-host.js';
import { RaftReplica } from './raft-replica.js';

/**
 * Gives leadership back to the replica placement prefers (the first of each replica set, spread
 * evenly across brokers), as Kafka's preferred-leader election does: a new group's first election
 * may go to another replica (not every member opens at the same moment), and after a broker
 * restarts, its shards are led elsewhere. A leader hands over (Raft leadership transfer) only
 * when the preferred broker is up, holds every entry and was heard from lately, and at most once
 * per group per `minIntervalMs`, so a broker that keeps failing does not make leadership flap.
 */
export class PreferredLeaders {
  private readonly lastAttemptMs = new Map<number, number>();

  constructor(
    private readonly host: RaftHost,
    private readonly metadata: () => MetadataState,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly minIntervalMs = 10_000,
  ) {}

  /** One pass over the groups this broker leads; returns the transfers started. */
  check(): number {
    const state = this.metadata();
    // By shard incarnation: the preferred broker and its member id in the group.
    const preferred = new Map<number, { broker: number; replica: number }>();
    for (const stream of state.streams.values()) {
      for (const shard of stream.shards) {
        const first = shard.replicas?.[0];
        if (first !== undefined) {
          preferred.set(shard.incarnation, { broker: first, replica: replicaIdIn(shard, first) });
        }
      }
    }
    const nowMs = this.clock.monotonicMs();
    let started = 0;
    for (const group of this.host.groups()) {
      if (!(group instanceof RaftReplica) || !group.isLeader) continue;
      const target = preferred.get(group.shard);
      if (target === undefined || target.broker === this.host.nodeId) continue;
      if (state.brokers.get(target.broker)?.state !== 'up') continue;
      if (!group.node.isCaughtUp(target.replica)) continue;
      const last = this.lastAttemptMs.get(group.shard);
      if (last !== undefined && nowMs - last < this.minIntervalMs) continue;
      this.lastAttemptMs.set(group.shard, nowMs);
      this.logger.info(
        { shard: group.shard, to: target.broker },
        'handing leadership to the preferred replica',
      );
      group.node.transferLeadership(target.replica);
      this.host.touch(group.shard);
      started++;
    }
    for (const shard of this.lastAttemptMs.keys()) {
      if (!preferred.has(shard)) this.lastAttemptMs.delete(shard);
    }
    return started;
  }
}
