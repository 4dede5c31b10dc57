import { invariant } from './errors.js';
import { TermIndex } from './term-index.js';
import { entryBytes, type Entry, type InitialState } from './types.js';

/**
 * A replica's view of its log. Terms of every index are known (TermIndex); entry contents are kept
 * for a bounded suffix (the tail). Entries older than the tail live only in storage and are read
 * through load requests. `stable` is how far the log is durably written; everything after it is
 * waiting to be persisted through the next Ready.
 */
export class RaftLog {
  readonly terms: TermIndex;
  /** Entries [tailFrom, lastIndex], in order. */
  private tail: Entry[];
  private tailFrom: number;
  private tailBytes = 0;
  /** The last durably written index. */
  stable: number;
  /** The first index that changed since the last Ready (to persist); > lastIndex if none. */
  private unpersistedFrom: number;
  committed: number;
  applied: number;

  constructor(initial: InitialState, applied: number) {
    this.terms = new TermIndex(
      initial.firstIndexMinusOne,
      initial.termAtFirstIndexMinusOne,
      initial.lastIndex,
      initial.termStarts,
    );
    this.tail = [...initial.tail];
    this.tailFrom = initial.tail[0]?.index ?? initial.lastIndex + 1;
    for (const [i, entry] of this.tail.entries()) {
      invariant(entry.index === this.tailFrom + i, 'the tail is contiguous');
      invariant(this.terms.term(entry.index) === entry.term, 'the tail agrees with the term index');
      this.tailBytes += entryBytes(entry);
    }
    invariant(this.tailFrom + this.tail.length - 1 === initial.lastIndex, 'the tail ends the log');
    this.stable = initial.lastIndex;
    this.unpersistedFrom = initial.lastIndex + 1;
    // A snapshot's index is committed even if the hard state was written before it.
    this.committed = Math.max(initial.hardState.commit, initial.firstIndexMinusOne);
    invariant(this.committed <= initial.lastIndex, 'commit index beyond the log');
    this.applied = Math.max(applied, initial.firstIndexMinusOne);
    invariant(this.applied <= this.committed, 'applied beyond commit');
  }

  get lastIndex(): number {
    return this.terms.lastIndex;
  }

  get lastTerm(): number {
    return this.terms.lastTerm;
  }

  get firstIndex(): number {
    return this.terms.firstIndex;
  }

  /** The first index whose entry is in memory. */
  get cachedFrom(): number {
    return this.tailFrom;
  }

  term(index: number): number | undefined {
    return this.terms.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return this.terms.term(index) === term;
  }

  /** Raft's up-to-date rule (§5.4.1): a later last term wins; equal terms compare length. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.lastTerm || (lastTerm === this.lastTerm && lastIndex >= this.lastIndex);
  }

  /** Appends entries after the last one (a leader's own proposals). */
  append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      invariant(entry.index === this.lastIndex + 1, 'append is contiguous');
      this.terms.append(entry.term, entry.index);
      this.tail.push(entry);
      this.tailBytes += entryBytes(entry);
    }
    if (entries.length > 0)
      this.unpersistedFrom = Math.min(this.unpersistedFrom, (entries[0] as Entry).index);
  }

  /**
   * Stores a leader's entries that follow `prevIndex` (whose term already matched), keeping what
   * agrees and replacing the log from the first conflict on (§5.3). Returns the new last index of
   * the leader's entries.
   */
  appendFromLeader(prevIndex: number, entries: readonly Entry[]): number {
    let k = 0;
    while (k < entries.length) {
      const entry = entries[k] as Entry;
      const existing = this.terms.term(entry.index);
      if (existing === undefined || existing !== entry.term) break;
      k++;
    }
    if (k < entries.length) {
      const first = entries[k] as Entry;
      invariant(first.index > this.committed, `a leader rewrote committed entry ${first.index}`);
      if (first.index <= this.lastIndex) this.truncateAfter(first.index - 1);
      this.append(entries.slice(k));
    }
    return prevIndex + entries.length;
  }

  private truncateAfter(index: number): void {
    this.terms.truncateAfter(index);
    if (index < this.tailFrom) {
      this.tail = [];
      this.tailBytes = 0;
      this.tailFrom = index + 1;
    } else {
      const removed = this.tail.splice(index - this.tailFrom + 1);
      for (const entry of removed) this.tailBytes -= entryBytes(entry);
    }
    // Entries after `index` that were durable are gone from the log: the next Ready rewrites
    // from here, and the host deletes whatever it stored beyond the entries it writes.
    this.stable = Math.min(this.stable, index);
    this.unpersistedFrom = Math.min(this.unpersistedFrom, index + 1);
  }

  /** Entries [from, ...] from memory, at most `maxBytes` (but at least one); undefined if not cached. */
  cachedEntries(from: number, to: number, maxBytes: number): Entry[] | undefined {
    if (from < this.tailFrom) return undefined;
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = from; i <= Math.min(to, this.lastIndex); i++) {
      const entry = this.tail[i - this.tailFrom] as Entry;
      bytes += entryBytes(entry);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  get hasUnpersisted(): boolean {
    return this.unpersistedFrom <= this.lastIndex;
  }

  /** Entries the host has not yet persisted, and the index they start at (first to (re)write). */
  unpersisted(): Entry[] {
    if (this.unpersistedFrom > this.lastIndex) return [];
    return this.tail.slice(this.unpersistedFrom - this.tailFrom);
  }

  /**
   * The host durably wrote `written` (the entries of a Ready). Entries a leader has replaced since
   * that Ready was taken do not count; the rest do.
   */
  persisted(written: readonly Entry[]): void {
    for (let i = written.length - 1; i >= 0; i--) {
      const entry = written[i] as Entry;
      if (this.terms.term(entry.index) === entry.term) {
        if (entry.index > this.stable) this.stable = entry.index;
        break;
      }
    }
    this.unpersistedFrom = Math.max(this.unpersistedFrom, this.stable + 1);
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    invariant(index <= this.lastIndex, `commit ${index} beyond last index ${this.lastIndex}`);
    this.committed = index;
    return true;
  }

  /** Committed entries are applied only once durable here too. */
  get applicableTo(): number {
    return Math.min(this.committed, this.stable);
  }

  appliedTo(index: number): void {
    invariant(
      index <= this.applicableTo && index >= this.applied,
      'applied moves forward within commit',
    );
    this.applied = index;
  }

  /** Forgets entries up to `index`, which a snapshot of the applied state now covers. */
  compactTo(index: number): void {
    invariant(
      index <= this.applied && index <= this.stable,
      'compact only what is applied and durable',
    );
    if (index < this.firstIndex) return;
    this.terms.compactTo(index);
    if (index >= this.tailFrom) {
      const drop = index - this.tailFrom + 1;
      for (const entry of this.tail.splice(0, drop)) this.tailBytes -= entryBytes(entry);
      this.tailFrom = index + 1;
    }
  }

  /** Replaces the log by a snapshot: nothing before it, nothing after it yet. */
  restore(index: number, term: number): void {
    this.terms.reset(index, term);
    this.tail = [];
    this.tailBytes = 0;
    this.tailFrom = index + 1;
    this.stable = index;
    this.unpersistedFrom = index + 1;
    this.committed = index;
    this.applied = index;
  }

  /** Drops entries from the front of the tail while it is over budget, if already applied and durable. */
  shrinkTail(maxBytes: number): void {
    let drop = 0;
    const limit = Math.min(this.applied, this.stable);
    while (this.tailBytes > maxBytes && drop < this.tail.length && this.tailFrom + drop <= limit) {
      this.tailBytes -= entryBytes(this.tail[drop] as Entry);
      drop++;
    }
    if (drop > 0) {
      this.tail.splice(0, drop);
      this.tailFrom += drop;
    }
  }

  /** Checks that entries read from storage are the ones this log has at those indexes. */
  agrees(entries: readonly Entry[]): boolean {
    return entries.every((entry) => this.terms.term(entry.index) === entry.term);
  }
}
