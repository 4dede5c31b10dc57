import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  optionalBlob,
  compact,
  integer,
  optionalTimestampMs,
  SerializationError,
  stringMap,
} from '../../src/gateway/json-shapes.js';

describe('JSON field readers', () => {
  it('accepts exactly the canonical base64 strings', () => {
    const valid = ['', 'QQ==', 'QUI=', 'QUJD', 'QUJDRA==', '+/+/'];
    const invalid = [
      'Q',
      'QQ=',
      'Q===',
      '====',
      'QU!D',
      'QU D',
      'ab=c',
      'QQ==QQ==',
      'QUJD\n',
      'é===',
    ];
    for (const value of valid)
      expect(() => optionalBlob({ Data: value }, 'Data'), value).not.toThrow();
    for (const value of invalid) {
      expect(() => optionalBlob({ Data: value }, 'Data'), JSON.stringify(value)).toThrow(
        SerializationError,
      );
    }
  });

  it('round-trips any bytes through base64', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const data = Buffer.from(bytes);
        expect(optionalBlob({ Data: data.toString('base64') }, 'Data')?.equals(data)).toBe(true);
      }),
    );
  });

  it('rejects values of the wrong JSON type with SerializationException', () => {
    expect(() => optionalBlob({ Data: 5 }, 'Data')).toThrow(SerializationError);
    expect(() => integer({ Limit: '10' }, 'Limit')).toThrow(SerializationError);
    expect(() => integer({ Limit: 1.5 }, 'Limit')).toThrow(SerializationError);
    expect(() => stringMap({ Tags: { a: 1 } }, 'Tags')).toThrow(SerializationError);
    expect(() => optionalTimestampMs({ Timestamp: 'yesterday' }, 'Timestamp')).toThrow(
      SerializationError,
    );
    expect(new SerializationError('x').name).toBe('SerializationException');
  });

  it('reads an absent or null blob as absent, so the native API reports it missing', () => {
    expect(optionalBlob({}, 'Data')).toBeUndefined();
    expect(optionalBlob({ Data: null }, 'Data')).toBeUndefined();
    expect(optionalBlob({ Data: '' }, 'Data')?.length).toBe(0);
  });

  it('reads epoch seconds (with fractions) as milliseconds, and null as absent', () => {
    expect(optionalTimestampMs({ T: 1700000000.123 }, 'T')).toBe(1700000000123);
    expect(optionalTimestampMs({ T: '1700000000.5' }, 'T')).toBe(1700000000500);
    expect(optionalTimestampMs({ T: null }, 'T')).toBeUndefined();
    expect(integer({}, 'Limit')).toBe(0);
  });

  it('compact drops undefined and empty-string fields only', () => {
    expect(compact({ a: undefined, b: '', c: 0, d: false, e: 'x' })).toEqual({
      c: 0,
      d: false,
      e: 'x',
    });
  });
});
