import { crc32c } from '../common/crc32c.js';
import { StorageCorruptionError } from './entry-codec.js';
import type { KvOp } from './kv-store.js';

/**
 * One frame of a log segment: a whole write batch (every op of one group commit), so that the
 * segment alone can redo a batch the index lost in a crash.
 *
 *   frame  := magic u16 'RF' | version u8 | reserved u8 | bodyLength u32 | crc32c(body) u32 | body
 *   body   := opCount u32 | op*
 *   op     := kind u8 (1 put, 2 del) | keyLength u16 | key | put: valueLength u32 | value
 *
 * A value's bytes are written once, here; the index stores where they are (`ValueSpan`).
 */

export const FRAME_HEADER_BYTES = 12;
const MAGIC = 0x5246; // 'RF'
const VERSION = 1;
const KIND_PUT = 1;
const KIND_DEL = 2;
/** Values at least this big are handed to writev as they are; smaller ones are copied. */
const ZERO_COPY_MIN_BYTES = 4096;

/** Where one put's value lies, relative to the start of its frame. */
export interface ValueSpan {
  readonly opIndex: number;
  readonly offset: number;
  readonly length: number;
}

export interface EncodedFrame {
  /** The frame, as chunks for one writev (large values are not copied). */
  readonly chunks: Uint8Array[];
  readonly sizeBytes: number;
  /** One span per put op whose value `separate` selected. */
  readonly spans: ValueSpan[];
}

/** Encodes `ops` as a frame; `separate(op)` picks the puts whose value position is returned. */
export function encodeFrame(ops: readonly KvOp[], separate: (op: KvOp) => boolean): EncodedFrame {
  let smallBytes = 4;
  for (const op of ops) {
    smallBytes += 3 + op.key.length;
    if (op.type === 'put') {
      smallBytes += 4;
      if (op.value.length < ZERO_COPY_MIN_BYTES) smallBytes += op.value.length;
    }
  }
  const small = Buffer.allocUnsafe(FRAME_HEADER_BYTES + smallBytes);
  const chunks: Uint8Array[] = [];
  const spans: ValueSpan[] = [];
  let chunkStart = 0; // start of the current run of `small` not yet in `chunks`
  let at = FRAME_HEADER_BYTES; // write position in `small`
  let frameOffset = FRAME_HEADER_BYTES; // position in the frame
  small.writeUInt32BE(ops.length, at);
  at += 4;
  frameOffset += 4;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as KvOp;
    if (op.key.length > 0xffff) throw new RangeError(`a key of ${op.key.length} bytes`);
    small[at] = op.type === 'put' ? KIND_PUT : KIND_DEL;
    small.writeUInt16BE(op.key.length, at + 1);
    op.key.copy(small, at + 3);
    at += 3 + op.key.length;
    frameOffset += 3 + op.key.length;
    if (op.type !== 'put') continue;
    small.writeUInt32BE(op.value.length, at);
    at += 4;
    frameOffset += 4;
    if (separate(op)) spans.push({ opIndex: i, offset: frameOffset, length: op.value.length });
    if (op.value.length < ZERO_COPY_MIN_BYTES) {
      op.value.copy(small, at);
      at += op.value.length;
    } else {
      chunks.push(small.subarray(chunkStart, at), op.value);
      chunkStart = at;
    }
    frameOffset += op.value.length;
  }
  if (at > chunkStart) chunks.push(small.subarray(chunkStart, at));
  // The first chunk starts with the header; the body's CRC runs over everything after it.
  let crc = 0;
  for (let c = 0; c < chunks.length; c++) {
    const chunk = chunks[c] as Uint8Array;
    crc = crc32c(c === 0 ? chunk.subarray(FRAME_HEADER_BYTES) : chunk, crc);
  }
  small.writeUInt16BE(MAGIC, 0);
  small[2] = VERSION;
  small[3] = 0;
  small.writeUInt32BE(frameOffset - FRAME_HEADER_BYTES, 4);
  small.writeUInt32BE(crc >>> 0, 8);
  return { chunks, sizeBytes: frameOffset, spans };
}

export interface FrameHeader {
  readonly bodyLength: number;
  readonly crc: number;
}

/** Parses a frame header; undefined when the bytes are not one (a torn or zeroed tail). */
export function decodeFrameHeader(bytes: Buffer): FrameHeader | undefined {
  if (bytes.length < FRAME_HEADER_BYTES) return undefined;
  if (bytes.readUInt16BE(0) !== MAGIC || bytes[2] !== VERSION) return undefined;
  return { bodyLength: bytes.readUInt32BE(4), crc: bytes.readUInt32BE(8) };
}

/** A decoded op; a put's value is a view into the body at `valueOffset` (from the frame start). */
export type FrameOp =
  | { readonly type: 'put'; readonly key: Buffer; readonly value: Buffer; valueOffset: number }
  | { readonly type: 'del'; readonly key: Buffer };

/** true when `body` matches the CRC of its header. */
export function frameBodyIntact(header: FrameHeader, body: Buffer): boolean {
  return body.length === header.bodyLength && crc32c(body) >>> 0 === header.crc;
}

/** Decodes a body that passed frameBodyIntact; a malformed one is corruption. */
export function decodeFrameBody(body: Buffer): FrameOp[] {
  const fail = (why: string): never => {
    throw new StorageCorruptionError(`segment frame: ${why}`);
  };
  if (body.length < 4) fail('shorter than its op count');
  const count = body.readUInt32BE(0);
  const ops: FrameOp[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 3 > body.length) fail(`op ${i} runs past the body`);
    const kind = body[at] as number;
    const keyLength = body.readUInt16BE(at + 1);
    at += 3;
    if (at + keyLength > body.length) fail(`key of op ${i} runs past the body`);
    const key = body.subarray(at, at + keyLength);
    at += keyLength;
    if (kind === KIND_DEL) {
      ops.push({ type: 'del', key });
      continue;
    }
    if (kind !== KIND_PUT) fail(`op ${i} has kind ${kind}`);
    if (at + 4 > body.length) fail(`value length of op ${i} runs past the body`);
    const valueLength = body.readUInt32BE(at);
    at += 4;
    if (at + valueLength > body.length) fail(`value of op ${i} runs past the body`);
    ops.push({
      type: 'put',
      key,
      value: body.subarray(at, at + valueLength),
      valueOffset: FRAME_HEADER_BYTES + at,
    });
    at += valueLength;
  }
  if (at !== body.length) fail(`${body.length - at} bytes after the last op`);
  return ops;
}
