import { LimitExceededError, ServiceUnavailableError } from '../common/errors.js';

/**
 * Wakes readers waiting for a shard's log to become readable past an index: what lets a push
 * consumer (SubscribeToShard) send a record as soon as it commits, without polling storage. The
 * replica calls `advance` whenever its readable index moves; waiters resolve (never reject) when
 * the index passes theirs, when they give up (their signal aborts), or when the replica closes
 * (a wait begun after that is refused with ServiceUnavailableException).
 * Bounded: beyond `maxWaiters` a new wait is refused, so a flood of subscribers cannot grow it
 * without limit.
 */
export class ReadableSignal {
  private readonly waiters = new Set<Waiter>();
  private closed = false;

  constructor(
    private readable: number,
    private readonly maxWaiters = 10_000,
  ) {}

  /** The highest readable index seen. */
  get index(): number {
    return this.readable;
  }

  get waiting(): number {
    return this.waiters.size;
  }

  advance(index: number): void {
    if (index <= this.readable) return;
    this.readable = index;
    for (const waiter of this.waiters) if (waiter.after < index) this.settle(waiter);
  }

  /** Resolves once an index above `after` is readable (or at once if one is). */
  wait(after: number, signal?: AbortSignal): Promise<void> {
    if (this.closed) {
      // Resolving would let a push reader spin on a replica that reads nothing new, ever.
      return Promise.reject(
        new ServiceUnavailableError('The shard replica closed here; subscribe again.'),
      );
    }
    if (this.readable > after || signal?.aborted === true) return Promise.resolve();
    if (this.waiters.size >= this.maxWaiters) {
      return Promise.reject(
        new LimitExceededError(
          `Too many readers are waiting on this shard (${this.maxWaiters}); try again later.`,
        ),
      );
    }
    return new Promise((resolve) => {
      const waiter: Waiter = { after, resolve, signal, onAbort: () => this.settle(waiter) };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** The replica is closing: every waiter resolves, and later waits are refused. */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters) this.settle(waiter);
  }

  private settle(waiter: Waiter): void {
    if (!this.waiters.delete(waiter)) return;
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    waiter.resolve();
  }
}

interface Waiter {
  readonly after: number;
  readonly resolve: () => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}
