import { invariant } from './errors.js';
import {
  decodeConfChange,
  EntryType,
  type ConfChange,
  type ConfState,
  type Entry,
  type NodeId,
} from './types.js';

/**
 * The group's membership, as the dissertation's single-server changes define it (Ongaro, §4.1):
 * each replica uses the latest configuration in its log, committed or not, so the configuration
 * changes when a change entry is appended and reverts if that entry is overwritten. With one
 * change at a time, the configurations any two replicas use differ by at most one server, so
 * their majorities always overlap.
 */

interface Change {
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
}

/** The membership after `change`; an impossible change (reused id, last voter) changes nothing. */
export function applyChange(conf: ConfState, change: ConfChange): ConfState {
  const { type, node } = change;
  if (type !== 'removeNode' && conf.removed.includes(node)) return conf;
  const voter = conf.voters.includes(node);
  const learner = conf.learners.includes(node);
  switch (type) {
    case 'addVoter':
      if (voter) return conf;
      return {
        ...conf,
        voters: [...conf.voters, node],
        learners: conf.learners.filter((id) => id !== node),
      };
    case 'addLearner':
      if (voter || learner) return conf;
      return { ...conf, learners: [...conf.learners, node] };
    case 'removeNode':
      if (!voter && !learner) return conf;
      if (voter && conf.voters.length === 1) return conf;
      return {
        voters: conf.voters.filter((id) => id !== node),
        learners: conf.learners.filter((id) => id !== node),
        removed: [...conf.removed, node],
      };
  }
}

export class Membership {
  /** history[0] is the membership at the log's base; each later element follows a change entry. */
  private history: Change[];

  constructor(
    baseIndex: number,
    baseTerm: number,
    base: ConfState,
    changeEntries: readonly Entry[],
  ) {
    this.history = [{ index: baseIndex, term: baseTerm, conf: normalise(base) }];
    this.appended([...changeEntries].sort((a, b) => a.index - b.index));
  }

  get current(): ConfState {
    return (this.history[this.history.length - 1] as Change).conf;
  }

  /** The index of the latest change entry in the log (or of the base). */
  get lastChangeIndex(): number {
    return (this.history[this.history.length - 1] as Change).index;
  }

  /** The membership in force at `index` (for a snapshot taken there). */
  at(index: number): ConfState {
    let conf = (this.history[0] as Change).conf;
    for (const change of this.history) {
      if (change.index > index) break;
      conf = change.conf;
    }
    return conf;
  }

  isVoter(id: NodeId): boolean {
    return this.current.voters.includes(id);
  }

  isMember(id: NodeId): boolean {
    return this.current.voters.includes(id) || this.current.learners.includes(id);
  }

  /** Takes effect the changes among entries just appended to the log. True if anything changed. */
  appended(entries: readonly Entry[]): boolean {
    let changed = false;
    for (const entry of entries) {
      if (entry.type !== EntryType.ConfChange || entry.index <= this.lastChangeIndex) continue;
      const change = decodeConfChange(entry.data);
      const conf = change === undefined ? this.current : applyChange(this.current, change);
      this.history.push({ index: entry.index, term: entry.term, conf });
      changed = changed || conf !== (this.history[this.history.length - 2] as Change).conf;
    }
    return changed;
  }

  /**
   * Forgets changes whose entries are no longer in the log (a follower's conflicting suffix was
   * replaced). True if the membership changed.
   */
  reconcile(termAt: (index: number) => number | undefined): boolean {
    const before = this.current;
    while (this.history.length > 1) {
      const last = this.history[this.history.length - 1] as Change;
      if (termAt(last.index) === last.term) break;
      this.history.pop();
    }
    return this.current !== before;
  }

  /** Drops history the log no longer holds (after compaction up to `index`). */
  compactTo(index: number, term: number): void {
    let keep = 0;
    while (keep + 1 < this.history.length && (this.history[keep + 1] as Change).index <= index)
      keep++;
    const base = this.history[keep] as Change;
    invariant(base.index <= index, 'membership history is ordered');
    this.history = [{ index, term, conf: base.conf }, ...this.history.slice(keep + 1)];
  }
}

function normalise(conf: ConfState): ConfState {
  const voters = [...new Set(conf.voters)];
  return {
    voters,
    learners: [...new Set(conf.learners)].filter((id) => !voters.includes(id)),
    removed: [...new Set(conf.removed)],
  };
}
