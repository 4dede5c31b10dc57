import { describe, expect, it } from 'vitest';
import { MultiRaftCluster } from '../../bench/lib/multi-raft-cluster.js';
import { brokerOfReplica, replicaIdOf } from '../../src/common/replica-id.js';
import { MultiRaft } from '../../src/raft/multi-raft.js';
import { EMPTY_INITIAL_STATE } from '../../src/raft/types.js';

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

  describe('replica ids', () => {
    // Node 2 is a member of every group under its generation-1 id (it left them and came back).
    const members = {
      memberOf: (node: number) => (node === 2 ? replicaIdOf(2, 1) : node),
      nodeOf: brokerOfReplica,
    };

    it('groups whose members are named by replica ids elect, commit, batch per node and go quiet', () => {
      const c = new MultiRaftCluster([1, 2, 3], groups.slice(0, 30), true, members);
      c.electSpread();
      for (let i = 0; i < 5; i++) c.tick();
      for (const id of [1, 2, 3]) expect(c.quietGroups(id)).toBe(30);
      // The node heartbeat reaches node 2 (not a node named 65538): its groups stay quiet.
      const before = { ...c.stats };
      for (let i = 0; i < 20; i++) c.tick();
      expect(c.stats.messages - before.messages).toBe(0);
      expect(c.stats.batchesOneToTwo - before.batchesOneToTwo).toBe(20);
      // Groups led by node 2's member are led by node 2, and lose it when node 2 dies.
      const ledByTwo = groups.slice(0, 30).filter((g) => c.leaderOf(g) === 2);
      expect(ledByTwo.length).toBeGreaterThan(0);
      c.down.add(2);
      for (let i = 0; i < 60; i++) c.tick();
      for (const g of ledByTwo) expect([1, 3]).toContain(c.leaderOf(g));
      const g = ledByTwo[0] as string;
      const leader = c.leaderOf(g) as number;
      c.nodes.get(leader)?.group(g)?.propose(new TextEncoder().encode('without node 2'));
      c.nodes.get(leader)?.touch(g);
      c.settle();
      c.tick();
      const status = c.nodes.get(leader)?.group(g)?.status();
      expect(status?.commit).toBe(status?.lastIndex);
    });

    it('a member must live on the node that hosts it', () => {
      const node = new MultiRaft({ nodeId: 1, nodeOf: brokerOfReplica });
      const config = { voters: [1, 2, 3], electionTicks: 10, heartbeatTicks: 1, random: () => 0.5 };
      expect(() =>
        node.addGroup('g', { ...config, id: replicaIdOf(2, 1) }, EMPTY_INITIAL_STATE),
      ).toThrow();
      expect(node.addGroup('g', { ...config, id: replicaIdOf(1, 3) }, EMPTY_INITIAL_STATE).id).toBe(
        replicaIdOf(1, 3),
      );
    });
  });
});
