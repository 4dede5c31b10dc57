import { crc32c } from '../common/crc32c.js';
import { readU64, writeU64 } from './keys.js';

/**
 * A stored log entry. The log entry *is* the record batch: there is no second copy of the data.
 *
 *   version u8 | crc32c u32 | term u64 | type u8 | arrivalMs u64 | payload
 *
 * The CRC covers the log index (from the key, so an entry stored under the wrong key is caught)
 * and every byte after the CRC field. It is checked on every read: corruption is an error, never
 * an empty or shortened log.
 */

export const ENTRY_FORMAT_VERSION = 1;
const HEADER_BYTES = 1 + 4 + 8 + 1 + 8;

export enum EntryType {
  /** Written by a new leader at the start of its term; carries no records. */
  Empty = 0,
  /** A batch of records (see record-batch.ts). */
  Records = 1,
  /** A Raft membership change (payload: the encoded change). */
  ConfChange = 2,
  /**
   * Closes the shard for a split or merge (payload: the children's shard ids, JSON). Records
   * entries after it are never applied: their writers are told to write to the children.
   */
  Seal = 3,
}

export interface LogEntry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  /** Milliseconds since the epoch: max(leader clock, previous entry's arrival time). */
  readonly arrivalMs: number;
  readonly payload: Buffer;
}

export class StorageCorruptionError extends Error {
  override readonly name = 'StorageCorruptionError';
}

export function encodeEntry(entry: LogEntry): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + entry.payload.length);
  out[0] = ENTRY_FORMAT_VERSION;
  writeU64(out, entry.term, 5);
  out[13] = entry.type;
  writeU64(out, entry.arrivalMs, 14);
  entry.payload.copy(out, HEADER_BYTES);
  out.writeUInt32BE(checksum(entry.index, out), 1);
  return out;
}

/** Decodes and verifies an entry read from key `index`; throws StorageCorruptionError on any mismatch. */
export function decodeEntry(index: number, value: Buffer): LogEntry {
  if (value.length < HEADER_BYTES) {
    throw new StorageCorruptionError(
      `log entry ${index}: ${value.length} bytes is shorter than a header`,
    );
  }
  if (value[0] !== ENTRY_FORMAT_VERSION) {
    throw new StorageCorruptionError(`log entry ${index}: unknown format version ${value[0]}`);
  }
  const stored = value.readUInt32BE(1);
  const actual = checksum(index, value);
  if (stored !== actual) {
    throw new StorageCorruptionError(
      `log entry ${index}: checksum mismatch (stored ${stored.toString(16)}, computed ${actual.toString(16)})`,
    );
  }
  const type = value[13] as number;
  if (
    type !== EntryType.Empty &&
    type !== EntryType.Records &&
    type !== EntryType.ConfChange &&
    type !== EntryType.Seal
  ) {
    throw new StorageCorruptionError(`log entry ${index}: unknown entry type ${type}`);
  }
  return {
    index,
    term: readU64(value, 5),
    type,
    arrivalMs: readU64(value, 14),
    payload: value.subarray(HEADER_BYTES),
  };
}

function checksum(index: number, value: Buffer): number {
  const indexBytes = Buffer.allocUnsafe(8);
  writeU64(indexBytes, index, 0);
  return crc32c(value.subarray(5), crc32c(indexBytes));
}
