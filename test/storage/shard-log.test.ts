import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { EntryType, StorageCorruptionError, type LogEntry } from '../../src/storage/entry-codec.js';
import { GroupCommitWriter } from '../../src/storage/group-commit.js';
import {
  arrivalKey,
  arrivalKeyParts,
  logKey,
  logKeyIndex,
  metadataKey,
  readU64,
  shardStateKey,
  STATE_HARD,
  writeU64,
} from '../../src/storage/keys.js';
import type { KvStore } from '../../src/storage/kv-store.js';
import { encodeRecordBatch } from '../../src/storage/record-batch.js';
import { LogGapError, ShardLog } from '../../src/storage/shard-log.js';
import { Cleanup, openStore, rawLog, shardKeys, tempFolder } from './kv-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function setup(): Promise<{ dir: string; kv: KvStore; writer: GroupCommitWriter }> {
  const dir = await tempFolder(cleanup);
  const kv = await openStore(cleanup, dir);
  const writer = new GroupCommitWriter(kv, {
    onFatal: (error) => {
      throw error;
    },
  });
  return { dir, kv, writer };
}

function recordsEntry(
  index: number,
  term: number,
  arrivalMs: number,
  text = `e${index}`,
): LogEntry {
  return {
    index,
    term,
    type: EntryType.Records,
    arrivalMs,
    payload: encodeRecordBatch([{ partitionKey: 'pk', data: Buffer.from(text) }]),
  };
}

function emptyEntry(index: number, term: number, arrivalMs: number): LogEntry {
  return { index, term, type: EntryType.Empty, arrivalMs, payload: Buffer.alloc(0) };
}

async function collect(log: ShardLog, from: number, to: number): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const entry of log.entries(from, to)) out.push(entry);
  return out;
}

/** entries 1..n: an empty entry at 1, then records; entry i arrives at 1000 * i. */
async function writeLog(log: ShardLog, writer: GroupCommitWriter, n: number): Promise<LogEntry[]> {
  const entries = [emptyEntry(1, 1, 1000)];
  for (let i = 2; i <= n; i++) entries.push(recordsEntry(i, 1, 1000 * i));
  await writer.write([
    ...log.appendOps(entries),
    log.hardStateOp({ term: 1, vote: 1, commit: n }),
    ...log.applyOps(entries),
  ]);
  return entries;
}

describe('keys', () => {
  it('round-trips u64 values and orders keys like numbers', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.maxSafeNat(), fc.maxSafeNat(), (shard, a, b) => {
        const buf = Buffer.alloc(8);
        writeU64(buf, a, 0);
        expect(readU64(buf, 0)).toBe(a);
        expect(logKeyIndex(logKey(shard, a))).toBe(a);
        expect(arrivalKeyParts(arrivalKey(shard, a, b))).toEqual({ arrivalMs: a, index: b });
        expect(Math.sign(Buffer.compare(logKey(shard, a), logKey(shard, b)))).toBe(
          Math.sign(a - b),
        );
      }),
      { numRuns: 500 },
    );
    expect(() => writeU64(Buffer.alloc(8), -1, 0)).toThrow(RangeError);
    expect(() => writeU64(Buffer.alloc(8), 2 ** 53, 0)).toThrow(RangeError);
  });

  it('keeps every key of a shard apart from the next shard across a byte carry', () => {
    for (const [a, b] of [
      [255, 256],
      [2 ** 32 - 1, 2 ** 32],
    ] as const) {
      expect(Buffer.compare(logKey(a, Number.MAX_SAFE_INTEGER), logKey(b, 0))).toBe(-1);
      expect(Buffer.compare(shardStateKey(a, 0xff), shardStateKey(b, 0))).toBe(-1);
    }
  });
});

describe('ShardLog', () => {
  it('recovers an empty shard as an empty log at index 0', async () => {
    const { kv } = await setup();
    expect(await new ShardLog(kv, 1).recover()).toEqual({
      hardState: { term: 0, vote: 0, commit: 0 },
      trimPoint: { index: 0, term: 0, arrivalMs: 0 },
      appliedIndex: 0,
      lastIndex: 0,
      lastTerm: 0,
      lastArrivalMs: 0,
    });
  });

  it('stores entries, hard state and applied index and recovers them', async () => {
    const { kv, writer } = await setup();
    const log = new ShardLog(kv, 7);
    const entries = await writeLog(log, writer, 5);
    expect(await log.recover()).toEqual({
      hardState: { term: 1, vote: 1, commit: 5 },
      trimPoint: { index: 0, term: 0, arrivalMs: 0 },
      appliedIndex: 5,
      lastIndex: 5,
      lastTerm: 1,
      lastArrivalMs: 5000,
    });
    const read = await collect(log, 1, 5);
    expect(read.map((e) => [e.index, e.term, e.type, e.arrivalMs])).toEqual(
      entries.map((e) => [e.index, e.term, e.type, e.arrivalMs]),
    );
    expect(read.map((e) => e.payload.toString('hex'))).toEqual(
      entries.map((e) => e.payload.toString('hex')),
    );
    expect((await log.entryAt(3)).arrivalMs).toBe(3000);
    expect(await collect(log, 4, 3)).toEqual([]);
  });

  it('reports a hole in the log as LogGapError, never as a shorter log', async () => {
    const { kv, writer } = await setup();
    const log = new ShardLog(kv, 1);
    await writeLog(log, writer, 6);
    await kv.write([{ type: 'del', key: logKey(1, 4) }], { sync: true });
    await expect(collect(log, 1, 6)).rejects.toBeInstanceOf(LogGapError);
    await expect(collect(log, 1, 6)).rejects.toThrow(
      /entry 4 is missing \(next entry found is 5\)/,
    );
    // A missing tail is a hole too.
    await expect(collect(log, 5, 9)).rejects.toThrow(/entry 7 is missing/);
    await expect(log.entryAt(4)).rejects.toBeInstanceOf(LogGapError);
    expect((await collect(log, 5, 6)).map((e) => e.index)).toEqual([5, 6]);
  });

  it('reports a corrupted or misplaced entry as StorageCorruptionError', async () => {
    const { kv, writer } = await setup();
    const log = new ShardLog(kv, 1);
    await writeLog(log, writer, 6);
    const stored = (await kv.get(logKey(1, 3))) as Buffer;
    const flipped = Buffer.from(stored);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 0x10;
    await kv.write([{ type: 'put', key: logKey(1, 3), value: flipped }], { sync: true });
    await expect(collect(log, 1, 6)).rejects.toBeInstanceOf(StorageCorruptionError);
    await expect(log.entryAt(3)).rejects.toThrow(/checksum mismatch/);

    // Entry 5's bytes copied under key 6: a valid entry, but for another index.
    await kv.write(
      [{ type: 'put', key: logKey(1, 6), value: (await kv.get(logKey(1, 5))) as Buffer }],
      {
        sync: true,
      },
    );
    await expect(log.entryAt(6)).rejects.toBeInstanceOf(StorageCorruptionError);
    // recover() reads the last entry, so it fails rather than recovering a shorter log.
    await expect(log.recover()).rejects.toBeInstanceOf(StorageCorruptionError);
  });

  it('rejects a malformed hard state or trim pointer', async () => {
    const { kv } = await setup();
    const log = new ShardLog(kv, 1);
    await kv.write([{ type: 'put', key: shardStateKey(1, STATE_HARD), value: Buffer.alloc(23) }], {
      sync: true,
    });
    await expect(log.recover()).rejects.toBeInstanceOf(StorageCorruptionError);
  });

  it('indexes only Records entries by arrival time and searches that index', async () => {
    const { kv, writer } = await setup();
    const log = new ShardLog(kv, 3);
    const entries = [
      emptyEntry(1, 1, 1000),
      recordsEntry(2, 1, 1000),
      recordsEntry(3, 1, 2000),
      recordsEntry(4, 1, 2000),
      emptyEntry(5, 2, 2500),
      recordsEntry(6, 2, 3000),
    ];
    const applyOps = log.applyOps(entries);
    // Four index keys (one per Records entry) and the applied pointer.
    expect(applyOps).toHaveLength(5);
    await writer.write([...log.appendOps(entries), ...applyOps]);

    expect(await log.firstIndexArrivedAtOrAfter(0, 6)).toBe(2);
    expect(await log.firstIndexArrivedAtOrAfter(1000, 6)).toBe(2);
    expect(await log.firstIndexArrivedAtOrAfter(1001, 6)).toBe(3);
    expect(await log.firstIndexArrivedAtOrAfter(2001, 6)).toBe(6);
    expect(await log.firstIndexArrivedAtOrAfter(2001, 5)).toBeUndefined();
    expect(await log.firstIndexArrivedAtOrAfter(3001, 6)).toBeUndefined();

    expect(await log.lastArrivedBefore(1000)).toBeUndefined();
    expect(await log.lastArrivedBefore(1001)).toEqual({ index: 2, arrivalMs: 1000 });
    expect(await log.lastArrivedBefore(2001)).toEqual({ index: 4, arrivalMs: 2000 });
    expect(await log.lastArrivedBefore(10_000)).toEqual({ index: 6, arrivalMs: 3000 });
  });

  it('removes trimmed entries and their index keys and keeps the rest', async () => {
    const { kv, writer } = await setup();
    const log = new ShardLog(kv, 4);
    await writeLog(log, writer, 8);
    const point = { index: 5, term: 1, arrivalMs: 5000 };
    await writer.write([log.trimPointOp(point)]);
    await log.removeTrimmed(point, 0);

    expect((await rawLog(kv, 4)).map((e) => e.index)).toEqual([6, 7, 8]);
    expect(await log.lastArrivedBefore(6000)).toBeUndefined();
    expect(await log.firstIndexArrivedAtOrAfter(0, 8)).toBe(6);
    const recovered = await log.recover();
    expect(recovered.trimPoint).toEqual(point);
    expect(recovered.lastIndex).toBe(8);
    expect((await collect(log, 6, 8)).map((e) => e.index)).toEqual([6, 7, 8]);
    await expect(collect(log, 5, 8)).rejects.toBeInstanceOf(LogGapError);
  });

  it('recovers a fully trimmed log at its trim point', async () => {
    const { kv, writer } = await setup();
    const log = new ShardLog(kv, 4);
    await writeLog(log, writer, 4);
    const point = { index: 4, term: 1, arrivalMs: 4000 };
    await writer.write([log.trimPointOp(point)]);
    await log.removeTrimmed(point, 0);
    expect(await shardKeys(kv, 4)).toHaveLength(3); // hard state, trim pointer, applied index
    expect(await log.recover()).toMatchObject({
      trimPoint: point,
      appliedIndex: 4,
      lastIndex: 4,
      lastTerm: 1,
      lastArrivalMs: 4000,
    });
  });

  it('keeps shards in one store apart, including adjacent shard numbers', async () => {
    const { kv, writer } = await setup();
    const shards = [255, 256, 257];
    const logs = shards.map((shard) => new ShardLog(kv, shard));
    // Interleaved writes of different lengths and terms in shared batches.
    await Promise.all(
      logs.map((log, i) => {
        const entries = Array.from({ length: 3 + i }, (_, j) =>
          recordsEntry(j + 1, i + 1, 100 * (j + 1), `s${shards[i]}e${j + 1}`),
        );
        return writer.write([
          ...log.appendOps(entries),
          log.hardStateOp({ term: i + 1, vote: 1, commit: entries.length }),
          ...log.applyOps(entries),
        ]);
      }),
    );
    for (const [i, log] of logs.entries()) {
      const recovered = await log.recover();
      expect(recovered).toMatchObject({ lastIndex: 3 + i, lastTerm: i + 1, appliedIndex: 3 + i });
      expect(recovered.hardState.term).toBe(i + 1);
      const raw = await rawLog(kv, log.shard);
      expect(raw.map((e) => e.records[0]?.data.toString())).toEqual(
        Array.from({ length: 3 + i }, (_, j) => `s${log.shard}e${j + 1}`),
      );
      expect(await log.firstIndexArrivedAtOrAfter(0, 100)).toBe(1);
      expect(await log.lastArrivedBefore(1_000_000)).toEqual({
        index: 3 + i,
        arrivalMs: 100 * (3 + i),
      });
    }
  });

  it('destroy() removes every key of the shard and nothing else', async () => {
    const { kv, writer } = await setup();
    const victim = new ShardLog(kv, 256);
    const below = new ShardLog(kv, 255);
    const above = new ShardLog(kv, 257);
    for (const log of [below, victim, above]) {
      await writeLog(log, writer, 5);
      await writer.write([log.trimPointOp({ index: 1, term: 1, arrivalMs: 1000 })]);
    }
    await writer.write([{ type: 'put', key: metadataKey('stream/x'), value: Buffer.from('{}') }]);
    const before = await kv.keys({});
    expect(await shardKeys(kv, 256)).toHaveLength(5 + 4 + 3);

    await victim.destroy();

    expect(await shardKeys(kv, 256)).toEqual([]);
    const after = await kv.keys({});
    expect(after.length).toBe(before.length - 12);
    for (const log of [below, above]) {
      expect(await shardKeys(kv, log.shard)).toHaveLength(12);
      expect((await collect(log, 1, 5)).map((e) => e.index)).toEqual([1, 2, 3, 4, 5]);
    }
    expect(await kv.get(metadataKey('stream/x'))).toBeDefined();
    expect(await victim.recover()).toMatchObject({ lastIndex: 0, appliedIndex: 0 });
  });
});
