import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createClient, type RheosClient } from '../client/client.js';
import type { ServiceIdentity } from '../common/arn.js';
import type { Logger } from '../common/logger.js';
import { startGateway, type RunningGateway } from '../gateway/gateway.js';
import { startCoordinator, type RunningCoordinator } from './coordinator-node.js';
import type { LimitsMode } from './shard-limits.js';

/**
 * `rheos dev --brokers N`: a coordinator, the Kinesis gateway and the client-facing gRPC API in
 * this process, and N broker child processes on 127.0.0.2, 127.0.0.3, ... (same API port, the
 * next port for peers), with replication factor min(3, N). Clients need only this process's
 * address: control-plane calls go to the coordinator, and routing questions are passed on to the
 * brokers, whose addresses the answers carry, so records flow straight to the brokers.
 *
 * A broker that exits is reported and not restarted (stopping one is how to watch a shard's
 * leadership move); `rheos dev` stops them all when it stops.
 */

export interface DevClusterConfig {
  readonly brokers: number;
  readonly dataDir: string;
  readonly host: string;
  readonly grpcPort: number;
  readonly httpPort: number | null;
  readonly adminPort: number | null;
  readonly identity: ServiceIdentity;
  readonly logger: Logger;
  /** The `rheos` script the brokers run. */
  readonly bin: string;
  /** Passed to every broker: quotas are enforced where the shards are (default 'aws'). */
  readonly limits?: LimitsMode;
  /** Passed to every broker (default 5 minutes). */
  readonly subscriptionLifetimeMs?: number;
  /** The coordinator's failover time of consumer-group workers (default 10 s). */
  readonly groupFailoverMs?: number;
}

export interface RunningDevCluster {
  readonly grpcAddress: string;
  readonly brokerEndpoints: readonly string[];
  /** Broker child processes by broker number (1-based), while they run. */
  readonly pids: ReadonlyMap<number, number>;
  close(): Promise<void>;
}

const CLUSTER_ID = 'dev';

export async function startDevCluster(config: DevClusterConfig): Promise<RunningDevCluster> {
  const { logger } = config;
  if (!(config.brokers >= 1 && config.brokers <= 250)) {
    throw new Error('--brokers must be between 1 and 250');
  }
  await mkdir(config.dataDir, { recursive: true });
  const brokerHosts = Array.from({ length: config.brokers }, (_, i) => `127.0.0.${i + 2}`);
  const brokerEndpoints = brokerHosts.map((h) => `${h}:${config.grpcPort}`);
  const coordinatorApi = `${config.host}:${config.grpcPort}`;
  const toBrokers: RheosClient = createClient({ endpoints: brokerEndpoints });
  let coordinator: RunningCoordinator | undefined;
  let gateway: RunningGateway | undefined;
  let gatewayClient: RheosClient | undefined;
  const children = new Map<number, ChildProcess>();
  const exits: Promise<void>[] = [];
  let closing = false;
  const stopChildren = async (): Promise<void> => {
    for (const child of children.values()) child.kill('SIGTERM');
    const force = setTimeout(() => {
      for (const child of children.values()) child.kill('SIGKILL');
    }, 10_000);
    await Promise.all(exits);
    clearTimeout(force);
  };
  try {
    coordinator = await startCoordinator({
      clusterId: CLUSTER_ID,
      id: 1,
      // A quorum of one has no peers to talk to: its peer service takes any free port.
      members: new Map([[1, { api: coordinatorApi, peer: `${config.host}:0` }]]),
      dataDir: join(config.dataDir, 'coordinator'),
      identity: config.identity,
      logger,
      defaultReplicationFactor: Math.min(3, config.brokers),
      ...(config.groupFailoverMs === undefined ? {} : { groupFailoverMs: config.groupFailoverMs }),
      adminListen: config.adminPort === null ? null : `${config.host}:${config.adminPort}`,
      proxy: {
        data: toBrokers,
        shardMap: (request) => toBrokers.getShardMap(request),
      },
    });
    for (let n = 1; n <= config.brokers; n++) {
      const host = brokerHosts[n - 1] as string;
      const child = spawn(
        process.execPath,
        [
          // The dev process's own node flags (a heap limit, --cpu-prof) apply to its brokers too.
          ...process.execArgv,
          config.bin,
          'broker',
          // Broker n on 127.0.0.(n+1) is broker n to the coordinator too.
          '--id',
          String(n),
          '--coordinators',
          coordinatorApi,
          '--cluster-id',
          CLUSTER_ID,
          '--data-dir',
          join(config.dataDir, `broker-${n}`),
          '--api-listen',
          `${host}:${config.grpcPort}`,
          '--peer-listen',
          `${host}:${config.grpcPort + 1}`,
          '--region',
          config.identity.region,
          '--log-level',
          // Brokers speak up only for trouble; the dev process logs for them.
          'warn',
          '--limits',
          config.limits ?? 'aws',
          ...(config.subscriptionLifetimeMs === undefined
            ? []
            : ['--subscription-lifetime-ms', String(config.subscriptionLifetimeMs)]),
          '--exit-with-parent',
        ],
        // stdin stays open while this process lives: brokers exit when it closes.
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      children.set(n, child);
      for (const stream of [child.stdout, child.stderr]) {
        createInterface({ input: stream }).on('line', (line) =>
          process.stderr.write(`[broker ${n}] ${line}\n`),
        );
      }
      exits.push(
        new Promise<void>((resolve) => {
          const gone = (why: Record<string, unknown>) => {
            if (!children.has(n)) return;
            children.delete(n);
            if (!closing) {
              logger.warn(
                { broker: n, ...why },
                'a broker process exited; rheos dev does not restart it',
              );
            }
            resolve();
          };
          child.once('exit', (code, signal) => gone({ code, signal }));
          // It could not be started at all (no 'exit' follows).
          child.once('error', (err) => gone({ err }));
        }),
      );
    }
    await waitForBrokers(brokerEndpoints, logger, () => children.size < config.brokers);
    if (config.httpPort !== null) {
      gatewayClient = createClient({ endpoint: coordinatorApi });
      gateway = await startGateway({
        host: config.host,
        port: config.httpPort,
        api: gatewayClient,
        logger,
      });
    }
  } catch (error) {
    closing = true;
    await gateway?.close();
    gatewayClient?.close();
    await stopChildren();
    await coordinator?.close();
    toBrokers.close();
    throw error;
  }
  const running = coordinator;
  return {
    grpcAddress: running.apiAddress,
    brokerEndpoints,
    get pids() {
      return new Map([...children].map(([n, c]) => [n, c.pid as number]));
    },
    close: async () => {
      closing = true;
      await gateway?.close();
      gatewayClient?.close();
      await stopChildren();
      await running.close();
      toBrokers.close();
    },
  };
}

/** Until every broker answers (each registers with the coordinator before it listens). */
async function waitForBrokers(
  endpoints: readonly string[],
  logger: Logger,
  someExited: () => boolean,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (const endpoint of endpoints) {
    const client = createClient({ endpoint, deadlineMs: 2_000 });
    try {
      for (;;) {
        try {
          await client.describeLimits();
          break;
        } catch (error) {
          if (someExited())
            throw new Error('a broker process exited while starting (see its output)');
          if (Date.now() > deadline) {
            throw new Error(`broker ${endpoint} did not start`, { cause: error });
          }
          logger.debug({ err: error, endpoint }, 'waiting for a broker');
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    } finally {
      client.close();
    }
  }
}
