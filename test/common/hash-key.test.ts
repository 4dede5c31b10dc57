import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  evenHashRanges,
  MAX_HASH_KEY,
  partitionKeyToHashKey,
  rangeContains,
  type HashRange,
} from '../../src/common/hash-key.js';

const md5Int = (bytes: Buffer | string): bigint =>
  BigInt('0x' + createHash('md5').update(bytes).digest('hex'));

describe('MAX_HASH_KEY', () => {
  it('is 2^128 - 1', () => {
    expect(MAX_HASH_KEY).toBe(340282366920938463463374607431768211455n);
  });
});

describe('partitionKeyToHashKey', () => {
  it('is the MD5 digest read as a big-endian unsigned integer (known digests)', () => {
    // Well-known MD5 digests, written out so the test does not only mirror the implementation.
    expect(partitionKeyToHashKey('')).toBe(0xd41d8cd98f00b204e9800998ecf8427en);
    expect(partitionKeyToHashKey('a')).toBe(0x0cc175b9c0f1b6a831c399e269772661n);
    expect(partitionKeyToHashKey('abc')).toBe(0x900150983cd24fb0d6963f7d28e17f72n);
    expect(partitionKeyToHashKey('The quick brown fox jumps over the lazy dog')).toBe(
      0x9e107d9d372bb6826bd81d3542a419d6n,
    );
  });

  it('equals BigInt of the md5 hex computed with node:crypto', () => {
    for (const key of ['k', 'partition-1', 'user#42', ' ', 'x'.repeat(256)]) {
      expect(partitionKeyToHashKey(key), key).toBe(md5Int(Buffer.from(key, 'utf8')));
    }
  });

  it('hashes the UTF-8 encoding of non-ASCII keys', () => {
    // 'é' is C3 A9 in UTF-8 (not E9 as latin1, not E9 00 as UTF-16LE).
    expect(partitionKeyToHashKey('é')).toBe(md5Int(Buffer.from([0xc3, 0xa9])));
    expect(partitionKeyToHashKey('é')).not.toBe(md5Int(Buffer.from([0xe9])));
    // An astral character is one 4-byte UTF-8 sequence.
    expect(partitionKeyToHashKey('😀')).toBe(md5Int(Buffer.from([0xf0, 0x9f, 0x98, 0x80])));
  });

  it('keeps the value of a digest with leading zero bits', () => {
    // md5('a') starts with 0x0c: the integer is below 2^124.
    const h = partitionKeyToHashKey('a');
    expect(h < 1n << 124n).toBe(true);
    expect(h.toString(16).padStart(32, '0')).toBe('0cc175b9c0f1b6a831c399e269772661');
  });

  it('always lies in [0, MAX_HASH_KEY] and equals the md5 integer (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 64 }), (key) => {
        const h = partitionKeyToHashKey(key);
        expect(h >= 0n && h <= MAX_HASH_KEY).toBe(true);
        expect(h).toBe(md5Int(Buffer.from(key, 'utf8')));
      }),
    );
  });
});

function checkPartition(ranges: HashRange[], count: number): void {
  expect(ranges).toHaveLength(count);
  expect(ranges[0]!.start).toBe(0n);
  expect(ranges[ranges.length - 1]!.end).toBe(MAX_HASH_KEY);
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    expect(r.start <= r.end, `range ${i} of ${count} is not empty`).toBe(true);
    if (i > 0) {
      expect(r.start, `range ${i} of ${count} starts right after range ${i - 1}`).toBe(
        ranges[i - 1]!.end + 1n,
      );
    }
  }
}

const size = (r: HashRange): bigint => r.end - r.start + 1n;

describe('evenHashRanges', () => {
  it('covers [0, 2^128-1] contiguously with no gaps or overlaps, for 1..50 ranges', () => {
    for (let count = 1; count <= 50; count++) checkPartition(evenHashRanges(count), count);
  });

  it('sizes add up to exactly 2^128', () => {
    for (let count = 1; count <= 50; count++) {
      const total = evenHashRanges(count).reduce((sum, r) => sum + size(r), 0n);
      expect(total, `count ${count}`).toBe(1n << 128n);
    }
  });

  it('one range is the whole space', () => {
    expect(evenHashRanges(1)).toEqual([{ start: 0n, end: MAX_HASH_KEY }]);
  });

  it('matches the ranges Kinesis gives a 2-, 3- and 4-shard stream', () => {
    expect(evenHashRanges(2).map((r) => [r.start, r.end])).toEqual([
      [0n, (1n << 127n) - 1n],
      [1n << 127n, MAX_HASH_KEY],
    ]);
    expect(evenHashRanges(3).map((r) => r.end)).toEqual([
      113427455640312821154458202477256070484n,
      226854911280625642308916404954512140969n,
      340282366920938463463374607431768211455n,
    ]);
    expect(evenHashRanges(4).map((r) => r.end)).toEqual([
      85070591730234615865843651857942052863n,
      170141183460469231731687303715884105727n,
      255211775190703847597530955573826158591n,
      340282366920938463463374607431768211455n,
    ]);
  });

  it('every range has floor(2^128 / count) keys and the last also takes the remainder, as on Kinesis', () => {
    for (let count = 1; count <= 50; count++) {
      const sizes = evenHashRanges(count).map(size);
      const width = (1n << 128n) / BigInt(count);
      const remainder = (1n << 128n) % BigInt(count);
      expect(
        sizes.slice(0, -1).every((s) => s === width),
        `count ${count}`,
      ).toBe(true);
      expect(sizes[sizes.length - 1], `count ${count}`).toBe(width + remainder);
    }
  });

  it('every partition key lands in exactly one range', () => {
    const ranges = evenHashRanges(7);
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 32 }), (key) => {
        const h = partitionKeyToHashKey(key);
        expect(ranges.filter((r) => rangeContains(r, h))).toHaveLength(1);
      }),
    );
  });

  it('rejects counts that are not positive integers', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => evenHashRanges(bad), String(bad)).toThrow(RangeError);
    }
  });
});

describe('rangeContains', () => {
  const r: HashRange = { start: 100n, end: 200n };

  it('is inclusive at both ends', () => {
    expect(rangeContains(r, 100n)).toBe(true);
    expect(rangeContains(r, 200n)).toBe(true);
    expect(rangeContains(r, 150n)).toBe(true);
  });

  it('excludes the neighbours of both ends', () => {
    expect(rangeContains(r, 99n)).toBe(false);
    expect(rangeContains(r, 201n)).toBe(false);
  });

  it('a single-key range contains only that key', () => {
    const one: HashRange = { start: 5n, end: 5n };
    expect(rangeContains(one, 5n)).toBe(true);
    expect(rangeContains(one, 4n)).toBe(false);
    expect(rangeContains(one, 6n)).toBe(false);
  });

  it('handles the edges of the whole space', () => {
    const whole: HashRange = { start: 0n, end: MAX_HASH_KEY };
    expect(rangeContains(whole, 0n)).toBe(true);
    expect(rangeContains(whole, MAX_HASH_KEY)).toBe(true);
    expect(rangeContains(whole, -1n)).toBe(false);
    expect(rangeContains(whole, MAX_HASH_KEY + 1n)).toBe(false);
  });

  it('adjacent ranges from evenHashRanges split at the boundary', () => {
    const [a, b] = evenHashRanges(2) as [HashRange, HashRange];
    expect(rangeContains(a, a.end)).toBe(true);
    expect(rangeContains(b, a.end)).toBe(false);
    expect(rangeContains(a, b.start)).toBe(false);
    expect(rangeContains(b, b.start)).toBe(true);
  });
});
