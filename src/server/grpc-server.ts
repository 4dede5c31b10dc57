import {
  Server,
  ServerCredentials,
  type handleUnaryCall,
  type MethodDefinition,
  type ServiceDefinition,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import { GRPC_CHANNEL_OPTIONS } from '../common/grpc-options.js';
import { toServiceError } from '../common/grpc-errors.js';
import type { Logger } from '../common/logger.js';
import { RheosError, ValidationError } from '../common/errors.js';
import {
  ControlPlaneServiceService,
  type ControlPlaneServiceServer,
} from '../gen/rheos/v1/control.js';
import {
  ClusterServiceService,
  type ClusterServiceServer,
  type GetShardMapRequest,
  type GetShardMapResponse,
} from '../gen/rheos/v1/cluster.js';
import { DataPlaneServiceService, type DataPlaneServiceServer } from '../gen/rheos/v1/data.js';
import type { NativeApi } from './native-api.js';

export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  /** The implementation the services expose. */
  readonly api: NativeApi;
  /** Cluster routing (GetShardMap); every node serves it. */
  readonly shardMap: (request: GetShardMapRequest) => Promise<GetShardMapResponse>;
  readonly logger: Logger;
}

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
  const { api, logger } = options;
  const unary = <Req, Res>(name: string, fn: (request: Req) => Promise<Res>) =>
    handler(name, fn, logger);
  const empty = {};
  const dataService: DataPlaneServiceServer = {
    putRecord: unary('PutRecord', (r) => api.putRecord(r)),
    putRecords: unary('PutRecords', (r) => api.putRecords(r)),
    getShardIterator: unary('GetShardIterator', (r) => api.getShardIterator(r)),
    getRecords: unary('GetRecords', (r) => api.getRecords(r)),
  };
  const controlService: ControlPlaneServiceServer = {
    createStream: unary('CreateStream', async (r) => (await api.createStream(r), empty)),
    deleteStream: unary('DeleteStream', async (r) => (await api.deleteStream(r), empty)),
    describeStream: unary('DescribeStream', (r) => api.describeStream(r)),
    describeStreamSummary: unary('DescribeStreamSummary', (r) => api.describeStreamSummary(r)),
    listStreams: unary('ListStreams', (r) => api.listStreams(r)),
    listShards: unary('ListShards', (r) => api.listShards(r)),
    addTagsToStream: unary('AddTagsToStream', async (r) => (await api.addTagsToStream(r), empty)),
    removeTagsFromStream: unary(
      'RemoveTagsFromStream',
      async (r) => (await api.removeTagsFromStream(r), empty),
    ),
    listTagsForStream: unary('ListTagsForStream', (r) => api.listTagsForStream(r)),
    increaseStreamRetentionPeriod: unary(
      'IncreaseStreamRetentionPeriod',
      async (r) => (await api.increaseStreamRetentionPeriod(r), empty),
    ),
    decreaseStreamRetentionPeriod: unary(
      'DecreaseStreamRetentionPeriod',
      async (r) => (await api.decreaseStreamRetentionPeriod(r), empty),
    ),
    updateStreamMode: unary(
      'UpdateStreamMode',
      async (r) => (await api.updateStreamMode(r), empty),
    ),
    describeLimits: unary('DescribeLimits', () => api.describeLimits()),
  };
  const clusterService: ClusterServiceServer = {
    getShardMap: unary('GetShardMap', (r: GetShardMapRequest) => options.shardMap(r)),
  };
  server.addService(safeDecoding(DataPlaneServiceService), dataService);
  server.addService(safeDecoding(ClusterServiceService), clusterService);
  server.addService(safeDecoding(ControlPlaneServiceService), controlService);
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
function handler<Req, Res>(
  method: string,
  fn: (request: Req) => Promise<Res> | Res,
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
        return fn(call.request);
      })
      .then(
        (response) => answer(undefined, response),
        (error: unknown) => answer(error),
      );
  };
}
