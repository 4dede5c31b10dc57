import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { GRPC_CHANNEL_OPTIONS } from '../common/grpc-options.js';
import { fromServiceError } from '../common/grpc-errors.js';
import {
  AddTagsToStreamRequest,
  ControlPlaneServiceService as Control,
  CreateStreamRequest,
  DecreaseStreamRetentionPeriodRequest,
  DeleteStreamRequest,
  DescribeLimitsRequest,
  DescribeStreamRequest,
  DescribeStreamSummaryRequest,
  IncreaseStreamRetentionPeriodRequest,
  ListShardsRequest,
  ListStreamsRequest,
  ListTagsForStreamRequest,
  RemoveTagsFromStreamRequest,
  UpdateStreamModeRequest,
  type DescribeLimitsResponse,
  type DescribeStreamResponse,
  type DescribeStreamSummaryResponse,
  type ListShardsResponse,
  type ListStreamsResponse,
  type ListTagsForStreamResponse,
} from '../gen/rheos/v1/control.js';
import {
  DataPlaneServiceService as Data,
  GetRecordsRequest,
  GetShardIteratorRequest,
  PutRecordRequest,
  PutRecordsRequest,
  type DeepPartial,
  type GetRecordsResponse,
  type GetShardIteratorResponse,
  type PutRecordResponse,
  type PutRecordsResponse,
} from '../gen/rheos/v1/data.js';
import { StreamStatus } from '../gen/rheos/v1/stream.js';

/**
 * The native client: one gRPC channel to a Rheos node, typed promise methods for every API call,
 * and failures as RheosError subclasses carrying `retriable` and `indeterminate`. Requests are
 * partial messages: omitted fields take their protobuf defaults.
 */

export interface RheosClientOptions {
  /** host:port of the node's gRPC API. */
  readonly endpoint: string;
  /** Per-call deadline. */
  readonly deadlineMs?: number;
}

interface MethodDefinition<Req, Res> {
  readonly path: string;
  readonly requestSerialize: (value: Req) => Buffer;
  readonly responseDeserialize: (bytes: Buffer) => Res;
}

export class RheosClient {
  private readonly channel: Client;
  private readonly deadlineMs: number;

  constructor(options: RheosClientOptions) {
    this.channel = new Client(options.endpoint, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    this.deadlineMs = options.deadlineMs ?? 30_000;
  }

  putRecord(request: DeepPartial<PutRecordRequest>): Promise<PutRecordResponse> {
    return this.call(Data.putRecord, PutRecordRequest.fromPartial(request));
  }

  putRecords(request: DeepPartial<PutRecordsRequest>): Promise<PutRecordsResponse> {
    return this.call(Data.putRecords, PutRecordsRequest.fromPartial(request));
  }

  getShardIterator(
    request: DeepPartial<GetShardIteratorRequest>,
  ): Promise<GetShardIteratorResponse> {
    return this.call(Data.getShardIterator, GetShardIteratorRequest.fromPartial(request));
  }

  getRecords(request: DeepPartial<GetRecordsRequest>): Promise<GetRecordsResponse> {
    return this.call(Data.getRecords, GetRecordsRequest.fromPartial(request));
  }

  async createStream(request: DeepPartial<CreateStreamRequest>): Promise<void> {
    await this.call(Control.createStream, CreateStreamRequest.fromPartial(request));
  }

  async deleteStream(request: DeepPartial<DeleteStreamRequest>): Promise<void> {
    await this.call(Control.deleteStream, DeleteStreamRequest.fromPartial(request));
  }

  describeStream(request: DeepPartial<DescribeStreamRequest>): Promise<DescribeStreamResponse> {
    return this.call(Control.describeStream, DescribeStreamRequest.fromPartial(request));
  }

  describeStreamSummary(
    request: DeepPartial<DescribeStreamSummaryRequest>,
  ): Promise<DescribeStreamSummaryResponse> {
    return this.call(
      Control.describeStreamSummary,
      DescribeStreamSummaryRequest.fromPartial(request),
    );
  }

  listStreams(request: DeepPartial<ListStreamsRequest> = {}): Promise<ListStreamsResponse> {
    return this.call(Control.listStreams, ListStreamsRequest.fromPartial(request));
  }

  listShards(request: DeepPartial<ListShardsRequest>): Promise<ListShardsResponse> {
    return this.call(Control.listShards, ListShardsRequest.fromPartial(request));
  }

  async addTagsToStream(request: DeepPartial<AddTagsToStreamRequest>): Promise<void> {
    await this.call(Control.addTagsToStream, AddTagsToStreamRequest.fromPartial(request));
  }

  async removeTagsFromStream(request: DeepPartial<RemoveTagsFromStreamRequest>): Promise<void> {
    await this.call(Control.removeTagsFromStream, RemoveTagsFromStreamRequest.fromPartial(request));
  }

  listTagsForStream(
    request: DeepPartial<ListTagsForStreamRequest>,
  ): Promise<ListTagsForStreamResponse> {
    return this.call(Control.listTagsForStream, ListTagsForStreamRequest.fromPartial(request));
  }

  async increaseStreamRetentionPeriod(
    request: DeepPartial<IncreaseStreamRetentionPeriodRequest>,
  ): Promise<void> {
    await this.call(
      Control.increaseStreamRetentionPeriod,
      IncreaseStreamRetentionPeriodRequest.fromPartial(request),
    );
  }

  async decreaseStreamRetentionPeriod(
    request: DeepPartial<DecreaseStreamRetentionPeriodRequest>,
  ): Promise<void> {
    await this.call(
      Control.decreaseStreamRetentionPeriod,
      DecreaseStreamRetentionPeriodRequest.fromPartial(request),
    );
  }

  async updateStreamMode(request: DeepPartial<UpdateStreamModeRequest>): Promise<void> {
    await this.call(Control.updateStreamMode, UpdateStreamModeRequest.fromPartial(request));
  }

  describeLimits(): Promise<DescribeLimitsResponse> {
    return this.call(Control.describeLimits, DescribeLimitsRequest.fromPartial({}));
  }

  /** Polls DescribeStreamSummary until the stream is ACTIVE (CreateStream returns while CREATING). */
  async waitForStreamActive(streamName: string, timeoutMs = 30_000, pollMs = 50): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { streamDescriptionSummary: summary } = await this.describeStreamSummary({
        streamName,
      });
      if (summary?.streamStatus === StreamStatus.STREAM_STATUS_ACTIVE) return;
      if (Date.now() > deadline)
        throw new Error(`stream ${streamName} not ACTIVE after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  close(): void {
    this.channel.close();
  }

  private call<Req, Res>(method: MethodDefinition<Req, Res>, request: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.channel.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        new Metadata(),
        { deadline: Date.now() + this.deadlineMs },
        (error: ServiceError | null, response?: Res) => {
          if (error) reject(fromServiceError(error));
          else resolve(response as Res);
        },
      );
    });
  }
}

export function createClient(options: RheosClientOptions): RheosClient {
  return new RheosClient(options);
}
