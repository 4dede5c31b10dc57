import { invariant } from './errors.js';

/**
 * The term of every index in the log, stored as the index where each term begins. Terms change
 * only at elections, so this stays tiny however long the log is, and `term(i)` never needs I/O.
 */
export class TermIndex {
  /** Ascending by index and by term: starts[k] is the first index of terms[k]. */
  private starts: number[] = [];
  private terms: number[] = [];

  constructor(
    /** The compaction point: the last index no longer in the log, and its term. */
    private baseIndex: number,
    private baseTerm: number,
    private last: number,
    termStarts: readonly { readonly index: number; readonly term: number }[],
  ) {
    for (const { index, term } of termStarts) {
      invariant(
        index > baseIndex && index <= last,
        `term start ${index} outside (${baseIndex}, ${last}]`,
      );
      this.push(index, term);
    }
    invariant(
      last === baseIndex || this.starts[0] === baseIndex + 1,
      'term starts must cover the log',
    );
  }

  get lastIndex(): number {
    return this.last;
  }

  get firstIndex(): number {
    return this.baseIndex + 1;
  }

  get lastTerm(): number {
    return this.terms.length === 0 ? this.baseTerm : (this.terms[this.terms.length - 1] as number);
  }

  /** The term of entry `index`, or undefined if it is compacted (below the base) or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.baseIndex) return this.baseTerm;
    if (index < this.baseIndex || index > this.last) return undefined;
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((this.starts[mid] as number) <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.terms[lo];
  }

  /** Appends entries of `term` from last+1 to `to`. */
  append(term: number, to: number): void {
    invariant(to > this.last, 'append must extend the log');
    invariant(
      term >= this.lastTerm,
      `terms never decrease along the log (${term} < ${this.lastTerm})`,
    );
    if (term !== this.lastTerm || this.terms.length === 0) this.push(this.last + 1, term);
    this.last = to;
  }

  /** Forgets everything up to `index` (compaction): it becomes the base. */
  compactTo(index: number): void {
    invariant(index >= this.baseIndex && index <= this.last, `cannot compact to ${index}`);
    const baseTerm = this.term(index) as number;
    const nextTerm = index < this.last ? this.term(index + 1) : undefined;
    const starts: number[] = [];
    const terms: number[] = [];
    for (let k = 0; k < this.starts.length; k++) {
      if ((this.starts[k] as number) > index + 1) {
        starts.push(this.starts[k] as number);
        terms.push(this.terms[k] as number);
      }
    }
    if (nextTerm !== undefined) {
      starts.unshift(index + 1);
      terms.unshift(nextTerm);
    }
    this.starts = starts;
    this.terms = terms;
    this.baseIndex = index;
    this.baseTerm = baseTerm;
  }

  /** Replaces the whole log by a snapshot's position: empty, based at (index, term). */
  reset(index: number, term: number): void {
    this.starts = [];
    this.terms = [];
    this.baseIndex = index;
    this.baseTerm = term;
    this.last = index;
  }

  /** Removes every index after `index` (a follower overwriting a conflicting suffix). */
  truncateAfter(index: number): void {
    invariant(index >= this.baseIndex, 'cannot truncate into the compacted prefix');
    while (this.starts.length > 0 && (this.starts[this.starts.length - 1] as number) > index) {
      this.starts.pop();
      this.terms.pop();
    }
    this.last = index;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term (etcd's
   * findConflictByTerm): where a log with `term` at `index` can possibly match ours.
   */
  lastIndexWithTermAtMost(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.last);
    for (;;) {
      const t = this.term(i);
      if (t === undefined || t <= term) return { index: i, term: t ?? 0 };
      // Jump to the end of the previous term.
      let k = this.starts.length - 1;
      while (k >= 0 && (this.starts[k] as number) > i) k--;
      const start = this.starts[k] as number;
      i = start - 1;
      if (i <= this.baseIndex) return { index: this.baseIndex, term: this.baseTerm };
    }
  }

  private push(index: number, term: number): void {
    const lastTerm = this.terms[this.terms.length - 1];
    invariant(lastTerm === undefined || term > lastTerm, 'term starts ascend');
    this.starts.push(index);
    this.terms.push(term);
  }
}
