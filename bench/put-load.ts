/**
 * Load generator (runs in its own process): PutRecords of `--batch` records of `--record-bytes`
 * each, `--concurrency` calls in flight, for `--duration-s` seconds after a warm-up. Prints one
 * JSON object with counts and per-call latencies to stdout.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createClient } from '../src/client/client.js';
import { readProcessStats } from './lib/process-stats.js';
import { percentile, round } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    stream: { type: 'string' },
    batch: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '8' },
    'record-bytes': { type: 'string', default: '1024' },
    'duration-s': { type: 'string', default: '10' },
    'warmup-s': { type: 'string', default: '2' },
    'server-pid': { type: 'string' },
    // native: the gRPC API with RheosClient. kinesis / kinesis-h1: the Kinesis HTTP API with the
    // AWS SDK for JavaScript v3, over HTTP/2 (its default) or HTTP/1.1.
    api: { type: 'string', default: 'native' },
    'kinesis-endpoint': { type: 'string' },
    // Open loop: send `--batch` records every batch/rate seconds whatever the answers, with at
    // most `--concurrency` calls in flight (a call that has to wait for a slot is late). Latency
    // is counted from each call's scheduled time, so a slow server cannot hide its queue
    // (coordinated omission).
    rate: { type: 'string' },
  },
});

const batch = Number(values.batch);
const concurrency = Number(values.concurrency);
const recordBytes = Number(values['record-bytes']);
const durationMs = Number(values['duration-s']) * 1000;
const warmupMs = Number(values['warmup-s']) * 1000;
if (!values.endpoint || !values.stream) throw new Error('--endpoint and --stream are required');

const api = values.api;
if (api !== 'native' && api !== 'kinesis' && api !== 'kinesis-h1')
  throw new Error(`unknown --api ${api}`);
if (api !== 'native' && !values['kinesis-endpoint'])
  throw new Error('--kinesis-endpoint is required');
const client = createClient({ endpoint: values.endpoint, deadlineMs: 60_000 });
const kinesis =
  api === 'native'
    ? undefined
    : new KinesisClient({
        endpoint: values['kinesis-endpoint'],
        region: 'us-east-1',
        credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
        maxAttempts: 1,
        ...(api === 'kinesis-h1'
          ? {
              requestHandler: new NodeHttpHandler({
                httpAgent: { keepAlive: true, maxSockets: 64 },
              }),
            }
          : {}),
      });
// Distinct payloads and keys (spread over all shards), built once so the generator measures the
// server, not its own allocation.
const pool = randomBytes(recordBytes * 64);
const records = Array.from({ length: batch }, (_, i) => ({
  partitionKey: `key-${i}`,
  data: pool.subarray((i % 64) * recordBytes, (i % 64) * recordBytes + recordBytes),
}));

let measuring = false;
let stopping = false;
let calls = 0;
let recordsOk = 0;
let recordsFailed = 0;
let errors = 0;
const latenciesMs: number[] = [];

/** One put (native or AWS SDK), its latency timed from `scheduledMs` (performance.now() time). */
async function putOnce(scheduledMs: number): Promise<void> {
  try {
    let failed: number;
    if (kinesis === undefined) {
      failed = (await client.putRecords({ streamName: values.stream, records })).failedRecordCount;
    } else {
      const response = await kinesis.send(
        new PutRecordsCommand({
          StreamName: values.stream,
          Records: records.map((r) => ({ PartitionKey: r.partitionKey, Data: r.data })),
        }),
      );
      failed = response.FailedRecordCount ?? 0;
    }
    if (measuring) {
      latenciesMs.push(performance.now() - scheduledMs);
      calls++;
      recordsFailed += failed;
      recordsOk += records.length - failed;
    }
  } catch {
    if (measuring) errors++;
  }
}

/** Closed loop: the next call as soon as the last one answered. */
async function worker(): Promise<void> {
  while (!stopping) await putOnce(performance.now());
}

const ratePerSecond = values.rate === undefined ? undefined : Number(values.rate);
if (ratePerSecond !== undefined && api !== 'native') throw new Error('--rate needs --api native');

async function openLoop(rate: number): Promise<void> {
  const intervalMs = (batch / rate) * 1000;
  const inFlight = new Set<Promise<void>>();
  let next = performance.now();
  while (!stopping) {
    const wait = next - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    const call = putOnce(next).finally(() => inFlight.delete(call));
    inFlight.add(call);
    next += intervalMs;
  }
  await Promise.all(inFlight);
}

const workers =
  ratePerSecond === undefined
    ? Array.from({ length: concurrency }, () => worker())
    : [openLoop(ratePerSecond)];
await new Promise((resolve) => setTimeout(resolve, warmupMs));
// One pid, or several (the brokers of a cluster): the first is reported as "the server".
const serverPids = (values['server-pid'] ?? '')
  .split(',')
  .filter((p) => p !== '')
  .map(Number);
const serverPid = serverPids[0];
const allBefore = serverPids.map((pid) => readProcessStats(pid));
const serverBefore = allBefore[0];
measuring = true;
const startedMs = performance.now();
const cpuStart = process.cpuUsage();
await new Promise((resolve) => setTimeout(resolve, durationMs));
measuring = false;
const allAfter = serverPids.map((pid) => readProcessStats(pid));
const serverAfter = serverPid === undefined ? undefined : allAfter[0];
const elapsedS = (performance.now() - startedMs) / 1000;
const cpu = process.cpuUsage(cpuStart);
stopping = true;
await Promise.all(workers);
client.close();
kinesis?.destroy();

latenciesMs.sort((a, b) => a - b);
process.stdout.write(
  JSON.stringify({
    api,
    batch,
    concurrency,
    ...(ratePerSecond === undefined ? {} : { targetRecordsPerSecond: ratePerSecond }),
    recordBytes,
    elapsedS: round(elapsedS, 3),
    calls,
    recordsOk,
    recordsFailed,
    errors,
    recordsPerSecond: round(recordsOk / elapsedS, 0),
    megabytesPerSecond: round((recordsOk * recordBytes) / elapsedS / 1e6, 1),
    latencyMs: {
      p50: round(percentile(latenciesMs, 50)),
      p99: round(percentile(latenciesMs, 99)),
      max: round(latenciesMs[latenciesMs.length - 1] ?? NaN),
    },
    generatorCpuMs: round((cpu.user + cpu.system) / 1000, 0),
    // Server cost per stored record: CPU microseconds and bytes it wrote to disk.
    serverCpuUsPerRecord:
      serverBefore && serverAfter && recordsOk > 0
        ? round(((serverAfter.cpuMs - serverBefore.cpuMs) * 1000) / recordsOk, 1)
        : null,
    serverDiskBytesPerRecord:
      serverBefore && serverAfter && recordsOk > 0
        ? round((serverAfter.writeBytes - serverBefore.writeBytes) / recordsOk, 0)
        : null,
    perServer: serverPids.map((pid, i) => {
      const before = allBefore[i];
      const after = allAfter[i];
      return {
        pid,
        cpuUsPerRecord:
          before && after && recordsOk > 0
            ? round(((after.cpuMs - before.cpuMs) * 1000) / recordsOk, 1)
            : null,
        diskBytesPerRecord:
          before && after && recordsOk > 0
            ? round((after.writeBytes - before.writeBytes) / recordsOk, 0)
            : null,
        rssMiB: after ? round(after.rssBytes / 2 ** 20, 0) : null,
        peakRssMiB: after ? round(after.peakRssBytes / 2 ** 20, 0) : null,
      };
    }),
  }) + '\n',
);
