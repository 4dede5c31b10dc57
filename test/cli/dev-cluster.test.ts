import {
  CreateStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  PutRecordCommand,
  waitUntilStreamExists,
} from '@aws-sdk/client-kinesis';
import { rm } from 'node:fs/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/node.js';
import {
  killAllChildren,
  runRheos,
  startDevServer,
  type DevServer,
  waitDevReady,
} from '../helpers/processes.js';
import { parseTail, type TailLine } from '../helpers/tail-output.js';
import { waitUntil } from '../helpers/wait.js';
import { sdkClient } from '../gateway/sdk-helpers.js';

/**
 * The acceptance scenario for clusters: a new user starts `rheos dev --brokers 3` (a
 * coordinator and three broker processes on 127.0.0.2-4), creates a stream with the CLI, puts
 * and tails records across the three brokers, kills one broker process with kill -9, and loses
 * no record; `rheos admin cluster` shows the brokers, their replicas and leaders throughout, and
 * the AWS SDK works through the Kinesis HTTP API of `rheos dev`.
 */

const dirs: string[] = [];
afterEach(killAllChildren);
afterAll(async () => {
  await killAllChildren();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Broker rows of `rheos admin cluster`: id -> [state, replicas, leaders]. */
function brokerRows(
  stdout: string,
): Map<number, { state: string; replicas: number; leaders: number }> {
  const rows = new Map<number, { state: string; replicas: number; leaders: number }>();
  for (const line of stdout.split('\n')) {
    const m = /^(\d+)\s+\S+\s+(up|down)\s+\S+\s+(\d+)\s+(\d+)\s/.exec(line);
    if (m !== null) {
      rows.set(Number(m[1]), {
        state: m[2] as string,
        replicas: Number(m[3]),
        leaders: Number(m[4]),
      });
    }
  }
  return rows;
}

describe('rheos dev --brokers 3', () => {
  it('creates, puts and tails across 3 brokers, and loses nothing when one is killed', async () => {
    const dataDir = await tempDir('rheos-dev-cluster-');
    dirs.push(dataDir);
    const server: DevServer = await startDevServer(dataDir, ['--brokers', '3']);
    const pids = Object.values(await waitDevReady(server));
    expect(pids).toHaveLength(3);
    const rheos = (args: string[], input?: string) =>
      runRheos(['--endpoint', server.endpoint, ...args], input);

    const created = await rheos(['stream', 'create', 'orders', '--shards', '3', '--unlimited']);
    expect(created.code, created.stderr).toBe(0);

    // Every broker holds a replica of every shard (replication factor 3) and leads one.
    const placed = await waitUntil(
      'one leader per broker',
      async () => {
        const out = await rheos(['admin', 'cluster']);
        expect(out.code, out.stderr).toBe(0);
        const rows = brokerRows(out.stdout);
        const ok = rows.size === 3 && [...rows.values()].every((r) => r.leaders === 1);
        return ok ? out.stdout : undefined;
      },
      30_000,
      250,
    );
    for (const row of brokerRows(placed).values())
      expect(row).toEqual({ state: 'up', replicas: 3, leaders: 1 });

    // Records for each of the three shards (hash keys at the start of each third of the space).
    const third = 2n ** 128n / 3n;
    const hashKeys = [0n, third + 1n, 2n * third + 1n].map(String);
    const put = async (round: string, count: number) => {
      for (const [s, hashKey] of hashKeys.entries()) {
        const lines = Array.from({ length: count }, (_, i) => `${round}-s${s}-${i}`);
        const out = await rheos(
          ['put', 'orders', '--key', `k${s}`, '--explicit-hash-key', hashKey],
          lines.join('\n') + '\n',
        );
        expect(out.code, out.stderr).toBe(0);
      }
    };
    const tailAll = async () => {
      const out = await rheos(['tail', 'orders', '--from', 'trim-horizon', '--no-follow']);
      expect(out.code, out.stderr).toBe(0);
      return parseTail(out.stdout);
    };
    const expectInOrder = (records: TailLine[], expected: readonly string[][]) => {
      const byShard = new Map<string, TailLine[]>();
      for (const r of records) byShard.set(r.shardId, [...(byShard.get(r.shardId) ?? []), r]);
      expect(byShard.size).toBe(3);
      const shards = [...byShard.keys()].sort();
      shards.forEach((shardId, s) => {
        const mine = byShard.get(shardId) as TailLine[];
        expect(mine.map((r) => r.data)).toEqual(expected[s]);
        for (let i = 1; i < mine.length; i++) {
          expect(BigInt(mine[i]!.sequenceNumber) > BigInt(mine[i - 1]!.sequenceNumber)).toBe(true);
        }
      });
    };
    const expected = (rounds: ReadonlyArray<readonly [string, number]>) =>
      [0, 1, 2].map((s) =>
        rounds.flatMap(([round, n]) => Array.from({ length: n }, (_, i) => `${round}-s${s}-${i}`)),
      );

    await put('a', 1_000);
    expectInOrder(await tailAll(), expected([['a', 1_000]]));

    // The AWS SDK, unchanged, through the Kinesis HTTP API of rheos dev (which routes to leaders).
    const sdk = sdkClient(Number(new URL(server.httpEndpoint).port), 'h2');
    try {
      const { ShardId, SequenceNumber } = await sdk
        .send(
          new PutRecordCommand({
            StreamName: 'sdk',
            PartitionKey: 'p',
            Data: Buffer.from('via sdk'),
          }),
        )
        .catch(async (error: unknown) => {
          // The stream does not exist yet: the SDK sees Kinesis' own error, then creates it.
          expect((error as Error).name).toBe('ResourceNotFoundException');
          await sdk.send(new CreateStreamCommand({ StreamName: 'sdk', ShardCount: 2 }));
          await waitUntilStreamExists({ client: sdk, maxWaitTime: 30 }, { StreamName: 'sdk' });
          return sdk.send(
            new PutRecordCommand({
              StreamName: 'sdk',
              PartitionKey: 'p',
              Data: Buffer.from('via sdk'),
            }),
          );
        });
      const { ShardIterator } = await sdk.send(
        new GetShardIteratorCommand({
          StreamName: 'sdk',
          ShardId,
          ShardIteratorType: 'AT_SEQUENCE_NUMBER',
          StartingSequenceNumber: SequenceNumber,
        }),
      );
      const { Records } = await sdk.send(new GetRecordsCommand({ ShardIterator }));
      expect(Records?.map((r) => Buffer.from(r.Data ?? []).toString())).toEqual(['via sdk']);
    } finally {
      sdk.destroy();
    }

    // kill -9 one broker: the shard it led elects a new leader; nothing acknowledged is lost.
    const victim = pids[0] as number;
    process.kill(victim, 'SIGKILL');
    await waitUntil('the broker to exit', async () => (isAlive(victim) ? undefined : true));
    await put('b', 300);
    expectInOrder(
      await tailAll(),
      expected([
        ['a', 1_000],
        ['b', 300],
      ]),
    );
    const after = await waitUntil(
      'the broker marked down, and the survivors leading every shard',
      async () => {
        const out = await rheos(['admin', 'cluster']);
        const up = [...brokerRows(out.stdout).values()].filter((r) => r.state === 'up');
        // 3 shards of orders and 2 of the SDK's stream.
        const led = up.reduce((n, r) => n + r.leaders, 0);
        return up.length === 2 && led === 5 ? out.stdout : undefined;
      },
      30_000,
      250,
    );
    expect([...brokerRows(after).values()].filter((r) => r.state === 'down')).toHaveLength(1);

    // A clean stop takes the brokers with it.
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    for (const pid of pids)
      await waitUntil(
        `broker ${pid} to exit`,
        async () => (isAlive(pid) ? undefined : true),
        15_000,
      );
  }, 180_000);
});
