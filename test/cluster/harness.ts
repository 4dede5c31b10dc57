import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseClusterConfig } from '../../src/broker/cluster-config.js';
import { StaticMetadata } from '../../src/broker/static-metadata.js';
import { createClient, type RheosClient } from '../../src/client/client.js';
import { DEFAULT_IDENTITY } from '../../src/common/arn.js';
import { UNLIMITED_SHARD_LIMITS } from '../../src/common/limits.js';
import { CoordinatorLink } from '../../src/coordinator/coordinator-link.js';
import { stateFromRecords } from '../../src/coordinator/metadata-records.js';
import { DEFAULT_ACCOUNT_LIMITS, type MetadataState } from '../../src/coordinator/model.js';
import {
  CoordinatorServiceService,
  type DescribeClusterResponse,
} from '../../src/gen/rheos/v1/coordinator.js';
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
  /**
   * Coordinator processes (1 or 3) that place the replicas; the streams are then created through
   * the control plane. Absent: static placement from a cluster file.
   */
  readonly coordinators?: number;
  /** Zone label per broker id (coordinated clusters only). */
  readonly zones?: Readonly<Record<number, string>>;
  /** SubscribeToShard subscription lifetime on every broker (default 5 minutes). */
  readonly subscriptionLifetimeMs?: number;
  /** Consumer-group failover time on every coordinator (default 10 s). */
  readonly groupFailoverMs?: number;
  /** Replica moves in flight at most (coordinated clusters; default 2). */
  readonly maxConcurrentMoves?: number;
  /** A broker down this long has its replicas re-created elsewhere (default 10 minutes). */
  readonly replaceDownAfterMs?: number;
  /** More `rheos coordinator` flags (the on-demand thresholds, ...). */
  readonly coordinatorArgs?: readonly string[];
}

export interface CoordinatorInfo {
  readonly id: number;
  readonly api: string;
  readonly peer: string;
  readonly dataDir: string;
  readonly logFile: string;
}

interface CoordinatorProcess extends CoordinatorInfo {
  child: ChildProcess | undefined;
  exited: Promise<void> | undefined;
  log: WriteStream | undefined;
  starts: number;
}

const CLUSTER_ID = 'cluster-test';

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
  private readonly coordinators = new Map<number, CoordinatorProcess>();
  private readonly links = new Map<string, Link>();
  /** Zones of brokers added after the start. */
  private readonly extraZones = new Map<number, string>();
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
          clusterId: CLUSTER_ID,
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
      const coordinatorCount = options.coordinators ?? 0;
      for (let id = 1; id <= coordinatorCount; id++) {
        const host = coordinatorHostOf(id);
        harness.coordinators.set(id, {
          id,
          api: `${host}:${await freePort(host)}`,
          peer: `${host}:${await freePort(host)}`,
          dataDir: join(baseDir, `coordinator-${id}`),
          logFile: join(baseDir, `coordinator-${id}.log`),
          child: undefined,
          exited: undefined,
          log: undefined,
          starts: 0,
        });
      }
      await Promise.all([...harness.coordinators.keys()].map((id) => harness.startCoordinator(id)));
      await Promise.all(ids.map((id) => harness.startBroker(id)));
      if (coordinatorCount > 0) await harness.createStreams();
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
    const placement = this.coordinated
      ? [
          '--coordinators',
          this.coordinatorEndpoints().join(','),
          '--cluster-id',
          CLUSTER_ID,
          '--api-listen',
          b.api,
          '--peer-listen',
          b.peer,
          '--zone',
          this.extraZones.get(id) ?? this.options.zones?.[id] ?? '',
        ]
      : ['--config', this.configFile];
    const args = [
      RHEOS_BIN,
      'broker',
      ...placement,
      '--id',
      String(id),
      '--data-dir',
      b.dataDir,
      '--tick-ms',
      String(this.options.tickMs ?? 50),
      ...(this.options.subscriptionLifetimeMs === undefined
        ? []
        : ['--subscription-lifetime-ms', String(this.options.subscriptionLifetimeMs)]),
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

  /**
   * Starts one more broker (coordinated clusters): the next id, on its own 127.0.0.x address,
   * reached directly by the others (no proxy in between). Returns its id.
   */
  async addBroker(zone?: string): Promise<number> {
    if (!this.coordinated) throw new Error('only a coordinated cluster takes new brokers');
    const id = Math.max(...this.brokers.keys()) + 1;
    const host = hostOf(id);
    this.brokers.set(id, {
      id,
      api: `${host}:${await freePort(host)}`,
      peer: `${host}:${await freePort(host)}`,
      dataDir: join(this.baseDir, `broker-${id}`),
      logFile: join(this.baseDir, `broker-${id}.log`),
      child: undefined,
      exited: undefined,
      state: 'stopped',
      log: undefined,
      starts: 0,
    });
    if (zone !== undefined) this.extraZones.set(id, zone);
    await this.startBroker(id);
    return id;
  }

  get coordinated(): boolean {
    return this.coordinators.size > 0;
  }

  get coordinatorIds(): number[] {
    return [...this.coordinators.keys()];
  }

  coordinatorEndpoints(): string[] {
    return [...this.coordinators.values()].map((c) => c.api);
  }

  coordinatorRunning(id: number): boolean {
    return this.coordinator(id).child !== undefined;
  }

  /** Starts a stopped coordinator (its data folder kept) and waits until it listens. */
  async startCoordinator(id: number): Promise<void> {
    const c = this.coordinator(id);
    if (c.child !== undefined) throw new Error(`coordinator ${id} is running`);
    const args = [
      RHEOS_BIN,
      'coordinator',
      '--id',
      String(id),
      '--cluster-id',
      CLUSTER_ID,
      '--data-dir',
      c.dataDir,
      '--tick-ms',
      String(this.options.tickMs ?? 50),
      '--heartbeat-ms',
      '250',
      '--replication-factor',
      String(Math.min(3, this.options.brokers)),
      ...(this.options.groupFailoverMs === undefined
        ? []
        : ['--group-failover-ms', String(this.options.groupFailoverMs)]),
      ...(this.options.maxConcurrentMoves === undefined
        ? []
        : ['--max-concurrent-moves', String(this.options.maxConcurrentMoves)]),
      ...(this.options.replaceDownAfterMs === undefined
        ? []
        : ['--replace-down-after-ms', String(this.options.replaceDownAfterMs)]),
      ...(this.options.coordinatorArgs ?? []),
    ];
    for (const m of this.coordinators.values()) args.push('--member', `${m.id}=${m.api},${m.peer}`);
    c.log ??= createWriteStream(c.logFile, { flags: 'a' });
    c.log.write(`--- start ${++c.starts} at ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.options.env },
    });
    c.child = child;
    const log = c.log;
    child.stdout?.on('data', (chunk: Buffer) => log.write(chunk));
    child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
    c.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        log.write(`--- exit code ${String(code)} signal ${String(signal)}\n`);
        if (c.child === child) c.child = undefined;
        resolve();
      });
    });
    await awaitListening(c.api, child, this.options.startTimeoutMs ?? 30_000, c.logFile);
  }

  /** kill -9 a coordinator, and wait for the process to be gone. */
  async killCoordinator(id: number): Promise<void> {
    const { child, exited } = this.coordinator(id);
    if (child === undefined) return;
    child.kill('SIGKILL');
    await exited;
  }

  /** The coordinator that leads now, as the coordinators say (retried until one does). */
  async coordinatorLeader(timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const cluster = await this.describeCluster().catch(() => undefined);
      const leader = cluster?.coordinators.find((c) => c.leader);
      if (leader !== undefined) return leader.coordinatorId;
      if (Date.now() > deadline) throw new Error('no coordinator leader');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async describeCluster(): Promise<DescribeClusterResponse> {
    const link = new CoordinatorLink({
      endpoints: this.coordinatorEndpoints(),
      deadlineMs: 3_000,
      maxAttempts: 8,
    });
    try {
      return await link.call(CoordinatorServiceService.describeCluster, {}, true);
    } finally {
      link.close();
    }
  }

  /** The metadata the brokers run on: the cluster file's, or the coordinators' newest. */
  async metadataState(): Promise<MetadataState> {
    if (!this.coordinated) {
      const config = parseClusterConfig(await readFile(this.configFile, 'utf8'));
      return new StaticMetadata(config, {
        accountId: DEFAULT_IDENTITY.accountId,
        limits: DEFAULT_ACCOUNT_LIMITS,
      }).state;
    }
    const link = new CoordinatorLink({ endpoints: this.coordinatorEndpoints(), deadlineMs: 5_000 });
    try {
      const response = await link.call(
        CoordinatorServiceService.getMetadata,
        { clusterId: CLUSTER_ID },
        true,
      );
      const records = JSON.parse(Buffer.from(response.recordsJson).toString('utf8')) as Record<
        string,
        unknown
      >;
      return stateFromRecords(new Map(Object.entries(records)));
    } finally {
      link.close();
    }
  }

  private async createStreams(): Promise<void> {
    const client = this.client(10_000);
    try {
      for (const stream of this.options.streams) {
        await client.createStream({
          streamName: stream.name,
          shardCount: stream.shardCount,
          replicationFactor: stream.replicationFactor ?? Math.min(3, this.options.brokers),
          shardLimits: UNLIMITED_SHARD_LIMITS,
        });
        await client.waitForStreamActive(stream.name, 30_000);
      }
    } finally {
      client.close();
    }
  }

  private coordinator(id: number): CoordinatorProcess {
    const c = this.coordinators.get(id);
    if (c === undefined) throw new Error(`no coordinator ${id}`);
    return c;
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

  /** Starts stopped coordinators, resumes paused brokers, starts stopped ones, heals every link. */
  async healAll(): Promise<void> {
    this.heal();
    for (const id of this.coordinatorIds) {
      if (!this.coordinatorRunning(id)) await this.startCoordinator(id);
    }
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
    for (const c of this.coordinators.values()) {
      const { child, exited } = c;
      if (child !== undefined) {
        child.kill('SIGKILL');
        await exited;
      }
      c.log?.end();
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

export function coordinatorHostOf(id: number): string {
  return `127.0.0.${100 + id}`;
}

/** Until something accepts connections at `address` (a coordinator answers nothing before). */
async function awaitListening(
  address: string,
  child: ChildProcess,
  timeoutMs: number,
  logFile: string,
): Promise<void> {
  const [host, port] = splitHostPort(address);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${address} exited while starting (see ${logFile})`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${address} did not listen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function linkKey(low: number, high: number): string {
  return `${low}-${high}`;
}

function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}
