import { createHmac, timingSafeEqual } from 'node:crypto';
import { ExpiredIteratorError, InvalidArgumentError } from './errors.js';
import { ITERATOR_LIFETIME_MS } from './limits.js';
import type { LogPosition } from './sequence-number.js';

/**
 * Shard iterators are opaque, self-describing tokens: no server-side state, so any broker can
 * serve the next GetRecords. A token carries the stream and shard incarnations, the next position
 * to read and its issue time, authenticated with an HMAC under a rotating key that the metadata
 * store persists (so tokens survive restarts and, later, work on every broker).
 *
 * Layout (51 bytes, base64url without padding, 68 characters):
 *   version u8 | keyId u32 | streamIncarnation u48 | shardIncarnation u48 | index u64 |
 *   offset u32 | issuedMs u48 | mac (first 16 bytes of HMAC-SHA256 over everything before it)
 */

const VERSION = 1;
const BODY_BYTES = 1 + 4 + 6 + 6 + 8 + 4 + 6;
const MAC_BYTES = 16;
const TOKEN_BYTES = BODY_BYTES + MAC_BYTES;
/** base64url without padding; checked before decoding, which would ignore trailing bits. */
const TOKEN_CHARS = Math.ceil((TOKEN_BYTES * 4) / 3);

export interface IteratorClaims {
  readonly streamIncarnation: number;
  readonly shardIncarnation: number;
  readonly position: LogPosition;
  readonly issuedMs: number;
}

export interface SigningKey {
  readonly id: number;
  readonly secret: Buffer;
}

/** The keys a node may sign and verify with; older keys stay verifiable until tokens expire. */
export interface SigningKeyring {
  current(): SigningKey;
  find(id: number): SigningKey | undefined;
  /** The smallest key id still kept; tokens signed by older keys must have expired. */
  oldestId(): number;
}

export function encodeIterator(claims: IteratorClaims, key: SigningKey): string {
  const token = Buffer.allocUnsafe(TOKEN_BYTES);
  let o = 0;
  o = token.writeUInt8(VERSION, o);
  o = token.writeUInt32BE(key.id, o);
  o = token.writeUIntBE(claims.streamIncarnation, o, 6);
  o = token.writeUIntBE(claims.shardIncarnation, o, 6);
  o = token.writeBigUInt64BE(BigInt(claims.position.index), o);
  o = token.writeUInt32BE(claims.position.offset, o);
  o = token.writeUIntBE(claims.issuedMs, o, 6);
  mac(key.secret, token.subarray(0, BODY_BYTES)).copy(token, o);
  return token.toString('base64url');
}

/**
 * Verifies a token. A token that is malformed or fails its MAC is InvalidArgumentException; a
 * genuine one older than the iterator lifetime is ExpiredIteratorException.
 */
export function decodeIterator(
  text: string,
  keyring: SigningKeyring,
  nowMs: number,
  lifetimeMs = ITERATOR_LIFETIME_MS,
): IteratorClaims {
  const invalid = () => new InvalidArgumentError(`Invalid ShardIterator.`);
  if (text.length !== TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(text)) throw invalid();
  const token = Buffer.from(text, 'base64url');
  if (token.length !== TOKEN_BYTES || token.readUInt8(0) !== VERSION) throw invalid();
  const keyId = token.readUInt32BE(1);
  const key = keyring.find(keyId);
  if (key === undefined) {
    // Keys are dropped only after every token they signed has expired. Key ids start at 1.
    if (keyId >= 1 && keyId < keyring.oldestId())
      throw new ExpiredIteratorError('Iterator expired.');
    throw invalid();
  }
  const expected = mac(key.secret, token.subarray(0, BODY_BYTES));
  if (!timingSafeEqual(expected, token.subarray(BODY_BYTES))) throw invalid();
  const streamIncarnation = token.readUIntBE(5, 6);
  const shardIncarnation = token.readUIntBE(11, 6);
  const index = Number(token.readBigUInt64BE(17));
  const offset = token.readUInt32BE(25);
  const issuedMs = token.readUIntBE(29, 6);
  const ageMs = nowMs - issuedMs;
  if (ageMs > lifetimeMs) {
    throw new ExpiredIteratorError(
      `Iterator expired. The iterator was created at time ${new Date(issuedMs).toISOString()} ` +
        `while right now it is ${new Date(nowMs).toISOString()} which is further in the future ` +
        `than the tolerated delay of ${lifetimeMs} milliseconds.`,
    );
  }
  return { streamIncarnation, shardIncarnation, position: { index, offset }, issuedMs };
}

/** The id of the key a well-formed token says it was signed with (nothing is verified). */
export function iteratorKeyId(text: string): number | undefined {
  if (text.length !== TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  const token = Buffer.from(text, 'base64url');
  if (token.length !== TOKEN_BYTES || token.readUInt8(0) !== VERSION) return undefined;
  return token.readUInt32BE(1);
}

function mac(secret: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', secret).update(body).digest().subarray(0, MAC_BYTES);
}
