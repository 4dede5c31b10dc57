import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

/** A `rheos dev` child process on a temporary data folder, for benchmarks. */
export interface BenchServer {
  readonly endpoint: string;
  readonly httpPort: number;
  readonly pid: number;
  /** Every process of the server: the dev process itself, and with `--brokers` each broker. */
  readonly pids: readonly number[];
  /** Stops the server (SIGTERM) and removes its data. */
  stop(): Promise<void>;
}

/** The server's output kept for a failure message; older output is dropped. */
const OUTPUT_TAIL_CHARS = 64 * 1024;
const READY_TIMEOUT_MS = 60_000;

/**
 * Starts `rheos dev` from the checkout at `root` with `extraArgs` (such as `--brokers 3`) and
 * waits until it logs that it is ready, which a cluster does once its brokers have registered.
 */
export async function startBenchServer(
  root: string,
  prefix: string,
  extraArgs: readonly string[] = [],
  /** Node flags for the server (such as --cpu-prof); `rheos dev` passes them to its brokers. */
  nodeArgs: readonly string[] = [],
): Promise<BenchServer> {
  const dataDir = await mkdtemp(join(tmpdir(), prefix));
  const grpcPort = await freePort();
  const adminPort = await freePort();
  const httpPort = await freePort();
  const endpoint = `127.0.0.1:${grpcPort}`;
  const server: ChildProcess = spawn(
    process.execPath,
    [
      ...nodeArgs,
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
      // Info, for the ready line; the server logs no line per request.
      '--log-level',
      'info',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      await new Promise((resolve) => server.once('exit', resolve));
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  let output = '';
  let isReady = false;
  let pids: number[] = [server.pid as number];
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`rheos dev was not ready in ${READY_TIMEOUT_MS} ms:\n${output}`)),
      READY_TIMEOUT_MS,
    );
    server.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`rheos dev exited (${code}) before it was ready:\n${output}`));
    });
    server.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      if (isReady) return;
      output = (output + chunk).slice(-OUTPUT_TAIL_CHARS);
      // Whole lines only: the last piece may be a line still being written.
      const line = output
        .split('\n')
        .slice(0, -1)
        .find((l) => l.includes('rheos dev is ready'));
      if (line === undefined) return;
      const logged = JSON.parse(line) as { pids?: Record<string, number> };
      pids = [...pids, ...Object.values(logged.pids ?? {})];
      isReady = true;
      clearTimeout(timer);
      resolve();
    });
  });
  try {
    await ready;
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, httpPort, pid: server.pid as number, pids, stop };
}
