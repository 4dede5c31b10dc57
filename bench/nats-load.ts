/**
 * NATS JetStream load (runs in its own process), for `npm run bench:peers`: publishes
 * `--msg-bytes` messages to a stream of `--replicas` replicas (file storage) for `--duration-s`.
 *  - acked: JetStream publish, `--window` publishes in flight, each waits for its PubAck (the
 *    equivalent of an acknowledged PutRecords record);
 *  - raw: core NATS publish into the stream's subject with no acknowledgement, as fast as the
 *    connection takes them; the rate is what the stream stored, read back from its state.
 * Prints one JSON object.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { connect, StorageType } from 'nats';
import { readProcessStats } from './lib/process-stats.js';
import { percentile, round } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    servers: { type: 'string' },
    replicas: { type: 'string', default: '1' },
    'msg-bytes': { type: 'string', default: '1024' },
    window: { type: 'string', default: '2000' },
    'duration-s': { type: 'string', default: '8' },
    'warmup-s': { type: 'string', default: '2' },
    mode: { type: 'string', default: 'acked' },
    stream: { type: 'string', default: 'bench' },
    'server-pid': { type: 'string' },
  },
});
if (!values.servers) throw new Error('--servers is required');
const msgBytes = Number(values['msg-bytes']);
const windowSize = Number(values.window);
const durationMs = Number(values['duration-s']) * 1000;
const warmupMs = Number(values['warmup-s']) * 1000;
const mode = values.mode;
if (mode !== 'acked' && mode !== 'raw') throw new Error(`unknown --mode ${mode}`);
const serverPids = (values['server-pid'] ?? '')
  .split(',')
  .filter((p) => p !== '')
  .map(Number);

const nc = await connect({ servers: values.servers.split(','), maxReconnectAttempts: 10 });
const jsm = await nc.jetstreamManager();
const streamName = values.stream;
const subject = `${streamName}.data`;
await jsm.streams.add({
  name: streamName,
  subjects: [`${streamName}.>`],
  storage: StorageType.File,
  num_replicas: Number(values.replicas),
});
const js = nc.jetstream();
const pool = randomBytes(msgBytes * 64);
const messages = Array.from({ length: 64 }, (_, i) =>
  pool.subarray(i * msgBytes, (i + 1) * msgBytes),
);

let measuring = false;
let stopping = false;
let acked = 0;
let errors = 0;
const latenciesMs: number[] = [];

async function ackedPublisher(): Promise<void> {
  let n = 0;
  while (!stopping) {
    const start = performance.now();
    try {
      await js.publish(subject, messages[n++ % 64] as Uint8Array);
      if (measuring) {
        acked++;
        latenciesMs.push(performance.now() - start);
      }
    } catch {
      if (measuring) errors++;
    }
  }
}

async function storedMessages(): Promise<number> {
  return (await jsm.streams.info(streamName)).state.messages;
}

const stats = () => serverPids.map((pid) => readProcessStats(pid));
let result: Record<string, unknown>;
if (mode === 'acked') {
  const publishers = Array.from({ length: windowSize }, () => ackedPublisher());
  await new Promise((resolve) => setTimeout(resolve, warmupMs));
  const before = stats();
  measuring = true;
  const startedMs = performance.now();
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  measuring = false;
  const elapsedS = (performance.now() - startedMs) / 1000;
  const after = stats();
  stopping = true;
  await Promise.all(publishers);
  latenciesMs.sort((a, b) => a - b);
  result = {
    acked,
    errors,
    elapsedS: round(elapsedS, 3),
    messagesPerSecond: round(acked / elapsedS, 0),
    latencyMs: { p50: round(percentile(latenciesMs, 50)), p99: round(percentile(latenciesMs, 99)) },
    ...serverCost(before, after, acked),
  };
} else {
  const before = stats();
  const storedBefore = await storedMessages();
  const startedMs = performance.now();
  let sent = 0;
  while (performance.now() - startedMs < durationMs) {
    // Bounded bursts, then a flush: the client's buffer never grows without limit.
    for (let i = 0; i < 1000; i++) nc.publish(subject, messages[sent++ % 64] as Uint8Array);
    await nc.flush();
  }
  // What the stream holds once the server has caught up with the connection.
  let stored = await storedMessages();
  for (let i = 0; i < 200 && stored - storedBefore < sent; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    stored = await storedMessages();
  }
  const elapsedS = (performance.now() - startedMs) / 1000;
  const after = stats();
  result = {
    sent,
    stored: stored - storedBefore,
    elapsedS: round(elapsedS, 3),
    messagesPerSecond: round((stored - storedBefore) / elapsedS, 0),
    ...serverCost(before, after, stored - storedBefore),
  };
}
await nc.close();
process.stdout.write(
  JSON.stringify({
    mode,
    replicas: Number(values.replicas),
    msgBytes,
    window: windowSize,
    ...result,
  }) + '\n',
);

function serverCost(
  before: ReturnType<typeof stats>,
  after: ReturnType<typeof stats>,
  count: number,
): { serverCpuUsPerMessage: number | null; rssMiB: Array<number | null> } {
  let cpuMs = 0;
  for (let i = 0; i < serverPids.length; i++) {
    const b = before[i];
    const a = after[i];
    if (b && a) cpuMs += a.cpuMs - b.cpuMs;
  }
  return {
    serverCpuUsPerMessage:
      count > 0 && serverPids.length > 0
        ? round((cpuMs * 1000) / count / serverPids.length, 1)
        : null,
    rssMiB: after.map((a) => (a ? round(a.rssBytes / 2 ** 20, 0) : null)),
  };
}
