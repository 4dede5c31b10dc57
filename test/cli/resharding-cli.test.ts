import { rm } from 'node:fs/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/node.js';
import { killAllChildren, runRheos, startDevServer } from '../helpers/processes.js';
import { parseTail } from '../helpers/tail-output.js';

/**
 * Resharding from the `rheos` command against `rheos dev`: `stream split`, `stream merge` and
 * `stream scale` between rounds of `rheos put` with several keys, then `rheos tail --from
 * trim-horizon --no-follow` prints every record exactly once, each key's records in the order
 * they were put, parents before children.
 */

const dirs: string[] = [];
afterEach(killAllChildren);
afterAll(async () => {
  await killAllChildren();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const KEYS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];

/** Open shards as `stream split|merge|scale` print them: id, first key, last key, parents. */
function openShards(stdout: string): Array<{ id: string; start: bigint; parents: string }> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('shardId-'))
    .map((l) => {
      const [id, start, , parents] = l.split('\t');
      return { id: id as string, start: BigInt(start as string), parents: parents as string };
    });
}

describe('rheos stream split|merge|scale and tail across generations', () => {
  it('reshards between puts; tail reads every record once, each key in order', async () => {
    const dataDir = await tempDir('rheos-cli-reshard-');
    dirs.push(dataDir);
    const server = await startDevServer(dataDir);
    const rheos = async (args: string[], input?: string) => {
      const result = await runRheos(['--endpoint', server.endpoint, ...args], input);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
      return result;
    };
    await rheos(['stream', 'create', 'orders', '--shards', '2', '--unlimited']);
    const sent = new Map<string, string[]>(KEYS.map((k) => [k, []]));
    let round = 0;
    const putRound = async () => {
      for (const key of KEYS) {
        const lines = Array.from({ length: 20 }, (_, i) => `${key} r${round} n${i}`);
        sent.get(key)?.push(...lines);
        await rheos(['put', 'orders', '--key', key], lines.join('\n') + '\n');
      }
      round++;
    };

    await putRound();
    const split = await rheos(['stream', 'split', 'orders', '--shard', 'shardId-000000000000']);
    let open = openShards(split.stdout);
    expect(open.map((s) => s.id)).toEqual([
      'shardId-000000000002',
      'shardId-000000000003',
      'shardId-000000000001',
    ]);
    expect(open[0]?.parents).toBe('shardId-000000000000');
    expect(split.stderr).toContain('ACTIVE with 3 open shards');
    await putRound();
    const merge = await rheos([
      'stream',
      'merge',
      'orders',
      '--shard',
      'shardId-000000000003',
      '--adjacent',
      'shardId-000000000001',
    ]);
    open = openShards(merge.stdout);
    expect(open.map((s) => s.id)).toEqual(['shardId-000000000002', 'shardId-000000000004']);
    expect(open[1]?.parents).toBe('shardId-000000000003,shardId-000000000001');
    await putRound();
    const scale = await rheos(['stream', 'scale', 'orders', '--count', '4']);
    open = openShards(scale.stdout);
    expect(open).toHaveLength(4);
    const width = (1n << 128n) / 4n;
    expect(open.map((s) => s.start)).toEqual([0n, width, 2n * width, 3n * width]);
    await putRound();

    const tail = await rheos(['tail', 'orders', '--from', 'trim-horizon', '--no-follow']);
    const records = parseTail(tail.stdout);
    const all = [...sent.values()].flat();
    expect(records).toHaveLength(all.length);
    expect(new Set(records.map((r) => r.data)).size).toBe(all.length);
    for (const key of KEYS) {
      expect(records.filter((r) => r.partitionKey === key).map((r) => r.data)).toEqual(
        sent.get(key),
      );
    }
    // Several generations were read.
    expect(new Set(records.map((r) => r.shardId)).size).toBeGreaterThan(4);

    // Bad requests get the server's error and a non-zero exit.
    const bad = await runRheos([
      '--endpoint',
      server.endpoint,
      'stream',
      'split',
      'orders',
      '--shard',
      'shardId-000000000000',
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/closed/);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 120_000);
});
