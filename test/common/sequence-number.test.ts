import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  comparePositions,
  formatSequenceNumber,
  MAX_RECORDS_PER_ENTRY,
  parseSequenceNumber,
  SEQUENCE_FORMAT_DIGIT,
  SEQUENCE_NUMBER_LENGTH,
  type SequenceNumberParts,
} from '../../src/common/sequence-number.js';

const MAX_INCARNATION = 10 ** 12 - 1;

const partsArb: fc.Arbitrary<SequenceNumberParts> = fc.record({
  incarnation: fc.integer({ min: 1, max: MAX_INCARNATION }),
  index: fc.maxSafeNat(),
  offset: fc.integer({ min: 0, max: MAX_RECORDS_PER_ENTRY }),
});

/** Parts drawn from a few small values so equal components (ties) are common. */
const tieHeavyPartsArb: fc.Arbitrary<SequenceNumberParts> = fc.record({
  incarnation: fc.constantFrom(1, 2, 9, 10, MAX_INCARNATION),
  index: fc.constantFrom(0, 1, 9, 10, 99, 100, Number.MAX_SAFE_INTEGER),
  offset: fc.constantFrom(0, 1, 9, 10, MAX_RECORDS_PER_ENTRY),
});

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);
const cmpString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const cmpBigInt = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
const cmpTuple = (a: SequenceNumberParts, b: SequenceNumberParts): number =>
  sign(a.incarnation - b.incarnation) || sign(a.index - b.index) || sign(a.offset - b.offset);

describe('formatSequenceNumber', () => {
  it('has the documented layout: format digit, 12 + 20 + 5 zero-padded digits', () => {
    expect(SEQUENCE_NUMBER_LENGTH).toBe(38);
    expect(formatSequenceNumber({ incarnation: 1, index: 0, offset: 0 })).toBe(
      '4' + '000000000001' + '00000000000000000000' + '00000',
    );
    expect(formatSequenceNumber({ incarnation: 123, index: 4567, offset: 89 })).toBe(
      '4' + '000000000123' + '00000000000000004567' + '00089',
    );
    expect(
      formatSequenceNumber({
        incarnation: MAX_INCARNATION,
        index: Number.MAX_SAFE_INTEGER,
        offset: MAX_RECORDS_PER_ENTRY,
      }),
    ).toBe('4' + '999999999999' + '00009007199254740991' + '99999');
  });

  it('is always fixed width, all digits, starting with the format digit (property)', () => {
    fc.assert(
      fc.property(partsArb, (parts) => {
        const s = formatSequenceNumber(parts);
        expect(s).toHaveLength(SEQUENCE_NUMBER_LENGTH);
        expect(s).toMatch(/^[0-9]+$/);
        expect(s[0]).toBe(SEQUENCE_FORMAT_DIGIT);
      }),
    );
  });

  it('rejects out-of-range or non-integer incarnations', () => {
    for (const incarnation of [0, -1, MAX_INCARNATION + 1, 1.5, Number.NaN, Infinity]) {
      expect(
        () => formatSequenceNumber({ incarnation, index: 0, offset: 0 }),
        String(incarnation),
      ).toThrow(RangeError);
    }
  });

  it('rejects negative, fractional or unsafe log indexes', () => {
    for (const index of [-1, 0.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, Infinity]) {
      expect(
        () => formatSequenceNumber({ incarnation: 1, index, offset: 0 }),
        String(index),
      ).toThrow(RangeError);
    }
  });

  it('rejects offsets outside 0..MAX_RECORDS_PER_ENTRY', () => {
    expect(MAX_RECORDS_PER_ENTRY).toBe(99_999);
    for (const offset of [-1, MAX_RECORDS_PER_ENTRY + 1, 0.5, Number.NaN]) {
      expect(
        () => formatSequenceNumber({ incarnation: 1, index: 0, offset }),
        String(offset),
      ).toThrow(RangeError);
    }
  });

  it('accepts the extreme valid values', () => {
    expect(() =>
      formatSequenceNumber({ incarnation: 1, index: 0, offset: MAX_RECORDS_PER_ENTRY }),
    ).not.toThrow();
    expect(() =>
      formatSequenceNumber({ incarnation: MAX_INCARNATION, index: 0, offset: 0 }),
    ).not.toThrow();
  });
});

describe('parseSequenceNumber', () => {
  it('round-trips every valid sequence number (property)', () => {
    fc.assert(
      fc.property(partsArb, (parts) => {
        expect(parseSequenceNumber(formatSequenceNumber(parts))).toEqual(parts);
      }),
    );
  });

  it('anything it accepts formats back to the identical string (property)', () => {
    const digits = (n: number) =>
      fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: n, maxLength: n });
    fc.assert(
      fc.property(digits(SEQUENCE_NUMBER_LENGTH - 1), (rest) => {
        const s = SEQUENCE_FORMAT_DIGIT + rest;
        const parts = parseSequenceNumber(s);
        if (parts !== undefined) expect(formatSequenceNumber(parts)).toBe(s);
      }),
    );
  });

  const valid = formatSequenceNumber({ incarnation: 7, index: 42, offset: 3 });

  it('parses a known string', () => {
    expect(parseSequenceNumber('4' + '000000000007' + '00000000000000000042' + '00003')).toEqual({
      incarnation: 7,
      index: 42,
      offset: 3,
    });
  });

  it('rejects wrong lengths', () => {
    expect(parseSequenceNumber('')).toBeUndefined();
    expect(parseSequenceNumber('4')).toBeUndefined();
    expect(parseSequenceNumber(valid.slice(0, -1))).toBeUndefined();
    expect(parseSequenceNumber(valid + '0')).toBeUndefined();
    expect(parseSequenceNumber('0' + valid)).toBeUndefined();
  });

  it('rejects another format digit', () => {
    for (const d of '012356789') {
      expect(parseSequenceNumber(d + valid.slice(1)), d).toBeUndefined();
    }
  });

  it('rejects a non-digit at any position', () => {
    for (let i = 1; i < valid.length; i++) {
      for (const bad of ['a', ' ', '-', '+', '.', '\u0663' /* ARABIC-INDIC DIGIT THREE */]) {
        const s = valid.slice(0, i) + bad + valid.slice(i + 1);
        expect(parseSequenceNumber(s), JSON.stringify(s)).toBeUndefined();
      }
    }
  });

  it('rejects incarnation 0', () => {
    expect(parseSequenceNumber('4' + '0'.repeat(37))).toBeUndefined();
  });

  it('rejects log indexes beyond the safe-integer range', () => {
    const unsafe = (Number.MAX_SAFE_INTEGER + 1).toString().padStart(20, '0');
    expect(parseSequenceNumber('4' + '000000000001' + unsafe + '00000')).toBeUndefined();
    expect(parseSequenceNumber('4' + '000000000001' + '9'.repeat(20) + '00000')).toBeUndefined();
    const safe = Number.MAX_SAFE_INTEGER.toString().padStart(20, '0');
    expect(parseSequenceNumber('4' + '000000000001' + safe + '00000')?.index).toBe(
      Number.MAX_SAFE_INTEGER,
    );
  });

  it('rejects a real Kinesis-style sequence number of another format', () => {
    // AWS sequence numbers are 56 digits starting with '49'.
    expect(
      parseSequenceNumber('49590338271490256608559692538361571095921575989136588898'),
    ).toBeUndefined();
  });
});

describe('ordering', () => {
  for (const [label, arb] of [
    ['random parts', partsArb],
    ['parts with many ties', tieHeavyPartsArb],
  ] as const) {
    it(`string order = BigInt order = (incarnation, index, offset) order (${label})`, () => {
      fc.assert(
        fc.property(arb, arb, (a, b) => {
          const sa = formatSequenceNumber(a);
          const sb = formatSequenceNumber(b);
          const byTuple = cmpTuple(a, b);
          expect(cmpString(sa, sb)).toBe(byTuple);
          expect(cmpBigInt(BigInt(sa), BigInt(sb))).toBe(byTuple);
        }),
      );
    });
  }

  it('orders a carry across a digit boundary numerically, not lexically by unpadded value', () => {
    const s9 = formatSequenceNumber({ incarnation: 1, index: 9, offset: 0 });
    const s10 = formatSequenceNumber({ incarnation: 1, index: 10, offset: 0 });
    expect(s9 < s10).toBe(true);
    const lastOfEntry = formatSequenceNumber({ incarnation: 1, index: 9, offset: 99_999 });
    expect(lastOfEntry < s10).toBe(true);
  });
});

describe('comparePositions', () => {
  it('orders by index, then offset', () => {
    expect(comparePositions({ index: 1, offset: 5 }, { index: 2, offset: 0 })).toBeLessThan(0);
    expect(comparePositions({ index: 2, offset: 0 }, { index: 1, offset: 5 })).toBeGreaterThan(0);
    expect(comparePositions({ index: 3, offset: 1 }, { index: 3, offset: 2 })).toBeLessThan(0);
    expect(comparePositions({ index: 3, offset: 2 }, { index: 3, offset: 1 })).toBeGreaterThan(0);
    expect(comparePositions({ index: 3, offset: 2 }, { index: 3, offset: 2 })).toBe(0);
  });

  it('agrees with sequence-number order within one incarnation (property)', () => {
    fc.assert(
      fc.property(partsArb, partsArb, (a, b) => {
        const sb = formatSequenceNumber({ ...b, incarnation: a.incarnation });
        const sa = formatSequenceNumber(a);
        expect(sign(comparePositions(a, b))).toBe(cmpString(sa, sb));
      }),
    );
  });
});
