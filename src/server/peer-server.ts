import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { GrpcPeerTransport } from '../broker/grpc-peer-transport.js';
import { GRPC_CHANNEL_OPTIONS } from '../common/grpc-options.js';
import type { Logger } from '../common/logger.js';
import { raiseReceiveWindows } from './grpc-server.js';

/** The server of a node's peer service (Raft traffic between brokers, or between coordinators). */
export interface PeerServer {
  listen(address: string): Promise<void>;
  /** Peers retransmit: nothing in flight needs to finish. */
  stop(): void;
}

export function peerServer(transport: GrpcPeerTransport): PeerServer {
  const server = new Server({
    ...GRPC_CHANNEL_OPTIONS,
    // Peers ping every 5 s to notice a dead link quickly; accept that.
    'grpc.keepalive_time_ms': 5_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.http2.min_ping_interval_without_data_ms': 1_000,
  });
  const { definition, implementation } = transport.service();
  server.addService(definition, implementation);
  return {
    listen: async (address) => {
      await new Promise<number>((resolve, reject) =>
        server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) =>
          error ? reject(error) : resolve(port),
        ),
      );
      raiseReceiveWindows(server);
    },
    stop: () => server.forceShutdown(),
  };
}

/** A storage write error is fail-stop (DESIGN.md): log it and exit with code 70. */
export function exitOnStorageFailure(logger: Logger): (error: unknown) => void {
  return (error) => {
    logger.fatal({ err: error }, 'storage write failed; stopping (fail-stop)');
    process.exit(70);
  };
}
