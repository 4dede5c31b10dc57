import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_HASH_KEY } from '../../src/common/hash-key.js';
import { ScalingType } from '../../src/gen/rheos/v1/control.js';
import { StreamStatus } from '../../src/gen/rheos/v1/stream.js';
import { listAll, readLineage, waitActive } from '../helpers/lineage.js';
import { checkHistory, type FinalShardLog, type PutOp, type ReadObservation } from './checker.js';
import { ClusterHarness } from './harness.js';
import { readReplicaLogs } from './replica-logs.js';
import { callResult, perRecordResult } from './workload.js';

/**
 * Resharding under load on real processes: 3 coordinators and 3 brokers (RF 3), producers writing
 * without pause while the stream is split, merged and rescaled again and again, and the
 * coordinator leader killed (kill -9) in the middle of a split. Afterwards every shard is read in
 * lineage order (each parent to its end before its children): the checker finds every
 * acknowledged record at its acknowledged position, no definite failure stored, no replica
 * divergent; each partition key's records come in the order its producer wrote them, across
 * generations.
 */

const STREAM = 'elastic';
const PRODUCERS = 4;
const KEYS_PER_PRODUCER = 6;
const BATCH = 10;

let harness: ClusterHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

interface Reshard {
  readonly what: string;
  readonly startMs: number;
  readonly endMs: number;
}

describe('resharding with 3 coordinators and 3 brokers', () => {
  it('splits, merges and rescales under writes, survives a coordinator kill mid-split, and loses nothing', async () => {
    harness = await ClusterHarness.start({
      brokers: 3,
      coordinators: 3,
      streams: [{ name: STREAM, shardCount: 2 }],
      tickMs: 50,
    });
    const h = harness;
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    const lines: string[] = [];
    const log = (line: string) => lines.push(`${(now() / 1000).toFixed(1).padStart(6)}s ${line}`);
    const control = h.client(10_000);
    await waitActive(control, STREAM);

    const puts: PutOp[] = [];
    let stop = false;
    const produce = async (p: number) => {
      const client = h.client(5_000);
      let n = 0;
      try {
        while (!stop) {
          const values = Array.from({ length: BATCH }, () => `p${p}-${n++}`);
          const keys = values.map((_, i) => `p${p}-k${(n + i) % KEYS_PER_PRODUCER}`);
          const startMs = now();
          try {
            const answer = await client.putRecords({
              streamName: STREAM,
              records: values.map((v, i) => ({
                partitionKey: keys[i] as string,
                data: Buffer.from(v),
              })),
            });
            answer.records.forEach((r, i) => {
              const result: PutOp['result'] =
                r.errorCode === ''
                  ? { type: 'ok', shardId: r.shardId, sequenceNumber: r.sequenceNumber }
                  : perRecordResult(r.errorCode, r.errorMessage);
              puts.push({
                process: `p${p}`,
                value: values[i] as string,
                partitionKey: keys[i] as string,
                startMs,
                endMs: now(),
                result,
              });
            });
            // A producer keeps each key in order: it does not write on past a failed record.
            if (answer.failedRecordCount > 0) await sleep(50);
          } catch (error) {
            const result = callResult(error);
            values.forEach((v, i) =>
              puts.push({
                process: `p${p}`,
                value: v,
                partitionKey: keys[i] as string,
                startMs,
                endMs: now(),
                result,
              }),
            );
            await sleep(100);
          }
        }
      } finally {
        client.close();
      }
    };
    const producers = Array.from({ length: PRODUCERS }, (_, p) => produce(p));

    const reshards: Reshard[] = [];
    const timed = async (
      what: string,
      call: () => Promise<unknown>,
      during?: () => Promise<void>,
    ) => {
      const startMs = now();
      await call();
      await during?.();
      await waitActive(control, STREAM, 90_000);
      reshards.push({ what, startMs, endMs: now() });
      log(`${what}: ${Math.round(now() - startMs)} ms`);
      await sleep(1_500);
    };
    const openShards = async () =>
      (await listAll(control, STREAM))
        .filter((s) => s.sequenceNumberRange?.endingSequenceNumber === '')
        .sort((a, b) =>
          BigInt(a.hashKeyRange?.startingHashKey ?? 0) <
          BigInt(b.hashKeyRange?.startingHashKey ?? 0)
            ? -1
            : 1,
        );
    const splitFirst = async () => {
      const [first] = await openShards();
      const start = BigInt(first?.hashKeyRange?.startingHashKey ?? 0);
      const end = BigInt(first?.hashKeyRange?.endingHashKey ?? MAX_HASH_KEY);
      await control.splitShard({
        streamName: STREAM,
        shardToSplit: first?.shardId ?? '',
        newStartingHashKey: ((start + end + 1n) / 2n).toString(),
      });
    };
    const scale = (target: number) => () =>
      control.updateShardCount({
        streamName: STREAM,
        targetShardCount: target,
        scalingType: ScalingType.SCALING_TYPE_UNIFORM_SCALING,
      });

    await sleep(2_000);
    await timed('split', splitFirst);
    await timed('merge', async () => {
      const [a, b] = await openShards();
      await control.mergeShards({
        streamName: STREAM,
        shardToMerge: a?.shardId ?? '',
        adjacentShardToMerge: b?.shardId ?? '',
      });
    });
    await timed('scale to 4', scale(4));
    await timed('scale to 3', scale(3));
    // A coordinator-leader kill in the middle of a split: the intent is in the replicated
    // metadata, so the next leader carries it on.
    let killed = 0;
    await timed('split with the coordinator leader killed', splitFirst, async () => {
      const summary = await control.describeStreamSummary({ streamName: STREAM });
      expect(summary.streamDescriptionSummary?.streamStatus).toBe(
        StreamStatus.STREAM_STATUS_UPDATING,
      );
      killed = await h.coordinatorLeader();
      await h.killCoordinator(killed);
      log(`killed coordinator ${killed} mid-split`);
    });
    await h.startCoordinator(killed);
    await timed('scale to 6', scale(6));
    await timed('scale to 3 again', scale(3));
    await sleep(1_000);
    stop = true;
    await Promise.all(producers);

    // Read every generation, parents before children.
    const lineage = await readLineage(control, STREAM);
    const shards = await listAll(control, STREAM);
    const finalLogs: FinalShardLog[] = shards.map((shard) => ({
      shardId: shard.shardId,
      records: lineage
        .filter((r) => r.shardId === shard.shardId)
        .map(({ record }) => ({
          sequenceNumber: record.sequenceNumber,
          value: record.data.toString(),
        })),
    }));
    const reads: ReadObservation[] = finalLogs.map((log) => ({ consumer: 'lineage', ...log }));
    const order = lineage.map(({ record }) => record.data.toString());
    const metadata = await h.metadataState();
    control.close();
    await h.stopAll();
    const replicaLogs = await readReplicaLogs(metadata, h.ids, (id) => h.info(id).dataDir, STREAM);
    const check = checkHistory({ puts, reads, finalLogs, replicaLogs });

    // Per key, the records come in the order the producer wrote them, across generations.
    const keyOf = new Map(puts.map((op) => [op.value, op.partitionKey]));
    const lastOfKey = new Map<string, number>();
    const outOfOrder: string[] = [];
    for (const value of order) {
      const key = keyOf.get(value) ?? '?';
      const n = Number(value.split('-')[1]);
      const last = lastOfKey.get(key);
      if (last !== undefined && n <= last) outOfOrder.push(`${key}: ${n} after ${last}`);
      lastOfKey.set(key, n);
    }

    // Throughput while each reshard ran, beside the seconds before the first.
    const ackedIn = (fromMs: number, toMs: number) =>
      puts.filter((op) => op.result.type === 'ok' && op.endMs >= fromMs && op.endMs < toMs).length;
    const first = reshards[0] as Reshard;
    const baseline = ackedIn(first.startMs - 2_000, first.startMs) / 2;
    console.log(
      [
        ...lines,
        `shards at the end: ${shards.length} listed, ${shards.filter((s) => s.sequenceNumberRange?.endingSequenceNumber === '').length} open`,
        `acknowledged ${check.acknowledged}, definite failures ${check.definiteFailures}, indeterminate ${check.indeterminate} (written ${check.indeterminateWritten}); lost ${check.lost.count}, conflicts ${check.conflicts.count}, divergence ${check.divergence.count}, duplicates ${check.duplicates.count}, out of key order ${outOfOrder.length}`,
        `writes before resharding: ${Math.round(baseline)} records/s`,
        ...reshards.map(
          (r) =>
            `${r.what}: ${Math.round(r.endMs - r.startMs)} ms, ${Math.round((ackedIn(r.startMs, r.endMs) * 1000) / Math.max(1, r.endMs - r.startMs))} records/s acknowledged meanwhile`,
        ),
        ...check.lost.examples.map((e) => `LOST ${e}`),
        ...outOfOrder.slice(0, 10).map((e) => `ORDER ${e}`),
      ].join('\n'),
    );
    expect(check.lost.examples).toEqual([]);
    expect(check.conflicts.examples).toEqual([]);
    expect(check.divergence.examples).toEqual([]);
    expect(check.definiteButWritten.examples).toEqual([]);
    expect(check.phantomReads.examples).toEqual([]);
    expect(check.ok).toBe(true);
    expect(outOfOrder).toEqual([]);
    expect(check.acknowledged).toBeGreaterThan(1_000);
    expect(reshards).toHaveLength(7);
    // Every generation was read: 2 shards, a split, a merge and four rescales make many more.
    expect(shards.length).toBeGreaterThan(10);
  }, 300_000);
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
