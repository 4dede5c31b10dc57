import { afterEach, describe, expect, it } from 'vitest';
import { EntryType, type Entry } from '../../src/raft/types.js';
import {
  markerKey,
  metadataKey,
  shardSpaceEnd,
  shardSpaceStart,
  shardStateKey,
  SPACE_ARRIVAL,
  SPACE_LOG,
  SPACE_MARKER,
  SPACE_SHARD_STATE,
  STATE_HARD,
} from '../../src/storage/keys.js';
import type { KvStore } from '../../src/storage/kv-store.js';
import { encodeRecordsCommand } from '../../src/storage/raft-entry.js';
import { ShardLog, storedGroups } from '../../src/storage/shard-log.js';
import { ShardRaftStore } from '../../src/storage/shard-raft-store.js';
import { Cleanup, openStore, tempFolder } from './kv-helpers.js';

/** storedGroups: the Raft groups a broker's LevelDB holds state for (src/storage/shard-log.ts). */

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function store(): Promise<KvStore> {
  return openStore(cleanup, await tempFolder(cleanup));
}

function records(index: number, term: number): Entry {
  return {
    index,
    term,
    type: EntryType.Normal,
    data: encodeRecordsCommand(1_000 + index, [
      { partitionKey: `k${index}`, data: Buffer.from(`v${index}`) },
    ]),
  };
}

/** A group as a replica leaves it: log entries, a term marker, hard state, applied pointer. */
async function writeGroup(kv: KvStore, group: number): Promise<void> {
  const raft = new ShardRaftStore(kv, group, [1, 2, 3]);
  await raft.recover(1 << 20);
  const entries = [records(1, 1), records(2, 1), records(3, 2)];
  await kv.write(
    [
      ...raft.persistOps({ entries, hardState: { term: 2, vote: 1, commit: 3 } }),
      ...raft.applyOps(entries),
    ],
    { sync: false },
  );
}

function keysIn(kv: KvStore, space: number, group: number): Promise<Buffer[]> {
  return kv.keys({ gte: shardSpaceStart(space, group), lt: shardSpaceEnd(space, group) });
}

/** What a destroy interrupted after deleting the log, arrival and state keys leaves: markers. */
async function clearAllButMarkers(kv: KvStore, group: number): Promise<void> {
  for (const space of [SPACE_LOG, SPACE_ARRIVAL, SPACE_SHARD_STATE]) {
    await kv.clear({ gte: shardSpaceStart(space, group), lt: shardSpaceEnd(space, group) });
  }
  expect(await keysIn(kv, SPACE_SHARD_STATE, group)).toEqual([]);
  expect((await keysIn(kv, SPACE_MARKER, group)).length).toBeGreaterThan(0);
}

describe('storedGroups', () => {
  it('is empty for an empty store', async () => {
    expect(await storedGroups(await store())).toEqual([]);
  });

  it('lists each group once, in numeric order, whatever order they were written in', async () => {
    const kv = await store();
    for (const group of [300, 7, 256, 8, 1, 0]) await writeGroup(kv, group);
    expect(await storedGroups(kv)).toEqual([0, 1, 7, 8, 256, 300]);
  });

  it('ignores metadata records, which are in no group', async () => {
    const kv = await store();
    await kv.write([{ type: 'put', key: metadataKey('stream/a'), value: Buffer.from('{}') }], {
      sync: false,
    });
    expect(await storedGroups(kv)).toEqual([]);
    await writeGroup(kv, 5);
    expect(await storedGroups(kv)).toEqual([5]);
  });

  it('lists a group that has only marker keys left, and one that has only state', async () => {
    const kv = await store();
    await writeGroup(kv, 3);
    await writeGroup(kv, 4);
    await clearAllButMarkers(kv, 3);
    await kv.write(
      [
        { type: 'put', key: markerKey(9, 12), value: Buffer.alloc(9) },
        { type: 'put', key: shardStateKey(2, STATE_HARD), value: Buffer.alloc(24) },
      ],
      { sync: false },
    );
    expect(await storedGroups(kv)).toEqual([2, 3, 4, 9]);
  });

  it('lists a group with keys in both spaces once', async () => {
    const kv = await store();
    await kv.write(
      [
        { type: 'put', key: markerKey(6, 1), value: Buffer.alloc(9) },
        { type: 'put', key: markerKey(6, 2), value: Buffer.alloc(9) },
        { type: 'put', key: shardStateKey(6, STATE_HARD), value: Buffer.alloc(24) },
      ],
      { sync: false },
    );
    expect(await storedGroups(kv)).toEqual([6]);
  });

  it('reads group numbers beyond 32 bits', async () => {
    const kv = await store();
    const big = 2 ** 40 + 5;
    await writeGroup(kv, big);
    await writeGroup(kv, 2 ** 32);
    expect(await storedGroups(kv)).toEqual([2 ** 32, big]);
  });

  it('no longer lists a group once ShardLog.destroy() has removed it', async () => {
    const kv = await store();
    for (const group of [1, 2, 3]) await writeGroup(kv, group);
    await new ShardLog(kv, 2).destroy();
    for (const space of [SPACE_LOG, SPACE_ARRIVAL, SPACE_SHARD_STATE, SPACE_MARKER]) {
      expect(await keysIn(kv, space, 2)).toEqual([]);
    }
    expect(await storedGroups(kv)).toEqual([1, 3]);
    // A group that had only markers left (an interrupted destroy) is finished off too.
    await clearAllButMarkers(kv, 3);
    expect(await storedGroups(kv)).toEqual([1, 3]);
    await new ShardLog(kv, 3).destroy();
    expect(await storedGroups(kv)).toEqual([1]);
    await new ShardLog(kv, 1).destroy();
    expect(await storedGroups(kv)).toEqual([]);
  });
});
