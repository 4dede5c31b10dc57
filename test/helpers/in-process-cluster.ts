import { rm } from 'node:fs/promises';
import { parseClusterConfig } from '../../src/broker/cluster-config.js';
import {
  createClient,
  type RheosClient,
  type RheosClientOptions,
} from '../../src/client/client.js';
import { startBroker, type RunningBroker } from '../../src/server/broker-node.js';
import { tempDir } from './node.js';
import { freePort } from './processes.js';

/**
 * Three brokers in one process, each with its own LevelDB, talking real gRPC on 127.0.0.1: for
 * tests of the replicated write path and of client routing that need no separate processes.
 * Everything (brokers, clients, data folders) goes with `close()`.
 */

export const BROKER_IDS = [1, 2, 3] as const;

export interface InProcessCluster {
  readonly dirs: readonly string[];
  /** The running brokers by id - 1 (undefined while stopped); updated in place. */
  readonly brokers: ReadonlyArray<RunningBroker | undefined>;
  /** Native API endpoint of each broker, by id. */
  api(id: number): string;
  broker(id: number): RunningBroker;
  running(): Array<[number, RunningBroker]>;
  /** A client of every broker, closed with the cluster. */
  newClient(options?: Omit<RheosClientOptions, 'endpoint'>): RheosClient;
  start(id: number): Promise<void>;
  stop(id: number): Promise<void>;
  close(): Promise<void>;
}

export async function startInProcessCluster(options: {
  readonly clusterId: string;
  /** Stream entries of the cluster file. */
  readonly streams: readonly unknown[];
}): Promise<InProcessCluster> {
  const addresses: Array<{ id: number; api: string; peer: string }> = [];
  for (const id of BROKER_IDS) {
    addresses.push({
      id,
      api: `127.0.0.1:${await freePort()}`,
      peer: `127.0.0.1:${await freePort()}`,
    });
  }
  const config = parseClusterConfig(
    JSON.stringify({ clusterId: options.clusterId, brokers: addresses, streams: options.streams }),
  );
  const dirs = await Promise.all(BROKER_IDS.map(() => tempDir(`rheos-${options.clusterId}-`)));
  const live: Array<RunningBroker | undefined> = BROKER_IDS.map(() => undefined);
  const clients: RheosClient[] = [];
  const stop = async (id: number): Promise<void> => {
    const broker = live[id - 1];
    live[id - 1] = undefined;
    await broker?.close();
  };
  const cluster: InProcessCluster = {
    dirs,
    brokers: live,
    api: (id) => (addresses[id - 1] as { api: string }).api,
    broker(id) {
      const broker = live[id - 1];
      if (broker === undefined) throw new Error(`broker ${id} is not running`);
      return broker;
    },
    running: () =>
      BROKER_IDS.flatMap((id): Array<[number, RunningBroker]> => {
        const broker = live[id - 1];
        return broker === undefined ? [] : [[id, broker]];
      }),
    newClient(clientOptions = {}) {
      const client = createClient({
        endpoints: addresses.map((b) => b.api),
        deadlineMs: 5_000,
        ...clientOptions,
      });
      clients.push(client);
      return client;
    },
    async start(id) {
      live[id - 1] = await startBroker({
        cluster: config,
        brokerId: id,
        dataDir: dirs[id - 1] as string,
        tickMs: 20,
        retentionCheckIntervalMs: 0,
        onFatal: (error) => {
          throw error;
        },
      });
    },
    stop,
    async close() {
      for (const client of clients) client.close();
      for (const id of BROKER_IDS) await stop(id);
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const id of BROKER_IDS) await cluster.start(id);
  } catch (error) {
    await cluster.close();
    throw error;
  }
  return cluster;
}
