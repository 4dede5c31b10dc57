/**
 * `npm run bench` (second part): a 3-broker cluster, every shard replicated 3 ways by Raft,
 * fsync on, three `rheos broker` processes on 127.0.0.2-4 (bench/lib/cluster.ts). Measures:
 *  - closed-loop PutRecords (BATCHxCONCURRENCY scenarios, bench/put-load.ts) with, per broker,
 *    CPU microseconds per record, bytes written to disk per byte ingested (from /proc) and RSS;
 *  - GetRecords over the backlog those puts left (bench/consume-load.ts);
 *  - open-loop put latency at fixed rates, timed from each call's scheduled send.
 * Appends one JSON line per measurement to bench/results/cluster.jsonl.
 */
import { execFile } from 'node:child_process';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { startBenchCluster } from './lib/cluster.js';
import { runContext } from './lib/machine.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const run = promisify(execFile);

const { values } = parseArgs({
  options: {
    'duration-s': { type: 'string', default: '8' },
    shards: { type: 'string', default: '4' },
    // BATCHxCONCURRENCY, native API.
    scenarios: { type: 'string', default: '500x4,500x16' },
    // Open-loop target rates in records/s (batches of rate/100 records, 100 calls a second).
    rates: { type: 'string', default: '1000,5000,20000' },
    'no-consume': { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
    // Write a V8 CPU profile of every broker here (node --cpu-prof; written when they stop).
    'cpu-prof-dir': { type: 'string' },
  },
});

const RECORD_BYTES = 1024;

interface PerServer {
  pid: number;
  cpuUsPerRecord: number | null;
  diskBytesPerRecord: number | null;
  rssMiB: number | null;
  peakRssMiB: number | null;
}

interface PutLoad {
  recordsOk: number;
  recordsFailed: number;
  errors: number;
  recordsPerSecond: number;
  megabytesPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  perServer: PerServer[];
}

const cluster = await startBenchCluster({
  root,
  shards: Number(values.shards),
  profileDir: values['cpu-prof-dir'],
});
const context = runContext();
const resultsFile = join(root, 'bench', 'results', 'cluster.jsonl');

async function record(line: object): Promise<void> {
  if (values['no-record']) return;
  await mkdir(dirname(resultsFile), { recursive: true });
  await appendFile(
    resultsFile,
    JSON.stringify({
      ...context,
      brokers: 3,
      replicationFactor: 3,
      shards: Number(values.shards),
      recordBytes: RECORD_BYTES,
      ...line,
    }) + '\n',
  );
}

async function putLoad(batch: number, concurrency: number, rate?: number): Promise<PutLoad> {
  const { stdout } = await run(
    process.execPath,
    [
      join(here, 'put-load.js'),
      '--endpoint',
      cluster.endpoints[0] as string,
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
      cluster.pids.join(','),
      ...(rate === undefined ? [] : ['--rate', String(rate)]),
    ],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout) as PutLoad;
}

const failures = (load: PutLoad) =>
  load.recordsFailed + load.errors > 0
    ? `   (${load.recordsFailed} failed records, ${load.errors} failed calls)`
    : '';

try {
  console.log(
    `\nrheos cluster benchmark: commit ${context.commit.slice(0, 12)}${context.dirty ? ' (dirty)' : ''}, ${context.machine.cpu}, ${context.machine.cores} cores, node ${context.machine.node}`,
  );
  console.log(
    `3 broker processes on one machine, RF 3, fsync on, ${values.shards} shards, 1 KiB records, ${values['duration-s']} s per scenario\n`,
  );
  console.log(
    'batch  conc   records/s    MB/s   p50 ms   p99 ms   CPU us/rec per broker   disk B per B ingested   RSS MiB',
  );
  for (const shape of values.scenarios.split(',')) {
    const [batch, concurrency] = shape.split('x').map(Number);
    if (!batch || !concurrency) throw new Error(`bad scenario ${shape}: use BATCHxCONCURRENCY`);
    const load = await putLoad(batch, concurrency);
    const cpu = load.perServer.map((s) => s.cpuUsPerRecord);
    const diskRatio = load.perServer.map((s) =>
      s.diskBytesPerRecord === null
        ? null
        : Math.round((s.diskBytesPerRecord / RECORD_BYTES) * 100) / 100,
    );
    const rss = load.perServer.map((s) => s.rssMiB);
    console.log(
      [
        String(batch).padStart(5),
        String(concurrency).padStart(5),
        String(load.recordsPerSecond).padStart(11),
        String(load.megabytesPerSecond).padStart(7),
        String(load.latencyMs.p50).padStart(8),
        String(load.latencyMs.p99).padStart(8),
        cpu.join(' / ').padStart(23),
        diskRatio.join(' / ').padStart(23),
        rss.join(' / ').padStart(9),
      ].join(' ') + failures(load),
    );
    await record({
      bench: 'cluster-put',
      batch,
      concurrency,
      api: 'native',
      ...load,
      cpuUsPerRecordPerBroker: cpu,
      diskBytesPerByteIngestedPerBroker: diskRatio,
      rssMiBPerBroker: rss,
    });
  }

  if (!values['no-consume']) {
    const { stdout } = await run(
      process.execPath,
      [
        join(here, 'consume-load.js'),
        '--endpoints',
        cluster.endpoints.join(','),
        '--stream',
        'bench',
        '--server-pid',
        cluster.pids.join(','),
      ],
      { maxBuffer: 1 << 20 },
    );
    const consume = JSON.parse(stdout) as {
      records: number;
      recordsPerSecond: number;
      megabytesPerSecond: number;
      serverCpuUsPerRecord: number | null;
    };
    console.log(
      `\nGetRecords over the backlog (${consume.records} records, 10,000 per call, every shard at once): ` +
        `${consume.recordsPerSecond} records/s, ${consume.megabytesPerSecond} MB/s, ` +
        `${consume.serverCpuUsPerRecord} server CPU us/record (all brokers)`,
    );
    await record({ bench: 'cluster-consume', ...consume });
  }

  console.log(
    '\nopen loop    batch   records/s   p50 ms   p99 ms   max ms   (from scheduled send)',
  );
  for (const rate of values.rates.split(',').map(Number)) {
    if (!rate) continue;
    const batch = Math.max(1, Math.round(rate / 100));
    const load = await putLoad(batch, 64, rate);
    console.log(
      [
        `${rate}/s`.padEnd(10),
        String(batch).padStart(7),
        String(load.recordsPerSecond).padStart(11),
        String(load.latencyMs.p50).padStart(8),
        String(load.latencyMs.p99).padStart(8),
        String(load.latencyMs.max).padStart(8),
      ].join(' ') + failures(load),
    );
    await record({
      bench: 'cluster-open-loop',
      targetRecordsPerSecond: rate,
      batch,
      maxInFlight: 64,
      ...load,
    });
  }
} finally {
  await cluster.stop();
}
