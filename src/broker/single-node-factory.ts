import type { Clock } from '../common/clock.js';
import type { ShardRecord } from '../coordinator/model.js';
import type { GroupCommitWriter } from '../storage/group-commit.js';
import type { KvStore } from '../storage/kv-store.js';
import { ShardLog } from '../storage/shard-log.js';
import type { ShardReplica } from './replica.js';
import type { ReplicaFactory } from './replica-manager.js';
import { SingleNodeReplica } from './single-node-replica.js';

/** `rheos dev`: every shard has one replica, on this node. */
export function singleNodeReplicas(options: {
  readonly kv: KvStore;
  readonly writer: GroupCommitWriter;
  readonly clock: Clock;
}): ReplicaFactory {
  const { kv, writer, clock } = options;
  return {
    hosts: () => true,
    open: (shard: ShardRecord): Promise<ShardReplica> =>
      SingleNodeReplica.open({
        shard: shard.incarnation,
        log: new ShardLog(kv, shard.incarnation),
        writer,
        clock,
      }),
    destroyClosed: (shard: number) => new ShardLog(kv, shard).destroy(),
    notHosted: () => undefined,
  };
}
