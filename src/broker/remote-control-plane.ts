import type { UnaryMethod } from '../common/grpc-call.js';
import type { CoordinatorLink } from '../coordinator/coordinator-link.js';
import { ControlPlaneServiceService as Control } from '../gen/rheos/v1/control.js';
import type { ControlApi } from '../server/native-api.js';

/**
 * A coordinated broker's control plane: every call goes to the coordinators (which forward
 * changes to their leader), so a client may send it to any broker. Reads are idempotent and move
 * on from a coordinator that cannot be reached; changes only when it surely did not act.
 */
export function remoteControlPlane(link: CoordinatorLink): ControlApi {
  const call = <Req, Res>(method: UnaryMethod<Req, Res>, request: Req, idempotent: boolean) =>
    link.call(method, request, idempotent);
  const change =
    <Req, Res>(method: UnaryMethod<Req, Res>) =>
    async (request: Req): Promise<void> => {
      await call(method, request, false);
    };
  return {
    createStream: change(Control.createStream),
    deleteStream: change(Control.deleteStream),
    addTagsToStream: change(Control.addTagsToStream),
    removeTagsFromStream: change(Control.removeTagsFromStream),
    increaseStreamRetentionPeriod: change(Control.increaseStreamRetentionPeriod),
    decreaseStreamRetentionPeriod: change(Control.decreaseStreamRetentionPeriod),
    updateStreamMode: change(Control.updateStreamMode),
    splitShard: change(Control.splitShard),
    mergeShards: change(Control.mergeShards),
    updateShardCount: (r) => call(Control.updateShardCount, r, false),
    describeStream: (r) => call(Control.describeStream, r, true),
    describeStreamSummary: (r) => call(Control.describeStreamSummary, r, true),
    listStreams: (r) => call(Control.listStreams, r, true),
    listShards: (r) => call(Control.listShards, r, true),
    listTagsForStream: (r) => call(Control.listTagsForStream, r, true),
    describeLimits: () => call(Control.describeLimits, {}, true),
    registerStreamConsumer: (r) => call(Control.registerStreamConsumer, r, false),
    describeStreamConsumer: (r) => call(Control.describeStreamConsumer, r, true),
    listStreamConsumers: (r) => call(Control.listStreamConsumers, r, true),
    deregisterStreamConsumer: change(Control.deregisterStreamConsumer),
    groupHeartbeat: (r) => call(Control.groupHeartbeat, r, true),
    takeLease: (r) => call(Control.takeLease, r, false),
    // Repeating a checkpoint at the same counter stores the same thing.
    checkpointLease: async (r) => void (await call(Control.checkpointLease, r, true)),
    releaseLease: change(Control.releaseLease),
    describeGroup: (r) => call(Control.describeGroup, r, true),
    listGroups: (r) => call(Control.listGroups, r, true),
    deleteGroup: change(Control.deleteGroup),
  };
}
