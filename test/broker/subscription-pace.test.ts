import { afterEach, describe, expect, it } from 'vitest';
import { serveSubscription } from '../../src/broker/shard-subscription.js';
import { SingleNodeReplica } from '../../src/broker/single-node-replica.js';
import { ManualClock } from '../../src/common/clock.js';
import type { SubscribeToShardResponse } from '../../src/gen/rheos/v1/data.js';
import { GroupCommitWriter } from '../../src/storage/group-commit.js';
import { ShardLog } from '../../src/storage/shard-log.js';
import { Cleanup, openStore, tempFolder } from '../storage/kv-helpers.js';

/**
 * Each consumer's throughput is its own: a subscription sends at most its pace (2 MiB/s per shard
 * in Kinesis; smaller here so the test is quick) however far behind it starts, and keeps up that
 * pace rather than falling below it. Time is a manual clock that the subscription's waits move,
 * so the figures are exact and the test never sleeps.
 */

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const RECORD_BYTES = 1_000;
const KEY = 'k';

async function filledReplica(clock: ManualClock, records: number): Promise<SingleNodeReplica> {
  const kv = await openStore(cleanup, await tempFolder(cleanup));
  const replica = await SingleNodeReplica.open({
    shard: 1,
    log: new ShardLog(kv, 1),
    writer: new GroupCommitWriter(kv, { onFatal: () => undefined }),
    clock,
    // Small: the laggard reads storage, then the tail.
    tailBytes: 20 * RECORD_BYTES,
  });
  cleanup.add(() => replica.close());
  for (let i = 0; i < records; i += 50) {
    await replica.propose(
      Array.from({ length: 50 }, () => ({ partitionKey: KEY, data: Buffer.alloc(RECORD_BYTES) })),
    );
  }
  return replica;
}

describe('the pace of one subscription', () => {
  it.each([
    [50_000, 8_000],
    [20_000, 4_000],
  ])(
    'sends at most %d bytes a second (plus one second of burst), and not less, to a consumer far behind (events of %d bytes at most)',
    async (bytesPerSecond, maxEventBytes) => {
      const clock = new ManualClock();
      const total = 1_000;
      const replica = await filledReplica(clock, total);
      const start = clock.monotonicMs();
      const stop = new AbortController();
      /** Bytes sent by the end of each whole second of the manual clock. */
      const sentBySecond: number[] = [];
      let sent = 0;
      let records = 0;
      let events = 0;
      let biggestEvent = 0;
      const emit = async (event: SubscribeToShardResponse) => {
        events++;
        const bytes = event.records.reduce((n, r) => n + r.data.length + r.partitionKey.length, 0);
        biggestEvent = Math.max(biggestEvent, bytes);
        sent += bytes;
        records += event.records.length;
        sentBySecond[Math.floor((clock.monotonicMs() - start) / 1000)] = sent;
        if (records === total) stop.abort();
      };
      const waitedMs: number[] = [];
      await serveSubscription(
        {
          replica,
          shardIncarnation: 1,
          from: replica.trimHorizon(),
          children: () => Promise.resolve(undefined),
          clock,
          signal: stop.signal,
          endsAtMs: Number.MAX_SAFE_INTEGER,
          sleep: (ms) => {
            waitedMs.push(ms);
            clock.advance(ms);
            return Promise.resolve();
          },
        },
        emit,
        { bytesPerSecond, idleEventMs: 5_000, maxEventBytes },
      );
      const elapsedS = (clock.monotonicMs() - start) / 1000;
      const totalBytes = total * (RECORD_BYTES + KEY.length);
      expect(records).toBe(total);
      expect(biggestEvent).toBeLessThanOrEqual(maxEventBytes);
      // Never above the pace: by any time t, at most one second's burst plus t seconds' worth,
      // plus the one record a read returns even when it is larger than what is left.
      for (const [second, bytes] of sentBySecond.entries()) {
        if (bytes === undefined) continue;
        expect(bytes).toBeLessThanOrEqual(
          bytesPerSecond * (second + 2) + RECORD_BYTES + KEY.length,
        );
      }
      // Never below it either: the whole backlog took about its size over the pace, less the
      // first second's burst.
      expect(elapsedS).toBeGreaterThanOrEqual(totalBytes / bytesPerSecond - 1.05);
      expect(elapsedS).toBeLessThanOrEqual(totalBytes / bytesPerSecond);
      expect(waitedMs.length).toBeGreaterThan(0);
      expect(events).toBeGreaterThan(totalBytes / maxEventBytes - 1);
    },
  );

  it('does not wait at all with no pace (0)', async () => {
    const clock = new ManualClock();
    const replica = await filledReplica(clock, 500);
    const stop = new AbortController();
    let records = 0;
    await serveSubscription(
      {
        replica,
        shardIncarnation: 1,
        from: replica.trimHorizon(),
        children: () => Promise.resolve(undefined),
        clock,
        signal: stop.signal,
        endsAtMs: Number.MAX_SAFE_INTEGER,
        sleep: () => Promise.reject(new Error('a subscription without a pace waited')),
      },
      async (event) => {
        records += event.records.length;
        if (records === 500) stop.abort();
      },
      { bytesPerSecond: 0, idleEventMs: 5_000, maxEventBytes: 100_000 },
    );
    expect(records).toBe(500);
  });
});
