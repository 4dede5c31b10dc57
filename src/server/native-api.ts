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
  RemoveTagsFromStreamRequest,
  UpdateStreamModeRequest,
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
} from '../gen/rheos/v1/data.js';

/**
 * The native API as the gateway sees it: the operations of rheos.v1 with their generated message
 * types. The gateway only translates between Kinesis JSON and these calls; `RheosClient` (over
 * gRPC) and `inProcessApi` (in the same process as the broker) both satisfy it.
 */
export interface NativeApi {
  putRecord(request: PutRecordRequest): Promise<PutRecordResponse>;
  putRecords(request: PutRecordsRequest): Promise<PutRecordsResponse>;
  getShardIterator(request: GetShardIteratorRequest): Promise<GetShardIteratorResponse>;
  getRecords(request: GetRecordsRequest): Promise<GetRecordsResponse>;
  createStream(request: CreateStreamRequest): Promise<void>;
  deleteStream(request: DeleteStreamRequest): Promise<void>;
  describeStream(request: DescribeStreamRequest): Promise<DescribeStreamResponse>;
  describeStreamSummary(
    request: DescribeStreamSummaryRequest,
  ): Promise<DescribeStreamSummaryResponse>;
  listStreams(request: ListStreamsRequest): Promise<ListStreamsResponse>;
  listShards(request: ListShardsRequest): Promise<ListShardsResponse>;
  addTagsToStream(request: AddTagsToStreamRequest): Promise<void>;
  removeTagsFromStream(request: RemoveTagsFromStreamRequest): Promise<void>;
  listTagsForStream(request: ListTagsForStreamRequest): Promise<ListTagsForStreamResponse>;
  increaseStreamRetentionPeriod(request: IncreaseStreamRetentionPeriodRequest): Promise<void>;
  decreaseStreamRetentionPeriod(request: DecreaseStreamRetentionPeriodRequest): Promise<void>;
  updateStreamMode(request: UpdateStreamModeRequest): Promise<void>;
  describeLimits(): Promise<DescribeLimitsResponse>;
}

/** The native API served by the planes of this process, without a network hop. */
export function inProcessApi(data: DataPlane, control: ControlPlane): NativeApi {
  return {
    putRecord: (r) => data.putRecord(r),
    putRecords: (r) => data.putRecords(r),
    getShardIterator: (r) => data.getShardIterator(r),
    getRecords: (r) => data.getRecords(r),
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
  };
}
