import type { Registry } from 'prom-client';
import { startAdminServer, type RunningAdminServer } from './admin-server.js';
import { startGrpcServer, type GrpcServerOptions, type RunningGrpcServer } from './grpc-server.js';
import { startGateway, type RunningGateway } from '../gateway/gateway.js';
import { splitHostPort } from './host-port.js';
import type { NativeApi } from './native-api.js';

/**
 * A node's front ends over parts that are already running: the gRPC API and, when asked, the
 * Kinesis HTTP gateway and the admin HTTP server. If one fails to start, or on close, they stop first (the API lets in-flight
 * calls finish for up to 2 s) and then `stopBelow` stops everything under them, in its order.
 */

export interface FrontEndsOptions {
  readonly grpc: GrpcServerOptions;
  /**
   * The Kinesis-compatible HTTP API, over a client of this node's own gRPC API (which routes
   * every call where it belongs: control plane to the coordinators, writes to shard leaders).
   */
  readonly gateway?: {
    readonly listen: string;
    readonly client: (apiAddress: string) => NativeApi & { close(): void };
  };
  readonly admin?: {
    readonly listen: string;
    readonly registry: () => Registry;
    readonly healthy: () => boolean;
  };
  readonly stopBelow: () => Promise<void>;
}

export interface FrontEnds {
  readonly apiPort: number;
  readonly adminPort: number | null;
  readonly httpPort: number | null;
  close(): Promise<void>;
}

export async function startFrontEnds(options: FrontEndsOptions): Promise<FrontEnds> {
  let api: RunningGrpcServer | undefined;
  let admin: RunningAdminServer | undefined;
  let gateway: RunningGateway | undefined;
  let gatewayClient: (NativeApi & { close(): void }) | undefined;
  try {
    api = await startGrpcServer(options.grpc);
    if (options.gateway !== undefined) {
      const [host, port] = splitHostPort(options.gateway.listen);
      gatewayClient = options.gateway.client(`${options.grpc.host}:${api.port}`);
      gateway = await startGateway({ host, port, api: gatewayClient, logger: options.grpc.logger });
    }
    if (options.admin !== undefined) {
      const [host, port] = splitHostPort(options.admin.listen);
      admin = await startAdminServer({
        host,
        port,
        registry: options.admin.registry(),
        healthy: options.admin.healthy,
      });
    }
  } catch (error) {
    await gateway?.close();
    gatewayClient?.close();
    await api?.close(0);
    await options.stopBelow();
    throw error;
  }
  const apiServer = api;
  const adminServer = admin;
  const gatewayServer = gateway;
  const client = gatewayClient;
  let closing: Promise<void> | undefined;
  return {
    apiPort: apiServer.port,
    adminPort: adminServer?.port ?? null,
    httpPort: gatewayServer?.port ?? null,
    close: () =>
      (closing ??= (async () => {
        await gatewayServer?.close();
        client?.close();
        await apiServer.close(2_000);
        await adminServer?.close();
        await options.stopBelow();
      })()),
  };
}
