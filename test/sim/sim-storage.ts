import type { Entry, HardState, InitialState, LoadRequest } from '../../src/raft/types.js';
import { EMPTY_HARD_STATE, EntryType, entryBytes } from '../../src/raft/types.js';
import type { Random } from './random.js';

/**
 * A replica's disk in the simulator. Writes become visible at once (the page cache) but durable
 * only when synced; a crash keeps the durable state plus, at random, some prefix of the unsynced
 * writes (the operating system may have flushed them), and loses the rest. This is the crash that
 * `kill -9` cannot show: it is how a missing fsync turns into lost acknowledged data.
 */

interface Batch {
  readonly id: number;
  readonly entries: readonly Entry[];
  readonly hardState: HardState | undefined;
}

interface DiskState {
  /** entries[i] has log index i + 1 (no compaction in this part of the library). */
  entries: Entry[];
  hardState: HardState;
}

function applyBatch(state: DiskState, batch: Batch): void {
  const first = batch.entries[0];
  if (first !== undefined) {
    // Writing from index k replaces everything stored from k on.
    state.entries.length = first.index - 1;
    for (const e of batch.entries) state.entries.push(e);
  }
  if (batch.hardState !== undefined) state.hardState = batch.hardState;
}

export class SimStorage {
  private durable: DiskState = { entries: [], hardState: EMPTY_HARD_STATE };
  private view: DiskState = { entries: [], hardState: EMPTY_HARD_STATE };
  private pending: Batch[] = [];
  private nextBatchId = 1;

  /** Writes a batch (visible now, durable after sync). Returns its id. */
  write(entries: readonly Entry[], hardState: HardState | undefined): number {
    const batch: Batch = { id: this.nextBatchId++, entries, hardState };
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

  /** Power loss: unsynced batches survive only as a random prefix. */
  crash(random: Random): { kept: number; lost: number } {
    const survive = random.int(0, this.pending.length);
    for (let i = 0; i < survive; i++) applyBatch(this.durable, this.pending[i] as Batch);
    const lost = this.pending.length - survive;
    this.pending = [];
    this.view = { entries: [...this.durable.entries], hardState: this.durable.hardState };
    return { kept: survive, lost };
  }

  /** What a read sees now (written data, synced or not). */
  read(request: LoadRequest): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = request.from; i <= Math.min(request.to, this.view.entries.length); i++) {
      const entry = this.view.entries[i - 1] as Entry;
      bytes += entryBytes(entry);
      if (out.length > 0 && bytes > request.maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  termAt(index: number): number {
    return index === 0 ? 0 : (this.view.entries[index - 1]?.term ?? -1);
  }

  get lastIndex(): number {
    return this.view.entries.length;
  }

  /** What a replica starting now would read back: the durable state, with a tail of `tailEntries`. */
  initialState(tailEntries: number): InitialState {
    const entries = this.view.entries;
    const termStarts: { index: number; term: number }[] = [];
    for (const e of entries) {
      const last = termStarts[termStarts.length - 1];
      if (last === undefined || last.term !== e.term)
        termStarts.push({ index: e.index, term: e.term });
    }
    return {
      hardState: this.view.hardState,
      firstIndexMinusOne: 0,
      termAtFirstIndexMinusOne: 0,
      lastIndex: entries.length,
      termStarts,
      tail: entries.slice(Math.max(0, entries.length - tailEntries)),
      intact: true,
      confEntries: entries.filter((e) => e.type === EntryType.ConfChange),
    };
  }
}
