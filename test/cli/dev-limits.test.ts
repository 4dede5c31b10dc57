import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ProvisionedThroughputExceededException,
  PutRecordsCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import { rm } from 'node:fs/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/client.js';
import { DEFAULT_SHARD_LIMITS } from '../../src/common/limits.js';
import { sdkClient } from '../gateway/sdk-helpers.js';
import { tempDir } from '../helpers/node.js';
import {
  waitDevReady,
  killAllChildren,
  runRheos,
  startDevServer,
  type DevServer,
} from '../helpers/processes.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * `rheos dev` enforces Kinesis' per-shard limits unless started with `--limits off`, which turns
 * enforcement off on the server for every stream, whichever API created it and whatever limits
 * it stores. Seen as an application sees it: the AWS SDK through the Kinesis HTTP API, with
 * `maxAttempts: 1` so that no throttle is hidden by the SDK's own retries. The loops are bounded
 * by calls, not time: 20 GetRecords calls a second against 5 allowed (a bucket of 5) run dry by
 * about the 7th call; 30 calls give room for a slow machine.
 */

const dirs: string[] = [];
const sdks: KinesisClient[] = [];
afterEach(async () => {
  for (const sdk of sdks.splice(0)) sdk.destroy();
  await killAllChildren();
});
afterAll(async () => {
  await killAllChildren();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const READ_CALLS = 30;
const WRITE_CALLS = 10;

async function start(args: readonly string[]): Promise<{ server: DevServer; sdk: KinesisClient }> {
  const dataDir = await tempDir('rheos-limits-');
  dirs.push(dataDir);
  const server = await startDevServer(dataDir, args);
  // With --brokers, the Kinesis HTTP API opens once the brokers are up, just before this line.
  await waitDevReady(server);
  const sdk = sdkClient(Number(new URL(server.httpEndpoint).port), 'h2', { maxAttempts: 1 });
  sdks.push(sdk);
  return { server, sdk };
}

async function waitActive(sdk: KinesisClient, name: string): Promise<void> {
  await waitUntil(`${name} ACTIVE`, async () => {
    const { StreamDescriptionSummary: s } = await sdk.send(
      new DescribeStreamSummaryCommand({ StreamName: name }),
    );
    return s?.StreamStatus === 'ACTIVE' ? true : undefined;
  });
}

/** One stream through the SDK (CreateStream) and one through the native API. */
async function createStreams(server: DevServer, sdk: KinesisClient): Promise<string[]> {
  await sdk.send(new CreateStreamCommand({ StreamName: 'via-sdk', ShardCount: 1 }));
  const native = createClient({ endpoint: server.endpoint });
  try {
    // Kinesis' limits asked for explicitly: `--limits off` must override even these.
    await native.createStream({
      streamName: 'via-native',
      shardCount: 1,
      shardLimits: DEFAULT_SHARD_LIMITS,
    });
  } finally {
    native.close();
  }
  for (const name of ['via-sdk', 'via-native']) await waitActive(sdk, name);
  return ['via-sdk', 'via-native'];
}

const isThrottle = (error: unknown) => error instanceof ProvisionedThroughputExceededException;

/** GetRecords on the stream's one shard every 50 ms: the call that was throttled, if any. */
async function readLoop(sdk: KinesisClient, stream: string): Promise<number | undefined> {
  const { ShardIterator } = await sdk.send(
    new GetShardIteratorCommand({
      StreamName: stream,
      ShardId: 'shardId-000000000000',
      ShardIteratorType: 'TRIM_HORIZON',
    }),
  );
  let iterator = ShardIterator;
  for (let call = 1; call <= READ_CALLS; call++) {
    try {
      iterator = (await sdk.send(new GetRecordsCommand({ ShardIterator: iterator })))
        .NextShardIterator;
    } catch (error) {
      if (isThrottle(error)) return call;
      throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return undefined;
}

/** PutRecords of 500 records, back to back: the call with the first throttled record, if any. */
async function writeLoop(sdk: KinesisClient, stream: string): Promise<number | undefined> {
  const records = Array.from({ length: 500 }, (_, i) => ({
    PartitionKey: `k${i}`,
    Data: Buffer.from(`record ${i}`),
  }));
  for (let call = 1; call <= WRITE_CALLS; call++) {
    const response = await sdk.send(
      new PutRecordsCommand({ StreamName: stream, Records: records }),
    );
    if ((response.FailedRecordCount ?? 0) > 0) {
      const codes = new Set(response.Records?.map((r) => r.ErrorCode).filter((c) => c));
      expect([...codes]).toEqual(['ProvisionedThroughputExceededException']);
      return call;
    }
  }
  return undefined;
}

describe('rheos dev --limits', () => {
  it("enforces Kinesis' limits by default, on streams created through either API", async () => {
    const { server, sdk } = await start([]);
    for (const stream of await createStreams(server, sdk)) {
      const read = await readLoop(sdk, stream);
      expect(read, `${stream}: GetRecords every 50 ms was never throttled`).toBeDefined();
      // The bucket holds 5 calls: the first ones pass.
      expect(read).toBeGreaterThan(5);
      // 1,000 records a second in a bucket of 1,000: the third 500 cannot all fit.
      const write = await writeLoop(sdk, stream);
      expect(write, `${stream}: 5,000 records were never throttled`).toBeDefined();
      expect(write).toBeGreaterThanOrEqual(2);
    }
  });

  it('--limits off throttles nothing, whichever API created the stream and with what limits', async () => {
    const { server, sdk } = await start(['--limits', 'off']);
    expect(server.output()).toContain('"limits":"off"');
    for (const stream of await createStreams(server, sdk)) {
      expect(await readLoop(sdk, stream), stream).toBeUndefined();
      expect(await writeLoop(sdk, stream), stream).toBeUndefined();
    }
  });

  it('--brokers N passes the setting to every broker (aws by default, off on request)', async () => {
    for (const [args, throttled] of [
      [[], true],
      [['--limits', 'off'], false],
    ] as const) {
      const { server, sdk } = await start(['--brokers', '1', ...args]);
      await sdk.send(new CreateStreamCommand({ StreamName: 'orders', ShardCount: 1 }));
      await waitActive(sdk, 'orders');
      const read = await readLoop(sdk, 'orders');
      expect(read !== undefined, `throttled with ${args.join(' ') || 'the defaults'}`).toBe(
        throttled,
      );
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
  });

  it('refuses any other value', async () => {
    const dataDir = await tempDir('rheos-limits-');
    dirs.push(dataDir);
    // Free ports all round, should it start after all: then it times out and fails.
    const ports = ['--grpc-port', '0', '--http-port', '0', '--admin-port', '0'];
    const result = await runRheos(
      ['dev', '--limits', 'none', '--data-dir', dataDir, ...ports],
      undefined,
      15_000,
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('must be one of aws, off');
  });
});
