import { describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import { ManualClock } from '../../src/common/clock.js';
import { StreamMode } from '../../src/gen/rheos/v1/stream.js';
import type { Record as StreamRecord } from '../../src/gen/rheos/v1/stream.js';
import {
  bigintsIncreasing,
  createActive,
  expectError,
  It,
  iteratorFor,
  listAllShards,
  MiB,
  pseudoRandomBytes,
  readAll,
  readShard,
  shardId,
  UNLIMITED,
  useNodes,
  waitForStreamGone,
} from './helpers.js';

/** A graceful restart keeps every acknowledged record and every piece of stream metadata. */

const nodes = useNodes();

interface Acked {
  readonly stream: string;
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly partitionKey: string;
  readonly data: Buffer;
}

async function snapshot(client: RheosClient, streams: readonly string[]) {
  const records = new Map<string, StreamRecord[]>();
  const metadata: unknown[] = [];
  for (const streamName of streams) {
    for (const shard of await listAllShards(client, streamName)) {
      records.set(
        `${streamName}/${shard.shardId}`,
        await readShard(client, streamName, shard.shardId),
      );
    }
    metadata.push(
      await client.describeStream({ streamName }),
      await client.describeStreamSummary({ streamName }),
      await client.listTagsForStream({ streamName }),
    );
  }
  metadata.push(await client.listStreams(), await client.describeLimits());
  return { records, metadata };
}

function expectSameRecords(after: readonly StreamRecord[], before: readonly StreamRecord[]): void {
  expect(after.map((r) => ({ ...r, data: r.data.toString('hex') }))).toEqual(
    before.map((r) => ({ ...r, data: r.data.toString('hex') })),
  );
}

describe('restart', () => {
  it('keeps every acknowledged record byte for byte, and all stream metadata', async () => {
    const clock = new ManualClock(1_800_000_000_000);
    const t = await nodes.start({ clock, defaultShardLimits: UNLIMITED });
    const { client } = t;
    await createActive(client, 'a', 3, { tags: { team: 'x' } });
    await client.createStream({ streamName: 'b', streamMode: StreamMode.STREAM_MODE_ON_DEMAND });
    await client.waitForStreamActive('b', 30_000, 5);
    await createActive(client, 'c', 1, {
      shardLimits: { ...UNLIMITED, writeRecordsPerSecond: 10 },
    });
    await client.increaseStreamRetentionPeriod({ streamName: 'a', retentionPeriodHours: 100 });
    await client.updateStreamMode({
      streamName: 'a',
      streamMode: StreamMode.STREAM_MODE_ON_DEMAND,
    });
    await client.addTagsToStream({ streamName: 'c', tags: { k: 'v' } });

    const acked: Acked[] = [];
    let seed = 1;
    for (let batch = 0; batch < 6; batch++) {
      for (const stream of ['a', 'b']) {
        const records = Array.from({ length: 40 }, (_, i) => ({
          partitionKey: `${stream}-${batch}-${i}-\u00fc\u{1F600}`,
          data: pseudoRandomBytes((seed * 7919) % 5000, seed++),
        }));
        const put = await client.putRecords({ streamName: stream, records });
        put.records.forEach((r, i) => {
          expect(r.errorCode).toBe('');
          acked.push({ stream, ...r, ...records[i]! });
        });
      }
      const one = { partitionKey: `single-${batch}`, data: pseudoRandomBytes(100, seed++) };
      const single = await client.putRecord({ streamName: 'a', ...one });
      acked.push({ stream: 'a', ...single, ...one });
      clock.advance(1500);
    }
    const big = { partitionKey: 'big', data: pseudoRandomBytes(MiB - 3, seed++) };
    acked.push({ stream: 'a', ...(await client.putRecord({ streamName: 'a', ...big })), ...big });
    // Stream c admits 10 records a second: only the acknowledged ones may survive.
    const throttled = await client.putRecords({
      streamName: 'c',
      records: Array.from({ length: 15 }, (_, i) => ({
        partitionKey: 'c',
        data: Buffer.from([i]),
      })),
    });
    expect(throttled.failedRecordCount).toBe(5);
    throttled.records.forEach((r, i) => {
      if (r.errorCode === '')
        acked.push({ stream: 'c', ...r, partitionKey: 'c', data: Buffer.from([i]) });
    });

    const before = await snapshot(client, ['a', 'b', 'c']);
    const restarted = await nodes.restart(t);
    const after = await snapshot(restarted.client, ['a', 'b', 'c']);
    expect(after.metadata).toEqual(before.metadata);
    expect([...after.records.keys()]).toEqual([...before.records.keys()]);
    for (const [key, records] of before.records)
      expectSameRecords(after.records.get(key)!, records);

    // Every acknowledged record, and nothing else, is there.
    const bySequence = new Map<string, StreamRecord>();
    for (const [key, records] of after.records) {
      for (const r of records) bySequence.set(`${key.split('/')[0]}/${r.sequenceNumber}`, r);
    }
    expect(bySequence.size).toBe(acked.length);
    for (const a of acked) {
      const r = bySequence.get(`${a.stream}/${a.sequenceNumber}`);
      expect(r, `${a.stream} ${a.sequenceNumber}`).toBeDefined();
      expect(r!.partitionKey).toBe(a.partitionKey);
      expect(Buffer.compare(r!.data, a.data)).toBe(0);
    }

    // New sequence numbers are above every old one of the same shard.
    for (const stream of ['a', 'b', 'c']) {
      for (const shard of await listAllShards(restarted.client, stream)) {
        const put = await restarted.client.putRecord({
          streamName: stream,
          partitionKey: 'new',
          explicitHashKey: shard.hashKeyRange!.startingHashKey,
          data: Buffer.from('new'),
        });
        const old = before.records.get(`${stream}/${shard.shardId}`)!.map((r) => r.sequenceNumber);
        expect(bigintsIncreasing([...old, put.sequenceNumber])).toBe(true);
      }
    }
  });

  it('accepts iterators issued before the restart', async () => {
    const clock = new ManualClock(1_800_000_000_000);
    const t = await nodes.start({ clock, defaultShardLimits: UNLIMITED });
    await createActive(t.client, 's', 1);
    const put = await t.client.putRecords({
      streamName: 's',
      records: ['r0', 'r1', 'r2', 'r3', 'r4'].map((x) => ({
        partitionKey: 'k',
        data: Buffer.from(x),
      })),
    });
    const seq = put.records.map((r) => r.sequenceNumber);
    const horizon = await iteratorFor(
      t.client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    const latest = await iteratorFor(t.client, 's', shardId(0), It.SHARD_ITERATOR_TYPE_LATEST);
    const afterR2 = await iteratorFor(
      t.client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER,
      {
        startingSequenceNumber: seq[2]!,
      },
    );
    const page = await t.client.getRecords({ shardIterator: horizon, limit: 2 });
    const atTime = await iteratorFor(
      t.client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_AT_TIMESTAMP,
      {
        timestampMs: clock.nowMs(),
      },
    );
    clock.advance(60_000);

    const r = await nodes.restart(t);
    const texts = async (iterator: string) =>
      (await readAll(r.client, iterator)).records.map((x) => x.data.toString());
    expect(await texts(horizon)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(await texts(page.nextShardIterator)).toEqual(['r2', 'r3', 'r4']);
    expect(await texts(afterR2)).toEqual(['r3', 'r4']);
    expect(await texts(atTime)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(await texts(latest)).toEqual([]);
    await r.client.putRecord({ streamName: 's', partitionKey: 'k', data: Buffer.from('r5') });
    expect(await texts(latest)).toEqual(['r5']);
    // Their lifetime still counts from when they were issued.
    clock.advance(240_001);
    await expectError(r.client.getRecords({ shardIterator: horizon }), 'ExpiredIteratorException');
  });

  it('rotates the signing key on a restart after an hour, and keeps old iterators valid', async () => {
    const clock = new ManualClock(1_800_000_000_000);
    const t = await nodes.start({ clock, defaultShardLimits: UNLIMITED });
    await createActive(t.client, 's', 1);
    await t.client.putRecord({ streamName: 's', partitionKey: 'k', data: Buffer.from('x') });
    const firstKey = t.node.metadata.current().id;
    clock.advance(59 * 60_000);
    const old = await iteratorFor(t.client, 's', shardId(0), It.SHARD_ITERATOR_TYPE_TRIM_HORIZON);
    clock.advance(2 * 60_000);
    const r1 = await nodes.restart(t);
    expect(r1.node.metadata.current().id).not.toBe(firstKey);
    const fresh = await iteratorFor(
      r1.client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    expect(fresh).not.toBe(old);
    const r2 = await nodes.restart(r1);
    for (const iterator of [old, fresh]) {
      expect((await r2.client.getRecords({ shardIterator: iterator })).records).toHaveLength(1);
    }
    clock.advance(3 * 60_000 + 1); // old: 5 min + 1 ms; fresh: 3 min + 1 ms
    await expectError(r2.client.getRecords({ shardIterator: old }), 'ExpiredIteratorException');
    expect((await r2.client.getRecords({ shardIterator: fresh })).records).toHaveLength(1);
  });

  it('keeps a deleted stream deleted; a new stream of that name shares nothing with it', async () => {
    const clock = new ManualClock(1_800_000_000_000);
    const t = await nodes.start({ clock, defaultShardLimits: UNLIMITED });
    await createActive(t.client, 'x', 1);
    await createActive(t.client, 'y', 1);
    const old = await t.client.putRecord({
      streamName: 'x',
      partitionKey: 'k',
      data: Buffer.from('old'),
    });
    const oldIterator = await iteratorFor(
      t.client,
      'x',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    await t.client.deleteStream({ streamName: 'x' });
    await waitForStreamGone(t.client, 'x');
    // 'y' may still be DELETING when the node stops; either way it must not come back.
    await t.client.deleteStream({ streamName: 'y' });
    const r = await nodes.restart(t);
    await waitForStreamGone(r.client, 'y');
    expect((await r.client.listStreams()).streamNames).toEqual([]);
    await expectError(
      r.client.getRecords({ shardIterator: oldIterator }),
      'ResourceNotFoundException',
    );
    await createActive(r.client, 'x', 1);
    expect(await readShard(r.client, 'x', shardId(0))).toEqual([]);
    await expectError(
      r.client.getShardIterator({
        streamName: 'x',
        shardId: shardId(0),
        shardIteratorType: It.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER,
        startingSequenceNumber: old.sequenceNumber,
      }),
      'InvalidArgumentException',
    );
    const fresh = await r.client.putRecord({
      streamName: 'x',
      partitionKey: 'k',
      data: Buffer.from('new'),
    });
    expect(fresh.sequenceNumber).not.toBe(old.sequenceNumber);
    await expectError(
      r.client.getRecords({ shardIterator: oldIterator }),
      'ResourceNotFoundException',
    );
    expect((await readShard(r.client, 'x', shardId(0))).map((x) => x.data.toString())).toEqual([
      'new',
    ]);
  });

  it('keeps sequence numbers increasing and AT_TIMESTAMP working across several restarts', async () => {
    const clock = new ManualClock(1_800_000_000_000);
    let t = await nodes.start({ clock, defaultShardLimits: UNLIMITED });
    await createActive(t.client, 's', 1);
    const seqs: string[] = [];
    const times: number[] = [];
    for (let round = 0; round < 3; round++) {
      times.push(clock.nowMs());
      const put = await t.client.putRecords({
        streamName: 's',
        records: [0, 1].map((i) => ({ partitionKey: 'k', data: Buffer.from(`${round}.${i}`) })),
      });
      seqs.push(...put.records.map((r) => r.sequenceNumber));
      clock.advance(1000);
      t = await nodes.restart(t);
    }
    expect(bigintsIncreasing(seqs)).toBe(true);
    const all = await readShard(t.client, 's', shardId(0));
    expect(all.map((r) => r.sequenceNumber)).toEqual(seqs);
    expect(all.map((r) => r.approximateArrivalTimestampMs)).toEqual(times.flatMap((x) => [x, x]));
    const from = await iteratorFor(t.client, 's', shardId(0), It.SHARD_ITERATOR_TYPE_AT_TIMESTAMP, {
      timestampMs: times[1]!,
    });
    expect((await readAll(t.client, from)).records.map((r) => r.data.toString())).toEqual([
      '1.0',
      '1.1',
      '2.0',
      '2.1',
    ]);
  });
});
