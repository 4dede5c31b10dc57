import { InvalidArgumentError, NotLeaderError, ServiceUnavailableError } from '../common/errors.js';
import { brokerOfReplica } from '../common/replica-id.js';
import {
  MoveState,
  type MoveReplicaRequest,
  type MoveReplicaResponse,
} from '../gen/rheos/v1/cluster.js';
import type { RaftHost } from './raft-host.js';
import { stepMove } from './replica-move.js';

/**
 * A learner this close to the leader's log is promoted: under steady writes it is never exactly
 * level, and a voter a few entries behind costs nothing (its acknowledgements simply come later).
 */
const PROMOTE_LAG_ENTRIES = 64;

/** The broker's MoveReplica service: one step of a move, on the shard's leader. */
export function moveReplicaService(host: RaftHost, clusterId: string) {
  return async (request: MoveReplicaRequest): Promise<MoveReplicaResponse> => {
    if (request.clusterId !== clusterId) {
      throw new ServiceUnavailableError(
        `This broker belongs to cluster ${clusterId}, not ${request.clusterId}.`,
      );
    }
    const replica = host.get(request.shardIncarnation);
    if (replica === undefined) {
      throw new NotLeaderError(`Shard ${request.shardIncarnation} is not open on this broker.`);
    }
    if (!replica.isLeader) throw replica.notLeader();
    // Replica ids, not broker ids, are the members (0: a sender that predates replica ids).
    const from = request.fromReplica === 0 ? request.fromBroker : request.fromReplica;
    const to = request.toReplica === 0 ? request.toBroker : request.toReplica;
    if (brokerOfReplica(from) !== request.fromBroker || brokerOfReplica(to) !== request.toBroker) {
      throw new InvalidArgumentError(`Replica ids ${from} and ${to} do not match the brokers.`);
    }
    const outcome = stepMove(
      replica.node.id,
      replica.node,
      { from, to, abort: request.abort },
      PROMOTE_LAG_ENTRIES,
    );
    // The proposal or transfer goes out with the next cycle.
    host.touch(request.shardIncarnation);
    switch (outcome.state) {
      case 'done':
        return { state: MoveState.MOVE_STATE_DONE, detail: 'done' };
      case 'aborted':
        return { state: MoveState.MOVE_STATE_ABORTED, detail: 'aborted' };
      case 'refused':
        return { state: MoveState.MOVE_STATE_REFUSED, detail: outcome.detail };
      case 'in-progress':
        return { state: MoveState.MOVE_STATE_IN_PROGRESS, detail: outcome.detail };
    }
  };
}
