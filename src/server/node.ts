import { mkdir } from 'node:fs/promises';
import { Broker } from '../broker/broker.js';
import { DataPlane } from '../broker/data-plane.js';
import { ReplicaManager } from '../broker/replica-manager.js';
import { shardMap } from '../broker/shard-map.js';
import { sealLocalReplica } from '../broker/seal-shard.js';
import { singleNodeReplicas } from '../broker/single-node-factory.js';
import { ReshardDriver } from '../coordinator/reshard-driver.js';
import { DEFAULT_IDENTITY, type ServiceIdentity } from '../common/arn.js';
import { systemClock, type Clock } from '../common/clock.js';
import { DEFAULT_SHARD_LIMITS, type ShardThroughputLimits } from '../common/limits.js';
import { silentLogger, type Logger } from '../common/logger.js';
import { ControlPlane } from '../coordinator/control-plane.js';
import { MetadataService } from '../coordinator/metadata-service.js';
import { DEFAULT_ACCOUNT_LIMITS, type AccountLimits } from '../coordinator/model.js';
import { GroupCommitWriter } from '../storage/group-commit.js';
import type { KvStore } from '../storage/kv-store.js';
import { openBrokerStore } from '../storage/log-store.js';
import { MetadataStore } from '../storage/metadata-store.js';
import { startGateway, type RunningGateway } from '../gateway/gateway.js';
import { exitOnStorageFailure } from './peer-server.js';
import { startAdminServer, type RunningAdminServer } from './admin-server.js';
import { startGrpcServer, type RunningGrpcServer } from './grpc-server.js';
import { createNodeMetrics } from './node-metrics.js';
import { inProcessApi } from './native-api.js';
import type { LimitsMode } from './shard-limits.js';
import type { SubscriptionLimits } from '../broker/subscriptions.js';

/**
 * A single-node Rheos (what `rheos dev` runs): the metadata service, one broker, the native gRPC
 * API and the Kinesis-compatible HTTP API in one process, with all data in one LevelDB under
 * `dataDir`.
 */

export interface NodeConfig {
  readonly dataDir: string;
  readonly host: string;
  /** 0 picks a free port. */
  readonly grpcPort: number;
  /** null: no admin endpoint. */
  readonly adminPort: number | null;
  /** Kinesis-compatible HTTP API; null: not served. */
  readonly httpPort?: number | null;
  readonly identity?: ServiceIdentity;
  /** Limits of a stream created without any (default: Kinesis'). */
  readonly defaultShardLimits?: ShardThroughputLimits;
  /** 'off': no stream's shard limits are enforced on this node (default 'aws': they are). */
  readonly limits?: LimitsMode;
  readonly accountLimits?: AccountLimits;
  /** SubscribeToShard's lifetime and takeover time (default Kinesis': 5 minutes, 5 seconds). */
  readonly subscriptionLimits?: SubscriptionLimits;
  /** A consumer-group worker silent this long loses its leases (default 10 s). */
  readonly groupFailoverMs?: number;
  readonly retentionCheckIntervalMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Wraps the opened store (tests use it to observe every write). */
  readonly wrapKv?: (kv: KvStore) => KvStore;
  /** Called when storage fails; the default exits the process (fail-stop). */
  readonly onFatal?: (error: unknown) => void;
}

export interface RunningNode {
  readonly grpcPort: number;
  readonly adminPort: number | null;
  readonly httpPort: number | null;
  readonly grpcAddress: string;
  readonly metadata: MetadataService;
  readonly broker: Broker;
  /** Graceful stop: finish in-flight calls, flush storage, close the database. */
  close(): Promise<void>;
}

export async function startNode(config: NodeConfig): Promise<RunningNode> {
  const clock = config.clock ?? systemClock;
  const logger = config.logger ?? silentLogger();
  const identity = config.identity ?? DEFAULT_IDENTITY;
  await mkdir(config.dataDir, { recursive: true });
  const opened = await openBrokerStore(config.dataDir, {
    onRecovery: (report) => {
      if (report.tornBytes > 0 || report.replayedFrames > 0)
        logger.warn({ ...report }, 'storage recovered from its log segments');
    },
  });
  const kv = config.wrapKv ? config.wrapKv(opened) : opened;
  const onFatal = config.onFatal ?? exitOnStorageFailure(logger);
  const writer = new GroupCommitWriter(kv, { onFatal });
  const metadata = await MetadataService.open(new MetadataStore(kv, writer), {
    context: {
      accountId: identity.accountId,
      limits: config.accountLimits ?? DEFAULT_ACCOUNT_LIMITS,
    },
    clock,
  });
  metadata.start();
  const replicas = new ReplicaManager({
    factory: singleNodeReplicas({ kv, writer, clock }),
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
    enforceShardLimits: config.limits !== 'off',
  });
  await broker.start();
  // The single node carries out its reshards itself: children open here, parents seal here.
  const resharding = new ReshardDriver({
    state: () => metadata.state,
    propose: (command) => metadata.propose(command),
    isLeader: () => true,
    childrenReady: (children) => children.every((c) => replicas.get(c.incarnation) !== undefined),
    seal: async (parent, children) =>
      (await sealLocalReplica(replicas, parent.incarnation, children)).endingSequenceNumber,
    clock,
    logger,
    intervalMs: 100,
  });
  const stopPoking = metadata.onChange(() => resharding.poke());
  resharding.start();
  resharding.poke();
  const dataPlane = new DataPlane({
    broker,
    keyring: metadata,
    clock,
    identity,
    ...(config.subscriptionLimits === undefined
      ? {}
      : { subscriptionLimits: config.subscriptionLimits }),
  });
  const controlPlane = new ControlPlane({
    metadata,
    clock,
    identity,
    defaultShardLimits: config.defaultShardLimits ?? DEFAULT_SHARD_LIMITS,
    defaultReplicationFactor: 1,
    maxReplicationFactor: 1,
    ...(config.groupFailoverMs === undefined ? {} : { groupFailoverMs: config.groupFailoverMs }),
  });
  const api = inProcessApi(dataPlane, controlPlane);
  let grpc: RunningGrpcServer | undefined;
  let selfEndpoint = '';
  let admin: RunningAdminServer | undefined;
  let gateway: RunningGateway | undefined;
  try {
    grpc = await startGrpcServer({
      host: config.host,
      port: config.grpcPort,
      data: api,
      control: api,
      subscribeToShard: (request, emit, signal) =>
        dataPlane.subscribeToShard(request, emit, signal),
      // The single node holds every shard; clients reach it where they already are.
      shardMap: shardMap({
        broker,
        identity,
        selfId: 0,
        endpointOf: (id) => (id === 0 ? selfEndpoint : undefined),
      }),
      logger,
    });
    selfEndpoint = `${config.host}:${grpc.port}`;
    if (config.httpPort !== undefined && config.httpPort !== null) {
      gateway = await startGateway({ host: config.host, port: config.httpPort, api, logger });
    }
    if (config.adminPort !== null) {
      admin = await startAdminServer({
        host: config.host,
        port: config.adminPort,
        registry: createNodeMetrics(writer, replicas),
        healthy: () => !writer.failed,
      });
    }
  } catch (error) {
    await gateway?.close();
    await grpc?.close(0);
    stopPoking();
    await resharding.stop();
    await broker.stop();
    await metadata.close();
    await writer.drain();
    await kv.close();
    throw error;
  }
  const grpcServer = grpc;
  const adminServer = admin;
  const gatewayServer = gateway;
  let closing: Promise<void> | undefined;
  return {
    grpcPort: grpcServer.port,
    adminPort: adminServer?.port ?? null,
    httpPort: gatewayServer?.port ?? null,
    grpcAddress: `${config.host}:${grpcServer.port}`,
    metadata,
    broker,
    close: () =>
      (closing ??= (async () => {
        await gatewayServer?.close();
        await grpcServer.close();
        await adminServer?.close();
        stopPoking();
        await resharding.stop();
        await broker.stop();
        await metadata.close();
        await writer.drain();
        await kv.close();
      })()),
  };
}
