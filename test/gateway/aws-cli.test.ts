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
 * running node: the commands a Kinesis user types first.
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
