import type { ServiceIdentity } from '../common/arn.js';
import { Validator } from '../common/validation.js';
import { streamNotFound } from '../coordinator/metadata-machine.js';
import { isOpen } from '../coordinator/model.js';
import type {
  BrokerAddress,
  GetShardMapRequest,
  GetShardMapResponse,
} from '../gen/rheos/v1/cluster.js';
import type { Broker } from './broker.js';

/**
 * Routing for clients: every shard of a stream with the brokers holding it and, where this broker
 * holds a replica, the leader as its replica last saw it. A broker that holds no replica of a
 * shard lists the replicas only; the client asks one of them and follows NOT_LEADER hints.
 */

export interface ShardMapOptions {
  readonly broker: Broker;
  readonly identity: ServiceIdentity;
  /** host:port of each broker's native API; the single node answers for id 0 as well. */
  readonly endpointOf: (brokerId: number) => string | undefined;
  /** The id this broker answers to (0 for `rheos dev`, whose shards list no replicas). */
  readonly selfId: number;
}

export function shardMap(options: ShardMapOptions) {
  const address = (brokerId: number): BrokerAddress | undefined => {
    const endpoint = options.endpointOf(brokerId);
    return endpoint === undefined ? undefined : { brokerId, endpoint };
  };
  return async (request: GetShardMapRequest): Promise<GetShardMapResponse> => {
    new Validator().streamName('streamName', request.streamName).throwIfInvalid();
    const { broker, identity } = options;
    // A client told a shard is sealed wants the newest routes, not this broker's older copy.
    if (request.refresh) await broker.refreshMetadata();
    const stream = await broker.findStream(request.streamName);
    if (stream === undefined) throw streamNotFound(request.streamName, identity);
    return {
      streamName: stream.name,
      shards: stream.shards.map((shard) => {
        const replicaIds = shard.replicas ?? [options.selfId];
        const replica = broker.replicas.get(shard.incarnation);
        const leaderId = replica?.leaderId();
        const leader = leaderId === undefined ? undefined : address(leaderId);
        const replicas = replicaIds
          .map(address)
          .filter((a): a is BrokerAddress => a !== undefined)
          .sort((a, b) => (a.brokerId === leaderId ? -1 : b.brokerId === leaderId ? 1 : 0));
        return {
          shardId: shard.shardId,
          hashKeyStart: shard.hashKeyStart,
          hashKeyEnd: shard.hashKeyEnd,
          open: isOpen(shard),
          replicas,
          ...(leader === undefined ? {} : { leader }),
        };
      }),
    };
  };
}
