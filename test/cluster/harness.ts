import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type RheosClient } from '../../src/client/client.js';
import { RHEOS_BIN, freePort } from '../helpers/processes.js';
import { startTcpProxy, type ProxyMode, type TcpProxy } from './tcp-proxy.js';

/**
 * Real broker processes on 127.0.0.x for cluster tests. Broker i listens on 127.0.0.(i+1); every
 * peer link goes through a user-space proxy (the lower id dials the higher, so one proxy per pair),
 * and the test cuts, delays or resets links by switching proxy modes. Processes are killed with
 * SIGKILL, paused with SIGSTOP and resumed with SIGCONT by pid, and all of them are killed (and
 * proxies closed) by `close()`, which tests must call in a `finally`/`afterAll`.
 */

export interface ClusterStream {
  readonly name: string;
  readonly shardCount: number;
  readonly replicationFactor?: number;
}

export interface ClusterOptions {
  readonly brokers: number;
  readonly streams: readonly ClusterStream[];
  /** Raft tick; the election timeout is 10-20 ticks. */
  readonly tickMs?: number;
  /** Extra environment for every broker (RHEOS_UNSAFE_ACK_BEFORE_COMMIT=1 in the can-fail test). */
  readonly env?: Readonly<Record<string, string>>;
  /** Where data folders and logs go (default: a fresh temporary folder, removed on close). */
  readonly baseDir?: string;
  readonly startTimeoutMs?: number;
}

export type BrokerState = 'running' | 'paused' | 'stopped';

export interface BrokerInfo {
  readonly id: number;
  readonly api: string;
  readonly peer: string;
  readonly dataDir: string;
  readonly logFile: string;
}

interface BrokerProcess extends BrokerInfo {
  child: ChildProcess | undefined;
  exited: Promise<void> | undefined;
  state: BrokerState;
  log: WriteStream | undefined;
  starts: number;
}

export interface Link {
  readonly low: number;
  readonly high: number;
  readonly proxy: TcpProxy;
}

const PASS: ProxyMode = { kind: 'pass' };

export class ClusterHarness {
  private readonly brokers = new Map<number, BrokerProcess>();
  private readonly links = new Map<string, Link>();
  private closed = false;

  private constructor(
    readonly options: ClusterOptions,
    readonly baseDir: string,
    private readonly ownsBaseDir: boolean,
    readonly configFile: string,
  ) {}

  static async start(options: ClusterOptions): Promise<ClusterHarness> {
    const ownsBaseDir = options.baseDir === undefined;
    const baseDir = options.baseDir ?? (await mkdtemp(join(tmpdir(), 'rheos-cluster-')));
    await mkdir(baseDir, { recursive: true });
    const ids = Array.from({ length: options.brokers }, (_, i) => i + 1);
    const addresses = [];
    for (const id of ids) {
      const host = hostOf(id);
      addresses.push({
        id,
        api: `${host}:${await freePort(host)}`,
        peer: `${host}:${await freePort(host)}`,
      });
    }
    const configFile = join(baseDir, 'cluster.json');
    await writeFile(
      configFile,
      JSON.stringify(
        {
          clusterId: 'cluster-test',
          brokers: addresses,
          streams: options.streams.map((s) => ({
            name: s.name,
            shardCount: s.shardCount,
            replicationFactor: s.replicationFactor ?? Math.min(3, options.brokers),
            unlimited: true,
          })),
        },
        null,
        2,
      ),
    );
    const harness = new ClusterHarness(options, baseDir, ownsBaseDir, configFile);
    try {
      for (const a of addresses) {
        harness.brokers.set(a.id, {
          ...a,
          dataDir: join(baseDir, `broker-${a.id}`),
          logFile: join(baseDir, `broker-${a.id}.log`),
          child: undefined,
          exited: undefined,
          state: 'stopped',
          log: undefined,
          starts: 0,
        });
      }
      // One proxy per pair, in front of the higher id's peer port (the lower id dials).
      for (const low of ids) {
        for (const high of ids) {
          if (high <= low) continue;
          const target = harness.info(high).peer;
          const [targetHost, targetPort] = splitHostPort(target);
          const proxy = await startTcpProxy({ listenHost: '127.0.0.1', targetHost, targetPort });
          harness.links.set(linkKey(low, high), { low, high, proxy });
        }
      }
      await Promise.all(ids.map((id) => harness.startBroker(id)));
    } catch (error) {
      await harness.close();
      throw error;
    }
    return harness;
  }

  get ids(): number[] {
    return [...this.brokers.keys()];
  }

  info(id: number): BrokerInfo {
    const b = this.brokers.get(id);
    if (b === undefined) throw new Error(`no broker ${id}`);
    return { id: b.id, api: b.api, peer: b.peer, dataDir: b.dataDir, logFile: b.logFile };
  }

  state(id: number): BrokerState {
    return this.broker(id).state;
  }

  pid(id: number): number | undefined {
    return this.broker(id).child?.pid;
  }

  endpoints(): string[] {
    return this.ids.map((id) => this.broker(id).api);
  }

  client(deadlineMs = 5_000): RheosClient {
    return createClient({ endpoints: this.endpoints(), deadlineMs });
  }

  /** Starts a stopped broker (its data folder kept) and waits until its API answers. */
  async startBroker(id: number): Promise<void> {
    const b = this.broker(id);
    if (b.state !== 'stopped') throw new Error(`broker ${id} is ${b.state}`);
    const args = [
      RHEOS_BIN,
      'broker',
      '--config',
      this.configFile,
      '--id',
      String(id),
      '--data-dir',
      b.dataDir,
      '--tick-ms',
      String(this.options.tickMs ?? 50),
    ];
    for (const link of this.links.values()) {
      if (link.low === id) args.push('--peer', `${link.high}=127.0.0.1:${link.proxy.port}`);
    }
    b.log ??= createWriteStream(b.logFile, { flags: 'a' });
    b.log.write(`--- start ${++b.starts} at ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RHEOS_LOG_LEVEL: 'warn', ...this.options.env },
    });
    b.child = child;
    b.state = 'running';
    const log = b.log;
    child.stdout?.on('data', (chunk: Buffer) => log.write(chunk));
    child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
    b.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        log.write(`--- exit code ${String(code)} signal ${String(signal)}\n`);
        if (b.child === child) {
          b.child = undefined;
          b.state = 'stopped';
        }
        resolve();
      });
    });
    await this.awaitApi(id, child);
  }

  /** kill -9, and wait for the process to be gone. */
  async kill(id: number): Promise<void> {
    const b = this.broker(id);
    const { child, exited } = b;
    if (child === undefined) return;
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM (a clean stop), with SIGKILL after `graceMs`. */
  async stop(id: number, graceMs = 10_000): Promise<void> {
    const b = this.broker(id);
    const { child, exited } = b;
    if (child === undefined) return;
    if (b.state === 'paused') child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  async restart(id: number): Promise<void> {
    await this.kill(id);
    await this.startBroker(id);
  }

  pause(id: number): void {
    const b = this.broker(id);
    if (b.state !== 'running' || b.child === undefined) return;
    b.child.kill('SIGSTOP');
    b.state = 'paused';
  }

  resume(id: number): void {
    const b = this.broker(id);
    if (b.state !== 'paused' || b.child === undefined) return;
    b.child.kill('SIGCONT');
    b.state = 'running';
  }

  link(a: number, b: number): Link {
    const link = this.links.get(linkKey(Math.min(a, b), Math.max(a, b)));
    if (link === undefined) throw new Error(`no link ${a}-${b}`);
    return link;
  }

  setLink(a: number, b: number, mode: ProxyMode): void {
    this.link(a, b).proxy.setMode(mode);
  }

  /** Cuts every link between the two sides (a partition; clients still reach every broker). */
  partition(sideA: readonly number[], sideB: readonly number[]): void {
    for (const a of sideA)
      for (const b of sideB) if (a !== b) this.setLink(a, b, { kind: 'blackhole' });
  }

  isolate(id: number): void {
    this.partition(
      [id],
      this.ids.filter((x) => x !== id),
    );
  }

  /** Every link back to passing traffic (paused brokers stay paused). */
  heal(): void {
    for (const link of this.links.values()) {
      if (link.proxy.mode().kind !== 'pass') link.proxy.setMode(PASS);
    }
  }

  /** Resumes paused brokers, starts stopped ones and heals every link. */
  async healAll(): Promise<void> {
    this.heal();
    for (const id of this.ids) {
      if (this.state(id) === 'paused') this.resume(id);
      if (this.state(id) === 'stopped') await this.startBroker(id);
    }
  }

  /** Stops every broker (SIGTERM) so their disks can be read. */
  async stopAll(): Promise<void> {
    for (const id of this.ids) if (this.state(id) === 'paused') this.resume(id);
    await Promise.all(this.ids.map((id) => this.stop(id)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const b of this.brokers.values()) {
      const { child, exited } = b;
      if (child !== undefined) {
        child.kill('SIGKILL');
        await exited;
      }
      b.log?.end();
    }
    await Promise.all([...this.links.values()].map((l) => l.proxy.close()));
    if (this.ownsBaseDir && process.env['RHEOS_KEEP_CLUSTER'] !== '1') {
      await rm(this.baseDir, { recursive: true, force: true });
    }
  }

  private broker(id: number): BrokerProcess {
    const b = this.brokers.get(id);
    if (b === undefined) throw new Error(`no broker ${id}`);
    return b;
  }

  private async awaitApi(id: number, child: ChildProcess): Promise<void> {
    const timeoutMs = this.options.startTimeoutMs ?? 30_000;
    const client = createClient({ endpoint: this.broker(id).api, deadlineMs: 1_000 });
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`broker ${id} exited while starting (see ${this.broker(id).logFile})`);
        }
        try {
          await client.describeLimits();
          return;
        } catch (error) {
          if (Date.now() > deadline) {
            throw new Error(`broker ${id} did not answer within ${timeoutMs} ms`, { cause: error });
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    } finally {
      client.close();
    }
  }
}

export function hostOf(id: number): string {
  return `127.0.0.${id + 1}`;
}

function linkKey(low: number, high: number): string {
  return `${low}-${high}`;
}

function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}
