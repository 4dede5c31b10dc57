import { InvalidArgumentError } from 'commander';
import { MAX_HASH_KEY } from '../common/hash-key.js';
import { LIMITS_MODES, type LimitsMode } from '../server/shard-limits.js';

/** Parsers for commander options: reject bad values with a clear message before anything runs. */

export function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InvalidArgumentError('must be a port number (0-65535).');
  }
  return port;
}

/** `--from` of the commands that read a stream from its start or from now on. */
export type EdgePosition = { readonly type: 'TRIM_HORIZON' } | { readonly type: 'LATEST' };

export function parseEdgePosition(text: string): EdgePosition {
  switch (text) {
    case 'trim-horizon':
      return { type: 'TRIM_HORIZON' };
    case 'latest':
      return { type: 'LATEST' };
    default:
      throw new InvalidArgumentError(`--from must be trim-horizon or latest, not ${text}`);
  }
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError('must be a positive integer.');
  return n;
}

/** `--limits`: whether the node enforces Kinesis' per-shard limits. */
export function parseLimitsMode(value: string): LimitsMode {
  const mode = LIMITS_MODES.find((m) => m === value);
  if (mode === undefined)
    throw new InvalidArgumentError(`must be one of ${LIMITS_MODES.join(', ')}.`);
  return mode;
}

/** A 128-bit hash key in decimal, as Kinesis writes them. */
export function parseHashKey(value: string): string {
  if (!/^\d{1,39}$/.test(value) || BigInt(value) > MAX_HASH_KEY) {
    throw new InvalidArgumentError('must be a decimal hash key from 0 to 2^128 - 1.');
  }
  return BigInt(value).toString();
}

export const DEFAULT_ENDPOINT = '127.0.0.1:7400';

/** The nodes to talk to: one endpoint, or a cluster's brokers separated by commas. */
export function endpointsFrom(options: { endpoint?: string }): string[] {
  const value = options.endpoint ?? process.env['RHEOS_ENDPOINT'] ?? DEFAULT_ENDPOINT;
  return value
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
}

/** "a:1,b:2" -> ["a:1", "b:2"]. */
export function parseEndpointList(value: string): string[] {
  const endpoints = value
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (endpoints.length === 0 || endpoints.some((e) => !/^.+:\d{1,5}$/.test(e))) {
    throw new InvalidArgumentError('must be host:port, comma-separated.');
  }
  return endpoints;
}

/** Repeatable ID=HOST:PORT. */
export function collectIdAddress(
  value: string,
  previous: Map<number, string>,
): Map<number, string> {
  const match = /^(\d+)=(.+:\d+)$/.exec(value);
  if (match === null) throw new InvalidArgumentError('must be ID=HOST:PORT.');
  return new Map(previous).set(Number(match[1]), match[2] as string);
}
