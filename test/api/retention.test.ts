import { describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import { ManualClock } from '../../src/common/clock.js';
import type { TestNode } from '../helpers/node.js';
import {
  bigintsIncreasing,
  createActive,
  expectError,
  HOUR_MS,
  It,
  iteratorFor,
  readAll,
  readShard,
  shardId,
  UNLIMITED,
  useNodes,
} from './helpers.js';

/**
 * Retention: a record is kept while it is younger than the retention period. The retention timer
 * is off in tests; they call broker.trimExpired() where the timer would run.
 */

const nodes = useNodes();

async function start(shards = 1) {
  const clock = new ManualClock(1_790_000_000_000);
  const t = await nodes.start({ clock, defaultShardLimits: UNLIMITED });
  await createActive(t.client, 's', shards);
  return { t, client: t.client, clock, t0: clock.nowMs() };
}

async function putTexts(client: RheosClient, texts: readonly string[], stream = 's', to = '0') {
  const put = await client.putRecords({
    streamName: stream,
    records: texts.map((x) => ({ partitionKey: 'k', explicitHashKey: to, data: Buffer.from(x) })),
  });
  expect(put.failedRecordCount).toBe(0);
  return put.records.map((r) => r.sequenceNumber);
}

async function stored(client: RheosClient, stream = 's', shard = shardId(0)): Promise<string[]> {
  return (await readShard(client, stream, shard)).map((r) => r.data.toString());
}

async function texts(client: RheosClient, iterator: string): Promise<string[]> {
  return (await readAll(client, iterator)).records.map((r) => r.data.toString());
}

const trim = (t: TestNode) => t.node.broker.trimExpired();

/**
 * Retention finds expired entries through the arrival-time index, which is written when an entry
 * is applied, in the group-commit batch after the one that committed (and acknowledged) it. Any
 * later write through the same writer is durable only after that batch, so one unrelated write
 * makes the index of everything acknowledged so far visible to the next trim.
 */
async function settle(client: RheosClient): Promise<void> {
  await client.addTagsToStream({ streamName: 's', tags: { settled: 'yes' } });
}

describe('retention trimming', () => {
  it('removes records older than the retention period and moves TRIM_HORIZON forward', async () => {
    const { t, client, clock, t0 } = await start();
    await putTexts(client, ['a0', 'a1']);
    clock.advance(HOUR_MS);
    await putTexts(client, ['b0']);
    clock.advance(24 * HOUR_MS);
    await putTexts(client, ['c0']);
    // Now = t0 + 25 h: A is 25 h old, B exactly 24 h (still inside the period), C new.
    expect(await trim(t)).toBeGreaterThan(0);
    expect(await stored(client)).toEqual(['b0', 'c0']);
    expect(await trim(t)).toBe(0);
    clock.advance(1);
    expect(await trim(t)).toBeGreaterThan(0);
    expect(await stored(client)).toEqual(['c0']);
    // AT_TIMESTAMP before the trim horizon starts at the oldest record kept.
    const atT0 = await iteratorFor(client, 's', shardId(0), It.SHARD_ITERATOR_TYPE_AT_TIMESTAMP, {
      timestampMs: t0,
    });
    expect(await texts(client, atT0)).toEqual(['c0']);
    // Writes go on as before.
    await putTexts(client, ['d0']);
    expect(await stored(client)).toEqual(['c0', 'd0']);
  });

  it('lets an iterator made before the trim continue from the new trim horizon', async () => {
    const { t, client, clock } = await start();
    const a = await putTexts(client, ['a0', 'a1', 'a2']);
    const madeAtT0 = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    clock.advance(25 * HOUR_MS);
    await putTexts(client, ['b0', 'b1']);
    // An iterator from t0 is long expired, trim or no trim.
    await expectError(client.getRecords({ shardIterator: madeAtT0 }), 'ExpiredIteratorException');
    // Iterators made now, while A is still stored, point into A...
    const atA1 = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER,
      { startingSequenceNumber: a[1]! },
    );
    const horizon = await iteratorFor(client, 's', shardId(0), It.SHARD_ITERATOR_TYPE_TRIM_HORIZON);
    const firstPage = await client.getRecords({ shardIterator: atA1, limit: 1 });
    expect(firstPage.records.map((r) => r.data.toString())).toEqual(['a1']);
    // ...then A expires and is trimmed.
    expect(await trim(t)).toBeGreaterThan(0);
    expect(await texts(client, atA1)).toEqual(['b0', 'b1']);
    expect(await texts(client, horizon)).toEqual(['b0', 'b1']);
    expect(await texts(client, firstPage.nextShardIterator)).toEqual(['b0', 'b1']);
    // A sequence number that has been trimmed still gives an iterator, starting at the horizon.
    const afterTrim = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER,
      { startingSequenceNumber: a[0]! },
    );
    expect(await texts(client, afterTrim)).toEqual(['b0', 'b1']);
  });

  it('keeps records when retention was increased to 48 h before the trim', async () => {
    const { t, client, clock } = await start();
    await putTexts(client, ['a0']);
    await client.increaseStreamRetentionPeriod({ streamName: 's', retentionPeriodHours: 48 });
    clock.advance(25 * HOUR_MS);
    await putTexts(client, ['b0']);
    expect(await trim(t)).toBe(0);
    expect(await stored(client)).toEqual(['a0', 'b0']);
    clock.advance(23 * HOUR_MS + 1); // a0 is now 48 h + 1 ms old, b0 23 h + 1 ms
    expect(await trim(t)).toBeGreaterThan(0);
    expect(await stored(client)).toEqual(['b0']);
  });

  it('trims on the next pass after retention was decreased', async () => {
    const { t, client, clock } = await start();
    await client.increaseStreamRetentionPeriod({ streamName: 's', retentionPeriodHours: 72 });
    await putTexts(client, ['a0']);
    clock.advance(30 * HOUR_MS);
    await putTexts(client, ['b0']);
    expect(await trim(t)).toBe(0);
    expect(await stored(client)).toEqual(['a0', 'b0']);
    await client.decreaseStreamRetentionPeriod({ streamName: 's', retentionPeriodHours: 24 });
    expect(await trim(t)).toBeGreaterThan(0);
    expect(await stored(client)).toEqual(['b0']);
  });

  it('applies each stream its own retention period, on every shard', async () => {
    const { t, client, clock } = await start(2);
    await createActive(client, 'long', 2);
    await client.increaseStreamRetentionPeriod({ streamName: 'long', retentionPeriodHours: 48 });
    const top = '340282366920938463463374607431768211455';
    for (const stream of ['s', 'long']) {
      await putTexts(client, ['x0'], stream, '0');
      await putTexts(client, ['y0'], stream, top);
    }
    clock.advance(25 * HOUR_MS);
    for (const stream of ['s', 'long']) {
      await putTexts(client, ['x1'], stream, '0');
      await putTexts(client, ['y1'], stream, top);
    }
    await trim(t);
    expect(await stored(client, 's', shardId(0))).toEqual(['x1']);
    expect(await stored(client, 's', shardId(1))).toEqual(['y1']);
    expect(await stored(client, 'long', shardId(0))).toEqual(['x0', 'x1']);
    expect(await stored(client, 'long', shardId(1))).toEqual(['y0', 'y1']);
  });

  it('keeps trimmed records trimmed across a restart, and sequence numbers keep growing', async () => {
    const { t, client, clock } = await start();
    const a = await putTexts(client, ['a0', 'a1']);
    clock.advance(25 * HOUR_MS);
    await settle(client);
    // Every record is expired: the log is trimmed to nothing.
    expect(await trim(t)).toBeGreaterThan(0);
    expect(await stored(client)).toEqual([]);
    const restarted = await nodes.restart(t);
    expect(await stored(restarted.client)).toEqual([]);
    const b = await putTexts(restarted.client, ['b0']);
    expect(bigintsIncreasing([...a, ...b])).toBe(true);
    clock.advance(HOUR_MS);
    const c = await putTexts(restarted.client, ['c0']);
    clock.advance(24 * HOUR_MS);
    expect(await trim(restarted)).toBeGreaterThan(0);
    const again = await nodes.restart(restarted);
    expect(await stored(again.client)).toEqual(['c0']);
    const d = await putTexts(again.client, ['d0']);
    expect(bigintsIncreasing([...a, ...b, ...c, ...d])).toBe(true);
    expect(await stored(again.client)).toEqual(['c0', 'd0']);
  });
});
