/**
 * Consumer load (runs in its own process): reads a stream's whole backlog with GetRecords, every
 * shard at once, from TRIM_HORIZON until a page comes back empty with MillisBehindLatest 0.
 * Prints one JSON object: records and bytes read, records/s, and the servers' CPU per record.
 */
import { parseArgs } from 'node:util';
import { createClient } from '../src/client/client.js';
import { ShardIteratorType } from '../src/gen/rheos/v1/data.js';
import { readProcessStats } from './lib/process-stats.js';
import { round } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    endpoints: { type: 'string' },
    stream: { type: 'string' },
    limit: { type: 'string', default: '10000' },
    'server-pid': { type: 'string' },
  },
});
if (!values.endpoints || !values.stream) throw new Error('--endpoints and --stream are required');
const streamName = values.stream;
const limit = Number(values.limit);
const client = createClient({ endpoints: values.endpoints.split(','), deadlineMs: 60_000 });
const serverPids = (values['server-pid'] ?? '')
  .split(',')
  .filter((p) => p !== '')
  .map(Number);

const { shards } = await client.listShards({ streamName });
const before = serverPids.map((pid) => readProcessStats(pid));
const startedMs = performance.now();
let calls = 0;

async function drain(shardId: string): Promise<{ records: number; bytes: number }> {
  let { shardIterator } = await client.getShardIterator({
    streamName,
    shardId,
    shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
  });
  let records = 0;
  let bytes = 0;
  // Bounded: a backlog of at most 10,000 full pages per shard.
  for (let call = 0; call < 10_000; call++) {
    const page = await client.getRecords({ shardIterator, limit });
    calls++;
    records += page.records.length;
    for (const record of page.records) bytes += record.data.length;
    if (page.nextShardIterator === '') break;
    if (page.records.length === 0 && page.millisBehindLatest === 0) break;
    shardIterator = page.nextShardIterator;
  }
  return { records, bytes };
}

const perShard = await Promise.all(shards.map((s) => drain(s.shardId)));
const elapsedS = (performance.now() - startedMs) / 1000;
const after = serverPids.map((pid) => readProcessStats(pid));
client.close();
const records = perShard.reduce((sum, s) => sum + s.records, 0);
const bytes = perShard.reduce((sum, s) => sum + s.bytes, 0);
const cpuMs = serverPids.reduce((sum, _, i) => {
  const b = before[i];
  const a = after[i];
  return b && a ? sum + (a.cpuMs - b.cpuMs) : sum;
}, 0);
process.stdout.write(
  JSON.stringify({
    shards: shards.length,
    calls,
    records,
    bytes,
    elapsedS: round(elapsedS, 3),
    recordsPerSecond: round(records / elapsedS, 0),
    megabytesPerSecond: round(bytes / elapsedS / 1e6, 1),
    serverCpuUsPerRecord: records > 0 ? round((cpuMs * 1000) / records, 2) : null,
  }) + '\n',
);
