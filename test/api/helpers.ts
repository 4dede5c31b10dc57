import { createHash } from 'node:crypto';
import { afterEach, expect } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import { RheosError, type KinesisErrorName } from '../../src/common/errors.js';
import type { ShardThroughputLimits } from '../../src/common/limits.js';
import {
  ShardIteratorType,
  type GetRecordsResponse,
  type GetShardIteratorRequest,
} from '../../src/gen/rheos/v1/data.js';
import type { Record as StreamRecord, Shard } from '../../src/gen/rheos/v1/stream.js';
import type { NodeConfig } from '../../src/server/node.js';
import type { KvOp, KvRange, KvStore, KvWriteOptions } from '../../src/storage/kv-store.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

/**
 * Shared helpers for the API end-to-end tests. Expected values here are computed independently
 * of the server code (hash keys with node:crypto, the hash space from its definition), so a test
 * cannot pass because the server and the test share a bug.
 */

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const HOUR_MS = 60 * 60 * 1000;
/** The top of the Kinesis hash-key space, 2^128 - 1. */
export const MAX_HASH_KEY = 340282366920938463463374607431768211455n;
export const ACCOUNT = '000000000000';
export const REGION = 'us-east-1';
export const SEQUENCE_NUMBER = /^[1-9]\d{37}$/;

export const UNLIMITED: ShardThroughputLimits = {
  writeBytesPerSecond: 0,
  writeRecordsPerSecond: 0,
  readCallsPerSecond: 0,
  readBytesPerSecond: 0,
};

export const It = ShardIteratorType;

export function arnOf(streamName: string): string {
  return `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${streamName}`;
}

export function shardId(ordinal: number): string {
  return `shardId-${String(ordinal).padStart(12, '0')}`;
}

/** MD5 of the UTF-8 partition key as an unsigned 128-bit integer. */
export function md5HashKey(partitionKey: string): bigint {
  return BigInt('0x' + createHash('md5').update(Buffer.from(partitionKey, 'utf8')).digest('hex'));
}

/** The shard whose inclusive hash-key range holds `hashKey`. */
export function shardOwning(shards: readonly Shard[], hashKey: bigint): Shard {
  const owners = shards.filter(
    (s) =>
      BigInt(s.hashKeyRange!.startingHashKey) <= hashKey &&
      hashKey <= BigInt(s.hashKeyRange!.endingHashKey),
  );
  expect(owners, `exactly one shard owns ${hashKey}`).toHaveLength(1);
  return owners[0]!;
}

/** Asserts that the ranges tile [0, 2^128-1] in shard order without gaps or overlaps. */
export function expectContiguousRanges(shards: readonly Shard[]): void {
  let next = 0n;
  for (const shard of shards) {
    const start = BigInt(shard.hashKeyRange!.startingHashKey);
    const end = BigInt(shard.hashKeyRange!.endingHashKey);
    expect(start, `${shard.shardId} starts where the previous shard ended`).toBe(next);
    expect(end >= start, `${shard.shardId} range is not empty`).toBe(true);
    next = end + 1n;
  }
  expect(next - 1n).toBe(MAX_HASH_KEY);
}

/** Starts nodes for a test and stops every one of them after it (also after a restart). */
export function useNodes(): {
  start(overrides?: Partial<NodeConfig>): Promise<TestNode>;
  restart(node: TestNode, overrides?: Partial<NodeConfig>): Promise<TestNode>;
} {
  let live: TestNode[] = [];
  afterEach(async () => {
    const nodes = live;
    live = [];
    for (const node of nodes) await node.stop();
  });
  return {
    async start(overrides = {}) {
      const node = await startTestNode(overrides);
      live.push(node);
      return node;
    },
    async restart(node, overrides = {}) {
      const index = live.indexOf(node);
      if (index >= 0) live.splice(index, 1);
      const next = await node.restart(overrides);
      live.push(next);
      return next;
    },
  };
}

/**
 * Awaits a call that must fail with the named Kinesis error and a message worth reading
 * (matching `message` if given). Returns the error for further checks.
 */
export async function expectError(
  call: Promise<unknown>,
  name: KinesisErrorName,
  message?: RegExp,
): Promise<RheosError> {
  const outcome = await call.then(
    (value: unknown) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) {
    expect.fail(`expected ${name}, but the call succeeded with ${JSON.stringify(outcome.value)}`);
  }
  const error = outcome.error;
  expect(error).toBeInstanceOf(RheosError);
  const rheos = error as RheosError;
  expect({ name: rheos.name, message: rheos.message }).toMatchObject({
    name,
    message: expect.stringMatching(message ?? /\w{3,}/),
  });
  // A message that is only the error name tells the user nothing.
  expect(rheos.message.length).toBeGreaterThan(15);
  return rheos;
}

export async function createActive(
  client: RheosClient,
  streamName: string,
  shardCount = 1,
  extra: { shardLimits?: ShardThroughputLimits; tags?: Record<string, string> } = {},
): Promise<void> {
  await client.createStream({ streamName, shardCount, ...extra });
  await client.waitForStreamActive(streamName, 30_000, 5);
}

/** Polls until the stream is gone from metadata (DeleteStream finishes asynchronously). */
export async function waitForStreamGone(client: RheosClient, streamName: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await client.describeStreamSummary({ streamName });
    } catch (error) {
      if (error instanceof RheosError && error.name === 'ResourceNotFoundException') return;
      throw error;
    }
    if (Date.now() > deadline) throw new Error(`stream ${streamName} still exists`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export async function listAllShards(client: RheosClient, streamName: string): Promise<Shard[]> {
  const { shards, nextToken } = await client.listShards({ streamName });
  expect(nextToken).toBe('');
  return shards;
}

export async function iteratorFor(
  client: RheosClient,
  streamName: string,
  shard: string,
  type: ShardIteratorType,
  extra: Partial<Pick<GetShardIteratorRequest, 'startingSequenceNumber' | 'timestampMs'>> = {},
): Promise<string> {
  const { shardIterator } = await client.getShardIterator({
    streamName,
    shardId: shard,
    shardIteratorType: type,
    ...extra,
  });
  expect(shardIterator).not.toBe('');
  return shardIterator;
}

export interface ReadAll {
  readonly records: StreamRecord[];
  /** The iterator to continue from once caught up. */
  readonly next: string;
  readonly calls: number;
}

/** Reads from `iterator` until a GetRecords call returns nothing. */
export async function readAll(
  client: RheosClient,
  iterator: string,
  limit?: number,
): Promise<ReadAll> {
  const records: StreamRecord[] = [];
  let next = iterator;
  for (let calls = 1; ; calls++) {
    const response: GetRecordsResponse = await client.getRecords({
      shardIterator: next,
      ...(limit === undefined ? {} : { limit }),
    });
    expect(response.nextShardIterator).not.toBe('');
    next = response.nextShardIterator;
    if (response.records.length === 0) return { records, next, calls };
    records.push(...response.records);
  }
}

/** Everything stored in one shard, from TRIM_HORIZON. */
export async function readShard(
  client: RheosClient,
  streamName: string,
  shard: string,
): Promise<StreamRecord[]> {
  const iterator = await iteratorFor(
    client,
    streamName,
    shard,
    It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
  );
  return (await readAll(client, iterator)).records;
}

export function bigintsIncreasing(values: readonly string[]): boolean {
  for (let i = 1; i < values.length; i++) {
    if (!(BigInt(values[i - 1]!) < BigInt(values[i]!))) return false;
  }
  return true;
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function pseudoRandomBytes(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * Wraps the node's store so that shard replicas cannot finish opening while the gate is held:
 * the broker's first read of a shard's state waits. Streams then stay CREATING, deterministically.
 */
export class ShardOpenGate {
  private held: Promise<void> | undefined;
  private releaseHeld: (() => void) | undefined;

  hold(): void {
    this.held = new Promise((resolve) => (this.releaseHeld = resolve));
  }

  release(): void {
    this.releaseHeld?.();
    this.held = undefined;
    this.releaseHeld = undefined;
  }

  readonly wrap = (kv: KvStore): KvStore => {
    const shardStateSpace = 'S'.charCodeAt(0);
    return {
      write: (ops: readonly KvOp[], options: KvWriteOptions) => kv.write(ops, options),
      get: async (key: Buffer) => {
        if (key[0] === shardStateSpace && this.held !== undefined) await this.held;
        return kv.get(key);
      },
      entries: (range: KvRange) => kv.entries(range),
      keys: (range: KvRange) => kv.keys(range),
      iterate: (range: KvRange) => kv.iterate(range),
      clear: (range: KvRange) => kv.clear(range),
      compact: (start: Buffer, end: Buffer) => kv.compact(start, end),
      close: () => kv.close(),
    };
  };
}
