import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import {
  ExpiredNextTokenError,
  InvalidArgumentError,
  RheosError,
} from '../../src/common/errors.js';
import { NEXT_TOKEN_LIFETIME_MS } from '../../src/common/limits.js';
import { decodePageToken, encodePageToken } from '../../src/common/page-token.js';

interface StreamsPage {
  readonly after: string;
  readonly limit: number;
}

const isStreamsPage = (body: unknown): body is StreamsPage =>
  typeof body === 'object' &&
  body !== null &&
  typeof (body as StreamsPage).after === 'string' &&
  typeof (body as StreamsPage).limit === 'number';

function thrownBy(fn: () => unknown): RheosError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(RheosError);
    return error as RheosError;
  }
  return expect.fail('expected an error to be thrown');
}

function expectInvalid(fn: () => unknown, label?: string): void {
  const error = thrownBy(fn);
  expect(error, label).toBeInstanceOf(InvalidArgumentError);
  expect(error.name, label).toBe('InvalidArgumentException');
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');

describe('page tokens', () => {
  const clock = new ManualClock();
  const now = clock.nowMs();
  const body: StreamsPage = { after: 'stream-ü-😀', limit: 100 };

  it('round-trip their body', () => {
    const token = encodePageToken('ListStreams', body, now);
    expect(decodePageToken('ListStreams', token, now, isStreamsPage)).toEqual(body);
  });

  it('are opaque base64url text', () => {
    const token = encodePageToken('ListStreams', body, now);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(token).not.toContain('stream');
  });

  it('round-trip other body shapes', () => {
    const isString = (b: unknown): b is string => typeof b === 'string';
    expect(decodePageToken('k', encodePageToken('k', 'cursor', now), now, isString)).toBe('cursor');
    const isArray = (b: unknown): b is number[] => Array.isArray(b);
    expect(decodePageToken('k', encodePageToken('k', [1, 2], now), now, isArray)).toEqual([1, 2]);
  });

  it('a token of another kind is InvalidArgument', () => {
    const token = encodePageToken('ListShards', body, now);
    expectInvalid(() => decodePageToken('ListStreams', token, now, isStreamsPage));
  });

  it('a body the caller does not recognise is InvalidArgument', () => {
    const token = encodePageToken('ListStreams', { after: 5 }, now);
    expectInvalid(() => decodePageToken('ListStreams', token, now, isStreamsPage));
  });

  it('garbage is InvalidArgument', () => {
    const garbage = [
      '',
      'garbage',
      '!!!!',
      '{"v":1}',
      b64('not json'),
      b64('null'),
      b64('1'),
      b64('"text"'),
      b64('[]'),
      b64('{}'),
      b64(JSON.stringify({ v: 2, kind: 'ListStreams', issuedMs: now, body })),
      b64(JSON.stringify({ v: '1', kind: 'ListStreams', issuedMs: now, body })),
      b64(JSON.stringify({ v: 1, kind: 'ListStreams', issuedMs: String(now), body })),
      b64(JSON.stringify({ v: 1, kind: 'ListStreams', body })),
      b64(JSON.stringify({ v: 1, issuedMs: now, body })),
      b64(JSON.stringify({ v: 1, kind: 'ListStreams', issuedMs: now })),
    ];
    for (const g of garbage) {
      expectInvalid(() => decodePageToken('ListStreams', g, now, isStreamsPage), g);
    }
  });

  it('a truncated token is InvalidArgument', () => {
    const token = encodePageToken('ListStreams', body, now);
    for (const cut of [1, 5, token.length >> 1]) {
      expectInvalid(
        () => decodePageToken('ListStreams', token.slice(0, -cut), now, isStreamsPage),
        `cut ${cut}`,
      );
    }
  });

  it('is valid at exactly its lifetime and expired 1 ms later', () => {
    const c = new ManualClock();
    const token = encodePageToken('ListStreams', body, c.nowMs());
    c.advance(NEXT_TOKEN_LIFETIME_MS);
    expect(decodePageToken('ListStreams', token, c.nowMs(), isStreamsPage)).toEqual(body);
    c.advance(1);
    const error = thrownBy(() => decodePageToken('ListStreams', token, c.nowMs(), isStreamsPage));
    expect(error).toBeInstanceOf(ExpiredNextTokenError);
    expect(error.name).toBe('ExpiredNextTokenException');
  });

  it('the lifetime is five minutes', () => {
    expect(NEXT_TOKEN_LIFETIME_MS).toBe(5 * 60 * 1000);
  });

  it('an expired token of the wrong kind is InvalidArgument, not expired', () => {
    const token = encodePageToken('ListShards', body, now);
    expectInvalid(() =>
      decodePageToken('ListStreams', token, now + NEXT_TOKEN_LIFETIME_MS + 1, isStreamsPage),
    );
  });
});
