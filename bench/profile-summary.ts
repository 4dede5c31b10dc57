/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, e.g. `node dist/bench/cluster-bench.js
 * --cpu-prof-dir DIR`): self time by function and by source area (Rheos folders, node_modules
 * packages, node internals, GC, idle), so the closing notes can say where the microseconds go.
 * Usage: node dist/bench/profile-summary.js FILE.cpuprofile... [--top N]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
});

/** Where a frame's code lives: a Rheos folder, a package, node itself, or V8's own. */
function areaOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'gc';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'program (native, unattributed)';
    return `native ${functionName}`;
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg !== null) return `npm ${pkg[1]}`;
  const own = /\/dist\/(src\/[^/]+|bench)\//.exec(url);
  if (own !== null) return own[1] as string;
  if (url.startsWith('node:internal/')) return `node ${url.slice(14).split('/')[0]}`;
  if (url.startsWith('node:')) return `node ${url.slice(5).split('/')[0]}`;
  return url;
}

function table(title: string, rows: Map<string, number>, totalUs: number, top: number): void {
  console.log(`\n${title}`);
  const sorted = [...rows].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [name, us] of sorted) {
    console.log(
      `${((us / totalUs) * 100).toFixed(1).padStart(6)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`,
    );
  }
}

const top = Number(values.top);
for (const file of positionals) {
  const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) =>
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
  );
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const nameOf = (node: ProfileNode) =>
    `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '')}:${node.callFrame.lineNumber + 1}`;
  /** The nearest Rheos frame at or above a sample: who asked for the time spent. */
  const rheosFrameOf = (id: number): string | undefined => {
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const node = byId.get(at);
      if (node !== undefined && /\/dist\/(src|bench)\//.test(node.callFrame.url))
        return nameOf(node);
    }
    return undefined;
  };
  const byRheosFrame = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let totalUs = 0;
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName, url } = node.callFrame;
    const area = areaOf(url, functionName);
    totalUs += us;
    if (area !== 'idle') busyUs += us;
    const name = nameOf(node);
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    if (area !== 'idle') {
      const owner = rheosFrameOf(id) ?? `(outside Rheos code) ${area}`;
      byRheosFrame.set(owner, (byRheosFrame.get(owner) ?? 0) + us);
    }
    byArea.set(area, (byArea.get(area) ?? 0) + us);
  }
  console.log(
    `\n== ${file}: ${(totalUs / 1e6).toFixed(1)} s sampled, ${(busyUs / 1e6).toFixed(1)} s busy`,
  );
  table('self time by area', byArea, totalUs, top);
  table('self time by function', byFunction, totalUs, top);
  table(
    'busy time charged to the nearest Rheos frame (callees included)',
    byRheosFrame,
    totalUs,
    top,
  );
}
