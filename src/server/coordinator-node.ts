import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { GrpcPeerTransport } from '../broker/grpc-peer-transport.js';
import { RaftHost } from '../broker/raft-host.js';
import { DEFAULT_IDENTITY, type ServiceIdentity } from '../common/arn.js';
import { systemClock, type Clock } from '../common/clock.js';
import { DEFAULT_SHARD_LIMITS } from '../common/limits.js';
import { silentLogger, type Logger } from '../common/logger.js';
import { ControlPlane } from '../coordinator/control-plane.js';
import { coordinatorServices } from '../coordinator/coordinator-api.js';
import { CoordinatorLink } from '../coordinator/coordinator-link.js';
import { FailureDetector } from '../coordinator/failure-detector.js';
import { DEFAULT_REBALANCE, ElasticityDriver } from '../coordinator/elasticity-driver.js';
import {
  DEFAULT_ON_DEMAND,
  OnDemandScaler,
  type OnDemandOptions,
} from '../coordinator/on-demand.js';
import { ShardLeaderCalls } from '../coordinator/shard-leader-calls.js';
import { LeaderLoop } from '../coordinator/leader-loop.js';
import { ReshardDriver } from '../coordinator/reshard-driver.js';
import { openMetadataReplica, type MetadataReplica } from '../coordinator/metadata-replica.js';
import { DEFAULT_ACCOUNT_LIMITS } from '../coordinator/model.js';
import { ReplicaReports } from '../coordinator/replica-reports.js';
import { GroupCommitWriter } from '../storage/group-commit.js';
import { openKvStore } from '../storage/kv-store.js';
import { startFrontEnds } from './front-ends.js';
import { exitOnStorageFailure, peerServer } from './peer-server.js';
import { splitHostPort } from './host-port.js';
import type { DataApi } from './native-api.js';
import type { GetShardMapRequest, GetShardMapResponse } from '../gen/rheos/v1/cluster.js';

/**
 * One coordinator (`rheos coordinator`): a member of the metadata Raft group (group 0 of its own
 * RaftHost, one LevelDB `coordinator.db`, the same group commit and peer transport as brokers),
 * the control-plane API for clients and brokers, the coordinator API for brokers, and, while it
 * leads, the failure detector and the leader's duties. It never carries record data.
 */

export interface CoordinatorMember {
  /** host:port of its API (clients, brokers) and of its peer service (other coordinators). */
  readonly api: string;
  readonly peer: string;
}

export interface CoordinatorNodeConfig {
  readonly clusterId: string;
  readonly id: number;
  /** Every coordinator of the quorum (this one included), by id. */
  readonly members: ReadonlyMap<number, CoordinatorMember>;
  readonly dataDir: string;
  /** Where to listen; default: this member's addresses. */
  readonly apiListen?: string;
  readonly peerListen?: string;
  readonly adminListen?: string | null;
  readonly identity?: ServiceIdentity;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly tickMs?: number;
  readonly heartbeatIntervalMs?: number;
  /** Silence after which a broker is marked down. */
  readonly downAfterMs?: number;
  readonly defaultReplicationFactor?: number;
  readonly keyRotationMs?: number;
  /** A consumer-group worker silent this long loses its leases (default 10 s). */
  readonly groupFailoverMs?: number;
  /** Replica moves in flight at most, cluster-wide (default 2). */
  readonly maxConcurrentMoves?: number;
  /** A broker down this long has its replicas re-created elsewhere (default 10 minutes). */
  readonly replaceDownAfterMs?: number;
  /** When ON_DEMAND streams split and merge (default DEFAULT_ON_DEMAND). */
  readonly onDemand?: Partial<OnDemandOptions>;
  readonly onFatal?: (error: unknown) => void;
  /**
   * Data-plane and routing calls to serve on the coordinator's API by passing them on to brokers
   * (`rheos dev --brokers`, where clients know one address). Coordinators otherwise serve none.
   */
  readonly proxy?: {
    readonly data: DataApi;
    readonly shardMap: (request: GetShardMapRequest) => Promise<GetShardMapResponse>;
  };
}

export interface RunningCoordinator {
  readonly apiAddress: string;
  readonly replica: MetadataReplica;
  close(): Promise<void>;
}

export async function startCoordinator(config: CoordinatorNodeConfig): Promise<RunningCoordinator> {
  const clock = config.clock ?? systemClock;
  const logger = config.logger ?? silentLogger();
  const identity = config.identity ?? DEFAULT_IDENTITY;
  const self = config.members.get(config.id);
  if (self === undefined) throw new Error(`coordinator ${config.id} is not a member`);
  const heartbeatIntervalMs = config.heartbeatIntervalMs ?? 500;
  await mkdir(config.dataDir, { recursive: true });
  const kv = await openKvStore(join(config.dataDir, 'coordinator.db'));
  const onFatal = config.onFatal ?? exitOnStorageFailure(logger);
  const writer = new GroupCommitWriter(kv, { onFatal });
  const apiOf = (id: number) => config.members.get(id)?.api;
  const peers = new Map<number, string>();
  for (const [id, member] of config.members) if (id !== config.id) peers.set(id, member.peer);
  const transport = new GrpcPeerTransport({
    nodeId: config.id,
    clusterId: `${config.clusterId}/coordinators`,
    peers,
    clock,
    logger,
  });
  const host = new RaftHost({
    nodeId: config.id,
    kv,
    writer,
    transport,
    clock,
    logger,
    addressOf: apiOf,
    ...(config.tickMs === undefined ? {} : { tickMs: config.tickMs }),
  });
  const context = { accountId: identity.accountId, limits: DEFAULT_ACCOUNT_LIMITS };
  let replica: MetadataReplica;
  try {
    replica = await openMetadataReplica({
      host,
      kv,
      voters: [...config.members.keys()].sort((a, b) => a - b),
      clock,
      context,
    });
  } catch (error) {
    // Unreadable storage, say: let go of the database (its lock) before failing.
    await host.stop();
    await transport.close();
    await writer.drain();
    await kv.close();
    throw error;
  }
  const detector = new FailureDetector({
    downAfterMs: config.downAfterMs ?? heartbeatIntervalMs * 6,
  });
  const reports = new ReplicaReports(heartbeatIntervalMs * 4);
  const leaderLoop = new LeaderLoop({
    replica,
    detector,
    reports,
    clock,
    logger,
    intervalMs: Math.max(50, Math.floor(heartbeatIntervalMs / 2)),
    ...(config.keyRotationMs === undefined ? {} : { keyRotationMs: config.keyRotationMs }),
  });
  const shardLeaders = new ShardLeaderCalls({
    clusterId: config.clusterId,
    state: () => replica.state,
    reports,
    monotonicMs: () => clock.monotonicMs(),
  });
  const resharding = new ReshardDriver({
    state: () => replica.state,
    propose: (command) => replica.propose(command),
    isLeader: () => replica.isLeader,
    childrenReady: (children) => {
      const led = reports.ledShards(clock.monotonicMs());
      return children.every((c) => led.has(c.incarnation));
    },
    seal: (parent, children) => shardLeaders.seal(parent, children),
    clock,
    logger,
    intervalMs: Math.max(50, Math.floor(heartbeatIntervalMs / 2)),
  });
  const moves = new ElasticityDriver({
    state: () => replica.state,
    propose: (command) => replica.propose(command),
    isLeader: () => replica.isLeader,
    moveReplica: (shard, from, to, abort) => shardLeaders.moveReplica(shard, from, to, abort),
    maxConcurrentMoves: config.maxConcurrentMoves ?? DEFAULT_REBALANCE.maxConcurrentMoves,
    replaceDownAfterMs: config.replaceDownAfterMs ?? DEFAULT_REBALANCE.replaceDownAfterMs,
    clock,
    logger,
    intervalMs: Math.max(50, Math.floor(heartbeatIntervalMs / 2)),
    onDemand: {
      scaler: new OnDemandScaler({ ...DEFAULT_ON_DEMAND, ...config.onDemand }),
      writeRates: () => reports.writeRates(clock.monotonicMs()),
    },
  });
  const link = new CoordinatorLink({
    endpoints: [...config.members.values()].map((m) => m.api),
    maxAttempts: 12,
  });
  const controlPlane = new ControlPlane({
    metadata: {
      get state() {
        return replica.state;
      },
      context,
      propose: (command) => replica.propose(command),
      leadershipEpoch: () => replica.leadershipTerm,
    },
    clock,
    identity,
    defaultShardLimits: DEFAULT_SHARD_LIMITS,
    defaultReplicationFactor: config.defaultReplicationFactor ?? 3,
    maxReplicationFactor: 7,
    ...(config.groupFailoverMs === undefined ? {} : { groupFailoverMs: config.groupFailoverMs }),
  });
  const services = coordinatorServices({
    replica,
    controlPlane,
    clusterId: config.clusterId,
    clock,
    heartbeatIntervalMs,
    detector,
    reports,
    link,
    coordinators: new Map([...config.members].map(([id, m]) => [id, m.api])),
    moveSteps: () => moves.moveSteps(),
  });
  const peerService = peerServer(transport);
  const stopBelowApi = async (): Promise<void> => {
    await leaderLoop.stop();
    await resharding.stop();
    await moves.stop();
    shardLeaders.close();
    link.close();
    await host.stop();
    await transport.close();
    peerService.stop();
    await writer.drain();
    await kv.close();
  };
  try {
    await peerService.listen(config.peerListen ?? self.peer);
    host.start();
    transport.start();
    leaderLoop.start();
    resharding.start();
    moves.start();
  } catch (error) {
    await stopBelowApi();
    throw error;
  }
  const apiListen = config.apiListen ?? self.api;
  const [apiHost, apiPort] = splitHostPort(apiListen);
  const adminListen = config.adminListen;
  const front = await startFrontEnds({
    grpc: {
      host: apiHost,
      port: apiPort,
      control: services.control,
      coordinator: services.coordinator,
      ...(config.proxy === undefined
        ? {}
        : { data: config.proxy.data, shardMap: config.proxy.shardMap }),
      logger,
    },
    ...(adminListen === undefined || adminListen === null
      ? {}
      : {
          admin: {
            listen: adminListen,
            registry: () => {
              const registry = new Registry();
              collectDefaultMetrics({ register: registry, prefix: 'rheos_coordinator_' });
              return registry;
            },
            healthy: () => !writer.failed,
          },
        }),
    stopBelow: stopBelowApi,
  });
  return {
    apiAddress: `${apiHost}:${front.apiPort}`,
    replica,
    close: () => front.close(),
  };
}
