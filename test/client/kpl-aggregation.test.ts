import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import type { RheosClient } from '../../src/client/client.js';
import {
  AggregateSizer,
  aggregateSizeBytes,
  decodeAggregate,
  deaggregateRecord,
  encodeAggregate,
  isAggregate,
  KPL_MAGIC,
  type AggregateMember,
  type UserRecord,
} from '../../src/client/kpl-aggregation.js';
import { listAllShards, readLineage } from '../../src/client/lineage-reader.js';
import { createProducer, type RecordResult } from '../../src/client/producer.js';
import { createPacker, type UnitMember } from '../../src/client/producer-units.js';
import {
  pollShard,
  type ShardReadClient,
  type StartPosition,
} from '../../src/client/shard-poller.js';
import { ExpiredIteratorError, ValidationError } from '../../src/common/errors.js';
import { MAX_HASH_KEY, partitionKeyToHashKey } from '../../src/common/hash-key.js';
import { UNLIMITED_SHARD_LIMITS } from '../../src/common/limits.js';
import { Record as StreamRecord } from '../../src/gen/rheos/v1/stream.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

/**
 * KPL aggregation: our codec against the reference Node implementation (`aws-kinesis-agg`, both
 * ways), seeded random round-trips and exact sizes, malformed input read as plain records, the
 * aggregating packer, and against a real in-process node: the producer's aggregates read back
 * deaggregated in key order with their sub-sequence numbers, `aws-kinesis-agg` aggregates put by
 * hand read the same way, and positions inside an aggregate resumed exactly.
 */

// aws-kinesis-agg is CommonJS and its bundled typings name packages we do not install: the
// little of its API used here, typed locally.
interface AggInput {
  partitionKey: string;
  data: Buffer;
  explicitHashKey?: string;
}
interface AggEncoded {
  partitionKey: string;
  data: Buffer;
  ExplicitHashKey?: string;
}
interface AggUserRecord {
  partitionKey: string;
  explicitPartitionKey?: string;
  sequenceNumber: string;
  subSequenceNumber?: number;
  /** base64 */
  data: string;
}
interface AwsKinesisAgg {
  aggregate(
    records: AggInput[],
    onEncoded: (encoded: AggEncoded, done: (error?: Error) => void) => void,
    afterAll: () => void,
    onError: (error: Error) => void,
    queueSize?: number,
  ): void;
  deaggregateSync(
    record: { partitionKey: string; sequenceNumber: string; data: string },
    computeChecksums: boolean,
    done: (error: Error | null | undefined, records?: AggUserRecord[]) => void,
  ): void;
}
const agg = createRequire(import.meta.url)('aws-kinesis-agg') as AwsKinesisAgg;

/** aws-kinesis-agg's aggregates of `records` (it splits at its 1 MiB limit). */
function theirAggregate(records: readonly AggregateMember[]): Promise<AggEncoded[]> {
  return new Promise((resolve, reject) => {
    const out: AggEncoded[] = [];
    agg.aggregate(
      // It converts string data in place: give it copies.
      records.map((r) => ({
        partitionKey: r.partitionKey,
        data: Buffer.from(r.data),
        ...(r.explicitHashKey === undefined ? {} : { explicitHashKey: r.explicitHashKey }),
      })),
      (encoded, done) => {
        out.push(encoded);
        done();
      },
      () => resolve(out),
      reject,
    );
  });
}

/** aws-kinesis-agg's deaggregation (with checksums) of one stored record. */
function theirDeaggregate(data: Buffer, partitionKey = 'outer'): AggUserRecord[] {
  let result: AggUserRecord[] | undefined;
  let failure: unknown;
  agg.deaggregateSync(
    { partitionKey, sequenceNumber: '1', data: data.toString('base64') },
    true,
    (error, records) => {
      failure = error;
      result = records;
    },
  );
  if (failure) throw failure;
  if (result === undefined) throw new Error('deaggregateSync did not answer');
  return result;
}

/** A small seeded PRNG (mulberry32), so every random case can be replayed. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

const KEY_POOL = [
  'a',
  'key-1',
  'key-2',
  'ключ',
  'キー',
  '😀emoji',
  'x'.repeat(200),
  'ü'.repeat(256),
];

/** Random members: keys from a pool (repeats, so tables deduplicate), sizes across varint steps. */
function randomMembers(random: (n: number) => number, ehkMode: 'none' | 'all' | 'mixed') {
  const count = random(40);
  const members: AggregateMember[] = [];
  for (let i = 0; i < count; i++) {
    const sizeClass = random(10);
    const size = sizeClass < 6 ? random(128) : sizeClass < 9 ? random(2_000) : random(20_000);
    const data = Buffer.alloc(size);
    for (let b = 0; b < size; b++) data[b] = random(256);
    // Not below 2^32: aws-kinesis-agg builds its tables with Object.keys, which puts keys that
    // look like array indices first in numeric order, so small numeric keys used out of order get
    // the wrong indices there (its bug, not a format rule).
    const ehk =
      ehkMode === 'all' || (ehkMode === 'mixed' && random(2) === 0)
        ? [
            (2n ** 64n + BigInt(random(5))).toString(),
            MAX_HASH_KEY.toString(),
            '1234567890123456789012345678901234567',
          ][random(3)]
        : undefined;
    members.push({
      partitionKey: KEY_POOL[random(KEY_POOL.length)] as string,
      data,
      ...(ehk === undefined ? {} : { explicitHashKey: ehk }),
    });
  }
  return members;
}

function plain(members: readonly AggregateMember[]) {
  return members.map((m) => ({
    partitionKey: m.partitionKey,
    data: Buffer.from(m.data).toString('hex'),
    explicitHashKey: m.explicitHashKey,
  }));
}

/** Magic ‖ protobuf ‖ MD5(protobuf): a framed aggregate of hand-made protobuf bytes. */
function framed(protobuf: number[] | Buffer): Buffer {
  const body = Buffer.from(protobuf);
  return Buffer.concat([KPL_MAGIC, body, createHash('md5').update(body).digest()]);
}

describe('KPL aggregate codec', () => {
  it('aws-kinesis-agg deaggregates what we encode: keys, data, explicit hash keys, order', () => {
    const random = prng(1);
    let checked = 0;
    for (let round = 0; round < 60; round++) {
      const mode = (['none', 'all', 'mixed'] as const)[round % 3] as 'none' | 'all' | 'mixed';
      const members = randomMembers(random, mode);
      if (members.length === 0) continue;
      const theirs = theirDeaggregate(encodeAggregate(members));
      expect(theirs.map((r) => r.subSequenceNumber)).toEqual(members.map((_, i) => i));
      expect(theirs.map((r) => r.partitionKey)).toEqual(members.map((m) => m.partitionKey));
      expect(theirs.map((r) => Buffer.from(r.data, 'base64').toString('hex'))).toEqual(
        members.map((m) => Buffer.from(m.data).toString('hex')),
      );
      // aws-kinesis-agg reads a missing explicit_hash_key_index as 0 (protobufjs' default), so a
      // member without one shows the table's first entry: only members with one are compared.
      members.forEach((m, i) => {
        if (m.explicitHashKey !== undefined)
          expect(theirs[i]?.explicitPartitionKey).toBe(m.explicitHashKey);
        else if (mode === 'none') expect(theirs[i]?.explicitPartitionKey).toBeUndefined();
      });
      checked++;
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('decodes what aws-kinesis-agg aggregates', async () => {
    const random = prng(2);
    for (let round = 0; round < 30; round++) {
      const mode = (['none', 'all', 'mixed'] as const)[round % 3] as 'none' | 'all' | 'mixed';
      const members = randomMembers(random, mode).filter((m) => m.data.length > 0);
      if (members.length === 0) continue;
      const encoded = await theirAggregate(members);
      expect(encoded).toHaveLength(1);
      const ours = decodeAggregate((encoded[0] as AggEncoded).data);
      expect(ours).toBeDefined();
      expect(plain(ours ?? [])).toEqual(plain(members));
    }
    // A fixed case, so a reader that returns nothing at all cannot pass.
    const [one] = await theirAggregate([
      { partitionKey: 'p', data: Buffer.from('first'), explicitHashKey: '42' },
      { partitionKey: 'q', data: Buffer.from('second') },
      { partitionKey: 'p', data: Buffer.from('third') },
    ]);
    expect(one?.partitionKey).toBe('p');
    expect(one?.ExplicitHashKey).toBe('42');
    expect(decodeAggregate(one?.data ?? Buffer.alloc(0))).toEqual([
      { partitionKey: 'p', explicitHashKey: '42', data: Buffer.from('first') },
      { partitionKey: 'q', data: Buffer.from('second') },
      { partitionKey: 'p', data: Buffer.from('third') },
    ]);
  });

  it('reads a record with the magic but a wrong MD5 as a plain record', () => {
    const good = encodeAggregate([
      { partitionKey: 'a', data: Buffer.from('one') },
      { partitionKey: 'b', data: Buffer.from('two') },
    ]);
    expect(decodeAggregate(good)).toHaveLength(2);
    const bad = Buffer.from(good);
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0x01;
    expect(decodeAggregate(bad)).toBeUndefined();
    expect(isAggregate(bad)).toBe(false);
    expect(isAggregate(good)).toBe(true);
    const stored = StreamRecord.fromPartial({
      sequenceNumber: '7',
      partitionKey: 'outer',
      data: bad,
    });
    const users = deaggregateRecord(stored);
    expect(users).toHaveLength(1);
    expect(users[0]).toMatchObject({
      sequenceNumber: '7',
      partitionKey: 'outer',
      subSequenceNumber: 0,
    });
    expect(users[0]?.data.equals(bad)).toBe(true);
    // A protobuf byte flipped (MD5 left as it was) is caught by the MD5 too.
    const flipped = Buffer.from(good);
    flipped[6] = (flipped[6] as number) ^ 0x40;
    expect(decodeAggregate(flipped)).toBeUndefined();
  });

  it('round-trips seeded random aggregates, and the sizer matches the encoded length exactly', () => {
    const random = prng(3);
    let rounds = 0;
    for (let round = 0; round < 300; round++) {
      const mode = (['none', 'all', 'mixed'] as const)[round % 3] as 'none' | 'all' | 'mixed';
      const members = randomMembers(random, mode);
      const encoded = encodeAggregate(members);
      expect(aggregateSizeBytes(members)).toBe(encoded.length);
      // Incrementally: each member costs exactly what it adds to the encoded prefix.
      const sizer = new AggregateSizer();
      let previous = encodeAggregate([]).length;
      expect(sizer.sizeBytes).toBe(previous);
      members.forEach((m, i) => {
        const cost = sizer.costBytes(m);
        sizer.add(m);
        const now = encodeAggregate(members.slice(0, i + 1)).length;
        expect(now - previous).toBe(cost);
        expect(sizer.sizeBytes).toBe(now);
        previous = now;
      });
      expect(sizer.count).toBe(members.length);
      if (members.length === 0) {
        // Nothing between magic and MD5: a plain record, as the KCL reads it.
        expect(decodeAggregate(encoded)).toBeUndefined();
        continue;
      }
      expect(plain(decodeAggregate(encoded) ?? [])).toEqual(plain(members));
      rounds++;
    }
    expect(rounds).toBeGreaterThan(250);
  });

  it('sizes and round-trips tables past 128 entries (two-byte indices)', () => {
    const members = Array.from({ length: 300 }, (_, i) => ({
      partitionKey: `pk-${i}`,
      data: Buffer.from(`d${i}`),
      ...(i % 2 === 0 ? { explicitHashKey: (2n ** 100n + BigInt(i)).toString() } : {}),
    }));
    const encoded = encodeAggregate(members);
    expect(aggregateSizeBytes(members)).toBe(encoded.length);
    const sizer = new AggregateSizer();
    for (const m of members) sizer.add(m);
    expect(sizer.sizeBytes).toBe(encoded.length);
    expect(plain(decodeAggregate(encoded) ?? [])).toEqual(plain(members));
    const theirs = theirDeaggregate(encoded);
    expect(theirs.map((r) => r.partitionKey)).toEqual(members.map((m) => m.partitionKey));
    expect(theirs.map((r) => Buffer.from(r.data, 'base64').toString())).toEqual(
      members.map((m) => m.data.toString()),
    );
    theirs.forEach((r, i) => {
      if (i % 2 === 0) expect(r.explicitPartitionKey).toBe(members[i]?.explicitHashKey);
    });
  });

  it('deduplicates keys in the tables (a repeated key costs no table entry)', () => {
    const sizer = new AggregateSizer();
    const first = sizer.costBytes({ partitionKey: 'same-key', data: Buffer.from('x') });
    sizer.add({ partitionKey: 'same-key', data: Buffer.from('x') });
    const again = sizer.costBytes({ partitionKey: 'same-key', data: Buffer.from('x') });
    // The table entry: tag, length and the 8 bytes of the key.
    expect(first - again).toBe(1 + 1 + 8);
    const encoded = encodeAggregate(
      Array.from({ length: 50 }, () => ({ partitionKey: 'same-key', data: Buffer.from('x') })),
    );
    expect(encoded.toString('latin1').split('same-key')).toHaveLength(2);
  });

  it('reads malformed aggregates as plain records, never throwing, in bounded time', () => {
    // Valid by hand: table ["k"], one record {pk index 0, data "hi"} — so the cases below can fail.
    const record = [0x08, 0x00, 0x1a, 0x02, 0x68, 0x69];
    const valid = [0x0a, 0x01, 0x6b, 0x1a, record.length, ...record];
    expect(decodeAggregate(framed(valid))).toEqual([
      { partitionKey: 'k', data: Buffer.from('hi') },
    ]);
    // Tables after the records are fine on the wire.
    expect(
      decodeAggregate(framed([0x1a, record.length, ...record, 0x0a, 0x01, 0x6b])),
    ).toHaveLength(1);
    // An unknown field is skipped.
    expect(decodeAggregate(framed([...valid, 0x28, 0x05]))).toHaveLength(1);
    const bad: [string, number[]][] = [
      ['partition key index out of range', [0x0a, 0x01, 0x6b, 0x1a, 0x04, 0x08, 0x05, 0x1a, 0x00]],
      ['no partition key table', [0x1a, record.length, ...record]],
      [
        'explicit hash key index out of range',
        [0x0a, 0x01, 0x6b, 0x1a, 0x06, 0x08, 0x00, 0x10, 0x00, 0x1a, 0x00],
      ],
      ['record without data', [0x0a, 0x01, 0x6b, 0x1a, 0x02, 0x08, 0x00]],
      ['record without partition key index', [0x0a, 0x01, 0x6b, 0x1a, 0x02, 0x1a, 0x00]],
      ['length beyond the message', [0x0a, 0x7f, 0x6b]],
      ['truncated varint', [0x0a, 0x01, 0x6b, 0x1a, 0x02, 0x08, 0x80]],
      ['varint of 11 bytes', [0x28, ...Array<number>(10).fill(0xff), 0x01]],
      ['group wire type', [0x0b, 0x0c]],
      ['field number 0', [0x02, 0x00]],
      ['table entry with varint wire type', [0x08, 0x01]],
      ['tag without key', [0x0a, 0x01, 0x6b, 0x1a, 0x08, ...record, 0x22, 0x00]],
      [
        'index beyond 2^53',
        [0x0a, 0x01, 0x6b, 0x1a, 0x0d, 0x08, ...Array<number>(9).fill(0xff), 0x01, 0x1a, 0x00],
      ],
    ];
    for (const [name, bytes] of bad) {
      expect(decodeAggregate(framed(bytes)), name).toBeUndefined();
      const users = deaggregateRecord(
        StreamRecord.fromPartial({ sequenceNumber: '1', partitionKey: 'o', data: framed(bytes) }),
      );
      expect(
        users.map((u) => u.subSequenceNumber),
        name,
      ).toEqual([0]);
    }
    // Too short, no magic, magic alone: plain.
    expect(decodeAggregate(Buffer.from(''))).toBeUndefined();
    expect(decodeAggregate(Buffer.from('just some data that is long enough'))).toBeUndefined();
    expect(decodeAggregate(KPL_MAGIC)).toBeUndefined();
    // Seeded mutations of valid aggregates, MD5 recomputed: any answer, but no throw.
    const random = prng(4);
    for (let round = 0; round < 500; round++) {
      const members = randomMembers(random, 'mixed').slice(0, 5);
      const body = encodeAggregate(members).subarray(KPL_MAGIC.length, -16);
      const mutated = Buffer.from(body);
      for (let k = 0; k <= random(4) && mutated.length > 0; k++)
        mutated[random(mutated.length)] = random(256);
      const cut = mutated.subarray(0, mutated.length - random(Math.min(3, mutated.length + 1)));
      const result = decodeAggregate(framed(cut));
      expect(result === undefined || Array.isArray(result)).toBe(true);
    }
    // A well-formed aggregate of no records holds no user records (as the KCL reads it).
    expect(decodeAggregate(framed([0x0a, 0x01, 0x6b]))).toEqual([]);
  });
});

describe('aggregating packer', () => {
  function member(partitionKey: string, dataBytes: number): UnitMember {
    const data = Buffer.alloc(dataBytes, 0x61);
    return {
      entry: { partitionKey, data },
      hashKey: partitionKeyToHashKey(partitionKey),
      sizeBytes: dataBytes + Buffer.byteLength(partitionKey),
    };
  }

  it('packs consecutive members up to the size limit, the first key outside; one member goes plain', () => {
    const packer = createPacker({ aggregateMaxBytes: 1_000 });
    const queue = Array.from({ length: 100 }, (_, i) => member(`k${i % 7}`, 30));
    const all = [...queue];
    const units = [];
    for (let guard = 0; queue.length > 0 && guard < 100; guard++) {
      const unit = packer.take(queue, 5 * 1024 * 1024);
      if (unit === undefined) break;
      units.push(unit);
    }
    expect(queue).toHaveLength(0);
    expect(units.flatMap((u) => u.members)).toEqual(all);
    for (const unit of units) {
      const first = unit.members[0] as UnitMember;
      expect(unit.entry.partitionKey).toBe(first.entry.partitionKey);
      if (!unit.aggregated) {
        expect(unit.members).toHaveLength(1);
        expect(unit.entry).toBe(first.entry);
        continue;
      }
      expect(unit.entry.data.length).toBeLessThanOrEqual(1_000);
      expect(unit.entry.explicitHashKey).toBe(first.hashKey.toString());
      expect(unit.sizeBytes).toBe(
        unit.entry.data.length + Buffer.byteLength(first.entry.partitionKey),
      );
      expect(plain(decodeAggregate(unit.entry.data) ?? [])).toEqual(
        plain(unit.members.map((m) => m.entry)),
      );
    }
    // Full: one more member would not have fitted.
    for (const unit of units.slice(0, -1)) {
      expect(unit.aggregated).toBe(true);
      const next = all[all.indexOf(unit.members.at(-1) as UnitMember) + 1] as UnitMember;
      expect(aggregateSizeBytes([...unit.members.map((m) => m.entry), next.entry])).toBeGreaterThan(
        1_000,
      );
    }
    expect(units.length).toBeLessThan(10);
    // One member alone, or one too big to aggregate: plain.
    const lone = [member('solo', 10)];
    expect(packer.take(lone, 1_000_000)).toMatchObject({ aggregated: false, sizeBytes: 14 });
    const big = [member('big', 5_000), member('small', 10)];
    expect(packer.take(big, 1_000_000)).toMatchObject({ aggregated: false, sizeBytes: 5_003 });
    expect(big).toHaveLength(1);
  });

  it('keeps the unit within the budget it is given, and takes nothing when even one does not fit', () => {
    const packer = createPacker({ aggregateMaxBytes: 51_200 });
    const queue = Array.from({ length: 50 }, () => member('key', 20));
    const unit = packer.take(queue, 300);
    expect(unit?.aggregated).toBe(true);
    expect(unit?.sizeBytes).toBeLessThanOrEqual(300);
    const rest = queue.length;
    expect(packer.take(queue, 22)).toBeUndefined();
    expect(queue).toHaveLength(rest);
    expect(() => createPacker({ aggregateMaxBytes: 0 })).toThrow(ValidationError);
  });
});

// ---------------------------------------------------------------------------------------------
// Against a real node

let node: TestNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

async function stream(name: string, shardCount: number): Promise<RheosClient> {
  node = await startTestNode();
  const { client } = node;
  await client.createStream({ streamName: name, shardCount, shardLimits: UNLIMITED_SHARD_LIMITS });
  await client.waitForStreamActive(name);
  return client;
}

async function collect<T>(records: AsyncIterable<T>, max = 100_000): Promise<T[]> {
  const out: T[] = [];
  for await (const r of records) {
    out.push(r);
    if (out.length >= max) break;
  }
  return out;
}

function texts(records: readonly UserRecord[]): string[] {
  return records.map((r) => r.data.toString('utf8'));
}

describe('aggregation end to end', () => {
  it('a producer with aggregate: true stores few records; readers yield every user record in key order', async () => {
    const client = await stream('s', 2);
    const producer = createProducer({
      client,
      streamName: 's',
      aggregate: true,
      lingerMs: 20,
      backoff: { initialMs: 5, maxMs: 50 },
    });
    const sent: { partitionKey: string; data: string }[] = [];
    for (let i = 0; i < 100; i++)
      for (let k = 0; k < 20; k++) sent.push({ partitionKey: `key-${k}`, data: `key-${k}:${i}` });
    const outcomes = await producer.putMany(sent);
    await producer.close();
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const results = outcomes.map((o) => (o.ok ? o.result : undefined)) as RecordResult[];
    expect(results.some((r) => r.subSequenceNumber > 0)).toBe(true);

    const items = await collect(
      readLineage({ client, streamName: 's', from: { type: 'TRIM_HORIZON' }, follow: false }),
    );
    expect(items).toHaveLength(2_000);
    expect([...texts(items.map((i) => i.record))].sort()).toEqual(sent.map((s) => s.data).sort());
    // Where the producer said each record went is where the reader finds it.
    const position = new Map(
      items.map((i) => [
        i.record.data.toString(),
        `${i.shardId} ${i.record.sequenceNumber} ${i.record.subSequenceNumber}`,
      ]),
    );
    sent.forEach((s, n) => {
      const r = results[n] as RecordResult;
      expect(position.get(s.data)).toBe(`${r.shardId} ${r.sequenceNumber} ${r.subSequenceNumber}`);
    });
    // Per key, in the order sent; each user record has the key it was sent with.
    const lastOfKey = new Map<string, number>();
    for (const { record } of items) {
      const [key, index] = record.data.toString().split(':') as [string, string];
      expect(record.partitionKey).toBe(key);
      expect(Number(index)).toBe((lastOfKey.get(key) ?? -1) + 1);
      lastOfKey.set(key, Number(index));
    }
    // Within each stored record, sub-sequence numbers 0..n-1 in order.
    const subs = new Map<string, number[]>();
    for (const { record } of items)
      subs.set(record.sequenceNumber, [
        ...(subs.get(record.sequenceNumber) ?? []),
        record.subSequenceNumber,
      ]);
    for (const list of subs.values()) expect(list).toEqual(list.map((_, i) => i));

    // The shards hold far fewer stored records: read them raw.
    const stored = await collect(
      readLineage({
        client,
        streamName: 's',
        from: { type: 'TRIM_HORIZON' },
        follow: false,
        deaggregate: false,
      }),
    );
    expect(stored.length).toBe(subs.size);
    expect(stored.length).toBeLessThan(200);
    expect(stored.filter((s) => isAggregate(s.record.data)).length).toBeGreaterThan(0);
    expect(stored.every((s) => s.record.subSequenceNumber === 0)).toBe(true);
    // pollShard over one shard gives that shard's user records likewise.
    const shards = await listAllShards(client, 's');
    const firstShard = shards[0]?.shardId as string;
    const polled = await collect(
      pollShard({
        client,
        streamName: 's',
        shardId: firstShard,
        from: { type: 'TRIM_HORIZON' },
        follow: false,
      }),
    );
    expect(texts(polled)).toEqual(
      texts(items.filter((i) => i.shardId === firstShard).map((i) => i.record)),
    );
  });

  it('pollShard deaggregates aws-kinesis-agg aggregates put with putRecords, and reads plain and bad ones whole', async () => {
    const client = await stream('s', 1);
    // Explicit hash keys in ascending order (see randomMembers on aws-kinesis-agg's tables).
    const members: AggregateMember[] = Array.from({ length: 30 }, (_, i) => ({
      partitionKey: `user-${i % 4}`,
      data: Buffer.from(`agg-${i}`),
      ...(i % 5 === 0 ? { explicitHashKey: String(1000 + i) } : {}),
    }));
    const [theirs] = await theirAggregate(members);
    const badMd5 = encodeAggregate([{ partitionKey: 'x', data: Buffer.from('never split') }]);
    badMd5[badMd5.length - 3] = (badMd5[badMd5.length - 3] as number) ^ 0xff;
    const answer = await client.putRecords({
      streamName: 's',
      records: [
        { partitionKey: 'plain', data: Buffer.from('before') },
        {
          partitionKey: theirs?.partitionKey as string,
          data: theirs?.data as Buffer,
          ...(theirs?.ExplicitHashKey === undefined
            ? {}
            : { explicitHashKey: theirs.ExplicitHashKey }),
        },
        { partitionKey: 'bad', data: badMd5 },
        { partitionKey: 'plain', data: Buffer.from('after') },
      ],
    });
    expect(answer.failedRecordCount).toBe(0);
    const [shard] = await listAllShards(client, 's');
    const read = await collect(
      pollShard({
        client,
        streamName: 's',
        shardId: shard?.shardId as string,
        from: { type: 'TRIM_HORIZON' },
        follow: false,
      }),
    );
    expect(read).toHaveLength(1 + 30 + 1 + 1);
    expect(read[0]).toMatchObject({ partitionKey: 'plain', subSequenceNumber: 0 });
    expect(texts(read.slice(1, 31))).toEqual(members.map((m) => Buffer.from(m.data).toString()));
    read.slice(1, 31).forEach((r, i) => {
      expect(r.partitionKey).toBe(members[i]?.partitionKey);
      expect(r.explicitHashKey).toBe(members[i]?.explicitHashKey);
      expect(r.subSequenceNumber).toBe(i);
      expect(r.sequenceNumber).toBe(read[1]?.sequenceNumber);
    });
    expect(read[31]).toMatchObject({ partitionKey: 'bad', subSequenceNumber: 0 });
    expect(read[31]?.data.equals(badMd5)).toBe(true);
    expect(texts(read.slice(32))).toEqual(['after']);
  });

  it('resumes inside an aggregate: AFTER/AT a (sequence number, sub-sequence number) yields exactly the rest', async () => {
    const client = await stream('s', 1);
    const aggregateOf = (tag: string, n: number) =>
      encodeAggregate(
        Array.from({ length: n }, (_, i) => ({
          partitionKey: `k${i % 3}`,
          data: Buffer.from(`${tag}${i}`),
        })),
      );
    const answer = await client.putRecords({
      streamName: 's',
      records: [
        { partitionKey: 'p', data: Buffer.from('A') },
        { partitionKey: 'p', data: aggregateOf('B', 10) },
        { partitionKey: 'p', data: Buffer.from('C') },
        { partitionKey: 'p', data: aggregateOf('D', 5) },
      ],
    });
    expect(answer.failedRecordCount).toBe(0);
    const [a, b, c] = answer.records.map((r) => r.sequenceNumber) as [string, string, string];
    const shardId = answer.records[0]?.shardId as string;
    const everything = [
      'A',
      ...Array.from({ length: 10 }, (_, i) => `B${i}`),
      'C',
      'D0',
      'D1',
      'D2',
      'D3',
      'D4',
    ];
    const from = async (position: StartPosition, reader: ShardReadClient = client) =>
      texts(
        await collect(
          pollShard({ client: reader, streamName: 's', shardId, from: position, follow: false }),
        ),
      );

    expect(await from({ type: 'TRIM_HORIZON' })).toEqual(everything);
    expect(
      await from({ type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: b, subSequenceNumber: 3 }),
    ).toEqual(everything.slice(5));
    expect(
      await from({ type: 'AT_SEQUENCE_NUMBER', sequenceNumber: b, subSequenceNumber: 3 }),
    ).toEqual(everything.slice(4));
    expect(
      await from({ type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: b, subSequenceNumber: 9 }),
    ).toEqual(everything.slice(11));
    expect(await from({ type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: b })).toEqual(
      everything.slice(11),
    );
    // A plain record at the position is skipped whole.
    expect(
      await from({ type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: a, subSequenceNumber: 0 }),
    ).toEqual(everything.slice(1));
    expect(
      await from({ type: 'AT_SEQUENCE_NUMBER', sequenceNumber: c, subSequenceNumber: 0 }),
    ).toEqual(everything.slice(11));

    // Iterators that expire: after the first GetRecords of a position inside B, and later between
    // records; reading goes on from the last user record yielded, nothing twice or missed.
    let calls = 0;
    const expiring: ShardReadClient = {
      getShardIterator: client.getShardIterator.bind(client),
      async getRecords(request) {
        calls++;
        if (calls === 1 || calls === 3) throw new ExpiredIteratorError('expired (test)');
        return client.getRecords({ ...request, limit: 1 });
      },
    };
    expect(
      await from(
        { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: b, subSequenceNumber: 6 },
        expiring,
      ),
    ).toEqual(everything.slice(8));
    expect(calls).toBeGreaterThan(3);

    // A sub-sequence number cannot be honoured on raw records.
    await expect(
      collect(
        pollShard({
          client,
          streamName: 's',
          shardId,
          from: { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: b, subSequenceNumber: 1 },
          deaggregate: false,
        }),
      ),
    ).rejects.toThrow(ValidationError);
  });

  it('readLineage from AT_TIMESTAMP: roots at the timestamp, children after it', async () => {
    const client = await stream('s', 1);
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const put = async (tag: string) => {
      const records = Array.from({ length: 8 }, (_, i) => ({
        partitionKey: `key-${i}`,
        data: Buffer.from(`${tag}-${i}`),
      }));
      expect((await client.putRecords({ streamName: 's', records })).failedRecordCount).toBe(0);
    };
    await put('old');
    await pause(30);
    const beforeSplitMs = Date.now();
    await pause(30);
    await put('parent-late');
    const [parent] = await listAllShards(client, 's');
    await client.splitShard({
      streamName: 's',
      shardToSplit: parent?.shardId as string,
      newStartingHashKey: ((MAX_HASH_KEY + 1n) / 2n).toString(),
    });
    await client.waitForStreamActive('s');
    await put('mid');
    await pause(30);
    const afterSplitMs = Date.now();
    await pause(30);
    await put('new');
    const read = async (timestampMs: number) =>
      texts(
        (
          await collect(
            readLineage({
              client,
              streamName: 's',
              from: { type: 'AT_TIMESTAMP', timestampMs },
              follow: false,
            }),
          )
        ).map((i) => i.record),
      ).sort();
    const tagged = (...tags: string[]) =>
      tags.flatMap((t) => Array.from({ length: 8 }, (_, i) => `${t}-${i}`)).sort();
    // The parent reaches the timestamp: the children are read whole after it.
    expect(await read(beforeSplitMs)).toEqual(tagged('parent-late', 'mid', 'new'));
    // The parent holds nothing that late: the children start at the timestamp themselves.
    expect(await read(afterSplitMs)).toEqual(tagged('new'));
  });
});
