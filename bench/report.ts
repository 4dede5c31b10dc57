/**
 * Writes the measured part of docs/PERFORMANCE.md (between its `bench:begin` and `bench:end`
 * markers) and the chart docs/performance.svg from the newest runs in bench/results/*.jsonl.
 * Run by `npm run bench` and `npm run bench:peers` after they record; by hand:
 * `node dist/bench/report.js`.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const BEGIN = '<!-- bench:begin (written by bench/report.ts; edit outside the markers) -->';
const END = '<!-- bench:end -->';

interface Line {
  readonly bench: string;
  readonly commit: string;
  readonly dirty: boolean;
  readonly date: string;
  readonly machine: { cpu: string; cores: number };
  readonly [field: string]: unknown;
}

interface Latency {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

async function lines(file: string): Promise<Line[]> {
  const path = join(root, 'bench', 'results', file);
  if (!existsSync(path)) return [];
  return (await readFile(path, 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Line)
    .sort((a, b) => a.date.localeCompare(b.date));
}

/** The newest line of `bench` matching `where`. */
function newest(all: readonly Line[], bench: string, where: (l: Line) => boolean = () => true) {
  const matching = all.filter((l) => l.bench === bench && where(l));
  matching.sort((a, b) => a.date.localeCompare(b.date));
  return matching[matching.length - 1];
}

const num = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined);
const fmt = (value: number | undefined, digits = 0): string =>
  value === undefined || Number.isNaN(value)
    ? '-'
    : value.toLocaleString('en-US', { maximumFractionDigits: digits });
const max = (values: unknown): number | undefined => {
  if (!Array.isArray(values)) return undefined;
  const numbers = values.filter((v): v is number => typeof v === 'number');
  return numbers.length === 0 ? undefined : Math.max(...numbers);
};
const range = (values: unknown, digits = 1): string => {
  if (!Array.isArray(values)) return '-';
  const numbers = values.filter((v): v is number => typeof v === 'number');
  if (numbers.length === 0) return '-';
  const lo = Math.min(...numbers);
  const hi = Math.max(...numbers);
  return lo === hi ? fmt(lo, digits) : `${fmt(lo, digits)}-${fmt(hi, digits)}`;
};
const source = (line: Line | undefined): string =>
  line === undefined
    ? ''
    : `${line.commit.slice(0, 7)}${line.dirty ? '+' : ''}, ${line.date.slice(0, 10)}`;

const cluster = await lines('cluster.jsonl');
const put = await lines('put.jsonl');
const peers = await lines('peers.jsonl');
const isShape = (batch: number, concurrency: number) => (l: Line) =>
  l['batch'] === batch && l['concurrency'] === concurrency && (l['api'] ?? 'native') === 'native';

const c4 = newest(cluster, 'cluster-put', isShape(500, 4));
const c16 = newest(cluster, 'cluster-put', isShape(500, 16));
const consume = newest(cluster, 'cluster-consume');
const single = newest(put, 'put', isShape(500, 4));
const peer = newest(peers, 'peers');
const peerRows = (peer?.['rows'] ?? []) as Array<{
  figure: string;
  rheos: number | null;
  peer: string;
  peerValue: number | null;
  ratio: number | null;
  note?: string;
}>;
const peerValue = (name: string) => peerRows.find((r) => r.peer === name)?.peerValue ?? undefined;

const out: string[] = [];
out.push(BEGIN, '');
out.push(
  `Newest runs on ${c4?.machine.cpu ?? '?'}, ${c4?.machine.cores ?? '?'} cores (commit, date; \`+\`: uncommitted changes).`,
  '',
);
out.push('### Targets', '');
out.push('| figure | target | measured | met | run |', '|---|---|---|---|---|');
const target = (
  figure: string,
  goal: string,
  value: string,
  met: boolean | undefined,
  line: Line | undefined,
) =>
  out.push(
    `| ${figure} | ${goal} | ${value} | ${met === undefined ? '-' : met ? 'yes' : 'no'} | ${source(line)} |`,
  );
const c4Rate = num(c4?.['recordsPerSecond']);
const c16Rate = num(c16?.['recordsPerSecond']);
const bestCluster = Math.max(c4Rate ?? 0, c16Rate ?? 0) || undefined;
target(
  '3 brokers RF 3, 500 x 1 KiB',
  '>= 50,000 records/s',
  `${fmt(c4Rate)} (4 in flight), ${fmt(c16Rate)} (16)`,
  bestCluster === undefined ? undefined : bestCluster >= 50_000,
  c16 ?? c4,
);
const r3 = peerValue('JetStream R3 acked');
target(
  '... vs JetStream R3 acknowledged, same run',
  '>= 2x',
  peer === undefined || r3 === undefined
    ? '-'
    : `${fmt(num((peer['rheosCluster3Rf3'] as { recordsPerSecond?: number } | undefined)?.recordsPerSecond))} vs ${fmt(r3)}`,
  undefined,
  peer,
);
const p99 = (c4?.['latencyMs'] as Latency | undefined)?.p99;
target(
  'put p99 at 4 in flight (3 brokers)',
  '<= 100 ms',
  `${fmt(p99, 1)} ms`,
  p99 === undefined ? undefined : p99 <= 100,
  c4,
);
const singleRate = num(single?.['recordsPerSecond']);
target(
  'single node, 500 x 1 KiB, 4 in flight',
  '>= 150,000 records/s',
  fmt(singleRate),
  singleRate === undefined ? undefined : singleRate >= 150_000,
  single,
);
const r1raw = peerValue('JetStream R1 raw');
target(
  '... vs JetStream R1 raw, same run',
  '>= 1x',
  r1raw === undefined
    ? '-'
    : `${fmt(peerRows.find((r) => r.peer === 'JetStream R1 raw')?.rheos ?? undefined)} vs ${fmt(r1raw)}`,
  undefined,
  peer,
);
const cpuMax = max(c16?.['cpuUsPerRecordPerBroker']);
target(
  'server CPU per record per broker (500 x 16)',
  '<= 6 us',
  `${range(c16?.['cpuUsPerRecordPerBroker'])} us`,
  cpuMax === undefined ? undefined : cpuMax <= 6,
  c16,
);
const diskMax = max(c16?.['diskBytesPerByteIngestedPerBroker']);
target(
  'disk bytes written per byte ingested, per replica',
  '<= 1.3',
  range(c16?.['diskBytesPerByteIngestedPerBroker'], 2),
  diskMax === undefined ? undefined : diskMax <= 1.3,
  c16,
);
const consumeRate = num(consume?.['recordsPerSecond']);
target(
  'GetRecords over a backlog (3 brokers)',
  '>= 200,000 records/s',
  fmt(consumeRate),
  consumeRate === undefined ? undefined : consumeRate >= 200_000,
  consume,
);
const rssMax = max(c16?.['rssMiBPerBroker']);
target(
  'broker RSS (after 500 x 16)',
  '<= 300 MiB',
  `${range(c16?.['rssMiBPerBroker'], 0)} MiB`,
  rssMax === undefined ? undefined : rssMax <= 300,
  c16,
);
out.push('');

out.push('### 3 brokers, RF 3, closed loop, by commit', '');
out.push(
  '| commit | date | batch x in flight | records/s | p50 ms | p99 ms | CPU us/record per broker | disk B per B ingested | RSS MiB |',
  '|---|---|---|---|---|---|---|---|---|',
);
const history = cluster.filter((l) => l.bench === 'cluster-put' && l['batch'] === 500);
for (const l of history.slice(-8)) {
  const latency = l['latencyMs'] as Latency;
  const disk =
    l['diskBytesPerByteIngestedPerBroker'] ??
    (Array.isArray(l['diskBytesPerGbIngestedPerBroker'])
      ? (l['diskBytesPerGbIngestedPerBroker'] as Array<number | null>).map((x) =>
          x === null ? null : x / 1e9,
        )
      : undefined);
  out.push(
    `| ${l.commit.slice(0, 7)}${l.dirty ? '+' : ''} | ${l.date.slice(0, 16).replace('T', ' ')} | 500 x ${String(l['concurrency'])} | ${fmt(num(l['recordsPerSecond']))} | ${fmt(latency.p50, 1)} | ${fmt(latency.p99, 1)} | ${range(l['cpuUsPerRecordPerBroker'])} | ${range(disk, 2)} | ${range(l['rssMiBPerBroker'], 0)} |`,
  );
}
out.push('');

const openLoop = cluster.filter((l) => l.bench === 'cluster-open-loop');
out.push("### 3 brokers, open loop (latency from each call's scheduled send)", '');
out.push(
  '| commit | target records/s | achieved | p50 ms | p99 ms | max ms |',
  '|---|---|---|---|---|---|',
);
for (const l of openLoop.slice(-6)) {
  const latency = l['latencyMs'] as Latency;
  out.push(
    `| ${l.commit.slice(0, 7)}${l.dirty ? '+' : ''} | ${fmt(num(l['targetRecordsPerSecond']))} | ${fmt(num(l['recordsPerSecond']))} | ${fmt(latency.p50, 1)} | ${fmt(latency.p99, 1)} | ${fmt(latency.max, 1)} |`,
  );
}
out.push('');
out.push(
  '### GetRecords over a backlog (3 brokers, 10,000 records per call, every shard at once)',
  '',
);
out.push(
  '| commit | records | records/s | MB/s | server CPU us/record (all brokers) |',
  '|---|---|---|---|---|',
);
for (const l of cluster.filter((x) => x.bench === 'cluster-consume').slice(-4)) {
  out.push(
    `| ${l.commit.slice(0, 7)}${l.dirty ? '+' : ''} | ${fmt(num(l['records']))} | ${fmt(num(l['recordsPerSecond']))} | ${fmt(num(l['megabytesPerSecond']), 1)} | ${fmt(num(l['serverCpuUsPerRecord']), 1)} |`,
  );
}
out.push('');

if (peer !== undefined) {
  out.push(`### Beside the peers (\`npm run bench:peers\`, ${source(peer)})`, '');
  out.push(
    '| figure | Rheos records/s | peer | peer records/s | Rheos / peer |',
    '|---|---|---|---|---|',
  );
  for (const r of peerRows)
    out.push(
      `| ${r.figure} | ${fmt(r.rheos ?? undefined)} | ${r.peer} | ${fmt(r.peerValue ?? undefined)} | ${fmt(r.ratio ?? undefined, 2)} |`,
    );
  out.push('');
  for (const note of new Set(
    peerRows.map((r) => r.note).filter((n): n is string => n !== undefined),
  ))
    out.push(`- ${note}`);
  out.push('');
}
out.push('![records/s](performance.svg)', '', END);

// The chart: records/s of the newest runs, Rheos and its peers.
const bars: Array<{ label: string; value: number; rheos: boolean }> = [];
if (c4Rate !== undefined)
  bars.push({ label: 'Rheos 3 brokers RF 3, 500x4', value: c4Rate, rheos: true });
if (c16Rate !== undefined)
  bars.push({ label: 'Rheos 3 brokers RF 3, 500x16', value: c16Rate, rheos: true });
if (singleRate !== undefined)
  bars.push({ label: 'Rheos single node, 500x4', value: singleRate, rheos: true });
if (consumeRate !== undefined)
  bars.push({ label: 'Rheos GetRecords backlog, 3 brokers', value: consumeRate, rheos: true });
for (const r of peerRows)
  if (r.peerValue !== null) bars.push({ label: r.peer, value: r.peerValue, rheos: false });
const width = 760;
const barHeight = 22;
const labelWidth = 280;
const top = 30;
const scaleMax = Math.max(1, ...bars.map((b) => b.value));
const svg: string[] = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top + bars.length * (barHeight + 8) + 10}" font-family="sans-serif" font-size="12">`,
  `<text x="10" y="18" font-size="14" font-weight="bold">records (messages) per second, 1 KiB, this machine (newest runs)</text>`,
];
bars.forEach((b, i) => {
  const y = top + i * (barHeight + 8);
  const w = Math.max(1, Math.round(((width - labelWidth - 90) * b.value) / scaleMax));
  svg.push(
    `<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end">${b.label}</text>`,
    `<rect x="${labelWidth}" y="${y}" width="${w}" height="${barHeight}" fill="${b.rheos ? '#2b6cb0' : '#a0aec0'}"/>`,
    `<text x="${labelWidth + w + 6}" y="${y + 15}">${fmt(b.value)}</text>`,
  );
});
svg.push('</svg>', '');
await writeFile(join(root, 'docs', 'performance.svg'), svg.join('\n'));

const docPath = join(root, 'docs', 'PERFORMANCE.md');
const doc = existsSync(docPath)
  ? await readFile(docPath, 'utf8')
  : `# Performance\n\n${BEGIN}\n${END}\n`;
const start = doc.indexOf(BEGIN);
const end = doc.indexOf(END);
if (start < 0 || end < start) throw new Error('docs/PERFORMANCE.md has lost its bench markers');
await writeFile(docPath, doc.slice(0, start) + out.join('\n') + doc.slice(end + END.length));
console.log('wrote docs/PERFORMANCE.md (measured section) and docs/performance.svg');
