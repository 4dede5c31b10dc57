import { describe, expect, it } from 'vitest';
import { CommittedTail } from '../../src/broker/committed-tail.js';
import { EntryType, type LogEntry } from '../../src/storage/entry-codec.js';
import { encodeRecordBatch } from '../../src/storage/record-batch.js';

function entry(index: number, text = `r${index}`): LogEntry {
  return {
    index,
    term: 1,
    type: EntryType.Records,
    arrivalMs: 1_000 + index,
    payload: encodeRecordBatch([{ partitionKey: 'k', data: Buffer.from(text) }]),
  };
}

const indexes = (tail: CommittedTail, from: number, to: number) =>
  tail.range(from, to).map((e) => e.index);

describe('the committed tail', () => {
  it('keeps the newest entries within its byte bound, dropping the oldest first', () => {
    const size = entry(1).payload.length;
    const tail = new CommittedTail(size * 3);
    tail.append([entry(1), entry(2)]);
    expect([tail.firstIndex, tail.lastIndex, tail.sizeBytes]).toEqual([1, 2, size * 2]);
    tail.append([entry(3), entry(4), entry(5)]);
    expect([tail.firstIndex, tail.lastIndex]).toEqual([3, 5]);
    expect(tail.sizeBytes).toBeLessThanOrEqual(size * 3);
    expect(indexes(tail, 3, 99)).toEqual([3, 4, 5]);
  });

  it('holds nothing with a bound of 0, so every read goes to storage', () => {
    const tail = new CommittedTail(0);
    tail.append([entry(1), entry(2)]);
    expect(tail.firstIndex).toBeUndefined();
    expect(tail.range(1, 2)).toEqual([]);
  });

  it('never holds a gap: an entry out of line starts it afresh', () => {
    const tail = new CommittedTail(1 << 20);
    tail.append([entry(1), entry(2)]);
    tail.append([entry(5)]);
    expect([tail.firstIndex, tail.lastIndex]).toEqual([5, 5]);
    tail.append([entry(4)]);
    expect([tail.firstIndex, tail.lastIndex]).toEqual([4, 4]);
  });

  it('answers a range as a list that later appends and drops do not change', () => {
    const size = entry(1).payload.length;
    const tail = new CommittedTail(size * 2);
    tail.append([entry(1), entry(2)]);
    const held = tail.range(1, 2);
    tail.append([entry(3), entry(4)]);
    expect(held.map((e) => e.index)).toEqual([1, 2]);
    expect(indexes(tail, 3, 4)).toEqual([3, 4]);
    expect(() => tail.range(1, 4)).toThrow(/before its first entry/);
  });

  it('decodes a batch once and shares the records among readers', () => {
    const tail = new CommittedTail(1 << 20);
    tail.append([entry(7, 'seven')]);
    const [a] = tail.range(7, 7);
    const [b] = tail.range(7, 7);
    expect(a?.records()).toBe(b?.records());
    expect(a?.records().map((r) => r.data.toString())).toEqual(['seven']);
    expect(tail.stats.entriesServed).toBe(2);
  });

  it('reclaims the slots of dropped entries over a long run', () => {
    const size = entry(1, 'same').payload.length;
    const tail = new CommittedTail(size * 10);
    for (let i = 1; i <= 50_000; i++) tail.append([entry(i, 'same')]);
    expect([tail.firstIndex, tail.lastIndex]).toEqual([49_991, 50_000]);
    expect(indexes(tail, 49_995, 50_000)).toEqual([49_995, 49_996, 49_997, 49_998, 49_999, 50_000]);
  });
});
