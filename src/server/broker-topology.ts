import { randomUUID } from 'node:crypto';
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { MetadataSource } from '../broker/broker.js';
import { brokerById, type ClusterConfig } from '../broker/cluster-config.js';
import { CoordinatorSession, registerBroker } from '../broker/coordinator-session.js';
import type { GrpcPeerTransport } from '../broker/grpc-peer-transport.js';
import { MetadataMirror } from '../broker/metadata-mirror.js';
import { PreferredLeaders } from '../broker/preferred-leaders.js';
import type { RaftHost } from '../broker/raft-host.js';
import { remoteControlPlane } from '../broker/remote-control-plane.js';
import { StaticMetadata } from '../broker/static-metadata.js';
import type { ServiceIdentity } from '../common/arn.js';
import type { Clock } from '../common/clock.js';
import type { SigningKeyring } from '../common/iterator-token.js';
import { DEFAULT_SHARD_LIMITS } from '../common/limits.js';
import type { Logger } from '../common/logger.js';
import { ControlPlane } from '../coordinator/control-plane.js';
import { InvalidArgumentError, RheosError } from '../common/errors.js';
import { CoordinatorLink } from '../coordinator/coordinator-link.js';
import { stateFromRecords } from '../coordinator/metadata-records.js';
import {
  CoordinatorServiceService as Coordinator,
  type RegisterBrokerResponse,
} from '../gen/rheos/v1/coordinator.js';
import type { KvStore } from '../storage/kv-store.js';
import { loadMirroredMetadata, saveMirroredMetadata } from '../storage/metadata-store.js';
import { storedGroups as storedGroupsOf } from '../storage/shard-log.js';
import type { CoordinatorApi } from './grpc-server.js';
import { DEFAULT_ACCOUNT_LIMITS } from '../coordinator/model.js';
import type { CoordinatedCluster } from './broker-node.js';
import { controlApiOf, type ControlApi } from './native-api.js';

/**
 * Where a broker's identity, peers and metadata come from: a cluster file (static placement) or
 * the coordinators (which number the broker, place replicas and send the metadata). Everything
 * else about a broker is the same either way.
 */
export interface BrokerTopology {
  readonly id: number;
  readonly clusterId: string;
  readonly metadata: MetadataSource & SigningKeyring;
  readonly apiListen: string;
  readonly peerListen: string;
  /** Peers known at start (a coordinated broker learns more from the metadata). */
  readonly peers: ReadonlyMap<number, string>;
  /** Whether to delete stored replicas the metadata does not place here. */
  readonly deletesUnplaced: boolean;
  addressOf(brokerId: number): string | undefined;
  controlPlane(): ControlApi;
  /** Coordinator calls a broker answers for its clients (DescribeCluster), if any. */
  coordinatorApi?(): CoordinatorApi;
  /** The broker's parts are up: start talking to the coordinators, follow peer addresses. */
  attach(parts: { readonly transport: GrpcPeerTransport; readonly host: RaftHost }): void;
  close(): void;
}

export interface TopologyInputs {
  readonly brokerId?: number;
  readonly dataDir: string;
  readonly apiListen?: string;
  readonly peerListen?: string;
  readonly peerAddresses?: ReadonlyMap<number, string>;
  readonly identity: ServiceIdentity;
  readonly clock: Clock;
  readonly logger: Logger;
}

const context = (identity: ServiceIdentity) => ({
  accountId: identity.accountId,
  limits: DEFAULT_ACCOUNT_LIMITS,
});

export function staticTopology(cluster: ClusterConfig, inputs: TopologyInputs): BrokerTopology {
  const id = inputs.brokerId;
  const self = id === undefined ? undefined : brokerById(cluster, id);
  if (self === undefined) throw new Error(`broker ${String(id)} is not in the cluster file`);
  const metadata = new StaticMetadata(cluster, context(inputs.identity));
  const peers = new Map<number, string>();
  for (const b of cluster.brokers) {
    if (b.id !== self.id) peers.set(b.id, inputs.peerAddresses?.get(b.id) ?? b.peer);
  }
  return {
    id: self.id,
    clusterId: cluster.clusterId,
    metadata,
    apiListen: inputs.apiListen ?? self.api,
    peerListen: inputs.peerListen ?? self.peer,
    peers,
    deletesUnplaced: false,
    addressOf: (brokerId) => brokerById(cluster, brokerId)?.api,
    controlPlane: () =>
      controlApiOf(
        new ControlPlane({
          metadata,
          clock: inputs.clock,
          identity: inputs.identity,
          defaultShardLimits: DEFAULT_SHARD_LIMITS,
          defaultReplicationFactor: 3,
          maxReplicationFactor: 3,
        }),
      ),
    attach: () => undefined,
    close: () => undefined,
  };
}

const ID_FILE = 'broker-id.json';
/** Until a coordinator says otherwise (its answer to the registration). */
const DEFAULT_HEARTBEAT_MS = 500;

/**
 * Registers with the coordinators (with the id the data folder holds, or for a new one, stored
 * durably before anything is served under it) and loads the metadata before the broker starts,
 * so it starts with its replicas' placement and an iterator-signing key.
 */
export async function coordinatedTopology(
  cluster: CoordinatedCluster,
  inputs: TopologyInputs,
  /** The broker's database: its replica groups, and its copy of the metadata. */
  kv: KvStore,
): Promise<BrokerTopology> {
  const storedGroups = await storedGroupsOf(kv);
  const { apiListen, peerListen, logger } = inputs;
  if (apiListen === undefined || peerListen === undefined) {
    throw new Error('a broker with coordinators needs --api-listen and --peer-listen');
  }
  let identity = await readIdentity(inputs.dataDir, cluster.clusterId);
  const stored = identity?.brokerId;
  if (stored !== undefined && inputs.brokerId !== undefined && stored !== inputs.brokerId) {
    throw new Error(
      `the data folder belongs to broker ${stored}, not ${inputs.brokerId}; a broker's id never changes`,
    );
  }
  if (identity === undefined) {
    if (storedGroups.length > 0) {
      // Registering anew would make these replicas someone else's and delete them.
      throw new Error(
        `the data folder holds ${storedGroups.length} replicas but no ${ID_FILE}: restore that file, or start from an empty folder`,
      );
    }
    identity = { clusterId: cluster.clusterId, token: randomUUID() };
    await writeIdentity(inputs.dataDir, identity);
  }
  const link = new CoordinatorLink({ endpoints: cluster.coordinators });
  let session: CoordinatorSession | undefined;
  let closed = false;
  const mirror = new MetadataMirror(() => session?.refresh() ?? Promise.resolve());
  try {
    const request = {
      clusterId: cluster.clusterId,
      brokerId: stored ?? inputs.brokerId,
      zone: cluster.zone ?? '',
      apiEndpoint: cluster.advertiseApi ?? apiListen,
      peerEndpoint: cluster.advertisePeer ?? peerListen,
      token: identity.token,
      returning: stored !== undefined,
    };
    const registerTimeoutMs = cluster.registerTimeoutMs ?? 60_000;
    // A broker that registered before and kept a copy of the metadata starts from that copy when
    // no coordinator answers soon: its replicas serve on (Raft needs no coordinator), and it
    // registers once the coordinators are back.
    const copy = stored === undefined ? undefined : await loadMirroredMetadata(kv);
    let registered: RegisterBrokerResponse | undefined;
    try {
      registered = await registerBroker(
        link,
        request,
        copy === undefined ? registerTimeoutMs : (cluster.offlineStartAfterMs ?? 5_000),
        logger,
      );
    } catch (error) {
      const retriable = error instanceof RheosError && error.retriable;
      if (copy === undefined || !retriable) throw error;
      logger.warn(
        { err: error, version: copy.version },
        'no coordinator answers: starting from the stored copy of the metadata',
      );
      mirror.update(copy.version, stateFromRecords(new Map(Object.entries(copy.records))));
    }
    const id = registered?.brokerId ?? (stored as number);
    if (stored === undefined) await writeIdentity(inputs.dataDir, { ...identity, brokerId: id });
    const fetchOnce = new CoordinatorSession({
      link,
      clusterId: cluster.clusterId,
      brokerId: id,
      mirror,
      clock: inputs.clock,
      logger,
      heartbeatIntervalMs: registered?.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS,
      persist: (version, recordsJson) => saveMirroredMetadata(kv, version, recordsJson),
    });
    session = fetchOnce;
    if (registered !== undefined) {
      await waitForSigningKey(fetchOnce, mirror, registerTimeoutMs);
    } else {
      // Keep trying in the background: the coordinators learn this broker's addresses again.
      void registerBroker(link, request, Number.MAX_SAFE_INTEGER, logger, () => closed).then(
        () => logger.info('registered with the coordinators again'),
        (error: unknown) => {
          if (!closed) logger.error({ err: error }, 'registration with the coordinators failed');
        },
      );
    }
    const peers = new Map<number, string>();
    for (const b of mirror.state.brokers.values()) {
      if (b.id !== id) peers.set(b.id, inputs.peerAddresses?.get(b.id) ?? b.peer);
    }
    let unsubscribe: (() => void) | undefined;
    let rebalance: NodeJS.Timeout | undefined;
    return {
      id,
      clusterId: cluster.clusterId,
      metadata: mirror,
      apiListen,
      peerListen,
      peers,
      deletesUnplaced: true,
      addressOf: (brokerId) => mirror.state.brokers.get(brokerId)?.api,
      controlPlane: () => remoteControlPlane(link),
      coordinatorApi: () => brokerCoordinatorApi(link),
      attach: ({ transport, host }) => {
        unsubscribe = mirror.onChange((changes) => {
          for (const change of changes) {
            if (change.kind !== 'broker' || change.value === undefined) continue;
            const overridden = inputs.peerAddresses?.get(change.id);
            transport.setPeer(change.id, overridden ?? change.value.peer);
          }
        });
        fetchOnce.attach(host);
        fetchOnce.start();
        const preferred = new PreferredLeaders(host, () => mirror.state, inputs.clock, logger);
        rebalance = setInterval(() => preferred.check(), 1_000);
        rebalance.unref();
      },
      close: () => {
        closed = true;
        if (rebalance !== undefined) clearInterval(rebalance);
        unsubscribe?.();
        session?.stop();
        link.close();
      },
    };
  } catch (error) {
    closed = true;
    session?.stop();
    link.close();
    throw error;
  }
}

/**
 * A coordinated broker passes `rheos admin cluster` on to the coordinators, so any address of
 * the cluster answers it; the calls meant for coordinators alone are refused.
 */
function brokerCoordinatorApi(link: CoordinatorLink): CoordinatorApi {
  const refuse = () =>
    Promise.reject(
      new InvalidArgumentError('This is a broker; send broker registrations to a coordinator.'),
    );
  return {
    registerBroker: refuse,
    heartbeat: refuse,
    getMetadata: refuse,
    describeCluster: (request) => link.call(Coordinator.describeCluster, request, true),
    setBrokerDraining: (request) => link.call(Coordinator.setBrokerDraining, request, true),
  };
}

async function waitForSigningKey(
  session: CoordinatorSession,
  mirror: MetadataMirror,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await session.fetch();
    if (mirror.state.iteratorKeys.length > 0) return;
    if (Date.now() > deadline) throw new Error('the coordinators have no iterator-signing key yet');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What a broker's data folder says about whose it is (`broker-id.json`). */
interface FolderIdentity {
  readonly clusterId: string;
  /** Stored before the first registration; the coordinators remember it with the id. */
  readonly token: string;
  /** Absent until the first registration is answered. */
  readonly brokerId?: number;
}

async function readIdentity(
  dataDir: string,
  clusterId: string,
): Promise<FolderIdentity | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, ID_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const saved = JSON.parse(text) as { clusterId?: unknown; brokerId?: unknown; token?: unknown };
  if (saved.clusterId !== clusterId) {
    throw new Error(
      `the data folder belongs to cluster ${JSON.stringify(saved.clusterId)}, not ${JSON.stringify(clusterId)}`,
    );
  }
  if (typeof saved.token !== 'string' || saved.token === '') {
    throw new Error(`${ID_FILE} holds no registration token`);
  }
  if (saved.brokerId !== undefined && typeof saved.brokerId !== 'number') {
    throw new Error(`${ID_FILE} holds a broker id that is not a number`);
  }
  return {
    clusterId,
    token: saved.token,
    ...(saved.brokerId === undefined ? {} : { brokerId: saved.brokerId }),
  };
}

/** Written to a temporary file, synced, renamed, and the folder synced: all or nothing. */
async function writeIdentity(dataDir: string, identity: FolderIdentity): Promise<void> {
  const path = join(dataDir, ID_FILE);
  const file = await open(`${path}.tmp`, 'w');
  try {
    await file.writeFile(JSON.stringify(identity) + '\n');
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(`${path}.tmp`, path);
  const dir = await open(dataDir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
