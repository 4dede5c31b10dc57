/**
 * `npm run bench:multiraft`: what 1,000 idle Raft groups cost. Three MultiRaft nodes in one
 * process, each with a replica of every group, leadership spread; the host timer ticks every
 * 100 ms (election timeout 1 s) for the run. Reports CPU per node as a share of one core, and
 * what crosses the link from node 1 to node 2 per second, with quiescence on and off. Appends a
 * JSON line to bench/results/multiraft.jsonl.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runContext } from './lib/machine.js';
import { MultiRaftCluster } from './lib/multi-raft-cluster.js';

const { values } = parseArgs({
  options: {
    groups: { type: 'string', default: '1000' },
    'duration-s': { type: 'string', default: '10' },
    'tick-ms': { type: 'string', default: '100' },
    'no-record': { type: 'boolean', default: false },
  },
});
const groupCount = Number(values.groups);
const durationMs = Number(values['duration-s']) * 1000;
const tickMs = Number(values['tick-ms']);
const groups = Array.from({ length: groupCount }, (_, i) => `shard-${i}`);

async function measure(quiesce: boolean) {
  const cluster = new MultiRaftCluster([1, 2, 3], groups, quiesce);
  cluster.electSpread();
  for (let i = 0; i < 20; i++) cluster.tick();
  const before = { ...cluster.stats };
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      cluster.tick();
      if (performance.now() - started >= durationMs) {
        clearInterval(timer);
        resolve();
      }
    }, tickMs);
  });
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    quiesce,
    groups: groupCount,
    tickMs,
    seconds: Number(seconds.toFixed(2)),
    // Three nodes share this process: a node's share is a third of it.
    cpuPercentOfCorePerNode: Number(
      (((cpu.user + cpu.system) / 1000 / 3 / (seconds * 1000)) * 100).toFixed(2),
    ),
    batchesPerSecondOneToTwo: Math.round(
      (cluster.stats.batchesOneToTwo - before.batchesOneToTwo) / seconds,
    ),
    groupHeartbeatsPerSecond: Math.round(
      (cluster.stats.groupHeartbeats - before.groupHeartbeats) / seconds,
    ),
    raftMessagesPerSecond: Math.round((cluster.stats.messages - before.messages) / seconds),
  };
}

const context = runContext();
for (const quiesce of [true, false]) {
  const result = await measure(quiesce);
  console.log(
    `${groupCount} idle groups x 3 nodes, tick ${tickMs} ms, quiescence ${quiesce ? 'on ' : 'off'}: ` +
      `${result.cpuPercentOfCorePerNode}% of a core per node, ` +
      `${result.batchesPerSecondOneToTwo} batches/s node 1 -> 2 carrying ` +
      `${result.raftMessagesPerSecond} Raft messages/s in all (${result.groupHeartbeatsPerSecond} group heartbeats/s)`,
  );
  if (!values['no-record']) {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    await mkdir(join(root, 'bench', 'results'), { recursive: true });
    await appendFile(
      join(root, 'bench', 'results', 'multiraft.jsonl'),
      JSON.stringify({ bench: 'multiraft', ...context, ...result }) + '\n',
    );
  }
}
