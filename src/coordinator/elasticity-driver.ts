import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { MoveState, type MoveReplicaResponse } from '../gen/rheos/v1/cluster.js';
import type { MetadataCommand } from './metadata-machine.js';
import { leaderBalanceWanted } from './metadata-machine.js';
import { takesReplicas, type MetadataState, type ShardRecord } from './model.js';
import type { OnDemandScaler } from './on-demand.js';
import { planMoves, type RebalanceOptions } from './rebalance.js';
import { movesInFlight, type MoveRef } from './replica-moves.js';

/**
 * The coordinator leader's elasticity loop. Each turn it takes every move in flight one step
 * further on the shard's leader (MoveReplica), records the moves that are done (or given up:
 * their target went down or is draining), starts the moves `planMoves` asks for, and once nothing
 * moves, spreads preferred leaders evenly again (brokers hand leadership over by Raft leadership
 * transfer). It also starts the splits and merges on-demand scaling decides from the leaders'
 * write rates. Every step is idempotent and recomputed from the metadata, so a new coordinator
 * leader carries on where the last one stopped. One turn at a time.
 */

export interface ElasticityDriverOptions extends RebalanceOptions {
  readonly state: () => MetadataState;
  readonly propose: (command: MetadataCommand) => Promise<unknown>;
  readonly isLeader: () => boolean;
  readonly moveReplica: (
    shard: ShardRecord,
    from: number,
    to: number,
    abort: boolean,
  ) => Promise<MoveReplicaResponse>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly intervalMs: number;
  /** On-demand scaling of ON_DEMAND streams, from the write rates shard leaders report. */
  readonly onDemand?: {
    readonly scaler: OnDemandScaler;
    readonly writeRates: () => ReadonlyMap<number, number>;
  };
}

export const DEFAULT_REBALANCE: RebalanceOptions = {
  maxConcurrentMoves: 2,
  // As Redpanda's node_unavailable_timeout: a restart or an upgrade does not start a copy.
  replaceDownAfterMs: 10 * 60_000,
};

export class ElasticityDriver {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly steps = new Map<number, string>();

  constructor(private readonly options: ElasticityDriverOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.stopped) return;
      this.running ??= this.turn().finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.running;
  }

  /** The last step seen of each move in flight, by shard incarnation (for DescribeCluster). */
  moveSteps(): ReadonlyMap<number, string> {
    return this.steps;
  }

  /** One turn (exposed for tests). */
  async turn(): Promise<void> {
    const { options } = this;
    if (!options.isLeader()) return;
    const inFlight = movesInFlight(options.state());
    for (const key of this.steps.keys()) {
      if (!inFlight.some((m) => m.shard.incarnation === key)) this.steps.delete(key);
    }
    await Promise.all(inFlight.map((m) => this.advance(m)));
    if (this.stopped || !options.isLeader()) return;
    const nowMs = options.clock.nowMs();
    for (const move of planMoves(options.state(), nowMs, options)) {
      try {
        await options.propose({ type: 'startMove', ...move, nowMs });
        options.logger.info(move, 'replica move started');
      } catch (error) {
        options.logger.warn({ err: error, move }, 'starting a replica move failed');
      }
    }
    if (options.onDemand !== undefined) {
      const { scaler, writeRates } = options.onDemand;
      for (const command of scaler.decide(options.state(), writeRates(), nowMs)) {
        try {
          await options.propose(command);
          options.logger.info(command, 'on-demand reshard started');
        } catch (error) {
          options.logger.warn({ err: error }, 'starting an on-demand reshard failed');
        }
      }
    }
    const state = options.state();
    if (movesInFlight(state).length === 0 && leaderBalanceWanted(state)) {
      await options.propose({ type: 'balanceLeaders' }).catch((error: unknown) => {
        options.logger.warn({ err: error }, 'balancing preferred leaders failed');
      });
    }
  }

  private async advance({
    stream,
    shard,
    move,
  }: ReturnType<typeof movesInFlight>[number]): Promise<void> {
    const { options } = this;
    const ref: MoveRef = {
      name: stream.name,
      incarnation: stream.incarnation,
      shardId: shard.shardId,
      from: move.from,
      to: move.to,
    };
    const target = options.state().brokers.get(move.to);
    // A target that went down or is draining is given up, and the planner picks another.
    const abort = target === undefined || !takesReplicas(target);
    try {
      const answer = await options.moveReplica(shard, move.from, move.to, abort);
      this.steps.set(shard.incarnation, (abort ? 'aborting: ' : '') + answer.detail);
      if (answer.state === MoveState.MOVE_STATE_DONE) {
        await options.propose({ type: 'finishMove', ...ref });
        options.logger.info(ref, 'replica move finished');
      } else if (answer.state === MoveState.MOVE_STATE_ABORTED) {
        await options.propose({ type: 'abortMove', ...ref });
        options.logger.info(ref, 'replica move given up');
      } else if (answer.state === MoveState.MOVE_STATE_REFUSED) {
        // The target cannot join this group: give the move up (it is recorded as retired).
        await options.propose({ type: 'abortMove', ...ref });
        options.logger.warn({ ...ref, why: answer.detail }, 'replica move refused');
      }
    } catch (error) {
      this.steps.set(shard.incarnation, `waiting: ${String(error)}`);
      options.logger.debug({ err: error, ...ref }, 'replica move step failed; retrying');
    }
  }
}
