import { describe, expect, it } from 'vitest';
import { ShardQuota } from '../../src/broker/shard-quota.js';
import { ManualClock } from '../../src/common/clock.js';
import {
  DEFAULT_SHARD_LIMITS,
  GET_RECORDS_MAX_SIZE_BYTES,
  RECORD_MAX_SIZE_BYTES,
  UNLIMITED_SHARD_LIMITS,
  type ShardThroughputLimits,
} from '../../src/common/limits.js';

const KiB = 1024;
const MiB = 1024 * 1024;

function quota(overrides: Partial<ShardThroughputLimits> = {}): {
  clock: ManualClock;
  q: ShardQuota;
} {
  const clock = new ManualClock();
  return { clock, q: new ShardQuota({ ...DEFAULT_SHARD_LIMITS, ...overrides }, clock) };
}

/** How many calls of fn succeed before the first failure (bounded, so a bug cannot hang). */
function countPasses(fn: () => boolean, bound = 1_000_000): number {
  let n = 0;
  while (n < bound && fn()) n++;
  return n;
}

describe('default limits', () => {
  it('are the Kinesis per-shard limits', () => {
    expect(DEFAULT_SHARD_LIMITS).toEqual({
      writeBytesPerSecond: MiB,
      writeRecordsPerSecond: 1000,
      readCallsPerSecond: 5,
      readBytesPerSecond: 2 * MiB,
    });
  });
});

describe('write records limit (1000 records/s)', () => {
  it('admits 1000 single records, refuses the 1001st, and one more 1 ms later', () => {
    const { clock, q } = quota();
    for (let i = 0; i < 1000; i++) expect(q.tryWrite(1), `record ${i}`).toBe(true);
    expect(q.tryWrite(1)).toBe(false);
    clock.advance(1);
    expect(q.tryWrite(1)).toBe(true);
    expect(q.tryWrite(1)).toBe(false);
  });

  it('sustains exactly the rate over time', () => {
    const { clock, q } = quota();
    expect(countPasses(() => q.tryWrite(1))).toBe(1000);
    clock.advance(500);
    expect(countPasses(() => q.tryWrite(1))).toBe(500);
    clock.advance(10_000);
    // The bucket holds one second's worth, not ten.
    expect(countPasses(() => q.tryWrite(1))).toBe(1000);
  });

  it('a write refused for lack of bytes is not charged a record', () => {
    const { clock, q } = quota({ writeRecordsPerSecond: 5 });
    expect(q.tryWrite(MiB)).toBe(true); // bytes now empty, 4 records left
    for (let i = 0; i < 20; i++) expect(q.tryWrite(1)).toBe(false);
    clock.advance(1); // +1048 bytes, +0.005 records
    expect(countPasses(() => q.tryWrite(1))).toBe(4);
  });

  it('a write refused for lack of records is not charged bytes', () => {
    const { clock, q } = quota();
    expect(countPasses(() => q.tryWrite(1))).toBe(1000); // 1000 bytes used
    for (let i = 0; i < 20; i++) expect(q.tryWrite(MiB - 1000)).toBe(false);
    clock.advance(1); // +1 record, bytes back to full
    expect(q.tryWrite(MiB)).toBe(true);
  });
});

describe('write bytes limit (1 MiB/s)', () => {
  it('admits 1 MiB of records, refuses the next byte, and about 1 KiB more 1 ms later', () => {
    const { clock, q } = quota({ writeRecordsPerSecond: 0 });
    for (let i = 0; i < 1024; i++) expect(q.tryWrite(KiB), `record ${i}`).toBe(true);
    expect(q.tryWrite(1)).toBe(false);
    clock.advance(1); // +1048.576 bytes
    expect(q.tryWrite(1048)).toBe(true);
    expect(q.tryWrite(1)).toBe(false);
  });

  it('a record larger than what is left is refused even if a smaller one would pass', () => {
    const { q } = quota({ writeRecordsPerSecond: 0 });
    expect(q.tryWrite(MiB - 100)).toBe(true);
    expect(q.tryWrite(101)).toBe(false);
    expect(q.tryWrite(100)).toBe(true);
  });

  it('a maximum-size record passes on a fresh shard at the default rate', () => {
    const { q } = quota();
    expect(RECORD_MAX_SIZE_BYTES).toBe(MiB);
    expect(q.tryWrite(RECORD_MAX_SIZE_BYTES)).toBe(true);
    expect(q.tryWrite(1)).toBe(false);
  });

  it('a maximum-size record passes eventually even with a tiny byte rate', () => {
    const { clock, q } = quota({ writeBytesPerSecond: 1 });
    expect(q.tryWrite(RECORD_MAX_SIZE_BYTES)).toBe(true);
    expect(q.tryWrite(RECORD_MAX_SIZE_BYTES)).toBe(false);
    // At 1 byte/s, refilling 1 MiB takes 1,048,576 s.
    clock.advance(RECORD_MAX_SIZE_BYTES * 1000 - 1);
    expect(q.tryWrite(RECORD_MAX_SIZE_BYTES)).toBe(false);
    clock.advance(1);
    expect(q.tryWrite(RECORD_MAX_SIZE_BYTES)).toBe(true);
  });

  it('a tiny byte rate still throttles small records at that rate once the burst is spent', () => {
    const { clock, q } = quota({ writeBytesPerSecond: 100, writeRecordsPerSecond: 0 });
    expect(q.tryWrite(MiB)).toBe(true);
    clock.advance(1000);
    expect(countPasses(() => q.tryWrite(10))).toBe(10);
  });
});

describe('read limits', () => {
  it('admits 5 calls per second', () => {
    const { clock, q } = quota();
    for (let i = 0; i < 5; i++) expect(q.tryStartRead(), `call ${i}`).toBe(true);
    expect(q.tryStartRead()).toBe(false);
    clock.advance(199);
    expect(q.tryStartRead()).toBe(false);
    clock.advance(1);
    expect(q.tryStartRead()).toBe(true);
    expect(q.tryStartRead()).toBe(false);
    clock.advance(60_000);
    expect(countPasses(() => q.tryStartRead())).toBe(5);
  });

  it('a small read leaves the next call free to start', () => {
    const { q } = quota();
    expect(q.tryStartRead()).toBe(true);
    q.chargeRead(MiB);
    expect(q.tryStartRead()).toBe(true);
  });

  it('a large read overdraws the byte bucket and blocks calls until the debt is repaid', () => {
    const { clock, q } = quota();
    expect(q.tryStartRead()).toBe(true);
    q.chargeRead(10 * MiB); // 2 MiB in the bucket - 10 MiB = 8 MiB of debt, 4 s at 2 MiB/s
    expect(q.tryStartRead()).toBe(false);
    clock.advance(3999);
    expect(q.tryStartRead()).toBe(false);
    clock.advance(2);
    expect(q.tryStartRead()).toBe(true);
  });

  it('the debt is capped at one maximum GetRecords response', () => {
    expect(GET_RECORDS_MAX_SIZE_BYTES).toBe(10 * MiB);
    const { clock, q } = quota();
    expect(q.tryStartRead()).toBe(true);
    q.chargeRead(100 * MiB); // uncapped this would be 98 MiB of debt (49 s)
    clock.advance(4999); // 10 MiB of debt is repaid after 5 s at 2 MiB/s
    expect(q.tryStartRead()).toBe(false);
    clock.advance(2);
    expect(q.tryStartRead()).toBe(true);
  });

  it('debts from several reads add up, but only to the cap', () => {
    const { clock, q } = quota();
    q.chargeRead(8 * MiB); // -6 MiB
    q.chargeRead(8 * MiB); // -14 MiB, capped at -10 MiB
    clock.advance(4999);
    expect(q.tryStartRead()).toBe(false);
    clock.advance(2);
    expect(q.tryStartRead()).toBe(true);
  });

  it('a call refused for byte debt is not charged against the call rate', () => {
    const { clock, q } = quota({ readBytesPerSecond: 1000 });
    q.chargeRead(1001); // 1 byte of debt, repaid in 1 ms
    for (let i = 0; i < 20; i++) expect(q.tryStartRead()).toBe(false);
    clock.advance(2);
    expect(countPasses(() => q.tryStartRead())).toBe(5);
  });

  it('byte debt throttles even when the call rate is unlimited', () => {
    const { clock, q } = quota({ readCallsPerSecond: 0 });
    expect(countPasses(() => q.tryStartRead(), 10_000)).toBe(10_000);
    q.chargeRead(4 * MiB); // 2 MiB of debt, 1 s
    expect(q.tryStartRead()).toBe(false);
    clock.advance(1001);
    expect(q.tryStartRead()).toBe(true);
  });
});

describe('limits of 0 are unlimited', () => {
  it('every limit at 0 admits everything', () => {
    const clock = new ManualClock();
    const q = new ShardQuota(UNLIMITED_SHARD_LIMITS, clock);
    for (let i = 0; i < 10_000; i++) expect(q.tryWrite(RECORD_MAX_SIZE_BYTES)).toBe(true);
    for (let i = 0; i < 10_000; i++) {
      expect(q.tryStartRead()).toBe(true);
      q.chargeRead(GET_RECORDS_MAX_SIZE_BYTES);
    }
  });

  it('write records at 0: only bytes limit writes', () => {
    const { q } = quota({ writeRecordsPerSecond: 0 });
    expect(countPasses(() => q.tryWrite(1), 2_000_000)).toBe(MiB);
  });

  it('write bytes at 0: only the record count limits writes, whatever their size', () => {
    const { q } = quota({ writeBytesPerSecond: 0 });
    expect(countPasses(() => q.tryWrite(RECORD_MAX_SIZE_BYTES))).toBe(1000);
  });

  it('read calls at 0: only byte debt limits reads', () => {
    const { q } = quota({ readCallsPerSecond: 0 });
    expect(countPasses(() => q.tryStartRead(), 100_000)).toBe(100_000);
  });

  it('read bytes at 0: large reads never throttle the next call', () => {
    const { clock, q } = quota({ readBytesPerSecond: 0 });
    for (let second = 0; second < 3; second++) {
      for (let i = 0; i < 5; i++) {
        expect(q.tryStartRead()).toBe(true);
        q.chargeRead(GET_RECORDS_MAX_SIZE_BYTES);
      }
      expect(q.tryStartRead()).toBe(false); // the call rate still applies
      clock.advance(1000);
    }
  });
});
