/**
 * `npm run bench` (third part), `npm run bench:fanout`: end-to-end latency of enhanced fan-out,
 * put -> delivery, on `rheos dev --brokers 3` (a coordinator and three broker processes, RF 3,
 * fsync on). One registered consumer reads every shard through SubscribeToShard (the client's
 * readFanOut) while a producer puts records open-loop at a fixed rate: record i is due at
 * t0 + i / rate whatever the server does, and its latency runs from that due time (not from when
 * the producer got round to sending it) to the moment the consumer has it, so a stalled server
 * cannot hide its stall by slowing the producer down (no coordinated omission). Records due in
 * the same millisecond go in one PutRecords call, as a producer with a 1-ms linger sends them.
 *
 * Reports p50/p99/p999/max of delivery and of the put's acknowledgement per rate, and the records
 * acknowledged but not delivered (which must be 0). Appends one JSON line per rate to
 * bench/results/fanout.jsonl.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient } from '../src/client/client.js';
import { readFanOut } from '../src/client/fanout-consumer.js';
import { ConsumerStatus } from '../src/gen/rheos/v1/control.js';
import { startBenchServer } from './lib/dev-server.js';
import { runContext } from './lib/machine.js';
import { readProcessStats } from './lib/process-stats.js';
import { percentile, round } from './lib/stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '100,1000,5000' },
    'duration-s': { type: 'string', default: '10' },
    'warmup-s': { type: 'string', default: '2' },
    shards: { type: 'string', default: '4' },
    'record-bytes': { type: 'string', default: '1024' },
    'no-record': { type: 'boolean', default: false },
    // Write a V8 CPU profile of the dev process and every broker here (written when they stop).
    'cpu-prof-dir': { type: 'string' },
  },
});
const rates = values.rates.split(',').map(Number);
const durationMs = Number(values['duration-s']) * 1000;
const warmupMs = Number(values['warmup-s']) * 1000;
const recordBytes = Number(values['record-bytes']);
if (rates.some((r) => !(r > 0)) || !(recordBytes >= 8)) throw new Error('bad --rates or sizes');

/** PutRecords calls in flight at most; a server slower than this shows as latency, not memory. */
const MAX_CALLS_IN_FLIGHT = 256;
const MAX_RECORDS_PER_CALL = 500;
/** How long the consumer may take to deliver the last records of a run before they are missing. */
const DRAIN_TIMEOUT_MS = 15_000;

/** One open-loop run: when each record was due and when it was acknowledged and delivered. */
interface Run {
  readonly rate: number;
  readonly dueMs: Float64Array;
  readonly ackedMs: Float64Array;
  readonly deliveredMs: Float64Array;
  failed: number;
  duplicates: number;
  /** Times the producer found MAX_CALLS_IN_FLIGHT calls open and waited. */
  stalls: number;
}

const profileDir = values['cpu-prof-dir'];
const server = await startBenchServer(
  root,
  'rheos-fanout-bench-',
  ['--brokers', '3'],
  profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir],
);
const producer = createClient({ endpoint: server.endpoint, deadlineMs: 10_000 });
const consumerClient = createClient({ endpoint: server.endpoint, deadlineMs: 10_000 });
const stopReading = new AbortController();
try {
  const streamName = 'latency';
  await producer.createStream({
    streamName,
    shardCount: Number(values.shards),
    // No per-shard write quota: this measures latency, not throttling.
    shardLimits: {
      writeBytesPerSecond: 0,
      writeRecordsPerSecond: 0,
      readCallsPerSecond: 0,
      readBytesPerSecond: 0,
    },
  });
  await producer.waitForStreamActive(streamName, 60_000);
  const summary = await producer.describeStreamSummary({ streamName });
  const { consumer } = await producer.registerStreamConsumer({
    streamArn: summary.streamDescriptionSummary?.streamArn ?? '',
    consumerName: 'latency-bench',
  });
  const consumerArn = consumer?.consumerArn ?? '';
  for (let attempt = 0; ; attempt++) {
    const { consumerDescription: d } = await producer.describeStreamConsumer({ consumerArn });
    if (d?.consumerStatus === ConsumerStatus.CONSUMER_STATUS_ACTIVE) break;
    if (attempt > 600) throw new Error('the consumer did not become ACTIVE');
    await sleep(50);
  }

  // Every run's records carry (run, index) in their first 8 bytes; the rest is random.
  const runs: Run[] = [];
  const reader = (async () => {
    for await (const { record } of readFanOut({
      client: consumerClient,
      streamName,
      consumerArn,
      from: { type: 'TRIM_HORIZON' },
      signal: stopReading.signal,
    })) {
      const now = performance.now();
      const run = runs[record.data.readUInt32BE(0)];
      const i = record.data.readUInt32BE(4);
      if (run === undefined || i >= run.deliveredMs.length) continue;
      if (run.deliveredMs[i] !== 0) run.duplicates++;
      else run.deliveredMs[i] = now;
    }
  })().catch((error: unknown) => {
    if (!stopReading.signal.aborted) throw error;
  });

  const padding = randomBytes(recordBytes - 8);
  const putRun = async (rate: number, lengthMs: number): Promise<Run> => {
    const total = Math.round((rate * lengthMs) / 1000);
    const run: Run = {
      rate,
      dueMs: new Float64Array(total),
      ackedMs: new Float64Array(total),
      deliveredMs: new Float64Array(total),
      failed: 0,
      duplicates: 0,
      stalls: 0,
    };
    const runId = runs.push(run) - 1;
    const t0 = performance.now();
    for (let i = 0; i < total; i++) run.dueMs[i] = t0 + (i * 1000) / rate;
    let next = 0;
    let inFlight = 0;
    const calls = new Set<Promise<void>>();
    while (next < total) {
      const dueNow = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
      while (next < dueNow && inFlight < MAX_CALLS_IN_FLIGHT) {
        const first = next;
        const end = Math.min(dueNow, first + MAX_RECORDS_PER_CALL);
        next = end;
        const records = [];
        for (let i = first; i < end; i++) {
          const head = Buffer.allocUnsafe(8);
          head.writeUInt32BE(runId, 0);
          head.writeUInt32BE(i, 4);
          records.push({
            partitionKey: `k${i}`,
            data: Buffer.concat([head, padding], recordBytes),
          });
        }
        inFlight++;
        const call = producer
          .putRecords({ streamName, records })
          .then(
            (answer) => {
              const now = performance.now();
              answer.records.forEach((r, j) => {
                if (r.errorCode === '') run.ackedMs[first + j] = now;
                else run.failed++;
              });
            },
            () => {
              run.failed += end - first;
            },
          )
          .finally(() => {
            inFlight--;
            calls.delete(call);
          });
        calls.add(call);
      }
      if (next < dueNow) run.stalls++;
      const waitMs = next < total ? (run.dueMs[next] as number) - performance.now() : 0;
      await sleep(Math.max(0, waitMs));
    }
    await Promise.all(calls);
    // Bounded: records acknowledged but still not delivered by then count as missing.
    const deadline = performance.now() + DRAIN_TIMEOUT_MS;
    while (performance.now() < deadline && !everyAckedDelivered(run)) await sleep(20);
    return run;
  };

  // The warm-up run opens the subscriptions and connections; its figures are not kept.
  await putRun(rates[0] as number, warmupMs);
  const context = runContext();
  console.log(
    `\nrheos fan-out latency benchmark: commit ${context.commit.slice(0, 12)}${context.dirty ? ' (dirty)' : ''}, ${context.machine.cpu}, ${context.machine.cores} cores, node ${context.machine.node}`,
  );
  const setup = `rheos dev --brokers 3, RF 3, fsync on, ${values.shards} shards, ${recordBytes}-byte records, open loop (PutRecords of the records due each ms), 1 consumer by readFanOut (SubscribeToShard, native gRPC), producer and consumer in the bench process, ${values['duration-s']} s per rate`;
  console.log(`${setup}\n`);
  console.log(
    'records/s   delivered   missing  dup   put p50/p99 ms        delivery p50 / p99 / p999 / max ms',
  );
  const cpuMsOf = () => server.pids.map((pid) => readProcessStats(pid)?.cpuMs ?? Number.NaN);
  for (const rate of rates) {
    const cpuBefore = cpuMsOf();
    const benchBefore = process.cpuUsage();
    const run = await putRun(rate, durationMs);
    const benchUsage = process.cpuUsage(benchBefore);
    const cpuAfter = cpuMsOf();
    const acked: number[] = [];
    const delivered: number[] = [];
    let missing = 0;
    for (let i = 0; i < run.dueMs.length; i++) {
      const due = run.dueMs[i] as number;
      const ack = run.ackedMs[i] as number;
      const got = run.deliveredMs[i] as number;
      if (ack !== 0) acked.push(ack - due);
      if (got !== 0) delivered.push(got - due);
      else if (ack !== 0) missing++;
    }
    acked.sort((a, b) => a - b);
    delivered.sort((a, b) => a - b);
    const latency = (sorted: number[]) => ({
      p50: round(percentile(sorted, 50)),
      p99: round(percentile(sorted, 99)),
      p999: round(percentile(sorted, 99.9)),
      max: round(sorted[sorted.length - 1] ?? Number.NaN),
    });
    const result = {
      bench: 'fanout-latency',
      ...context,
      setup,
      ratePerSecond: rate,
      durationMs,
      recordBytes,
      shards: Number(values.shards),
      recordsDue: run.dueMs.length,
      recordsAcknowledged: acked.length,
      recordsDelivered: delivered.length,
      acknowledgedNotDelivered: missing,
      failedRecords: run.failed,
      duplicates: run.duplicates,
      producerStalls: run.stalls,
      putLatencyMs: latency(acked),
      deliveryLatencyMs: latency(delivered),
      // CPU time per record of each server process (the dev process, then brokers 1-3) and of
      // the bench process (producer and consumer), over the run and its drain.
      serverCpuUsPerRecord: cpuAfter.map((after, i) =>
        round(((after - (cpuBefore[i] as number)) * 1000) / run.dueMs.length, 1),
      ),
      benchCpuUsPerRecord: round((benchUsage.user + benchUsage.system) / run.dueMs.length, 1),
    };
    const d = result.deliveryLatencyMs;
    console.log(
      [
        String(rate).padStart(9),
        String(delivered.length).padStart(11),
        String(missing).padStart(9),
        String(run.duplicates).padStart(4),
        `${result.putLatencyMs.p50} / ${result.putLatencyMs.p99}`.padStart(16),
        `${d.p50} / ${d.p99} / ${d.p999} / ${d.max}`.padStart(40),
      ].join(' ') +
        (run.failed > 0 ? `   (${run.failed} records failed)` : '') +
        (run.stalls > 0 ? `   (producer stalled ${run.stalls} times)` : ''),
    );
    console.log(
      `${' '.repeat(10)}CPU us per record: servers ${result.serverCpuUsPerRecord.join(' / ')}, bench ${result.benchCpuUsPerRecord}`,
    );
    if (!values['no-record']) {
      await mkdir(join(root, 'bench', 'results'), { recursive: true });
      await appendFile(
        join(root, 'bench', 'results', 'fanout.jsonl'),
        JSON.stringify(result) + '\n',
      );
    }
  }
  stopReading.abort();
  await reader;
} finally {
  stopReading.abort();
  producer.close();
  consumerClient.close();
  await server.stop();
}

function everyAckedDelivered(run: Run): boolean {
  for (let i = 0; i < run.ackedMs.length; i++) {
    if (run.ackedMs[i] !== 0 && run.deliveredMs[i] === 0) return false;
  }
  return true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
