import { createHash } from 'node:crypto';
import { MAX_BROKER_ID } from '../common/replica-id.js';
import { InvalidArgumentError } from '../common/errors.js';
import {
  DEFAULT_SHARD_LIMITS,
  RETENTION_DEFAULT_HOURS,
  RETENTION_MAX_HOURS,
  RETENTION_MIN_HOURS,
  STREAM_NAME_MAX_LENGTH,
  STREAM_NAME_PATTERN,
  type ShardThroughputLimits,
} from '../common/limits.js';

/**
 * A cluster with static placement (until the coordinator places replicas): the brokers, and the
 * streams with the brokers that hold each shard's replicas. Every broker reads the same file, so
 * every broker derives the same stream metadata and the same iterator-signing key.
 *
 *   {
 *     "clusterId": "prod-eu",
 *     "iteratorSecret": "<base64, at least 32 bytes>",
 *     "brokers": [{ "id": 1, "api": "10.0.0.1:7400", "peer": "10.0.0.1:7401" }, ...],
 *     "streams": [{ "name": "orders", "shardCount": 4, "replicationFactor": 3,
 *                   "placement": [[1, 2, 3], [2, 3, 1], ...] }]
 *   }
 *
 * `placement` is optional (replicas are then spread round-robin); its first broker of each shard is
 * only a hint for the first election.
 */

export interface BrokerAddress {
  readonly id: number;
  /** host:port of the native gRPC API (clients). */
  readonly api: string;
  /** host:port of the peer service (other brokers). */
  readonly peer: string;
}

export interface StaticStream {
  readonly name: string;
  readonly shardCount: number;
  readonly replicationFactor: number;
  readonly retentionHours: number;
  readonly shardLimits: ShardThroughputLimits;
  /** Per shard, in shard order: the brokers holding its replicas. */
  readonly placement: readonly (readonly number[])[];
}

export interface ClusterConfig {
  readonly clusterId: string;
  readonly iteratorSecret: Buffer;
  readonly brokers: readonly BrokerAddress[];
  readonly streams: readonly StaticStream[];
}

const ENDPOINT_PATTERN = /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/;

export class ClusterConfigError extends InvalidArgumentError {}

function fail(message: string): never {
  throw new ClusterConfigError(`cluster config: ${message}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function positiveInt(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
    fail(`${what} must be a positive integer`);
  return value;
}

function brokerId(value: unknown, what: string): number {
  const id = positiveInt(value, what);
  if (id > MAX_BROKER_ID) fail(`${what} must be at most ${MAX_BROKER_ID}`);
  return id;
}

function endpoint(value: unknown, what: string): string {
  if (typeof value !== 'string' || !ENDPOINT_PATTERN.test(value)) fail(`${what} must be host:port`);
  return value;
}

export function parseClusterConfig(text: string): ClusterConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    fail(`not JSON (${(error as Error).message})`);
  }
  if (!isRecord(raw)) fail('must be a JSON object');
  const clusterId = raw['clusterId'];
  if (typeof clusterId !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(clusterId))
    fail('clusterId must be 1-64 characters of [A-Za-z0-9_.-]');
  const iteratorSecret = parseSecret(raw['iteratorSecret'], clusterId);
  if (!Array.isArray(raw['brokers']) || raw['brokers'].length === 0)
    fail('brokers must be a non-empty list');
  const brokers = raw['brokers'].map((b: unknown, i): BrokerAddress => {
    if (!isRecord(b)) fail(`brokers[${i}] must be an object`);
    return {
      id: brokerId(b['id'], `brokers[${i}].id`),
      api: endpoint(b['api'], `brokers[${i}].api`),
      peer: endpoint(b['peer'], `brokers[${i}].peer`),
    };
  });
  const ids = new Set(brokers.map((b) => b.id));
  if (ids.size !== brokers.length) fail('broker ids must be unique');
  const streamsRaw = raw['streams'] ?? [];
  if (!Array.isArray(streamsRaw)) fail('streams must be a list');
  const streams = streamsRaw.map((s: unknown, i) => parseStream(s, i, brokers));
  if (new Set(streams.map((s) => s.name)).size !== streams.length)
    fail('stream names must be unique');
  return { clusterId, iteratorSecret, brokers, streams };
}

function parseSecret(value: unknown, clusterId: string): Buffer {
  if (value === undefined) {
    // Fine for tests and laptops; a real cluster sets its own secret (iterators are forgeable by
    // anyone who knows the cluster id otherwise).
    return createHash('sha256').update(`rheos-iterator-secret:${clusterId}`).digest();
  }
  if (typeof value !== 'string') fail('iteratorSecret must be base64');
  const secret = Buffer.from(value, 'base64');
  if (secret.length < 32) fail('iteratorSecret must decode to at least 32 bytes');
  return secret;
}

function parseStream(value: unknown, i: number, brokers: readonly BrokerAddress[]): StaticStream {
  if (!isRecord(value)) fail(`streams[${i}] must be an object`);
  const name = value['name'];
  if (
    typeof name !== 'string' ||
    name.length > STREAM_NAME_MAX_LENGTH ||
    !STREAM_NAME_PATTERN.test(name)
  )
    fail(`streams[${i}].name is not a valid stream name`);
  const shardCount = positiveInt(value['shardCount'], `streams[${i}].shardCount`);
  const replicationFactor =
    value['replicationFactor'] === undefined
      ? Math.min(3, brokers.length)
      : positiveInt(value['replicationFactor'], `streams[${i}].replicationFactor`);
  if (replicationFactor > brokers.length)
    fail(`streams[${i}].replicationFactor exceeds the number of brokers`);
  const retentionHours =
    value['retentionHours'] === undefined
      ? RETENTION_DEFAULT_HOURS
      : positiveInt(value['retentionHours'], `streams[${i}].retentionHours`);
  if (retentionHours < RETENTION_MIN_HOURS || retentionHours > RETENTION_MAX_HOURS)
    fail(`streams[${i}].retentionHours must be ${RETENTION_MIN_HOURS}-${RETENTION_MAX_HOURS}`);
  const shardLimits = value['unlimited'] === true ? unlimited() : DEFAULT_SHARD_LIMITS;
  const placement =
    value['placement'] === undefined
      ? roundRobin(shardCount, replicationFactor, brokers)
      : parsePlacement(value['placement'], i, shardCount, replicationFactor, brokers);
  return { name, shardCount, replicationFactor, retentionHours, shardLimits, placement };
}

function unlimited(): ShardThroughputLimits {
  return {
    writeBytesPerSecond: 0,
    writeRecordsPerSecond: 0,
    readCallsPerSecond: 0,
    readBytesPerSecond: 0,
  };
}

function roundRobin(
  shardCount: number,
  replicationFactor: number,
  brokers: readonly BrokerAddress[],
): number[][] {
  const ids = brokers.map((b) => b.id);
  return Array.from({ length: shardCount }, (_, shard) =>
    Array.from({ length: replicationFactor }, (_, k) => ids[(shard + k) % ids.length] as number),
  );
}

function parsePlacement(
  value: unknown,
  i: number,
  shardCount: number,
  replicationFactor: number,
  brokers: readonly BrokerAddress[],
): number[][] {
  const known = new Set(brokers.map((b) => b.id));
  if (!Array.isArray(value) || value.length !== shardCount)
    fail(`streams[${i}].placement must list the replicas of each of the ${shardCount} shards`);
  return value.map((replicas: unknown, shard) => {
    const what = `streams[${i}].placement[${shard}]`;
    if (!Array.isArray(replicas) || replicas.length !== replicationFactor)
      fail(`${what} must name ${replicationFactor} brokers`);
    const ids = replicas.map((id: unknown) => positiveInt(id, what));
    if (new Set(ids).size !== ids.length) fail(`${what} names a broker twice`);
    for (const id of ids) if (!known.has(id)) fail(`${what} names unknown broker ${id}`);
    return ids;
  });
}

export function brokerById(config: ClusterConfig, id: number): BrokerAddress | undefined {
  return config.brokers.find((b) => b.id === id);
}
