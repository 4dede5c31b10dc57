import type { Clock } from '../common/clock.js';
import { LimitExceededError, ResourceInUseError } from '../common/errors.js';

/**
 * The SubscribeToShard rules of one broker, as Kinesis states them: a subscription lives for a
 * fixed time (5 minutes) and then ends, and the consumer subscribes again; a second subscribe for
 * the same consumer and shard within 5 seconds of the last successful one is refused
 * (ResourceInUseException), and one after that takes the subscription over (the older one ends).
 * Pure bookkeeping over an injected clock: the server loop watches each subscription's signal, and
 * the broker calls `sweep` now and then to end expired subscriptions and forget old starts.
 */

export interface SubscriptionLimits {
  readonly lifetimeMs: number;
  /** A repeat subscribe sooner than this after the last one is refused. */
  readonly takeoverAfterMs: number;
  /** Subscriptions open at once on the broker. */
  readonly maxOpen: number;
}

export const DEFAULT_SUBSCRIPTION_LIMITS: SubscriptionLimits = {
  lifetimeMs: 5 * 60_000,
  takeoverAfterMs: 5_000,
  maxOpen: 10_000,
};

export type SubscriptionEnd = 'expired' | 'taken over' | 'closed';

export interface Subscription {
  readonly consumerArn: string;
  readonly shardId: string;
  readonly startedMs: number;
  /** When it ends of itself (startedMs + lifetime). */
  readonly endsAtMs: number;
  /** Aborts when the subscription ends for any reason; `reason` is a SubscriptionEnd. */
  readonly signal: AbortSignal;
  /** The server's stream finished (the client went, or an error): frees the slot. */
  close(): void;
}

interface Slot {
  lastStartMs: number;
  open: { readonly subscription: Subscription; readonly controller: AbortController } | undefined;
}

export class SubscriptionRegistry {
  private readonly slots = new Map<string, Slot>();
  private openCount = 0;

  constructor(
    private readonly clock: Clock,
    private readonly limits: SubscriptionLimits = DEFAULT_SUBSCRIPTION_LIMITS,
  ) {}

  get open(): number {
    return this.openCount;
  }

  subscribe(consumerArn: string, shardId: string): Subscription {
    const nowMs = this.clock.nowMs();
    const key = `${consumerArn}\n${shardId}`;
    const slot = this.slots.get(key);
    if (slot !== undefined && nowMs - slot.lastStartMs < this.limits.takeoverAfterMs) {
      throw new ResourceInUseError(
        `Another subscription of consumer ${consumerArn} to shard ${shardId} started less than ${this.limits.takeoverAfterMs / 1000} seconds ago.`,
      );
    }
    if (slot?.open === undefined && this.openCount >= this.limits.maxOpen) {
      throw new LimitExceededError(
        `This broker serves ${this.limits.maxOpen} subscriptions already; try another time.`,
      );
    }
    if (slot?.open !== undefined) this.end(slot, 'taken over');
    const controller = new AbortController();
    const next: Slot = slot ?? { lastStartMs: nowMs, open: undefined };
    next.lastStartMs = nowMs;
    const subscription: Subscription = {
      consumerArn,
      shardId,
      startedMs: nowMs,
      endsAtMs: nowMs + this.limits.lifetimeMs,
      signal: controller.signal,
      close: () => {
        if (next.open?.subscription === subscription) this.end(next, 'closed');
      },
    };
    next.open = { subscription, controller };
    this.openCount++;
    this.slots.set(key, next);
    return subscription;
  }

  /** Ends subscriptions past their lifetime and forgets starts older than the takeover time. */
  sweep(): void {
    const nowMs = this.clock.nowMs();
    for (const [key, slot] of this.slots) {
      if (slot.open !== undefined && nowMs >= slot.open.subscription.endsAtMs) {
        this.end(slot, 'expired');
      }
      if (slot.open === undefined && nowMs - slot.lastStartMs >= this.limits.takeoverAfterMs) {
        this.slots.delete(key);
      }
    }
  }

  /** The broker is stopping: every subscription ends. */
  closeAll(): void {
    for (const slot of this.slots.values()) if (slot.open !== undefined) this.end(slot, 'closed');
    this.slots.clear();
  }

  private end(slot: Slot, why: SubscriptionEnd): void {
    const open = slot.open;
    if (open === undefined) return;
    slot.open = undefined;
    this.openCount--;
    open.controller.abort(why);
  }
}
