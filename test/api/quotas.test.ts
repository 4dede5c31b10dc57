import { describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import { ManualClock } from '../../src/common/clock.js';
import type { NodeConfig } from '../../src/server/node.js';
import {
  createActive,
  expectError,
  It,
  iteratorFor,
  KiB,
  listAllShards,
  MiB,
  pseudoRandomBytes,
  readAll,
  readShard,
  shardId,
  UNLIMITED,
  useNodes,
} from './helpers.js';

const nodes = useNodes();
const PTE = 'ProvisionedThroughputExceededException';

/** A node with the default provisioned limits and a clock that only moves when told. */
async function start(shards = 2, overrides: Partial<NodeConfig> = {}) {
  const clock = new ManualClock(1_780_000_000_000);
  const t = await nodes.start({ clock, ...overrides });
  await createActive(t.client, 's', shards);
  const ranges = await listAllShards(t.client, 's');
  /** An ExplicitHashKey that lands in shard `i`. */
  const to = (i: number) => ranges[i]!.hashKeyRange!.startingHashKey;
  return { ...t, clock, to };
}

/** `n` one-byte records (plus a one-byte key) for shard 0. */
const tiny = (n: number, explicitHashKey = '0') =>
  Array.from({ length: n }, (_, i) => ({
    partitionKey: 'k',
    explicitHashKey,
    data: Buffer.from([i % 256]),
  }));

/** A record of exactly `bytes` bytes of data plus its one-byte partition key. */
const sized = (bytes: number, explicitHashKey = '0', seed = bytes) => ({
  partitionKey: 'k',
  explicitHashKey,
  data: pseudoRandomBytes(bytes - 1, seed),
});

async function count(client: RheosClient, shard = shardId(0)): Promise<number> {
  return (await readShard(client, 's', shard)).length;
}

describe('write quotas (1,000 records/s and 1 MiB/s per shard)', () => {
  it('throttles the records beyond 1,000 per second per shard, stores none of them, and refills', async () => {
    const { client, clock, to } = await start();
    for (let i = 0; i < 2; i++) {
      const ok = await client.putRecords({ streamName: 's', records: tiny(500) });
      expect(ok.failedRecordCount).toBe(0);
    }
    const third = await client.putRecords({ streamName: 's', records: tiny(500) });
    expect(third.failedRecordCount).toBe(500);
    expect(third.records).toHaveLength(500);
    for (const r of third.records) {
      expect(r).toEqual({
        sequenceNumber: '',
        shardId: '',
        duplicate: false,
        errorCode: PTE,
        errorMessage: expect.stringMatching(
          /Rate exceeded for shard shardId-000000000000 in stream s/,
        ),
      });
    }
    const single = await expectError(
      client.putRecord({
        streamName: 's',
        partitionKey: 'k',
        explicitHashKey: '0',
        data: Buffer.from('x'),
      }),
      PTE,
      /shardId-000000000000/,
    );
    expect(single.retriable).toBe(true);
    expect(single.indeterminate).toBe(false);
    // The quota is per shard: shard 1 is untouched.
    const other = await client.putRecords({ streamName: 's', records: tiny(500, to(1)) });
    expect(other.failedRecordCount).toBe(0);
    expect(await count(client)).toBe(1000);

    clock.advance(1000);
    expect(
      (await client.putRecords({ streamName: 's', records: tiny(500) })).failedRecordCount,
    ).toBe(0);
    expect(
      (await client.putRecords({ streamName: 's', records: tiny(500) })).failedRecordCount,
    ).toBe(0);
    // A tenth of a second refills a tenth of the quota; the records within it pass, in order.
    clock.advance(100);
    const partial = await client.putRecords({ streamName: 's', records: tiny(150) });
    expect(partial.failedRecordCount).toBe(50);
    expect(partial.records.map((r) => r.errorCode)).toEqual([
      ...Array<string>(100).fill(''),
      ...Array<string>(50).fill(PTE),
    ]);
    expect(await count(client)).toBe(2100);
  });

  it('throttles every later record of a shard in the same request once one was throttled', async () => {
    const { client, to } = await start();
    await client.putRecord({ streamName: 's', ...sized(600 * KiB) });
    const put = await client.putRecords({
      streamName: 's',
      records: [
        sized(300 * KiB), // shard 0: 900 KiB used
        sized(1, to(1)),
        sized(200 * KiB), // shard 0: would be 1,100 KiB: throttled
        sized(1), // would fit, but must not overtake the throttled record
        sized(1, to(1)),
        sized(1),
      ],
    });
    expect(put.records.map((r) => r.errorCode)).toEqual(['', '', PTE, PTE, '', PTE]);
    expect(put.failedRecordCount).toBe(3);
    expect(put.records.map((r) => r.shardId)).toEqual([
      shardId(0),
      shardId(1),
      '',
      '',
      shardId(1),
      '',
    ]);
    const s0 = await readShard(client, 's', shardId(0));
    expect(s0.map((r) => r.data.length + 1)).toEqual([600 * KiB, 300 * KiB]);
    expect(await count(client, shardId(1))).toBe(2);
  });

  it('allows 1 MiB per second per shard, refilled continuously', async () => {
    const { client, clock } = await start();
    const put = (bytes: number) => client.putRecord({ streamName: 's', ...sized(bytes) });
    await put(MiB);
    const error = await expectError(put(1), PTE, /Rate exceeded/);
    expect(error.retriable).toBe(true);
    clock.advance(500); // 512 KiB back
    await put(400 * KiB);
    await expectError(put(200 * KiB), PTE);
    await put(100 * KiB);
    clock.advance(1000);
    await put(MiB);
    // One call: 2.5 MiB is more than the read allowance, so a second call would be throttled.
    const iterator = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    const stored = (await client.getRecords({ shardIterator: iterator })).records;
    expect(stored.map((r) => r.data.length + 1)).toEqual([MiB, 400 * KiB, 100 * KiB, MiB]);
  });
});

describe('read quotas (5 GetRecords/s and 2 MiB/s per shard)', () => {
  it('allows 5 GetRecords calls per second per shard, then throttles', async () => {
    const { client, clock } = await start();
    await client.putRecords({ streamName: 's', records: tiny(3) });
    const iterator = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    for (let i = 0; i < 5; i++) {
      expect((await client.getRecords({ shardIterator: iterator })).records).toHaveLength(3);
    }
    const error = await expectError(
      client.getRecords({ shardIterator: iterator }),
      PTE,
      /Rate exceeded for Shard - shardId-000000000000/,
    );
    expect(error.retriable).toBe(true);
    // Another shard has its own allowance.
    const other = await iteratorFor(client, 's', shardId(1), It.SHARD_ITERATOR_TYPE_TRIM_HORIZON);
    await client.getRecords({ shardIterator: other });
    clock.advance(200); // one call's worth
    await client.getRecords({ shardIterator: iterator });
    await expectError(client.getRecords({ shardIterator: iterator }), PTE);
    clock.advance(1000);
    for (let i = 0; i < 5; i++) await client.getRecords({ shardIterator: iterator });
    await expectError(client.getRecords({ shardIterator: iterator }), PTE);
  });

  it('lets one large read through, then throttles until the 2 MiB/s allowance has paid for it', async () => {
    const { client, clock } = await start();
    const blobs: Buffer[] = [];
    for (let i = 0; i < 6; i++) {
      const record = sized(MiB, '0', i + 1);
      blobs.push(record.data);
      await client.putRecord({ streamName: 's', ...record });
      clock.advance(1000); // the write quota allows 1 MiB per second
    }
    const iterator = await iteratorFor(
      client,
      's',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    const big = await client.getRecords({ shardIterator: iterator });
    expect(big.records).toHaveLength(6);
    big.records.forEach((r, i) => expect(Buffer.compare(r.data, blobs[i]!)).toBe(0));
    // 6 MiB read against 2 MiB/s: about two more seconds are owed.
    await expectError(client.getRecords({ shardIterator: big.nextShardIterator }), PTE);
    clock.advance(1000);
    await expectError(client.getRecords({ shardIterator: big.nextShardIterator }), PTE);
    clock.advance(1100);
    const after = await client.getRecords({ shardIterator: big.nextShardIterator });
    expect(after.records).toEqual([]);
  });
});

describe('per-stream limits', () => {
  it('treats limits of 0 as unlimited', async () => {
    const { client } = await start(1);
    await createActive(client, 'free', 1, { shardLimits: UNLIMITED });
    expect(
      (await client.describeStreamSummary({ streamName: 'free' })).streamDescriptionSummary!
        .shardLimits,
    ).toEqual(UNLIMITED);
    for (let i = 0; i < 4; i++) {
      const put = await client.putRecords({ streamName: 'free', records: tiny(500) });
      expect(put.failedRecordCount).toBe(0);
    }
    const big = await client.putRecords({
      streamName: 'free',
      records: [1, 2, 3, 4].map((seed) => sized(MiB, '0', seed)),
    });
    expect(big.failedRecordCount).toBe(0);
    const iterator = await iteratorFor(
      client,
      'free',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    for (let i = 0; i < 12; i++) {
      const all = await readAll(client, iterator);
      expect(all.records).toHaveLength(2004);
    }
  });

  it('applies and reports the limits a stream was created with', async () => {
    const { client, clock } = await start(1);
    const limits = {
      writeBytesPerSecond: 0,
      writeRecordsPerSecond: 10,
      readCallsPerSecond: 2,
      readBytesPerSecond: 0,
    };
    await createActive(client, 'custom', 1, { shardLimits: limits });
    expect(
      (await client.describeStreamSummary({ streamName: 'custom' })).streamDescriptionSummary!
        .shardLimits,
    ).toEqual(limits);
    expect(
      (await client.describeStream({ streamName: 'custom' })).streamDescription!.shardLimits,
    ).toEqual(limits);
    const put = await client.putRecords({ streamName: 'custom', records: tiny(12) });
    expect(put.records.map((r) => r.errorCode !== '')).toEqual([
      ...Array<boolean>(10).fill(false),
      true,
      true,
    ]);
    const iterator = await iteratorFor(
      client,
      'custom',
      shardId(0),
      It.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    );
    expect((await client.getRecords({ shardIterator: iterator })).records).toHaveLength(10);
    await client.getRecords({ shardIterator: iterator });
    await expectError(client.getRecords({ shardIterator: iterator }), PTE);
    clock.advance(1000);
    expect(
      (await client.putRecords({ streamName: 'custom', records: tiny(10) })).failedRecordCount,
    ).toBe(0);
    // The default stream reports the default provisioned limits.
    expect(
      (await client.describeStreamSummary({ streamName: 's' })).streamDescriptionSummary!
        .shardLimits,
    ).toEqual({
      writeBytesPerSecond: MiB,
      writeRecordsPerSecond: 1000,
      readCallsPerSecond: 5,
      readBytesPerSecond: 2 * MiB,
    });
  });

  it("uses the node's default limits for streams created without their own", async () => {
    const limits = {
      writeBytesPerSecond: 4 * MiB,
      writeRecordsPerSecond: 3,
      readCallsPerSecond: 7,
      readBytesPerSecond: 8 * MiB,
    };
    const { client } = await start(1, { defaultShardLimits: limits });
    expect(
      (await client.describeStreamSummary({ streamName: 's' })).streamDescriptionSummary!
        .shardLimits,
    ).toEqual(limits);
    const put = await client.putRecords({ streamName: 's', records: tiny(5) });
    expect(put.failedRecordCount).toBe(2);
  });
});
