import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '../../src/client/client.js';
import { freePort } from './ports.js';

/**
 * A 3-broker Rheos cluster for benchmarks: `rheos broker` processes on 127.0.0.2-4 with static
 * placement and one stream `bench` without throughput limits, ready once every shard takes a write.
 */

export interface BenchCluster {
  readonly endpoints: string[];
  readonly pids: number[];
  stop(): Promise<void>;
}

export interface BenchClusterOptions {
  readonly root: string;
  readonly shards: number;
  readonly replicationFactor?: number;
  /** Write a V8 CPU profile of every broker here (written when they stop). */
  readonly profileDir?: string | undefined;
}

export async function startBenchCluster(options: BenchClusterOptions): Promise<BenchCluster> {
  const ids = [1, 2, 3];
  const baseDir = await mkdtemp(join(tmpdir(), 'rheos-cluster-bench-'));
  const brokers: Array<{ id: number; api: string; peer: string }> = [];
  for (const id of ids) {
    const host = `127.0.0.${id + 1}`;
    brokers.push({
      id,
      api: `${host}:${await freePort(host)}`,
      peer: `${host}:${await freePort(host)}`,
    });
  }
  const configFile = join(baseDir, 'cluster.json');
  await writeFile(
    configFile,
    JSON.stringify({
      clusterId: 'bench',
      brokers,
      streams: [
        {
          name: 'bench',
          shardCount: options.shards,
          replicationFactor: options.replicationFactor ?? 3,
          unlimited: true,
        },
      ],
    }),
  );
  const profileDir = options.profileDir;
  const children: ChildProcess[] = ids.map((id) =>
    spawn(
      process.execPath,
      [
        ...(profileDir === undefined
          ? []
          : [
              '--cpu-prof',
              '--cpu-prof-dir',
              profileDir,
              '--cpu-prof-name',
              `broker-${id}.cpuprofile`,
            ]),
        join(options.root, 'bin', 'rheos.js'),
        'broker',
        '--config',
        configFile,
        '--id',
        String(id),
        '--data-dir',
        join(baseDir, `broker-${id}`),
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    ),
  );
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(stopChild));
    await rm(baseDir, { recursive: true, force: true });
  };
  try {
    const client = createClient({ endpoints: brokers.map((b) => b.api), deadlineMs: 5_000 });
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const { failedRecordCount } = await client.putRecords({
            streamName: 'bench',
            records: Array.from({ length: 64 }, (_, i) => ({
              partitionKey: `warm-${i}`,
              data: Buffer.alloc(8),
            })),
          });
          if (failedRecordCount === 0) break;
        } catch (error) {
          if (attempt > 300) throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      client.close();
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    endpoints: brokers.map((b) => b.api),
    pids: children.map((c) => c.pid as number),
    stop,
  };
}

/** SIGTERM, then SIGKILL after 10 s. */
export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
