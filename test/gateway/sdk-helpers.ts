import {
  AccessDeniedException,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  ExpiredIteratorException,
  ExpiredNextTokenException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  InternalFailureException,
  InvalidArgumentException,
  KinesisClient,
  KinesisServiceException,
  LimitExceededException,
  ListShardsCommand,
  ProvisionedThroughputExceededException,
  ResourceInUseException,
  ResourceNotFoundException,
  ValidationException,
  type _Record,
  type CreateStreamCommandInput,
  type GetShardIteratorCommandInput,
  type KinesisClientConfig,
  type Shard,
  type StreamDescriptionSummary,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, afterEach, expect } from 'vitest';
import type { NodeConfig } from '../../src/server/node.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { MAX_HASH_KEY } from '../api/helpers.js';

/**
 * Helpers for driving the Kinesis-compatible gateway with the real AWS SDK for JavaScript v3.
 * Every suite runs once per request handler: the SDK's default (NodeHttp2Handler, cleartext
 * HTTP/2) and NodeHttpHandler (HTTP/1.1).
 */

export type HandlerKind = 'h2' | 'http1';

export const HANDLERS: ReadonlyArray<readonly [string, HandlerKind]> = [
  ['HTTP/2 (default)', 'h2'],
  ['HTTP/1.1', 'http1'],
];

/** An SDK client in its default configuration, or with the HTTP/1.1 handler. */
export function sdkClient(
  port: number,
  kind: HandlerKind,
  extra: Partial<KinesisClientConfig> = {},
): KinesisClient {
  return new KinesisClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    ...(kind === 'http1' ? { requestHandler: new NodeHttpHandler() } : {}),
    ...extra,
  });
}

export interface GatewayNode extends TestNode {
  /** The gateway's port. */
  readonly port: number;
  /** An SDK client with the suite's handler, default retry settings. */
  readonly sdk: KinesisClient;
  /** Another SDK client on the same handler, with `maxAttempts: 1` (for errors the SDK retries). */
  readonly once: KinesisClient;
  /** A further SDK client of this suite's handler kind, destroyed with the node. */
  newSdk(extra?: Partial<KinesisClientConfig>): KinesisClient;
}

/**
 * Starts nodes with the gateway on a free port, and stops them (after destroying their SDK
 * clients, so that no connection keeps the gateway's close waiting) after each test, or after all
 * tests of the enclosing describe block with `scope: 'all'`.
 */
export function useGateway(
  kind: HandlerKind,
  scope: 'each' | 'all' = 'each',
): { start(overrides?: Partial<NodeConfig>): Promise<GatewayNode> } {
  let live: Array<{ node: TestNode; clients: KinesisClient[] }> = [];
  const stopAll = async () => {
    const all = live;
    live = [];
    for (const { node, clients } of all) {
      for (const client of clients) client.destroy();
      await node.stop();
    }
  };
  if (scope === 'each') afterEach(stopAll);
  else afterAll(stopAll);
  return {
    async start(overrides = {}) {
      const node = await startTestNode({ httpPort: 0, ...overrides });
      const clients: KinesisClient[] = [];
      live.push({ node, clients });
      const port = node.node.httpPort;
      if (port === null) throw new Error('the node serves no gateway');
      const newSdk = (extra: Partial<KinesisClientConfig> = {}) => {
        const c = sdkClient(port, kind, extra);
        clients.push(c);
        return c;
      };
      return { ...node, port, sdk: newSdk(), once: newSdk({ maxAttempts: 1 }), newSdk };
    },
  };
}

/** Polls DescribeStreamSummary (bounded) until the stream is ACTIVE. */
export async function waitActive(
  sdk: KinesisClient,
  streamName: string,
): Promise<StreamDescriptionSummary> {
  for (let attempt = 0; attempt < 2000; attempt++) {
    const { StreamDescriptionSummary: s } = await sdk.send(
      new DescribeStreamSummaryCommand({ StreamName: streamName }),
    );
    if (s?.StreamStatus === 'ACTIVE') return s;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`stream ${streamName} did not become ACTIVE`);
}

/** CreateStream through the SDK, then waits until the stream is ACTIVE. */
export async function createActiveSdk(
  sdk: KinesisClient,
  streamName: string,
  /** null: no ShardCount (ON_DEMAND). */
  shardCount: number | null = 1,
  extra: Partial<CreateStreamCommandInput> = {},
): Promise<StreamDescriptionSummary> {
  await sdk.send(
    new CreateStreamCommand({
      StreamName: streamName,
      ...(shardCount === null ? {} : { ShardCount: shardCount }),
      ...extra,
    }),
  );
  return waitActive(sdk, streamName);
}

/** The SDK's modelled exception classes, by Kinesis error name. */
const SDK_ERROR_CLASSES: Record<string, new (...args: never[]) => KinesisServiceException> = {
  AccessDeniedException,
  ExpiredIteratorException,
  ExpiredNextTokenException,
  InternalFailureException,
  InvalidArgumentException,
  LimitExceededException,
  ProvisionedThroughputExceededException,
  ResourceInUseException,
  ResourceNotFoundException,
  ValidationException,
};

/** Error names the SDK's retry strategy treats as throttling (and retries). */
const THROTTLING = new Set(['ProvisionedThroughputExceededException', 'LimitExceededException']);

export interface SdkErrorView {
  readonly name: string;
  readonly message: string;
  readonly status: number | undefined;
  readonly fault: string;
  readonly error: KinesisServiceException;
}

/**
 * Awaits an SDK call that must fail with the named Kinesis error: an instance of the SDK's class
 * for that name where it has one (a KinesisServiceException with that name otherwise), HTTP
 * `status` (400 unless told), a client fault, and a message worth reading (matching `message` if
 * given).
 */
export async function expectSdkError(
  call: Promise<unknown>,
  name: string,
  message?: RegExp,
  status = 400,
): Promise<SdkErrorView> {
  const outcome = await call.then(
    (value: unknown) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) {
    expect.fail(`expected ${name}, but the call succeeded with ${JSON.stringify(outcome.value)}`);
  }
  const error = outcome.error as KinesisServiceException;
  expect(error, `${String(error)}`).toBeInstanceOf(KinesisServiceException);
  const view: SdkErrorView = {
    name: error.name,
    message: error.message,
    status: error.$metadata?.httpStatusCode,
    fault: error.$fault,
    error,
  };
  expect({
    name: view.name,
    status: view.status,
    fault: view.fault,
    message: view.message,
  }).toEqual({
    name,
    status,
    fault: status < 500 ? 'client' : 'server',
    message: expect.stringMatching(message ?? /\w{3,}/),
  });
  // Client errors other than throttling are final: the SDK does not retry them.
  if (status < 500 && !THROTTLING.has(name)) expect(error.$metadata.attempts).toBe(1);
  const modelled = SDK_ERROR_CLASSES[name];
  if (modelled !== undefined) expect(error).toBeInstanceOf(modelled);
  // A message that is only the error name tells the user nothing.
  expect(view.message.length).toBeGreaterThan(15);
  expect(error.$metadata.requestId).toMatch(/\w/);
  return view;
}

export async function sdkIterator(
  sdk: KinesisClient,
  input: GetShardIteratorCommandInput,
): Promise<string> {
  const { ShardIterator } = await sdk.send(new GetShardIteratorCommand(input));
  expect(ShardIterator).toMatch(/^\S+$/);
  return ShardIterator!;
}

/** Reads from `iterator` until a GetRecords call returns nothing. */
export async function sdkReadAll(
  sdk: KinesisClient,
  iterator: string,
  limit?: number,
): Promise<{ records: _Record[]; next: string }> {
  const records: _Record[] = [];
  let next = iterator;
  for (let calls = 0; calls < 1000; calls++) {
    const page = await sdk.send(
      new GetRecordsCommand({
        ShardIterator: next,
        ...(limit === undefined ? {} : { Limit: limit }),
      }),
    );
    expect(page.NextShardIterator).toBeTruthy();
    next = page.NextShardIterator!;
    if ((page.Records ?? []).length === 0) return { records, next };
    records.push(...page.Records!);
  }
  throw new Error('GetRecords never caught up');
}

/** Every record of a shard, from TRIM_HORIZON, as the SDK parses them. */
export async function sdkReadShard(
  sdk: KinesisClient,
  streamName: string,
  shardId: string,
): Promise<_Record[]> {
  const iterator = await sdkIterator(sdk, {
    StreamName: streamName,
    ShardId: shardId,
    ShardIteratorType: 'TRIM_HORIZON',
  });
  return (await sdkReadAll(sdk, iterator)).records;
}

export async function sdkShards(sdk: KinesisClient, streamName: string): Promise<Shard[]> {
  const { Shards, NextToken } = await sdk.send(new ListShardsCommand({ StreamName: streamName }));
  expect(NextToken).toBeUndefined();
  return Shards ?? [];
}

/** Asserts that SDK-parsed shards tile [0, 2^128-1] in order without gaps or overlaps. */
export function expectSdkContiguousRanges(shards: readonly Shard[]): void {
  let next = 0n;
  for (const shard of shards) {
    const start = BigInt(shard.HashKeyRange!.StartingHashKey!);
    const end = BigInt(shard.HashKeyRange!.EndingHashKey!);
    expect(start, `${shard.ShardId} starts where the previous shard ended`).toBe(next);
    expect(end >= start, `${shard.ShardId} range is not empty`).toBe(true);
    next = end + 1n;
  }
  expect(next - 1n).toBe(MAX_HASH_KEY);
}

export function text(record: _Record): string {
  return Buffer.from(record.Data!).toString('utf8');
}

export function sameBytes(actual: Uint8Array | undefined, expected: Uint8Array): boolean {
  return actual !== undefined && Buffer.compare(Buffer.from(actual), Buffer.from(expected)) === 0;
}
