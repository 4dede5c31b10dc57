import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { TokenBucket } from '../../src/common/token-bucket.js';

describe('TokenBucket', () => {
  it('starts full', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 10, clock);
    expect(bucket.available()).toBe(10);
    expect(bucket.unlimited).toBe(false);
  });

  it('take consumes while enough tokens are there, then refuses', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 10, clock);
    for (let i = 0; i < 10; i++) expect(bucket.take(1), `take ${i}`).toBe(true);
    expect(bucket.take(1)).toBe(false);
    expect(bucket.available()).toBe(0);
  });

  it('a refused take consumes nothing', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 10, clock);
    expect(bucket.take(7)).toBe(true);
    expect(bucket.take(4)).toBe(false);
    expect(bucket.take(4)).toBe(false);
    expect(bucket.available()).toBe(3);
    expect(bucket.take(3)).toBe(true);
  });

  it('canTake does not consume', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 10, clock);
    expect(bucket.canTake(10)).toBe(true);
    expect(bucket.canTake(10)).toBe(true);
    expect(bucket.canTake(11)).toBe(false);
    expect(bucket.available()).toBe(10);
  });

  it('refills continuously at the rate', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1000, 1000, clock);
    expect(bucket.take(1000)).toBe(true);
    clock.advance(1);
    expect(bucket.available()).toBe(1);
    clock.advance(249);
    expect(bucket.available()).toBe(250);
  });

  it('refill is capped at the capacity', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(100, 50, clock);
    expect(bucket.take(50)).toBe(true);
    clock.advance(60_000);
    expect(bucket.available()).toBe(50);
    expect(bucket.take(51)).toBe(false);
    expect(bucket.take(50)).toBe(true);
  });

  it('the capacity can differ from the rate', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1, 5, clock);
    expect(bucket.take(5)).toBe(true);
    clock.advance(999);
    expect(bucket.take(1)).toBe(false);
    clock.advance(1);
    expect(bucket.take(1)).toBe(true);
  });

  it('an amount above the capacity never passes', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 10, clock);
    clock.advance(1_000_000);
    expect(bucket.take(11)).toBe(false);
    expect(bucket.available()).toBe(10);
  });

  it('uses monotonic time: a wall-clock jump neither refills nor drains', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 10, clock);
    expect(bucket.take(10)).toBe(true);
    clock.setWallMs(clock.nowMs() + 3_600_000);
    expect(bucket.available()).toBe(0);
    clock.setWallMs(0);
    expect(bucket.available()).toBe(0);
    clock.advance(100);
    expect(bucket.available()).toBe(1);
  });

  it('without a debt allowance, takeWithDebt empties the bucket but never below zero', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 10, clock);
    bucket.takeWithDebt(25);
    expect(bucket.available()).toBeCloseTo(0, 9);
    expect(bucket.canTake(0.001)).toBe(false);
    clock.advance(100);
    expect(bucket.available()).toBe(1);
  });

  it('takeWithDebt overdraws down to -maxDebt, and the debt is paid back by refill', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 10, clock, 30);
    bucket.takeWithDebt(25);
    expect(bucket.available()).toBe(-15);
    expect(bucket.canTake(0)).toBe(false);
    bucket.takeWithDebt(100);
    expect(bucket.available()).toBe(-30);
    clock.advance(3000);
    expect(bucket.available()).toBe(0);
    clock.advance(100);
    expect(bucket.available()).toBe(1);
  });

  it('takeWithDebt counts the refill accrued before it', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 10, clock, 100);
    expect(bucket.take(10)).toBe(true);
    clock.advance(500); // +5
    bucket.takeWithDebt(8);
    expect(bucket.available()).toBe(-3);
  });

  describe('rate 0 (unlimited)', () => {
    it('always admits any amount and reports infinite tokens', () => {
      const clock = new ManualClock();
      const bucket = new TokenBucket(0, 0, clock, 10);
      expect(bucket.unlimited).toBe(true);
      expect(bucket.available()).toBe(Number.POSITIVE_INFINITY);
      for (let i = 0; i < 10_000; i++) expect(bucket.take(1_000_000)).toBe(true);
      bucket.takeWithDebt(1e12);
      expect(bucket.canTake(Number.MAX_SAFE_INTEGER)).toBe(true);
      expect(bucket.available()).toBe(Number.POSITIVE_INFINITY);
    });
  });
});
