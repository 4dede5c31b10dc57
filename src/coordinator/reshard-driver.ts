import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { MetadataCommand } from './metadata-machine.js';
import type { MetadataState, ShardRecord, StreamRecord } from './model.js';
import { expiredClosedShards } from './reshard.js';

/**
 * Carries out the reshard intents in the metadata, one step at a time: once a step's children can
 * take writes (each has a leader), every parent is sealed through its own Raft log and the seal
 * recorded; the machine opens the children and starts the next step. Every action is idempotent
 * (a sealed shard answers with its seal; a seal recorded twice is ignored), so a driver that takes
 * over on a new coordinator leader simply carries on. It also retires closed shards past their
 * retention. One turn at a time; a failure waits for the next turn.
 */

export interface ReshardDriverOptions {
  readonly state: () => MetadataState;
  readonly propose: (command: MetadataCommand) => Promise<unknown>;
  /** Only the metadata leader drives (the single node always). */
  readonly isLeader: () => boolean;
  /** Whether every child can take writes once opened: each has a leader. */
  readonly childrenReady: (children: readonly ShardRecord[]) => boolean;
  /** Commits a SEAL entry in the parent's log; resolves with its ending sequence number. */
  readonly seal: (parent: ShardRecord, children: readonly string[]) => Promise<string>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Between turns. */
  readonly intervalMs: number;
}

export class ReshardDriver {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly options: ReshardDriverOptions) {}

  start(): void {
    this.timer = setInterval(() => this.poke(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Runs a turn now (or right after the one running): the metadata changed. */
  poke(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.turn().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.poke();
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.running;
  }

  /** One turn (exposed for tests). */
  async turn(): Promise<void> {
    if (!this.options.isLeader()) return;
    const streams = [...this.options.state().streams.values()].sort(
      (a, b) => a.incarnation - b.incarnation,
    );
    for (const stream of streams) {
      if (this.stopped) return;
      if (stream.reshard !== undefined && stream.status === 'UPDATING') await this.advance(stream);
      await this.expire(stream.name);
    }
  }

  private async advance(stream: StreamRecord): Promise<void> {
    const intent = stream.reshard;
    if (intent === undefined) return;
    const byId = new Map(stream.shards.map((s) => [s.shardId, s]));
    const children = intent.children
      .map((id) => byId.get(id))
      .filter((s): s is ShardRecord => s !== undefined);
    // Sealing before the children can lead would leave the keys without a writable shard.
    if (children.length !== intent.children.length || !this.options.childrenReady(children)) return;
    // A merge's parents are sealed together: keys of the first one sealed wait for the child,
    // which opens only once the other is sealed too.
    const unsealed = intent.parents
      .map((id) => byId.get(id))
      .filter((p): p is ShardRecord => p !== undefined && p.endingSequenceNumber === undefined);
    const seals = await Promise.allSettled(
      unsealed.map((parent) => this.options.seal(parent, intent.children)),
    );
    for (const [i, parent] of unsealed.entries()) {
      const outcome = seals[i] as PromiseSettledResult<string>;
      try {
        if (outcome.status === 'rejected') throw outcome.reason;
        const endingSequenceNumber = outcome.value;
        await this.options.propose({
          type: 'recordSeal',
          name: stream.name,
          incarnation: stream.incarnation,
          shardId: parent.shardId,
          endingSequenceNumber,
          nowMs: this.options.clock.nowMs(),
        });
        this.options.logger.info(
          {
            stream: stream.name,
            shard: parent.shardId,
            children: intent.children,
            endingSequenceNumber,
          },
          'shard sealed',
        );
      } catch (error) {
        this.options.logger.warn(
          { err: error, stream: stream.name, shard: parent.shardId },
          'sealing a shard failed; retrying on the next turn',
        );
        return;
      }
    }
  }

  private async expire(name: string): Promise<void> {
    const stream = this.options.state().streams.get(name);
    if (stream === undefined) return;
    if (expiredClosedShards(stream, this.options.clock.nowMs()).length === 0) return;
    try {
      await this.options.propose({
        type: 'expireClosedShards',
        name,
        incarnation: stream.incarnation,
        nowMs: this.options.clock.nowMs(),
      });
    } catch (error) {
      this.options.logger.warn({ err: error, stream: name }, 'retiring expired shards failed');
    }
  }
}
