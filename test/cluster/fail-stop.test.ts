import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type RheosClient } from '../../src/client/client.js';
import { ShardIteratorType } from '../../src/gen/rheos/v1/data.js';
import { freePort, killAllChildren, RHEOS_BIN, ROOT } from '../helpers/processes.js';

/**
 * A storage write error is fail-stop: a real `rheos broker` process whose data folder is on a
 * 16 MiB tmpfs is fed 64 KiB records until the disk fills. LevelDB's write fails, the broker must
 * exit (code 70, "fail-stop") without acknowledging anything after the failure, and a broker
 * started on a copy of the data folder must hold every record it acknowledged, at its sequence
 * number, byte for byte.
 *
 * Needs root on Linux (to mount a tmpfs); skipped elsewhere.
 */

const STREAM = 'fill';
const RECORD_BYTES = 64 * 1024;
const RECORDS_PER_CALL = 8;
const MAX_CALLS = 2_000;
const PUT_PHASE_MS = 90_000;
/** Calls made after the broker's exit was seen, to show they fail too. */
const CALLS_AFTER_EXIT = 3;

function tmpfsUsable(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  let dir: string | undefined;
  let mounted = false;
  try {
    dir = mkdtempSync(join(tmpdir(), 'rheos-tmpfs-probe-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    mounted = true;
    execFileSync('umount', [dir], { stdio: 'ignore' });
    mounted = false;
    return true;
  } catch {
    return false;
  } finally {
    // Never remove a directory that is still a mount point (rm would empty the mount, then fail).
    if (dir !== undefined && !mounted) rmSync(dir, { recursive: true, force: true });
  }
}

const CAN_MOUNT_TMPFS = tmpfsUsable();

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

interface BrokerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  /** Set once the process has exited. */
  exit(): Exit | undefined;
  output(): string;
}

const started: BrokerProcess[] = [];

function spawnBroker(configFile: string, dataDir: string): BrokerProcess {
  const child = spawn(
    process.execPath,
    [
      RHEOS_BIN,
      'broker',
      '--config',
      configFile,
      '--id',
      '1',
      '--data-dir',
      dataDir,
      '--tick-ms',
      '20',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  let exit: Exit | undefined;
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<Exit>((resolve) =>
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    }),
  );
  const broker: BrokerProcess = { child, exited, exit: () => exit, output: () => output };
  started.push(broker);
  return broker;
}

/** SIGTERM, then SIGKILL if it has not exited in time; resolves once it has exited. */
async function stopBroker(broker: BrokerProcess, graceMs = 10_000): Promise<Exit> {
  const done = broker.exit();
  if (done !== undefined) return done;
  broker.child.kill('SIGTERM');
  try {
    return await withTimeout(broker.exited, graceMs, 'broker to stop on SIGTERM');
  } catch {
    broker.child.kill('SIGKILL');
    return withTimeout(broker.exited, 10_000, 'broker to die on SIGKILL');
  }
}

/** Waits until the broker answers and its shard takes writes (the warm-up record is kept). */
async function waitUntilWritable(
  broker: BrokerProcess,
  client: RheosClient,
  warmup: Buffer,
): Promise<{ shardId: string; sequenceNumber: string }> {
  const deadline = Date.now() + 30_000;
  let last: unknown;
  for (;;) {
    if (broker.exit() !== undefined) throw new Error(`broker exited early:\n${broker.output()}`);
    if (Date.now() > deadline) {
      throw new Error(`broker never became writable (${String(last)}):\n${broker.output()}`);
    }
    try {
      await withTimeout(client.listShards({ streamName: STREAM }), 5_000, 'listShards');
      const response = await withTimeout(
        client.putRecord({ streamName: STREAM, partitionKey: 'warmup', data: warmup }),
        10_000,
        'warm-up putRecord',
      );
      return { shardId: response.shardId, sequenceNumber: response.sequenceNumber };
    } catch (error) {
      last = error;
      await sleep(100);
    }
  }
}

/** The shard's records from TRIM_HORIZON up to its end (bounded), by sequence number. */
async function readShard(client: RheosClient, shardId: string): Promise<Map<string, Buffer>> {
  const { shardIterator } = await withTimeout(
    client.getShardIterator({
      streamName: STREAM,
      shardId,
      shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    }),
    10_000,
    'getShardIterator',
  );
  const records = new Map<string, Buffer>();
  let iterator = shardIterator;
  for (let page = 0; page < 2_000 && iterator !== ''; page++) {
    const response = await withTimeout(
      client.getRecords({ shardIterator: iterator, limit: 100 }),
      10_000,
      'getRecords',
    );
    for (const r of response.records) records.set(r.sequenceNumber, r.data);
    if (response.records.length === 0 && response.millisBehindLatest === 0) break;
    iterator = response.nextShardIterator;
  }
  return records;
}

interface Acked {
  readonly id: string;
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly hash: string;
}

interface CallOutcome {
  readonly call: number;
  readonly acked: number;
  readonly failed: number;
  /** The broker's exit had been seen before this call started. */
  readonly afterExit: boolean;
  readonly error?: string;
}

describe.skipIf(!CAN_MOUNT_TMPFS)(
  'fail-stop on a full disk (rheos broker, data on a tmpfs)',
  () => {
    let mountPoint: string | undefined;
    let mounted = false;
    let workDir: string | undefined;
    const clients: RheosClient[] = [];

    beforeAll(async () => {
      workDir = await mkdtemp(join(tmpdir(), 'rheos-fail-stop-'));
      mountPoint = await mkdtemp(join(tmpdir(), 'rheos-tmpfs-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mountPoint]);
      mounted = true;
    });

    afterAll(async () => {
      for (const client of clients.splice(0)) client.close();
      try {
        for (const broker of started.splice(0)) {
          if (broker.exit() === undefined) {
            broker.child.kill('SIGKILL');
            await withTimeout(broker.exited, 10_000, `broker pid ${broker.child.pid} to die`);
          }
        }
        await killAllChildren();
      } finally {
        try {
          if (mountPoint !== undefined) {
            if (mounted) {
              try {
                execFileSync('umount', [mountPoint]);
              } catch {
                // Busy (a process we could not kill still holds a file): detach it lazily.
                execFileSync('umount', ['-l', mountPoint]);
              }
              mounted = false;
            }
            await rm(mountPoint, { recursive: true, force: true });
          }
        } finally {
          if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
        }
      }
    });

    it('exits with code 70 once a write fails, acknowledges nothing after, and loses nothing acknowledged', async () => {
      const mnt = mountPoint as string;
      const work = workDir as string;
      const [apiPort, peerPort] = [await freePort(), await freePort()];
      const api = `127.0.0.1:${apiPort}`;
      const configFile = join(work, 'cluster.json');
      await writeFile(
        configFile,
        JSON.stringify({
          clusterId: 'fail-stop',
          brokers: [{ id: 1, api, peer: `127.0.0.1:${peerPort}` }],
          streams: [{ name: STREAM, shardCount: 1, replicationFactor: 1, unlimited: true }],
        }),
      );

      // Phase 1: fill the disk.
      const dataDir = join(mnt, 'b1');
      const broker = spawnBroker(configFile, dataDir);
      const client = createClient({ endpoints: [api], deadlineMs: 10_000, maxRouteAttempts: 3 });
      clients.push(client);
      const acked: Acked[] = [];
      const warmup = Buffer.from('warmup|first record');
      const first = await waitUntilWritable(broker, client, warmup);
      acked.push({ id: 'warmup', ...first, hash: sha256(warmup) });

      const outcomes: CallOutcome[] = [];
      const deadline = Date.now() + PUT_PHASE_MS;
      let callsAfterExit = 0;
      for (let call = 0; call < MAX_CALLS && Date.now() < deadline; call++) {
        const afterExit = broker.exit() !== undefined;
        if (afterExit && callsAfterExit++ >= CALLS_AFTER_EXIT) break;
        const records = Array.from({ length: RECORDS_PER_CALL }, (_, k) => {
          const id = `r${call}.${k}`;
          const data = Buffer.concat([
            Buffer.from(`${id}|`),
            randomBytes(RECORD_BYTES - id.length - 1),
          ]);
          return { id, data };
        });
        try {
          const response = await withTimeout(
            client.putRecords({
              streamName: STREAM,
              records: records.map((r) => ({ partitionKey: r.id, data: r.data })),
            }),
            30_000,
            `putRecords call ${call}`,
          );
          let ok = 0;
          const errors = new Set<string>();
          response.records.forEach((entry, k) => {
            const record = records[k];
            if (entry.errorCode === '' && record !== undefined) {
              ok++;
              acked.push({
                id: record.id,
                shardId: entry.shardId,
                sequenceNumber: entry.sequenceNumber,
                hash: sha256(record.data),
              });
            } else {
              errors.add(`${entry.errorCode}: ${entry.errorMessage}`);
            }
          });
          const failed = RECORDS_PER_CALL - ok;
          outcomes.push({
            call,
            acked: ok,
            failed,
            afterExit,
            ...(failed > 0 ? { error: [...errors].join('; ') } : {}),
          });
        } catch (error) {
          outcomes.push({
            call,
            acked: 0,
            failed: RECORDS_PER_CALL,
            afterExit,
            error: String(error),
          });
        }
      }

      const exit = await withTimeout(broker.exited, 10_000, 'broker to exit after the disk filled');
      const summary = outcomes.map(
        (o) =>
          `#${o.call} acked=${o.acked} failed=${o.failed}${o.afterExit ? ' (after exit)' : ''}${o.error === undefined ? '' : ` ${o.error}`}`,
      );
      // The broker stopped by itself, fail-stop, with the documented exit code.
      expect(exit, `broker output:\n${broker.output()}`).toEqual({ code: 70, signal: null });
      expect(broker.output()).toContain('fail-stop');
      // Something was acknowledged before the disk filled.
      const firstFailed = outcomes.findIndex((o) => o.failed > 0);
      expect(firstFailed, summary.join('\n')).toBeGreaterThanOrEqual(0);
      const ackedBeforeFailure = outcomes.slice(0, firstFailed).reduce((n, o) => n + o.acked, 0);
      expect(ackedBeforeFailure).toBeGreaterThan(0);
      // Once a call failed, every later call failed too: nothing acknowledged after a failure.
      const later = outcomes.slice(firstFailed + 1);
      expect(
        later.filter((o) => o.acked > 0),
        summary.join('\n'),
      ).toEqual([]);
      // The loop ran until after the exit (the bound was not what stopped it).
      expect(outcomes.some((o) => o.afterExit)).toBe(true);

      // Phase 2: a broker on a copy of the full data folder holds everything it acknowledged.
      const copy = join(work, 'b1-copy');
      await cp(dataDir, copy, { recursive: true });
      const again = spawnBroker(configFile, copy);
      const reader = createClient({ endpoints: [api], deadlineMs: 10_000 });
      clients.push(reader);
      const shardIds = new Set(acked.map((a) => a.shardId));
      expect(shardIds.size).toBe(1);
      const shardId = [...shardIds][0] as string;

      let stored = new Map<string, Buffer>();
      const readDeadline = Date.now() + 45_000;
      let lastError: unknown;
      for (;;) {
        if (again.exit() !== undefined) {
          throw new Error(`restarted broker exited:\n${again.output()}`);
        }
        try {
          stored = await readShard(reader, shardId);
          if (acked.every((a) => stored.has(a.sequenceNumber))) break;
        } catch (error) {
          lastError = error;
        }
        if (Date.now() > readDeadline) break;
        await sleep(200);
      }
      const missing = acked.filter((a) => !stored.has(a.sequenceNumber)).map((a) => a.id);
      expect(
        missing,
        `read ${stored.size} records (last error: ${String(lastError)})\n${again.output()}`,
      ).toEqual([]);
      for (const a of acked) {
        const data = stored.get(a.sequenceNumber) as Buffer;
        expect(data.subarray(0, a.id.length + 1).toString(), a.id).toBe(`${a.id}|`);
        expect(sha256(data), a.id).toBe(a.hash);
      }

      reader.close();
      const stop = await stopBroker(again);
      expect(stop.code === 0 || stop.signal === 'SIGKILL').toBe(true);
    }, 180_000);
  },
);
