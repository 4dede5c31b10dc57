import type { DataPlane } from '../broker/data-plane.js';
import type { ControlPlane } from '../coordinator/control-plane.js';
import type {
  AddTagsToStreamRequest,
  CreateStreamRequest,
  DecreaseStreamRetentionPeriodRequest,
  DeleteStreamRequest,
  DescribeLimitsResponse,
  DescribeStreamRequest,
  DescribeStreamResponse,
  DescribeStreamSummaryRequest,
  DescribeStreamSummaryResponse,
  IncreaseStreamRetentionPeriodRequest,
  ListShardsRequest,
  ListShardsResponse,
  ListStreamsRequest,
  ListStreamsResponse,
  ListTagsForStreamRequest,
  ListTagsForStreamResponse,
  MergeShardsRequest,
  RemoveTagsFromStreamRequest,
  SplitShardRequest,
  UpdateShardCountRequest,
  UpdateShardCountResponse,
  UpdateStreamModeRequest,
  RegisterStreamConsumerRequest,
  RegisterStreamConsumerResponse,
  DescribeStreamConsumerRequest,
  DescribeStreamConsumerResponse,
  ListStreamConsumersRequest,
  ListStreamConsumersResponse,
  DeregisterStreamConsumerRequest,
  CheckpointLeaseRequest,
  DeleteGroupRequest,
  DescribeGroupRequest,
  DescribeGroupResponse,
  GroupHeartbeatRequest,
  GroupHeartbeatResponse,
  ListGroupsRequest,
  ListGroupsResponse,
  ReleaseLeaseRequest,
  TakeLeaseRequest,
  TakeLeaseResponse,
} from '../gen/rheos/v1/control.js';
import type {
  GetRecordsRequest,
  GetRecordsResponse,
  GetShardIteratorRequest,
  GetShardIteratorResponse,
  PutRecordRequest,
  PutRecordResponse,
  PutRecordsRequest,
  PutRecordsResponse,
  SubscribeToShardRequest,
  SubscribeToShardResponse,
} from '../gen/rheos/v1/data.js';
import { pushIterable } from '../common/push-iterable.js';

/**
 * The native API as the gateway sees it: the operations of rheos.v1 with their generated message
 * types. The gateway only translates between Kinesis JSON and these calls; `RheosClient` (over
 * gRPC) and `inProcessApi` (in the same process as the broker) both satisfy it.
 */
export interface NativeApi extends DataApi, SubscribeApi, ControlApi {}

export interface DataApi {
  putRecord(request: PutRecordRequest): Promise<PutRecordResponse>;
  putRecords(request: PutRecordsRequest): Promise<PutRecordsResponse>;
  getShardIterator(request: GetShardIteratorRequest): Promise<GetShardIteratorResponse>;
  getRecords(request: GetRecordsRequest): Promise<GetRecordsResponse>;
}

/** Enhanced fan-out: a server stream, where the data API's other calls are request and answer. */
export interface SubscribeApi {
  /**
   * The events of one subscription, pushed as records commit. The first `next()` throws what
   * refuses the subscription (an unknown consumer, a takeover too soon); it ends with the
   * subscription's lifetime, and on `signal`.
   */
  subscribeToShard(
    request: SubscribeToShardRequest,
    options?: { readonly signal?: AbortSignal },
  ): AsyncIterable<SubscribeToShardResponse>;
}

/**
 * The control-plane operations. `context` says how the call arrived: a coordinator that is not
 * the leader forwards changes once, and answers NOT_LEADER to a call that was already forwarded.
 */
export interface ControlApi extends GroupApi {
  createStream(request: CreateStreamRequest, context?: CallContext): Promise<void>;
  deleteStream(request: DeleteStreamRequest, context?: CallContext): Promise<void>;
  describeStream(
    request: DescribeStreamRequest,
    context?: CallContext,
  ): Promise<DescribeStreamResponse>;
  describeStreamSummary(
    request: DescribeStreamSummaryRequest,
    context?: CallContext,
  ): Promise<DescribeStreamSummaryResponse>;
  listStreams(request: ListStreamsRequest, context?: CallContext): Promise<ListStreamsResponse>;
  listShards(request: ListShardsRequest, context?: CallContext): Promise<ListShardsResponse>;
  addTagsToStream(request: AddTagsToStreamRequest, context?: CallContext): Promise<void>;
  removeTagsFromStream(request: RemoveTagsFromStreamRequest, context?: CallContext): Promise<void>;
  listTagsForStream(
    request: ListTagsForStreamRequest,
    context?: CallContext,
  ): Promise<ListTagsForStreamResponse>;
  increaseStreamRetentionPeriod(
    request: IncreaseStreamRetentionPeriodRequest,
    context?: CallContext,
  ): Promise<void>;
  decreaseStreamRetentionPeriod(
    request: DecreaseStreamRetentionPeriodRequest,
    context?: CallContext,
  ): Promise<void>;
  updateStreamMode(request: UpdateStreamModeRequest, context?: CallContext): Promise<void>;
  describeLimits(request?: object, context?: CallContext): Promise<DescribeLimitsResponse>;
  splitShard(request: SplitShardRequest, context?: CallContext): Promise<void>;
  mergeShards(request: MergeShardsRequest, context?: CallContext): Promise<void>;
  updateShardCount(
    request: UpdateShardCountRequest,
    context?: CallContext,
  ): Promise<UpdateShardCountResponse>;
  registerStreamConsumer(
    request: RegisterStreamConsumerRequest,
    context?: CallContext,
  ): Promise<RegisterStreamConsumerResponse>;
  describeStreamConsumer(
    request: DescribeStreamConsumerRequest,
    context?: CallContext,
  ): Promise<DescribeStreamConsumerResponse>;
  listStreamConsumers(
    request: ListStreamConsumersRequest,
    context?: CallContext,
  ): Promise<ListStreamConsumersResponse>;
  deregisterStreamConsumer(
    request: DeregisterStreamConsumerRequest,
    context?: CallContext,
  ): Promise<void>;
}

/** Consumer groups: served by the coordinator leader, whose memory holds the heartbeats. */
export interface GroupApi {
  groupHeartbeat(
    request: GroupHeartbeatRequest,
    context?: CallContext,
  ): Promise<GroupHeartbeatResponse>;
  takeLease(request: TakeLeaseRequest, context?: CallContext): Promise<TakeLeaseResponse>;
  checkpointLease(request: CheckpointLeaseRequest, context?: CallContext): Promise<void>;
  releaseLease(request: ReleaseLeaseRequest, context?: CallContext): Promise<void>;
  describeGroup(
    request: DescribeGroupRequest,
    context?: CallContext,
  ): Promise<DescribeGroupResponse>;
  listGroups(request: ListGroupsRequest, context?: CallContext): Promise<ListGroupsResponse>;
  deleteGroup(request: DeleteGroupRequest, context?: CallContext): Promise<void>;
}

export interface CallContext {
  /** Another coordinator forwarded this call (so it must not be forwarded again). */
  readonly forwarded: boolean;
}

/** The native API served by the planes of this process, without a network hop. */
export function inProcessApi(data: DataPlane, control: ControlPlane): NativeApi {
  return {
    putRecord: (r) => data.putRecord(r),
    putRecords: (r) => data.putRecords(r),
    getShardIterator: (r) => data.getShardIterator(r),
    getRecords: (r) => data.getRecords(r),
    subscribeToShard: (r, options) =>
      pushIterable<SubscribeToShardResponse>(
        (emit, signal) => data.subscribeToShard(r, emit, signal),
        options?.signal,
      ),
    ...controlApiOf(control),
  };
}

/** The control plane of this process as the API serves it. */
export function controlApiOf(control: ControlPlane): ControlApi {
  return {
    createStream: (r) => control.createStream(r),
    deleteStream: (r) => control.deleteStream(r),
    describeStream: async (r) => control.describeStream(r),
    describeStreamSummary: async (r) => control.describeStreamSummary(r),
    listStreams: async (r) => control.listStreams(r),
    listShards: async (r) => control.listShards(r),
    addTagsToStream: (r) => control.addTagsToStream(r),
    removeTagsFromStream: (r) => control.removeTagsFromStream(r),
    listTagsForStream: async (r) => control.listTagsForStream(r),
    increaseStreamRetentionPeriod: (r) => control.increaseStreamRetentionPeriod(r),
    decreaseStreamRetentionPeriod: (r) => control.decreaseStreamRetentionPeriod(r),
    updateStreamMode: (r) => control.updateStreamMode(r),
    describeLimits: async () => control.describeLimits(),
    splitShard: (r) => control.splitShard(r),
    mergeShards: (r) => control.mergeShards(r),
    updateShardCount: (r) => control.updateShardCount(r),
    registerStreamConsumer: (r) => control.registerStreamConsumer(r),
    describeStreamConsumer: async (r) => control.describeStreamConsumer(r),
    listStreamConsumers: async (r) => control.listStreamConsumers(r),
    deregisterStreamConsumer: (r) => control.deregisterStreamConsumer(r),
    groupHeartbeat: (r) => control.groups.heartbeat(r),
    takeLease: (r) => control.groups.take(r),
    checkpointLease: (r) => control.groups.checkpoint(r),
    releaseLease: (r) => control.groups.release(r),
    describeGroup: async (r) => control.groups.describe(r),
    listGroups: async () => control.groups.list(),
    deleteGroup: (r) => control.groups.delete(r),
  };
}
