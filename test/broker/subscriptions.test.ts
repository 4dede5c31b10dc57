import { describe, expect, it } from 'vitest';
import { SubscriptionRegistry } from '../../src/broker/subscriptions.js';
import { ManualClock } from '../../src/common/clock.js';
import { LimitExceededError, ResourceInUseError } from '../../src/common/errors.js';

/**
 * SubscribeToShard's rules on one broker: 5-minute subscriptions, a repeat within 5 seconds
 * refused and one after that taking over, bounded, all on a manual clock.
 */

const ARN = 'arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/app:1';
const SHARD = 'shardId-000000000000';

describe('SubscriptionRegistry', () => {
  it('refuses a repeat within 5 seconds, and lets one after that take over', () => {
    const clock = new ManualClock(1_000_000);
    const registry = new SubscriptionRegistry(clock);
    const first = registry.subscribe(ARN, SHARD);
    expect(first.endsAtMs).toBe(1_000_000 + 300_000);
    clock.advance(4_999);
    expect(() => registry.subscribe(ARN, SHARD)).toThrow(ResourceInUseError);
    expect(first.signal.aborted).toBe(false);
    clock.advance(1);
    const second = registry.subscribe(ARN, SHARD);
    expect(first.signal.aborted).toBe(true);
    expect(first.signal.reason).toBe('taken over');
    expect(second.signal.aborted).toBe(false);
    expect(registry.open).toBe(1);
    // Closing the one taken over does not end its successor.
    first.close();
    expect(second.signal.aborted).toBe(false);
  });

  it('counts the 5 seconds from the last start, even once that subscription closed', () => {
    const clock = new ManualClock(0);
    const registry = new SubscriptionRegistry(clock);
    registry.subscribe(ARN, SHARD).close();
    clock.advance(1_000);
    expect(() => registry.subscribe(ARN, SHARD)).toThrow(/less than 5 seconds ago/);
    // Other shards and other consumers are other slots.
    registry.subscribe(ARN, 'shardId-000000000001');
    registry.subscribe(ARN.replace('app', 'other'), SHARD);
    clock.advance(4_000);
    registry.sweep();
    expect(registry.subscribe(ARN, SHARD).signal.aborted).toBe(false);
  });

  it('ends a subscription when its lifetime is over, at the first sweep after it', () => {
    const clock = new ManualClock(0);
    const registry = new SubscriptionRegistry(clock);
    const sub = registry.subscribe(ARN, SHARD);
    clock.advance(299_999);
    registry.sweep();
    expect(sub.signal.aborted).toBe(false);
    clock.advance(1);
    registry.sweep();
    expect(sub.signal.aborted).toBe(true);
    expect(sub.signal.reason).toBe('expired');
    expect(registry.open).toBe(0);
  });

  it('holds at most maxOpen subscriptions, and ends them all on closeAll', () => {
    const clock = new ManualClock(0);
    const registry = new SubscriptionRegistry(clock, {
      lifetimeMs: 300_000,
      takeoverAfterMs: 5_000,
      maxOpen: 2,
    });
    const a = registry.subscribe(ARN, 'a');
    const b = registry.subscribe(ARN, 'b');
    expect(() => registry.subscribe(ARN, 'c')).toThrow(LimitExceededError);
    a.close();
    const c = registry.subscribe(ARN, 'c');
    registry.closeAll();
    expect([a, b, c].map((s) => s.signal.aborted)).toEqual([true, true, true]);
    expect(b.signal.reason).toBe('closed');
    expect(registry.open).toBe(0);
  });
});
