import { rm } from 'node:fs/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/client.js';
import { tempDir } from '../helpers/node.js';
import { killAllChildren, runRheos, startDevServer } from '../helpers/processes.js';

/**
 * `rheos groups list|describe APP` against `rheos dev`: the groups, and per shard the lease's
 * owner, counter, checkpoint and how far behind the newest record the checkpoint is.
 */

const dirs: string[] = [];
afterEach(killAllChildren);
afterAll(async () => {
  await killAllChildren();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('rheos groups', () => {
  it('lists groups and describes leases, owners, checkpoints and lag per shard', async () => {
    const dataDir = await tempDir('rheos-groups-cli-');
    dirs.push(dataDir);
    const server = await startDevServer(dataDir);
    const rheos = (args: string[]) => runRheos(['--endpoint', server.endpoint, ...args]);
    const client = createClient({ endpoint: server.endpoint });
    try {
      await client.createStream({ streamName: 'orders', shardCount: 2 });
      await client.waitForStreamActive('orders');
      await client.groupHeartbeat({ application: 'billing', workerId: 'w1', streamName: 'orders' });
      const { lease } = await client.takeLease({
        application: 'billing',
        workerId: 'w1',
        shardId: 'shardId-000000000000',
        expectedCounter: 0,
      });
      const first = await client.putRecord({
        streamName: 'orders',
        partitionKey: 'a',
        data: Buffer.from('one'),
        explicitHashKey: '0',
      });
      // Later records, so the checkpoint at the first is behind.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await client.putRecord({
        streamName: 'orders',
        partitionKey: 'a',
        data: Buffer.from('two'),
        explicitHashKey: '0',
      });
      await client.checkpointLease({
        application: 'billing',
        workerId: 'w1',
        shardId: 'shardId-000000000000',
        counter: lease?.counter ?? 0,
        sequenceNumber: first.sequenceNumber,
      });

      const listed = await rheos(['groups', 'list']);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toBe('billing\n');

      const described = await rheos(['groups', 'describe', 'billing']);
      expect(described.code, described.stderr).toBe(0);
      expect(described.stdout).toContain(
        'group billing on stream orders, starting at TRIM_HORIZON',
      );
      expect(described.stdout).toContain('live workers: w1');
      const row = described.stdout.split('\n').find((l) => l.startsWith('shardId-000000000000'));
      expect(row?.split(/\s+/).slice(0, 4)).toEqual([
        'shardId-000000000000',
        'w1',
        '1',
        first.sequenceNumber,
      ]);
      const free = described.stdout.split('\n').find((l) => l.startsWith('shardId-000000000001'));
      expect(free?.split(/\s+/).slice(0, 5)).toEqual([
        'shardId-000000000001',
        '-',
        '0',
        'TRIM_HORIZON',
        '0',
      ]);

      const json = await rheos(['groups', 'describe', 'billing', '--json']);
      const parsed = JSON.parse(json.stdout) as {
        leases: Array<{ shardId: string; lagMs: number | null }>;
      };
      // The oldest record after the checkpoint was put at least 20 ms before the command ran.
      expect(parsed.leases[0]?.lagMs).toBeGreaterThanOrEqual(20);
      expect(parsed.leases[1]?.lagMs).toBe(0);

      const unknown = await rheos(['groups', 'describe', 'nope']);
      expect(unknown.code).not.toBe(0);
      expect(unknown.stderr).toContain('Consumer group nope not found');
    } finally {
      client.close();
    }
  }, 60_000);
});
