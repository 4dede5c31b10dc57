import { createHash } from 'node:crypto';
import { assert } from '../common/assert.js';
import type { Record as StreamRecord } from '../gen/rheos/v1/stream.js';

/**
 * The KPL aggregated record format (awslabs/amazon-kinesis-producer, aggregation-format.md), so
 * that what the KPL, `aws-kinesis-agg` and our producer aggregate can be read by each other's
 * consumers:
 *
 *     F3 89 9A C2 (magic) ‖ protobuf AggregatedRecord (proto2) ‖ MD5 of the protobuf bytes (16)
 *
 *     message AggregatedRecord {
 *       repeated string partition_key_table = 1;
 *       repeated string explicit_hash_key_table = 2;
 *       repeated Record records = 3;
 *     }
 *     message Record {
 *       required uint64 partition_key_index = 1;
 *       optional uint64 explicit_hash_key_index = 2;
 *       required bytes data = 3;
 *       repeated Tag tags = 4;
 *     }
 *     message Tag { required string key = 1; optional string value = 2; }
 *
 * The wire codec is written by hand for just these messages (varints and length-delimited
 * fields), so it needs no generated code and no dependency, and every length is known before a
 * byte is written (the producer packs to an exact size).
 *
 * Reading follows the KCL (AggregatorUtil.deaggregate): a record is an aggregate only if it
 * starts with the magic, has at least one protobuf byte before the 16-byte MD5, the MD5 matches
 * and the protobuf parses. Anything else, including a record with the magic whose MD5 or
 * protobuf is wrong, is a plain record and is read whole: user data that happens to start with
 * the magic is never lost. Unlike the KCL (which drops a sub-record whose table index is out of
 * range, with what follows), an aggregate with such an index is read as a plain record too.
 */

/** The four bytes an aggregated record starts with. */
export const KPL_MAGIC: Buffer = Buffer.from([0xf3, 0x89, 0x9a, 0xc2]);
const DIGEST_SIZE_BYTES = 16;
/** Magic plus MD5: what an aggregate costs beyond its protobuf bytes. */
const FRAMING_SIZE_BYTES = KPL_MAGIC.length + DIGEST_SIZE_BYTES;

// Protobuf wire types and the tags (field number << 3 | wire type) of the fields we write.
const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;
const TAG_PARTITION_KEY_TABLE = (1 << 3) | WIRE_LENGTH_DELIMITED;
const TAG_EXPLICIT_HASH_KEY_TABLE = (2 << 3) | WIRE_LENGTH_DELIMITED;
const TAG_RECORDS = (3 << 3) | WIRE_LENGTH_DELIMITED;
const TAG_PARTITION_KEY_INDEX = (1 << 3) | WIRE_VARINT;
const TAG_EXPLICIT_HASH_KEY_INDEX = (2 << 3) | WIRE_VARINT;
const TAG_DATA = (3 << 3) | WIRE_LENGTH_DELIMITED;
/** A uint64 varint takes at most 10 bytes; a longer one is malformed. */
const VARINT_MAX_BYTES = 10;

/** A user record as it goes into an aggregate. */
export interface AggregateMember {
  readonly partitionKey: string;
  readonly data: Uint8Array;
  readonly explicitHashKey?: string;
}

/** A user record as it comes out of an aggregate. */
export interface DeaggregatedRecord {
  readonly partitionKey: string;
  readonly explicitHashKey?: string;
  /** A view into the aggregate's bytes (not a copy). */
  readonly data: Buffer;
}

/**
 * A record as consumers see it (pollShard, readLineage): the stored record's fields, with the
 * partition key and data of the user record. A plain record is one user record with
 * `subSequenceNumber` 0; member i of an aggregate has the aggregate's sequence number and
 * arrival time and `subSequenceNumber` i, so (sequenceNumber, subSequenceNumber) orders user
 * records and is the position to checkpoint.
 */
export interface UserRecord extends StreamRecord {
  readonly subSequenceNumber: number;
  /** The member's explicit hash key, when its producer gave one (never for a plain record). */
  readonly explicitHashKey?: string;
}

/** Bytes of the varint encoding of a non-negative integer (below 2^53). */
export function varintSizeBytes(value: number): number {
  let size = 1;
  // Division, not shifts: shifts work on 32 bits and values may be larger.
  for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) size++;
  return size;
}

/** Bytes a length-delimited field of one-byte tag takes for a payload of `payloadBytes`. */
function delimitedSizeBytes(payloadBytes: number): number {
  return 1 + varintSizeBytes(payloadBytes) + payloadBytes;
}

/**
 * The exact size of an aggregate as members are added, without encoding it: what the producer
 * uses to pack up to a byte limit. Adding a member costs its Record message (indices, data) plus,
 * the first time its partition key (or explicit hash key) is seen, the key's table entry; keys
 * are deduplicated in the tables as `encodeAggregate` does, so the two always agree.
 */
export class AggregateSizer {
  private readonly partitionKeys = new Map<string, number>();
  private readonly explicitHashKeys = new Map<string, number>();
  private protobufSizeBytes = 0;
  private members = 0;

  /** Members added so far. */
  get count(): number {
    return this.members;
  }

  /** Encoded length of the aggregate of the members added so far (magic, protobuf, MD5). */
  get sizeBytes(): number {
    return FRAMING_SIZE_BYTES + this.protobufSizeBytes;
  }

  /** Bytes the aggregate would grow by if `member` were added next. */
  costBytes(member: AggregateMember): number {
    return this.measure(member).costBytes;
  }

  /** Adds `member`; returns the aggregate's new `sizeBytes`. */
  add(member: AggregateMember): number {
    const { costBytes, partitionKeyIndex, explicitHashKeyIndex } = this.measure(member);
    // A key's index is its place in order of first use: the table's size when it was added.
    this.partitionKeys.set(member.partitionKey, partitionKeyIndex);
    if (member.explicitHashKey !== undefined && explicitHashKeyIndex !== undefined)
      this.explicitHashKeys.set(member.explicitHashKey, explicitHashKeyIndex);
    this.protobufSizeBytes += costBytes;
    this.members++;
    return this.sizeBytes;
  }

  private measure(member: AggregateMember): {
    costBytes: number;
    partitionKeyIndex: number;
    explicitHashKeyIndex: number | undefined;
  } {
    let costBytes = 0;
    let partitionKeyIndex = this.partitionKeys.get(member.partitionKey);
    if (partitionKeyIndex === undefined) {
      partitionKeyIndex = this.partitionKeys.size;
      costBytes += delimitedSizeBytes(Buffer.byteLength(member.partitionKey, 'utf8'));
    }
    let explicitHashKeyIndex: number | undefined;
    if (member.explicitHashKey !== undefined) {
      explicitHashKeyIndex = this.explicitHashKeys.get(member.explicitHashKey);
      if (explicitHashKeyIndex === undefined) {
        explicitHashKeyIndex = this.explicitHashKeys.size;
        costBytes += delimitedSizeBytes(Buffer.byteLength(member.explicitHashKey, 'utf8'));
      }
    }
    costBytes += delimitedSizeBytes(
      recordMessageSizeBytes(partitionKeyIndex, explicitHashKeyIndex, member.data.length),
    );
    return { costBytes, partitionKeyIndex, explicitHashKeyIndex };
  }
}

/** Encoded length of the aggregate of `records` (what `encodeAggregate(records).length` is). */
export function aggregateSizeBytes(records: readonly AggregateMember[]): number {
  const sizer = new AggregateSizer();
  for (const record of records) sizer.add(record);
  return sizer.sizeBytes;
}

function recordMessageSizeBytes(
  partitionKeyIndex: number,
  explicitHashKeyIndex: number | undefined,
  dataBytes: number,
): number {
  return (
    1 +
    varintSizeBytes(partitionKeyIndex) +
    (explicitHashKeyIndex === undefined ? 0 : 1 + varintSizeBytes(explicitHashKeyIndex)) +
    delimitedSizeBytes(dataBytes)
  );
}

/**
 * Encodes `records` as one KPL aggregated record, in their order (member i is sub-sequence
 * number i on read). Partition keys and explicit hash keys are deduplicated in their tables, in
 * order of first use; tags are never written. An empty list still encodes (an aggregate of no
 * members), though readers take that as a plain record.
 */
export function encodeAggregate(records: readonly AggregateMember[]): Buffer {
  const partitionKeys = new Map<string, number>();
  const explicitHashKeys = new Map<string, number>();
  const indices = records.map((record) => {
    let partitionKeyIndex = partitionKeys.get(record.partitionKey);
    if (partitionKeyIndex === undefined) {
      partitionKeyIndex = partitionKeys.size;
      partitionKeys.set(record.partitionKey, partitionKeyIndex);
    }
    let explicitHashKeyIndex: number | undefined;
    if (record.explicitHashKey !== undefined) {
      explicitHashKeyIndex = explicitHashKeys.get(record.explicitHashKey);
      if (explicitHashKeyIndex === undefined) {
        explicitHashKeyIndex = explicitHashKeys.size;
        explicitHashKeys.set(record.explicitHashKey, explicitHashKeyIndex);
      }
    }
    return { partitionKeyIndex, explicitHashKeyIndex };
  });
  const sizeBytes = aggregateSizeBytes(records);
  const out = Buffer.allocUnsafe(sizeBytes);
  KPL_MAGIC.copy(out, 0);
  const writer = new Writer(out, KPL_MAGIC.length);
  // Fields in number order, as protobuf encoders write them.
  for (const key of partitionKeys.keys()) writer.string(TAG_PARTITION_KEY_TABLE, key);
  for (const key of explicitHashKeys.keys()) writer.string(TAG_EXPLICIT_HASH_KEY_TABLE, key);
  records.forEach((record, i) => {
    const { partitionKeyIndex, explicitHashKeyIndex } = indices[i] as (typeof indices)[number];
    writer.varint(TAG_RECORDS);
    writer.varint(
      recordMessageSizeBytes(partitionKeyIndex, explicitHashKeyIndex, record.data.length),
    );
    writer.varint(TAG_PARTITION_KEY_INDEX);
    writer.varint(partitionKeyIndex);
    if (explicitHashKeyIndex !== undefined) {
      writer.varint(TAG_EXPLICIT_HASH_KEY_INDEX);
      writer.varint(explicitHashKeyIndex);
    }
    writer.bytes(TAG_DATA, record.data);
  });
  const protobufEnd = writer.offset;
  // The sizer and the writer must agree byte for byte (the producer packs by the sizer).
  assert(protobufEnd === sizeBytes - DIGEST_SIZE_BYTES, 'the aggregate is the size computed');
  createHash('md5')
    .update(out.subarray(KPL_MAGIC.length, protobufEnd))
    .digest()
    .copy(out, protobufEnd);
  return out;
}

/** Whether `data` is a readable KPL aggregate (what `decodeAggregate` would decode). */
export function isAggregate(data: Uint8Array): boolean {
  return decodeAggregate(data) !== undefined;
}

/**
 * The user records of a KPL aggregate, in order, or undefined when `data` is not one: no magic,
 * nothing between magic and MD5, a wrong MD5, protobuf that does not parse (truncated, a bad
 * wire type, a required field missing) or a table index out of range. Such a record is read as a
 * plain record, as the KCL does. An aggregate that parses but holds no records gives [] (the
 * KCL yields nothing for it either). The data of each member is a view into `data`.
 */
export function decodeAggregate(data: Uint8Array): DeaggregatedRecord[] | undefined {
  const bytes = Buffer.isBuffer(data)
    ? data
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.length <= FRAMING_SIZE_BYTES) return undefined;
  if (!bytes.subarray(0, KPL_MAGIC.length).equals(KPL_MAGIC)) return undefined;
  const protobufEnd = bytes.length - DIGEST_SIZE_BYTES;
  const protobuf = bytes.subarray(KPL_MAGIC.length, protobufEnd);
  const digest = createHash('md5').update(protobuf).digest();
  if (!digest.equals(bytes.subarray(protobufEnd))) return undefined;
  try {
    return parseAggregatedRecord(protobuf);
  } catch (error) {
    if (error instanceof MalformedError) return undefined;
    throw error;
  }
}

/**
 * The user records of a stored record: its members if it is an aggregate, else itself with
 * sub-sequence number 0.
 */
export function deaggregateRecord(record: StreamRecord): UserRecord[] {
  const members = decodeAggregate(record.data);
  if (members === undefined) return [{ ...record, subSequenceNumber: 0 }];
  return members.map((member, i) => ({
    ...record,
    partitionKey: member.partitionKey,
    data: member.data,
    subSequenceNumber: i,
    ...(member.explicitHashKey === undefined ? {} : { explicitHashKey: member.explicitHashKey }),
  }));
}

// ---------------------------------------------------------------------------------------------
// Wire codec

/** Writes into a buffer sized beforehand (lengths are computed, never guessed). */
class Writer {
  constructor(
    private readonly out: Buffer,
    public offset: number,
  ) {}

  varint(value: number): void {
    let rest = value;
    while (rest >= 0x80) {
      this.out[this.offset++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.out[this.offset++] = rest;
  }

  string(tag: number, value: string): void {
    this.varint(tag);
    this.varint(Buffer.byteLength(value, 'utf8'));
    this.offset += this.out.write(value, this.offset, 'utf8');
  }

  bytes(tag: number, value: Uint8Array): void {
    this.varint(tag);
    this.varint(value.length);
    this.out.set(value, this.offset);
    this.offset += value.length;
  }
}

/** The bytes are not a well-formed aggregate: the record is read as plain. */
class MalformedError extends Error {}

/**
 * Reads protobuf fields from `bytes[start, end)`. Every read checks its bounds and moves forward
 * by at least one byte, so a loop over fields ends within `end - start` steps whatever the input.
 */
class Reader {
  constructor(
    private readonly bytes: Buffer,
    public offset: number,
    readonly end: number,
  ) {}

  get done(): boolean {
    return this.offset >= this.end;
  }

  /**
   * A varint as a number; values beyond 2^53 come back as Infinity (as an index or a length they
   * are out of range anyway, which the caller checks).
   */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < VARINT_MAX_BYTES; i++) {
      if (this.offset >= this.end) throw new MalformedError('truncated varint');
      const byte = this.bytes[this.offset++] as number;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return value > Number.MAX_SAFE_INTEGER ? Infinity : value;
      scale *= 0x80;
    }
    throw new MalformedError('varint longer than 10 bytes');
  }

  /** A length-delimited field's payload as [start, end) within the buffer. */
  delimited(): [number, number] {
    const length = this.varint();
    if (length > this.end - this.offset) throw new MalformedError('length beyond the message');
    const start = this.offset;
    this.offset += length;
    return [start, this.offset];
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        return this.advance(8);
      case WIRE_LENGTH_DELIMITED:
        this.delimited();
        return;
      case WIRE_FIXED32:
        return this.advance(4);
      default:
        // Groups (3, 4) are not used by this schema; 6 and 7 do not exist.
        throw new MalformedError(`wire type ${wireType}`);
    }
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wireType: number } {
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    if (field === 0 || !Number.isFinite(field)) throw new MalformedError('field number 0');
    return { field, wireType: tag % 8 };
  }

  private advance(bytes: number): void {
    if (bytes > this.end - this.offset) throw new MalformedError('truncated fixed field');
    this.offset += bytes;
  }
}

interface ParsedRecord {
  partitionKeyIndex: number;
  explicitHashKeyIndex: number | undefined;
  data: Buffer;
}

function parseAggregatedRecord(protobuf: Buffer): DeaggregatedRecord[] {
  const reader = new Reader(protobuf, 0, protobuf.length);
  const partitionKeys: string[] = [];
  const explicitHashKeys: string[] = [];
  const records: ParsedRecord[] = [];
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    const known = field === 1 || field === 2 || field === 3;
    if (!known) {
      // Unknown fields are skipped, as protobuf readers do (a later format may add some).
      reader.skip(wireType);
      continue;
    }
    if (wireType !== WIRE_LENGTH_DELIMITED) throw new MalformedError(`field ${field} wire type`);
    const [start, end] = reader.delimited();
    if (field === 1) partitionKeys.push(protobuf.toString('utf8', start, end));
    else if (field === 2) explicitHashKeys.push(protobuf.toString('utf8', start, end));
    else records.push(parseRecord(protobuf, start, end));
  }
  // Tables may come after the records on the wire: indices are checked once all is read.
  return records.map((r) => {
    const partitionKey = partitionKeys[r.partitionKeyIndex];
    if (partitionKey === undefined) throw new MalformedError('partition key index out of range');
    if (r.explicitHashKeyIndex === undefined) return { partitionKey, data: r.data };
    const explicitHashKey = explicitHashKeys[r.explicitHashKeyIndex];
    if (explicitHashKey === undefined)
      throw new MalformedError('explicit hash key index out of range');
    return { partitionKey, explicitHashKey, data: r.data };
  });
}

function parseRecord(protobuf: Buffer, start: number, end: number): ParsedRecord {
  const reader = new Reader(protobuf, start, end);
  let partitionKeyIndex: number | undefined;
  let explicitHashKeyIndex: number | undefined;
  let data: Buffer | undefined;
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    if (field === 1 || field === 2) {
      if (wireType !== WIRE_VARINT) throw new MalformedError(`record field ${field} wire type`);
      // A repeated scalar field: the last one wins, as in protobuf.
      if (field === 1) partitionKeyIndex = reader.varint();
      else explicitHashKeyIndex = reader.varint();
    } else if (field === 3) {
      if (wireType !== WIRE_LENGTH_DELIMITED) throw new MalformedError('record data wire type');
      const [from, to] = reader.delimited();
      data = protobuf.subarray(from, to);
    } else if (field === 4) {
      if (wireType !== WIRE_LENGTH_DELIMITED) throw new MalformedError('record tag wire type');
      const [from, to] = reader.delimited();
      checkTag(protobuf, from, to);
    } else {
      reader.skip(wireType);
    }
  }
  // Both are `required` (proto2): a reader refuses a message without them.
  if (partitionKeyIndex === undefined) throw new MalformedError('record without partition key');
  if (data === undefined) throw new MalformedError('record without data');
  return { partitionKeyIndex, explicitHashKeyIndex, data };
}

/** A Tag is not returned (the KCL drops tags too) but must be well-formed, with its key. */
function checkTag(protobuf: Buffer, start: number, end: number): void {
  const reader = new Reader(protobuf, start, end);
  let hasKey = false;
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    if (field === 1 || field === 2) {
      if (wireType !== WIRE_LENGTH_DELIMITED) throw new MalformedError(`tag field ${field}`);
      reader.delimited();
      if (field === 1) hasKey = true;
    } else {
      reader.skip(wireType);
    }
  }
  if (!hasKey) throw new MalformedError('tag without key');
}
