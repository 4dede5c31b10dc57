import {
  Server,
  ServerCredentials,
  type handleBidiStreamingCall,
  type handleServerStreamingCall,
  type ServerDuplexStream,
  type handleUnaryCall,
  type ServerWritableStream,
  type MethodDefinition,
  type ServiceDefinition,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import { GRPC_CHANNEL_OPTIONS } from '../common/grpc-options.js';
import { toCallError, toServiceError } from '../common/grpc-errors.js';
import { FORWARDED_HEADER } from '../common/grpc-call.js';
import type { Logger } from '../common/logger.js';
import { RheosError, ServiceUnavailableError, ValidationError } from '../common/errors.js';
import {
  ControlPlaneServiceService,
  type ControlPlaneServiceServer,
} from '../gen/rheos/v1/control.js';
import {
  ClusterServiceService,
  type ClusterServiceServer,
  type GetShardMapRequest,
  type GetShardMapResponse,
  type MoveReplicaRequest,
  type MoveReplicaResponse,
  type SealShardRequest,
  type SealShardResponse,
} from '../gen/rheos/v1/cluster.js';
import {
  CoordinatorServiceService,
  type CoordinatorServiceServer,
  type DescribeClusterRequest,
  type DescribeClusterResponse,
  type SetBrokerDrainingRequest,
  type SetBrokerDrainingResponse,
  type GetMetadataRequest,
  type GetMetadataResponse,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type RegisterBrokerRequest,
  type RegisterBrokerResponse,
} from '../gen/rheos/v1/coordinator.js';
import {
  DataPlaneServiceService,
  type DataPlaneServiceServer,
  PutRecordsRequest,
  type PutRecordsStreamRequest,
  type PutRecordsStreamResponse,
  type SubscribeToShardRequest,
  type SubscribeToShardResponse,
} from '../gen/rheos/v1/data.js';
import type { CallContext, ControlApi, DataApi } from './native-api.js';

/** The coordinator service as its implementation sees it. */
export interface CoordinatorApi {
  registerBroker(
    request: RegisterBrokerRequest,
    context: CallContext,
  ): Promise<RegisterBrokerResponse>;
  heartbeat(request: HeartbeatRequest, context: CallContext): Promise<HeartbeatResponse>;
  getMetadata(request: GetMetadataRequest, context: CallContext): Promise<GetMetadataResponse>;
  describeCluster(
    request: DescribeClusterRequest,
    context: CallContext,
  ): Promise<DescribeClusterResponse>;
  setBrokerDraining(
    request: SetBrokerDrainingRequest,
    context: CallContext,
  ): Promise<SetBrokerDrainingResponse>;
}

/** The services one server exposes; each is registered only when given. */
export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly data?: DataApi;
  readonly control?: ControlApi;
  /** Cluster routing (GetShardMap); every broker serves it. */
  readonly shardMap?: (request: GetShardMapRequest) => Promise<GetShardMapResponse>;
  /** SEAL of a shard this broker leads (the coordinator's resharding); brokers serve it. */
  readonly sealShard?: (request: SealShardRequest) => Promise<SealShardResponse>;
  /** One step of a replica move on a shard this broker leads (the coordinator's rebalancing). */
  readonly moveReplica?: (request: MoveReplicaRequest) => Promise<MoveReplicaResponse>;
  readonly coordinator?: CoordinatorApi;
  /** SubscribeToShard (a broker's DataPlane); without it the call is ServiceUnavailable. */
  readonly subscribeToShard?: SubscribeHandler;
  readonly logger: Logger;
}

/** Streams a subscription's events through `emit` until it ends or `signal` aborts. */
export type SubscribeHandler = (
  request: SubscribeToShardRequest,
  emit: (event: SubscribeToShardResponse) => Promise<void>,
  signal: AbortSignal,
) => Promise<void>;

export interface RunningGrpcServer {
  readonly port: number;
  /** Stops taking calls, lets in-flight calls finish (up to graceMs), then closes. */
  close(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const server = new Server({
    ...GRPC_CHANNEL_OPTIONS,
    // Clients ping every 30 s to find dead connections; accept that rather than GOAWAY them.
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  });
  const { logger } = options;
  const unary = <Req, Res>(
    name: string,
    fn: (request: Req, context: CallContext) => Promise<Res>,
  ) => handler(name, fn, logger);
  const empty = {};
  /** Server streams open now: ended (not cut off) when the server closes. */
  const streams = new Set<AbortController>();
  const data = options.data;
  if (data !== undefined) {
    const dataService: DataPlaneServiceServer = {
      putRecord: unary('PutRecord', (r) => data.putRecord(r)),
      putRecords: unary('PutRecords', (r) => data.putRecords(r)),
      getShardIterator: unary('GetShardIterator', (r) => data.getShardIterator(r)),
      getRecords: unary('GetRecords', (r) => data.getRecords(r)),
      subscribeToShard: streaming(options.subscribeToShard, streams, logger),
      putRecordsStream: pipelinedPuts(data, streams, logger),
    };
    server.addService(safeDecoding(DataPlaneServiceService), dataService);
  }
  const shardMap = options.shardMap;
  if (shardMap !== undefined) {
    const clusterService: ClusterServiceServer = {
      getShardMap: unary('GetShardMap', (r: GetShardMapRequest) => shardMap(r)),
      sealShard: unary('SealShard', (r: SealShardRequest) => {
        if (options.sealShard === undefined) {
          throw new ServiceUnavailableError('This node does not host shard replicas.');
        }
        return options.sealShard(r);
      }),
      moveReplica: unary('MoveReplica', (r: MoveReplicaRequest) => {
        if (options.moveReplica === undefined) {
          throw new ServiceUnavailableError('This node does not host shard replicas.');
        }
        return options.moveReplica(r);
      }),
    };
    server.addService(safeDecoding(ClusterServiceService), clusterService);
  }
  const api = options.control;
  if (api !== undefined) {
    const controlService: ControlPlaneServiceServer = {
      createStream: unary('CreateStream', async (r, c) => (await api.createStream(r, c), empty)),
      deleteStream: unary('DeleteStream', async (r, c) => (await api.deleteStream(r, c), empty)),
      describeStream: unary('DescribeStream', (r, c) => api.describeStream(r, c)),
      describeStreamSummary: unary('DescribeStreamSummary', (r, c) =>
        api.describeStreamSummary(r, c),
      ),
      listStreams: unary('ListStreams', (r, c) => api.listStreams(r, c)),
      listShards: unary('ListShards', (r, c) => api.listShards(r, c)),
      addTagsToStream: unary(
        'AddTagsToStream',
        async (r, c) => (await api.addTagsToStream(r, c), empty),
      ),
      removeTagsFromStream: unary(
        'RemoveTagsFromStream',
        async (r, c) => (await api.removeTagsFromStream(r, c), empty),
      ),
      listTagsForStream: unary('ListTagsForStream', (r, c) => api.listTagsForStream(r, c)),
      increaseStreamRetentionPeriod: unary(
        'IncreaseStreamRetentionPeriod',
        async (r, c) => (await api.increaseStreamRetentionPeriod(r, c), empty),
      ),
      decreaseStreamRetentionPeriod: unary(
        'DecreaseStreamRetentionPeriod',
        async (r, c) => (await api.decreaseStreamRetentionPeriod(r, c), empty),
      ),
      updateStreamMode: unary(
        'UpdateStreamMode',
        async (r, c) => (await api.updateStreamMode(r, c), empty),
      ),
      describeLimits: unary('DescribeLimits', (r, c) => api.describeLimits(r, c)),
      splitShard: unary('SplitShard', async (r, c) => (await api.splitShard(r, c), empty)),
      mergeShards: unary('MergeShards', async (r, c) => (await api.mergeShards(r, c), empty)),
      updateShardCount: unary('UpdateShardCount', (r, c) => api.updateShardCount(r, c)),
      registerStreamConsumer: unary('RegisterStreamConsumer', (r, c) =>
        api.registerStreamConsumer(r, c),
      ),
      describeStreamConsumer: unary('DescribeStreamConsumer', (r, c) =>
        api.describeStreamConsumer(r, c),
      ),
      listStreamConsumers: unary('ListStreamConsumers', (r, c) => api.listStreamConsumers(r, c)),
      deregisterStreamConsumer: unary(
        'DeregisterStreamConsumer',
        async (r, c) => (await api.deregisterStreamConsumer(r, c), empty),
      ),
      groupHeartbeat: unary('GroupHeartbeat', (r, c) => api.groupHeartbeat(r, c)),
      takeLease: unary('TakeLease', (r, c) => api.takeLease(r, c)),
      checkpointLease: unary(
        'CheckpointLease',
        async (r, c) => (await api.checkpointLease(r, c), empty),
      ),
      releaseLease: unary('ReleaseLease', async (r, c) => (await api.releaseLease(r, c), empty)),
      describeGroup: unary('DescribeGroup', (r, c) => api.describeGroup(r, c)),
      listGroups: unary('ListGroups', (r, c) => api.listGroups(r, c)),
      deleteGroup: unary('DeleteGroup', async (r, c) => (await api.deleteGroup(r, c), empty)),
    };
    server.addService(safeDecoding(ControlPlaneServiceService), controlService);
  }
  const coordinator = options.coordinator;
  if (coordinator !== undefined) {
    const coordinatorService: CoordinatorServiceServer = {
      registerBroker: unary('RegisterBroker', (r, c) => coordinator.registerBroker(r, c)),
      heartbeat: unary('Heartbeat', (r, c) => coordinator.heartbeat(r, c)),
      getMetadata: unary('GetMetadata', (r, c) => coordinator.getMetadata(r, c)),
      describeCluster: unary('DescribeCluster', (r, c) => coordinator.describeCluster(r, c)),
      setBrokerDraining: unary('SetBrokerDraining', (r, c) => coordinator.setBrokerDraining(r, c)),
    };
    server.addService(safeDecoding(CoordinatorServiceService), coordinatorService);
  }
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${options.host}:${options.port}`,
      ServerCredentials.createInsecure(),
      (error, bound) => (error ? reject(error) : resolve(bound)),
    );
  });
  raiseReceiveWindows(server);
  return {
    port,
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        for (const stream of streams) stream.abort();
        const force = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

const UNDECODABLE = Symbol('undecodable');

interface Undecodable {
  readonly [UNDECODABLE]: unknown;
}

function isUndecodable(request: unknown): request is Undecodable {
  return typeof request === 'object' && request !== null && UNDECODABLE in request;
}

/**
 * grpc-js answers INTERNAL when a request cannot be decoded (garbage bytes, or an int64 above
 * 2^53 where the API uses JS numbers), which clients would read as a retriable server fault. The
 * decoder is wrapped so that the handler sees the failure and answers with a definite
 * ValidationException instead.
 */
function safeDecoding<T extends ServiceDefinition>(service: T): T {
  const wrapped: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(service)) {
    wrapped[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (error) {
          return { [UNDECODABLE]: error } satisfies Undecodable;
        }
      },
    };
  }
  return wrapped as T;
}

/** HTTP/2 receive windows for uploads: a 5 MiB PutRecords should not wait for 80 window updates. */
export const STREAM_WINDOW_BYTES = 8 * 1024 * 1024;
export const CONNECTION_WINDOW_BYTES = 64 * 1024 * 1024;

/**
 * grpc-js lets a client raise its receive window ('grpc-node.flow_control_window') but not a
 * server, whose window of 64 KiB per connection caps uploads at 64 KiB per round trip for all
 * calls together (measured: ~38 MB/s of PutRecords on loopback). So each new HTTP/2 session gets
 * larger windows here. This reaches into a private field of grpc-js' Server; the test
 * "grpc server raises HTTP/2 receive windows" fails if an upgrade moves it.
 */
export function raiseReceiveWindows(server: Server): void {
  const internals = server as unknown as { http2Servers?: Map<Http2Server, unknown> };
  const http2Servers = internals.http2Servers;
  if (!(http2Servers instanceof Map))
    throw new Error('grpc-js internals changed: no http2Servers map');
  for (const http2Server of http2Servers.keys()) {
    http2Server.on('session', (session: ServerHttp2Session) => {
      session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
      session.settings({ initialWindowSize: STREAM_WINDOW_BYTES });
    });
  }
}

/**
 * Wraps a handler so it answers exactly once, maps every error to the wire error model, and logs
 * what is not the caller's fault.
 */
/**
 * A server-streaming handler for SubscribeToShard: events are written as the subscription yields
 * them, each waiting for the transport to drain when its buffer is full (backpressure); the
 * subscription ends when the client cancels, the server closes, or it ends by itself; an error
 * before or during it is sent as the call's status, with the Kinesis error name.
 */
function streaming(
  subscribe: SubscribeHandler | undefined,
  streams: Set<AbortController>,
  logger: Logger,
): handleServerStreamingCall<SubscribeToShardRequest, SubscribeToShardResponse> {
  return (call: ServerWritableStream<SubscribeToShardRequest, SubscribeToShardResponse>) => {
    const controller = new AbortController();
    streams.add(controller);
    const stop = () => controller.abort();
    call.on('cancelled', stop);
    call.on('close', stop);
    const emit = (event: SubscribeToShardResponse) =>
      new Promise<void>((resolve) => {
        if (controller.signal.aborted) return resolve();
        if (call.write(event)) return resolve();
        const done = () => {
          call.off('drain', done);
          controller.signal.removeEventListener('abort', done);
          resolve();
        };
        call.on('drain', done);
        controller.signal.addEventListener('abort', done, { once: true });
      });
    Promise.resolve()
      .then(() => {
        const request: unknown = call.request;
        if (isUndecodable(request)) {
          throw new ValidationError('The SubscribeToShard request could not be decoded.');
        }
        if (subscribe === undefined) {
          throw new ServiceUnavailableError('This node does not serve SubscribeToShard.');
        }
        return subscribe(call.request, emit, controller.signal);
      })
      .then(
        () => call.end(),
        (error: unknown) => {
          if (!(error instanceof RheosError) || error.name === 'InternalFailureException') {
            logger.error({ err: error, method: 'SubscribeToShard' }, 'subscription failed');
          }
          // grpc-js sends an 'error' emitted on a server stream as the call's status.
          call.emit('error', toServiceError(error));
        },
      )
      .finally(() => streams.delete(controller));
  };
}

/** PutRecords calls in flight on one PutRecordsStream; more are refused (clients keep fewer). */
export const MAX_STREAM_CALLS_IN_FLIGHT = 1024;

/**
 * PutRecordsStream: each message is one PutRecords call, run as the unary handler runs it and
 * answered with its call id as soon as it completes (calls of one stream run concurrently, as
 * unary calls on one connection do). The stream ends once the client has ended it and every call
 * was answered, or when the server closes (after answering what is in flight).
 */
function pipelinedPuts(
  data: DataApi,
  streams: Set<AbortController>,
  logger: Logger,
): handleBidiStreamingCall<PutRecordsStreamRequest, PutRecordsStreamResponse> {
  return (call: ServerDuplexStream<PutRecordsStreamRequest, PutRecordsStreamResponse>) => {
    const controller = new AbortController();
    streams.add(controller);
    let inFlight = 0;
    let ending = false;
    let closed = false;
    const finish = () => {
      if (closed || !ending || inFlight > 0) return;
      closed = true;
      streams.delete(controller);
      call.end();
    };
    const endWhenIdle = () => {
      ending = true;
      finish();
    };
    controller.signal.addEventListener('abort', endWhenIdle, { once: true });
    call.on('end', endWhenIdle);
    call.on('cancelled', () => {
      closed = true;
      streams.delete(controller);
    });
    const answer = (message: PutRecordsStreamResponse) => {
      if (!closed && !call.cancelled) call.write(message);
    };
    call.on('data', (message: unknown) => {
      if (isUndecodable(message)) {
        // Without its call id the call cannot be answered: the stream fails, with a definite error.
        closed = true;
        streams.delete(controller);
        call.emit(
          'error',
          toServiceError(new ValidationError('A PutRecordsStream message could not be decoded.')),
        );
        return;
      }
      const { callId, request } = message as PutRecordsStreamRequest;
      if (ending || inFlight >= MAX_STREAM_CALLS_IN_FLIGHT) {
        const why = ending
          ? 'The server is closing this stream; send the call again.'
          : `More than ${MAX_STREAM_CALLS_IN_FLIGHT} PutRecords calls are in flight on this stream.`;
        answer({ callId, error: toCallError(new ServiceUnavailableError(why)) });
        return;
      }
      inFlight++;
      Promise.resolve()
        .then(() => data.putRecords(request ?? PutRecordsRequest.fromPartial({})))
        .then(
          (response) => answer({ callId, response }),
          (error: unknown) => {
            if (!(error instanceof RheosError) || error.name === 'InternalFailureException') {
              logger.error({ err: error, method: 'PutRecordsStream' }, 'request failed');
            }
            answer({ callId, error: toCallError(error) });
          },
        )
        .finally(() => {
          inFlight--;
          finish();
        });
    });
  };
}

function handler<Req, Res>(
  method: string,
  fn: (request: Req, context: CallContext) => Promise<Res> | Res,
  logger: Logger,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    let answered = false;
    const answer = (error: unknown, response?: Res) => {
      if (answered) return;
      answered = true;
      if (error === undefined) {
        callback(null, response);
        return;
      }
      if (!(error instanceof RheosError) || error.name === 'InternalFailureException') {
        logger.error({ err: error, method }, 'request failed');
      }
      callback(toServiceError(error));
    };
    Promise.resolve()
      .then(() => {
        const request: unknown = call.request;
        if (isUndecodable(request)) {
          const why = request[UNDECODABLE];
          throw new ValidationError(
            `The ${method} request could not be decoded: ${why instanceof Error ? why.message : String(why)}.`,
          );
        }
        // Read only by the calls that care (control plane, coordinator), not on the data path.
        return fn(call.request, {
          get forwarded() {
            return call.metadata.get(FORWARDED_HEADER).length > 0;
          },
        });
      })
      .then(
        (response) => answer(undefined, response),
        (error: unknown) => answer(error),
      );
  };
}
