import { rm } from 'node:fs/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/client.js';
import { tempDir } from '../helpers/node.js';
import {
  killAllChildren,
  runRheos,
  spawnRheos,
  startDevServer,
  type RheosProcess,
} from '../helpers/processes.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * `rheos groups list|describe APP` against `rheos dev`: the groups, and per shard the lease's
 * owner, counter, checkpoint and how far behind the newest record the checkpoint is; and
 * `rheos groups consume APP` as worker processes that share the shards, hand them over at
 * SIGTERM with nothing repeated, and take them over from a worker killed with SIGKILL.
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

  it('consume: workers share the shards, a SIGTERM hands over exactly, a SIGKILL is taken over', async () => {
    const dataDir = await tempDir('rheos-groups-consume-');
    dirs.push(dataDir);
    const server = await startDevServer(dataDir, ['--group-failover-ms', '1500']);
    const client = createClient({ endpoint: server.endpoint });
    try {
      await client.createStream({ streamName: 'orders', shardCount: 4 });
      await client.waitForStreamActive('orders');
      const printed: Array<{ worker: string; shardId: string; data: string }> = [];
      const worker = (id: string, extra: string[] = []): RheosProcess =>
        spawnRheos(
          [
            '--endpoint',
            server.endpoint,
            'groups',
            'consume',
            'billing',
            '--stream',
            'orders',
            '--worker-id',
            id,
            '--checkpoint-interval-ms',
            '100',
            ...extra,
          ],
          (line) => {
            const r = JSON.parse(line) as { shardId: string; sequenceNumber: string; data: string };
            expect(r.sequenceNumber).toMatch(/^\d+$/);
            printed.push({ worker: id, shardId: r.shardId, data: r.data });
          },
        );
      const put = async (from: number, to: number) => {
        const records = [];
        for (let i = from; i < to; i++)
          records.push({ partitionKey: `k${i}`, data: Buffer.from(`r${i}`) });
        const answer = await client.putRecords({ streamName: 'orders', records });
        expect(answer.failedRecordCount).toBe(0);
      };
      const owners = async () => {
        // Until the first worker's heartbeat, there is no group.
        const answer = await client
          .describeGroup({ application: 'billing' })
          .catch(() => undefined);
        return (answer?.group?.leases ?? []).map((l) => l.owner);
      };
      const printedAll = (count: number) =>
        waitUntil(
          `all ${count} records printed`,
          () => {
            const seen = new Set(printed.map((p) => p.data));
            for (let i = 0; i < count; i++) if (!seen.has(`r${i}`)) return undefined;
            return true;
          },
          30_000,
        );

      // One polls, one reads by enhanced fan-out; both in the same group.
      const c1 = worker('c1');
      const c2 = worker('c2', ['--fan-out', 'billing-fan']);
      await waitUntil(
        'two shards each',
        async () => {
          const o = await owners();
          return o.filter((x) => x === 'c1').length === 2 &&
            o.filter((x) => x === 'c2').length === 2
            ? true
            : undefined;
        },
        30_000,
      );
      await put(0, 400);
      await printedAll(400);
      expect(new Set(printed.map((p) => p.worker))).toEqual(new Set(['c1', 'c2']));

      // SIGTERM: c1 checkpoints what it printed and releases; c2 goes on from there, printing
      // nothing twice. (Before, repeats are possible: a worker whose lease was stolen while the
      // two balanced reads on until its next heartbeat, as a KCL worker does.)
      c1.child.kill('SIGTERM');
      expect((await c1.exited).code, c1.stderr()).toBe(0);
      const beforeTerm = new Set(printed.map((p) => p.data));
      const mark = printed.length;
      await put(400, 800);
      await printedAll(800);
      const afterTerm = printed.slice(mark).map((p) => p.data);
      expect(afterTerm.filter((d) => beforeTerm.has(d))).toEqual([]);
      expect(afterTerm.sort()).toEqual(Array.from({ length: 400 }, (_, i) => `r${400 + i}`).sort());
      expect(await owners()).toEqual(['c2', 'c2', 'c2', 'c2']);

      // SIGKILL: c3 takes c2's leases once c2 is silent for the failover time, and replays
      // at most what c2 printed after its last checkpoint.
      const c3 = worker('c3');
      c2.child.kill('SIGKILL');
      await c2.exited;
      await put(800, 1_000);
      await printedAll(1_000);
      expect(await owners()).toEqual(['c3', 'c3', 'c3', 'c3']);
      const repeats = printed.length - new Set(printed.map((p) => p.data)).size;
      const early = mark - beforeTerm.size;
      console.log(
        `rheos groups consume: ${printed.length} lines printed for 1000 records (${early} repeats while the two balanced, ${repeats - early} after the SIGKILL, none after the SIGTERM)`,
      );
      expect(printed.filter((p) => p.worker === 'c3').length).toBeGreaterThanOrEqual(200);
      // Only what the killed worker printed after its last checkpoint is printed again, by c3.
      const byC2 = new Set(printed.filter((p) => p.worker === 'c2').map((p) => p.data));
      const firstTime = new Set(beforeTerm);
      for (const p of printed.slice(mark)) {
        if (!firstTime.has(p.data)) {
          firstTime.add(p.data);
          continue;
        }
        expect(p.worker).toBe('c3');
        expect(byC2.has(p.data)).toBe(true);
      }
      c3.child.kill('SIGTERM');
      expect((await c3.exited).code, c3.stderr()).toBe(0);
    } finally {
      client.close();
    }
  }, 120_000);
});
