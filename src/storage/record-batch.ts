import { StorageCorruptionError } from './entry-codec.js';
import { readU64, writeU64 } from './keys.js';
import type { ProducerHeader } from './producer-table.js';

/**
 * The payload of a Records entry: the records of one proposal, in order. A record's sequence
 * number is (shard incarnation, entry index, position in this batch).
 *
 *   [producer header] | count u32 | { keyBytes u16 | partition key (UTF-8) | dataBytes u32 | data } * count
 *
 * An idempotent producer's batch starts with a header told apart by a mark no count can be:
 *
 *   0xFFFFFFFE u32 | producer id u64 | epoch u32 | first sequence u64
 */

const PRODUCER_MARK = 0xfffffffe;
const PRODUCER_HEADER_BYTES = 24;

export interface BatchRecord {
  readonly partitionKey: string;
  readonly data: Buffer;
}

/**
 * Encodes a batch. `headroomBytes` leaves that many bytes free at the start of the returned
 * buffer for the caller's header, so framing the batch costs no second copy.
 */
export function encodeRecordBatch(
  records: readonly BatchRecord[],
  headroomBytes = 0,
  producer?: ProducerHeader,
): Buffer {
  const keys = records.map((r) => Buffer.from(r.partitionKey, 'utf8'));
  const headerBytes = producer === undefined ? 0 : PRODUCER_HEADER_BYTES;
  let size = headroomBytes + headerBytes + 4;
  for (let i = 0; i < records.length; i++) {
    size += 2 + (keys[i] as Buffer).length + 4 + (records[i] as BatchRecord).data.length;
  }
  const out = Buffer.allocUnsafe(size);
  let o = headroomBytes;
  if (producer !== undefined) {
    o = out.writeUInt32BE(PRODUCER_MARK, o);
    o = writeU64(out, producer.producerId, o);
    o = out.writeUInt32BE(producer.epoch, o);
    o = writeU64(out, producer.firstSequence, o);
  }
  o = out.writeUInt32BE(records.length, o);
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
  const start = recordsStart(payload);
  if (start === undefined || payload.length < start + 4) throw fail('truncated count');
  const count = payload.readUInt32BE(start);
  const records: BatchRecord[] = [];
  let o = start + 4;
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
  return payload.readUInt32BE(recordsStart(payload) ?? 0);
}

/** The idempotent producer's header of a batch, if it has one. */
export function recordBatchProducer(payload: Buffer): ProducerHeader | undefined {
  if (payload.length < PRODUCER_HEADER_BYTES || payload.readUInt32BE(0) !== PRODUCER_MARK) {
    return undefined;
  }
  return {
    producerId: readU64(payload, 4),
    epoch: payload.readUInt32BE(12),
    firstSequence: readU64(payload, 16),
  };
}

/** Where the count is: after the producer header, if any (undefined: a truncated header). */
function recordsStart(payload: Buffer): number | undefined {
  if (payload.length < 4 || payload.readUInt32BE(0) !== PRODUCER_MARK) return 0;
  return payload.length < PRODUCER_HEADER_BYTES ? undefined : PRODUCER_HEADER_BYTES;
}
