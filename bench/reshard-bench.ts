/**
 * `npm run bench:reshard`: how long resharding takes under load, and what the writers see while it
 * runs. Starts `rheos dev --brokers 3` (a coordinator and three broker processes, RF 3, fsync on),
 * keeps PutRecords of 1 KiB records flowing (`--batch` x `--concurrency`, native API), and while it
 * flows splits one shard, then rescales the stream up and down (UpdateShardCount). For each change:
 * the time from the request to ACTIVE, records/s acknowledged meanwhile, the worst 250 ms window,
 * and the records that failed. Appends one JSON line to bench/results/resharding.jsonl.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient, type RheosClient } from '../src/client/client.js';
import { MAX_HASH_KEY } from '../src/common/hash-key.js';
import { ScalingType } from '../src/gen/rheos/v1/control.js';
import { StreamStatus } from '../src/gen/rheos/v1/stream.js';
import { runContext } from './lib/machine.js';
import { startBenchServer } from './lib/dev-server.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '8' },
    shards: { type: 'string', default: '4' },
    'settle-s': { type: 'string', default: '4' },
    'no-record': { type: 'boolean', default: false },
  },
});
const batch = Number(values.batch);
const concurrency = Number(values.concurrency);
const settleMs = Number(values['settle-s']) * 1000;
const RECORD_BYTES = 1024;
const BUCKET_MS = 250;

const server = await startBenchServer(root, 'rheos-reshard-bench-', ['--brokers', '3']);

try {
  const client = createClient({ endpoint: server.endpoint, deadlineMs: 30_000 });
  await client.createStream({
    streamName: 'bench',
    shardCount: Number(values.shards),
    shardLimits: {
      writeBytesPerSecond: 0,
      writeRecordsPerSecond: 0,
      readCallsPerSecond: 0,
      readBytesPerSecond: 0,
    },
  });
  await client.waitForStreamActive('bench', 60_000);

  // The load: acknowledged records per 250 ms bucket since t0.
  const t0 = performance.now();
  const acked: number[] = [];
  let failed = 0;
  /** Each error seen, with its latest message. */
  const errors = new Map<string, string>();
  let stop = false;
  const payloads = Array.from({ length: batch }, () => randomBytes(RECORD_BYTES));
  let key = 0;
  const writer = async () => {
    while (!stop) {
      const records = payloads.map((data) => ({ partitionKey: `k${key++ % 100_000}`, data }));
      try {
        const answer = await client.putRecords({ streamName: 'bench', records });
        const bucket = Math.floor((performance.now() - t0) / BUCKET_MS);
        acked[bucket] = (acked[bucket] ?? 0) + records.length - answer.failedRecordCount;
        failed += answer.failedRecordCount;
        for (const r of answer.records) {
          if (r.errorCode !== '') errors.set(r.errorCode, r.errorMessage);
        }
      } catch (error) {
        errors.set(String((error as Error).name), String((error as Error).message));
        failed += records.length;
        await sleep(50);
      }
    }
  };
  const writers = Array.from({ length: concurrency }, writer);
  const rate = (fromMs: number, toMs: number) => {
    let n = 0;
    for (let b = Math.floor(fromMs / BUCKET_MS); b < Math.floor(toMs / BUCKET_MS); b++)
      n += acked[b] ?? 0;
    return (n * 1000) / Math.max(1, toMs - fromMs);
  };
  const worstWindow = (fromMs: number, toMs: number) => {
    let worst = Infinity;
    for (let b = Math.floor(fromMs / BUCKET_MS); b < Math.floor(toMs / BUCKET_MS); b++)
      worst = Math.min(worst, ((acked[b] ?? 0) * 1000) / BUCKET_MS);
    return worst === Infinity ? 0 : worst;
  };
  const now = () => performance.now() - t0;

  await sleep(settleMs);
  const baseline = rate(1_000, now());
  const changes: Array<Record<string, unknown>> = [];
  const change = async (what: string, call: (c: RheosClient) => Promise<unknown>) => {
    const failedBefore = failed;
    const startMs = now();
    await call(client);
    for (;;) {
      const summary = await client.describeStreamSummary({ streamName: 'bench' });
      if (summary.streamDescriptionSummary?.streamStatus === StreamStatus.STREAM_STATUS_ACTIVE)
        break;
      await sleep(20);
    }
    const endMs = now();
    await sleep(settleMs);
    changes.push({
      what,
      durationMs: Math.round(endMs - startMs),
      recordsPerSecondDuring: Math.round(rate(startMs, endMs)),
      worst250msRecordsPerSecond: Math.round(worstWindow(startMs, endMs)),
      recordsPerSecondAfter: Math.round(rate(endMs + 1_000, now())),
      failedRecords: failed - failedBefore,
    });
  };
  await change('SplitShard (one of 4 shards)', async (c) => {
    const { shards } = await c.listShards({ streamName: 'bench' });
    const first = shards[0];
    const start = BigInt(first?.hashKeyRange?.startingHashKey ?? 0);
    const end = BigInt(first?.hashKeyRange?.endingHashKey ?? MAX_HASH_KEY);
    await c.splitShard({
      streamName: 'bench',
      shardToSplit: first?.shardId ?? '',
      newStartingHashKey: ((start + end + 1n) / 2n).toString(),
    });
  });
  for (const target of [8, 4]) {
    await change(`UpdateShardCount to ${target}`, (c) =>
      c.updateShardCount({
        streamName: 'bench',
        targetShardCount: target,
        scalingType: ScalingType.SCALING_TYPE_UNIFORM_SCALING,
      }),
    );
  }
  stop = true;
  await Promise.all(writers);
  client.close();

  const context = runContext();
  const result = {
    ...context,
    bench: 'reshard',
    setup: `rheos dev --brokers 3, RF 3, fsync on, ${values.shards} shards at the start, PutRecords ${batch} x 1 KiB, ${concurrency} in flight, native API; load generator in the bench process`,
    baselineRecordsPerSecond: Math.round(baseline),
    changes,
    errors: Object.fromEntries(errors),
  };
  console.log(
    `\nrheos resharding benchmark: commit ${context.commit.slice(0, 12)}${context.dirty ? ' (dirty)' : ''}, ${context.machine.cpu}, ${context.machine.cores} cores, node ${context.machine.node}`,
  );
  console.log(`${result.setup}\nbefore any change: ${result.baselineRecordsPerSecond} records/s`);
  for (const c of changes) {
    console.log(
      `${String(c['what']).padEnd(30)} ${String(c['durationMs']).padStart(6)} ms to ACTIVE; ${c['recordsPerSecondDuring']} records/s meanwhile (worst 250 ms: ${c['worst250msRecordsPerSecond']}/s), ${c['recordsPerSecondAfter']}/s after; ${c['failedRecords']} records failed`,
    );
  }
  if (errors.size > 0) console.log(`errors: ${JSON.stringify(Object.fromEntries(errors))}`);
  if (!values['no-record']) {
    const out = join(root, 'bench', 'results');
    await mkdir(out, { recursive: true });
    await appendFile(join(out, 'resharding.jsonl'), JSON.stringify(result) + '\n');
  }
} finally {
  await server.stop();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
