import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  MergeShardsCommand,
  PutRecordsCommand,
  SplitShardCommand,
  UpdateShardCountCommand,
  waitUntilStreamExists,
  type KinesisClient,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { sdkClient } from '../gateway/sdk-helpers.js';
import { tempDir } from '../helpers/node.js';
import { killAllChildren, startDevServer, waitDevReady } from '../helpers/processes.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Resharding as an AWS user sees it, against `rheos dev --brokers 3` (a coordinator and three
 * broker processes, RF 3): the real AWS SDK v3 (HTTP/2, its default) splits, merges and updates
 * the shard count while records are written, then reads every generation in lineage order
 * (parents to their null NextShardIterator, then the ChildShards); every record comes once, each
 * key in order. The AWS CLI (Debian's awscli) does the same operations.
 */

const run = promisify(execFile);
const dirs: string[] = [];
afterEach(killAllChildren);
afterAll(async () => {
  await killAllChildren();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const KEYS = Array.from({ length: 16 }, (_, i) => `user-${i}`);

async function waitActive(sdk: KinesisClient, name: string): Promise<void> {
  await waitUntil(
    `${name} to be ACTIVE`,
    async () => {
      const { StreamDescriptionSummary: s } = await sdk.send(
        new DescribeStreamSummaryCommand({ StreamName: name }),
      );
      return s?.StreamStatus === 'ACTIVE' ? true : undefined;
    },
    60_000,
  );
}

async function listAll(sdk: KinesisClient, name: string): Promise<Shard[]> {
  const shards: Shard[] = [];
  let token: string | undefined;
  for (let page = 0; page < 50; page++) {
    const answer = await sdk.send(
      new ListShardsCommand(token === undefined ? { StreamName: name } : { NextToken: token }),
    );
    shards.push(...(answer.Shards ?? []));
    token = answer.NextToken;
    if (token === undefined) return shards;
  }
  throw new Error('ListShards did not end');
}

/** Every record, each shard from TRIM_HORIZON, parents (to their end) before children. */
async function readLineage(sdk: KinesisClient, name: string): Promise<string[]> {
  const shards = await listAll(sdk, name);
  const listed = new Set(shards.map((s) => s.ShardId));
  const done = new Set<string>();
  const out: string[] = [];
  while (done.size < shards.length) {
    const ready = shards.filter(
      (s) =>
        !done.has(s.ShardId as string) &&
        [s.ParentShardId, s.AdjacentParentShardId].every(
          (p) => p === undefined || !listed.has(p) || done.has(p),
        ),
    );
    expect(ready.length).toBeGreaterThan(0);
    for (const shard of ready) {
      const closed = shard.SequenceNumberRange?.EndingSequenceNumber !== undefined;
      let { ShardIterator: iterator } = await sdk.send(
        new GetShardIteratorCommand({
          StreamName: name,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      );
      for (let call = 0; iterator !== undefined; call++) {
        expect(call).toBeLessThan(2_000);
        const page = await sdk.send(new GetRecordsCommand({ ShardIterator: iterator }));
        for (const r of page.Records ?? []) out.push(Buffer.from(r.Data ?? []).toString());
        if (page.NextShardIterator === undefined) {
          // The end of a closed shard names its children.
          expect(closed).toBe(true);
          expect(page.ChildShards?.length).toBeGreaterThan(0);
        }
        if ((page.Records ?? []).length === 0 && !closed) break;
        if ((page.Records ?? []).length === 0) await new Promise((r) => setTimeout(r, 20));
        iterator = page.NextShardIterator;
      }
      done.add(shard.ShardId as string);
    }
  }
  return out;
}

describe('resharding through the Kinesis HTTP API of rheos dev --brokers 3', () => {
  it('the AWS SDK and the AWS CLI split, merge and rescale; every generation reads back in order', async () => {
    const dataDir = await tempDir('rheos-dev-reshard-');
    dirs.push(dataDir);
    const server = await startDevServer(dataDir, ['--brokers', '3']);
    await waitDevReady(server);
    const port = Number(new URL(server.httpEndpoint).port);
    const sdk = sdkClient(port, 'h2');
    const name = 'reshard';
    await sdk.send(new CreateStreamCommand({ StreamName: name, ShardCount: 2 }));
    await waitUntilStreamExists({ client: sdk, maxWaitTime: 60 }, { StreamName: name });
    await waitActive(sdk, name);

    const sent: string[] = [];
    let n = 0;
    const putRound = async (count: number) => {
      const records = Array.from({ length: count }, () => {
        const value = `v-${n++}`;
        sent.push(value);
        return { PartitionKey: KEYS[n % KEYS.length], Data: Buffer.from(value) };
      });
      const answer = await sdk.send(new PutRecordsCommand({ StreamName: name, Records: records }));
      expect(answer.FailedRecordCount).toBe(0);
    };
    // Writes go on while each change is carried out.
    const during = async (change: () => Promise<unknown>) => {
      await putRound(50);
      await change();
      for (let i = 0; i < 5; i++) await putRound(20);
      await waitActive(sdk, name);
      await putRound(50);
    };
    const open = async () =>
      (await listAll(sdk, name))
        .filter((s) => s.SequenceNumberRange?.EndingSequenceNumber === undefined)
        .sort((a, b) =>
          BigInt(a.HashKeyRange?.StartingHashKey ?? 0) <
          BigInt(b.HashKeyRange?.StartingHashKey ?? 0)
            ? -1
            : 1,
        );

    await during(async () => {
      const [first] = await open();
      const start = BigInt(first?.HashKeyRange?.StartingHashKey ?? 0);
      const end = BigInt(first?.HashKeyRange?.EndingHashKey ?? 0);
      await sdk.send(
        new SplitShardCommand({
          StreamName: name,
          ShardToSplit: first?.ShardId,
          NewStartingHashKey: ((start + end + 1n) / 2n).toString(),
        }),
      );
    });
    expect(await open()).toHaveLength(3);
    await during(async () => {
      const [a, b] = await open();
      await sdk.send(
        new MergeShardsCommand({
          StreamName: name,
          ShardToMerge: a?.ShardId,
          AdjacentShardToMerge: b?.ShardId,
        }),
      );
    });
    expect(await open()).toHaveLength(2);
    await during(() =>
      sdk.send(
        new UpdateShardCountCommand({
          StreamName: name,
          TargetShardCount: 4,
          ScalingType: 'UNIFORM_SCALING',
        }),
      ),
    );
    expect(await open()).toHaveLength(4);

    // The AWS CLI, over HTTP/1.1, through the same gateway.
    const aws = async (...args: string[]) => {
      const { stdout } = await run(
        'aws',
        ['--endpoint-url', server.httpEndpoint, '--output', 'json', 'kinesis', ...args],
        {
          env: {
            ...process.env,
            AWS_ACCESS_KEY_ID: 'x',
            AWS_SECRET_ACCESS_KEY: 'y',
            AWS_DEFAULT_REGION: 'us-east-1',
            AWS_PAGER: '',
          },
          timeout: 60_000,
        },
      );
      return stdout.trim() === '' ? {} : (JSON.parse(stdout) as Record<string, unknown>);
    };
    await during(() =>
      aws(
        'update-shard-count',
        '--stream-name',
        name,
        '--target-shard-count',
        '2',
        '--scaling-type',
        'UNIFORM_SCALING',
      ),
    );
    expect(await open()).toHaveLength(2);
    await during(async () => {
      const [first] = await open();
      await aws(
        'split-shard',
        '--stream-name',
        name,
        '--shard-to-split',
        first?.ShardId ?? '',
        '--new-starting-hash-key',
        '12345678901234567890',
      );
    });
    await during(async () => {
      const [a, b] = await open();
      await aws(
        'merge-shards',
        '--stream-name',
        name,
        '--shard-to-merge',
        a?.ShardId ?? '',
        '--adjacent-shard-to-merge',
        b?.ShardId ?? '',
      );
    });
    expect(await open()).toHaveLength(2);
    const listed = (await aws('list-shards', '--stream-name', name)) as {
      Shards: Array<{ ShardId: string; ParentShardId?: string }>;
    };
    expect(listed.Shards.length).toBe((await listAll(sdk, name)).length);
    expect(listed.Shards.filter((s) => s.ParentShardId !== undefined).length).toBeGreaterThan(5);

    const read = await readLineage(sdk, name);
    expect([...read].sort()).toEqual([...sent].sort());
    // Per key, the order written (values carry the write order).
    const lastOf = new Map<string, number>();
    const keyOf = (value: string) => KEYS[(Number(value.slice(2)) + 1) % KEYS.length] as string;
    for (const value of read) {
      const key = keyOf(value);
      const at = Number(value.slice(2));
      expect(at).toBeGreaterThan(lastOf.get(key) ?? -1);
      lastOf.set(key, at);
    }
    sdk.destroy();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 240_000);
});
