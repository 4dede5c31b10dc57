import type { Clock } from '../common/clock.js';
import type { NotLeaderError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { ShardRecord } from '../coordinator/model.js';
import type { ShardReplica } from './replica.js';
import type { StreamDirectory } from './stream-directory.js';

const HOUR_MS = 60 * 60 * 1000;

/** Opens shard replicas of one kind: the single-node replica, or a member of a Raft group. */
export interface ReplicaFactory {
  /** Whether this broker holds a replica of the shard. */
  hosts(shard: ShardRecord): boolean;
  /** Opens (recovering from disk) this broker's replica of the shard. */
  open(shard: ShardRecord): Promise<ShardReplica>;
  /**
   * The open replica is an earlier member of the shard's group than the metadata now places
   * here (this broker left the group and joined it again meanwhile): it must be replaced.
   */
  isStale?(replica: ShardReplica, shard: ShardRecord): boolean;
  /** Deletes the stored data of a shard whose replica is not open. */
  destroyClosed(shard: number): Promise<void>;
  /** Where to send a client asking for a shard this broker does not hold. */
  notHosted(shard: ShardRecord): NotLeaderError | undefined;
}

export interface ReplicaManagerOptions {
  readonly factory: ReplicaFactory;
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

  hosts(shard: ShardRecord): boolean {
    return this.options.factory.hosts(shard);
  }

  /** The open replica is an earlier member of the group than the metadata places here. */
  isStale(replica: ShardReplica, shard: ShardRecord): boolean {
    return this.options.factory.isStale?.(replica, shard) === true;
  }

  notHosted(shard: ShardRecord): NotLeaderError | undefined {
    return this.options.factory.notHosted(shard);
  }

  /**
   * Opens the replica of a shard as the current metadata places it: an open replica that is an
   * earlier member of the group is deleted first. Only for the newest metadata (reconciliation).
   */
  async openCurrent(shard: ShardRecord): Promise<ShardReplica> {
    await this.opening.get(shard.incarnation)?.catch(() => undefined);
    const existing = this.replicas.get(shard.incarnation);
    if (existing !== undefined && this.isStale(existing, shard)) {
      this.options.logger.info(
        { shard: shard.incarnation },
        'replacing an earlier replica of a group this broker joined again',
      );
      await this.destroy(shard.incarnation);
    }
    return this.open(shard);
  }

  /** Opens (recovering from disk) the replica of a shard, once, however many callers ask. */
  open(shard: ShardRecord): Promise<ShardReplica> {
    const key = shard.incarnation;
    const existing = this.replicas.get(key);
    if (existing !== undefined) return Promise.resolve(existing);
    let pending = this.opening.get(key);
    if (pending === undefined) {
      pending = this.options.factory.open(shard).then(
        (replica) => {
          this.replicas.set(key, replica);
          this.opening.delete(key);
          return replica;
        },
        (error: unknown) => {
          this.opening.delete(key);
          throw error;
        },
      );
      this.opening.set(key, pending);
    }
    return pending;
  }

  /** Deletes a shard's replica and all its data. Safe to repeat. */
  async destroy(shard: number): Promise<void> {
    await this.opening.get(shard)?.catch(() => undefined);
    const replica = this.replicas.get(shard);
    this.replicas.delete(shard);
    if (replica !== undefined) await replica.destroy();
    else await this.options.factory.destroyClosed(shard);
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
