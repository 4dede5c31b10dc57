import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createProducer,
  type ProducerClient,
  type Receipt,
  type RecordResult,
} from '../../src/client/producer.js';
import { InternalFailureError } from '../../src/common/errors.js';
import { MAX_HASH_KEY } from '../../src/common/hash-key.js';
import { listAll, readLineage, waitActive } from '../helpers/lineage.js';
import { ClusterHarness } from './harness.js';

/**
 * The buffered, idempotent producer against real processes (3 brokers, RF 3, one coordinator):
 * 100,000 records (1,000,000 with RHEOS_SOAK=1, `npm run test:soak`) with random keys, while a
 * broker is killed (kill -9) and brought back and a shard is split. Afterwards every generation is
 * read, parents before children: every acknowledged record is there exactly once, each key's
 * records in the order they were sent, even though the producer retried (counted); records that
 * failed for good (none expected) are reported.
 */

const STREAM = 'produced';
const SOAK = process.env.RHEOS_SOAK === '1';
const RECORDS = Number(process.env.RHEOS_PRODUCER_RECORDS ?? (SOAK ? 1_000_000 : 100_000));
const KEYS = 2_000;
const TIMEOUT_MS = SOAK ? 1_800_000 : 240_000;

let harness: ClusterHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the buffered producer on a 3-broker cluster', () => {
  it(
    `sends ${RECORDS} records through a broker kill and a split: each stored once, in key order`,
    async () => {
      harness = await ClusterHarness.start({
        brokers: 3,
        coordinators: 1,
        streams: [{ name: STREAM, shardCount: 4 }],
        tickMs: 50,
      });
      const h = harness;
      const t0 = performance.now();
      const lines: string[] = [];
      const log = (line: string) =>
        lines.push(`${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s ${line}`);
      const control = h.client(10_000);
      await waitActive(control, STREAM);

      const client = h.client(5_000);
      // Besides the kill, one answer in 40 is lost on the way back after the shard stored the
      // batch, so the producer must retry batches that are stored: the shards catch those.
      let calls = 0;
      let answersLost = 0;
      const lossy: ProducerClient = {
        shardRoutes: client.shardRoutes.bind(client),
        async putToShard(...args: Parameters<ProducerClient['putToShard']>) {
          const response = await client.putToShard(...args);
          if (++calls % 40 === 0 && response.failedRecordCount === 0) {
            answersLost++;
            throw new InternalFailureError('the answer was lost (test)');
          }
          return response;
        },
      };
      const producer = createProducer({
        client: lossy,
        streamName: STREAM,
        lingerMs: 20,
        // Long enough to ride out an election and a cutover, so nothing should fail for good.
        recordTtlMs: 120_000,
        // Records are tiny (about 13 bytes): 1 MiB holds some 80,000, seconds of writing, well
        // within the time to live even while a broker is down.
        maxBufferedBytes: 1024 * 1024,
      });

      // Random keys; record i of a key carries "key:i", so order and duplicates show in the data.
      let seed = 0x2f6b1d;
      const random = () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed / 0x80000000;
      };
      const perKey = new Array<number>(KEYS).fill(0);
      const sent: string[] = [];
      const receipts: Promise<RecordResult>[] = [];
      const killAt = Math.floor(RECORDS * 0.25);
      const splitAt = Math.floor(RECORDS * 0.5);
      let killed = 0;
      let faults: Promise<void> = Promise.resolve();
      let split: Promise<void> = Promise.resolve();
      // Progress every 5 s, so a stall shows where it started.
      const progress = setInterval(() => {
        const { callsInFlight, lanesOpen, lanesClosing, lanesBlocked, recordsStored, batchesSent } =
          producer.stats();
        log(
          `progress: stored ${recordsStored}, batches ${batchesSent}, calls in flight ${callsInFlight}, lanes ${lanesOpen} open, ${lanesClosing} closing, ${lanesBlocked} blocked`,
        );
      }, 5_000);
      for (let n = 0; n < RECORDS; n++) {
        if (n === killAt) {
          killed = h.ids[n % h.ids.length] as number;
          faults = faults.then(async () => {
            await h.kill(killed);
            log(`killed broker ${killed} (kill -9) after ${n} records taken`);
            await sleep(1_000);
            await h.startBroker(killed);
            log(`broker ${killed} back`);
          });
        }
        if (n === splitAt) {
          split = (async () => {
            // Children need three brokers that are up: split once the killed one is back.
            await faults;
            const [first] = (await listAll(control, STREAM)).filter(
              (shard) => shard.sequenceNumberRange?.endingSequenceNumber === '',
            );
            const start = BigInt(first?.hashKeyRange?.startingHashKey ?? 0);
            const end = BigInt(first?.hashKeyRange?.endingHashKey ?? MAX_HASH_KEY);
            const t = performance.now();
            for (let attempt = 0; ; attempt++) {
              try {
                await control.splitShard({
                  streamName: STREAM,
                  shardToSplit: first?.shardId ?? '',
                  newStartingHashKey: ((start + end + 1n) / 2n).toString(),
                });
                break;
              } catch (error) {
                // The coordinators may not have heard from the restarted broker yet.
                const notUp = error instanceof Error && /brokers that are up/.test(error.message);
                if (!notUp || attempt >= 50) throw error;
                await sleep(200);
              }
            }
            await waitActive(control, STREAM, 90_000);
            log(`split ${first?.shardId}: ACTIVE after ${Math.round(performance.now() - t)} ms`);
          })();
        }
        const k = Math.floor(random() * KEYS);
        const data = `k${k}:${(perKey[k] = (perKey[k] ?? 0) + 1) - 1}`;
        sent.push(data);
        const receipt: Receipt = await producer.send({ partitionKey: `k${k}`, data });
        receipts.push(receipt.stored);
      }
      await Promise.all([faults, split]);
      const outcomes = await Promise.allSettled(receipts);
      await producer.close();
      clearInterval(progress);
      const stats = producer.stats();
      log(`producer: ${JSON.stringify(stats)}; answers lost on purpose ${answersLost}`);

      const stored = new Set<string>();
      const failed: string[] = [];
      outcomes.forEach((o, i) => {
        if (o.status === 'fulfilled') stored.add(sent[i] as string);
        else failed.push(`${sent[i]}: ${String(o.reason)}`);
      });

      // Every generation, parents to their end before children.
      const lineage = await readLineage(control, STREAM);
      const shards = await listAll(control, STREAM);
      const seen = new Map<string, number>();
      const last = new Map<string, number>();
      let outOfOrder = 0;
      for (const { record } of lineage) {
        const text = record.data.toString();
        seen.set(text, (seen.get(text) ?? 0) + 1);
        const [key, index] = text.split(':') as [string, string];
        if ((last.get(key) ?? -1) > Number(index)) outOfOrder++;
        last.set(key, Math.max(last.get(key) ?? -1, Number(index)));
      }
      let lost = 0;
      let duplicates = 0;
      for (const data of stored) if (!seen.has(data)) lost++;
      for (const n of seen.values()) if (n > 1) duplicates += n - 1;
      log(
        `read ${lineage.length} records from ${shards.length} shards: lost ${lost}, duplicates ${duplicates}, ` +
          `out of key order ${outOfOrder}, failed for good ${failed.length}; retried ${stats.recordsRetried}, ` +
          `duplicates caught by the shards ${stats.duplicatesCaught}, indeterminate attempts ${stats.indeterminateAttempts}`,
      );
      for (const f of failed.slice(0, 3)) log(`failed: ${f}`);
      if (duplicates > 0 || lost > 0) {
        // Where the first few duplicates sit and what the producer was told, to diagnose a failure.
        const places = new Map<string, string[]>();
        for (const { shardId, record } of lineage) {
          const text = record.data.toString();
          if ((seen.get(text) ?? 0) > 1) {
            places.set(text, [...(places.get(text) ?? []), `${shardId}@${record.sequenceNumber}`]);
          }
        }
        outcomes.forEach((o, i) => {
          const text = sent[i] as string;
          const at = places.get(text);
          if (at === undefined || at.length > 8) return;
          const answer =
            o.status === 'fulfilled'
              ? `${o.value.shardId}@${o.value.sequenceNumber} duplicate=${o.value.duplicate} attempts=${o.value.attempts}`
              : String(o.reason);
          if (places.size <= 8 || i % 97 === 0)
            log(`duplicate ${text}: ${at.join(' ')}; acked ${answer}`);
        });
      }
      console.log(lines.join('\n'));
      control.close();
      client.close();

      expect(killed).toBeGreaterThan(0);
      expect(shards.length).toBe(6);
      expect(failed.slice(0, 5)).toEqual([]);
      expect(lost).toBe(0);
      expect(duplicates).toBe(0);
      expect(outOfOrder).toBe(0);
      expect(lineage.length).toBe(stored.size);
      // The faults did make the producer retry, stored batches too: the zero above is
      // idempotence, not luck.
      expect(stats.recordsRetried).toBeGreaterThan(0);
      expect(answersLost).toBeGreaterThan(0);
      expect(stats.indeterminateAttempts).toBeGreaterThanOrEqual(answersLost);
      expect(stats.duplicatesCaught).toBeGreaterThan(0);
    },
    TIMEOUT_MS,
  );
});
