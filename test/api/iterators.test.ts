import { describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import { ManualClock } from '../../src/common/clock.js';
import { ShardIteratorType } from '../../src/gen/rheos/v1/data.js';
import {
  createActive,
  expectError,
  It,
  iteratorFor,
  readAll,
  shardId,
  UNLIMITED,
  useNodes,
} from './helpers.js';

const nodes = useNodes();

async function start() {
  const clock = new ManualClock(1_770_000_000_000);
  const t = await nodes.start({ clock, defaultShardLimits: UNLIMITED });
  await createActive(t.client, 's', 2);
  return { ...t, clock };
}

/** Puts `texts` as one PutRecords into shard 0 and returns their sequence numbers. */
async function putBatch(client: RheosClient, texts: readonly string[]): Promise<string[]> {
  const put = await client.putRecords({
    streamName: 's',
    records: texts.map((t) => ({ partitionKey: 'k', explicitHashKey: '0', data: Buffer.from(t) })),
  });
  expect(put.failedRecordCount).toBe(0);
  for (const r of put.records) expect(r.shardId).toBe(shardId(0));
  return put.records.map((r) => r.sequenceNumber);
}

async function texts(client: RheosClient, iterator: string): Promise<string[]> {
  return (await readAll(client, iterator)).records.map((r) => r.data.toString());
}

const at = (startingSequenceNumber: string) => ({ startingSequenceNumber });

describe('iterator types', () => {
  it('TRIM_HORIZON starts at the oldest record', async () => {
    const { client } = await start();
    await putBatch(client, ['a', 'b']);
    await putBatch(client, ['c']);
    const iterator = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    expect(await texts(client, iterator)).toEqual(['a', 'b', 'c']);
  });

  it('LATEST sees only records put after the iterator was made', async () => {
    const { client } = await start();
    await putBatch(client, ['old1', 'old2']);
    const iterator = await iteratorFor(client, 's', shardId(0), It.SHARD_ITERATOR_TYPE_LATEST);
    const before = await client.getRecords({ shardIterator: iterator });
    expect(before.records).toEqual([]);
    await putBatch(client, ['new1', 'new2']);
    await putBatch(client, ['new3']);
    expect(await texts(client, iterator)).toEqual(['new1', 'new2', 'new3']);
    expect(await texts(client, before.nextShardIterator)).toEqual(['new1', 'new2', 'new3']);
  });

  it('AT_ and AFTER_SEQUENCE_NUMBER start at or just after any record, mid-batch included', async () => {
    const { client } = await start();
    const first = await putBatch(client, ['a0', 'a1', 'a2', 'a3', 'a4']);
    const second = await putBatch(client, ['b0', 'b1', 'b2']);
    const all = [...first, ...second];
    const names = ['a0', 'a1', 'a2', 'a3', 'a4', 'b0', 'b1', 'b2'];
    for (let i = 0; i < all.length; i++) {
      const atIt = await iteratorFor(
        client,
        's',
        shardId(0),
        It.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER,
        at(all[i]!),
      );
      expect(await texts(client, atIt)).toEqual(names.slice(i));
      const afterIt = await iteratorFor(
        client,
        's',
        shardId(0),
        It.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER,
        at(all[i]!),
      );
      expect(await texts(client, afterIt)).toEqual(names.slice(i + 1));
    }
    // AFTER the very last record: nothing yet, then whatever comes next.
    const afterLast = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER,
      at(second[2]!),
    );
    const atLast = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER,
      at(second[2]!),
    );
    await putBatch(client, ['c0']);
    expect(await texts(client, afterLast)).toEqual(['c0']);
    expect(await texts(client, atLast)).toEqual(['b2', 'c0']);
    // The returned records carry exactly the sequence numbers they were stored with.
    const fromA3 = await readAll(
      client,
      await iteratorFor(
        client,
        's',
        shardId(0),
        It.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER,
        at(first[3]!),
      ),
    );
    expect(fromA3.records.map((r) => r.sequenceNumber).slice(0, 5)).toEqual(all.slice(3));
  });

  it('AT_TIMESTAMP starts at the first record that arrived at or after the timestamp', async () => {
    const { client, clock } = await start();
    const t0 = clock.nowMs();
    await putBatch(client, ['a0', 'a1']);
    clock.advance(1000);
    await putBatch(client, ['b0', 'b1']);
    clock.advance(1000);
    await putBatch(client, ['c0']);
    const atTime = (timestampMs: number) =>
      iteratorFor(client, 's', shardId(0), It.SHARD_ITERATOR_TYPE_AT_TIMESTAMP, { timestampMs });
    const everything = ['a0', 'a1', 'b0', 'b1', 'c0'];
    expect(await texts(client, await atTime(0))).toEqual(everything);
    expect(await texts(client, await atTime(t0 - 60_000))).toEqual(everything);
    expect(await texts(client, await atTime(t0))).toEqual(everything);
    expect(await texts(client, await atTime(t0 + 1))).toEqual(['b0', 'b1', 'c0']);
    expect(await texts(client, await atTime(t0 + 999))).toEqual(['b0', 'b1', 'c0']);
    expect(await texts(client, await atTime(t0 + 1000))).toEqual(['b0', 'b1', 'c0']);
    expect(await texts(client, await atTime(t0 + 1001))).toEqual(['c0']);
    expect(await texts(client, await atTime(t0 + 2000))).toEqual(['c0']);
    const future = await atTime(t0 + 2001);
    expect(await texts(client, future)).toEqual([]);
    // A timestamp after the tip behaves like LATEST: later records are seen.
    await putBatch(client, ['d0']);
    expect(await texts(client, future)).toEqual(['d0']);
    // The arrival timestamps are what AT_TIMESTAMP searched by.
    const records = (await readAll(client, await atTime(0))).records;
    expect(records.map((r) => r.approximateArrivalTimestampMs)).toEqual([
      t0,
      t0,
      t0 + 1000,
      t0 + 1000,
      t0 + 2000,
      t0 + 2000,
    ]);
  });
});

describe('iterator expiry', () => {
  it('accepts an iterator for 5 minutes and then fails with ExpiredIteratorException', async () => {
    const { client, clock } = await start();
    await putBatch(client, ['a', 'b']);
    const iterator = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    clock.advance(299_999);
    const page = await client.getRecords({ shardIterator: iterator, limit: 1 });
    expect(page.records.map((r) => r.data.toString())).toEqual(['a']);
    clock.advance(2); // 300,001 ms after the iterator was issued
    await expectError(
      client.getRecords({ shardIterator: iterator }),
      'ExpiredIteratorException',
      /expired/i,
    );
    // The next iterator was issued at read time, so it is still fresh.
    const rest = await client.getRecords({ shardIterator: page.nextShardIterator });
    expect(rest.records.map((r) => r.data.toString())).toEqual(['b']);
    clock.advance(300_001);
    await expectError(
      client.getRecords({ shardIterator: rest.nextShardIterator }),
      'ExpiredIteratorException',
    );
  });
});

describe('forged and corrupted iterators', () => {
  it('rejects an iterator with any one character changed (InvalidArgumentException)', async () => {
    const { client } = await start();
    await putBatch(client, ['a']);
    const iterator = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    expect((await client.getRecords({ shardIterator: iterator })).records).toHaveLength(1);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < iterator.length; i++) {
      for (const replacement of ['x', '_', '9']) {
        const c = iterator[i] === replacement ? 'Q' : replacement;
        const forged = iterator.slice(0, i) + c + iterator.slice(i + 1);
        const error = await client.getRecords({ shardIterator: forged }).then(
          () => 'accepted',
          (e: Error) => e.name,
        );
        const key = `${error}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
    }
    expect(Object.fromEntries(outcomes)).toEqual({
      InvalidArgumentException: iterator.length * 3,
    });
  });

  it('rejects random strings, truncations and extensions (InvalidArgumentException)', async () => {
    const { client } = await start();
    const iterator = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    const forged = [
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      'not an iterator',
      '!!!',
      'x',
      iterator.slice(0, -1),
      iterator.slice(1),
      iterator + 'A',
      iterator + iterator,
      iterator.toLowerCase(),
      iterator.split('').reverse().join(''),
      'A'.repeat(512),
    ];
    for (const shardIterator of forged) {
      expect(shardIterator).not.toBe(iterator);
      await expectError(
        client.getRecords({ shardIterator }),
        'InvalidArgumentException',
        /ShardIterator/,
      );
    }
  });

  it("rejects an iterator signed by another node's key (InvalidArgumentException)", async () => {
    const { client } = await start();
    const other = await nodes.start({ defaultShardLimits: UNLIMITED });
    await createActive(other.client, 's', 2);
    await putBatch(client, ['mine']);
    await other.client.putRecord({
      streamName: 's',
      partitionKey: 'k',
      data: Buffer.from('theirs'),
    });
    // Same stream name, same shard, same incarnations: only the signing key differs.
    const foreign = await iteratorFor(
      other.client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    await expectError(
      client.getRecords({ shardIterator: foreign }),
      'InvalidArgumentException',
      /ShardIterator/,
    );
    const own = await iteratorFor(client, 's', shardId(0), It.SHARD_ITERATOR_TYPE_TRIM_HORIZON);
    await expectError(other.client.getRecords({ shardIterator: own }), 'InvalidArgumentException');
    expect(await texts(client, own)).toEqual(['mine']);
  });

  it('rejects a forged iterator naming signing key 0, which never existed (InvalidArgumentException)', async () => {
    const { client } = await start();
    const iterator = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    // Token layout (src/common/iterator-token.ts): version u8, keyId u32, ... Key ids start at 1.
    const bytes = Buffer.from(iterator, 'base64url');
    expect(bytes.readUInt32BE(1)).toBeGreaterThanOrEqual(1);
    bytes.writeUInt32BE(0, 1);
    const forged = bytes.toString('base64url');
    // This is a forgery (its MAC was never checked), not an iterator that grew old.
    await expectError(client.getRecords({ shardIterator: forged }), 'InvalidArgumentException');
  });
});

describe('GetShardIterator arguments', () => {
  it('rejects sequence numbers of another shard or stream, beyond the tip, or not ours', async () => {
    const { client } = await start();
    await createActive(client, 'other', 1);
    const [seq0] = await putBatch(client, ['a']);
    const seq1 = (
      await client.putRecord({
        streamName: 's',
        partitionKey: 'k',
        explicitHashKey: '340282366920938463463374607431768211455',
        data: Buffer.from('b'),
      })
    ).sequenceNumber;
    const otherSeq = (
      await client.putRecord({ streamName: 'other', partitionKey: 'k', data: Buffer.from('c') })
    ).sequenceNumber;
    const get = (shard: string, type: ShardIteratorType, startingSequenceNumber: string) =>
      client.getShardIterator({
        streamName: 's',
        shardId: shard,
        shardIteratorType: type,
        startingSequenceNumber,
      });
    for (const type of [
      It.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER,
      It.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER,
    ]) {
      await expectError(
        get(shardId(0), type, seq1),
        'InvalidArgumentException',
        /shardId-000000000000/,
      );
      await expectError(
        get(shardId(1), type, seq0!),
        'InvalidArgumentException',
        /StartingSequenceNumber/,
      );
      await expectError(get(shardId(0), type, otherSeq), 'InvalidArgumentException');
      await expectError(get(shardId(0), type, '0'), 'InvalidArgumentException');
      await expectError(get(shardId(0), type, '12345'), 'InvalidArgumentException');
      // Of this shard, but beyond its newest record. DESIGN.md: format digit, shard incarnation
      // (12 digits), log index (20), offset (5).
      const index = Number(seq0!.slice(13, 33));
      const beyond = seq0!.slice(0, 13) + String(index + 1000).padStart(20, '0') + '00000';
      await expectError(get(shardId(0), type, beyond), 'InvalidArgumentException', /beyond/);
      // Not a sequence number at all: the API model says no.
      await expectError(
        get(shardId(0), type, 'abc'),
        'ValidationException',
        /startingSequenceNumber/,
      );
      await expectError(get(shardId(0), type, '0123'), 'ValidationException');
    }
  });

  it('requires StartingSequenceNumber and Timestamp exactly for the types that use them', async () => {
    const { client, clock } = await start();
    const [seq] = await putBatch(client, ['a']);
    const base = { streamName: 's', shardId: shardId(0) };
    const T = It;
    const bad: Array<
      [ShardIteratorType, { startingSequenceNumber?: string; timestampMs?: number }, RegExp]
    > = [
      [T.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER, {}, /StartingSequenceNumber/],
      [T.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER, {}, /StartingSequenceNumber/],
      [T.SHARD_ITERATOR_TYPE_AT_TIMESTAMP, {}, /timestamp/i],
      [
        T.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
        { startingSequenceNumber: seq! },
        /StartingSequenceNumber/,
      ],
      [T.SHARD_ITERATOR_TYPE_LATEST, { startingSequenceNumber: seq! }, /StartingSequenceNumber/],
      [
        T.SHARD_ITERATOR_TYPE_AT_TIMESTAMP,
        { startingSequenceNumber: seq!, timestampMs: clock.nowMs() },
        /StartingSequenceNumber/,
      ],
      [T.SHARD_ITERATOR_TYPE_TRIM_HORIZON, { timestampMs: clock.nowMs() }, /Timestamp/],
      [T.SHARD_ITERATOR_TYPE_LATEST, { timestampMs: clock.nowMs() }, /Timestamp/],
      [
        T.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER,
        { startingSequenceNumber: seq!, timestampMs: clock.nowMs() },
        /Timestamp/,
      ],
    ];
    for (const [shardIteratorType, extra, message] of bad) {
      await expectError(
        client.getShardIterator({ ...base, shardIteratorType, ...extra }),
        'InvalidArgumentException',
        message,
      );
    }
    await expectError(
      client.getShardIterator(base),
      'ValidationException',
      /shardIteratorType.*enum/,
    );
  });

  it('answers ResourceNotFoundException for an unknown shard or stream', async () => {
    const { client } = await start();
    await expectError(
      client.getShardIterator({
        streamName: 's',
        shardId: shardId(2),
        shardIteratorType: It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
      }),
      'ResourceNotFoundException',
      /shardId-000000000002/,
    );
    await expectError(
      client.getShardIterator({
        streamName: 's',
        shardId: 'shardId-x',
        shardIteratorType: It.SHARD_ITERATOR_TYPE_LATEST,
      }),
      'ResourceNotFoundException',
    );
    await expectError(
      client.getShardIterator({
        streamName: 'nope',
        shardId: shardId(0),
        shardIteratorType: It.SHARD_ITERATOR_TYPE_LATEST,
      }),
      'ResourceNotFoundException',
      /nope/,
    );
    await expectError(
      client.getShardIterator({
        streamName: 's',
        shardIteratorType: It.SHARD_ITERATOR_TYPE_LATEST,
      }),
      'ValidationException',
      /shardId/,
    );
    await expectError(
      client.getShardIterator({
        streamName: 's',
        shardId: 'shard id with spaces',
        shardIteratorType: It.SHARD_ITERATOR_TYPE_LATEST,
      }),
      'ValidationException',
      /shardId/,
    );
  });
});
