import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PlacementError,
  placeShards,
  type PlacementBroker,
} from '../../src/coordinator/placement.js';

/** Placement of new shards' replicas and preferred leaders (src/coordinator/placement.ts). */

function spread(counts: ReadonlyMap<number, number>): number {
  const values = [...counts.values()];
  return Math.max(...values) - Math.min(...values);
}

function tally(brokers: readonly PlacementBroker[], sets: readonly (readonly number[])[]) {
  const replicas = new Map(brokers.filter((b) => b.up).map((b) => [b.id, 0]));
  const leaders = new Map(replicas);
  for (const set of sets) {
    set.forEach((id, i) => {
      replicas.set(id, (replicas.get(id) ?? 0) + 1);
      if (i === 0) leaders.set(id, (leaders.get(id) ?? 0) + 1);
    });
  }
  return { replicas, leaders };
}

/** Places a stream on `all` (the cluster's shards so far), applying the leader changes; returns the new shards. */
function place(
  all: number[][],
  brokers: readonly PlacementBroker[],
  shardCount: number,
  replicationFactor: number,
): number[][] {
  const { shards, leaderChanges } = placeShards({
    brokers,
    existing: all,
    shardCount,
    replicationFactor,
  });
  for (const { index, leader } of leaderChanges) {
    const set = all[index] as number[];
    expect(set).toContain(leader);
    all[index] = [leader, ...set.filter((id) => id !== leader)];
  }
  all.push(...shards);
  return shards;
}

function brokersOf(n: number, zones = 0): PlacementBroker[] {
  return Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    up: true,
    ...(zones > 0 ? { zone: `z${i % zones}` } : {}),
  }));
}

describe('placement', () => {
  it('never puts two replicas of a shard on one broker, and uses only brokers that are up', () => {
    const brokers = [...brokersOf(4), { id: 9, up: false }];
    const sets = placeShards({
      brokers,
      existing: [],
      shardCount: 12,
      replicationFactor: 3,
    }).shards;
    expect(sets).toHaveLength(12);
    for (const set of sets) {
      expect(new Set(set).size).toBe(3);
      expect(set).not.toContain(9);
    }
  });

  it('refuses a replication factor larger than the brokers that are up', () => {
    const brokers = [...brokersOf(2), { id: 3, up: false }];
    expect(() =>
      placeShards({ brokers, existing: [], shardCount: 1, replicationFactor: 3 }),
    ).toThrow(PlacementError);
  });

  it('keeps replicas and preferred leaders per broker within one of each other, stream after stream', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }),
        (brokerCount, rf, streams) => {
          fc.pre(rf <= brokerCount);
          const brokers = brokersOf(brokerCount);
          const all: number[][] = [];
          for (const shards of streams) {
            const sets = place(all, brokers, shards, rf);
            for (const set of sets) expect(new Set(set).size).toBe(rf);
            const { replicas, leaders } = tally(brokers, all);
            expect(spread(replicas), JSON.stringify([...replicas])).toBeLessThanOrEqual(1);
            expect(spread(leaders), JSON.stringify([...leaders])).toBeLessThanOrEqual(1);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps replicas within one when streams mix replication factors', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 9 }),
        fc.array(
          fc.record({
            shards: fc.integer({ min: 1, max: 40 }),
            rf: fc.integer({ min: 1, max: 3 }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        (brokerCount, streams) => {
          const brokers = brokersOf(brokerCount);
          const all: number[][] = [];
          for (const { shards, rf } of streams) {
            place(all, brokers, shards, rf);
            // Leaderships may not even out here: a replication-factor-1 shard's leader cannot move.
            expect(spread(tally(brokers, all).replicas)).toBeLessThanOrEqual(1);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('spreads each shard over as many zones as there are, and stays balanced when zones are equal', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 30 }),
        (zones, perZone, shards) => {
          const brokers = brokersOf(zones * perZone, zones);
          const rf = Math.min(3, brokers.length);
          const sets = place([], brokers, shards, rf);
          for (const set of sets) {
            const used = new Set(set.map((id) => brokers[id - 1]?.zone));
            expect(used.size).toBe(Math.min(zones, rf));
          }
          const { replicas, leaders } = tally(brokers, sets);
          expect(spread(replicas)).toBeLessThanOrEqual(1);
          expect(spread(leaders)).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('fills the least loaded brokers first (a new broker takes the next shards)', () => {
    const brokers = brokersOf(4);
    const existing = [
      [1, 2, 3],
      [2, 3, 1],
      [3, 1, 2],
    ];
    const sets = placeShards({ brokers, existing, shardCount: 1, replicationFactor: 3 }).shards;
    expect(sets[0]?.[0]).toBe(4);
    expect(sets[0]).toContain(4);
  });

  it('is deterministic: the same input gives the same placement', () => {
    const request = {
      brokers: brokersOf(5, 2),
      existing: [[1, 2, 3]],
      shardCount: 17,
      replicationFactor: 3,
    };
    expect(placeShards(request)).toEqual(placeShards(request));
  });
});
