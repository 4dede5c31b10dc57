import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/node.js';
import { killAllChildren, ROOT, startDevServer } from '../helpers/processes.js';

/**
 * The package as an application gets it: `npm pack` of this checkout (built by `npm test`),
 * installed from the tarball into an empty project, whose `rheos dev` (the installed command)
 * serves the README's example, run there with plain `node`; and a TypeScript file there that
 * type-checks against `rheos/client` with the strictest module settings.
 */

const EXAMPLE = join(ROOT, 'examples', 'quickstart.mjs');
const dirs: string[] = [];
const running = new Set<ChildProcess>();

afterAll(async () => {
  await killAllChildren();
  for (const child of running) child.kill('SIGKILL');
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end (killed after `timeoutMs`), without the test runner's npm settings. */
function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<Run> {
  // Under `npm test` the environment describes this package (npm_package_*, npm_lifecycle_*):
  // the commands below act for the consumer's project instead.
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^npm_(package|lifecycle)_/i.test(k) && k !== 'INIT_CWD',
    ),
  );
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...inherited, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

const npm = (args: readonly string[], cwd: string) =>
  run(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, cwd);

/** The fenced block after the README's "Using the client library" heading. */
function readmeExample(readme: string): string | undefined {
  const section = readme.split(/^## Using the client library$/m)[1];
  return section === undefined ? undefined : /^```js\n([\s\S]*?)^```$/m.exec(section)?.[1];
}

describe('the README example', () => {
  it('is examples/quickstart.mjs, word for word', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const block = readmeExample(readme);
    expect(block, 'README.md has no js block under "## Using the client library"').toBeDefined();
    expect(block).toBe(await readFile(EXAMPLE, 'utf8'));
  });
});

describe('the packed package, installed into an empty project', () => {
  let app = '';
  let packed: string[] = [];

  beforeAll(async () => {
    const entry = join(ROOT, 'dist', 'src', 'client', 'index.d.ts');
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build first`);
    const work = await tempDir('rheos-pack-');
    dirs.push(work);
    // npm test has just built dist/; prepack would build it again under the other test files.
    const pack = await npm(
      ['pack', '--ignore-scripts', '--json', '--pack-destination', work],
      ROOT,
    );
    expect(pack.code, pack.stderr).toBe(0);
    const [summary] = JSON.parse(pack.stdout) as [
      { filename: string; files: Array<{ path: string }> },
    ];
    packed = summary.files.map((f) => f.path);
    app = join(work, 'app');
    await mkdir(app);
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    // @types/node as this checkout has it, so it comes from the cache that `npm ci` filled.
    const typesNode = JSON.parse(
      await readFile(join(ROOT, 'node_modules', '@types', 'node', 'package.json'), 'utf8'),
    ) as { version: string };
    const install = await npm(
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        join(work, summary.filename),
        `@types/node@${typesNode.version}`,
      ],
      app,
    );
    expect(install.code, install.stderr).toBe(0);
  }, 240_000);

  it('ships the compiled library, its declarations and the command, and nothing else', () => {
    expect(packed).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'bin/rheos.js',
        'dist/src/index.js',
        'dist/src/index.d.ts',
        'dist/src/client/index.js',
        'dist/src/client/index.d.ts',
        'dist/src/cli/main.js',
      ]),
    );
    const unexpected = packed.filter(
      (p) =>
        !['package.json', 'README.md', 'LICENSE', 'bin/rheos.js'].includes(p) &&
        !/^dist\/src\/.+(?<!\.map)\.(js|d\.ts)$/.test(p),
    );
    expect(unexpected).toEqual([]);
  });

  it('runs the README example against the installed `rheos dev`', async () => {
    // A copy, not a link back to this checkout: what runs is what was packed.
    expect((await lstat(join(app, 'node_modules', 'rheos'))).isSymbolicLink()).toBe(false);
    const dataDir = await tempDir('rheos-pack-data-');
    dirs.push(dataDir);
    const server = await startDevServer(dataDir, [], join(app, 'node_modules', '.bin', 'rheos'));
    await copyFile(EXAMPLE, join(app, 'quickstart.mjs'));
    const example = await run(process.execPath, ['quickstart.mjs'], app, {
      RHEOS_ENDPOINT: server.endpoint,
    });
    expect(example.code, example.stderr).toBe(0);
    const lines = example.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^stored in shardId-\d{12} as \d+$/);
    expect(lines.slice(1)).toEqual([
      '100 of 100 orders stored',
      'read 101 records',
      `customer-2: ${Array.from({ length: 10 }, (_, i) => `order ${i * 10 + 2}`).join(', ')}`,
    ]);
    // Only the two entries are importable, not the modules behind them.
    const deep = await run(
      process.execPath,
      ['--input-type=module', '-e', "await import('rheos/dist/src/client/client.js')"],
      app,
    );
    expect(deep.code).not.toBe(0);
    expect(deep.stderr).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
  }, 120_000);

  it('gives TypeScript strict types through rheos/client and rheos', async () => {
    await writeFile(
      join(app, 'consumer.ts'),
      [
        'import {',
        '  createClient,',
        '  readLineage,',
        '  ProvisionedThroughputExceededError,',
        '  RheosError,',
        '  ShardIteratorType,',
        '  type PutRecordsRequestEntry,',
        '  type PutRecordResponse,',
        '  type RheosClient,',
        '  type StreamRecord,',
        "} from 'rheos/client';",
        "import { createClient as fromRoot } from 'rheos';",
        '',
        "const client: RheosClient = fromRoot({ endpoint: '127.0.0.1:7400' });",
        "const entry: PutRecordsRequestEntry = { partitionKey: 'k', data: Buffer.from('x') };",
        'export const put: Promise<PutRecordResponse> = client.putRecord({',
        "  streamName: 'orders',",
        '  ...entry,',
        '});',
        'export const iterator = client.getShardIterator({',
        "  streamName: 'orders',",
        "  shardId: 'shardId-000000000000',",
        '  shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,',
        '});',
        'export async function first(): Promise<StreamRecord | undefined> {',
        "  const from = { type: 'TRIM_HORIZON' } as const;",
        "  for await (const item of readLineage({ client, streamName: 'orders', from })) {",
        '    return item.record;',
        '  }',
        '  return undefined;',
        '}',
        'export const throttled = (e: unknown): boolean =>',
        '  e instanceof ProvisionedThroughputExceededError || (e instanceof RheosError && e.retriable);',
        'export const same: typeof createClient = fromRoot;',
        // Each of these would pass if the types were `any`: the check could not fail then.
        '// @ts-expect-error: not a field of PutRecordRequest',
        "client.putRecord({ streamName: 'orders', partitionKey: 'k', nope: 1 });",
        '// @ts-expect-error: string enums take their members only',
        "client.getShardIterator({ shardIteratorType: 'TRIM_HORIZON' });",
        '// @ts-expect-error: getRecords answers a GetRecordsResponse',
        "export const wrong: Promise<number> = client.getRecords({ shardIterator: '' });",
        '',
      ].join('\n'),
    );
    const tsc = await run(
      process.execPath,
      [
        join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--types',
        'node',
        'consumer.ts',
      ],
      app,
    );
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.code).toBe(0);
  }, 120_000);
});
