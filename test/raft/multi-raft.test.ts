import { describe, expect, it } from 'vitest';
import { MultiRaftCluster } from '../../bench/lib/multi-raft-cluster.js';

/**
 * Many groups on a node: idle groups go quiet (no heartbeats, no timers), one batch per peer per
 * flush carries everything, groups of a dead node wake up and elect new leaders, and elections
 * start at a bounded rate.
 */

const groups = Array.from({ length: 300 }, (_, i) => `shard-${i}`);

describe('multi-raft', () => {
  it('idle groups go quiet: after settling, a tick sends one node heartbeat per peer and no group heartbeat', () => {
    const c = new MultiRaftCluster([1, 2, 3], groups);
    c.electSpread();
    for (let i = 0; i < 5; i++) c.tick();
    for (const id of [1, 2, 3]) expect(c.quietGroups(id)).toBe(groups.length);
    const before = { ...c.stats };
    for (let i = 0; i < 20; i++) c.tick();
    expect(c.stats.groupHeartbeats - before.groupHeartbeats).toBe(0);
    expect(c.stats.messages - before.messages).toBe(0);
    // One batch per tick from node 1 to node 2: the node heartbeat.
    expect(c.stats.batchesOneToTwo - before.batchesOneToTwo).toBe(20);
  });

  it('a proposal wakes its group only; it commits and the group goes quiet again', () => {
    const c = new MultiRaftCluster([1, 2, 3], groups);
    c.electSpread();
    for (let i = 0; i < 5; i++) c.tick();
    const group = 'shard-7';
    const leader = c.leaderOf(group) as number;
    const node = c.nodes.get(leader)?.group(group);
    node?.propose(new TextEncoder().encode('hello'));
    c.nodes.get(leader)?.touch(group);
    c.settle();
    expect(c.quietGroups(leader)).toBe(groups.length - 1);
    for (let i = 0; i < 3; i++) c.tick();
    expect(node?.status().commit).toBe(node?.status().lastIndex);
    for (const id of [1, 2, 3]) expect(c.quietGroups(id)).toBe(groups.length);
  });

  it('the groups a dead node led wake up, elect new leaders at a bounded rate, and take writes', () => {
    const c = new MultiRaftCluster([1, 2, 3], groups);
    c.electSpread();
    for (let i = 0; i < 5; i++) c.tick();
    const led = groups.filter((g) => c.leaderOf(g) === 1);
    expect(led.length).toBe(100);
    c.down.add(1);
    let ticks = 0;
    while (led.some((g) => c.leaderOf(g) === undefined) && ticks < 200) {
      const campaignsBefore = c.stats.campaigns;
      c.tick();
      ticks++;
      // 2 live nodes x 8 campaigns per tick at most.
      expect(c.stats.campaigns - campaignsBefore).toBeLessThanOrEqual(16);
    }
    expect(led.every((g) => c.leaderOf(g) !== undefined)).toBe(true);
    // Groups led elsewhere stayed quiet and kept their leaders.
    for (const g of groups.filter((x) => !led.includes(x))) expect([2, 3]).toContain(c.leaderOf(g));
    const g = led[0] as string;
    const leader = c.leaderOf(g) as number;
    c.nodes.get(leader)?.group(g)?.propose(new TextEncoder().encode('after failover'));
    c.nodes.get(leader)?.touch(g);
    c.settle();
    c.tick();
    const status = c.nodes.get(leader)?.group(g)?.status();
    expect(status?.commit).toBe(status?.lastIndex);
  });
});
