/**
 * Where a new stream's shard replicas go, and which replica of each shard should lead first.
 *
 * A pure function of the brokers and the replica sets already placed, so the coordinator's state
 * machine can run it inside a command and every replica computes the same answer. Rules, in order:
 *   1. never two replicas of a shard on one broker; only brokers that are up are used;
 *   2. a shard's replicas spread over as many zones as there are (rack awareness);
 *   3. among the brokers that keep the zones spread, the least loaded (replicas, then
 *      leaderships), so replica counts per broker differ by at most one where the zones permit;
 *   4. the first replica of each shard is its preferred leader, chosen so leader counts per
 *      broker differ by at most one where the replica sets permit: a balancing pass moves
 *      preferences along chains of shards (existing ones included, reported as changes).
 * Ties break by a rotation seeded with the number of shards placed so far, so equal brokers take
 * turns instead of broker 1 always winning.
 */

export interface PlacementBroker {
  readonly id: number;
  /** Failure domain (rack, availability zone); brokers without one share the empty zone. */
  readonly zone?: string;
  readonly up: boolean;
}

export interface PlacementRequest {
  readonly brokers: readonly PlacementBroker[];
  /** Replica sets of the shards already placed (open shards of every stream), leader first. */
  readonly existing: readonly (readonly number[])[];
  readonly shardCount: number;
  readonly replicationFactor: number;
}

export class PlacementError extends Error {}

export interface Placement {
  /** Replica sets of the new shards, each with its preferred leader first. */
  readonly shards: number[][];
  /**
   * Shards already placed whose preferred leader should change so leaderships stay even (indexes
   * into `existing`; the replica set is unchanged, only which replica should lead).
   */
  readonly leaderChanges: ReadonlyArray<{ readonly index: number; readonly leader: number }>;
}

export function placeShards(request: PlacementRequest): Placement {
  const { shardCount, replicationFactor } = request;
  const brokers = request.brokers.filter((b) => b.up).sort((a, b) => a.id - b.id);
  if (!Number.isSafeInteger(replicationFactor) || replicationFactor < 1) {
    throw new PlacementError(`replication factor ${replicationFactor} must be at least 1`);
  }
  if (brokers.length < replicationFactor) {
    throw new PlacementError(
      `replication factor ${replicationFactor} needs ${replicationFactor} brokers that are up; ${brokers.length} are`,
    );
  }
  const replicas = new Map<number, number>(brokers.map((b) => [b.id, 0]));
  const leaders = new Map<number, number>(brokers.map((b) => [b.id, 0]));
  for (const set of request.existing) {
    set.forEach((id, i) => {
      if (replicas.has(id)) replicas.set(id, (replicas.get(id) as number) + 1);
      if (i === 0 && leaders.has(id)) leaders.set(id, (leaders.get(id) as number) + 1);
    });
  }
  const zoneOf = new Map(brokers.map((b) => [b.id, b.zone ?? '']));
  const placed: number[][] = [];
  for (let s = 0; s < shardCount; s++) {
    const rotation = (request.existing.length + s) % brokers.length;
    const rank = (id: number) =>
      (brokers.findIndex((b) => b.id === id) - rotation + brokers.length) % brokers.length;
    const chosen: number[] = [];
    while (chosen.length < replicationFactor) {
      const usedZones = new Set(chosen.map((id) => zoneOf.get(id)));
      const candidates = brokers.map((b) => b.id).filter((id) => !chosen.includes(id));
      const spreading = candidates.filter((id) => !usedZones.has(zoneOf.get(id)));
      const pool = spreading.length > 0 ? spreading : candidates;
      pool.sort(
        (a, b) =>
          (replicas.get(a) as number) - (replicas.get(b) as number) ||
          // Then those leading fewer shards, so the shard's leader can be one of them.
          (leaders.get(a) as number) - (leaders.get(b) as number) ||
          // Zones with fewer replicas first, so zones fill evenly too.
          zoneLoad(zoneOf.get(a) ?? '', replicas, zoneOf) -
            zoneLoad(zoneOf.get(b) ?? '', replicas, zoneOf) ||
          rank(a) - rank(b),
      );
      const pick = pool[0] as number;
      chosen.push(pick);
      replicas.set(pick, (replicas.get(pick) as number) + 1);
    }
    const leader = [...chosen].sort(
      (a, b) =>
        (leaders.get(a) as number) - (leaders.get(b) as number) ||
        (replicas.get(a) as number) - (replicas.get(b) as number) ||
        rank(a) - rank(b),
    )[0] as number;
    leaders.set(leader, (leaders.get(leader) as number) + 1);
    placed.push([leader, ...chosen.filter((id) => id !== leader)]);
  }
  // Existing shards take part in the balancing: a new stream's shards alone cannot always even
  // out leaderships without unbalancing replicas.
  const all = [...request.existing.map((set) => [...set]), ...placed];
  balanceLeaders(all, leaders);
  const leaderChanges: Array<{ index: number; leader: number }> = [];
  request.existing.forEach((set, index) => {
    const leader = (all[index] as number[])[0] as number;
    if (leader !== set[0]) leaderChanges.push({ index, leader });
  });
  return { shards: all.slice(request.existing.length), leaderChanges };
}

function zoneLoad(
  zone: string,
  replicas: ReadonlyMap<number, number>,
  zoneOf: ReadonlyMap<number, string>,
): number {
  let n = 0;
  for (const [id, count] of replicas) if (zoneOf.get(id) === zone) n += count;
  return n;
}

/**
 * Moves preferred leaderships off the busiest brokers while some broker has two
 * fewer. A move follows a chain (augmenting path): broker a hands a shard it leads to another of
 * that shard's replicas b, b hands one of its shards on to c, ..., ending at a broker with fewer
 * leaderships; only the ends' counts change. Each move lowers the sum of squared counts, so the
 * loop ends, and it stops only when no chain exists (the best the replica sets allow).
 */
function balanceLeaders(placed: number[][], leaders: Map<number, number>): void {
  for (let moves = 0; moves <= placed.length * leaders.size; moves++) {
    const counts = [...leaders.values()];
    const max = Math.max(...counts);
    let moved = false;
    for (const [source, count] of leaders) {
      if (count !== max) continue;
      const path = chainFrom(source, placed, leaders, max - 2);
      if (path === undefined) continue;
      for (const [shard, to] of path) {
        // Each shard on the chain is handed to the next broker on it.
        const set = placed[shard] as number[];
        set.splice(set.indexOf(to), 1);
        set.unshift(to);
      }
      leaders.set(source, count - 1);
      const sink = [...path.values()].at(-1) as number;
      leaders.set(sink, (leaders.get(sink) as number) + 1);
      moved = true;
      break;
    }
    if (!moved) return;
  }
}

/**
 * A breadth-first search from `source` over "leads a shard that has a replica on": the shards to
 * hand over (in order, each to the broker it maps to), ending at a broker whose count is at most
 * `sinkAtMost`; undefined when there is none.
 */
function chainFrom(
  source: number,
  placed: readonly (readonly number[])[],
  leaders: ReadonlyMap<number, number>,
  sinkAtMost: number,
): Map<number, number> | undefined {
  const via = new Map<number, { shard: number; from: number }>();
  const seen = new Set([source]);
  const queue = [source];
  while (queue.length > 0) {
    const broker = queue.shift() as number;
    for (let shard = 0; shard < placed.length; shard++) {
      const set = placed[shard] as readonly number[];
      if (set[0] !== broker) continue;
      for (const next of set.slice(1)) {
        // Brokers that are down take no leaderships.
        if (seen.has(next) || !leaders.has(next)) continue;
        seen.add(next);
        via.set(next, { shard, from: broker });
        if ((leaders.get(next) as number) <= sinkAtMost) {
          const steps: Array<[number, number]> = [];
          for (let at = next; at !== source;) {
            const step = via.get(at) as { shard: number; from: number };
            steps.unshift([step.shard, at]);
            at = step.from;
          }
          return new Map(steps);
        }
        queue.push(next);
      }
    }
  }
  return undefined;
}
