import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/common/crc32c.js';
import {
  decodeEntry,
  encodeEntry,
  ENTRY_FORMAT_VERSION,
  EntryType,
  StorageCorruptionError,
  type LogEntry,
} from '../../src/storage/entry-codec.js';
import {
  decodeRecordBatch,
  encodeRecordBatch,
  recordBatchCount,
  type BatchRecord,
} from '../../src/storage/record-batch.js';

const u64 = fc.maxSafeNat();

const entryArb: fc.Arbitrary<LogEntry> = fc.record({
  index: u64,
  term: u64,
  type: fc.constantFrom(EntryType.Empty, EntryType.Records),
  arrivalMs: u64,
  payload: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
});

const recordArb: fc.Arbitrary<BatchRecord> = fc.record({
  partitionKey: fc.string({ unit: 'binary', minLength: 1, maxLength: 256 }),
  data: fc.uint8Array({ maxLength: 2048 }).map((bytes) => Buffer.from(bytes)),
});

function expectCorrupt(decode: () => unknown): void {
  expect(decode).toThrow(StorageCorruptionError);
}

/** The bit positions whose flip decodeEntry does not report as corruption. */
function undetectedBitFlips(index: number, encoded: Buffer): number[] {
  const undetected: number[] = [];
  for (let bit = 0; bit < encoded.length * 8; bit++) {
    const flipped = Buffer.from(encoded);
    flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
    try {
      decodeEntry(index, flipped);
      undetected.push(bit);
    } catch (error) {
      if (!(error instanceof StorageCorruptionError)) throw error;
    }
  }
  return undetected;
}

function sameEntry(actual: LogEntry, expected: LogEntry): void {
  expect({ ...actual, payload: actual.payload.toString('hex') }).toEqual({
    ...expected,
    payload: expected.payload.toString('hex'),
  });
}

function sameRecords(actual: BatchRecord[], expected: readonly BatchRecord[]): void {
  expect(actual.map((r) => [r.partitionKey, r.data.toString('hex')])).toEqual(
    expected.map((r) => [r.partitionKey, r.data.toString('hex')]),
  );
}

describe('log entry codec', () => {
  it('round-trips any entry', () => {
    fc.assert(
      fc.property(entryArb, (entry) => {
        const encoded = encodeEntry(entry);
        expect(encoded[0]).toBe(ENTRY_FORMAT_VERSION);
        sameEntry(decodeEntry(entry.index, encoded), entry);
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips the u64 boundaries of index, term and arrival time', () => {
    for (const n of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER]) {
      const entry: LogEntry = {
        index: n,
        term: n,
        type: EntryType.Records,
        arrivalMs: n,
        payload: Buffer.from('x'),
      };
      sameEntry(decodeEntry(n, encodeEntry(entry)), entry);
    }
  });

  it('detects every single-bit flip anywhere in an encoded entry', () => {
    fc.assert(
      fc.property(
        entryArb.map((e) => ({ ...e, payload: e.payload.subarray(0, 40) })),
        (entry) => {
          expect(undetectedBitFlips(entry.index, encodeEntry(entry))).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('detects every single-bit flip in a large entry', () => {
    const payload = Buffer.alloc(2000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
    const entry: LogEntry = { index: 77, term: 3, type: EntryType.Records, arrivalMs: 5, payload };
    expect(undetectedBitFlips(entry.index, encodeEntry(entry))).toEqual([]);
  });

  it('rejects an entry decoded under a different index than it was encoded for', () => {
    fc.assert(
      fc.property(entryArb, u64, (entry, other) => {
        fc.pre(other !== entry.index);
        expectCorrupt(() => decodeEntry(other, encodeEntry(entry)));
      }),
      { numRuns: 500 },
    );
    // Neighbouring indexes and indexes differing only in the high or low 32 bits.
    const entry: LogEntry = {
      index: 2 ** 32 + 5,
      term: 1,
      type: EntryType.Records,
      arrivalMs: 1,
      payload: Buffer.from('records'),
    };
    const encoded = encodeEntry(entry);
    for (const other of [2 ** 32 + 4, 2 ** 32 + 6, 5, 2 * 2 ** 32 + 5, 0]) {
      expectCorrupt(() => decodeEntry(other, encoded));
    }
  });

  it('rejects every truncation of an encoded entry', () => {
    fc.assert(
      fc.property(entryArb, (entry) => {
        const encoded = encodeEntry(entry);
        for (let length = 0; length < encoded.length; length++) {
          expectCorrupt(() => decodeEntry(entry.index, encoded.subarray(0, length)));
        }
      }),
      { numRuns: 100 },
    );
  });

  it('rejects bytes appended to an encoded entry', () => {
    fc.assert(
      fc.property(entryArb, fc.uint8Array({ minLength: 1, maxLength: 16 }), (entry, extra) => {
        const encoded = Buffer.concat([encodeEntry(entry), extra]);
        expectCorrupt(() => decodeEntry(entry.index, encoded));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects an unknown format version and an unknown entry type even with a valid checksum', () => {
    const entry: LogEntry = {
      index: 9,
      term: 2,
      type: EntryType.Records,
      arrivalMs: 1000,
      payload: Buffer.from('abc'),
    };
    const wrongVersion = encodeEntry(entry);
    wrongVersion[0] = ENTRY_FORMAT_VERSION + 1;
    expect(() => decodeEntry(9, wrongVersion)).toThrow(/unknown format version/);

    const unknownType = encodeEntry({ ...entry, type: 7 as EntryType });
    expect(() => decodeEntry(9, unknownType)).toThrow(StorageCorruptionError);
    expect(() => decodeEntry(9, unknownType)).toThrow(/unknown entry type 7/);
  });

  it('uses the CRC32C (Castagnoli) check values', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    const bytes = Buffer.from('the quick brown fox jumps over the lazy dog');
    expect(crc32c(bytes.subarray(13), crc32c(bytes.subarray(0, 13)))).toBe(crc32c(bytes));
  });
});

describe('record batch codec', () => {
  it('round-trips any batch of records', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 20 }), (records) => {
        const payload = encodeRecordBatch(records);
        expect(recordBatchCount(payload)).toBe(records.length);
        sameRecords(decodeRecordBatch(1, payload), records);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips a batch inside a log entry', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 10 }), u64, (records, index) => {
        const payload = encodeRecordBatch(records);
        const stored = encodeEntry({
          index,
          term: 1,
          type: EntryType.Records,
          arrivalMs: 0,
          payload,
        });
        const entry = decodeEntry(index, stored);
        sameRecords(decodeRecordBatch(index, entry.payload), records);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps unicode partition keys and empty data intact', () => {
    const records: BatchRecord[] = [
      { partitionKey: 'κλειδί', data: Buffer.alloc(0) },
      { partitionKey: '🔑🗝️', data: Buffer.from([0]) },
      { partitionKey: '分区键', data: Buffer.alloc(0) },
      { partitionKey: 'e\u0301', data: Buffer.from('accent') },
      { partitionKey: '\u0000', data: Buffer.alloc(0) },
      // 256 characters of 4 UTF-8 bytes each: the longest partition key in bytes.
      { partitionKey: '𝄞'.repeat(256), data: Buffer.alloc(0) },
      // A data view into a larger buffer must be copied from its own offset.
      { partitionKey: 'view', data: Buffer.from('xxhelloxx').subarray(2, 7) },
    ];
    const decoded = decodeRecordBatch(5, encodeRecordBatch(records));
    expect(decoded.map((r) => r.partitionKey)).toEqual(records.map((r) => r.partitionKey));
    expect(decoded.map((r) => r.data.length)).toEqual([0, 1, 0, 6, 0, 0, 5]);
    expect(decoded[6]?.data.toString()).toBe('hello');
    expect(decoded[5]?.partitionKey).toHaveLength(512); // 256 surrogate pairs
  });

  it('round-trips an empty batch', () => {
    const payload = encodeRecordBatch([]);
    expect(payload).toHaveLength(4);
    expect(decodeRecordBatch(1, payload)).toEqual([]);
  });

  it('rejects every truncation and any trailing bytes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            partitionKey: fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }),
            data: fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)),
          }),
          { maxLength: 5 },
        ),
        fc.uint8Array({ minLength: 1, maxLength: 8 }),
        (records, extra) => {
          const payload = encodeRecordBatch(records);
          for (let length = 0; length < payload.length; length++) {
            expectCorrupt(() => decodeRecordBatch(3, payload.subarray(0, length)));
          }
          expectCorrupt(() => decodeRecordBatch(3, Buffer.concat([payload, extra])));
        },
      ),
      { numRuns: 200 },
    );
  });
});
