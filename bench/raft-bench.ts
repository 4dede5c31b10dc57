/**
 * `npm run bench:raft`: proposals committed per second by a 3-replica Raft group in one process,
 * with in-memory storage and instant delivery, 1 KiB entries proposed in batches. It measures the
 * library's own cost (no disk, no network), and appends a JSON line to bench/results/raft.jsonl.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RawNode } from '../src/raft/raw-node.js';
import {
  EMPTY_INITIAL_STATE,
  Role,
  type Entry,
  type Message,
  type NodeId,
} from '../src/raft/types.js';
import { runContext } from './lib/machine.js';

const { values } = parseArgs({
  options: {
    'duration-s': { type: 'string', default: '5' },
    batch: { type: 'string', default: '64' },
    'entry-bytes': { type: 'string', default: '1024' },
    'no-record': { type: 'boolean', default: false },
  },
});
const durationMs = Number(values['duration-s']) * 1000;
const batch = Number(values.batch);
const entryBytes = Number(values['entry-bytes']);

const ids: NodeId[] = [1, 2, 3];
let seed = 1;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const nodes = new Map<NodeId, RawNode>();
const stored = new Map<NodeId, Entry[]>();
for (const id of ids) {
  stored.set(id, []);
  nodes.set(
    id,
    new RawNode(
      { id, voters: ids, random, maxSizePerMsgBytes: 4 * 1024 * 1024, maxInflightMsgs: 64 },
      EMPTY_INITIAL_STATE,
    ),
  );
}

let inbox: Message[] = [];
let committed = 0;
const leadership: { id: NodeId | undefined } = { id: undefined };
function cycle(): void {
  for (const [id, node] of nodes) {
    if (!node.hasReady()) continue;
    const ready = node.ready();
    inbox.push(...ready.messagesNow);
    if (ready.entries.length > 0) {
      // "Persist": keep the entries, replacing from the first one written.
      const log = stored.get(id) as Entry[];
      log.length = (ready.entries[0] as Entry).index - 1;
      log.push(...ready.entries);
    }
    inbox.push(...ready.messagesAfterPersist);
    if (id === leadership.id) committed += ready.committedEntries.length;
    node.advance(ready);
  }
  const batchOfMessages = inbox;
  inbox = [];
  for (const m of batchOfMessages) nodes.get(m.to)?.step(m);
}

const first = nodes.get(1) as RawNode;
first.campaign();
for (let i = 0; i < 20; i++) cycle();
leadership.id = ids.find((id) => nodes.get(id)?.status().role === Role.Leader);
const leader = leadership.id;
if (leader === undefined) throw new Error('no leader elected');
const leaderNode = nodes.get(leader) as RawNode;
const payload = new Uint8Array(entryBytes).fill(7);

committed = 0;
let proposed = 0;
const started = performance.now();
const cpuStart = process.cpuUsage();
while (performance.now() - started < durationMs) {
  for (let i = 0; i < batch; i++) {
    leaderNode.propose(payload);
    proposed++;
  }
  // A few cycles per batch, as a host would run Ready loops between arrivals.
  for (let i = 0; i < 3; i++) cycle();
  if (proposed % (batch * 64) === 0) for (const node of nodes.values()) node.tick();
}
for (let i = 0; i < 20; i++) cycle();
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuStart);
const result = {
  bench: 'raft',
  ...runContext(),
  replicas: 3,
  entryBytes,
  batch,
  seconds: Number(seconds.toFixed(2)),
  proposed,
  committed,
  commitsPerSecond: Math.round(committed / seconds),
  megabytesPerSecond: Number(((committed * entryBytes) / seconds / 1e6).toFixed(1)),
  cpuMsPerThousandCommits: Number(((cpu.user + cpu.system) / 1000 / (committed / 1000)).toFixed(2)),
};
console.log(
  `3-replica group, in memory, ${entryBytes}-byte entries in batches of ${batch}: ` +
    `${result.commitsPerSecond} commits/s (${result.megabytesPerSecond} MB/s), all three replicas in one thread`,
);
if (!values['no-record']) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  await mkdir(join(root, 'bench', 'results'), { recursive: true });
  await appendFile(join(root, 'bench', 'results', 'raft.jsonl'), JSON.stringify(result) + '\n');
}
