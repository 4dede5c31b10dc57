import type { BrokerRecord, BrokerState } from './model.js';

/**
 * The coordinator leader's view of which brokers are alive, from their heartbeats. Pure: the
 * caller passes monotonic time and proposes the verdicts as `setBrokerState` commands, so the
 * metadata (replicated, durable) stays the one place that says "down".
 *
 * A broker is judged down when no heartbeat arrived for `downAfterMs`, and up again on its next
 * heartbeat. Heartbeats are kept only in memory, so a coordinator that has just become leader
 * knows nothing yet: it judges nobody down until it has led for `downAfterMs` (otherwise every
 * broker would look dead to a fresh leader). Down only stops new placements on the broker; its
 * shards keep working through Raft.
 */

export interface FailureDetectorOptions {
  /** Silence after which a broker is down; several heartbeat periods. */
  readonly downAfterMs: number;
}

export interface Verdict {
  readonly id: number;
  readonly state: BrokerState;
}

export class FailureDetector {
  private readonly lastHeardMs = new Map<number, number>();
  private leaderSinceMs: number | undefined;

  constructor(private readonly options: FailureDetectorOptions) {
    if (!(options.downAfterMs > 0)) throw new Error('downAfterMs must be positive');
  }

  heartbeat(brokerId: number, nowMs: number): void {
    const previous = this.lastHeardMs.get(brokerId);
    if (previous === undefined || nowMs > previous) this.lastHeardMs.set(brokerId, nowMs);
  }

  /** This coordinator became leader (call again after each election it wins). */
  becameLeader(nowMs: number): void {
    this.leaderSinceMs = nowMs;
    this.lastHeardMs.clear();
  }

  /** It lost leadership: it judges nothing until it leads again. */
  lostLeadership(): void {
    this.leaderSinceMs = undefined;
    this.lastHeardMs.clear();
  }

  /** The state changes to propose for `brokers` (as the metadata has them) at `nowMs`. */
  judge(brokers: Iterable<BrokerRecord>, nowMs: number): Verdict[] {
    const since = this.leaderSinceMs;
    if (since === undefined) return [];
    const verdicts: Verdict[] = [];
    for (const broker of brokers) {
      const heard = this.lastHeardMs.get(broker.id);
      const alive =
        heard !== undefined
          ? nowMs - heard < this.options.downAfterMs
          : // Never heard since this leadership began: give it the full period from then.
            nowMs - since < this.options.downAfterMs;
      if (broker.state === 'up' && !alive) verdicts.push({ id: broker.id, state: 'down' });
      if (broker.state === 'down' && heard !== undefined && alive) {
        verdicts.push({ id: broker.id, state: 'up' });
      }
    }
    return verdicts;
  }
}
