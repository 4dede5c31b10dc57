import { invariant } from './errors.js';
import type { Entry } from './types.js';

/**
 * What a leader knows about one follower (etcd's Progress). In Probe the leader sends one append
 * at a time and waits to learn where the follower's log matches; in Replicate it streams appends
 * optimistically, limited by the number and bytes of appends in flight.
 */
export enum ProgressState {
  Probe = 'probe',
  Replicate = 'replicate',
  /** A snapshot was sent; nothing else until the follower has it. */
  Snapshot = 'snapshot',
}

/** Appends in flight to one follower: a bounded queue of (last index, bytes). */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  private readonly sizes: number[] = [];
  private bytes = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}

  get count(): number {
    return this.lastIndexes.length;
  }

  full(): boolean {
    return (
      this.lastIndexes.length >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes)
    );
  }

  add(lastIndex: number, bytes: number): void {
    invariant(!this.full(), 'no append is sent while the window is full');
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Frees the oldest append (presumed lost). */
  freeFirst(): void {
    if (this.lastIndexes.length === 0) return;
    this.bytes -= this.sizes.shift() as number;
    this.lastIndexes.shift();
  }

  /** Frees every append whose last index is <= `index` (acknowledged). */
  freeTo(index: number): void {
    let n = 0;
    while (n < this.lastIndexes.length && (this.lastIndexes[n] as number) <= index) {
      this.bytes -= this.sizes[n] as number;
      n++;
    }
    this.lastIndexes.splice(0, n);
    this.sizes.splice(0, n);
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.bytes = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state = ProgressState.Probe;
  /** In Probe: an append was sent and its answer (or a heartbeat response) is awaited. */
  probeSent = false;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  readonly inflights: Inflights;
  /** Entries read from storage for this follower (older than the leader's in-memory tail). */
  catchUp: Entry[] = [];
  /** A load for this follower is outstanding. */
  loading = false;
  /** In Snapshot: the index of the snapshot sent, and heartbeats answered since. */
  pendingSnapshot = 0;
  snapshotWait = 0;

  constructor(next: number, maxInflightMsgs: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  becomeProbe(): void {
    this.state = ProgressState.Probe;
    this.probeSent = false;
    this.inflights.reset();
    // Probing starts right after what is known to match.
    this.next = this.match + 1;
  }

  becomeSnapshot(index: number): void {
    this.state = ProgressState.Snapshot;
    this.pendingSnapshot = index;
    this.snapshotWait = 0;
    this.probeSent = false;
    this.inflights.reset();
    this.catchUp = [];
  }

  becomeReplicate(): void {
    this.state = ProgressState.Replicate;
    this.probeSent = false;
    this.inflights.reset();
    this.next = this.match + 1;
  }

  /** The follower acknowledged entries up to `index`; false if that is old news. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * The follower rejected an append after `rejected`, hinting its log may match at `matchHint`.
   * Returns false for a stale rejection (etcd's MaybeDecrTo).
   */
  maybeDecreaseTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Snapshot) return false;
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** May the leader send an append now? */
  isPaused(): boolean {
    if (this.state === ProgressState.Snapshot) return true;
    return this.state === ProgressState.Probe ? this.probeSent : this.inflights.full();
  }

  /** Records an append of entries ending at `lastIndex` (or an empty probe) as sent. */
  sentAppend(lastIndex: number, count: number, bytes: number): void {
    if (this.state === ProgressState.Replicate) {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else {
      this.probeSent = true;
    }
  }
}
