/**
 * `npm run bench` (second part): PutRecords into a 3-broker cluster, every shard replicated 3 ways
 * by Raft, fsync on. Starts three `rheos broker` processes on 127.0.0.2-4 with static placement,
 * runs the load generator (bench/put-load.ts) against them, and reports, per broker process, CPU
 * microseconds per record and bytes written to disk per GB ingested (from /proc). Appends one JSON
 * line per scenario to bench/results/cluster.jsonl.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { createClient } from '../src/client/client.js';
import { runContext } from './lib/machine.js';
import { freePort } from './lib/ports.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const run = promisify(execFile);

const { values } = parseArgs({
  options: {
    'duration-s': { type: 'string', default: '8' },
    shards: { type: 'string', default: '4' },
    // BATCHxCONCURRENCY, native API.
    scenarios: { type: 'string', default: '500x4,500x16' },
    'no-record': { type: 'boolean', default: false },
    // Write a V8 CPU profile of every broker here (node --cpu-prof; written when they stop).
    'cpu-prof-dir': { type: 'string' },
  },
});
const profileDir = values['cpu-prof-dir'];

const RECORD_BYTES = 1024;
const BROKERS = [1, 2, 3];

const baseDir = await mkdtemp(join(tmpdir(), 'rheos-cluster-bench-'));
const brokers: Array<{ id: number; api: string; peer: string }> = [];
for (const id of BROKERS) {
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
      { name: 'bench', shardCount: Number(values.shards), replicationFactor: 3, unlimited: true },
    ],
  }),
);
const children: ChildProcess[] = BROKERS.map((id) =>
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
      join(root, 'bin', 'rheos.js'),
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

try {
  const client = createClient({ endpoints: brokers.map((b) => b.api), deadlineMs: 5_000 });
  // Ready once every shard has a leader that takes a write.
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
  client.close();

  const context = runContext();
  console.log(
    `\nrheos cluster put benchmark: commit ${context.commit.slice(0, 12)}${context.dirty ? ' (dirty)' : ''}, ${context.machine.cpu}, ${context.machine.cores} cores, node ${context.machine.node}`,
  );
  console.log(
    `3 broker processes on one machine, RF 3, fsync on, ${values.shards} shards, 1 KiB records, ${values['duration-s']} s per scenario\n`,
  );
  console.log(
    'batch  conc   records/s    MB/s   p50 ms   p99 ms   CPU us/rec per broker   disk GB per GB ingested per broker',
  );
  for (const shape of values.scenarios.split(',')) {
    const [batch, concurrency] = shape.split('x').map(Number);
    if (!batch || !concurrency) throw new Error(`bad scenario ${shape}: use BATCHxCONCURRENCY`);
    const { stdout } = await run(
      process.execPath,
      [
        join(here, 'put-load.js'),
        '--endpoint',
        (brokers[0] as { api: string }).api,
        '--stream',
        'bench',
        '--batch',
        String(batch),
        '--concurrency',
        String(concurrency),
        '--record-bytes',
        String(RECORD_BYTES),
        '--duration-s',
        values['duration-s'],
        '--server-pid',
        children.map((c) => String(c.pid)).join(','),
      ],
      { maxBuffer: 1 << 20 },
    );
    const load = JSON.parse(stdout) as {
      recordsOk: number;
      recordsFailed: number;
      errors: number;
      recordsPerSecond: number;
      megabytesPerSecond: number;
      latencyMs: { p50: number; p99: number; max: number };
      perServer: Array<{
        pid: number;
        cpuUsPerRecord: number | null;
        diskBytesPerRecord: number | null;
      }>;
    };
    const cpu = load.perServer.map((s) => s.cpuUsPerRecord);
    const diskPerGb = load.perServer.map((s) =>
      s.diskBytesPerRecord === null
        ? null
        : Math.round((s.diskBytesPerRecord / RECORD_BYTES) * 100) / 100,
    );
    console.log(
      [
        String(batch).padStart(5),
        String(concurrency).padStart(5),
        String(load.recordsPerSecond).padStart(11),
        String(load.megabytesPerSecond).padStart(7),
        String(load.latencyMs.p50).padStart(8),
        String(load.latencyMs.p99).padStart(8),
        cpu.join(' / ').padStart(23),
        diskPerGb.join(' / ').padStart(36),
      ].join(' ') +
        (load.recordsFailed + load.errors > 0
          ? `   (${load.recordsFailed} failed records, ${load.errors} failed calls)`
          : ''),
    );
    if (!values['no-record']) {
      await mkdir(join(root, 'bench', 'results'), { recursive: true });
      await appendFile(
        join(root, 'bench', 'results', 'cluster.jsonl'),
        JSON.stringify({
          bench: 'cluster-put',
          ...context,
          brokers: 3,
          replicationFactor: 3,
          shards: Number(values.shards),
          recordBytes: RECORD_BYTES,
          batch,
          concurrency,
          ...load,
          cpuUsPerRecordPerBroker: cpu,
          diskBytesPerGbIngestedPerBroker: diskPerGb.map((x) =>
            x === null ? null : Math.round(x * 1e9),
          ),
        }) + '\n',
      );
    }
  }
} finally {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
  await rm(baseDir, { recursive: true, force: true });
}
