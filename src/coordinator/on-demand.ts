import { ON_DEMAND_INITIAL_SHARDS } from '../common/limits.js';
import type { MetadataCommand } from './metadata-machine.js';
import { isOpen, type MetadataState, type ShardRecord, type StreamRecord } from './model.js';

/**
 * On-demand capacity: an ON_DEMAND stream's shards follow its write rate, from the rates the
 * shard leaders report in their heartbeats. A shard that writes above `splitAboveBytesPerSecond`
 * for `splitAfterMs` is split in the middle of its hash range; two adjacent shards that both write
 * below `mergeBelowBytesPerSecond` for `mergeAfterMs` (the cool-down) are merged, down to
 * `minShards`. One reshard per stream at a time, as for SplitShard and MergeShards. The scaler
 * keeps its timers in memory (a new coordinator leader starts them again: a later decision, never
 * a wrong one) and reads no clock itself.
 */

export interface OnDemandOptions {
  readonly splitAboveBytesPerSecond: number;
  readonly splitAfterMs: number;
  readonly mergeBelowBytesPerSecond: number;
  readonly mergeAfterMs: number;
  readonly minShards: number;
}

export const DEFAULT_ON_DEMAND: OnDemandOptions = {
  // Three quarters of a provisioned shard's 1 MiB/s, so a shard splits before it throttles.
  splitAboveBytesPerSecond: 768 * 1024,
  splitAfterMs: 60_000,
  mergeBelowBytesPerSecond: 64 * 1024,
  mergeAfterMs: 15 * 60_000,
  minShards: ON_DEMAND_INITIAL_SHARDS,
};

export class OnDemandScaler {
  /** Per shard incarnation: since when it has been hot, or cold, without a break. */
  private readonly hotSinceMs = new Map<number, number>();
  private readonly coldSinceMs = new Map<number, number>();

  constructor(private readonly options: OnDemandOptions) {}

  /**
   * Takes the latest write rates (bytes per second by shard incarnation; shards without a
   * report are left out) and returns the reshards to start now.
   */
  decide(
    state: MetadataState,
    rates: ReadonlyMap<number, number>,
    nowMs: number,
  ): MetadataCommand[] {
    const { options } = this;
    const seen = new Set<number>();
    const commands: MetadataCommand[] = [];
    const streams = [...state.streams.values()].sort((a, b) => a.incarnation - b.incarnation);
    for (const stream of streams) {
      if (stream.mode !== 'ON_DEMAND') continue;
      const open = stream.shards
        .filter(isOpen)
        .sort((a, b) => compareKeys(a.hashKeyStart, b.hashKeyStart));
      for (const shard of open) {
        seen.add(shard.incarnation);
        const rate = rates.get(shard.incarnation);
        track(
          this.hotSinceMs,
          shard,
          rate !== undefined && rate > options.splitAboveBytesPerSecond,
          nowMs,
        );
        track(
          this.coldSinceMs,
          shard,
          rate !== undefined && rate < options.mergeBelowBytesPerSecond,
          nowMs,
        );
      }
      if (stream.status !== 'ACTIVE' || stream.reshard !== undefined) continue;
      const command = this.decideStream(stream, open, nowMs);
      if (command !== undefined) commands.push(command);
    }
    for (const timers of [this.hotSinceMs, this.coldSinceMs]) {
      for (const shard of timers.keys()) if (!seen.has(shard)) timers.delete(shard);
    }
    return commands;
  }

  private decideStream(
    stream: StreamRecord,
    open: readonly ShardRecord[],
    nowMs: number,
  ): MetadataCommand | undefined {
    const { options } = this;
    const held = (timers: Map<number, number>, shard: ShardRecord, forMs: number) => {
      const since = timers.get(shard.incarnation);
      return since !== undefined && nowMs - since >= forMs;
    };
    // Hot first: the shard hot the longest is split at the middle of its range.
    const hot = open
      .filter((s) => held(this.hotSinceMs, s, options.splitAfterMs))
      .sort(
        (a, b) =>
          (this.hotSinceMs.get(a.incarnation) ?? 0) - (this.hotSinceMs.get(b.incarnation) ?? 0),
      )[0];
    if (hot !== undefined) {
      const lo = BigInt(hot.hashKeyStart);
      const hi = BigInt(hot.hashKeyEnd);
      if (hi > lo) {
        this.hotSinceMs.delete(hot.incarnation);
        return {
          type: 'startReshard',
          name: stream.name,
          operation: 'SplitShard',
          request: {
            kind: 'split',
            shardId: hot.shardId,
            hashKey: ((lo + hi + 1n) / 2n).toString(),
          },
          nowMs,
          automatic: true,
        };
      }
    }
    if (open.length <= options.minShards) return undefined;
    for (let i = 0; i + 1 < open.length; i++) {
      const a = open[i] as ShardRecord;
      const b = open[i + 1] as ShardRecord;
      if (BigInt(a.hashKeyEnd) + 1n !== BigInt(b.hashKeyStart)) continue;
      if (!held(this.coldSinceMs, a, options.mergeAfterMs)) continue;
      if (!held(this.coldSinceMs, b, options.mergeAfterMs)) continue;
      this.coldSinceMs.delete(a.incarnation);
      this.coldSinceMs.delete(b.incarnation);
      return {
        type: 'startReshard',
        name: stream.name,
        operation: 'MergeShards',
        request: { kind: 'merge', shardId: a.shardId, adjacentShardId: b.shardId },
        nowMs,
        automatic: true,
      };
    }
    return undefined;
  }
}

function track(timers: Map<number, number>, shard: ShardRecord, on: boolean, nowMs: number): void {
  if (!on) timers.delete(shard.incarnation);
  else if (!timers.has(shard.incarnation)) timers.set(shard.incarnation, nowMs);
}

function compareKeys(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
