import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { UNLIMITED_SHARD_LIMITS, type ShardThroughputLimits } from '../common/limits.js';
import { consumersAfterTurn } from '../coordinator/consumers.js';
import type { MetadataChange, MetadataCommand } from '../coordinator/metadata-machine.js';
import type { MetadataState, StreamRecord } from '../coordinator/model.js';
import type { ReplicaManager } from './replica-manager.js';
import { ShardQuota } from './shard-quota.js';
import { StreamDirectory } from './stream-directory.js';

/**
 * What the broker needs from the metadata owner. In `rheos dev` it is in-process, and the broker
 * moves streams through their lifecycle itself (`propose`); a coordinated broker only follows a
 * copy of the coordinator's metadata (no `propose`), and may `refresh` it on demand.
 */
export interface MetadataSource {
  readonly state: MetadataState;
  onChange(
    listener: (changes: readonly MetadataChange[], state: MetadataState) => void,
  ): () => void;
  propose?(command: MetadataCommand): Promise<readonly MetadataChange[]>;
  refresh?(): Promise<void>;
}

export interface BrokerOptions {
  readonly metadata: MetadataSource;
  readonly replicas: ReplicaManager;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often retention trimming runs; 0 disables the timer (tests call trimExpired). */
  readonly retentionCheckIntervalMs?: number;
  /**
   * The groups stored on this broker's disk. When given, the broker deletes every replica the
   * metadata no longer places here (a deleted stream's, or one left by a crash mid-delete).
   */
  readonly storedGroups?: () => Promise<number[]>;
  /**
   * false (`--limits off`): no shard is throttled here, whatever limits its stream stores; they
   * apply again once the broker runs with them on. Default true.
   */
  readonly enforceShardLimits?: boolean;
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
  /** Shard incarnations of each stream as last reconciled, to notice shards that left it. */
  private readonly reconciledShards = new Map<string, ReadonlySet<number>>();
  private sweeping: Promise<void> = Promise.resolve();
  private cutOff = false;

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

  /**
   * A stream by name. One this broker's copy of the metadata lacks, or holds in a state that
   * `usable` refuses (CREATING, when the coordinator already says ACTIVE), is looked for again in
   * the newest metadata before the caller is told so: clients may learn of a change from the
   * coordinator before this broker's next heartbeat brings it.
   */
  async findStream(
    name: string,
    usable: (stream: StreamRecord) => boolean = () => true,
  ): Promise<StreamRecord | undefined> {
    const known = this.directory().stream(name);
    if (known !== undefined && usable(known)) return known;
    return (await this.refreshMetadata()) ? this.directory().stream(name) : known;
  }

  /** Fetches the newest metadata, where it comes from elsewhere; whether it could. */
  async refreshMetadata(): Promise<boolean> {
    if (this.options.metadata.refresh === undefined) return false;
    try {
      await this.options.metadata.refresh();
      this.cutOff = false;
      return true;
    } catch (error) {
      if (!this.cutOff) this.options.logger.warn({ err: error }, 'metadata refresh failed');
      this.cutOff = true;
      return false;
    }
  }

  /**
   * The last look at the newest metadata failed: this broker's copy may be behind (a stream it
   * holds as CREATING may be ACTIVE), and it cannot know.
   */
  get metadataUnreachable(): boolean {
    return this.cutOff;
  }

  quota(shard: number, streamLimits: ShardThroughputLimits): ShardQuota {
    // One shared limits object when off: the broker keeps a shard's quota while it stays the same.
    const limits =
      this.options.enforceShardLimits === false ? UNLIMITED_SHARD_LIMITS : streamLimits;
    let quota = this.quotas.get(shard);
    if (quota === undefined || quota.limits !== limits) {
      quota = new ShardQuota(limits, this.options.clock);
      this.quotas.set(shard, quota);
    }
    return quota;
  }

  async start(): Promise<void> {
    this.unsubscribe = this.options.metadata.onChange((changes) => {
      let removed = false;
      for (const change of changes) {
        if (change.kind !== 'stream') continue;
        if (change.value !== undefined) this.schedule(change.value.name);
        else removed = true;
      }
      if (removed) void this.sweep();
    });
    const streams = [...this.options.metadata.state.streams.keys()];
    await Promise.all(streams.map((name) => this.schedule(name)));
    await this.sweep();
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
    await this.sweeping;
    await this.options.replicas.closeAll();
  }

  trimExpired(): Promise<number> {
    return this.options.replicas.trimExpired(this.directory());
  }

  /**
   * Deletes the replicas stored here that the metadata does not place here. Only shards the
   * metadata has already numbered are considered (a replica is never created ahead of the
   * metadata that names it, and incarnations are never reused), so a stale copy cannot delete a
   * shard it has not heard of.
   */
  private sweep(): Promise<void> {
    const stored = this.options.storedGroups;
    if (stored === undefined || this.stopped) return Promise.resolve();
    const run = this.sweeping.then(async () => {
      const state = this.options.metadata.state;
      const placed = new Set<number>();
      for (const stream of state.streams.values()) {
        if (stream.status === 'DELETING') continue;
        for (const shard of stream.shards)
          if (this.replicas.hosts(shard)) placed.add(shard.incarnation);
      }
      for (const group of await stored()) {
        if (this.stopped) return;
        if (group === 0 || group >= state.counters.nextShardIncarnation || placed.has(group))
          continue;
        this.options.logger.info({ shard: group }, 'deleting a replica no longer placed here');
        await this.options.replicas.destroy(group);
        this.quotas.delete(group);
      }
    });
    this.sweeping = run.catch((error: unknown) => {
      this.options.logger.error({ err: error }, 'deleting unplaced replicas failed');
    });
    return this.sweeping;
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
        await this.options.metadata.propose?.({
          type: 'setStreamStatus',
          name,
          incarnation: stream.incarnation,
          status: 'ACTIVE',
        });
        return;
      case 'ACTIVE':
      case 'UPDATING':
        await this.openShards(stream);
        await this.dropRetiredShards(stream);
        await this.dropMovedAway(stream);
        // The single node carries its consumers' lifecycle itself (a cluster's coordinator
        // leader does it in its duties; a broker there has no propose).
        if (consumersAfterTurn(stream) !== undefined) {
          await this.options.metadata.propose?.({
            type: 'consumerTurn',
            name,
            incarnation: stream.incarnation,
          });
        }
        return;
      case 'DELETING':
        for (const shard of stream.shards) {
          await this.options.replicas.destroy(shard.incarnation);
          this.quotas.delete(shard.incarnation);
        }
        await this.options.metadata.propose?.({
          type: 'removeStream',
          name,
          incarnation: stream.incarnation,
        });
        return;
    }
  }

  /** Closed shards past their retention left the stream: their replicas here go too. */
  private async dropRetiredShards(stream: StreamRecord): Promise<void> {
    const now = new Set(stream.shards.map((s) => s.incarnation));
    const before = this.reconciledShards.get(stream.name);
    this.reconciledShards.set(stream.name, now);
    for (const incarnation of before ?? []) {
      if (now.has(incarnation) || this.options.replicas.get(incarnation) === undefined) continue;
      this.options.logger.info({ shard: incarnation }, 'deleting a retired closed shard');
      await this.options.replicas.destroy(incarnation);
      this.quotas.delete(incarnation);
    }
  }

  /**
   * Replicas a move took off this broker (or a move here that was given up) go as soon as the
   * metadata says so: the group no longer counts them, and left open they would serve reads
   * that fall further behind and time out into elections nobody answers.
   */
  private async dropMovedAway(stream: StreamRecord): Promise<void> {
    for (const shard of stream.shards) {
      if (this.options.replicas.get(shard.incarnation) === undefined) continue;
      if (this.options.replicas.hosts(shard)) continue;
      this.options.logger.info({ shard: shard.incarnation }, 'deleting a replica moved away');
      await this.options.replicas.destroy(shard.incarnation);
      this.quotas.delete(shard.incarnation);
    }
  }

  private async openShards(stream: StreamRecord): Promise<void> {
    for (const shard of stream.shards) {
      if (this.options.replicas.hosts(shard)) await this.options.replicas.openCurrent(shard);
    }
  }
}
