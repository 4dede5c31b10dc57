import { randomBytes } from 'node:crypto';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { FailureDetector } from './failure-detector.js';
import { DEFAULT_KEY_ROTATION_MS } from './iterator-keys.js';
import { leaderDuties } from './leader-duties.js';
import type { MetadataReplica } from './metadata-replica.js';
import type { ReplicaReports } from './replica-reports.js';

/**
 * The coordinator leader's periodic turn: it notices it leads (or no longer does), and proposes
 * what `leaderDuties` decides, one command after another. One turn at a time; a failed proposal is
 * logged and decided again on the next turn (every duty is recomputed from the applied state).
 */

export interface LeaderLoopOptions {
  readonly replica: MetadataReplica;
  readonly detector: FailureDetector;
  readonly reports: ReplicaReports;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly intervalMs: number;
  readonly keyRotationMs?: number;
}

export class LeaderLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private leading = false;

  constructor(private readonly options: LeaderLoopOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.turn().finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.running;
  }

  /** One turn (exposed for tests). */
  async turn(): Promise<void> {
    const { replica, detector, reports, clock } = this.options;
    const monotonicMs = clock.monotonicMs();
    if (!replica.isLeader) {
      if (this.leading) {
        this.leading = false;
        detector.lostLeadership();
        reports.clear();
      }
      return;
    }
    if (!this.leading) {
      this.leading = true;
      detector.becameLeader(monotonicMs);
      reports.clear();
    }
    const state = replica.state;
    const commands = leaderDuties({
      state,
      nowMs: clock.nowMs(),
      verdicts: detector.judge(state.brokers.values(), monotonicMs),
      keyRotationMs: this.options.keyRotationMs ?? DEFAULT_KEY_ROTATION_MS,
      newSecret: () => randomBytes(32),
      ledShards: reports.ledShards(monotonicMs),
    });
    for (const command of commands) {
      try {
        await replica.propose(command);
      } catch (error) {
        this.options.logger.warn({ err: error, command: command.type }, 'leader duty failed');
        return;
      }
    }
  }
}
