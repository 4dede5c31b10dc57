import { createRequire } from 'node:module';

/**
 * CRC32C (Castagnoli), the checksum every stored log entry carries, on the write path and on every
 * read. Node 20 has no built-in CRC32C. The native @node-rs/crc32 (SSE4.2, ~5 GB/s) is used when
 * its prebuilt binary loads; otherwise a table-driven slicing-by-8 implementation (~1 GB/s,
 * measured: 13% of the broker's CPU at 50k records/s). Both give identical results (tested).
 */

const POLY_REFLECTED = 0x82f63b78;

const tables: Uint32Array[] = (() => {
  const result: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY_REFLECTED : c >>> 1;
    t0[n] = c >>> 0;
  }
  result.push(t0);
  for (let t = 1; t < 8; t++) {
    const prev = result[t - 1] as Uint32Array;
    const next = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      const p = prev[n] as number;
      next[n] = ((p >>> 8) ^ (t0[p & 0xff] as number)) >>> 0;
    }
    result.push(next);
  }
  return result;
})();

const [T0, T1, T2, T3, T4, T5, T6, T7] = tables as [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

type Crc32c = (bytes: Uint8Array, crc?: number) => number;

function loadNative(): Crc32c | undefined {
  try {
    const native = createRequire(import.meta.url)('@node-rs/crc32') as { crc32c?: unknown };
    if (typeof native.crc32c !== 'function') return undefined;
    const fn = native.crc32c as (data: Buffer | string, initialState?: number) => number;
    return (bytes, crc = 0) =>
      fn(
        Buffer.isBuffer(bytes)
          ? bytes
          : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        crc,
      );
  } catch {
    return undefined;
  }
}

/** Continues a CRC32C over `bytes` in portable JavaScript; `crc` is the result so far. */
export function crc32cPortable(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  let i = 0;
  const end8 = bytes.length - (bytes.length % 8);
  // The indexed reads below are always in range (i < end8); the `as number` casts only satisfy
  // noUncheckedIndexedAccess on this hot path.
  while (i < end8) {
    const lo =
      (c ^
        ((bytes[i] as number) |
          ((bytes[i + 1] as number) << 8) |
          ((bytes[i + 2] as number) << 16) |
          ((bytes[i + 3] as number) << 24))) >>>
      0;
    const b4 = bytes[i + 4] as number;
    const b5 = bytes[i + 5] as number;
    const b6 = bytes[i + 6] as number;
    const b7 = bytes[i + 7] as number;
    c =
      (T7[lo & 0xff] as number) ^
      (T6[(lo >>> 8) & 0xff] as number) ^
      (T5[(lo >>> 16) & 0xff] as number) ^
      (T4[lo >>> 24] as number) ^
      (T3[b4] as number) ^
      (T2[b5] as number) ^
      (T1[b6] as number) ^
      (T0[b7] as number);
    i += 8;
  }
  while (i < bytes.length) {
    c = (T0[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
    i++;
  }
  return ~c >>> 0;
}

const native = loadNative();

/** True when the native implementation is in use. */
export const crc32cIsNative = native !== undefined;

/** Continues a CRC32C over `bytes`; pass the previous result as `crc` to checksum in pieces. */
export const crc32c: Crc32c = native ?? crc32cPortable;
