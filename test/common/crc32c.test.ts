import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c as chosen, crc32cIsNative, crc32cPortable } from '../../src/common/crc32c.js';

/** Bit-at-a-time CRC32C (reflected Castagnoli polynomial), the textbook definition. */
function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Deterministic, non-trivial bytes (an LCG), so failures reproduce. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state >>> 24;
  }
  return out;
}

describe('crc32c implementations', () => {
  it('uses the native implementation on this platform', () => {
    expect(crc32cIsNative).toBe(true);
    expect(chosen).not.toBe(crc32cPortable);
  });

  it('native and portable agree on arbitrary bytes and starting values (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2048 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (bytes, start) => {
          expect(chosen(bytes, start)).toBe(crc32cPortable(bytes, start));
        },
      ),
    );
  });
});

describe.each([
  ['chosen', chosen],
  ['portable', crc32cPortable],
])('crc32c (%s)', (_name, crc32c) => {
  it('matches the standard check value for "123456789"', () => {
    expect(crc32c(Buffer.from('123456789', 'ascii'))).toBe(0xe3069283);
  });

  it('matches the iSCSI test vectors of RFC 3720 B.4', () => {
    const zeros = new Uint8Array(32);
    const ones = new Uint8Array(32).fill(0xff);
    const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
    const descending = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
    expect(crc32c(zeros)).toBe(0x8a9136aa);
    expect(crc32c(ones)).toBe(0x62a8ab43);
    expect(crc32c(ascending)).toBe(0x46dd794e);
    expect(crc32c(descending)).toBe(0x113fdb5c);
  });

  it('is 0 for no bytes, and continuing over no bytes keeps the crc', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(0), 0xe3069283)).toBe(0xe3069283);
  });

  it('the reference implementation in this test agrees with the known vectors', () => {
    // Guards the reference itself, so the length sweep below compares against something true.
    expect(referenceCrc32c(Buffer.from('123456789', 'ascii'))).toBe(0xe3069283);
    expect(referenceCrc32c(new Uint8Array(32))).toBe(0x8a9136aa);
  });

  it('agrees with the bitwise reference for every length 0..40', () => {
    for (let length = 0; length <= 40; length++) {
      for (const seed of [1, 2, 3]) {
        const bytes = pseudoRandomBytes(length, seed * 1000 + length);
        expect(crc32c(bytes), `length ${length}, seed ${seed}`).toBe(referenceCrc32c(bytes));
      }
      const ff = new Uint8Array(length).fill(0xff);
      expect(crc32c(ff), `length ${length} of 0xff`).toBe(referenceCrc32c(ff));
    }
  });

  it('reads only the view it is given (subarray at an odd offset of a larger buffer)', () => {
    const backing = pseudoRandomBytes(100, 42);
    for (let start = 0; start < 9; start++) {
      for (const length of [0, 1, 7, 8, 9, 17, 33]) {
        const view = backing.subarray(start, start + length);
        expect(crc32c(view)).toBe(referenceCrc32c(Uint8Array.from(view)));
      }
    }
  });

  it('incremental computation equals one-shot for every split point', () => {
    const whole = pseudoRandomBytes(40, 7);
    const oneShot = crc32c(whole);
    for (let cut = 0; cut <= whole.length; cut++) {
      const first = crc32c(whole.subarray(0, cut));
      expect(crc32c(whole.subarray(cut), first), `cut at ${cut}`).toBe(oneShot);
    }
  });

  it('incremental computation equals one-shot for arbitrary chunkings (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 8 }), (chunks) => {
        const whole = Buffer.concat(chunks);
        let crc = 0;
        for (const chunk of chunks) crc = crc32c(chunk, crc);
        expect(crc).toBe(crc32c(whole));
        expect(crc).toBe(referenceCrc32c(whole));
      }),
    );
  });

  it('always returns an unsigned 32-bit integer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const crc = crc32c(bytes);
        expect(Number.isInteger(crc)).toBe(true);
        expect(crc).toBeGreaterThanOrEqual(0);
        expect(crc).toBeLessThanOrEqual(0xffffffff);
      }),
    );
  });

  it('detects every single-bit flip', () => {
    const original = pseudoRandomBytes(64, 99);
    const crc = crc32c(original);
    for (let bit = 0; bit < original.length * 8; bit++) {
      const corrupted = Uint8Array.from(original);
      corrupted[bit >> 3]! ^= 1 << (bit & 7);
      expect(crc32c(corrupted), `bit ${bit}`).not.toBe(crc);
    }
  });
});
