import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatShardId, parseShardId } from '../../src/common/shard-id.js';

describe('formatShardId', () => {
  it('is "shardId-" and 12 zero-padded digits, like Kinesis', () => {
    expect(formatShardId(0)).toBe('shardId-000000000000');
    expect(formatShardId(1)).toBe('shardId-000000000001');
    expect(formatShardId(42)).toBe('shardId-000000000042');
    expect(formatShardId(999_999_999_999)).toBe('shardId-999999999999');
  });

  it('is always 20 characters for ordinals below 10^12 (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999_999_999_999 }), (n) => {
        expect(formatShardId(n)).toHaveLength(20);
      }),
    );
  });

  it('sorts as strings in ordinal order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 999_999_999_999 }),
        fc.integer({ min: 0, max: 999_999_999_999 }),
        (a, b) => {
          expect(formatShardId(a) < formatShardId(b)).toBe(a < b);
        },
      ),
    );
  });
});

describe('parseShardId', () => {
  it('round-trips every ordinal below 10^12 (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999_999_999_999 }), (n) => {
        expect(parseShardId(formatShardId(n))).toBe(n);
      }),
    );
  });

  it('parses known ids', () => {
    expect(parseShardId('shardId-000000000000')).toBe(0);
    expect(parseShardId('shardId-000000000017')).toBe(17);
    expect(parseShardId('shardId-123456789012')).toBe(123456789012);
  });

  it('rejects ids that are not exactly "shardId-" and 12 ASCII digits', () => {
    for (const bad of [
      '',
      'shardId-',
      'shardId-1',
      'shardId-00000000001', // 11 digits
      'shardId-0000000000001', // 13 digits
      'ShardId-000000000001',
      'shardid-000000000001',
      'shard-000000000001',
      ' shardId-000000000001',
      'shardId-000000000001 ',
      'shardId-000000000001\n',
      'xshardId-000000000001',
      'shardId-00000000000a',
      'shardId--00000000001',
      'shardId-+00000000001',
      'shardId-0000000000.1',
      'shardId-00000000000\u0661', // ARABIC-INDIC DIGIT ONE
      '000000000001',
    ]) {
      expect(parseShardId(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });
});
