import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '../../src/client/client.js';

import { freePort } from '../../bench/lib/ports.js';

export { freePort };

/** Real processes for tests: the built `rheos` command, with every child tracked and killed. */

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RHEOS_BIN = join(ROOT, 'bin', 'rheos.js');

/**
 * How long `rheos dev` (with --brokers, a coordinator and broker processes) may take to say it is
 * ready: seconds alone, but far longer while the rest of the suite loads both cores.
 */
export const DEV_READY_TIMEOUT_MS = 60_000;

const children = new Set<ChildProcess>();

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `rheos ARGS` to completion (with a timeout), feeding `input` on stdin. */
export function runRheos(
  args: readonly string[],
  input?: string,
  timeoutMs = 60_000,
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RHEOS_BIN, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rheos ${args.join(' ')} timed out after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

export interface DevServer {
  readonly child: ChildProcess;
  readonly endpoint: string;
  readonly adminPort: number;
  /** The Kinesis-compatible HTTP API. */
  readonly httpEndpoint: string;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  output(): string;
}

/**
 * Starts `rheos dev` as a child process and waits until its gRPC API answers. `bin` is the
 * `rheos` script to run (default: this checkout's; the package test runs an installed one).
 */
export async function startDevServer(
  dataDir: string,
  extraArgs: readonly string[] = [],
  bin: string = RHEOS_BIN,
): Promise<DevServer> {
  const grpcPort = await freePort();
  const adminPort = await freePort();
  const httpPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      bin,
      'dev',
      '--data-dir',
      dataDir,
      '--grpc-port',
      String(grpcPort),
      '--admin-port',
      String(adminPort),
      '--http-port',
      String(httpPort),
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  const endpoint = `127.0.0.1:${grpcPort}`;
  const client = createClient({ endpoint, deadlineMs: 2_000 });
  try {
    for (let attempt = 0; ; attempt++) {
      if (child.exitCode !== null) throw new Error(`rheos dev exited early:\n${output}`);
      try {
        await client.describeLimits();
        break;
      } catch (error) {
        if (attempt >= 200) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } finally {
    client.close();
  }
  return {
    child,
    endpoint,
    adminPort,
    httpEndpoint: `http://127.0.0.1:${httpPort}`,
    exited,
    output: () => output,
  };
}

export interface RheosProcess {
  readonly child: ChildProcess;
  /** Settles once the process has exited, with its code or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/**
 * Starts a long-running `rheos ARGS` (tracked like every child, so killAllChildren ends it) and
 * hands each line it prints on stdout to `onLine` as it comes.
 */
export function spawnRheos(args: readonly string[], onLine: (line: string) => void): RheosProcess {
  const child = spawn(process.execPath, [RHEOS_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  let partial = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close', not 'exit': every line printed has been read by then.
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, exited, stderr: () => stderr };
}

/** Processes started by our children (the brokers of `rheos dev --brokers N`), killed with them. */
const grandchildren = new Set<number>();

/**
 * Waits until `rheos dev` says it is ready (with --brokers, once every broker process is up) and
 * returns its broker processes' pids, which killAllChildren kills too.
 */
export async function waitDevReady(server: DevServer): Promise<Record<string, number>> {
  const deadlineMs = Date.now() + DEV_READY_TIMEOUT_MS;
  for (;;) {
    const line = server
      .output()
      .split('\n')
      .find((l) => l.includes('rheos dev is ready'));
    if (line !== undefined) {
      const { pids = {} } = JSON.parse(line) as { pids?: Record<string, number> };
      for (const pid of Object.values(pids)) grandchildren.add(pid);
      return pids;
    }
    if (server.child.exitCode !== null) throw new Error(`rheos dev exited:\n${server.output()}`);
    if (Date.now() > deadlineMs) {
      throw new Error(
        `rheos dev was not ready after ${DEV_READY_TIMEOUT_MS} ms:\n${server.output()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Kills every child process a test started and has not seen exit (call in afterAll). */
export async function killAllChildren(): Promise<void> {
  const waits = [...children].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  );
  await Promise.all(waits);
  children.clear();
  for (const pid of grandchildren) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already, as it should be once its parent has stopped.
    }
  }
  grandchildren.clear();
}
