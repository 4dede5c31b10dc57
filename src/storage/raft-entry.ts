import { EntryType as RaftEntryType, type Entry } from '../raft/types.js';
import { EntryType, StorageCorruptionError, type LogEntry } from './entry-codec.js';
import { readU64, writeU64 } from './keys.js';
import { encodeRecordBatch, type BatchRecord } from './record-batch.js';

/**
 * How a shard's Raft entries map to stored log entries. A Raft Normal entry is a record batch
 * with its arrival time in front (the leader stamps it at proposal, so every replica stores the
 * same bytes):
 *
 *   arrivalMs u64 | record batch (record-batch.ts)
 *
 * A new leader's Empty entries and membership changes carry no arrival time (stored as 0).
 */

const ARRIVAL_BYTES = 8;

/** The data of a Raft Normal entry holding `records`, stamped `arrivalMs`; one allocation. */
export function encodeRecordsCommand(arrivalMs: number, records: readonly BatchRecord[]): Buffer {
  const out = encodeRecordBatch(records, ARRIVAL_BYTES);
  writeU64(out, arrivalMs, 0);
  return out;
}

/**
 * The data of a Raft Normal entry of a group that is not a shard (the coordinator's metadata):
 * the same arrival-time header, then `payload` (stored as is; nothing reads it as records).
 */
export function encodeStampedCommand(arrivalMs: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(ARRIVAL_BYTES + payload.byteLength);
  writeU64(out, arrivalMs, 0);
  out.set(payload, ARRIVAL_BYTES);
  return out;
}

/** The payload of an entry made by encodeStampedCommand. */
export function stampedPayload(entry: Entry): Buffer {
  const data = asBuffer(entry.data);
  if (data.length < ARRIVAL_BYTES) {
    throw new StorageCorruptionError(`raft entry ${entry.index}: no arrival time`);
  }
  return data.subarray(ARRIVAL_BYTES);
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The stored form of a Raft entry (payload is a view, not a copy). */
export function toLogEntry(entry: Entry): LogEntry {
  const data = asBuffer(entry.data);
  switch (entry.type) {
    case RaftEntryType.Normal:
      if (data.length < ARRIVAL_BYTES) {
        throw new StorageCorruptionError(`raft entry ${entry.index}: no arrival time`);
      }
      return {
        index: entry.index,
        term: entry.term,
        type: EntryType.Records,
        arrivalMs: readU64(data, 0),
        payload: data.subarray(ARRIVAL_BYTES),
      };
    case RaftEntryType.Empty:
      return {
        index: entry.index,
        term: entry.term,
        type: EntryType.Empty,
        arrivalMs: 0,
        payload: data,
      };
    case RaftEntryType.ConfChange:
      return {
        index: entry.index,
        term: entry.term,
        type: EntryType.ConfChange,
        arrivalMs: 0,
        payload: data,
      };
  }
}

/** The Raft entry a stored entry came from (Records entries are re-framed: one copy). */
export function fromLogEntry(entry: LogEntry): Entry {
  switch (entry.type) {
    case EntryType.Records: {
      const data = Buffer.allocUnsafe(ARRIVAL_BYTES + entry.payload.length);
      writeU64(data, entry.arrivalMs, 0);
      entry.payload.copy(data, ARRIVAL_BYTES);
      return { index: entry.index, term: entry.term, type: RaftEntryType.Normal, data };
    }
    case EntryType.Empty:
      return {
        index: entry.index,
        term: entry.term,
        type: RaftEntryType.Empty,
        data: entry.payload,
      };
    case EntryType.ConfChange:
      return {
        index: entry.index,
        term: entry.term,
        type: RaftEntryType.ConfChange,
        data: entry.payload,
      };
  }
}

/** The arrival time a Raft entry carries, or undefined if it holds no records. */
export function arrivalOf(entry: Entry): number | undefined {
  if (entry.type !== RaftEntryType.Normal || entry.data.length < ARRIVAL_BYTES) return undefined;
  return readU64(asBuffer(entry.data), 0);
}
