import { Server, ServerCredentials } from '@grpc/grpc-js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Broker } from '../broker/broker.js';
import { brokerById, type ClusterConfig } from '../broker/cluster-config.js';
import { DataPlane } from '../broker/data-plane.js';
import { GrpcPeerTransport } from '../broker/grpc-peer-transport.js';
import { raftReplicas } from '../broker/raft-factory.js';
import { RaftHost } from '../broker/raft-host.js';
import { ReplicaManager } from '../broker/replica-manager.js';
import { shardMap } from '../broker/shard-map.js';
import { StaticMetadata } from '../broker/static-metadata.js';
import { DEFAULT_IDENTITY, type ServiceIdentity } from '../common/arn.js';
import { systemClock, type Clock } from '../common/clock.js';
import { DEFAULT_SHARD_LIMITS } from '../common/limits.js';
import { GRPC_CHANNEL_OPTIONS } from '../common/grpc-options.js';
import { silentLogger, type Logger } from '../common/logger.js';
import { ControlPlane } from '../coordinator/control-plane.js';
import { DEFAULT_ACCOUNT_LIMITS } from '../coordinator/model.js';
import { GroupCommitWriter } from '../storage/group-commit.js';
import { openKvStore, type KvStore } from '../storage/kv-store.js';
import { startAdminServer, type RunningAdminServer } from './admin-server.js';
import { raiseReceiveWindows, startGrpcServer, type RunningGrpcServer } from './grpc-server.js';
import { inProcessApi } from './native-api.js';
import { createNodeMetrics } from './node-metrics.js';

/**
 * One broker of a cluster with static placement (`rheos broker`): the shard replicas the cluster
 * file places here, each a member of its shard's Raft group, with the native gRPC API for clients
 * and the peer service for the other brokers, all data in one LevelDB under `dataDir`.
 */

export interface BrokerNodeConfig {
  readonly cluster: ClusterConfig;
  readonly brokerId: number;
  readonly dataDir: string;
  /** Addresses to listen on; default: the cluster file's addresses of this broker. */
  readonly apiListen?: string;
  readonly peerListen?: string;
  /** How this broker reaches each peer (default: the cluster file); tests put proxies here. */
  readonly peerAddresses?: ReadonlyMap<number, string>;
  /** host:port for /metrics and /healthz; null: not served. */
  readonly adminListen?: string | null;
  readonly identity?: ServiceIdentity;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly tickMs?: number;
  readonly wrapKv?: (kv: KvStore) => KvStore;
  readonly onFatal?: (error: unknown) => void;
  readonly retentionCheckIntervalMs?: number;
  /** Test-only: acknowledge writes before they commit (to prove the cluster test can fail). */
  readonly unsafeAckBeforeCommit?: boolean;
}

export interface RunningBroker {
  readonly apiAddress: string;
  readonly peerAddress: string;
  readonly adminPort: number | null;
  readonly host: RaftHost;
  readonly broker: Broker;
  readonly transport: GrpcPeerTransport;
  close(): Promise<void>;
}

export async function startBroker(config: BrokerNodeConfig): Promise<RunningBroker> {
  const clock = config.clock ?? systemClock;
  const logger = config.logger ?? silentLogger();
  const identity = config.identity ?? DEFAULT_IDENTITY;
  const self = brokerById(config.cluster, config.brokerId);
  if (self === undefined) throw new Error(`broker ${config.brokerId} is not in the cluster file`);
  await mkdir(config.dataDir, { recursive: true });
  const opened = await openKvStore(join(config.dataDir, 'broker.db'));
  const kv = config.wrapKv ? config.wrapKv(opened) : opened;
  const onFatal =
    config.onFatal ??
    ((error: unknown) => {
      logger.fatal({ err: error }, 'storage write failed; stopping (fail-stop)');
      process.exit(70);
    });
  const writer = new GroupCommitWriter(kv, { onFatal });
  const metadata = new StaticMetadata(config.cluster, {
    accountId: identity.accountId,
    limits: DEFAULT_ACCOUNT_LIMITS,
  });
  const apiOf = (id: number) => brokerById(config.cluster, id)?.api;
  const peers = new Map<number, string>();
  for (const b of config.cluster.brokers) {
    if (b.id !== self.id) peers.set(b.id, config.peerAddresses?.get(b.id) ?? b.peer);
  }
  const transport = new GrpcPeerTransport({
    nodeId: self.id,
    clusterId: config.cluster.clusterId,
    peers,
    clock,
    logger,
  });
  const host = new RaftHost({
    nodeId: self.id,
    kv,
    writer,
    transport,
    clock,
    logger,
    addressOf: apiOf,
    ...(config.tickMs === undefined ? {} : { tickMs: config.tickMs }),
    ...(config.unsafeAckBeforeCommit === true ? { unsafeAckBeforeCommit: true } : {}),
  });
  const replicas = new ReplicaManager({
    factory: raftReplicas({ host, kv, addressOf: apiOf }),
    clock,
    logger,
  });
  const broker = new Broker({
    metadata,
    replicas,
    clock,
    logger,
    ...(config.retentionCheckIntervalMs === undefined
      ? {}
      : { retentionCheckIntervalMs: config.retentionCheckIntervalMs }),
  });
  const peerServer = new Server({
    ...GRPC_CHANNEL_OPTIONS,
    'grpc.keepalive_time_ms': 5_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.http2.min_ping_interval_without_data_ms': 1_000,
  });
  const { definition, implementation } = transport.service();
  peerServer.addService(definition, implementation);
  /** Everything under the client-facing servers, in dependency order. */
  const stopBelowApi = async (): Promise<void> => {
    await host.stop();
    await transport.close();
    peerServer.forceShutdown();
    await broker.stop();
    await writer.drain();
    await kv.close();
  };
  let api: RunningGrpcServer | undefined;
  let admin: RunningAdminServer | undefined;
  try {
    const peerAddress = config.peerListen ?? self.peer;
    await new Promise<number>((resolve, reject) =>
      peerServer.bindAsync(peerAddress, ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    );
    raiseReceiveWindows(peerServer);
    await broker.start();
    host.start();
    transport.start();
    const dataPlane = new DataPlane({ broker, keyring: metadata, clock, identity });
    const controlPlane = new ControlPlane({
      metadata,
      clock,
      identity,
      defaultShardLimits: DEFAULT_SHARD_LIMITS,
      defaultReplicationFactor: 3,
      maxReplicationFactor: 3,
    });
    const [apiHost, apiPort] = splitHostPort(config.apiListen ?? self.api);
    api = await startGrpcServer({
      host: apiHost,
      port: apiPort,
      api: inProcessApi(dataPlane, controlPlane),
      shardMap: shardMap({ broker, identity, selfId: self.id, endpointOf: apiOf }),
      logger,
    });
    if (config.adminListen !== undefined && config.adminListen !== null) {
      const [adminHost, adminPort] = splitHostPort(config.adminListen);
      admin = await startAdminServer({
        host: adminHost,
        port: adminPort,
        registry: createNodeMetrics(writer, replicas),
        healthy: () => !writer.failed,
      });
    }
  } catch (error) {
    await api?.close(0);
    await stopBelowApi();
    throw error;
  }
  const apiServer = api;
  const adminServer = admin;
  let closing: Promise<void> | undefined;
  return {
    apiAddress: `${splitHostPort(config.apiListen ?? self.api)[0]}:${apiServer.port}`,
    peerAddress: config.peerListen ?? self.peer,
    adminPort: adminServer?.port ?? null,
    host,
    broker,
    transport,
    close: () =>
      (closing ??= (async () => {
        await apiServer.close(2_000);
        await adminServer?.close();
        await stopBelowApi();
      })()),
  };
}

function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}
