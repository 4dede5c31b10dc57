import { StorageCorruptionError } from './entry-codec.js';

/**
 * The payload of a Records entry: the records of one proposal, in order. A record's sequence
 * number is (shard incarnation, entry index, position in this batch).
 *
 *   count u32 | { keyBytes u16 | partition key (UTF-8) | dataBytes u32 | data } * count
 */

export interface BatchRecord {
  readonly partitionKey: string;
  readonly data: Buffer;
}

/**
 * Encodes a batch. `headroomBytes` leaves that many bytes free at the start of the returned
 * buffer for the caller's header, so framing the batch costs no second copy.
 */
export function encodeRecordBatch(records: readonly BatchRecord[], headroomBytes = 0): Buffer {
  const keys = records.map((r) => Buffer.from(r.partitionKey, 'utf8'));
  let size = headroomBytes + 4;
  for (let i = 0; i < records.length; i++) {
    size += 2 + (keys[i] as Buffer).length + 4 + (records[i] as BatchRecord).data.length;
  }
  const out = Buffer.allocUnsafe(size);
  let o = out.writeUInt32BE(records.length, headroomBytes);
  for (let i = 0; i < records.length; i++) {
    const key = keys[i] as Buffer;
    const data = (records[i] as BatchRecord).data;
    o = out.writeUInt16BE(key.length, o);
    o += key.copy(out, o);
    o = out.writeUInt32BE(data.length, o);
    o += data.copy(out, o);
  }
  return out;
}

/**
 * Decodes a batch. The returned data buffers are views into `payload` (no copy). The entry's CRC
 * was verified before this runs, so a structural error here means a bug or a format mismatch.
 */
export function decodeRecordBatch(index: number, payload: Buffer): BatchRecord[] {
  const fail = (why: string) => new StorageCorruptionError(`record batch ${index}: ${why}`);
  if (payload.length < 4) throw fail('truncated count');
  const count = payload.readUInt32BE(0);
  const records: BatchRecord[] = [];
  let o = 4;
  for (let i = 0; i < count; i++) {
    if (o + 2 > payload.length) throw fail(`truncated key length of record ${i}`);
    const keyBytes = payload.readUInt16BE(o);
    o += 2;
    if (o + keyBytes + 4 > payload.length) throw fail(`truncated record ${i}`);
    const partitionKey = payload.toString('utf8', o, o + keyBytes);
    o += keyBytes;
    const dataBytes = payload.readUInt32BE(o);
    o += 4;
    if (o + dataBytes > payload.length) throw fail(`truncated data of record ${i}`);
    records.push({ partitionKey, data: payload.subarray(o, o + dataBytes) });
    o += dataBytes;
  }
  if (o !== payload.length) throw fail(`${payload.length - o} trailing bytes`);
  return records;
}

/** How many records a batch payload holds, without decoding them. */
export function recordBatchCount(payload: Buffer): number {
  return payload.readUInt32BE(0);
}
