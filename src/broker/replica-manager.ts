import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { GroupCommitWriter } from '../storage/group-commit.js';
import type { KvStore } from '../storage/kv-store.js';
import { ShardLog } from '../storage/shard-log.js';
import type { ShardReplica } from './replica.js';
import { SingleNodeReplica } from './single-node-replica.js';
import type { StreamDirectory } from './stream-directory.js';

const HOUR_MS = 60 * 60 * 1000;

export interface ReplicaManagerOptions {
  readonly kv: KvStore;
  readonly writer: GroupCommitWriter;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** The shard replicas hosted by this broker, by shard incarnation. */
export class ReplicaManager {
  private readonly replicas = new Map<number, ShardReplica>();
  private readonly opening = new Map<number, Promise<ShardReplica>>();

  constructor(private readonly options: ReplicaManagerOptions) {}

  get(shard: number): ShardReplica | undefined {
    return this.replicas.get(shard);
  }

  get size(): number {
    return this.replicas.size;
  }

  /** Opens (recovering from disk) the replica of a shard, once, however many callers ask. */
  open(shard: number): Promise<ShardReplica> {
    const existing = this.replicas.get(shard);
    if (existing !== undefined) return Promise.resolve(existing);
    let pending = this.opening.get(shard);
    if (pending === undefined) {
      const { kv, writer, clock } = this.options;
      pending = SingleNodeReplica.open({ shard, log: new ShardLog(kv, shard), writer, clock }).then(
        (replica) => {
          this.replicas.set(shard, replica);
          this.opening.delete(shard);
          return replica;
        },
        (error: unknown) => {
          this.opening.delete(shard);
          throw error;
        },
      );
      this.opening.set(shard, pending);
    }
    return pending;
  }

  /** Deletes a shard's replica and all its data. Safe to repeat. */
  async destroy(shard: number): Promise<void> {
    await this.opening.get(shard)?.catch(() => undefined);
    const replica = this.replicas.get(shard);
    this.replicas.delete(shard);
    if (replica !== undefined) await replica.destroy();
    else await new ShardLog(this.options.kv, shard).destroy();
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled(this.opening.values());
    for (const replica of this.replicas.values()) await replica.close();
    this.replicas.clear();
  }

  /** One retention pass: trims every hosted shard to its stream's retention period. */
  async trimExpired(directory: StreamDirectory): Promise<number> {
    const nowMs = this.options.clock.nowMs();
    let trimmed = 0;
    for (const [shard, replica] of this.replicas) {
      const location = directory.shardByIncarnation(shard);
      if (location === undefined) continue;
      const cutoffMs = nowMs - location.stream.retentionHours * HOUR_MS;
      try {
        trimmed += await replica.trimArrivedBefore(cutoffMs);
      } catch (error) {
        this.options.logger.error({ err: error, shard }, 'retention trim failed');
      }
    }
    return trimmed;
  }
}
