/**
 * `npm run bench:producer`: the buffered producer against a single `rheos dev` (fsync on), with
 * idempotence on and off and with KPL aggregation on and off. Each scenario writes `--records`
 * records of `--record-bytes` with random keys to a fresh stream without throughput limits, as
 * fast as the producer takes them (backpressure paces it). Reports user records/s, records
 * stored (what aggregation saves), the latency from send to acknowledgement, and the server's CPU
 * per user record. Appends one JSON line per scenario to bench/results/producer.jsonl.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient, type RheosClient } from '../src/client/client.js';
import { createProducer, type RecordResult } from '../src/client/producer.js';
import { UNLIMITED_SHARD_LIMITS } from '../src/common/limits.js';
import { ShardIteratorType } from '../src/gen/rheos/v1/data.js';
import { runContext } from './lib/machine.js';
import { startBenchServer } from './lib/dev-server.js';
import { readProcessStats } from './lib/process-stats.js';
import { percentile, round } from './lib/stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    'record-bytes': { type: 'string', default: '100' },
    shards: { type: 'string', default: '4' },
    keys: { type: 'string', default: '10000' },
    // idempotent|plain, then +agg for aggregation.
    scenarios: { type: 'string', default: 'idempotent,plain,idempotent+agg,plain+agg' },
    'no-record': { type: 'boolean', default: false },
  },
});

const records = Number(values.records);
const recordBytes = Number(values['record-bytes']);
const keys = Number(values.keys);

const server = await startBenchServer(root, 'rheos-bench-producer-');
const { endpoint } = server;
const serverPid = server.pid;

async function storedRecords(client: RheosClient, streamName: string): Promise<number> {
  let count = 0;
  const { shards } = await client.listShards({ streamName });
  for (const shard of shards) {
    let { shardIterator } = await client.getShardIterator({
      streamName,
      shardId: shard.shardId,
      shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    });
    for (let call = 0; call < 10_000; call++) {
      const answer = await client.getRecords({ shardIterator });
      count += answer.records.length;
      if (answer.records.length === 0 || answer.nextShardIterator === '') break;
      shardIterator = answer.nextShardIterator;
    }
  }
  return count;
}

try {
  const client = createClient({ endpoint, deadlineMs: 10_000 });
  const context = runContext();
  console.log(
    `rheos producer benchmark: commit ${context.commit.slice(0, 12)}${context.dirty ? ' (dirty)' : ''}, ${context.machine.cpu}, ${context.machine.cores} cores, node ${context.machine.node}`,
  );
  console.log(
    `single node, fsync on, ${values.shards} shards, ${records} records of ${recordBytes} B, ${keys} random keys\n`,
  );
  console.log(
    'scenario            records/s   stored   p50 ms   p99 ms   server CPU us/rec   duplicates caught',
  );
  const data = Buffer.alloc(recordBytes, 0x61);
  let seed = 0x5eed;
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  for (const [n, scenario] of values.scenarios.split(',').entries()) {
    const idempotent = scenario.startsWith('idempotent');
    const aggregate = scenario.endsWith('+agg');
    const streamName = `bench-${n}`;
    await client.createStream({
      streamName,
      shardCount: Number(values.shards),
      shardLimits: UNLIMITED_SHARD_LIMITS,
    });
    await client.waitForStreamActive(streamName);
    const producer = createProducer({ client, streamName, idempotent, aggregate });
    const latenciesMs: number[] = [];
    const receipts: Promise<RecordResult>[] = [];
    const before = readProcessStats(serverPid);
    const startedMs = performance.now();
    for (let i = 0; i < records; i++) {
      const sentMs = performance.now();
      const { stored } = await producer.send({
        partitionKey: `key-${Math.floor(random() * keys)}`,
        data,
      });
      receipts.push(stored.then((r) => (latenciesMs.push(performance.now() - sentMs), r)));
    }
    await Promise.all(receipts);
    const elapsedS = (performance.now() - startedMs) / 1000;
    const after = readProcessStats(serverPid);
    await producer.close();
    const stats = producer.stats();
    const stored = await storedRecords(client, streamName);
    latenciesMs.sort((a, b) => a - b);
    const result = {
      scenario,
      idempotent,
      aggregate,
      records,
      recordBytes,
      recordsPerSecond: round(records / elapsedS, 0),
      storedRecords: stored,
      latencyMs: {
        p50: round(percentile(latenciesMs, 50)),
        p99: round(percentile(latenciesMs, 99)),
      },
      serverCpuUsPerRecord:
        before && after ? round(((after.cpuMs - before.cpuMs) * 1000) / records, 1) : null,
      batchesSent: stats.batchesSent,
      duplicatesCaught: stats.duplicatesCaught,
      recordsFailed: stats.recordsFailed,
    };
    console.log(
      [
        scenario.padEnd(17),
        String(result.recordsPerSecond).padStart(11),
        String(stored).padStart(8),
        String(result.latencyMs.p50).padStart(8),
        String(result.latencyMs.p99).padStart(8),
        String(result.serverCpuUsPerRecord).padStart(19),
        String(stats.duplicatesCaught).padStart(19),
      ].join(' ') + (stats.recordsFailed > 0 ? `   (${stats.recordsFailed} failed)` : ''),
    );
    if (!values['no-record']) {
      await mkdir(join(root, 'bench', 'results'), { recursive: true });
      await appendFile(
        join(root, 'bench', 'results', 'producer.jsonl'),
        JSON.stringify({
          bench: 'producer',
          ...context,
          shards: Number(values.shards),
          ...result,
        }) + '\n',
      );
    }
    await client.deleteStream({ streamName });
  }
  client.close();
} finally {
  await server.stop();
}
