import type { Registry } from 'prom-client';
import { startAdminServer, type RunningAdminServer } from './admin-server.js';
import { startGrpcServer, type GrpcServerOptions, type RunningGrpcServer } from './grpc-server.js';
import { splitHostPort } from './host-port.js';

/**
 * A node's front ends over parts that are already running: the gRPC API and, when asked, the
 * admin HTTP server. If one fails to start, or on close, they stop first (the API lets in-flight
 * calls finish for up to 2 s) and then `stopBelow` stops everything under them, in its order.
 */

export interface FrontEndsOptions {
  readonly grpc: GrpcServerOptions;
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
  close(): Promise<void>;
}

export async function startFrontEnds(options: FrontEndsOptions): Promise<FrontEnds> {
  let api: RunningGrpcServer | undefined;
  let admin: RunningAdminServer | undefined;
  try {
    api = await startGrpcServer(options.grpc);
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
    await api?.close(0);
    await options.stopBelow();
    throw error;
  }
  const apiServer = api;
  const adminServer = admin;
  let closing: Promise<void> | undefined;
  return {
    apiPort: apiServer.port,
    adminPort: adminServer?.port ?? null,
    close: () =>
      (closing ??= (async () => {
        await apiServer.close(2_000);
        await adminServer?.close();
        await options.stopBelow();
      })()),
  };
}
