import { DEFAULT_SUBSCRIPTION_LIMITS } from '../broker/subscriptions.js';
import { mkdir } from 'node:fs/promises';
import { Broker } from '../broker/broker.js';
import { createClient } from '../client/client.js';
import type { ClusterConfig } from '../broker/cluster-config.js';
import { DataPlane } from '../broker/data-plane.js';
import { GrpcPeerTransport } from '../broker/grpc-peer-transport.js';
import { raftReplicas } from '../broker/raft-factory.js';
import { RaftHost } from '../broker/raft-host.js';
import { ReplicaManager } from '../broker/replica-manager.js';
import { moveReplicaService } from '../broker/move-replica.js';
import { sealShardService } from '../broker/seal-shard.js';
import { shardMap } from '../broker/shard-map.js';
import { DEFAULT_IDENTITY, type ServiceIdentity } from '../common/arn.js';
import { systemClock, type Clock } from '../common/clock.js';
import { silentLogger, type Logger } from '../common/logger.js';
import { GroupCommitWriter } from '../storage/group-commit.js';
import type { KvStore } from '../storage/kv-store.js';
import { openBrokerStore } from '../storage/log-store.js';
import { storedGroups } from '../storage/shard-log.js';
import { startFrontEnds } from './front-ends.js';
import { exitOnStorageFailure, peerServer } from './peer-server.js';
import { coordinatedTopology, staticTopology, type BrokerTopology } from './broker-topology.js';
import { splitHostPort } from './host-port.js';
import { createNodeMetrics } from './node-metrics.js';
import type { LimitsMode } from './shard-limits.js';

/**
 * One broker of a cluster (`rheos broker`): the shard replicas placed here (by the coordinators,
 * or by a cluster file), each a member of its shard's Raft group, with the native gRPC API for
 * clients and the peer service for the other brokers, all data in one LevelDB under `dataDir`.
 */

/** A broker of a cluster whose coordinators place replicas (`rheos broker --coordinators`). */
export interface CoordinatedCluster {
  readonly clusterId: string;
  /** host:port of every coordinator's API (any of them will do). */
  readonly coordinators: readonly string[];
  /** Failure domain (rack, availability zone); '' when not given. */
  readonly zone?: string;
  /** host:port other brokers and clients reach this broker at (default: where it listens). */
  readonly advertiseApi?: string;
  readonly advertisePeer?: string;
  /** How long to wait at start for the coordinators to take the registration. */
  readonly registerTimeoutMs?: number;
  /**
   * A returning broker with a stored copy of the metadata starts from it when no coordinator has
   * answered after this long (and registers once they are back).
   */
  readonly offlineStartAfterMs?: number;
}

export interface BrokerNodeConfig {
  /** Static placement from a cluster file, or placement by the coordinators. */
  readonly cluster: ClusterConfig | CoordinatedCluster;
  /** Required with a cluster file; with coordinators, the id this data folder holds, if any. */
  readonly brokerId?: number;
  readonly dataDir: string;
  /** Addresses to listen on; default: the cluster file's addresses of this broker (required with coordinators). */
  readonly apiListen?: string;
  readonly peerListen?: string;
  /** How this broker reaches each peer (default: the cluster file); tests put proxies here. */
  readonly peerAddresses?: ReadonlyMap<number, string>;
  /** host:port for the Kinesis-compatible HTTP API (AWS SDK, AWS CLI); null: not served. */
  readonly httpListen?: string | null;
  /** host:port for /metrics and /healthz; null: not served. */
  readonly adminListen?: string | null;
  readonly identity?: ServiceIdentity;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly tickMs?: number;
  /**
   * Bytes per second per peer on the catch-up lane, which carries what replica moves copy (and
   * what lagging followers fetch): the move rate that keeps moves from starving client traffic.
   */
  readonly catchUpBytesPerSecond?: number;
  readonly wrapKv?: (kv: KvStore) => KvStore;
  readonly onFatal?: (error: unknown) => void;
  readonly retentionCheckIntervalMs?: number;
  /** 'off': no stream's shard limits are enforced on this broker (default 'aws': they are). */
  readonly limits?: LimitsMode;
  /** How long a SubscribeToShard subscription lasts (default 5 minutes, as in Kinesis). */
  readonly subscriptionLifetimeMs?: number;
  /** Test-only: acknowledge writes before they commit (to prove the cluster test can fail). */
  readonly unsafeAckBeforeCommit?: boolean;
}

export interface RunningBroker {
  readonly id: number;
  readonly apiAddress: string;
  readonly peerAddress: string;
  readonly adminPort: number | null;
  readonly httpPort: number | null;
  readonly host: RaftHost;
  readonly broker: Broker;
  readonly transport: GrpcPeerTransport;
  close(): Promise<void>;
}

export async function startBroker(config: BrokerNodeConfig): Promise<RunningBroker> {
  const clock = config.clock ?? systemClock;
  const logger = config.logger ?? silentLogger();
  const identity = config.identity ?? DEFAULT_IDENTITY;
  await mkdir(config.dataDir, { recursive: true });
  const inputs = {
    ...(config.brokerId === undefined ? {} : { brokerId: config.brokerId }),
    dataDir: config.dataDir,
    ...(config.apiListen === undefined ? {} : { apiListen: config.apiListen }),
    ...(config.peerListen === undefined ? {} : { peerListen: config.peerListen }),
    ...(config.peerAddresses === undefined ? {} : { peerAddresses: config.peerAddresses }),
    identity,
    clock,
    logger,
  };
  const opened = await openBrokerStore(config.dataDir, {
    onRecovery: (report) => {
      if (report.tornBytes > 0 || report.replayedFrames > 0)
        logger.warn({ ...report }, 'storage recovered from its log segments');
    },
  });
  let topology: BrokerTopology;
  try {
    topology =
      'coordinators' in config.cluster
        ? await coordinatedTopology(config.cluster, inputs, opened)
        : staticTopology(config.cluster, inputs);
  } catch (error) {
    await opened.close();
    throw error;
  }
  const kv = config.wrapKv ? config.wrapKv(opened) : opened;
  const onFatal = config.onFatal ?? exitOnStorageFailure(logger);
  const writer = new GroupCommitWriter(kv, { onFatal });
  const { metadata } = topology;
  const apiOf = (id: number) => topology.addressOf(id);
  const transport = new GrpcPeerTransport({
    nodeId: topology.id,
    clusterId: topology.clusterId,
    peers: topology.peers,
    clock,
    logger,
    ...(config.catchUpBytesPerSecond === undefined
      ? {}
      : { catchUpBytesPerSecond: config.catchUpBytesPerSecond }),
  });
  const host = new RaftHost({
    nodeId: topology.id,
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
    ...(topology.deletesUnplaced ? { storedGroups: () => storedGroups(kv) } : {}),
    ...(config.retentionCheckIntervalMs === undefined
      ? {}
      : { retentionCheckIntervalMs: config.retentionCheckIntervalMs }),
    enforceShardLimits: config.limits !== 'off',
  });
  const peerService = peerServer(transport);
  /** Everything under the client-facing servers, in dependency order. */
  const stopBelowApi = async (): Promise<void> => {
    topology.close();
    await host.stop();
    await transport.close();
    peerService.stop();
    await broker.stop();
    await writer.drain();
    await kv.close();
  };
  try {
    await peerService.listen(topology.peerListen);
    await broker.start();
    host.start();
    transport.start();
    topology.attach({ transport, host });
  } catch (error) {
    await stopBelowApi();
    throw error;
  }
  const [apiHost, apiPort] = splitHostPort(topology.apiListen);
  const adminListen = config.adminListen;
  const dataPlane = new DataPlane({
    broker,
    keyring: metadata,
    clock,
    identity,
    ...(config.subscriptionLifetimeMs === undefined
      ? {}
      : {
          subscriptionLimits: {
            ...DEFAULT_SUBSCRIPTION_LIMITS,
            lifetimeMs: config.subscriptionLifetimeMs,
          },
        }),
  });
  const front = await startFrontEnds({
    grpc: {
      host: apiHost,
      port: apiPort,
      data: dataPlane,
      subscribeToShard: (request, emit, signal) =>
        dataPlane.subscribeToShard(request, emit, signal),
      control: topology.controlPlane(),
      ...(topology.coordinatorApi === undefined ? {} : { coordinator: topology.coordinatorApi() }),
      shardMap: shardMap({ broker, identity, selfId: topology.id, endpointOf: apiOf }),
      sealShard: sealShardService(broker, topology.clusterId),
      moveReplica: moveReplicaService(host, topology.clusterId),
      logger,
    },
    ...(config.httpListen === undefined || config.httpListen === null
      ? {}
      : {
          gateway: {
            listen: config.httpListen,
            client: (apiAddress: string) => createClient({ endpoint: apiAddress }),
          },
        }),
    ...(adminListen === undefined || adminListen === null
      ? {}
      : {
          admin: {
            listen: adminListen,
            registry: () => createNodeMetrics(writer, replicas),
            healthy: () => !writer.failed,
          },
        }),
    stopBelow: stopBelowApi,
  });
  return {
    id: topology.id,
    apiAddress: `${apiHost}:${front.apiPort}`,
    peerAddress: topology.peerListen,
    adminPort: front.adminPort,
    httpPort: front.httpPort,
    host,
    broker,
    transport,
    close: () => front.close(),
  };
}
