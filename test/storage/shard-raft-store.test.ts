import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { RawNode } from '../../src/raft/raw-node.js';
import {
  EntryType,
  encodeConfChange,
  type Entry,
  type HardState,
  type Snapshot,
} from '../../src/raft/types.js';
import { logKey } from '../../src/storage/keys.js';
import type { KvStore } from '../../src/storage/kv-store.js';
import { encodeRecordsCommand } from '../../src/storage/raft-entry.js';
import {
  claimGroupStorage,
  encodeShardSnapshotData,
  ShardRaftStore,
} from '../../src/storage/shard-raft-store.js';
import { replicaIdOf } from '../../src/common/replica-id.js';
import { Cleanup, openStore, tempFolder } from './kv-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const SHARD = 7;
const VOTERS = [1, 2, 3];

function records(index: number, term: number, arrivalMs = 1000 + index): Entry {
  return {
    index,
    term,
    type: EntryType.Normal,
    data: encodeRecordsCommand(arrivalMs, [
      { partitionKey: `k${index}`, data: Buffer.from(`v${index}@${term}`) },
    ]),
  };
}

function empty(index: number, term: number): Entry {
  return { index, term, type: EntryType.Empty, data: new Uint8Array() };
}

function confChange(index: number, term: number): Entry {
  return {
    index,
    term,
    type: EntryType.ConfChange,
    data: encodeConfChange({ type: 'addLearner', node: 4 }),
  };
}

function snapshotAt(index: number, term: number, arrivalMs = 500): Snapshot {
  return {
    index,
    term,
    confState: { voters: [1, 2, 3], learners: [4], removed: [] },
    data: encodeShardSnapshotData({ arrivalMs }),
  };
}

async function setup(): Promise<{ dir: string; kv: KvStore; store: ShardRaftStore }> {
  const dir = await tempFolder(cleanup);
  const kv = await openStore(cleanup, dir);
  const store = new ShardRaftStore(kv, SHARD, VOTERS);
  await store.recover(1 << 20);
  return { dir, kv, store };
}

async function persist(
  kv: KvStore,
  store: ShardRaftStore,
  ready: { snapshot?: Snapshot; entries?: Entry[]; hardState?: HardState },
): Promise<void> {
  await kv.write(store.persistOps({ entries: [], ...ready }), { sync: true });
  await store.afterPersist();
}

async function reopen(kv: KvStore): Promise<ShardRaftStore> {
  return new ShardRaftStore(kv, SHARD, VOTERS);
}

const ids = (entries: readonly Entry[]) => entries.map((e) => `${e.index}@${e.term}`);

describe('shard raft storage', () => {
  it('restarts with the hard state, where each term starts, the tail and the membership changes', async () => {
    const { kv, store } = await setup();
    await persist(kv, store, {
      entries: [
        empty(1, 1),
        records(2, 1),
        records(3, 1),
        empty(4, 2),
        confChange(5, 2),
        records(6, 2),
      ],
      hardState: { term: 2, vote: 1, commit: 5 },
    });
    const again = await reopen(kv);
    const { initial, lastArrivalMs } = await again.recover(1 << 20);
    expect(initial.hardState).toEqual({ term: 2, vote: 1, commit: 5 });
    expect(initial.lastIndex).toBe(6);
    expect(initial.termStarts).toEqual([
      { index: 1, term: 1 },
      { index: 4, term: 2 },
    ]);
    expect(ids(initial.tail)).toEqual(['1@1', '2@1', '3@1', '4@2', '5@2', '6@2']);
    expect(ids(initial.confEntries ?? [])).toEqual(['5@2']);
    expect(initial.intact).toBe(true);
    expect(lastArrivalMs).toBe(1006);
    // Raft starts from it and knows every term.
    const node = new RawNode({ id: 1, voters: VOTERS, random: () => 0.5 }, initial);
    expect([1, 2, 3, 4, 5, 6].map((i) => node.internals.log.term(i))).toEqual([1, 1, 1, 2, 2, 2]);
    expect(node.internals.confState.learners).toEqual([4]);
  });

  it('entries from index k replace the stored log from k on, a longer suffix included', async () => {
    const { kv, store } = await setup();
    await persist(kv, store, { entries: [1, 2, 3, 4, 5, 6, 7, 8].map((i) => records(i, 1)) });
    await persist(kv, store, { entries: [empty(4, 3), records(5, 3)] });
    expect(store.lastIndex).toBe(5);
    const { initial } = await (await reopen(kv)).recover(1 << 20);
    expect(ids(initial.tail)).toEqual(['1@1', '2@1', '3@1', '4@3', '5@3']);
    expect(initial.termStarts).toEqual([
      { index: 1, term: 1 },
      { index: 4, term: 3 },
    ]);
    expect(await kv.get(logKey(SHARD, 6))).toBeUndefined();
  });

  it('a snapshot from the leader replaces the whole log; entries follow it', async () => {
    const { kv, store } = await setup();
    await persist(kv, store, { entries: [1, 2, 3, 4, 5].map((i) => records(i, 1)) });
    await persist(kv, store, {
      snapshot: snapshotAt(20, 3),
      entries: [records(21, 3), records(22, 4)],
      hardState: { term: 4, vote: 0, commit: 21 },
    });
    const { initial, appliedIndex, trimPoint } = await (await reopen(kv)).recover(1 << 20);
    expect(initial.firstIndexMinusOne).toBe(20);
    expect(initial.termAtFirstIndexMinusOne).toBe(3);
    expect(initial.snapshot?.confState.learners).toEqual([4]);
    expect(initial.confState?.voters).toEqual(VOTERS);
    expect(ids(initial.tail)).toEqual(['21@3', '22@4']);
    expect(initial.termStarts).toEqual([
      { index: 21, term: 3 },
      { index: 22, term: 4 },
    ]);
    expect(appliedIndex).toBe(20);
    expect(trimPoint).toEqual({ index: 20, term: 3, arrivalMs: 500 });
    for (const i of [1, 5]) expect(await kv.get(logKey(SHARD, i))).toBeUndefined();
  });

  it('a crash after the snapshot batch, before the old entries were deleted, is finished on restart', async () => {
    const { kv, store } = await setup();
    await persist(kv, store, { entries: [1, 2, 3, 4, 5].map((i) => records(i, 1)) });
    // The batch is durable but afterPersist() never ran.
    await kv.write(store.persistOps({ snapshot: snapshotAt(3, 1), entries: [] }), { sync: true });
    expect(await kv.get(logKey(SHARD, 2))).toBeDefined();
    const { initial } = await (await reopen(kv)).recover(1 << 20);
    expect(initial.firstIndexMinusOne).toBe(3);
    expect(initial.lastIndex).toBe(3);
    expect(initial.tail).toEqual([]);
    expect(await kv.get(logKey(SHARD, 2))).toBeUndefined();
  });

  it('retention compacts the prefix; the first kept entry continues the trimmed term', async () => {
    const { kv, store } = await setup();
    await persist(kv, store, {
      entries: [
        empty(1, 1),
        records(2, 1),
        records(3, 1),
        records(4, 1),
        empty(5, 2),
        records(6, 2),
      ],
    });
    const snapshot = {
      ...snapshotAt(3, 1, 1003),
      confState: { voters: VOTERS, learners: [], removed: [] },
    };
    await kv.write(store.compactOps(snapshot), { sync: true });
    await store.afterPersist();
    const again = await reopen(kv);
    const { initial } = await again.recover(1 << 20);
    expect(initial.firstIndexMinusOne).toBe(3);
    expect(initial.termStarts).toEqual([
      { index: 4, term: 1 },
      { index: 5, term: 2 },
    ]);
    expect(ids(initial.tail)).toEqual(['4@1', '5@2', '6@2']);
    expect(again.termAt(3)).toBe(1);
    expect(again.termAt(6)).toBe(2);
  });

  it('loads contiguous entries within the byte budget, and nothing that was trimmed', async () => {
    const { kv, store } = await setup();
    await persist(kv, store, { entries: [1, 2, 3, 4, 5, 6].map((i) => records(i, 1)) });
    const all = await store.load({ from: 2, to: 5, maxBytes: 1 << 20 });
    expect(ids(all)).toEqual(['2@1', '3@1', '4@1', '5@1']);
    expect(Buffer.from(all[0]?.data ?? []).equals(Buffer.from(records(2, 1).data))).toBe(true);
    const one = await store.load({ from: 2, to: 5, maxBytes: 1 });
    expect(ids(one)).toEqual(['2@1']);
    await kv.write(store.compactOps(snapshotAt(3, 1)), { sync: true });
    await store.afterPersist();
    expect(await store.load({ from: 2, to: 5, maxBytes: 1 << 20 })).toEqual([]);
  });

  it('a corrupt entry makes the replica start as not intact (it must not vote or lead)', async () => {
    const { kv, store } = await setup();
    await persist(kv, store, { entries: [1, 2, 3].map((i) => records(i, 1)) });
    const raw = (await kv.get(logKey(SHARD, 3))) as Buffer;
    const bad = Buffer.from(raw);
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
    await kv.write([{ type: 'put', key: logKey(SHARD, 3), value: bad }], { sync: true });
    const { initial } = await (await reopen(kv)).recover(1 << 20);
    expect(initial.intact).toBe(false);
  });

  it('restarts to the same log as a model after any sequence of appends, overwrites, snapshots and trims', async () => {
    const { kv } = await setup();
    let shard = 100;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({
              kind: fc.constant('append' as const),
              back: fc.nat(6),
              count: fc.integer({ min: 1, max: 5 }),
              bump: fc.boolean(),
            }),
            fc.record({
              kind: fc.constant('snapshot' as const),
              ahead: fc.integer({ min: 1, max: 8 }),
            }),
            fc.record({ kind: fc.constant('trim' as const), back: fc.nat(6) }),
          ),
          { maxLength: 25 },
        ),
        async (ops) => {
          shard++;
          const store = new ShardRaftStore(kv, shard, VOTERS);
          await store.recover(1 << 20);
          // The model: index -> entry, and where the log starts.
          const model = new Map<number, Entry>();
          let trim = { index: 0, term: 0 };
          let last = 0;
          let term = 1;
          const termOf = (i: number) =>
            i === trim.index ? trim.term : (model.get(i) as Entry).term;
          for (const op of ops) {
            if (op.kind === 'append') {
              const first = Math.max(trim.index + 1, last + 1 - op.back);
              if (op.bump) term++;
              const entries = Array.from({ length: op.count }, (_, k) =>
                records(first + k, Math.max(term, termOf(first - 1))),
              );
              for (let i = first; i <= last; i++) model.delete(i);
              for (const e of entries) model.set(e.index, e);
              last = first + op.count - 1;
              term = Math.max(term, (entries[entries.length - 1] as Entry).term);
              await kv.write(
                store.persistOps({ entries, hardState: { term, vote: 0, commit: 0 } }),
                {
                  sync: true,
                },
              );
            } else if (op.kind === 'snapshot') {
              const index = last + op.ahead;
              term++;
              model.clear();
              trim = { index, term };
              last = index;
              await kv.write(
                store.persistOps({
                  snapshot: snapshotAt(index, term),
                  entries: [],
                  hardState: { term, vote: 0, commit: index },
                }),
                { sync: true },
              );
            } else {
              const index = last - op.back;
              if (index <= trim.index) continue;
              const t = termOf(index);
              for (let i = trim.index + 1; i <= index; i++) model.delete(i);
              trim = { index, term: t };
              await kv.write(store.compactOps(snapshotAt(index, t)), { sync: true });
            }
            await store.afterPersist();
          }
          const again = new ShardRaftStore(kv, shard, VOTERS);
          const { initial } = await again.recover(1 << 20);
          expect(initial.firstIndexMinusOne).toBe(trim.index);
          expect(initial.termAtFirstIndexMinusOne).toBe(trim.term);
          expect(initial.lastIndex).toBe(last);
          expect(ids(initial.tail)).toEqual(
            ids([...model.values()].sort((a, b) => a.index - b.index)),
          );
          for (let i = trim.index; i <= last; i++) expect(again.termAt(i)).toBe(termOf(i));
          const node = new RawNode({ id: 1, voters: VOTERS, random: () => 0.5 }, initial);
          for (let i = trim.index; i <= last; i++)
            expect(node.internals.log.term(i)).toBe(termOf(i));
        },
      ),
      { numRuns: 150 },
    );
  });

  describe('claimGroupStorage', () => {
    it("keeps the owner's storage, and deletes what an earlier member of the group left before a new one opens", async () => {
      const { kv, store } = await setup();
      await persist(kv, store, {
        entries: [records(1, 1), records(2, 1)],
        hardState: { term: 1, vote: 1, commit: 2 },
      });
      // Storage from before owners were recorded is the broker's own (generation 0): kept.
      const first = await claimGroupStorage(kv, SHARD, 1, 1);
      expect(first).toHaveLength(1);
      await kv.write(first, { sync: true });
      expect(await claimGroupStorage(kv, SHARD, 1, 1)).toEqual([]);
      expect((await (await reopen(kv)).recover(1 << 20)).initial.lastIndex).toBe(2);
      // The broker left the group and joins again as generation 1: nothing of the old member stays.
      const rejoin = replicaIdOf(1, 1);
      const claim = await claimGroupStorage(kv, SHARD, rejoin, 1);
      await kv.write(claim, { sync: true });
      const fresh = await (await reopen(kv)).recover(1 << 20);
      expect(fresh.initial.lastIndex).toBe(0);
      expect(fresh.initial.hardState).toEqual({ term: 0, vote: 0, commit: 0 });
      expect(await claimGroupStorage(kv, SHARD, rejoin, 1)).toEqual([]);
    });
  });
});
