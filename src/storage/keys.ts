/**
 * Key layout of the broker's LevelDB. Every key starts with a one-byte space tag; numbers are
 * fixed-width big-endian so that byte order equals numeric order and a shard's log is one
 * contiguous, ordered key range.
 *
 *   L | shard u64 | index u64                 log entry (one Raft entry = one record batch)
 *   T | shard u64 | arrivalMs u64 | index u64 arrival-time index (written when an entry is applied)
 *   S | shard u64 | kind u8                   per-shard state: hard state, trim pointer, applied index,
 *                                             Raft snapshot (membership at the trim point)
 *   E | shard u64 | index u64                 Raft log markers: where a term starts, where a
 *                                             membership change is (few; read whole at start)
 *   M | name (UTF-8)                          metadata records
 *   P | shard u64 | index u64                 an idempotent producer's batch accepted at apply
 *                                             (producer-table.ts; folded into the table at trims)
 *   R | shard u64 | index u64                 a Records entry refused at apply (a duplicate, a
 *                                             fenced or out-of-order producer): never read
 *   W | 'c'                                   log segments: where replay starts after a crash
 *   W | 'g' | segment u64                     log segments: which shards a sealed segment holds
 *
 * On a broker, an L key's value is a pointer into a log segment (log-store.ts), not the entry.
 *
 * `shard` is the shard incarnation, unique for the life of the cluster, so a deleted stream's keys
 * never collide with a new stream of the same name.
 */

export const SPACE_LOG = 0x4c; // 'L'
export const SPACE_ARRIVAL = 0x54; // 'T'
export const SPACE_SHARD_STATE = 0x53; // 'S'
export const SPACE_METADATA = 0x4d; // 'M'
export const SPACE_MARKER = 0x45; // 'E'
export const SPACE_PRODUCER = 0x50; // 'P'
export const SPACE_REFUSED = 0x52; // 'R'
export const SPACE_SEGMENTS = 0x57; // 'W'

export const STATE_HARD = 0x68; // 'h'
export const STATE_TRIM = 0x74; // 't'
export const STATE_APPLIED = 0x61; // 'a'
/** The applied SEAL entry of a shard closed by a split or merge: index u64 | children (JSON). */
export const STATE_SEAL = 0x7a; // 'z'
export const STATE_SNAPSHOT = 0x73; // 's'
/** The Raft replica id the stored group belongs to (u64); absent: the broker's own id. */
export const STATE_REPLICA = 0x72; // 'r'
/**
 * A snapshot's state-machine payload: the coordinator's metadata, or a shard's producer table at
 * its trim point.
 */
export const STATE_SNAPSHOT_PAYLOAD = 0x70; // 'p'

const U64_SPLIT = 2 ** 32;

export function writeU64(buf: Buffer, value: number, offset: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a u64: ${value}`);
  buf.writeUInt32BE(Math.floor(value / U64_SPLIT), offset);
  buf.writeUInt32BE(value >>> 0, offset + 4);
  return offset + 8;
}

export function readU64(buf: Buffer, offset: number): number {
  const value = buf.readUInt32BE(offset) * U64_SPLIT + buf.readUInt32BE(offset + 4);
  if (!Number.isSafeInteger(value)) throw new RangeError('u64 beyond 2^53 in storage');
  return value;
}

export function logKey(shard: number, index: number): Buffer {
  const key = Buffer.allocUnsafe(17);
  key[0] = SPACE_LOG;
  writeU64(key, shard, 1);
  writeU64(key, index, 9);
  return key;
}

export function logKeyIndex(key: Buffer): number {
  return readU64(key, 9);
}

export function markerKey(shard: number, index: number): Buffer {
  const key = Buffer.allocUnsafe(17);
  key[0] = SPACE_MARKER;
  writeU64(key, shard, 1);
  writeU64(key, index, 9);
  return key;
}

/** A key of a space indexed by (shard, log index): the log, producers, refusals, markers. */
export function indexKey(space: number, shard: number, index: number): Buffer {
  const key = Buffer.allocUnsafe(17);
  key[0] = space;
  writeU64(key, shard, 1);
  writeU64(key, index, 9);
  return key;
}

export function arrivalKey(shard: number, arrivalMs: number, index: number): Buffer {
  const key = Buffer.allocUnsafe(25);
  key[0] = SPACE_ARRIVAL;
  writeU64(key, shard, 1);
  writeU64(key, arrivalMs, 9);
  writeU64(key, index, 17);
  return key;
}

export function arrivalKeyParts(key: Buffer): { arrivalMs: number; index: number } {
  return { arrivalMs: readU64(key, 9), index: readU64(key, 17) };
}

export function shardStateKey(shard: number, kind: number): Buffer {
  const key = Buffer.allocUnsafe(10);
  key[0] = SPACE_SHARD_STATE;
  writeU64(key, shard, 1);
  key[9] = kind;
  return key;
}

/** The first key after every key of `space` for `shard`: [prefix(space, shard), this) spans them. */
export function shardSpaceStart(space: number, shard: number): Buffer {
  const key = Buffer.allocUnsafe(9);
  key[0] = space;
  writeU64(key, shard, 1);
  return key;
}

export function shardSpaceEnd(space: number, shard: number): Buffer {
  return shardSpaceStart(space, shard + 1);
}

export function metadataKey(name: string): Buffer {
  return Buffer.concat([Buffer.of(SPACE_METADATA), Buffer.from(name, 'utf8')]);
}

export function metadataKeyName(key: Buffer): string {
  return key.subarray(1).toString('utf8');
}

export const METADATA_START = Buffer.of(SPACE_METADATA);
export const METADATA_END = Buffer.of(SPACE_METADATA + 1);

export const SEGMENT_CHECKPOINT_KEY = Buffer.of(SPACE_SEGMENTS, 0x63); // 'c'
const SEGMENT_SUMMARY = 0x67; // 'g'

export function segmentSummaryKey(segment: number): Buffer {
  const key = Buffer.allocUnsafe(10);
  key[0] = SPACE_SEGMENTS;
  key[1] = SEGMENT_SUMMARY;
  writeU64(key, segment, 2);
  return key;
}

export function segmentSummaryKeySegment(key: Buffer): number {
  return readU64(key, 2);
}

export const SEGMENT_SUMMARIES_START = Buffer.of(SPACE_SEGMENTS, SEGMENT_SUMMARY);
export const SEGMENT_SUMMARIES_END = Buffer.of(SPACE_SEGMENTS, SEGMENT_SUMMARY + 1);
