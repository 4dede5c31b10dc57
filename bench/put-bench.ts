/**
 * `npm run bench`: PutRecords throughput and latency of a single node with fsync on.
 *
 * Starts `rheos dev` as a child process on a temporary data folder, creates a stream without
 * throughput limits, then for each scenario runs the load generator (bench/put-load.ts) in its own
 * process. Prints a table and appends one JSON line per scenario, with the commit and the machine,
 * to bench/results/put.jsonl.
 */
import { execFile } from 'node:child_process';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { createClient } from '../src/client/client.js';
import { UNLIMITED_SHARD_LIMITS } from '../src/common/limits.js';
import { runContext } from './lib/machine.js';
import { startBenchServer } from './lib/dev-server.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const run = promisify(execFile);

const { values } = parseArgs({
  options: {
    'duration-s': { type: 'string', default: '8' },
    shards: { type: 'string', default: '4' },
    // API:BATCHxCONCURRENCY; API is native (gRPC), kinesis (AWS SDK, HTTP/2) or kinesis-h1.
    scenarios: {
      type: 'string',
      default: 'native:500x1,native:500x4,native:500x16,native:1x64,kinesis:500x4,kinesis:500x16',
    },
    'no-record': { type: 'boolean', default: false },
  },
});

interface Scenario {
  readonly api: string;
  readonly batch: number;
  readonly concurrency: number;
}

const scenarios: Scenario[] = values.scenarios.split(',').map((s) => {
  const [api, shape] = s.includes(':') ? (s.split(':') as [string, string]) : ['native', s];
  const [batch, concurrency] = shape.split('x').map(Number);
  if (!batch || !concurrency) throw new Error(`bad scenario ${s}: use API:BATCHxCONCURRENCY`);
  return { api, batch, concurrency };
});

const server = await startBenchServer(root, 'rheos-bench-');
const { endpoint, httpPort } = server;
const serverPid = server.pid;

try {
  const client = createClient({ endpoint, deadlineMs: 5_000 });
  await client.createStream({
    streamName: 'bench',
    shardCount: Number(values.shards),
    shardLimits: UNLIMITED_SHARD_LIMITS,
  });
  await client.waitForStreamActive('bench');
  client.close();

  const context = runContext();
  console.log(
    `rheos put benchmark: commit ${context.commit.slice(0, 12)}${context.dirty ? ' (dirty)' : ''}, ${context.machine.cpu}, ${context.machine.cores} cores, node ${context.machine.node}`,
  );
  console.log(
    `single node, fsync on, ${values.shards} shards, 1 KiB records, ${values['duration-s']} s per scenario\n`,
  );
  console.log(
    'api          batch  conc   records/s    MB/s   p50 ms   p99 ms   server CPU us/rec   disk B/rec',
  );
  for (const scenario of scenarios) {
    const { stdout } = await run(
      process.execPath,
      [
        join(here, 'put-load.js'),
        '--endpoint',
        endpoint,
        '--stream',
        'bench',
        '--batch',
        String(scenario.batch),
        '--concurrency',
        String(scenario.concurrency),
        '--record-bytes',
        '1024',
        '--duration-s',
        values['duration-s'],
        '--server-pid',
        String(serverPid),
        '--api',
        scenario.api,
        '--kinesis-endpoint',
        `http://127.0.0.1:${httpPort}`,
      ],
      { maxBuffer: 1 << 20 },
    );
    const load = JSON.parse(stdout) as {
      recordsOk: number;
      recordsFailed: number;
      errors: number;
      recordsPerSecond: number;
      megabytesPerSecond: number;
      elapsedS: number;
      latencyMs: { p50: number; p99: number; max: number };
      serverCpuUsPerRecord: number | null;
      serverDiskBytesPerRecord: number | null;
    };
    console.log(
      [
        scenario.api.padEnd(11),
        String(scenario.batch).padStart(5),
        String(scenario.concurrency).padStart(5),
        String(load.recordsPerSecond).padStart(11),
        String(load.megabytesPerSecond).padStart(7),
        String(load.latencyMs.p50).padStart(8),
        String(load.latencyMs.p99).padStart(8),
        String(load.serverCpuUsPerRecord).padStart(19),
        String(load.serverDiskBytesPerRecord).padStart(12),
      ].join(' ') +
        (load.recordsFailed + load.errors > 0
          ? `   (${load.recordsFailed} failed records, ${load.errors} failed calls)`
          : ''),
    );
    if (!values['no-record']) {
      await mkdir(join(root, 'bench', 'results'), { recursive: true });
      await appendFile(
        join(root, 'bench', 'results', 'put.jsonl'),
        JSON.stringify({
          bench: 'put',
          ...context,
          shards: Number(values.shards),
          recordBytes: 1024,
          ...scenario,
          ...load,
        }) + '\n',
      );
    }
  }
} finally {
  await server.stop();
}
