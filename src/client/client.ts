import { parseConsumerArn, streamNameOfArn } from '../common/arn.js';
import { backoffDelayMs, sleep, type BackoffOptions } from '../common/backoff.js';
import { NotLeaderError, RheosError, ShardSealedError } from '../common/errors.js';
import { ChannelPool, streamCall, unaryCall, type UnaryMethod } from '../common/grpc-call.js';
import { checkPutRecords } from '../common/put-records-check.js';
import { PutStreams } from './put-stream.js';
import {
  ClusterServiceService as Cluster,
  GetShardMapRequest,
  type GetShardMapResponse,
} from '../gen/rheos/v1/cluster.js';
import {
  AddTagsToStreamRequest,
  CheckpointLeaseRequest,
  DeleteGroupRequest,
  DescribeGroupRequest,
  type DescribeGroupResponse,
  GroupHeartbeatRequest,
  type GroupHeartbeatResponse,
  ListGroupsRequest,
  type ListGroupsResponse,
  ReleaseLeaseRequest,
  TakeLeaseRequest,
  type TakeLeaseResponse,
  DeregisterStreamConsumerRequest,
  DescribeStreamConsumerRequest,
  type DescribeStreamConsumerResponse,
  ListStreamConsumersRequest,
  type ListStreamConsumersResponse,
  RegisterStreamConsumerRequest,
  type RegisterStreamConsumerResponse,
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
  MergeShardsRequest,
  RemoveTagsFromStreamRequest,
  SplitShardRequest,
  UpdateShardCountRequest,
  UpdateStreamModeRequest,
  type UpdateShardCountResponse,
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
  SubscribeToShardRequest,
  type DeepPartial,
  type GetRecordsResponse,
  type SubscribeToShardResponse,
  type GetShardIteratorResponse,
  type PutRecordResponse,
  type PutRecordsRequestEntry,
  type PutRecordsResponse,
  type PutRecordsResultEntry,
} from '../gen/rheos/v1/data.js';
import { EncryptionType, StreamStatus } from '../gen/rheos/v1/stream.js';

import {
  endpointFor,
  routeRecord,
  ShardRoutes,
  type ShardRoute,
  type StreamRoutes,
} from './shard-routes.js';

/**
 * The native client. It talks to one Rheos node or to the brokers of a cluster: writes go to each
 * shard's leader (found with GetShardMap, corrected by NOT_LEADER hints), a PutRecords spanning
 * shards is split per shard and merged back in request order, and reads follow their shard.
 * Failures are RheosError subclasses carrying `retriable` and `indeterminate`; only definite
 * routing failures (NOT_LEADER, a broker that cannot be reached) are retried here, a bounded
 * number of times: everything else is the caller's decision. Requests are partial messages.
 */

export interface RheosClientOptions {
  /** host:port of a node's gRPC API. */
  readonly endpoint?: string;
  /** Several brokers of a cluster; any of them answers routing questions. */
  readonly endpoints?: readonly string[];
  /** Per-call deadline. */
  readonly deadlineMs?: number;
  /** Attempts per shard call when routing fails definitely (NOT_LEADER, no connection). */
  readonly maxRouteAttempts?: number;
  readonly backoff?: BackoffOptions;
}

const SEALED = 'ShardSealedException';

/** Iterators remembered with the broker that issued them, so the chain stays on one replica. */
const MAX_ITERATOR_HOMES = 10_000;

export class RheosClient {
  private readonly channels = new ChannelPool();
  private readonly putStreams = new PutStreams(this.channels);
  private readonly endpoints: readonly string[];
  private readonly deadlineMs: number;
  private readonly maxRouteAttempts: number;
  private readonly backoff: BackoffOptions;
  private preferred = 0;
  private readonly routes: ShardRoutes;
  private readonly iteratorHomes = new Map<string, string>();

  constructor(options: RheosClientOptions) {
    const endpoints = [
      ...(options.endpoint === undefined ? [] : [options.endpoint]),
      ...(options.endpoints ?? []),
    ];
    if (endpoints.length === 0) throw new Error('RheosClient needs an endpoint');
    this.endpoints = endpoints;
    this.deadlineMs = options.deadlineMs ?? 30_000;
    // While a shard elects a leader (about an election timeout, under a second), poll at most
    // every 250 ms so writes resume soon after, for about two to three seconds in all.
    this.maxRouteAttempts = options.maxRouteAttempts ?? 16;
    this.backoff = options.backoff ?? { initialMs: 20, maxMs: 250 };
    this.routes = new ShardRoutes((streamName, refresh) =>
      this.getShardMap({ streamName, refresh }),
    );
  }

  /** Where a stream's shards live and who leads them (as any broker sees it). */
  getShardMap(request: DeepPartial<GetShardMapRequest>): Promise<GetShardMapResponse> {
    return this.anyNode(Cluster.getShardMap, GetShardMapRequest.fromPartial(request));
  }

  async putRecord(request: DeepPartial<PutRecordRequest>): Promise<PutRecordResponse> {
    const full = PutRecordRequest.fromPartial(request);
    const name = streamNameOf(full);
    for (let round = 0; ; round++) {
      const routes = await this.routesOf(name);
      const route = routes === undefined ? undefined : routeRecord(routes, full);
      if (name === undefined || route === undefined)
        return this.anyNode(Data.putRecord, full, false);
      try {
        // The stream exists and the record routes: the server validates the rest.
        return await this.toShard(name, route, false, (endpoint) =>
          this.call(Data.putRecord, full, endpoint),
        );
      } catch (error) {
        if (!(error instanceof ShardSealedError) || round + 1 >= this.maxRouteAttempts) throw error;
        await this.afterSeal(name, round);
      }
    }
  }

  /**
   * PutRecords, one call per shard to its leader, in parallel; the results come back in request
   * order. A shard whose call fails as a whole gets that failure on each of its records
   * ('InternalFailure' when the outcome is unknown), unless the request has only one shard: then
   * the error is thrown, as the server would. Records refused because their shard was sealed by a
   * split or merge (nothing stored) are routed again to its children, in request order.
   */
  async putRecords(request: DeepPartial<PutRecordsRequest>): Promise<PutRecordsResponse> {
    const full = PutRecordsRequest.fromPartial(request);
    const name = streamNameOf(full);
    let response = await this.putRecordsRouted(full, name);
    for (let round = 0; name !== undefined && round + 1 < this.maxRouteAttempts; round++) {
      const sealed: number[] = [];
      response.records.forEach((r, i) => {
        if (r.errorCode === SEALED) sealed.push(i);
      });
      if (sealed.length === 0) break;
      await this.afterSeal(name, round);
      const retry = await this.putRecordsRouted(
        { ...full, records: sealed.map((i) => full.records[i] as PutRecordsRequestEntry) },
        name,
      );
      const records = [...response.records];
      sealed.forEach((i, k) => (records[i] = retry.records[k] as PutRecordsResultEntry));
      response = {
        ...retry,
        records,
        failedRecordCount: records.filter((r) => r.errorCode !== '').length,
      };
    }
    return response;
  }

  /**
   * A PutRecords whose records all belong to shard `shardId`, sent to its leader (the buffered
   * producer's call). With `request.producer` (an idempotent producer's batch) routing failures
   * are retried even when indeterminate, since the shard catches duplicates, and a shard that was
   * closed and does not hold the batch throws ShardSealedError: the caller routes its records
   * again (see `shardRoutes(name, true)`), numbered for the new shards. Without it, the server may
   * itself send the records of a closed shard to the children (their ids are in the results).
   */
  async putToShard(
    shardId: string,
    request: DeepPartial<PutRecordsRequest>,
    options: { readonly onRetry?: (error: RheosError) => void } = {},
  ): Promise<PutRecordsResponse> {
    const full = PutRecordsRequest.fromPartial(request);
    const name = streamNameOf(full);
    const idempotent = full.producer !== undefined;
    const route = (await this.routesOf(name))?.byId.get(shardId);
    if (name === undefined || route === undefined) {
      return this.anyNode(Data.putRecords, full, idempotent);
    }
    return this.toShard(
      name,
      route,
      idempotent,
      (endpoint) => this.putCall(full, endpoint),
      options.onRetry,
    );
  }

  /**
   * Where a stream's shards are, as this client last heard (`fresh`: from the newest metadata,
   * after a shard was found sealed). Throws what GetShardMap throws (an unknown stream).
   */
  shardRoutes(streamName: string, fresh = false): Promise<StreamRoutes> {
    if (fresh) this.routes.invalidate(streamName, true);
    return this.routes.get(streamName);
  }

  /** putRecordsOnce, again with fresh routes while one shard's call is refused as sealed. */
  private async putRecordsRouted(
    full: PutRecordsRequest,
    name: string | undefined,
  ): Promise<PutRecordsResponse> {
    for (let round = 0; ; round++) {
      try {
        return await this.putRecordsOnce(full);
      } catch (error) {
        // Refused as a whole: the routes predate a split or merge.
        const sealed = error instanceof ShardSealedError && name !== undefined;
        if (!sealed || round + 1 >= this.maxRouteAttempts) throw error;
        await this.afterSeal(name, round);
      }
    }
  }

  /** The routes were stale: a shard was sealed. Look again at the newest metadata, after a pause. */
  private async afterSeal(streamName: string, round: number): Promise<void> {
    this.routes.invalidate(streamName, true);
    await sleep(backoffDelayMs(round, this.backoff));
  }

  private async putRecordsOnce(full: PutRecordsRequest): Promise<PutRecordsResponse> {
    const name = streamNameOf(full);
    // A request that fails validation goes out whole, so it is refused whole (never split).
    const routes = isValidPutRecords(full) ? await this.routesOf(name) : undefined;
    const groups = new Map<ShardRoute, number[]>();
    for (let i = 0; routes !== undefined && i < full.records.length; i++) {
      const route = routeRecord(routes, full.records[i] as PutRecordsRequestEntry);
      if (route === undefined) break;
      let list = groups.get(route);
      if (list === undefined) groups.set(route, (list = []));
      list.push(i);
    }
    const routedAll =
      [...groups.values()].reduce((n, l) => n + l.length, 0) === full.records.length;
    if (name === undefined || !routedAll || groups.size === 0 || groups.size === 1) {
      // One shard (or unroutable records): one call, answered exactly as the server answers it.
      const only = groups.keys().next().value;
      if (name !== undefined && routedAll && only !== undefined) {
        return this.toShard(name, only, false, (endpoint) => this.putCall(full, endpoint));
      }
      return this.anyNode(Data.putRecords, full, false);
    }
    const results: PutRecordsResultEntry[] = new Array(full.records.length);
    let encryptionType = EncryptionType.ENCRYPTION_TYPE_NONE;
    await Promise.all(
      [...groups].map(async ([route, indexes]) => {
        const part: PutRecordsRequest = {
          ...full,
          records: indexes.map((i) => full.records[i] as PutRecordsRequestEntry),
        };
        try {
          const response = await this.toShard(name, route, false, async (endpoint) => {
            const answer = await this.putCall(part, endpoint);
            // Leadership moved between the server's check and the write: nothing was stored.
            if (answer.records.every((r) => r.errorCode === 'NotLeaderException'))
              throw new NotLeaderError(answer.records[0]?.errorMessage ?? 'not the leader');
            return answer;
          });
          encryptionType = response.encryptionType;
          response.records.forEach((r, k) => (results[indexes[k] as number] = r));
        } catch (error) {
          if (groups.size === 1 || !(error instanceof RheosError) || !error.retriable) throw error;
          const failed: PutRecordsResultEntry = {
            sequenceNumber: '',
            shardId: '',
            errorCode: error.indeterminate ? 'InternalFailure' : error.name,
            errorMessage: error.message,
            duplicate: false,
          };
          for (const i of indexes) results[i] = failed;
        }
      }),
    );
    return {
      failedRecordCount: results.filter((r) => r.errorCode !== '').length,
      records: results,
      encryptionType,
    };
  }

  async getShardIterator(
    request: DeepPartial<GetShardIteratorRequest>,
  ): Promise<GetShardIteratorResponse> {
    const full = GetShardIteratorRequest.fromPartial(request);
    const name = streamNameOf(full);
    const route = (await this.routesOf(name))?.byId.get(full.shardId);
    if (name === undefined || route === undefined) return this.anyNode(Data.getShardIterator, full);
    let home = '';
    const response = await this.toShard(name, route, true, (endpoint) => {
      home = endpoint;
      return this.call(Data.getShardIterator, full, endpoint);
    });
    this.rememberIterator(response.shardIterator, home);
    return response;
  }

  /** GetRecords at the broker that issued the iterator; any replica of the shard can serve it. */
  async getRecords(request: DeepPartial<GetRecordsRequest>): Promise<GetRecordsResponse> {
    const full = GetRecordsRequest.fromPartial(request);
    let endpoint = this.iteratorHomes.get(full.shardIterator) ?? this.endpoint(0);
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await this.call(Data.getRecords, full, endpoint);
        this.iteratorHomes.delete(full.shardIterator);
        if (response.nextShardIterator !== undefined)
          this.rememberIterator(response.nextShardIterator, endpoint);
        return response;
      } catch (error) {
        if (!(error instanceof RheosError) || attempt + 1 >= this.maxRouteAttempts) throw error;
        if (error instanceof NotLeaderError && error.leader !== undefined) {
          endpoint = error.leader.endpoint;
        } else if (
          error.name === 'ServiceUnavailableException' ||
          error instanceof NotLeaderError
        ) {
          // Reads are idempotent: any other broker will do, and will name a replica if need be.
          endpoint = this.endpoint(attempt + 1);
        } else {
          throw error;
        }
        await sleep(backoffDelayMs(attempt, this.backoff));
      }
    }
  }

  async createStream(request: DeepPartial<CreateStreamRequest>): Promise<void> {
    await this.call(Control.createStream, CreateStreamRequest.fromPartial(request));
  }

  async deleteStream(request: DeepPartial<DeleteStreamRequest>): Promise<void> {
    await this.call(Control.deleteStream, DeleteStreamRequest.fromPartial(request));
  }

  describeStream(request: DeepPartial<DescribeStreamRequest>): Promise<DescribeStreamResponse> {
    return this.anyNode(Control.describeStream, DescribeStreamRequest.fromPartial(request));
  }

  describeStreamSummary(
    request: DeepPartial<DescribeStreamSummaryRequest>,
  ): Promise<DescribeStreamSummaryResponse> {
    return this.anyNode(
      Control.describeStreamSummary,
      DescribeStreamSummaryRequest.fromPartial(request),
    );
  }

  listStreams(request: DeepPartial<ListStreamsRequest> = {}): Promise<ListStreamsResponse> {
    return this.anyNode(Control.listStreams, ListStreamsRequest.fromPartial(request));
  }

  listShards(request: DeepPartial<ListShardsRequest>): Promise<ListShardsResponse> {
    return this.anyNode(Control.listShards, ListShardsRequest.fromPartial(request));
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
    return this.anyNode(Control.listTagsForStream, ListTagsForStreamRequest.fromPartial(request));
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

  async splitShard(request: DeepPartial<SplitShardRequest>): Promise<void> {
    await this.call(Control.splitShard, SplitShardRequest.fromPartial(request));
  }

  async mergeShards(request: DeepPartial<MergeShardsRequest>): Promise<void> {
    await this.call(Control.mergeShards, MergeShardsRequest.fromPartial(request));
  }

  updateShardCount(
    request: DeepPartial<UpdateShardCountRequest>,
  ): Promise<UpdateShardCountResponse> {
    return this.call(Control.updateShardCount, UpdateShardCountRequest.fromPartial(request));
  }

  /**
   * SubscribeToShard: the shard's leader pushes events (records as they commit, a continuation
   * sequence number, MillisBehindLatest, the children at a closed shard's end) for up to 5
   * minutes; the iterator ends with the subscription, or when `signal` aborts.
   */
  async *subscribeToShard(
    request: DeepPartial<SubscribeToShardRequest>,
    options: { readonly signal?: AbortSignal } = {},
  ): AsyncGenerator<SubscribeToShardResponse> {
    const full = SubscribeToShardRequest.fromPartial(request);
    const streamName = parseConsumerArn(full.consumerArn)?.streamName;
    const route =
      streamName === undefined
        ? undefined
        : (await this.routesOf(streamName))?.byId.get(full.shardId);
    const endpoint =
      (route === undefined ? undefined : endpointFor(route, 0)) ?? this.endpoint(this.preferred);
    yield* streamCall(this.channels.get(endpoint), Data.subscribeToShard, full, options.signal);
  }

  registerStreamConsumer(
    request: DeepPartial<RegisterStreamConsumerRequest>,
  ): Promise<RegisterStreamConsumerResponse> {
    return this.call(
      Control.registerStreamConsumer,
      RegisterStreamConsumerRequest.fromPartial(request),
    );
  }

  describeStreamConsumer(
    request: DeepPartial<DescribeStreamConsumerRequest>,
  ): Promise<DescribeStreamConsumerResponse> {
    return this.anyNode(
      Control.describeStreamConsumer,
      DescribeStreamConsumerRequest.fromPartial(request),
    );
  }

  listStreamConsumers(
    request: DeepPartial<ListStreamConsumersRequest>,
  ): Promise<ListStreamConsumersResponse> {
    return this.anyNode(
      Control.listStreamConsumers,
      ListStreamConsumersRequest.fromPartial(request),
    );
  }

  async deregisterStreamConsumer(
    request: DeepPartial<DeregisterStreamConsumerRequest>,
  ): Promise<void> {
    await this.call(
      Control.deregisterStreamConsumer,
      DeregisterStreamConsumerRequest.fromPartial(request),
    );
  }

  // Consumer groups. Heartbeats and describes are safe to repeat on another node; a take is not
  // (it moves the lease counter), a checkpoint at the same counter is.

  groupHeartbeat(request: DeepPartial<GroupHeartbeatRequest>): Promise<GroupHeartbeatResponse> {
    return this.anyNode(Control.groupHeartbeat, GroupHeartbeatRequest.fromPartial(request));
  }

  takeLease(request: DeepPartial<TakeLeaseRequest>): Promise<TakeLeaseResponse> {
    return this.anyNode(Control.takeLease, TakeLeaseRequest.fromPartial(request), false);
  }

  async checkpointLease(request: DeepPartial<CheckpointLeaseRequest>): Promise<void> {
    await this.anyNode(Control.checkpointLease, CheckpointLeaseRequest.fromPartial(request));
  }

  async releaseLease(request: DeepPartial<ReleaseLeaseRequest>): Promise<void> {
    await this.anyNode(Control.releaseLease, ReleaseLeaseRequest.fromPartial(request), false);
  }

  describeGroup(request: DeepPartial<DescribeGroupRequest>): Promise<DescribeGroupResponse> {
    return this.anyNode(Control.describeGroup, DescribeGroupRequest.fromPartial(request));
  }

  listGroups(): Promise<ListGroupsResponse> {
    return this.anyNode(Control.listGroups, ListGroupsRequest.fromPartial({}));
  }

  async deleteGroup(request: DeepPartial<DeleteGroupRequest>): Promise<void> {
    await this.anyNode(Control.deleteGroup, DeleteGroupRequest.fromPartial(request), false);
  }

  describeLimits(): Promise<DescribeLimitsResponse> {
    return this.anyNode(Control.describeLimits, DescribeLimitsRequest.fromPartial({}));
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

  /** Forgets where a stream's shards live (the next call asks again). */
  refreshRoutes(streamName: string): void {
    this.routes.invalidate(streamName);
  }

  close(): void {
    this.putStreams.close();
    this.channels.close();
  }

  /**
   * Runs a shard's call where its leader is, retrying definite routing failures: a NOT_LEADER
   * (with or without a hint) and a broker that could not be reached. Idempotent calls (reads) are
   * also retried after an indeterminate transport failure.
   */
  private async toShard<T>(
    streamName: string,
    route: ShardRoute,
    idempotent: boolean,
    send: (endpoint: string) => Promise<T>,
    onRetry?: (error: RheosError) => void,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const endpoint = endpointFor(route, attempt) ?? this.endpoint(attempt);
      try {
        return await send(endpoint);
      } catch (error) {
        if (!(error instanceof RheosError)) throw error;
        const unreachable = error.name === 'ServiceUnavailableException';
        const reroute =
          error instanceof NotLeaderError || (unreachable && (!error.indeterminate || idempotent));
        if (error instanceof NotLeaderError && error.leader !== undefined) {
          route.leader = error.leader;
        } else if (reroute || unreachable) {
          // The leader we knew is gone or never answered: ask around again.
          route.leader = undefined;
          this.routes.invalidate(streamName);
        }
        if (!reroute || attempt + 1 >= this.maxRouteAttempts) throw error;
        onRetry?.(error);
        await sleep(backoffDelayMs(attempt, this.backoff));
      }
    }
  }

  /**
   * The stream's routes, or undefined when they cannot be had (no such stream, a bad name): the
   * request then goes out unrouted, so the server answers it with exactly the error it would
   * have given anyway, validation first.
   */
  private async routesOf(name: string | undefined): Promise<StreamRoutes | undefined> {
    if (name === undefined) return undefined;
    try {
      return await this.routes.get(name);
    } catch {
      return undefined;
    }
  }

  /**
   * Any node will do; move on to the next when one cannot be reached (for a call that is not
   * idempotent, only when it definitely did not act on it). A node that answers, even with an
   * error, becomes the preferred one.
   */
  private async anyNode<Req, Res>(
    method: UnaryMethod<Req, Res>,
    request: Req,
    idempotent = true,
  ): Promise<Res> {
    for (let attempt = 0; ; attempt++) {
      const endpoint = this.endpoint(this.preferred + attempt);
      try {
        const response = await this.call(method, request, endpoint);
        this.preferred = this.endpoints.indexOf(endpoint);
        return response;
      } catch (error) {
        const unavailable =
          error instanceof RheosError && error.name === 'ServiceUnavailableException';
        if (!unavailable) this.preferred = this.endpoints.indexOf(endpoint);
        const moveOn = unavailable && (idempotent || !error.indeterminate);
        if (!moveOn || attempt + 1 >= Math.max(this.endpoints.length, 2)) throw error;
      }
    }
  }

  private endpoint(i: number): string {
    return this.endpoints[i % this.endpoints.length] as string;
  }

  private rememberIterator(token: string, endpoint: string): void {
    if (this.iteratorHomes.size >= MAX_ITERATOR_HOMES) {
      this.iteratorHomes.delete(this.iteratorHomes.keys().next().value as string);
    }
    this.iteratorHomes.set(token, endpoint);
  }

  /** A PutRecords call to one broker, pipelined on its stream while that has room. */
  private putCall(request: PutRecordsRequest, endpoint: string): Promise<PutRecordsResponse> {
    let sizeBytes = 0;
    for (const r of request.records) sizeBytes += (r.data?.length ?? 0) + r.partitionKey.length;
    if (!this.putStreams.fits(endpoint, sizeBytes)) {
      return this.call(Data.putRecords, request, endpoint);
    }
    return this.putStreams.send(endpoint, request, sizeBytes, this.deadlineMs);
  }

  private call<Req, Res>(
    method: UnaryMethod<Req, Res>,
    request: Req,
    endpoint = this.endpoint(this.preferred),
  ): Promise<Res> {
    return unaryCall(this.channels.get(endpoint), method, request, this.deadlineMs);
  }
}

function isValidPutRecords(request: PutRecordsRequest): boolean {
  try {
    checkPutRecords(request);
    return true;
  } catch {
    return false;
  }
}

function streamNameOf(request: { streamName: string; streamArn: string }): string | undefined {
  if (request.streamName !== '') return request.streamName;
  return request.streamArn === '' ? undefined : streamNameOfArn(request.streamArn);
}

export function createClient(options: RheosClientOptions): RheosClient {
  return new RheosClient(options);
}
