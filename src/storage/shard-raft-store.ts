import { assert } from '../common/assert.js';
import {
  EntryType as RaftEntryType,
  entryBytes,
  type ConfState,
  type Entry,
  type HardState,
  type InitialState,
  type LoadRequest,
  type Snapshot,
} from '../raft/types.js';
import { encodeEntry, EntryType, StorageCorruptionError } from './entry-codec.js';
import type { KvOp, KvStore } from './kv-store.js';
import {
  logKey,
  markerKey,
  readU64,
  shardSpaceEnd,
  shardSpaceStart,
  shardStateKey,
  SPACE_MARKER,
  STATE_APPLIED,
  STATE_REPLICA,
  STATE_SNAPSHOT,
  STATE_SNAPSHOT_PAYLOAD,
  writeU64,
} from './keys.js';
import { arrivalOf, fromLogEntry, toLogEntry } from './raft-entry.js';
import { LogGapError, ShardLog, type AppliedEntries, type TrimPoint } from './shard-log.js';

/**
 * A shard replica's Raft storage in the broker's LevelDB: the log entries are the shard's record
 * log (ShardLog), plus what Raft needs to start without reading the whole log:
 *  - markers (E keys) where each term starts and where each membership change is: few, read whole;
 *  - the membership at the trim point (a shard snapshot is metadata only: the trim point and it).
 * Writes come back as KvOps for the broker's one group-commit batch per cycle; the in-memory view
 * (last index, markers) moves when the ops are produced, which is safe because a failed batch is
 * fail-stop for the whole broker.
 */

const MARKER_TERM_START = 1;
const MARKER_CONF_CHANGE = 2;
const SNAPSHOT_DATA_VERSION = 1;
/** Version 2 adds a state-machine payload after the arrival time. */
const SNAPSHOT_DATA_VERSION_PAYLOAD = 2;

interface Marker {
  readonly index: number;
  readonly term: number;
  readonly flags: number;
}

export interface RecoveredRaftShard {
  readonly initial: InitialState;
  /** Everything up to here is applied (arrival-time keys written). */
  readonly appliedIndex: number;
  readonly trimPoint: TrimPoint;
  /** The newest arrival time in the log: the next proposal is stamped no earlier. */
  readonly lastArrivalMs: number;
}

/** What a snapshot carries besides its index, term and membership. */
export interface ShardSnapshotData {
  /** Arrival time of the last trimmed entry: arrival times continue from it. */
  readonly arrivalMs: number;
  /**
   * The state machine at the snapshot's index that is not in the retained log: the coordinator's
   * metadata, or a shard's idempotent-producer table (producer-table.ts).
   */
  readonly payload?: Uint8Array;
}

export function encodeShardSnapshotData(data: ShardSnapshotData): Uint8Array {
  const payload = data.payload;
  const out = Buffer.alloc(9 + (payload?.byteLength ?? 0));
  out[0] = payload === undefined ? SNAPSHOT_DATA_VERSION : SNAPSHOT_DATA_VERSION_PAYLOAD;
  writeU64(out, data.arrivalMs, 1);
  if (payload !== undefined) out.set(payload, 9);
  return out;
}

export function decodeShardSnapshotData(bytes: Uint8Array): ShardSnapshotData {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length === 9 && buf[0] === SNAPSHOT_DATA_VERSION) return { arrivalMs: readU64(buf, 1) };
  if (buf.length >= 9 && buf[0] === SNAPSHOT_DATA_VERSION_PAYLOAD) {
    return { arrivalMs: readU64(buf, 1), payload: buf.subarray(9) };
  }
  throw new StorageCorruptionError(
    `snapshot data of ${buf.length} bytes, version ${String(buf[0])}, is not readable`,
  );
}

/**
 * Makes group `shard`'s storage belong to Raft replica `replicaId` before the replica opens. What
 * another replica id left behind (this broker's earlier membership of the group, removed by a
 * move while the broker was away) is deleted first: its log and votes are not the new member's.
 * Storage without an owner is `legacyId`'s (written before owners were recorded). Returns the
 * write recording the owner, to be made durable before the replica is driven; [] when recorded.
 */
export async function claimGroupStorage(
  kv: KvStore,
  shard: number,
  replicaId: number,
  legacyId: number,
): Promise<KvOp[]> {
  const key = shardStateKey(shard, STATE_REPLICA);
  const raw = await kv.get(key);
  const owner = raw === undefined ? legacyId : readU64(raw, 0);
  if (raw !== undefined && owner === replicaId) return [];
  if (owner !== replicaId) await new ShardLog(kv, shard).destroy();
  const value = Buffer.alloc(8);
  writeU64(value, replicaId, 0);
  return [{ type: 'put', key, value }];
}

export class ShardRaftStore {
  readonly log: ShardLog;
  private trim: TrimPoint = { index: 0, term: 0, arrivalMs: 0 };
  private last = 0;
  /** Ascending by index. */
  private markers: Marker[] = [];
  /** A trim to finish (entries deleted) once the batch that installed a snapshot is durable. */
  private pendingRemoval: { point: TrimPoint; previousIndex: number } | undefined;

  constructor(
    private readonly kv: KvStore,
    readonly shard: number,
    /** The group's voters when it was created (membership before any change or snapshot). */
    private readonly bootstrapVoters: readonly number[],
  ) {
    this.log = new ShardLog(kv, shard);
  }

  get lastIndex(): number {
    return this.last;
  }

  get trimPoint(): TrimPoint {
    return this.trim;
  }

  async recover(tailBytes: number): Promise<RecoveredRaftShard> {
    const recovered = await this.log.recoverState();
    this.trim = recovered.trimPoint;
    this.last = recovered.lastIndex;
    this.markers = (await this.readMarkers()).filter(
      (m) => m.index > this.trim.index && m.index <= this.last,
    );
    const confState = await this.readConfState();
    const payload = await this.kv.get(shardStateKey(this.shard, STATE_SNAPSHOT_PAYLOAD));
    let intact = true;
    let tail: Entry[] = [];
    let confEntries: Entry[] = [];
    let lastArrivalMs = this.trim.arrivalMs;
    try {
      tail = await this.readTail(tailBytes);
      confEntries = await Promise.all(
        this.markers
          .filter((m) => (m.flags & MARKER_CONF_CHANGE) !== 0)
          .map(async (m) => fromLogEntry(await this.log.entryAt(m.index))),
      );
      lastArrivalMs = Math.max(lastArrivalMs, await this.newestArrivalInLog(tail));
    } catch (error) {
      // A replica whose log fails its checksums must not vote or lead (it might have lost an
      // entry it once acknowledged); the library keeps it a passive follower.
      if (!(error instanceof StorageCorruptionError)) throw error;
      intact = false;
      tail = [];
      confEntries = [];
    }
    const snapshot: Snapshot | undefined =
      this.trim.index === 0
        ? undefined
        : {
            index: this.trim.index,
            term: this.trim.term,
            confState: confState ?? { voters: this.bootstrapVoters, learners: [], removed: [] },
            data: encodeShardSnapshotData({
              arrivalMs: this.trim.arrivalMs,
              ...(payload === undefined ? {} : { payload }),
            }),
          };
    const initial: InitialState = {
      hardState: recovered.hardState,
      firstIndexMinusOne: this.trim.index,
      termAtFirstIndexMinusOne: this.trim.term,
      lastIndex: this.last,
      termStarts: this.termStarts(),
      tail,
      intact,
      ...(snapshot === undefined ? {} : { snapshot, confState: snapshot.confState }),
      confEntries,
    };
    return { initial, appliedIndex: recovered.appliedIndex, trimPoint: this.trim, lastArrivalMs };
  }

  /** The term of `index` (which must be at or after the trim point and at most the last index). */
  termAt(index: number): number {
    assert(index >= this.trim.index && index <= this.last, `term of ${index} is not known`);
    let term = this.trim.term;
    for (const m of this.markers) {
      if (m.index > index) break;
      if ((m.flags & MARKER_TERM_START) !== 0) term = m.term;
    }
    return term;
  }

  /**
   * The writes of one Ready, in the order Raft requires: a snapshot replaces the whole log, then
   * entries replace the log from their first index on, then the hard state.
   */
  persistOps(ready: {
    readonly snapshot?: Snapshot | undefined;
    readonly entries: readonly Entry[];
    readonly hardState?: HardState | undefined;
  }): KvOp[] {
    const ops: KvOp[] = [];
    if (ready.snapshot !== undefined) this.installOps(ready.snapshot, ops);
    if (ready.entries.length > 0) this.appendOps(ready.entries, ops);
    if (ready.hardState !== undefined) ops.push(this.log.hardStateOp(ready.hardState));
    return ops;
  }

  /** After the batch from persistOps is durable: deletes the entries an installed snapshot covers. */
  async afterPersist(): Promise<void> {
    const pending = this.pendingRemoval;
    if (pending === undefined) return;
    this.pendingRemoval = undefined;
    await this.log.removeTrimmed(pending.point, pending.previousIndex);
  }

  /** Applying committed entries: arrival-time keys and the applied pointer. */
  applyOps(entries: readonly Entry[]): KvOp[] {
    return this.log.applyOps(entries.map(toLogEntry));
  }

  /** applyOps, with the producer table's decisions (see ShardLog.applyEntries). */
  applyEntries(entries: readonly Entry[]): AppliedEntries {
    return this.log.applyEntries(entries.map(toLogEntry));
  }

  /** Retention: the trim pointer and the membership at it, before the entries are removed. */
  compactOps(snapshot: Snapshot): KvOp[] {
    assert(
      snapshot.index > this.trim.index && snapshot.index <= this.last,
      'compact inside the log',
    );
    const { arrivalMs, payload } = decodeShardSnapshotData(snapshot.data);
    const point: TrimPoint = { index: snapshot.index, term: snapshot.term, arrivalMs };
    this.pendingRemoval = { point, previousIndex: this.trim.index };
    this.trim = point;
    this.markers = this.markers.filter((m) => m.index > point.index);
    this.log.trimmedTo(point.index, payload);
    return [
      this.log.trimPointOp(point),
      this.confStateOp(snapshot.confState),
      this.payloadOp(payload),
    ];
  }

  /** Serves a Raft load: contiguous entries from `from`, at most maxBytes (at least one). */
  async load(request: LoadRequest): Promise<Entry[]> {
    const out: Entry[] = [];
    let bytes = 0;
    const to = Math.min(request.to, this.last);
    if (request.from <= this.trim.index || request.from > to) return out;
    try {
      for await (const stored of this.log.entries(request.from, to)) {
        const entry = fromLogEntry(stored);
        bytes += entryBytes(entry);
        if (out.length > 0 && bytes > request.maxBytes) break;
        out.push(entry);
      }
    } catch (error) {
      // Trimmed (or overwritten) under the read: Raft gets what was contiguous and asks again,
      // or sends a snapshot.
      if (!(error instanceof LogGapError)) throw error;
    }
    return out;
  }

  private installOps(snapshot: Snapshot, ops: KvOp[]): void {
    // The snapshot replaces the whole log. Entries after it are deleted here, in the batch;
    // those at or below it go with the trim once the batch is durable (recovery finishes an
    // interrupted trim), so a crash never leaves a hole that looks like corruption.
    for (let i = Math.max(snapshot.index, this.trim.index) + 1; i <= this.last; i++) {
      ops.push({ type: 'del', key: logKey(this.shard, i) });
    }
    for (const m of this.markers) ops.push({ type: 'del', key: markerKey(this.shard, m.index) });
    const { arrivalMs, payload } = decodeShardSnapshotData(snapshot.data);
    const point: TrimPoint = { index: snapshot.index, term: snapshot.term, arrivalMs };
    ops.push(
      this.log.trimPointOp(point),
      this.confStateOp(snapshot.confState),
      this.payloadOp(payload),
    );
    const applied = Buffer.allocUnsafe(8);
    writeU64(applied, snapshot.index, 0);
    ops.push({ type: 'put', key: shardStateKey(this.shard, STATE_APPLIED), value: applied });
    this.pendingRemoval = { point, previousIndex: this.trim.index };
    this.trim = point;
    this.last = snapshot.index;
    this.markers = [];
    this.log.installedSnapshot(point.index, payload);
  }

  private appendOps(entries: readonly Entry[], ops: KvOp[]): void {
    const first = (entries[0] as Entry).index;
    const lastNew = (entries[entries.length - 1] as Entry).index;
    assert(first > this.trim.index && first <= this.last + 1, `append at ${first} leaves a hole`);
    // A longer stored suffix that the leader overwrote goes, with its markers.
    for (let i = lastNew + 1; i <= this.last; i++) {
      ops.push({ type: 'del', key: logKey(this.shard, i) });
    }
    let prevTerm = this.termAt(first - 1);
    const kept: Marker[] = [];
    for (const m of this.markers) {
      if (m.index < first) kept.push(m);
      else ops.push({ type: 'del', key: markerKey(this.shard, m.index) });
    }
    for (const entry of entries) {
      ops.push({
        type: 'put',
        key: logKey(this.shard, entry.index),
        value: encodeEntry(toLogEntry(entry)),
      });
      let flags = 0;
      if (entry.term !== prevTerm) flags |= MARKER_TERM_START;
      if (entry.type === RaftEntryType.ConfChange) flags |= MARKER_CONF_CHANGE;
      if (flags !== 0) {
        kept.push({ index: entry.index, term: entry.term, flags });
        const value = Buffer.allocUnsafe(9);
        value[0] = flags;
        writeU64(value, entry.term, 1);
        ops.push({ type: 'put', key: markerKey(this.shard, entry.index), value });
      }
      prevTerm = entry.term;
    }
    this.markers = kept;
    this.last = lastNew;
  }

  private termStarts(): Array<{ index: number; term: number }> {
    const starts: Array<{ index: number; term: number }> = [];
    // The first retained entry continues the trim point's term unless a marker says otherwise.
    if (this.last > this.trim.index) {
      const firstMarker = this.markers[0];
      if (
        firstMarker === undefined ||
        firstMarker.index !== this.trim.index + 1 ||
        (firstMarker.flags & MARKER_TERM_START) === 0
      ) {
        starts.push({ index: this.trim.index + 1, term: this.trim.term });
      }
    }
    for (const m of this.markers) {
      if ((m.flags & MARKER_TERM_START) !== 0) starts.push({ index: m.index, term: m.term });
    }
    return starts;
  }

  private async readMarkers(): Promise<Marker[]> {
    const rows = await this.kv.entries({
      gte: shardSpaceStart(SPACE_MARKER, this.shard),
      lt: shardSpaceEnd(SPACE_MARKER, this.shard),
    });
    return rows.map(([key, value]) => {
      if (value.length !== 9)
        throw new StorageCorruptionError(`raft marker of ${value.length} bytes`);
      return { index: readU64(key, 9), term: readU64(value, 1), flags: value[0] as number };
    });
  }

  private async readConfState(): Promise<ConfState | undefined> {
    const raw = await this.kv.get(shardStateKey(this.shard, STATE_SNAPSHOT));
    if (raw === undefined) return undefined;
    try {
      const parsed = JSON.parse(raw.toString('utf8')) as ConfState;
      return { voters: parsed.voters, learners: parsed.learners, removed: parsed.removed };
    } catch (error) {
      throw new StorageCorruptionError('the stored membership is not JSON', { cause: error });
    }
  }

  /** The payload kept with the trim point, so a restart can send the same snapshot. */
  private payloadOp(payload: Uint8Array | undefined): KvOp {
    const key = shardStateKey(this.shard, STATE_SNAPSHOT_PAYLOAD);
    return payload === undefined
      ? { type: 'del', key }
      : { type: 'put', key, value: Buffer.from(payload) };
  }

  private confStateOp(conf: ConfState): KvOp {
    const value = Buffer.from(
      JSON.stringify({ voters: conf.voters, learners: conf.learners, removed: conf.removed }),
      'utf8',
    );
    return { type: 'put', key: shardStateKey(this.shard, STATE_SNAPSHOT), value };
  }

  /** The newest entries, up to `tailBytes` (at least the last entry), oldest first. */
  private async readTail(tailBytes: number): Promise<Entry[]> {
    const out: Entry[] = [];
    let bytes = 0;
    for await (const stored of this.log.entriesBackward(this.trim.index + 1, this.last)) {
      const entry = fromLogEntry(stored);
      bytes += entryBytes(entry);
      if (out.length > 0 && bytes > tailBytes) break;
      out.push(entry);
    }
    return out.reverse();
  }

  /** Newest arrival time among the log's records: the tail, or further back if it has none. */
  private async newestArrivalInLog(tail: readonly Entry[]): Promise<number> {
    for (let i = tail.length - 1; i >= 0; i--) {
      const arrival = arrivalOf(tail[i] as Entry);
      if (arrival !== undefined) return arrival;
    }
    // Rare: a tail of only Empty entries; walk back to the last record batch.
    const firstTail = tail[0]?.index ?? this.last + 1;
    for await (const stored of this.log.entriesBackward(this.trim.index + 1, firstTail - 1)) {
      if (stored.type === EntryType.Records) return stored.arrivalMs;
    }
    return this.trim.arrivalMs;
  }
}
