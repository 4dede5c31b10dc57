import type { Entry, NodeId } from '../../src/raft/types.js';

/**
 * The simulator's safety checks (Figure 3 of the Raft paper), fed as events happen:
 *  - Election Safety: at most one leader per term;
 *  - Log Matching: an (index, term) pair names one entry, and one predecessor term;
 *  - Leader Completeness: a new leader holds every entry anyone has applied;
 *  - State Machine Safety: no two replicas apply different entries at one index;
 *  - and durability: every proposal acknowledged as committed is applied everywhere at the end.
 * Each check throws SimViolation; the run then stops and reports its seed.
 */

export class SimViolation extends Error {
  override readonly name = 'SimViolation';

  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(`${rule}: ${message}`);
  }
}

export function entryKey(entry: Entry): string {
  return `${entry.type}:${Buffer.from(entry.data).toString('base64')}`;
}

export class SafetyChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** `${index}:${term}` -> what that entry is, and the term of the entry before it. */
  private readonly entries = new Map<string, { key: string; prevTerm: number }>();
  /** index -> the entry applied there (by whoever applied it first). */
  private readonly applied: Array<{ term: number; key: string } | undefined> = [];
  /**
   * index -> the term in which it was committed: that of the leader whose commit index first
   * covered it (or, if no leader was seen committing it, the term of the first replica to apply
   * it, which is no earlier). Leader Completeness binds leaders of later terms only.
   */
  private readonly commitTerm: Array<number | undefined> = [];
  private committedThrough = 0;
  /** Proposals acknowledged to the client: value -> (index, term). */
  readonly acknowledged = new Map<string, { index: number; term: number }>();

  get highestApplied(): number {
    return this.applied.length - 1;
  }

  appliedAt(index: number): { term: number; key: string } | undefined {
    return this.applied[index];
  }

  /** Election Safety. */
  observeLeader(id: NodeId, term: number): boolean {
    const known = this.leaderOfTerm.get(term);
    if (known === undefined) {
      this.leaderOfTerm.set(term, id);
      return true;
    }
    if (known !== id) {
      throw new SimViolation('election safety', `two leaders in term ${term}: ${known} and ${id}`);
    }
    return false;
  }

  /** Log Matching, checked on every write: `prevTerm` is the writer's term at entries[0].index - 1. */
  observeWrite(node: NodeId, entries: readonly Entry[], prevTerm: number): void {
    let before = prevTerm;
    for (const entry of entries) {
      const id = `${entry.index}:${entry.term}`;
      const key = entryKey(entry);
      const known = this.entries.get(id);
      if (known === undefined) {
        this.entries.set(id, { key, prevTerm: before });
      } else if (known.key !== key || known.prevTerm !== before) {
        throw new SimViolation(
          'log matching',
          `replica ${node} wrote entry ${id} (${key}, after term ${before}); elsewhere it is ` +
            `(${known.key}, after term ${known.prevTerm})`,
        );
      }
      before = entry.term;
    }
  }

  /** A leader's commit index, after every event: the entries it covers are committed in `term`. */
  observeLeaderCommit(term: number, commit: number): void {
    for (let i = this.committedThrough + 1; i <= commit; i++) this.commitTerm[i] ??= term;
    this.committedThrough = Math.max(this.committedThrough, commit);
  }

  /** State Machine Safety, checked on every apply (in order, per replica). */
  observeApply(node: NodeId, entry: Entry, nodeTerm: number): void {
    this.commitTerm[entry.index] ??= nodeTerm;
    const key = entryKey(entry);
    const known = this.applied[entry.index];
    if (known === undefined) {
      this.applied[entry.index] = { term: entry.term, key };
    } else if (known.term !== entry.term || known.key !== key) {
      throw new SimViolation(
        'state machine safety',
        `replica ${node} applied ${entry.index}:${entry.term} (${key}); ${known.term} (${known.key}) was applied there before`,
      );
    }
  }

  /** A snapshot is an applied state: its entry terms must be the ones applied at those indexes. */
  observeSnapshot(node: NodeId, terms: readonly number[]): void {
    terms.forEach((term, i) => {
      const known = this.applied[i + 1];
      if (known !== undefined && known.term !== term) {
        throw new SimViolation(
          'state machine safety',
          `replica ${node} installed a snapshot with term ${term} at index ${i + 1}, where term ${known.term} was applied`,
        );
      }
    });
  }

  /**
   * Leader Completeness (§5.4.3): a new leader's log holds every entry committed in an earlier
   * term. (A leader of term 3 elected late, after a leader of term 4 committed an old entry, need
   * not hold it.)
   */
  checkLeaderComplete(
    node: NodeId,
    term: number,
    termAt: (index: number) => number | undefined,
    /** Entries before this were compacted into a snapshot (checked when it was installed). */
    firstIndex = 1,
  ): void {
    for (let i = Math.max(1, firstIndex - 1); i < this.applied.length; i++) {
      const known = this.applied[i];
      if (known === undefined) continue;
      const committedIn = this.commitTerm[i];
      if (committedIn !== undefined && committedIn >= term) continue;
      const t = termAt(i);
      if (t !== known.term) {
        throw new SimViolation(
          'leader completeness',
          `leader ${node} of term ${term} has term ${t ?? 'none'} at index ${i}, where term ${known.term} was committed`,
        );
      }
    }
  }

  acknowledge(value: string, index: number, term: number): void {
    this.acknowledged.set(value, { index, term });
  }
}
