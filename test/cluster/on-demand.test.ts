import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import { StreamMode, StreamStatus } from '../../src/gen/rheos/v1/stream.js';
import { listAll, readLineage, waitActive } from '../helpers/lineage.js';
import type { PutResult } from './checker.js';
import { seededRandom } from '../raft/harness.js';
import { ClusterHarness } from './harness.js';
import { callResult, perRecordResult } from './workload.js';

/**
 * On-demand scaling end to end on real processes (1 coordinator, 3 brokers, RF 3): an ON_DEMAND
 * stream starts with 4 shards; producers write at a rising rate until the coordinator splits
 * shards whose leaders report a write rate above the (lowered) split threshold; once the load
 * stops, the cold shards are merged back down to 4. Afterwards every shard is read in lineage
 * order (parents to their end before their children): every acknowledged record is there exactly
 * once, at the shard and sequence number it was acknowledged with, nothing else is there but
 * records whose outcome was unknown, each shard's sequence numbers rise, each producer's records
 * keep their order within a shard, and each partition key's across generations.
 */

const STREAM = 'on-demand';
const INITIAL_SHARDS = 4;
const SPLIT_BYTES_PER_SECOND = 32 * 1024;
const SPLIT_AFTER_MS = 2_000;
const MERGE_BYTES_PER_SECOND = 4 * 1024;
const MERGE_AFTER_MS = 3_000;
const PRODUCERS = 2;
const KEYS_PER_PRODUCER = 200;
const RECORD_BYTES = 1024;
const MAX_BATCH = 50;
/** Total write rate (bytes/s, all producers) of each step of the rising load. */
const RATE_STEPS = [16, 64, 128, 192, 256, 320].map((k) => k * 1024);
const STEP_MS = 3_000;
/** The load goes on for this long after the first split is seen, then stops. */
const LOAD_AFTER_SPLIT_MS = 4_000;
const MAX_LOAD_MS = 60_000;
const MAX_RECORDS = 40_000;
const SPLIT_DEADLINE_MS = 60_000;
const MERGE_DEADLINE_MS = 90_000;

let harness: ClusterHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Put {
  readonly producer: number;
  /** Per producer, in the order the calls were sent (a producer sends one call at a time). */
  readonly order: number;
  readonly value: string;
  readonly partitionKey: string;
  readonly result: PutResult;
}

async function openShards(client: RheosClient): Promise<{ open: number; active: boolean }> {
  const summary = await client.describeStreamSummary({ streamName: STREAM });
  return {
    open: summary.streamDescriptionSummary?.openShardCount ?? -1,
    active: summary.streamDescriptionSummary?.streamStatus === StreamStatus.STREAM_STATUS_ACTIVE,
  };
}

async function openShardCount(client: RheosClient): Promise<number> {
  return (await openShards(client)).open;
}

async function listedOpenShards(client: RheosClient): Promise<number> {
  return (await listAll(client, STREAM)).filter(
    (s) => s.sequenceNumberRange?.endingSequenceNumber === '',
  ).length;
}

describe('on-demand scaling on 3 brokers', () => {
  it('an ON_DEMAND stream gains shards under a rising write rate and loses them after the load stops, losing nothing', async () => {
    harness = await ClusterHarness.start({
      brokers: 3,
      coordinators: 1,
      streams: [],
      tickMs: 50,
      coordinatorArgs: [
        '--on-demand-split-bytes-per-second',
        String(SPLIT_BYTES_PER_SECOND),
        '--on-demand-split-after-ms',
        String(SPLIT_AFTER_MS),
        '--on-demand-merge-bytes-per-second',
        String(MERGE_BYTES_PER_SECOND),
        '--on-demand-merge-after-ms',
        String(MERGE_AFTER_MS),
      ],
    });
    const h = harness;
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    const lines: string[] = [];
    const log = (line: string) => lines.push(`${(now() / 1000).toFixed(1).padStart(6)}s ${line}`);
    const control = h.client(10_000);
    // Set in the finally too, so a failed assertion leaves no loop running.
    let sampling = true;
    let stopLoad = false;
    let sampler: Promise<void> = Promise.resolve();
    let producers: Array<Promise<void>> = [];
    try {
      // 1. An ON_DEMAND stream starts with the default shard count.
      await control.createStream({
        streamName: STREAM,
        streamMode: StreamMode.STREAM_MODE_ON_DEMAND,
      });
      await waitActive(control, STREAM, 30_000);
      const summary = await control.describeStreamSummary({ streamName: STREAM });
      expect(summary.streamDescriptionSummary?.streamMode).toBe(StreamMode.STREAM_MODE_ON_DEMAND);
      expect(summary.streamDescriptionSummary?.openShardCount).toBe(INITIAL_SHARDS);
      expect(await listedOpenShards(control)).toBe(INITIAL_SHARDS);
      log(`stream ${STREAM} ACTIVE with ${INITIAL_SHARDS} open shards`);

      // The open shard count over time, sampled throughout.
      // (A merge's first parent is sealed before its second: for that moment the count is one
      // lower, with the stream UPDATING; a split seals its one parent and opens its children in
      // one step.)
      const samples: Array<{ atMs: number; open: number; active: boolean }> = [];
      sampler = (async () => {
        while (sampling) {
          const sample = await openShards(control).catch(() => undefined);
          if (sample !== undefined) {
            const last = samples.at(-1);
            if (last?.open !== sample.open) log(`open shards: ${sample.open}`);
            samples.push({ atMs: now(), ...sample });
          }
          await sleep(200);
        }
      })();
      const peak = () => Math.max(...samples.map((s) => s.open));

      // 2. A rising write rate, bounded in time and count; every result kept.
      const puts: Put[] = [];
      const loadStartMs = now();
      let loadStopMs = Number.NaN;
      let rateNow = 0;
      const padding = 'x'.repeat(RECORD_BYTES);
      const produce = async (p: number) => {
        const client = h.client(5_000);
        const rand = seededRandom(1_000 + p);
        let n = 0;
        let order = 0;
        let sentBytes = 0;
        let stepStartMs = loadStartMs;
        let step = -1;
        try {
          while (!stopLoad && now() - loadStartMs < MAX_LOAD_MS && puts.length < MAX_RECORDS) {
            const wantedStep = Math.min(
              RATE_STEPS.length - 1,
              Math.floor((now() - loadStartMs) / STEP_MS),
            );
            if (wantedStep !== step) {
              step = wantedStep;
              stepStartMs = now();
              sentBytes = 0;
              rateNow = RATE_STEPS[step] as number;
              if (p === 0) log(`write rate now ${rateNow / 1024} KiB/s`);
            }
            const rate = (RATE_STEPS[step] as number) / PRODUCERS;
            const dueBytes = ((now() - stepStartMs) * rate) / 1000 - sentBytes;
            const count = Math.min(MAX_BATCH, Math.floor(dueBytes / RECORD_BYTES));
            if (count <= 0) {
              await sleep(20);
              continue;
            }
            const batch = Array.from({ length: count }, () => {
              const value = `p${p}-${n++}`;
              const partitionKey = `p${p}-k${Math.floor(rand() * KEYS_PER_PRODUCER)}`;
              return { value, partitionKey };
            });
            sentBytes += count * RECORD_BYTES;
            const callOrder = order++;
            try {
              const answer = await client.putRecords({
                streamName: STREAM,
                records: batch.map((r) => ({
                  partitionKey: r.partitionKey,
                  data: Buffer.from(`${r.value}|${padding}`.slice(0, RECORD_BYTES)),
                })),
              });
              answer.records.forEach((r, i) => {
                const { value, partitionKey } = batch[i] as (typeof batch)[number];
                puts.push({
                  producer: p,
                  order: callOrder,
                  value,
                  partitionKey,
                  result:
                    r.errorCode === ''
                      ? { type: 'ok', shardId: r.shardId, sequenceNumber: r.sequenceNumber }
                      : perRecordResult(r.errorCode, r.errorMessage),
                });
              });
            } catch (error) {
              const result = callResult(error);
              for (const { value, partitionKey } of batch) {
                puts.push({ producer: p, order: callOrder, value, partitionKey, result });
              }
              await sleep(100);
            }
          }
        } finally {
          client.close();
        }
      };
      producers = Array.from({ length: PRODUCERS }, (_, p) => produce(p));

      // 3. The stream gains shards.
      let firstSplitMs = Number.NaN;
      while (now() - loadStartMs < SPLIT_DEADLINE_MS) {
        if (samples.some((s) => s.atMs >= loadStartMs && s.open > INITIAL_SHARDS)) {
          firstSplitMs =
            (samples.find((s) => s.open > INITIAL_SHARDS)?.atMs ?? now()) - loadStartMs;
          break;
        }
        await sleep(100);
      }
      log(
        `first split seen ${Math.round(firstSplitMs)} ms after the load started, while writing ${rateNow / 1024} KiB/s`,
      );
      expect(firstSplitMs).toBeLessThan(SPLIT_DEADLINE_MS);
      expect(await openShardCount(control)).toBeGreaterThan(INITIAL_SHARDS);
      await sleep(LOAD_AFTER_SPLIT_MS);

      // 4. The load stops; the cold shards are merged back down to the minimum.
      stopLoad = true;
      await Promise.all(producers);
      loadStopMs = now();
      const peakUnderLoad = peak();
      log(`load stopped; ${puts.length} records sent; peak ${peakUnderLoad} open shards`);
      let mergedBackMs = Number.NaN;
      while (now() - loadStopMs < MERGE_DEADLINE_MS) {
        const last = samples.at(-1);
        if (
          last !== undefined &&
          last.atMs > loadStopMs &&
          last.active &&
          last.open <= INITIAL_SHARDS
        ) {
          mergedBackMs = last.atMs - loadStopMs;
          break;
        }
        await sleep(100);
      }
      expect(mergedBackMs).toBeLessThan(MERGE_DEADLINE_MS);
      await waitActive(control, STREAM, 30_000);
      // Nothing else happens once the stream is back at its minimum and idle.
      await sleep(MERGE_AFTER_MS + 1_000);
      sampling = false;
      await sampler;
      const peakOpen = peak();
      const finalOpen = await openShardCount(control);
      expect(finalOpen).toBe(INITIAL_SHARDS);
      expect(await listedOpenShards(control)).toBe(INITIAL_SHARDS);
      expect(Math.min(...samples.map((s) => s.open))).toBe(INITIAL_SHARDS);

      // 5. Every generation read, parents before children.
      const lineage = await readLineage(control, STREAM);
      const shards = await listAll(control, STREAM);
      const merges = shards.filter((s) => s.adjacentParentShardId !== '').length;
      const splits =
        shards.filter((s) => s.parentShardId !== '' && s.adjacentParentShardId === '').length / 2;
      const acked = puts.filter((op) => op.result.type === 'ok');
      const unknown = new Set(puts.filter((op) => op.result.type === 'info').map((op) => op.value));
      const definite = new Set(
        puts.filter((op) => op.result.type === 'fail').map((op) => op.value),
      );
      const stored = new Map<string, Array<{ shardId: string; sequenceNumber: string }>>();
      const problems: string[] = [];
      const lastSequence = new Map<string, bigint>();
      for (const { shardId, record } of lineage) {
        const value = record.data.toString().split('|')[0] as string;
        const at = stored.get(value) ?? [];
        at.push({ shardId, sequenceNumber: record.sequenceNumber });
        stored.set(value, at);
        const sequence = BigInt(record.sequenceNumber);
        const previous = lastSequence.get(shardId);
        if (previous !== undefined && sequence <= previous) {
          problems.push(`shard ${shardId}: ${record.sequenceNumber} after ${previous}`);
        }
        lastSequence.set(shardId, sequence);
      }
      for (const op of acked) {
        if (op.result.type !== 'ok') continue;
        const at = stored.get(op.value) ?? [];
        if (at.length !== 1) problems.push(`${op.value} stored ${at.length} times`);
        else if (
          at[0]?.shardId !== op.result.shardId ||
          at[0]?.sequenceNumber !== op.result.sequenceNumber
        ) {
          problems.push(
            `${op.value} acknowledged at ${op.result.shardId}/${op.result.sequenceNumber}, stored at ${at[0]?.shardId}/${at[0]?.sequenceNumber}`,
          );
        }
      }
      const ackedValues = new Set(acked.map((op) => op.value));
      for (const [value, at] of stored) {
        if (ackedValues.has(value)) continue;
        if (definite.has(value)) problems.push(`${value} failed definitely but is stored`);
        else if (!unknown.has(value)) problems.push(`${value} stored but never written`);
        else if (at.length > 1) problems.push(`${value} stored ${at.length} times`);
      }
      // Per shard, each producer's acknowledged records come in the order it sent them.
      const ackOrder = new Map(acked.map((op, i) => [op.value, i]));
      const lastAcked = new Map<string, number>();
      for (const { shardId, record } of lineage) {
        const value = record.data.toString().split('|')[0] as string;
        const index = ackOrder.get(value);
        if (index === undefined) continue;
        const key = `${shardId} ${value.split('-')[0]}`;
        const previous = lastAcked.get(key);
        if (previous !== undefined && index <= previous) {
          problems.push(`shard ${shardId}: ${value} after a record its producer sent later`);
        }
        lastAcked.set(key, index);
      }
      // Per partition key, across generations (lineage order), the order its producer wrote.
      const keyOf = new Map(puts.map((op) => [op.value, op.partitionKey]));
      const lastOfKey = new Map<string, number>();
      for (const { record } of lineage) {
        const value = record.data.toString().split('|')[0] as string;
        const key = keyOf.get(value) ?? '?';
        const n = Number(value.split('-')[1]);
        const last = lastOfKey.get(key);
        if (last !== undefined && n <= last) problems.push(`key ${key}: ${n} after ${last}`);
        lastOfKey.set(key, n);
      }

      // 6. The figures.
      const loadMs = loadStopMs - loadStartMs;
      console.log(
        [
          ...lines,
          `time to the first split: ${Math.round(firstSplitMs)} ms after the load started`,
          `peak open shards: ${peakOpen} (${peakUnderLoad} when the load stopped)`,
          `time to merge back to ${INITIAL_SHARDS}: ${Math.round(mergedBackMs)} ms after the load stopped`,
          `shards listed at the end: ${shards.length} (${finalOpen} open): ${splits} splits, ${merges} merges`,
          `load: ${(loadMs / 1000).toFixed(1)} s, ${puts.length} records sent, ${acked.length} acknowledged (${Math.round((acked.length * RECORD_BYTES) / 1024 / (loadMs / 1000))} KiB/s on average), ${definite.size} failed definitely, ${unknown.size} unknown`,
          `records read: ${lineage.length}; problems: ${problems.length}`,
          ...problems.slice(0, 20).map((p) => `PROBLEM ${p}`),
        ].join('\n'),
      );
      expect(problems).toEqual([]);
      expect(acked.length).toBeGreaterThan(1_000);
      expect(peakOpen).toBeGreaterThan(INITIAL_SHARDS);
      // Every split (2 children) and merge (1 child) is in the listing, its parents closed, and
      // the lineage was read through all of them: as many merges as splits, back at 4 open.
      expect(merges).toBe(splits);
      expect(splits).toBeGreaterThanOrEqual(peakOpen - INITIAL_SHARDS);
      expect(shards.length).toBe(INITIAL_SHARDS + 2 * splits + merges);
      expect(new Set(lineage.map((r) => r.shardId)).size).toBeLessThanOrEqual(shards.length);
    } finally {
      stopLoad = true;
      sampling = false;
      await Promise.allSettled([...producers, sampler]);
      control.close();
    }
  }, 240_000);
});
