import { NotLeaderError, ServiceUnavailableError } from '../common/errors.js';
import { formatSequenceNumber } from '../common/sequence-number.js';
import { Validator } from '../common/validation.js';
import type { SealShardRequest, SealShardResponse } from '../gen/rheos/v1/cluster.js';
import type { Broker } from './broker.js';
import type { ReplicaManager } from './replica-manager.js';

/**
 * Sealing a shard this broker holds, for a split or merge: the replica commits one SEAL entry (or
 * answers with the one it has). The ending sequence number sits just past the last record.
 */

export async function sealLocalReplica(
  replicas: ReplicaManager,
  incarnation: number,
  children: readonly string[],
): Promise<SealShardResponse> {
  const replica = replicas.get(incarnation);
  if (replica === undefined) {
    throw new ServiceUnavailableError(`Shard ${incarnation} is not open on this broker.`);
  }
  const sealIndex = await replica.seal(children);
  return {
    endingSequenceNumber: formatSequenceNumber({ incarnation, index: sealIndex, offset: 0 }),
    sealIndex,
  };
}

/** The broker's SealShard service: the coordinator asks the leader of each parent shard. */
export function sealShardService(broker: Broker, clusterId: string) {
  return async (request: SealShardRequest): Promise<SealShardResponse> => {
    new Validator().required('childShardIds', request.childShardIds[0]).throwIfInvalid();
    if (request.clusterId !== clusterId) {
      throw new ServiceUnavailableError(
        `This broker belongs to cluster ${clusterId}, not ${request.clusterId}.`,
      );
    }
    const incarnation = request.shardIncarnation;
    if (broker.replicas.get(incarnation) === undefined) {
      const location = broker.directory().shardByIncarnation(incarnation);
      const elsewhere =
        location === undefined ? undefined : broker.replicas.notHosted(location.shard);
      throw elsewhere ?? new NotLeaderError(`Shard ${incarnation} is not open on this broker.`);
    }
    return sealLocalReplica(broker.replicas, incarnation, request.childShardIds);
  };
}
