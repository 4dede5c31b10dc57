import { afterEach, describe, expect, it } from 'vitest';
import { readRecords } from '../../src/broker/shard-reads.js';
import { EntryType, type LogEntry } from '../../src/storage/entry-codec.js';
import { GroupCommitWriter } from '../../src/storage/group-commit.js';
import {
  encodeSealCommand,
  fromLogEntry,
  isSealEntry,
  sealChildren,
  toLogEntry,
} from '../../src/storage/raft-entry.js';
import { encodeRecordBatch } from '../../src/storage/record-batch.js';
import { ShardLog } from '../../src/storage/shard-log.js';
import { EntryType as RaftEntryType } from '../../src/raft/types.js';
import { Cleanup, openStore, tempFolder } from './kv-helpers.js';

/**
 * The SEAL entry of a split or merge in storage: its framing inside a Raft entry, the seal it
 * leaves in the shard's state (kept across a restart), records committed after it refused at
 * apply (never indexed, never read), and reads that end at it.
 */

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const CHILDREN = ['shardId-000000000001', 'shardId-000000000002'];

function records(index: number, text: string): LogEntry {
  return {
    index,
    term: 1,
    type: EntryType.Records,
    arrivalMs: 1_000 * index,
    payload: encodeRecordBatch([{ partitionKey: 'pk', data: Buffer.from(text) }]),
  };
}

function seal(index: number): LogEntry {
  return {
    index,
    term: 1,
    type: EntryType.Seal,
    arrivalMs: 1_000 * index,
    payload: Buffer.from(JSON.stringify(CHILDREN)),
  };
}

async function openLog() {
  const dir = await tempFolder(cleanup);
  const kv = await openStore(cleanup, dir);
  const writer = new GroupCommitWriter(kv, {
    onFatal: (error) => {
      throw error;
    },
  });
  return { kv, writer, log: new ShardLog(kv, 7) };
}

describe('the SEAL entry', () => {
  it('travels inside a Raft Normal entry and comes back the same', () => {
    const data = encodeSealCommand(42_000, CHILDREN);
    const raft = { index: 9, term: 3, type: RaftEntryType.Normal, data };
    expect(isSealEntry(raft)).toBe(true);
    const stored = toLogEntry(raft);
    expect(stored).toMatchObject({ index: 9, term: 3, type: EntryType.Seal, arrivalMs: 42_000 });
    expect(sealChildren(9, stored.payload)).toEqual(CHILDREN);
    expect(fromLogEntry(stored)).toEqual({ ...raft, data: Buffer.from(data) });
    // A records batch is never mistaken for one.
    const batch = { index: 9, term: 3, type: RaftEntryType.Normal, data: Buffer.alloc(12) };
    expect(isSealEntry(batch)).toBe(false);
  });

  it('refuses records committed after it, ends reads there, and is kept across a restart', async () => {
    const { kv, writer, log } = await openLog();
    const entries = [records(1, 'a'), records(2, 'b'), seal(3), records(4, 'late')];
    await writer.write(log.appendOps(entries));
    await writer.write(log.applyOps(entries));
    expect(log.seal).toEqual({ index: 3, children: CHILDREN });
    // The refused record has no arrival-time key: retention and AT_TIMESTAMP never see it.
    expect(await log.lastArrivedBefore(Number.MAX_SAFE_INTEGER)).toMatchObject({ index: 2 });
    const readable = {
      log,
      trimHorizon: () => ({ index: 1, offset: 0 }),
      readableIndex: () => 4,
      tipArrivalMs: () => 2_000,
    };
    const all = await readRecords(
      readable,
      { index: 1, offset: 0 },
      { maxRecords: 100, maxBytes: 1 << 20 },
    );
    expect(all.records.map((r) => r.data.toString())).toEqual(['a', 'b']);
    expect(all.endOfShard).toBe(true);
    expect(all.next).toEqual({ index: 4, offset: 0 });
    // Reading from past the seal (LATEST on a sealed shard) ends at once.
    const after = await readRecords(
      readable,
      { index: 5, offset: 0 },
      { maxRecords: 100, maxBytes: 1 << 20 },
    );
    expect(after).toMatchObject({ records: [], endOfShard: true });
    // Not yet applied up to the seal: not the end.
    const early = await readRecords(
      { ...readable, readableIndex: () => 2 },
      { index: 1, offset: 0 },
      { maxRecords: 100, maxBytes: 1 << 20 },
    );
    expect(early.endOfShard).toBe(false);
    // A second SEAL (a retried seal after a leader change) does not move the first.
    await writer.write(log.applyOps([seal(5)]));
    expect(log.seal?.index).toBe(3);
    const reopened = new ShardLog(kv, 7);
    const state = await reopened.recoverState();
    expect(state.seal).toEqual({ index: 3, children: CHILDREN });
    expect(reopened.seal).toEqual({ index: 3, children: CHILDREN });
  });

  it('a shard never sealed has no seal after a restart', async () => {
    const { kv, writer, log } = await openLog();
    await writer.write(log.appendOps([records(1, 'a')]));
    await writer.write(log.applyOps([records(1, 'a')]));
    expect((await new ShardLog(kv, 7).recoverState()).seal).toBeUndefined();
  });
});
