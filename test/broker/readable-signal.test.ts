import { ServiceUnavailableError } from '../../src/common/errors.js';
import { describe, expect, it } from 'vitest';
import { ReadableSignal } from '../../src/broker/readable-signal.js';
import { LimitExceededError } from '../../src/common/errors.js';

/** The wake-up of push readers: on time, never early, bounded, and released on close or abort. */

/** Whether `promise` has settled once pending callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('ReadableSignal', () => {
  it('wakes a reader once an index above its own is readable, not before', async () => {
    const signal = new ReadableSignal(5);
    expect(await settled(signal.wait(4))).toBe(true);
    const waiting = signal.wait(5);
    expect(await settled(waiting)).toBe(false);
    signal.advance(5);
    expect(await settled(waiting)).toBe(false);
    signal.advance(6);
    expect(await settled(waiting)).toBe(true);
    expect(signal.waiting).toBe(0);
  });

  it('wakes only the readers an advance passes, and never goes back', async () => {
    const signal = new ReadableSignal(0);
    const low = signal.wait(1);
    const high = signal.wait(10);
    signal.advance(3);
    expect(await settled(low)).toBe(true);
    expect(await settled(high)).toBe(false);
    signal.advance(2);
    expect(signal.index).toBe(3);
    expect(signal.waiting).toBe(1);
  });

  it('lets a reader give up with its abort signal, and releases everyone on close', async () => {
    const signal = new ReadableSignal(0);
    const controller = new AbortController();
    const aborted = signal.wait(0, controller.signal);
    const other = signal.wait(0);
    controller.abort();
    expect(await settled(aborted)).toBe(true);
    expect(await settled(other)).toBe(false);
    signal.close();
    expect(await settled(other)).toBe(true);
    // A wait begun after the close is refused, so a push reader cannot spin on a closed replica.
    await expect(signal.wait(100)).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect(signal.wait(0, AbortSignal.abort())).rejects.toBeInstanceOf(
      ServiceUnavailableError,
    );
  });

  it('refuses waiters beyond its bound', async () => {
    const signal = new ReadableSignal(0, 2);
    void signal.wait(0);
    void signal.wait(0);
    await expect(signal.wait(0)).rejects.toBeInstanceOf(LimitExceededError);
    signal.advance(1);
    expect(signal.waiting).toBe(0);
    void signal.wait(1);
    expect(signal.waiting).toBe(1);
  });
});
