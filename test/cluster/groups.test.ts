import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { RheosError } from '../../src/common/errors.js';
import { splitFirstOpenShard, waitActive } from '../helpers/lineage.js';
import { killAllChildren, spawnRheos, type RheosProcess } from '../helpers/processes.js';
import { waitUntil } from '../helpers/wait.js';
import { ClusterHarness } from './harness.js';

/**
 * Consumer groups on real processes (3 brokers, RF 3, one coordinator): three workers
 * (`rheos groups consume`, each its own process) read 100,000 records while they are written,
 * while one worker is killed with SIGKILL (its leases move once it is silent for the failover
 * time), a fourth joins (it steals its share) and a shard is split (its children start after the
 * parent's SHARD_END). Workers checkpoint what they printed every 300 ms, so a lease that moves
 * replays what its last holder had not checkpointed. Every acknowledged record is processed at
 * least once; each worker's first processings of each key are in the order they were written
 * (lines from different processes reach the test in no fixed order, so order is checked per
 * worker); repeats happen only on shards processed by more than one worker, and are counted.
 */

const STREAM = 'grouped';
// `npm run test:soak` reads 1,000,000 (RHEOS_SOAK=1); RHEOS_GROUP_RECORDS sets any count.
const SOAK = process.env['RHEOS_SOAK'] === '1';
const TOTAL = Number(process.env['RHEOS_GROUP_RECORDS'] ?? (SOAK ? 1_000_000 : 100_000));
const KEYS = 200;
const FAILOVER_MS = 3_000;
const WRITE_MS = 24_000;

let harness: ClusterHarness | undefined;
afterEach(async () => {
  await killAllChildren();
  await harness?.close();
  harness = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Processed {
  readonly worker: string;
  readonly shardId: string;
  readonly n: number;
}

describe('consumer groups on a 3-broker cluster', () => {
  it(
    `workers process all ${TOTAL} records at least once through a SIGKILL, a join and a split`,
    async () => {
      harness = await ClusterHarness.start({
        brokers: 3,
        coordinators: 1,
        streams: [{ name: STREAM, shardCount: 4 }],
        tickMs: 50,
        groupFailoverMs: FAILOVER_MS,
      });
      const h = harness;
      const t0 = performance.now();
      const lines: string[] = [];
      const log = (line: string) =>
        lines.push(`${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s ${line}`);
      const control = h.client(10_000);
      await waitActive(control, STREAM);

      const processed: Processed[] = [];
      const started = new Set<string>();
      const endpoints = h.endpoints().join(',');
      const start = (workerId: string): RheosProcess => {
        const worker = spawnRheos(
          [
            '--endpoint',
            endpoints,
            'groups',
            'consume',
            'app',
            '--stream',
            STREAM,
            '--worker-id',
            workerId,
            '--checkpoint-interval-ms',
            '300',
          ],
          (line) => {
            const r = JSON.parse(line) as { shardId: string; sequenceNumber: string; data: string };
            if (!started.has(`${workerId}/${r.shardId}`)) {
              started.add(`${workerId}/${r.shardId}`);
              log(`${workerId} processes ${r.shardId} from ${r.sequenceNumber.slice(-12)}`);
            }
            processed.push({ worker: workerId, shardId: r.shardId, n: Number(r.data.slice(1)) });
          },
        );
        log(`worker ${workerId} started (pid ${worker.child.pid})`);
        return worker;
      };
      const owned = async (workerId: string) => {
        const { group } = await control.describeGroup({ application: 'app' });
        return (group?.leases ?? []).filter((l) => l.owner === workerId).map((l) => l.shardId);
      };
      const w1 = start('w1');
      const w2 = start('w2');
      const w3 = start('w3');

      // The writer: batches of 500 over KEYS keys, two in flight; only acknowledged ones count.
      const writer = h.client(10_000);
      const acknowledged = new Set<number>();
      let next = 0;
      // Paced over WRITE_MS, so the crash, the join and the split happen while records flow.
      const writeStart = performance.now();
      const write = async () => {
        while (next < TOTAL) {
          const dueMs = writeStart + (next / TOTAL) * WRITE_MS - performance.now();
          if (dueMs > 0) await sleep(dueMs);
          const first = next;
          next = Math.min(TOTAL, next + 500);
          const records = [];
          for (let i = first; i < next; i++) {
            records.push({ partitionKey: `k${i % KEYS}`, data: Buffer.from(`r${i}`) });
          }
          try {
            const answer = await writer.putRecords({ streamName: STREAM, records });
            answer.records.forEach((r, j) => {
              if (r.errorCode === '') acknowledged.add(first + j);
            });
          } catch {
            // Nothing acknowledged; later records go on (their order per key is checked among
            // the acknowledged ones only).
          }
        }
      };
      // One writer keeps each key's records in order (a second could reorder them across calls).
      const writing = write();
      const at = async (fraction: number) => {
        while (next < TOTAL * fraction) await sleep(50);
      };

      await at(0.25);
      const crashed = await owned('w2');
      w2.child.kill('SIGKILL');
      await w2.exited;
      log(`worker w2 killed (SIGKILL) holding ${crashed.join(', ')}`);
      await at(0.5);
      const w4 = start('w4');
      await at(0.7);
      const parent = await splitFirstOpenShard(control, STREAM);
      log(`split ${parent}`);
      await writing;
      log(`wrote ${TOTAL} records, ${acknowledged.size} acknowledged`);

      const seen = () => new Set(processed.map((p) => p.n));
      const deadline = Date.now() + (SOAK ? 600_000 : 120_000);
      const seenAtEnd = seen();
      let missing = [...acknowledged].filter((n) => !seenAtEnd.has(n));
      while (missing.length > 0 && Date.now() < deadline) {
        await sleep(250);
        const s = seen();
        missing = missing.filter((n) => !s.has(n));
      }
      const { group } = await control.describeGroup({ application: 'app' });
      const leases = group?.leases ?? [];
      log(
        `leases now: ${leases.map((l) => `${l.shardId.slice(-2)} ${l.owner || '-'} #${l.counter}`).join('; ')}`,
      );
      for (const w of [w1, w3, w4]) w.child.kill('SIGTERM');
      const exits = await Promise.all([w1, w3, w4].map((w) => w.exited));
      log('workers stopped');
      // Each worker's first processings of each key follow the order of writing.
      const firstSeen = new Set<string>();
      const lastOfKey = new Map<string, number>();
      let outOfOrder = 0;
      for (const p of processed) {
        if (firstSeen.has(`${p.worker}/${p.n}`)) continue;
        firstSeen.add(`${p.worker}/${p.n}`);
        const key = `${p.worker}/${p.n % KEYS}`;
        if ((lastOfKey.get(key) ?? -1) > p.n && acknowledged.has(p.n)) outOfOrder++;
        lastOfKey.set(key, Math.max(lastOfKey.get(key) ?? -1, p.n));
      }
      // Repeats, and the shards they were on.
      const times = new Map<number, number>();
      for (const p of processed) times.set(p.n, (times.get(p.n) ?? 0) + 1);
      const repeats = processed.length - times.size;
      const holders = new Map<string, Set<string>>();
      for (const p of processed)
        holders.set(p.shardId, (holders.get(p.shardId) ?? new Set()).add(p.worker));
      const repeatedOn = new Set(
        processed.filter((p) => (times.get(p.n) ?? 0) > 1).map((p) => p.shardId),
      );
      const repeatsOnUnmovedShards = [...repeatedOn].filter((s) => (holders.get(s)?.size ?? 0) < 2);
      const parentLease = leases.find((l) => l.shardId === parent);
      const moves = leases.reduce((sum, l) => sum + Math.max(0, l.counter - 1), 0);
      log(
        `processed ${processed.length} (${times.size} distinct, ${repeats} repeats on ${repeatedOn.size} shards whose lease moved); ` +
          `${missing.length} acknowledged records never processed; ${outOfOrder} out of order; ` +
          `${moves} lease moves (counters above 1); parent ${parent} at ${parentLease?.checkpoint}`,
      );
      for (const [shardId, ws] of [...holders].sort())
        log(`${shardId} processed by ${[...ws].sort().join(', ')}`);
      console.log(lines.join('\n'));

      expect(acknowledged.size).toBeGreaterThan(TOTAL * 0.95);
      expect(missing).toEqual([]);
      expect(outOfOrder).toBe(0);
      expect(repeatsOnUnmovedShards).toEqual([]);
      // The crashed worker's shards and the joiner's share moved: some replay is expected.
      expect(crashed.length).toBeGreaterThan(0);
      expect(parentLease?.checkpoint).toBe('SHARD_END');
      // Both children were processed, after the parent (their leases wait for its SHARD_END).
      const children = leases.filter((l) => l.parentShardIds.includes(parent));
      expect(children).toHaveLength(2);
      for (const c of children) expect(holders.has(c.shardId)).toBe(true);
      // The joiner got a share, and every worker stopped cleanly at SIGTERM.
      expect([...holders.values()].some((ws) => ws.has('w4'))).toBe(true);
      expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);
    },
    SOAK ? 1_800_000 : 300_000,
  );

  it('a coordinator leader failover keeps every lease with its live owner and restarts the timers of the silent', async () => {
    const FAILOVER = 5_000;
    harness = await ClusterHarness.start({
      brokers: 1,
      coordinators: 3,
      streams: [{ name: 'leased', shardCount: 4, replicationFactor: 1 }],
      tickMs: 50,
      groupFailoverMs: FAILOVER,
    });
    const h = harness;
    const client = h.client(5_000);
    await waitActive(client, 'leased');
    // Calls during the election fail (retriable) until the new leader answers.
    const retried = async <T>(call: () => Promise<T>): Promise<T> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await call();
        } catch (error) {
          if (attempt >= 200 || !(error instanceof RheosError) || !error.retriable) throw error;
          await sleep(100);
        }
      }
    };
    const heartbeat = (workerId: string) =>
      retried(() => client.groupHeartbeat({ application: 'ha', workerId, streamName: 'leased' }));
    const take = (workerId: string, shardId: string, expectedCounter: number) =>
      client.takeLease({ application: 'ha', workerId, shardId, expectedCounter });
    await heartbeat('alive');
    await heartbeat('silent');
    const shard = (n: number) => `shardId-00000000000${n}`;
    await take('alive', shard(0), 0);
    await take('alive', shard(1), 0);
    await take('silent', shard(2), 0);
    await take('silent', shard(3), 0);
    // 'alive' heartbeats throughout; 'silent' never again.
    let beating = true;
    const beats = (async () => {
      while (beating) {
        await heartbeat('alive').catch(() => undefined);
        await sleep(300);
      }
    })();
    // Every look at the group during the failover: 'alive' never loses or expires a lease.
    const looks: Array<{ atMs: number; leases: Array<[string, string, number, boolean]> }> = [];
    const look = async () => {
      const { group } = await retried(() => client.describeGroup({ application: 'ha' }));
      const leases = (group?.leases ?? []).map(
        (l) => [l.shardId, l.owner, l.counter, l.expired] as [string, string, number, boolean],
      );
      looks.push({ atMs: Date.now(), leases });
      return leases;
    };

    const leader = await h.coordinatorLeader();
    await h.killCoordinator(leader);
    const next = await h.coordinatorLeader(30_000);
    const electedAtMs = Date.now();
    expect(next).not.toBe(leader);
    const first = await look();
    // The new leader's timers started at its election: the silent worker's leases are not
    // expired at once (an expiry of every lease would hand them to anyone now).
    const lookedWithinMs = Date.now() - electedAtMs;
    if (lookedWithinMs < FAILOVER - 1_000) {
      expect(
        first.filter(([, owner]) => owner === 'silent').map(([, , , expired]) => expired),
      ).toEqual([false, false]);
      await expect(take('other', shard(2), 1)).rejects.toMatchObject({
        name: 'ResourceInUseException',
      });
    }
    // Once the silent worker has been silent for the failover time under the new leader, its
    // leases may be taken; the live worker's never.
    const expired = await waitUntil(
      "the silent worker's leases to expire",
      async () => {
        const leases = await look();
        return leases.filter(([, owner, , exp]) => owner === 'silent' && exp).length === 2
          ? true
          : undefined;
      },
      FAILOVER * 3,
      200,
    );
    expect(expired).toBe(true);
    const expiredAfterMs = Date.now() - electedAtMs;
    expect(expiredAfterMs).toBeGreaterThanOrEqual(FAILOVER - 1_000);
    const taken = await retried(() => take('other', shard(2), 1));
    expect(taken.lease?.owner).toBe('other');
    beating = false;
    await beats;
    for (const { leases } of looks) {
      for (const [shardId, owner, counter, exp] of leases) {
        if (shardId === shard(0) || shardId === shard(1)) {
          expect({ shardId, owner, counter, exp }).toEqual({
            shardId,
            owner: 'alive',
            counter: 1,
            exp: false,
          });
        }
      }
    }
    console.log(
      `coordinator failover ${leader} -> ${next}: ${looks.length} looks at the group, the live worker's 2 leases held throughout; the silent worker's seen expired ${expiredAfterMs} ms after the election (failover ${FAILOVER} ms; first look ${lookedWithinMs} ms after it)`,
    );
  }, 120_000);
});
