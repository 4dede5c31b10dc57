import { takesReplicas, type MetadataState, type MoveReason, type ShardRecord } from './model.js';
import type { MoveRef } from './replica-moves.js';

/**
 * Which replica moves the coordinator leader starts next: a pure function of the metadata, so it
 * is tested without a cluster. In order of urgency:
 *   1. replace: replicas on a broker down for longer than `replaceDownAfterMs` are re-created
 *      elsewhere from the survivors;
 *   2. drain: replicas on a draining broker move off it;
 *   3. balance: while the most loaded broker holds two replicas more than the least loaded one,
 *      one of its replicas moves there (a new broker fills up this way).
 * A target holds no replica of the shard now (one it held before is fine: it rejoins the group
 * under a new replica id), is up and not draining, and keeps the shard's replicas spread over as many zones as before. At most
 * `maxConcurrentMoves` are in flight; each shard moves one replica at a time.
 */

export interface RebalanceOptions {
  readonly maxConcurrentMoves: number;
  readonly replaceDownAfterMs: number;
}

export interface PlannedMove extends MoveRef {
  readonly reason: MoveReason;
}

interface Candidate {
  readonly name: string;
  readonly incarnation: number;
  readonly shard: ShardRecord;
}

export function planMoves(
  state: MetadataState,
  nowMs: number,
  options: RebalanceOptions,
): PlannedMove[] {
  const shards: Candidate[] = [];
  let inFlight = 0;
  for (const stream of [...state.streams.values()].sort((a, b) => a.incarnation - b.incarnation)) {
    for (const shard of stream.shards) {
      if (shard.replicas === undefined || shard.pending === true) continue;
      if (shard.move !== undefined) {
        inFlight++;
        continue;
      }
      // Streams being created, resharded or deleted keep their replicas where they are.
      if (stream.status !== 'ACTIVE') continue;
      shards.push({ name: stream.name, incarnation: stream.incarnation, shard });
    }
  }
  let budget = options.maxConcurrentMoves - inFlight;
  if (budget <= 0) return [];

  const brokers = [...state.brokers.values()].sort((a, b) => a.id - b.id);
  const targets = brokers.filter(takesReplicas).map((b) => b.id);
  const zoneOf = new Map(brokers.map((b) => [b.id, b.zone]));
  // Replicas per broker as they will be once the moves in flight are done.
  const load = new Map<number, number>(brokers.map((b) => [b.id, 0]));
  for (const stream of state.streams.values()) {
    for (const shard of stream.shards) {
      for (const id of shard.replicas ?? []) {
        if (shard.move?.from === id) continue;
        load.set(id, (load.get(id) ?? 0) + 1);
      }
    }
  }
  const planned: PlannedMove[] = [];
  const moving = new Set<ShardRecord>();
  const plan = (candidate: Candidate, from: number, reason: MoveReason): boolean => {
    const to = targetFor(candidate.shard, from, targets, load, zoneOf, reason === 'balance');
    if (to === undefined) return false;
    planned.push({
      name: candidate.name,
      incarnation: candidate.incarnation,
      shardId: candidate.shard.shardId,
      from,
      to,
      reason,
    });
    moving.add(candidate.shard);
    load.set(from, (load.get(from) ?? 0) - 1);
    load.set(to, (load.get(to) ?? 0) + 1);
    budget--;
    return true;
  };

  const dead = new Set(
    brokers
      .filter((b) => b.state === 'down' && nowMs - b.stateSinceMs >= options.replaceDownAfterMs)
      .map((b) => b.id),
  );
  const draining = new Set(brokers.filter((b) => b.draining === true).map((b) => b.id));
  for (const [sources, reason] of [
    [dead, 'replace'],
    [draining, 'drain'],
  ] as const) {
    for (const candidate of shards) {
      if (budget <= 0) return planned;
      if (moving.has(candidate.shard)) continue;
      const from = candidate.shard.replicas?.find((id) => sources.has(id));
      if (from !== undefined) plan(candidate, from, reason);
    }
  }

  // Balance: from the most loaded broker to the least loaded, while they differ by two or more.
  while (budget > 0 && targets.length > 1) {
    const byLoad = [...targets].sort((a, b) => (load.get(a) ?? 0) - (load.get(b) ?? 0) || a - b);
    const least = byLoad[0] as number;
    let moved = false;
    for (const most of byLoad.reverse()) {
      if ((load.get(most) ?? 0) - (load.get(least) ?? 0) < 2) break;
      const candidate = shards.find(
        (c) =>
          !moving.has(c.shard) &&
          c.shard.replicas?.includes(most) === true &&
          targetFor(c.shard, most, [least], load, zoneOf, true) === least,
      );
      if (candidate !== undefined && plan(candidate, most, 'balance')) {
        moved = true;
        break;
      }
    }
    if (!moved) break;
  }
  return planned;
}

/**
 * The least loaded broker that may take `shard`'s replica from `from`: not a holder now, and keeping the replicas spread over as many zones as they are. A replacement or a
 * drain that cannot keep the spread still goes ahead (a copy in a shared zone beats no copy);
 * balancing never narrows it.
 */
function targetFor(
  shard: ShardRecord,
  from: number,
  targets: readonly number[],
  load: ReadonlyMap<number, number>,
  zoneOf: ReadonlyMap<number, string>,
  keepSpreadOnly: boolean,
): number | undefined {
  const staying = (shard.replicas ?? []).filter((id) => id !== from);
  // A broker that held a replica before may take one again: it joins under a new replica id.
  const taken = new Set(shard.replicas ?? []);
  const zonesNow = new Set((shard.replicas ?? []).map((id) => zoneOf.get(id))).size;
  const byLoad = (ids: number[]) =>
    ids.sort((a, b) => (load.get(a) ?? 0) - (load.get(b) ?? 0) || a - b)[0];
  const free = targets.filter((id) => !taken.has(id));
  const spreading = free.filter((id) => {
    const zones = new Set(staying.map((s) => zoneOf.get(s))).add(zoneOf.get(id));
    return zones.size >= Math.min(zonesNow, staying.length + 1);
  });
  return byLoad(spreading) ?? (keepSpreadOnly ? undefined : byLoad(free));
}
