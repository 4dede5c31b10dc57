import { NotLeaderError } from '../common/errors.js';
import { bootstrapVotersOf, replicaIdIn, type ShardRecord } from '../coordinator/model.js';
import type { KvStore } from '../storage/kv-store.js';
import { ShardLog } from '../storage/shard-log.js';
import type { RaftHost } from './raft-host.js';
import { RaftReplica } from './raft-replica.js';
import type { ShardReplica } from './replica.js';
import type { ReplicaFactory } from './replica-manager.js';

/** A cluster broker: the shards placed on it are members of Raft groups driven by `host`. */
export function raftReplicas(options: {
  readonly host: RaftHost;
  readonly kv: KvStore;
  readonly addressOf: (brokerId: number) => string | undefined;
}): ReplicaFactory {
  const { host, kv, addressOf } = options;
  return {
    hosts: (shard) => shard.replicas?.includes(host.nodeId) ?? false,
    open: async (shard: ShardRecord): Promise<ShardReplica> => {
      // A replica added by a move starts from the group's first voters and follows the
      // membership changes in the log it is sent (it is not among them: it never campaigns).
      const voters = bootstrapVotersOf(shard);
      if (voters === undefined) throw new Error(`shard ${shard.shardId} has no replica set`);
      // A broker that held a replica of the group before joins again as a new member.
      const replicaId = replicaIdIn(shard, host.nodeId);
      // The first replica listed is placement's choice of leader: it stands first.
      return host.open(shard.incarnation, voters, {
        replicaId,
        campaignIfNew: shard.move === undefined && voters[0] === replicaId,
      });
    },
    isStale: (replica, shard) =>
      replica instanceof RaftReplica && replica.node.id !== replicaIdIn(shard, host.nodeId),
    destroyClosed: (shard: number) => new ShardLog(kv, shard).destroy(),
    notHosted: (shard) => {
      // Any replica can name the leader; the first one listed is as good a guess as any.
      const first = shard.replicas?.[0];
      const endpoint = first === undefined ? undefined : addressOf(first);
      return new NotLeaderError(
        `This broker holds no replica of ${shard.shardId}.`,
        first === undefined || endpoint === undefined
          ? {}
          : { leader: { brokerId: first, endpoint } },
      );
    },
  };
}
