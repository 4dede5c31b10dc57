/**
 * `npm run bench:peers`: Rheos beside NATS JetStream and kinesalite in one run, same machine,
 * same 1 KiB payloads, and the same records in flight where the APIs allow (a PutRecords of 500
 * records with 4 calls in flight is 2,000 records in flight; JetStream gets a window of 2,000
 * acknowledged publishes). Installs what is missing (Debian's nats-server; kinesalite and the
 * `nats` client are devDependencies), starts every server itself and stops it by pid.
 * Prints the table with Rheos/peer ratios and appends it to bench/results/peers.jsonl.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { CreateStreamCommand, DescribeStreamCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createClient } from '../src/client/client.js';
import { UNLIMITED_SHARD_LIMITS } from '../src/common/limits.js';
import { startBenchCluster, stopChild } from './lib/cluster.js';
import { startBenchServer } from './lib/dev-server.js';
import { runContext } from './lib/machine.js';
import { freePort } from './lib/ports.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const run = promisify(execFile);

const { values } = parseArgs({
  options: {
    'duration-s': { type: 'string', default: '8' },
    'no-record': { type: 'boolean', default: false },
  },
});
const DURATION_S = values['duration-s'];
const SHARDS = 4;
const BATCH = 500;
const CONCURRENCY = 4;
const IN_FLIGHT = BATCH * CONCURRENCY;

interface Row {
  readonly figure: string;
  readonly rheos: number | null;
  readonly peer: string;
  readonly peerValue: number | null;
  readonly note?: string;
}

async function putLoad(
  args: string[],
): Promise<{ recordsPerSecond: number; latencyMs: { p99: number } }> {
  const { stdout } = await run(
    process.execPath,
    [
      join(here, 'put-load.js'),
      '--stream',
      'bench',
      '--batch',
      String(BATCH),
      '--concurrency',
      String(CONCURRENCY),
      '--record-bytes',
      '1024',
      '--duration-s',
      DURATION_S,
      ...args,
    ],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout) as { recordsPerSecond: number; latencyMs: { p99: number } };
}

async function natsLoad(
  servers: string[],
  replicas: number,
  mode: 'acked' | 'raw',
  pids: number[],
  stream: string,
): Promise<{ messagesPerSecond: number }> {
  const { stdout } = await run(
    process.execPath,
    [
      join(here, 'nats-load.js'),
      '--servers',
      servers.join(','),
      '--replicas',
      String(replicas),
      '--mode',
      mode,
      '--window',
      String(IN_FLIGHT),
      '--duration-s',
      DURATION_S,
      '--stream',
      stream,
      '--server-pid',
      pids.join(','),
    ],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout) as { messagesPerSecond: number };
}

function natsServerBinary(): string | undefined {
  for (const path of ['/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    if (existsSync(path)) return path;
  }
  return undefined;
}

async function ensureNatsServer(): Promise<string | undefined> {
  const found = natsServerBinary();
  if (found !== undefined) return found;
  console.log("installing Debian's nats-server (apt-get install nats-server) ...");
  try {
    await run('apt-get', ['install', '-y', '-qq', 'nats-server'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch (error) {
    console.log(`could not install nats-server (${String(error)}); JetStream rows are skipped`);
  }
  return natsServerBinary();
}

interface NatsCluster {
  readonly urls: string[];
  readonly pids: number[];
  stop(): Promise<void>;
}

async function startNats(binary: string, nodes: number): Promise<NatsCluster> {
  const baseDir = await mkdtemp(join(tmpdir(), 'rheos-bench-nats-'));
  const hosts = Array.from({ length: nodes }, (_, i) => `127.0.0.${i + 2}`);
  const ports = await Promise.all(hosts.map((h) => freePort(h)));
  const clusterPorts = await Promise.all(hosts.map((h) => freePort(h)));
  const routes = hosts.map((h, i) => `nats://${h}:${clusterPorts[i]}`).join(',');
  const children: ChildProcess[] = hosts.map((host, i) =>
    spawn(
      binary,
      [
        '-a',
        host,
        '-p',
        String(ports[i]),
        '-js',
        '-sd',
        join(baseDir, `n${i}`),
        '--server_name',
        `n${i}`,
        ...(nodes > 1
          ? [
              '--cluster_name',
              'bench',
              '--cluster',
              `nats://${host}:${clusterPorts[i]}`,
              '--routes',
              routes,
            ]
          : []),
      ],
      // Its log is chatty (route retries while the cluster forms); a server that fails to start
      // shows as nats-load's connection error.
      { stdio: 'ignore' },
    ),
  );
  const urls = hosts.map((h, i) => `nats://${h}:${ports[i]}`);
  // JetStream in a cluster is usable once a meta leader is elected: nats-load's stream creation
  // retries below cover that; here, wait for the client ports.
  await new Promise((resolve) => setTimeout(resolve, nodes > 1 ? 4000 : 1000));
  return {
    urls,
    pids: children.map((c) => c.pid as number),
    stop: async () => {
      await Promise.all(children.map(stopChild));
      await rm(baseDir, { recursive: true, force: true });
    },
  };
}

async function withRetries<T>(attempts: number, task: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await task();
    } catch (error) {
      if (i + 1 >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

const rows: Row[] = [];
const context = runContext();
console.log(
  `rheos vs peers: commit ${context.commit.slice(0, 12)}${context.dirty ? ' (dirty)' : ''}, ${context.machine.cpu}, ${context.machine.cores} cores, node ${context.machine.node}`,
);
console.log(
  `1 KiB records, ${IN_FLIGHT} records in flight (PutRecords ${BATCH} x ${CONCURRENCY}), ${DURATION_S} s each\n`,
);

// Rheos, one node.
const single = await startBenchServer(root, 'rheos-bench-peers-');
let rheosSingle: number;
let rheosSingleKinesis: number;
try {
  const client = createClient({ endpoint: single.endpoint, deadlineMs: 5_000 });
  await client.createStream({
    streamName: 'bench',
    shardCount: SHARDS,
    shardLimits: UNLIMITED_SHARD_LIMITS,
  });
  await client.waitForStreamActive('bench');
  client.close();
  rheosSingle = (await putLoad(['--endpoint', single.endpoint, '--server-pid', String(single.pid)]))
    .recordsPerSecond;
  rheosSingleKinesis = (
    await putLoad([
      '--endpoint',
      single.endpoint,
      '--api',
      'kinesis-h1',
      '--kinesis-endpoint',
      `http://127.0.0.1:${single.httpPort}`,
    ])
  ).recordsPerSecond;
} finally {
  await single.stop();
}
console.log(
  `rheos single node: ${rheosSingle} records/s native, ${rheosSingleKinesis} via the AWS SDK`,
);

// Rheos, 3 brokers RF 3.
const cluster = await startBenchCluster({ root, shards: SHARDS });
let rheosCluster: { recordsPerSecond: number; latencyMs: { p99: number } };
try {
  rheosCluster = await putLoad([
    '--endpoint',
    cluster.endpoints[0] as string,
    '--server-pid',
    cluster.pids.join(','),
  ]);
} finally {
  await cluster.stop();
}
console.log(
  `rheos 3 brokers RF 3: ${rheosCluster.recordsPerSecond} records/s, p99 ${rheosCluster.latencyMs.p99} ms`,
);

// NATS JetStream.
const natsBinary = await ensureNatsServer();
if (natsBinary !== undefined) {
  const version = (await run(natsBinary, ['--version'])).stdout.trim();
  const note = `${version}: file storage, syncs to disk on its own timer (2 min by default), not before each ack`;
  for (const nodes of [1, 3]) {
    const nats = await startNats(natsBinary, nodes);
    try {
      const acked = await withRetries(5, () =>
        natsLoad(nats.urls, nodes, 'acked', nats.pids, 'acked'),
      );
      const raw = await withRetries(5, () => natsLoad(nats.urls, nodes, 'raw', nats.pids, 'raw'));
      const rheos = nodes === 1 ? rheosSingle : rheosCluster.recordsPerSecond;
      const label = nodes === 1 ? 'single node' : '3 nodes, 3 replicas';
      rows.push(
        {
          figure: `${label}, acknowledged`,
          rheos,
          peer: `JetStream R${nodes} acked`,
          peerValue: acked.messagesPerSecond,
          note,
        },
        {
          figure: `${label}, vs unacknowledged`,
          rheos,
          peer: `JetStream R${nodes} raw`,
          peerValue: raw.messagesPerSecond,
          note,
        },
      );
      console.log(
        `JetStream R${nodes}: ${acked.messagesPerSecond} msg/s acked, ${raw.messagesPerSecond} msg/s raw`,
      );
    } finally {
      await nats.stop();
    }
  }
}

// kinesalite, through the AWS SDK (HTTP/1.1, as kinesalite speaks it).
const kinesalitePort = await freePort();
const kinesalite = spawn(
  process.execPath,
  [
    join(root, 'node_modules', 'kinesalite', 'cli.js'),
    '--port',
    String(kinesalitePort),
    '--createStreamMs',
    '0',
    '--shardLimit',
    '100',
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
try {
  const endpoint = `http://127.0.0.1:${kinesalitePort}`;
  const sdk = new KinesisClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
    // kinesalite speaks HTTP/1.1 only; the Kinesis client defaults to HTTP/2.
    requestHandler: new NodeHttpHandler(),
  });
  await withRetries(20, () =>
    sdk.send(new CreateStreamCommand({ StreamName: 'bench', ShardCount: SHARDS })),
  );
  await withRetries(20, async () => {
    const d = await sdk.send(new DescribeStreamCommand({ StreamName: 'bench' }));
    if (d.StreamDescription?.StreamStatus !== 'ACTIVE') throw new Error('not active');
  });
  sdk.destroy();
  const load = await putLoad([
    '--endpoint',
    '127.0.0.1:1',
    '--api',
    'kinesis-h1',
    '--kinesis-endpoint',
    endpoint,
    '--server-pid',
    String(kinesalite.pid),
  ]);
  rows.push({
    figure: 'single node, AWS SDK PutRecords',
    rheos: rheosSingleKinesis,
    peer: 'kinesalite',
    peerValue: load.recordsPerSecond,
    note: 'kinesalite keeps streams in memory (no disk, no fsync)',
  });
  console.log(`kinesalite: ${load.recordsPerSecond} records/s`);
} catch (error) {
  console.log(`kinesalite: failed, its row is left out (${String(error)})`);
} finally {
  await stopChild(kinesalite);
}

console.log(
  '\nfigure                                   Rheos rec/s   peer                    peer/s   Rheos/peer',
);
for (const row of rows) {
  const ratio =
    row.rheos !== null && row.peerValue
      ? Math.round((row.rheos / row.peerValue) * 100) / 100
      : null;
  console.log(
    [
      row.figure.padEnd(40),
      String(row.rheos).padStart(11),
      '  ' + row.peer.padEnd(20),
      String(row.peerValue).padStart(9),
      String(ratio).padStart(11),
    ].join(' '),
  );
}
for (const note of new Set(rows.map((r) => r.note).filter((n) => n !== undefined)))
  console.log(`  note: ${note}`);
if (!values['no-record']) {
  await mkdir(join(root, 'bench', 'results'), { recursive: true });
  await appendFile(
    join(root, 'bench', 'results', 'peers.jsonl'),
    JSON.stringify({
      bench: 'peers',
      ...context,
      recordBytes: 1024,
      recordsInFlight: IN_FLIGHT,
      rheosCluster3Rf3: rheosCluster,
      rows: rows.map((r) => ({
        ...r,
        ratio:
          r.rheos !== null && r.peerValue ? Math.round((r.rheos / r.peerValue) * 100) / 100 : null,
      })),
    }) + '\n',
  );
}
