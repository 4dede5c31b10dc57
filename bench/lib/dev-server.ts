import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '../../src/client/client.js';
import { freePort } from './ports.js';

/** A `rheos dev` child process on a temporary data folder, for single-node benchmarks. */
export interface BenchServer {
  readonly endpoint: string;
  readonly httpPort: number;
  readonly pid: number;
  /** Stops the server (SIGTERM) and removes its data. */
  stop(): Promise<void>;
}

/** Starts `rheos dev` from the checkout at `root` and waits until its gRPC API answers. */
export async function startBenchServer(root: string, prefix: string): Promise<BenchServer> {
  const dataDir = await mkdtemp(join(tmpdir(), prefix));
  const grpcPort = await freePort();
  const adminPort = await freePort();
  const httpPort = await freePort();
  const endpoint = `127.0.0.1:${grpcPort}`;
  const server: ChildProcess = spawn(
    process.execPath,
    [
      join(root, 'bin', 'rheos.js'),
      'dev',
      '--data-dir',
      dataDir,
      '--grpc-port',
      String(grpcPort),
      '--admin-port',
      String(adminPort),
      '--http-port',
      String(httpPort),
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const stop = async () => {
    if (server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((resolve) => server.once('exit', resolve));
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  const client = createClient({ endpoint, deadlineMs: 5_000 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.describeLimits();
        break;
      } catch (error) {
        if (attempt > 100) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } catch (error) {
    await stop();
    throw error;
  } finally {
    client.close();
  }
  return { endpoint, httpPort, pid: server.pid as number, stop };
}
