import { afterEach, describe, expect, it } from 'vitest';
import {
  readLineage,
  type LineageClient,
  type LineageItem,
  type LineageReaderOptions,
} from '../../src/client/lineage-reader.js';
import {
  AccessDeniedError,
  ProvisionedThroughputExceededError,
  ResourceNotFoundError,
} from '../../src/common/errors.js';
import { ScalingType } from '../../src/gen/rheos/v1/control.js';
import { ShardIteratorType } from '../../src/gen/rheos/v1/data.js';
import { Record as StreamRecord, type Shard } from '../../src/gen/rheos/v1/stream.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The lineage reader against a scripted stream (a fake of the three calls it makes: ListShards,
 * GetShardIterator, GetRecords) whose shards split and merge, before and during the reading: a
 * child is never started before all its parents were read to their end, every record comes out
 * once, and parents' records come out before their children's. Then once against a real node
 * (in-process `rheos dev`) that splits, merges and rescales.
 */

interface FakeShard {
  readonly id: string;
  readonly parents: string[];
  readonly records: StreamRecord[];
  sealed: boolean;
  /** Listed by ListShards (children are not until they open; expired shards no longer). */
  listed: boolean;
  children: string[];
}

/** A scripted stream, with a log of the reader's starts (GetShardIterator) and ends. */
class FakeStream implements LineageClient {
  readonly shards = new Map<string, FakeShard>();
  readonly log: string[] = [];
  readonly iteratorTypes = new Map<string, ShardIteratorType>();
  recordsServed = 0;
  getRecordsCalls = 0;
  /** Errors to throw from the next GetRecords calls of a shard. */
  readonly failNext = new Map<string, Error[]>();
  private seq = 0;
  private random = 12345;

  constructor(readonly maxPerRead = 3) {}

  add(id: string, parents: string[] = []): void {
    this.shards.set(id, { id, parents, records: [], sealed: false, listed: true, children: [] });
  }

  put(shardId: string, partitionKey: string, data: string): void {
    const shard = this.must(shardId);
    if (shard.sealed) throw new Error(`put to sealed ${shardId}`);
    shard.records.push(
      StreamRecord.fromPartial({
        sequenceNumber: String(++this.seq).padStart(10, '0'),
        partitionKey,
        data: Buffer.from(data),
        approximateArrivalTimestampMs: Date.now(),
      }),
    );
  }

  /** Seals the parents and creates the children, not yet listed (pending). */
  reshard(parents: string[], children: string[]): void {
    for (const p of parents) {
      const shard = this.must(p);
      shard.sealed = true;
      shard.children = children;
    }
    for (const c of children) {
      this.shards.set(c, {
        id: c,
        parents: [...parents],
        records: [],
        sealed: false,
        listed: false,
        children: [],
      });
    }
  }

  open(...ids: string[]): void {
    for (const id of ids) this.must(id).listed = true;
  }

  expire(id: string): void {
    this.must(id).listed = false;
  }

  listShards(request: Parameters<LineageClient['listShards']>[0]) {
    // Two shards a page, so the reader has to follow nextToken.
    const listed = [...this.shards.values()].filter((s) => s.listed);
    const offset = request.nextToken ? Number(request.nextToken) : 0;
    const page = listed.slice(offset, offset + 2).map((s): Shard => ({
      shardId: s.id,
      parentShardId: s.parents[0] ?? '',
      adjacentParentShardId: s.parents[1] ?? '',
      hashKeyRange: { startingHashKey: '0', endingHashKey: '1' },
      sequenceNumberRange: {
        startingSequenceNumber: '0',
        endingSequenceNumber: s.sealed ? '9999999999' : '',
      },
    }));
    const next = offset + 2 < listed.length ? String(offset + 2) : '';
    return Promise.resolve({ shards: page, nextToken: next });
  }

  async getShardIterator(request: Parameters<LineageClient['getShardIterator']>[0]) {
    await this.jitter();
    const shard = this.shards.get(request.shardId ?? '');
    if (shard === undefined || !shard.listed) throw new ResourceNotFoundError('no such shard');
    const type = request.shardIteratorType ?? ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON;
    this.iteratorTypes.set(shard.id, type);
    this.log.push(`start ${shard.id}`);
    const position =
      type === ShardIteratorType.SHARD_ITERATOR_TYPE_LATEST && !shard.sealed
        ? shard.records.length
        : 0;
    return { shardIterator: `${shard.id}@${position}` };
  }

  async getRecords(request: Parameters<LineageClient['getRecords']>[0]) {
    await this.jitter();
    this.getRecordsCalls++;
    const [id, at] = (request.shardIterator ?? '').split('@') as [string, string];
    const shard = this.must(id);
    const failure = this.failNext.get(id)?.shift();
    if (failure !== undefined) throw failure;
    const position = Number(at);
    const limit = Math.min(request.limit ?? this.maxPerRead, this.maxPerRead);
    const records = shard.records.slice(position, position + limit);
    this.recordsServed += records.length;
    const next = position + records.length;
    const base = { records, millisBehindLatest: 0 };
    if (shard.sealed && next >= shard.records.length) {
      const children = shard.children.map((c) => this.must(c));
      // The children open after the seal: until then the end is not given out.
      if (children.every((c) => c.listed)) {
        this.log.push(`end ${id}`);
        return {
          ...base,
          nextShardIterator: '',
          childShards: children.map((c) => ({ shardId: c.id, parentShards: c.parents })),
        };
      }
    }
    return { ...base, nextShardIterator: `${id}@${next}`, childShards: [] };
  }

  private must(id: string): FakeShard {
    const shard = this.shards.get(id);
    if (shard === undefined) throw new Error(`unknown shard ${id}`);
    return shard;
  }

  /** A few milliseconds of seeded random latency, so shards finish in varied orders. */
  private async jitter(): Promise<void> {
    this.random = (this.random * 1103515245 + 12345) % 2 ** 31;
    await new Promise((resolve) => setTimeout(resolve, this.random % 4));
  }
}

/** Polls a condition of the fake every few milliseconds. */
function until(condition: () => boolean): Promise<true> {
  return waitUntil(condition.toString(), () => condition() || undefined, 10_000, 2);
}

/** Records the reader yields, each as "shard key data". */
async function collect(options: LineageReaderOptions, max = Infinity): Promise<LineageItem[]> {
  const out: LineageItem[] = [];
  for await (const item of readLineage(options)) {
    out.push(item);
    if (out.length >= max) break;
  }
  return out;
}

/** Every shard started after each of its parents ended, per the fake's log. */
function expectStartsAfterParents(stream: FakeStream): void {
  for (const shard of stream.shards.values()) {
    const started = stream.log.indexOf(`start ${shard.id}`);
    if (started === -1) continue;
    for (const parent of shard.parents) {
      const ended = stream.log.indexOf(`end ${parent}`);
      if (!stream.shards.get(parent)?.listed && ended === -1) continue; // expired parent
      expect(ended, `${parent} ended before ${shard.id} started`).toBeGreaterThan(-1);
      expect(ended, `${parent} ended before ${shard.id} started`).toBeLessThan(started);
    }
  }
}

/** Every record of the fake once, each shard's in order, and parents' before their children's. */
function expectLineageOrder(stream: FakeStream, items: LineageItem[], skipped = new Set<string>()) {
  const expected = [...stream.shards.values()]
    .filter((s) => !skipped.has(s.id))
    .flatMap((s) => s.records.map((r) => r.sequenceNumber))
    .sort();
  expect(items.map((i) => i.record.sequenceNumber).sort()).toEqual(expected);
  const positions = new Map<string, number[]>();
  items.forEach((item, index) => {
    const list = positions.get(item.shardId) ?? [];
    list.push(index);
    positions.set(item.shardId, list);
  });
  for (const shard of stream.shards.values()) {
    if (skipped.has(shard.id)) continue;
    const got = items.filter((i) => i.shardId === shard.id).map((i) => i.record.sequenceNumber);
    expect(got, `records of ${shard.id} in order`).toEqual(
      shard.records.map((r) => r.sequenceNumber),
    );
    const first = positions.get(shard.id)?.[0];
    if (first === undefined) continue;
    for (const parent of shard.parents) {
      const last = positions.get(parent)?.at(-1);
      if (last !== undefined) expect(last, `${parent} before ${shard.id}`).toBeLessThan(first);
    }
  }
}

/** Per key, the data in the order it was put. */
function perKey(items: readonly { key: string; data: string }[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { key, data } of items) out.set(key, [...(out.get(key) ?? []), data]);
  return out;
}

describe('readLineage over a scripted stream', () => {
  it('reads a split then a merge of shards of different parents, in lineage order, each record once', async () => {
    const stream = new FakeStream();
    const puts: { key: string; data: string }[] = [];
    let n = 0;
    const put = (shard: string, key: string) => {
      const data = `${key}-${n++}`;
      stream.put(shard, key, data);
      puts.push({ key, data });
    };
    stream.add('s0');
    stream.add('s1');
    for (let i = 0; i < 10; i++) {
      put('s0', 'a');
      put('s1', 'b');
    }
    stream.reshard(['s0'], ['s2', 's3']);
    stream.open('s2', 's3');
    for (let i = 0; i < 7; i++) {
      put('s2', 'a');
      put('s3', 'c');
      put('s1', 'b');
    }
    stream.reshard(['s1'], ['s4', 's5']);
    stream.open('s4', 's5');
    for (let i = 0; i < 5; i++) {
      put('s3', 'c');
      put('s4', 'b');
      put('s5', 'd');
    }
    // A merge across the two families: s3 (a child of s0) with s4 (a child of s1).
    stream.reshard(['s3', 's4'], ['s6']);
    stream.open('s6');
    for (let i = 0; i < 6; i++) {
      put('s6', 'c');
      put('s6', 'b');
      put('s2', 'a');
      put('s5', 'd');
    }
    stream.failNext.set('s1', [new ProvisionedThroughputExceededError('slow down')]);

    const items = await collect({
      client: stream,
      streamName: 'x',
      from: { type: 'TRIM_HORIZON' },
      follow: false,
      bufferSize: 4,
      idlePollMs: 1,
    });

    expectStartsAfterParents(stream);
    expectLineageOrder(stream, items);
    expect(items).toHaveLength(puts.length);
    const got = items.map((i) => ({ key: i.record.partitionKey, data: i.record.data.toString() }));
    expect(perKey(got)).toEqual(perKey(puts));
    expect(stream.log.filter((l) => l.startsWith('start '))).toHaveLength(7);
  });

  it('follows splits and merges made while it reads, waiting for children to open', async () => {
    const stream = new FakeStream(2);
    stream.add('s0');
    for (let i = 0; i < 5; i++) stream.put('s0', 'k', `early-${i}`);
    const stop = new AbortController();
    const items: LineageItem[] = [];
    const reading = (async () => {
      for await (const item of readLineage({
        client: stream,
        streamName: 'x',
        from: { type: 'TRIM_HORIZON' },
        signal: stop.signal,
        idlePollMs: 2,
      })) {
        items.push(item);
      }
    })();
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await pause(20);
    for (let i = 0; i < 5; i++) stream.put('s0', 'k', `late-${i}`);
    stream.reshard(['s0'], ['s1', 's2']);
    await pause(30); // the children are pending: the reader polls s0's end without moving on
    expect(stream.log).not.toContain('start s1');
    stream.open('s1', 's2');
    for (let i = 0; i < 4; i++) {
      stream.put('s1', 'k', `s1-${i}`);
      stream.put('s2', 'j', `s2-${i}`);
    }
    await until(() => stream.log.includes('start s2') && stream.log.includes('start s1'));
    await pause(10);
    stream.reshard(['s1', 's2'], ['s3']);
    await pause(10);
    stream.open('s3');
    for (let i = 0; i < 4; i++) stream.put('s3', 'k', `s3-${i}`);
    await until(() => items.length === 22);
    stop.abort();
    await reading;

    expectStartsAfterParents(stream);
    expectLineageOrder(stream, items);
    expect(stream.log.filter((l) => l === 'start s3')).toHaveLength(1);
  });

  it('from LATEST reads only new records of open shards, skips closed ones, and reads later children whole', async () => {
    const stream = new FakeStream();
    stream.add('s0');
    for (let i = 0; i < 3; i++) stream.put('s0', 'k', `old-${i}`);
    stream.reshard(['s0'], ['s1', 's2']);
    stream.open('s1', 's2');
    for (let i = 0; i < 3; i++) stream.put('s1', 'k', `old-s1-${i}`);
    const oldS1 = stream.shards.get('s1')!.records.length;
    const stop = new AbortController();
    const items: LineageItem[] = [];
    const reading = (async () => {
      for await (const item of readLineage({
        client: stream,
        streamName: 'x',
        from: { type: 'LATEST' },
        signal: stop.signal,
        idlePollMs: 2,
      })) {
        items.push(item);
      }
    })();
    await until(() => stream.log.includes('start s1') && stream.log.includes('start s2'));
    stream.put('s1', 'k', 'new-s1');
    stream.put('s2', 'j', 'new-s2');
    stream.reshard(['s1'], ['s3', 's4']);
    stream.open('s3', 's4');
    stream.put('s3', 'k', 'new-s3');
    stream.put('s4', 'k', 'new-s4');
    await until(() => items.length === 4);
    await new Promise((resolve) => setTimeout(resolve, 30));
    stop.abort();
    await reading;

    expect(stream.log).not.toContain('start s0');
    expect(stream.iteratorTypes.get('s1')).toBe(ShardIteratorType.SHARD_ITERATOR_TYPE_LATEST);
    expect(stream.iteratorTypes.get('s3')).toBe(ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON);
    expect(items.map((i) => i.record.data.toString()).sort()).toEqual(
      ['new-s1', 'new-s2', 'new-s3', 'new-s4'].sort(),
    );
    expect(oldS1).toBe(3);
    for (const child of ['s3', 's4']) {
      expect(stream.log.indexOf(`start ${child}`)).toBeGreaterThan(stream.log.indexOf('end s1'));
    }
  });

  it('treats parents no longer listed as ended, also when a child names one', async () => {
    const stream = new FakeStream();
    stream.add('old');
    stream.add('z');
    stream.put('old', 'k', 'expired');
    stream.reshard(['old'], ['a', 'b']);
    stream.open('a', 'b');
    stream.expire('old');
    stream.put('a', 'k', 'a-1');
    stream.put('b', 'k', 'b-1');
    stream.put('z', 'k', 'z-1');
    // A merge of `a` with `z`, and `z` expires: the reader meets `c` only through `a`'s end,
    // names a parent it never listed, and looks again.
    stream.reshard(['a', 'z'], ['c']);
    stream.expire('z');
    const reading = collect({
      client: stream,
      streamName: 'x',
      from: { type: 'TRIM_HORIZON' },
      follow: false,
      idlePollMs: 1,
    });
    await until(() => stream.log.includes('start a'));
    stream.open('c');
    stream.put('c', 'k', 'c-1');
    const items = await reading;
    expect(items.map((i) => i.record.data.toString()).sort()).toEqual(['a-1', 'b-1', 'c-1']);
    expect(stream.log.indexOf('start c')).toBeGreaterThan(stream.log.indexOf('end a'));
  });

  it('with follow: false stops at the end of the open shards', async () => {
    const stream = new FakeStream();
    stream.add('s0');
    stream.add('s1');
    stream.put('s0', 'k', 'x');
    stream.put('s1', 'k', 'y');
    const items = await collect({
      client: stream,
      streamName: 'x',
      from: { type: 'TRIM_HORIZON' },
      follow: false,
    });
    expect(items.map((i) => i.record.data.toString()).sort()).toEqual(['x', 'y']);
  });

  it('waits for the consumer: reads ahead only as far as the buffer, and stops when it stops', async () => {
    const stream = new FakeStream(10);
    stream.add('s0');
    stream.add('s1');
    for (let i = 0; i < 2000; i++) stream.put(i % 2 === 0 ? 's0' : 's1', 'k', `r${i}`);
    const reader = readLineage({
      client: stream,
      streamName: 'x',
      from: { type: 'TRIM_HORIZON' },
      bufferSize: 8,
    });
    for (let i = 0; i < 5; i++) await reader.next();
    await new Promise((resolve) => setTimeout(resolve, 100));
    // 5 consumed + 8 queued + at most one answer (10) held by each of the two pollers.
    expect(stream.recordsServed).toBeLessThanOrEqual(5 + 8 + 2 * 10);
    await reader.return(undefined);
    const calls = stream.getRecordsCalls;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stream.getRecordsCalls).toBe(calls);
  });

  it('passes on a failure that is not retriable', async () => {
    const stream = new FakeStream();
    stream.add('s0');
    stream.put('s0', 'k', 'x');
    stream.failNext.set('s0', [new AccessDeniedError('no')]);
    await expect(
      collect({ client: stream, streamName: 'x', from: { type: 'TRIM_HORIZON' }, follow: false }),
    ).rejects.toBeInstanceOf(AccessDeniedError);
  });
});

describe('readLineage against a real node', () => {
  let node: TestNode | undefined;
  afterEach(async () => {
    await node?.stop();
    node = undefined;
  });

  it('reads every generation after a split, a merge and a rescale, each record once, each key in order', async () => {
    node = await startTestNode();
    const { client } = node;
    const streamName = 'lineage';
    await client.createStream({ streamName, shardCount: 2 });
    await client.waitForStreamActive(streamName);
    const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
    const puts: { key: string; data: string }[] = [];
    let n = 0;
    const putRound = async () => {
      const batch = keys.map((key) => ({ key, data: `${key}#${n++}` }));
      for (const { key, data } of batch) {
        await client.putRecord({ streamName, partitionKey: key, data: Buffer.from(data) });
      }
      puts.push(...batch);
    };
    const open = async () => {
      const shards: Shard[] = [];
      for (const s of (await client.listShards({ streamName })).shards) shards.push(s);
      return shards.filter((s) => s.sequenceNumberRange?.endingSequenceNumber === '');
    };
    await putRound();
    const [first] = await open();
    const range = first!.hashKeyRange!;
    const middle = (BigInt(range.startingHashKey) + BigInt(range.endingHashKey) + 1n) / 2n;
    await client.splitShard({
      streamName,
      shardToSplit: first!.shardId,
      newStartingHashKey: middle.toString(),
    });
    await client.waitForStreamActive(streamName, 60_000);
    await putRound();
    const byStart = (await open()).sort((a, b) =>
      BigInt(a.hashKeyRange!.startingHashKey) < BigInt(b.hashKeyRange!.startingHashKey) ? -1 : 1,
    );
    // The second child of the split and the other original shard are adjacent.
    await client.mergeShards({
      streamName,
      shardToMerge: byStart[1]!.shardId,
      adjacentShardToMerge: byStart[2]!.shardId,
    });
    await client.waitForStreamActive(streamName, 60_000);
    await putRound();
    await client.updateShardCount({
      streamName,
      targetShardCount: 4,
      scalingType: ScalingType.SCALING_TYPE_UNIFORM_SCALING,
    });
    await client.waitForStreamActive(streamName, 60_000);
    await putRound();
    expect(await open()).toHaveLength(4);

    const items = await collect({
      client,
      streamName,
      from: { type: 'TRIM_HORIZON' },
      follow: false,
    });
    expect(items).toHaveLength(puts.length);
    const got = items.map((i) => ({ key: i.record.partitionKey, data: i.record.data.toString() }));
    expect(new Set(got.map((g) => g.data)).size).toBe(puts.length);
    expect(perKey(got)).toEqual(perKey(puts));
  });
});
