import { assert } from '../common/assert.js';
import { EntryType, type LogEntry } from '../storage/entry-codec.js';
import { decodeRecordBatch, type BatchRecord } from '../storage/record-batch.js';

/**
 * The newest readable entries of one replica, kept in memory so that readers at the tip (every
 * enhanced fan-out subscription that keeps up, and polling readers close behind) are served
 * without a LevelDB iterator and decode each batch once, however many consumers read it. Bounded
 * by bytes of payload: the oldest entries leave as new ones come, and readers further behind
 * read storage (which holds every entry as well). Only entries that are durable and readable
 * are added, so what the tail holds is never more than storage would answer.
 */

/** Default payload bytes kept per replica: about a second of a shard written at 1 MiB/s. */
export const DEFAULT_TAIL_BYTES = 1024 * 1024;

/** A log entry as readers see it, from the tail or from storage. */
export class ReadableEntry {
  private decoded: BatchRecord[] | undefined;

  constructor(private readonly entry: LogEntry) {}

  get index(): number {
    return this.entry.index;
  }

  get type(): EntryType {
    return this.entry.type;
  }

  get arrivalMs(): number {
    return this.entry.arrivalMs;
  }

  get sizeBytes(): number {
    return this.entry.payload.length;
  }

  /** The records of a Records entry, decoded at the first read and shared by later ones. */
  records(): BatchRecord[] {
    assert(this.entry.type === EntryType.Records, 'only Records entries hold records');
    this.decoded ??= decodeRecordBatch(this.entry.index, this.entry.payload);
    return this.decoded;
  }
}

export class CommittedTail {
  /** Entries in index order from `head`; the slots before it are dropped ones not yet reclaimed. */
  private entries: ReadableEntry[] = [];
  private head = 0;
  private bytes = 0;
  readonly stats = { entriesServed: 0 };

  constructor(private readonly maxBytes = DEFAULT_TAIL_BYTES) {
    assert(maxBytes >= 0, 'the tail size cannot be negative');
  }

  /** The oldest index held, or undefined when the tail is empty. */
  get firstIndex(): number | undefined {
    return this.entries[this.head]?.index;
  }

  get lastIndex(): number | undefined {
    return this.entries[this.entries.length - 1]?.index;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** Adds entries that just became readable, in index order. */
  append(entries: readonly LogEntry[]): void {
    for (const entry of entries) {
      const last = this.lastIndex;
      // Never a gap inside the tail: what it holds is all of first..last. An entry out of line
      // (after a snapshot; a single node's entries of one batch settle in any order) starts it
      // afresh, and readers find the rest in storage.
      if (last !== undefined && entry.index !== last + 1) this.clear();
      const kept = new ReadableEntry(entry);
      this.entries.push(kept);
      this.bytes += kept.sizeBytes;
    }
    while (this.bytes > this.maxBytes && this.head < this.entries.length) {
      this.bytes -= (this.entries[this.head] as ReadableEntry).sizeBytes;
      this.head++;
    }
    // Reclaim the dropped slots once they are half the array, so each entry is moved O(1) times.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Forgets everything (a snapshot replaced the log, or the replica closes). */
  clear(): void {
    this.entries = [];
    this.head = 0;
    this.bytes = 0;
  }

  /**
   * The held entries from..to (both inclusive), as a list that later appends do not change;
   * `from` must be at or after firstIndex.
   */
  range(from: number, to: number): ReadableEntry[] {
    const first = this.firstIndex;
    if (first === undefined || to < from) return [];
    assert(from >= first, `tail read from ${from} before its first entry ${first}`);
    const start = this.head + from - first;
    const out = this.entries.slice(
      start,
      start + Math.min(to, this.lastIndex as number) - from + 1,
    );
    this.stats.entriesServed += out.length;
    return out;
  }
}
