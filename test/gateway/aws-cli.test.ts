import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardIteratorType } from '../../src/gen/rheos/v1/data.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

/**
 * The AWS CLI (Debian's awscli package, which .ci/run installs) against the Kinesis gateway of a
 * running node: the commands a Kinesis user types first, and resharding.
 */

const AWS = '/usr/bin/aws';
const run = promisify(execFile);

let t: TestNode;
let home: string;

beforeAll(async () => {
  if (!existsSync(AWS)) {
    throw new Error(
      `${AWS} is missing: install Debian's awscli package (apt-get install awscli), as .ci/run does`,
    );
  }
  t = await startTestNode({ httpPort: 0 });
  // An empty HOME: no user configuration or credentials files leak into the test.
  home = await mkdtemp(join(tmpdir(), 'rheos-awscli-'));
});

afterAll(async () => {
  await t?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

async function aws(...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(
    AWS,
    [
      '--endpoint-url',
      `http://127.0.0.1:${t.node.httpPort}`,
      '--output',
      'json',
      'kinesis',
      ...args,
    ],
    {
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HOME: home,
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'secret',
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_PAGER: '',
        AWS_MAX_ATTEMPTS: '1',
      },
      timeout: 60_000,
    },
  );
  return stdout.trim() === '' ? {} : (JSON.parse(stdout) as Record<string, unknown>);
}

describe('AWS CLI against the Kinesis gateway', () => {
  it('create-stream, describe-stream-summary, list-shards, put-record, get-shard-iterator, get-records', async () => {
    await aws('create-stream', '--stream-name', 'cli-stream', '--shard-count', '2');
    let status = '';
    for (let i = 0; i < 100 && status !== 'ACTIVE'; i++) {
      const summary = await aws('describe-stream-summary', '--stream-name', 'cli-stream');
      status = (summary['StreamDescriptionSummary'] as { StreamStatus: string }).StreamStatus;
    }
    expect(status).toBe('ACTIVE');
    const summary = (await aws('describe-stream-summary', '--stream-name', 'cli-stream'))[
      'StreamDescriptionSummary'
    ] as Record<string, unknown>;
    expect(summary).toMatchObject({
      StreamName: 'cli-stream',
      StreamARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/cli-stream',
      OpenShardCount: 2,
      RetentionPeriodHours: 24,
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
    });

    const shards = (await aws('list-shards', '--stream-name', 'cli-stream'))['Shards'] as Array<{
      ShardId: string;
    }>;
    expect(shards.map((s) => s.ShardId)).toEqual(['shardId-000000000000', 'shardId-000000000001']);

    const put = await aws(
      'put-record',
      '--stream-name',
      'cli-stream',
      '--partition-key',
      'user-1',
      '--data',
      'hello from the aws cli',
      '--cli-binary-format',
      'raw-in-base64-out',
    );
    expect(put['ShardId']).toMatch(/^shardId-00000000000[01]$/);
    expect(put['SequenceNumber']).toMatch(/^\d+$/);

    const iterator = await aws(
      'get-shard-iterator',
      '--stream-name',
      'cli-stream',
      '--shard-id',
      put['ShardId'] as string,
      '--shard-iterator-type',
      'AT_SEQUENCE_NUMBER',
      '--starting-sequence-number',
      put['SequenceNumber'] as string,
    );
    const got = await aws('get-records', '--shard-iterator', iterator['ShardIterator'] as string);
    const records = got['Records'] as Array<{
      Data: string;
      PartitionKey: string;
      SequenceNumber: string;
    }>;
    expect(records).toHaveLength(1);
    // The CLI prints blobs as base64.
    expect(Buffer.from(records[0]!.Data, 'base64').toString('utf8')).toBe('hello from the aws cli');
    expect(records[0]).toMatchObject({
      PartitionKey: 'user-1',
      SequenceNumber: put['SequenceNumber'],
    });
    expect(got['MillisBehindLatest']).toBe(0);
    expect(typeof got['NextShardIterator']).toBe('string');

    // What the CLI wrote, the native API reads, with the same sequence number.
    const { shardIterator } = await t.client.getShardIterator({
      streamName: 'cli-stream',
      shardId: put['ShardId'] as string,
      shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    });
    const native = await t.client.getRecords({ shardIterator });
    expect(native.records.map((r) => [r.sequenceNumber, r.data.toString('utf8')])).toEqual([
      [put['SequenceNumber'], 'hello from the aws cli'],
    ]);
  });

  it('split-shard, merge-shards, update-shard-count, then list-shards and get-records show the lineage', async () => {
    const name = 'cli-reshard';
    const waitActive = async () => {
      for (let i = 0; i < 100; i++) {
        const summary = (await aws('describe-stream-summary', '--stream-name', name))[
          'StreamDescriptionSummary'
        ] as { StreamStatus: string; OpenShardCount: number };
        if (summary.StreamStatus === 'ACTIVE') return summary.OpenShardCount;
      }
      throw new Error(`${name} did not become ACTIVE`);
    };
    const id = (n: number) => `shardId-${String(n).padStart(12, '0')}`;
    const quarter = (2n ** 128n / 4n).toString();
    await aws('create-stream', '--stream-name', name, '--shard-count', '2');
    expect(await waitActive()).toBe(2);
    const put = await aws(
      'put-record',
      '--stream-name',
      name,
      '--partition-key',
      'k',
      '--explicit-hash-key',
      '0',
      '--data',
      'before the split',
      '--cli-binary-format',
      'raw-in-base64-out',
    );
    expect(put['ShardId']).toBe(id(0));

    // Shard 0 = [0, 2^127) splits at 2^126 into 2 and 3; 3 merges with 1 into 4.
    expect(
      await aws(
        'split-shard',
        '--stream-name',
        name,
        '--shard-to-split',
        id(0),
        '--new-starting-hash-key',
        quarter,
      ),
    ).toEqual({});
    expect(await waitActive()).toBe(3);
    expect(
      await aws(
        'merge-shards',
        '--stream-name',
        name,
        '--shard-to-merge',
        id(3),
        '--adjacent-shard-to-merge',
        id(1),
      ),
    ).toEqual({});
    expect(await waitActive()).toBe(2);
    const scaled = await aws(
      'update-shard-count',
      '--stream-name',
      name,
      '--target-shard-count',
      '4',
      '--scaling-type',
      'UNIFORM_SCALING',
    );
    expect(scaled).toEqual({
      StreamName: name,
      StreamARN: `arn:aws:kinesis:us-east-1:000000000000:stream/${name}`,
      CurrentShardCount: 2,
      TargetShardCount: 4,
    });
    expect(await waitActive()).toBe(4);

    interface CliShard {
      ShardId: string;
      ParentShardId?: string;
      AdjacentParentShardId?: string;
      HashKeyRange: { StartingHashKey: string; EndingHashKey: string };
      SequenceNumberRange: { StartingSequenceNumber: string; EndingSequenceNumber?: string };
    }
    const shards = (await aws('list-shards', '--stream-name', name))['Shards'] as CliShard[];
    const byId = new Map(shards.map((s) => [s.ShardId, s]));
    expect(byId.get(id(0))?.ParentShardId).toBeUndefined();
    expect(byId.get(id(2))).toMatchObject({
      ParentShardId: id(0),
      HashKeyRange: { StartingHashKey: '0', EndingHashKey: (BigInt(quarter) - 1n).toString() },
    });
    expect(byId.get(id(3))).toMatchObject({ ParentShardId: id(0) });
    expect(byId.get(id(4))).toMatchObject({
      ParentShardId: id(3),
      AdjacentParentShardId: id(1),
      HashKeyRange: { StartingHashKey: quarter, EndingHashKey: (2n ** 128n - 1n).toString() },
    });
    // Closed shards carry an EndingSequenceNumber; the open ones are the four of the target.
    const open = shards.filter((s) => s.SequenceNumberRange.EndingSequenceNumber === undefined);
    expect(open).toHaveLength(4);
    for (const closed of shards.filter((s) => !open.includes(s))) {
      expect(closed.SequenceNumberRange.EndingSequenceNumber).toMatch(/^\d+$/);
    }
    const latest = (
      await aws('list-shards', '--stream-name', name, '--shard-filter', 'Type=AT_LATEST')
    )['Shards'] as CliShard[];
    expect(latest.map((s) => s.ShardId).sort()).toEqual(open.map((s) => s.ShardId).sort());

    // The closed parent reads to its end: its record, then no NextShardIterator and ChildShards.
    let iterator = (
      await aws(
        'get-shard-iterator',
        '--stream-name',
        name,
        '--shard-id',
        id(0),
        '--shard-iterator-type',
        'TRIM_HORIZON',
      )
    )['ShardIterator'] as string;
    const texts: string[] = [];
    let last: Record<string, unknown> = {};
    for (let call = 0; call < 20; call++) {
      last = await aws('get-records', '--shard-iterator', iterator);
      for (const r of last['Records'] as Array<{ Data: string }>) {
        texts.push(Buffer.from(r.Data, 'base64').toString('utf8'));
      }
      if (!('NextShardIterator' in last)) break;
      iterator = last['NextShardIterator'] as string;
    }
    expect(texts).toEqual(['before the split']);
    expect(last).not.toHaveProperty('NextShardIterator');
    expect(last['ChildShards']).toEqual([
      {
        ShardId: id(2),
        ParentShards: [id(0)],
        HashKeyRange: byId.get(id(2))?.HashKeyRange,
      },
      {
        ShardId: id(3),
        ParentShards: [id(0)],
        HashKeyRange: byId.get(id(3))?.HashKeyRange,
      },
    ]);
  });

  it('reports Kinesis errors with their names and a non-zero exit', async () => {
    const failure = await aws('describe-stream-summary', '--stream-name', 'missing-stream').then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(failure?.code).not.toBe(0);
    expect(failure?.stderr).toContain('ResourceNotFoundException');
    expect(failure?.stderr).toContain('missing-stream');
  });
});
