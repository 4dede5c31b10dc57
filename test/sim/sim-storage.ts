import type {
  Entry,
  HardState,
  InitialState,
  LoadRequest,
  Snapshot,
} from '../../src/raft/types.js';
import { EMPTY_HARD_STATE, EntryType, entryBytes } from '../../src/raft/types.js';
import type { Random } from './random.js';

/**
 * A replica's disk in the simulator. Writes become visible at once (the page cache) but durable
 * only when synced; a crash keeps the durable state plus, at random, some prefix of the unsynced
 * writes (the operating system may have flushed them), and loses the rest. This is the crash that
 * `kill -9` cannot show: it is how a missing fsync turns into lost acknowledged data.
 *
 * This matches a broker's log store (src/storage/log-store.ts): a batch is one segment frame,
 * frames are appended in order, and after a power cut the store keeps every synced frame and of
 * the rest a prefix of whole frames (a torn frame, and everything after it, is cut off at open).
 * The store's own crash model, LevelDB index and torn bytes included, is tested on the disks of
 * test/storage/sim-disk.ts.
 */

interface Batch {
  readonly id: number;
  readonly snapshot: Snapshot | undefined;
  readonly entries: readonly Entry[];
  readonly hardState: HardState | undefined;
}

interface DiskState {
  /** The latest snapshot; entries up to its index are gone. */
  snapshot: Snapshot | undefined;
  /** entries[i] has log index base + i + 1. */
  entries: Entry[];
  hardState: HardState;
}

function baseOf(state: DiskState): number {
  return state.snapshot?.index ?? 0;
}

function applyBatch(state: DiskState, batch: Batch): void {
  if (batch.snapshot !== undefined) {
    // Installing a snapshot replaces the whole log.
    state.snapshot = batch.snapshot;
    state.entries = [];
  }
  const first = batch.entries[0];
  if (first !== undefined) {
    // Writing from index k replaces everything stored from k on.
    state.entries.length = Math.max(0, first.index - 1 - baseOf(state));
    for (const e of batch.entries) state.entries.push(e);
  }
  if (batch.hardState !== undefined) state.hardState = batch.hardState;
}

function compactState(state: DiskState, snapshot: Snapshot): void {
  const drop = snapshot.index - baseOf(state);
  if (drop <= 0) return;
  state.entries = state.entries.slice(drop);
  state.snapshot = snapshot;
}

function clone(state: DiskState): DiskState {
  return { snapshot: state.snapshot, entries: [...state.entries], hardState: state.hardState };
}

export class SimStorage {
  private durable: DiskState = { snapshot: undefined, entries: [], hardState: EMPTY_HARD_STATE };
  private view: DiskState = { snapshot: undefined, entries: [], hardState: EMPTY_HARD_STATE };
  private pending: Batch[] = [];
  private nextBatchId = 1;

  /** Writes a batch (visible now, durable after sync). Returns its id. */
  write(
    snapshot: Snapshot | undefined,
    entries: readonly Entry[],
    hardState: HardState | undefined,
  ): number {
    const batch: Batch = { id: this.nextBatchId++, snapshot, entries, hardState };
    applyBatch(this.view, batch);
    this.pending.push(batch);
    return batch.id;
  }

  /** fsync: every batch up to `id` is durable. */
  sync(id: number): void {
    while (this.pending.length > 0 && (this.pending[0] as Batch).id <= id) {
      applyBatch(this.durable, this.pending.shift() as Batch);
    }
  }

  /**
   * Log compaction after the state machine was saved as `snapshot` (written and synced, then the
   * entries it covers deleted). Covers only durable, applied entries.
   */
  compact(snapshot: Snapshot): void {
    compactState(this.durable, snapshot);
    compactState(this.view, snapshot);
  }

  /** Power loss: unsynced batches survive only as a random prefix. */
  crash(random: Random): { kept: number; lost: number } {
    const survive = random.int(0, this.pending.length);
    for (let i = 0; i < survive; i++) applyBatch(this.durable, this.pending[i] as Batch);
    const lost = this.pending.length - survive;
    this.pending = [];
    this.view = clone(this.durable);
    return { kept: survive, lost };
  }

  /** What a read sees now (written data, synced or not). */
  read(request: LoadRequest): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    const base = baseOf(this.view);
    for (let i = Math.max(request.from, base + 1); i <= Math.min(request.to, this.lastIndex); i++) {
      const entry = this.view.entries[i - base - 1] as Entry;
      bytes += entryBytes(entry);
      if (out.length > 0 && bytes > request.maxBytes) break;
      out.push(entry);
    }
    // A read below the compacted prefix returns nothing for it (the replica then sends a snapshot).
    return out.length > 0 && (out[0] as Entry).index === request.from ? out : [];
  }

  termAt(index: number): number {
    const base = baseOf(this.view);
    if (index === base) return this.view.snapshot?.term ?? 0;
    if (index < base) return -1;
    return this.view.entries[index - base - 1]?.term ?? -1;
  }

  get lastIndex(): number {
    return baseOf(this.view) + this.view.entries.length;
  }

  get snapshot(): Snapshot | undefined {
    return this.view.snapshot;
  }

  /** What a replica starting now would read back: the durable state, with a tail of `tailEntries`. */
  initialState(tailEntries: number): InitialState {
    const { entries, snapshot } = this.view;
    const termStarts: { index: number; term: number }[] = [];
    for (const e of entries) {
      const last = termStarts[termStarts.length - 1];
      if (last === undefined || last.term !== e.term)
        termStarts.push({ index: e.index, term: e.term });
    }
    return {
      hardState: this.view.hardState,
      firstIndexMinusOne: baseOf(this.view),
      termAtFirstIndexMinusOne: snapshot?.term ?? 0,
      ...(snapshot === undefined ? {} : { snapshot, confState: snapshot.confState }),
      lastIndex: this.lastIndex,
      termStarts,
      tail: entries.slice(Math.max(0, entries.length - tailEntries)),
      intact: true,
      confEntries: entries.filter((e) => e.type === EntryType.ConfChange),
    };
  }
}
