import type { Clock } from './clock.js';

/**
 * A token bucket refilled continuously at `ratePerSecond` up to `capacity`. A rate of 0 means
 * unlimited. `take` consumes only if enough tokens are there; `takeWithDebt` always consumes and
 * may leave the bucket negative (down to -maxDebt), which is how a large read throttles the calls
 * that follow it rather than itself.
 */
export class TokenBucket {
  private tokens: number;
  private lastRefillMs: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly capacity: number,
    private readonly clock: Clock,
    private readonly maxDebt = 0,
  ) {
    this.tokens = capacity;
    this.lastRefillMs = clock.monotonicMs();
  }

  get unlimited(): boolean {
    return this.ratePerSecond === 0;
  }

  available(): number {
    if (this.unlimited) return Number.POSITIVE_INFINITY;
    this.refill();
    return this.tokens;
  }

  canTake(amount: number): boolean {
    return this.unlimited || this.available() >= amount;
  }

  take(amount: number): boolean {
    if (!this.canTake(amount)) return false;
    if (!this.unlimited) this.tokens -= amount;
    return true;
  }

  takeWithDebt(amount: number): void {
    if (this.unlimited) return;
    this.refill();
    this.tokens = Math.max(-this.maxDebt, this.tokens - amount);
  }

  private refill(): void {
    const now = this.clock.monotonicMs();
    const elapsedMs = now - this.lastRefillMs;
    if (elapsedMs > 0) {
      this.tokens = Math.min(this.capacity, this.tokens + (elapsedMs * this.ratePerSecond) / 1000);
      this.lastRefillMs = now;
    }
  }
}
