import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { ShardThroughputLimits } from '../common/limits.js';
import type { MetadataChange, MetadataCommand } from '../coordinator/metadata-machine.js';
import type { MetadataState, StreamRecord } from '../coordinator/model.js';
import type { ReplicaManager } from './replica-manager.js';
import { ShardQuota } from './shard-quota.js';
import { StreamDirectory } from './stream-directory.js';

/** What the broker needs from the metadata owner (the coordinator; in `rheos dev`, in-process). */
export interface MetadataSource {
  readonly state: MetadataState;
  onChange(
    listener: (changes: readonly MetadataChange[], state: MetadataState) => void,
  ): () => void;
  propose(command: MetadataCommand): Promise<readonly MetadataChange[]>;
}

export interface BrokerOptions {
  readonly metadata: MetadataSource;
  readonly replicas: ReplicaManager;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often retention trimming runs; 0 disables the timer (tests call trimExpired). */
  readonly retentionCheckIntervalMs?: number;
}

/**
 * Hosts the replicas that metadata assigns to it and keeps them in line with it: opens the shards
 * of new streams (then marks them ACTIVE), deletes the data of deleted streams, trims retention.
 */
export class Broker {
  private directoryCache: StreamDirectory;
  private readonly quotas = new Map<number, ShardQuota>();
  private readonly reconciling = new Map<string, Promise<void>>();
  private unsubscribe: (() => void) | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: BrokerOptions) {
    this.directoryCache = new StreamDirectory(options.metadata.state);
  }

  get replicas(): ReplicaManager {
    return this.options.replicas;
  }

  directory(): StreamDirectory {
    const state = this.options.metadata.state;
    if (this.directoryCache.state !== state) this.directoryCache = new StreamDirectory(state);
    return this.directoryCache;
  }

  quota(shard: number, limits: ShardThroughputLimits): ShardQuota {
    let quota = this.quotas.get(shard);
    if (quota === undefined || quota.limits !== limits) {
      quota = new ShardQuota(limits, this.options.clock);
      this.quotas.set(shard, quota);
    }
    return quota;
  }

  async start(): Promise<void> {
    this.unsubscribe = this.options.metadata.onChange((changes) => {
      for (const change of changes) {
        if (change.kind === 'stream' && change.value !== undefined)
          this.schedule(change.value.name);
      }
    });
    const streams = [...this.options.metadata.state.streams.keys()];
    await Promise.all(streams.map((name) => this.schedule(name)));
    const intervalMs = this.options.retentionCheckIntervalMs ?? 60_000;
    if (intervalMs > 0) {
      this.retentionTimer = setInterval(() => void this.trimExpired(), intervalMs);
      this.retentionTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.retentionTimer !== undefined) clearInterval(this.retentionTimer);
    await Promise.allSettled(this.reconciling.values());
    await this.options.replicas.closeAll();
  }

  trimExpired(): Promise<number> {
    return this.options.replicas.trimExpired(this.directory());
  }

  /** Reconciles one stream after any reconciliation of it already running. */
  private schedule(name: string): Promise<void> {
    const previous = this.reconciling.get(name) ?? Promise.resolve();
    const next = previous
      .then(() => this.reconcile(name))
      .catch((error: unknown) => {
        this.options.logger.error({ err: error, stream: name }, 'reconciling stream failed');
      })
      .finally(() => {
        if (this.reconciling.get(name) === next) this.reconciling.delete(name);
      });
    this.reconciling.set(name, next);
    return next;
  }

  private async reconcile(name: string): Promise<void> {
    if (this.stopped) return;
    const stream = this.options.metadata.state.streams.get(name);
    if (stream === undefined) return;
    switch (stream.status) {
      case 'CREATING':
        await this.openShards(stream);
        await this.options.metadata.propose({
          type: 'setStreamStatus',
          name,
          incarnation: stream.incarnation,
          status: 'ACTIVE',
        });
        return;
      case 'ACTIVE':
      case 'UPDATING':
        await this.openShards(stream);
        return;
      case 'DELETING':
        for (const shard of stream.shards) {
          await this.options.replicas.destroy(shard.incarnation);
          this.quotas.delete(shard.incarnation);
        }
        await this.options.metadata.propose({
          type: 'removeStream',
          name,
          incarnation: stream.incarnation,
        });
        return;
    }
  }

  private async openShards(stream: StreamRecord): Promise<void> {
    for (const shard of stream.shards) {
      if (this.options.replicas.hosts(shard)) await this.options.replicas.open(shard);
    }
  }
}
