import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { EncryptionType } from '../../src/gen/rheos/v1/stream.js';
import {
  bigintsIncreasing,
  createActive,
  It,
  iteratorFor,
  listAllShards,
  MAX_HASH_KEY,
  md5HashKey,
  MiB,
  pseudoRandomBytes,
  readAll,
  readShard,
  SEQUENCE_NUMBER,
  shardId,
  shardOwning,
  UNLIMITED,
  useNodes,
} from './helpers.js';

const nodes = useNodes();

async function start(shards: number) {
  const clock = new ManualClock(1_760_000_000_000);
  const t = await nodes.start({ clock, defaultShardLimits: UNLIMITED });
  await createActive(t.client, 's', shards);
  return { ...t, clock };
}

describe('PutRecord and GetRecords', () => {
  it('stores a record and reads back identical data, key, arrival time and sequence number', async () => {
    const { client, clock } = await start(1);
    clock.advance(1234);
    const data = pseudoRandomBytes(1000, 7);
    const put = await client.putRecord({ streamName: 's', partitionKey: 'user-1', data });
    expect(put).toEqual({
      shardId: shardId(0),
      sequenceNumber: expect.stringMatching(SEQUENCE_NUMBER),
      encryptionType: EncryptionType.ENCRYPTION_TYPE_NONE,
    });
    const [shard] = await listAllShards(client, 's');
    expect(
      BigInt(put.sequenceNumber) >= BigInt(shard!.sequenceNumberRange!.startingSequenceNumber),
    ).toBe(true);
    const got = await client.getRecords({
      shardIterator: await iteratorFor(
        client,
        's',
        shardId(0),
        It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
      ),
    });
    expect(got.records).toHaveLength(1);
    const [r] = got.records;
    expect(Buffer.compare(r!.data, data)).toBe(0);
    expect(r).toMatchObject({
      sequenceNumber: put.sequenceNumber,
      partitionKey: 'user-1',
      approximateArrivalTimestampMs: 1_760_000_001_234,
      encryptionType: EncryptionType.ENCRYPTION_TYPE_NONE,
    });
    expect(got.millisBehindLatest).toBe(0);
    expect(got.childShards).toEqual([]);
    expect(got.nextShardIterator).not.toBe('');
  });

  it('stores empty data', async () => {
    const { client } = await start(1);
    await client.putRecord({ streamName: 's', partitionKey: 'e', data: Buffer.alloc(0) });
    await client.putRecords({
      streamName: 's',
      records: [
        { partitionKey: 'e2', data: Buffer.alloc(0) },
        { partitionKey: 'e3', data: Buffer.from('x') },
      ],
    });
    const records = await readShard(client, 's', shardId(0));
    expect(records.map((r) => [r.partitionKey, r.data.length])).toEqual([
      ['e', 0],
      ['e2', 0],
      ['e3', 1],
    ]);
  });

  it('round-trips a record of exactly 1 MiB (data plus partition key) byte for byte', async () => {
    const { client } = await start(1);
    const key = 'big-\u00e9'; // 6 bytes of UTF-8
    const data = pseudoRandomBytes(MiB - Buffer.byteLength(key, 'utf8'), 99);
    await client.putRecord({ streamName: 's', partitionKey: key, data });
    await client.putRecords({ streamName: 's', records: [{ partitionKey: key, data }] });
    const records = await readShard(client, 's', shardId(0));
    expect(records).toHaveLength(2);
    for (const r of records) {
      expect(r.partitionKey).toBe(key);
      expect(r.data.length).toBe(data.length);
      expect(Buffer.compare(r.data, data)).toBe(0);
    }
  });

  it('caps one GetRecords at 10 MiB and continues exactly where it stopped', async () => {
    const { client } = await start(1);
    const blobs = Array.from({ length: 12 }, (_, i) => pseudoRandomBytes(MiB - 1, i + 1));
    for (let i = 0; i < 12; i += 4) {
      await client.putRecords({
        streamName: 's',
        records: blobs.slice(i, i + 4).map((data) => ({ partitionKey: 'k', data })),
      });
    }
    const first = await client.getRecords({
      shardIterator: await iteratorFor(
        client,
        's',
        shardId(0),
        It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
      ),
    });
    expect(first.records).toHaveLength(10);
    const second = await client.getRecords({ shardIterator: first.nextShardIterator });
    expect(second.records).toHaveLength(2);
    const all = [...first.records, ...second.records];
    all.forEach((r, i) => expect(Buffer.compare(r.data, blobs[i]!)).toBe(0));
  });
});

describe('PutRecords', () => {
  it('returns one result per record in request order, routed by MD5 of the partition key', async () => {
    const { client } = await start(4);
    const shards = await listAllShards(client, 's');
    const keys = Array.from({ length: 200 }, (_, i) => `key-${i}-${(i * 7919) % 113}`);
    const put = await client.putRecords({
      streamName: 's',
      records: keys.map((partitionKey, i) => ({ partitionKey, data: Buffer.from(`payload ${i}`) })),
    });
    expect(put.failedRecordCount).toBe(0);
    expect(put.encryptionType).toBe(EncryptionType.ENCRYPTION_TYPE_NONE);
    expect(put.records).toHaveLength(200);
    const expectedShard = keys.map((k) => shardOwning(shards, md5HashKey(k)).shardId);
    expect(put.records.map((r) => r.shardId)).toEqual(expectedShard);
    // Every shard gets some, so routing is really exercised.
    expect(new Set(expectedShard).size).toBe(4);
    for (const r of put.records) {
      expect(r.sequenceNumber).toMatch(SEQUENCE_NUMBER);
      expect(r.errorCode).toBe('');
      expect(r.errorMessage).toBe('');
    }
    for (const shard of shards) {
      const indexes = keys.map((_, i) => i).filter((i) => expectedShard[i] === shard.shardId);
      const sequenceNumbers = indexes.map((i) => put.records[i]!.sequenceNumber);
      // Strictly increasing in request order; fixed width, so string order agrees.
      expect(bigintsIncreasing(sequenceNumbers)).toBe(true);
      expect([...sequenceNumbers].sort()).toEqual(sequenceNumbers);
      const stored = await readShard(client, 's', shard.shardId);
      expect(stored.map((r) => r.partitionKey)).toEqual(indexes.map((i) => keys[i]));
      expect(stored.map((r) => r.data.toString())).toEqual(indexes.map((i) => `payload ${i}`));
      expect(stored.map((r) => r.sequenceNumber)).toEqual(sequenceNumbers);
    }
  });

  it('routes by ExplicitHashKey, overriding the partition key, at range boundaries', async () => {
    const { client } = await start(3);
    const shards = await listAllShards(client, 's');
    const start1 = BigInt(shards[1]!.hashKeyRange!.startingHashKey);
    const cases: Array<[string, string]> = [
      ['0', shardId(0)],
      [(start1 - 1n).toString(), shardId(0)],
      [start1.toString(), shardId(1)],
      [shards[1]!.hashKeyRange!.endingHashKey, shardId(1)],
      [shards[2]!.hashKeyRange!.startingHashKey, shardId(2)],
      [MAX_HASH_KEY.toString(), shardId(2)],
    ];
    // A partition key that MD5-routes to shard 0, to show the explicit key wins.
    const key = Array.from({ length: 100 }, (_, i) => `pk${i}`).find(
      (k) => shardOwning(shards, md5HashKey(k)).shardId === shardId(0),
    )!;
    const put = await client.putRecords({
      streamName: 's',
      records: cases.map(([explicitHashKey], i) => ({
        partitionKey: key,
        explicitHashKey,
        data: Buffer.from(String(i)),
      })),
    });
    expect(put.records.map((r) => r.shardId)).toEqual(cases.map(([, shard]) => shard));
    const single = await client.putRecord({
      streamName: 's',
      partitionKey: key,
      explicitHashKey: MAX_HASH_KEY.toString(),
      data: Buffer.from('single'),
    });
    expect(single.shardId).toBe(shardId(2));
    expect((await readShard(client, 's', shardId(2))).map((r) => r.data.toString())).toEqual([
      '4',
      '5',
      'single',
    ]);
  });

  it('takes 500 records in one call and reads them back in pages that continue exactly', async () => {
    const { client } = await start(1);
    const records = Array.from({ length: 500 }, (_, i) => ({
      partitionKey: `p${i % 17}`,
      data: pseudoRandomBytes(i % 50, i + 1),
    }));
    const put = await client.putRecords({ streamName: 's', records });
    expect(put.failedRecordCount).toBe(0);
    expect(bigintsIncreasing(put.records.map((r) => r.sequenceNumber))).toBe(true);
    const iterator = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    // Pages of 7 records: the limit is honoured and no record is lost or repeated.
    let next = iterator;
    const seen: string[] = [];
    for (let calls = 0; calls < 100 && seen.length < 500; calls++) {
      const page = await client.getRecords({ shardIterator: next, limit: 7 });
      expect(page.records.length).toBe(Math.min(7, 500 - seen.length));
      page.records.forEach((r, k) => {
        const i = seen.length + k;
        expect(r.partitionKey).toBe(records[i]!.partitionKey);
        expect(Buffer.compare(r.data, records[i]!.data)).toBe(0);
      });
      seen.push(...page.records.map((r) => r.sequenceNumber));
      next = page.nextShardIterator;
    }
    expect(seen).toEqual(put.records.map((r) => r.sequenceNumber));
    const tail = await client.getRecords({ shardIterator: next });
    expect(tail.records).toEqual([]);
    expect(tail.millisBehindLatest).toBe(0);
    expect((await client.getRecords({ shardIterator: iterator, limit: 1 })).records).toHaveLength(
      1,
    );
    expect(
      (await client.getRecords({ shardIterator: iterator, limit: 10_000 })).records,
    ).toHaveLength(500);
  });

  it('routes and stores unicode partition keys by the MD5 of their UTF-8 bytes', async () => {
    const { client } = await start(4);
    const shards = await listAllShards(client, 's');
    const keys = [
      'caf\u00e9',
      'cafe\u0301',
      '\u65e5\u672c\u8a9e\u306e\u30ad\u30fc',
      '\u{1F600}\u{1F680}',
      '\u{1F468}\u200d\u{1F469}\u200d\u{1F467}',
      '\u05e9\u05dc\u05d5\u05dd',
      ' spaced key ',
      '\u{1F525}'.repeat(256),
    ];
    const put = await client.putRecords({
      streamName: 's',
      records: keys.map((partitionKey, i) => ({ partitionKey, data: Buffer.from([i]) })),
    });
    expect(put.failedRecordCount).toBe(0);
    expect(put.records.map((r) => r.shardId)).toEqual(
      keys.map((k) => shardOwning(shards, md5HashKey(k)).shardId),
    );
    const stored = new Map<string, string>();
    for (const shard of shards) {
      for (const r of await readShard(client, 's', shard.shardId)) {
        stored.set(r.sequenceNumber, r.partitionKey);
      }
    }
    put.records.forEach((r, i) => expect(stored.get(r.sequenceNumber)).toBe(keys[i]));
  });
});

describe('GetRecords', () => {
  it('reports millisBehindLatest: how far the last returned record is from the tip, 0 when caught up', async () => {
    const { client, clock } = await start(1);
    await client.putRecord({ streamName: 's', partitionKey: 'k', data: Buffer.from('a') });
    clock.advance(10_000);
    await client.putRecord({ streamName: 's', partitionKey: 'k', data: Buffer.from('b') });
    const iterator = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    const behind = await client.getRecords({ shardIterator: iterator, limit: 1 });
    expect(behind.records.map((r) => r.data.toString())).toEqual(['a']);
    expect(behind.millisBehindLatest).toBe(10_000);
    const rest = await client.getRecords({ shardIterator: behind.nextShardIterator });
    expect(rest.records.map((r) => r.data.toString())).toEqual(['b']);
    expect(rest.millisBehindLatest).toBe(0);
    expect((await client.getRecords({ shardIterator: iterator })).millisBehindLatest).toBe(0);
  });

  it('reads an empty shard, then continues with records that arrive later', async () => {
    const { client } = await start(1);
    const empty = await client.getRecords({
      shardIterator: await iteratorFor(
        client,
        's',
        shardId(0),
        It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
      ),
    });
    expect(empty.records).toEqual([]);
    expect(empty.millisBehindLatest).toBe(0);
    await client.putRecord({ streamName: 's', partitionKey: 'k', data: Buffer.from('late') });
    const later = await client.getRecords({ shardIterator: empty.nextShardIterator });
    expect(later.records.map((r) => r.data.toString())).toEqual(['late']);
  });

  it('keeps shards independent: each shard holds only its own records, numbered on its own', async () => {
    const { client } = await start(2);
    const shards = await listAllShards(client, 's');
    const to = (i: number) => shards[i]!.hashKeyRange!.startingHashKey;
    const put = async (shard: number, data: string) =>
      client.putRecord({
        streamName: 's',
        partitionKey: 'k',
        explicitHashKey: to(shard),
        data: Buffer.from(data),
      });
    const a1 = await put(0, 'a1');
    const b1 = await put(1, 'b1');
    const b2 = await put(1, 'b2');
    const a2 = await put(0, 'a2');
    expect([a1.shardId, a2.shardId, b1.shardId, b2.shardId]).toEqual([
      shardId(0),
      shardId(0),
      shardId(1),
      shardId(1),
    ]);
    expect(bigintsIncreasing([a1.sequenceNumber, a2.sequenceNumber])).toBe(true);
    expect(bigintsIncreasing([b1.sequenceNumber, b2.sequenceNumber])).toBe(true);
    // Sequence numbers of different shards never collide.
    expect(new Set([a1, a2, b1, b2].map((r) => r.sequenceNumber)).size).toBe(4);
    const s0 = await readShard(client, 's', shardId(0));
    const s1 = await readShard(client, 's', shardId(1));
    expect(s0.map((r) => r.data.toString())).toEqual(['a1', 'a2']);
    expect(s1.map((r) => r.data.toString())).toEqual(['b1', 'b2']);
    // Reading one shard to its end does not move the other.
    const it0 = await iteratorFor(client, 's', shardId(0), It.SHARD_ITERATOR_TYPE_LATEST);
    await put(1, 'b3');
    expect((await client.getRecords({ shardIterator: it0 })).records).toEqual([]);
  });

  it('returns the same records for the same iterator, every time', async () => {
    const { client } = await start(1);
    await client.putRecords({
      streamName: 's',
      records: [1, 2, 3].map((i) => ({ partitionKey: 'k', data: Buffer.from([i]) })),
    });
    const iterator = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    const a = await readAll(client, iterator);
    const b = await readAll(client, iterator);
    expect(b.records).toEqual(a.records);
    expect(a.records).toHaveLength(3);
  });
});
