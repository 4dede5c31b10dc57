import type { Clock } from '../common/clock.js';

/**
 * The coordinator leader's memory of which consumer-group workers are alive. Heartbeats are not
 * Raft writes: a worker sends one per interval for all its leases, and only the leader keeps when
 * it last heard each. A worker the leader has not heard since it took over counts from the
 * takeover, so a coordinator failover restarts every lease's timer rather than expiring them all
 * (and a leader that comes back after others led forgets what it heard before). Bounded: workers
 * silent for far longer than the failover time are forgotten, and each group tracks at most
 * `maxWorkersPerGroup`.
 */

export const DEFAULT_FAILOVER_MS = 10_000;
const FORGET_AFTER_FAILOVERS = 10;
const DEFAULT_MAX_WORKERS_PER_GROUP = 10_000;

export class GroupLiveness {
  private readonly heard = new Map<string, Map<string, number>>();
  private epoch: number | undefined;
  private epochStartMs = 0;

  constructor(
    private readonly clock: Clock,
    readonly failoverMs = DEFAULT_FAILOVER_MS,
    private readonly maxWorkersPerGroup = DEFAULT_MAX_WORKERS_PER_GROUP,
  ) {}

  /** Called before each use with the current leadership (a Raft term): a new one starts afresh. */
  lead(epoch: number): void {
    if (epoch === this.epoch) return;
    this.epoch = epoch;
    this.epochStartMs = this.clock.monotonicMs();
    this.heard.clear();
  }

  heartbeat(application: string, worker: string): void {
    const now = this.clock.monotonicMs();
    let workers = this.heard.get(application);
    if (workers === undefined) this.heard.set(application, (workers = new Map()));
    workers.delete(worker);
    workers.set(worker, now);
    // Oldest first (re-inserted on each heartbeat): forget the long silent, and the excess.
    for (const [id, lastMs] of workers) {
      if (now - lastMs <= this.failoverMs * FORGET_AFTER_FAILOVERS) break;
      workers.delete(id);
    }
    while (workers.size > this.maxWorkersPerGroup) {
      const oldest = workers.keys().next().value as string;
      workers.delete(oldest);
    }
  }

  /** Whether `worker` was silent for the failover time (counted from the takeover at most). */
  isExpired(application: string, worker: string): boolean {
    const last = this.heard.get(application)?.get(worker) ?? this.epochStartMs;
    return this.clock.monotonicMs() - Math.max(last, this.epochStartMs) >= this.failoverMs;
  }

  /** Workers heard within the failover time, sorted. */
  liveWorkers(application: string): string[] {
    const workers = this.heard.get(application);
    if (workers === undefined) return [];
    return [...workers.keys()].filter((w) => !this.isExpired(application, w)).sort();
  }

  forget(application: string): void {
    this.heard.delete(application);
  }
}
