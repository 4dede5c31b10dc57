import {
  RaftEntryType,
  RaftMessageType,
  RaftSnapshot,
  raftEntryTypeToNumber,
  raftMessageTypeToNumber,
  type GroupMessage,
  type RaftBatch,
  type RaftEntry,
  type RaftMessage,
} from '../gen/rheos/v1/peer.js';
import { assert } from '../common/assert.js';

/**
 * The peer streams' serializer: a RaftBatch wrapped as field 1 of RaftRequest / RaftResponse (the
 * four stream messages of PeerService share that shape), written in one pass into a Buffer of the
 * exact size. The generated encoder grew its buffer by doubling, sliced it at the end and was
 * copied once more into a Buffer: five copies of every entry per peer, the largest item in a
 * leader's profile at 500-record batches. This writes each entry's bytes once, and the bytes are
 * the generated encoder's exactly (same field order, defaults left out; test/broker/
 * peer-encoding.test.ts compares them), so the generated decoder reads them.
 */
export function encodePeerEnvelope(value: { readonly batch?: RaftBatch | undefined }): Buffer {
  const batch = value.batch;
  if (batch === undefined) return Buffer.alloc(0);
  const plan: Plan = { sizes: [], snapshots: [] };
  const batchSize = sizeOfBatch(batch, plan);
  const out = Buffer.allocUnsafe(1 + varintSize(batchSize) + batchSize);
  const w = new Writer(out, plan);
  w.key(1, LEN);
  w.varint(batchSize);
  w.batch(batch);
  assert(w.pos === out.length, 'peer encoding wrote the size it computed');
  return out;
}

const VARINT = 0;
const LEN = 2;

function varintSize(value: number): number {
  let n = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

/** A uint64 field (a JS number below 2^53): key and value, or nothing for 0. */
function uintField(value: number): number {
  return value === 0 ? 0 : 1 + varintSize(value);
}

function lenField(length: number): number {
  return 1 + varintSize(length) + length;
}

/**
 * What sizing leaves for the writer, in the order it needs them: sub-message sizes depth first
 * (each before those of its own children), and snapshots already encoded.
 */
interface Plan {
  readonly sizes: number[];
  readonly snapshots: Uint8Array[];
}

function sizeOfBatch(batch: RaftBatch, plan: Plan): number {
  let size = uintField(batch.fromBroker);
  if (batch.clusterId !== '') size += lenField(Buffer.byteLength(batch.clusterId));
  for (const gm of batch.messages) {
    const at = plan.sizes.push(0) - 1;
    const s = sizeOfGroupMessage(gm, plan);
    plan.sizes[at] = s;
    size += lenField(s);
  }
  return size;
}

function sizeOfGroupMessage(gm: GroupMessage, plan: Plan): number {
  let size = uintField(gm.group);
  if (gm.message !== undefined) {
    const at = plan.sizes.push(0) - 1;
    const s = sizeOfMessage(gm.message, plan);
    plan.sizes[at] = s;
    size += lenField(s);
  }
  return size;
}

function sizeOfMessage(m: RaftMessage, plan: Plan): number {
  let size = 0;
  if (m.type !== RaftMessageType.RAFT_MESSAGE_TYPE_UNSPECIFIED) {
    size += uintField(raftMessageTypeToNumber(m.type));
  }
  size += uintField(m.from) + uintField(m.to) + uintField(m.term);
  size += uintField(m.index) + uintField(m.logTerm);
  for (const e of m.entries) {
    const s = sizeOfEntry(e);
    plan.sizes.push(s);
    size += lenField(s);
  }
  size += uintField(m.commit);
  if (m.reject) size += 2;
  size += uintField(m.rejectHint);
  if (m.force) size += 2;
  if (m.context !== '') size += lenField(Buffer.byteLength(m.context));
  if (m.snapshot !== undefined) {
    // Rare (a follower far behind): the generated encoder does it.
    const bytes = RaftSnapshot.encode(m.snapshot).finish();
    plan.snapshots.push(bytes);
    size += lenField(bytes.length);
  }
  if (m.quiesce) size += 2;
  if (m.catchUp) size += 2;
  return size;
}

function sizeOfEntry(e: RaftEntry): number {
  let size = uintField(e.index) + uintField(e.term);
  if (e.type !== RaftEntryType.RAFT_ENTRY_TYPE_UNSPECIFIED) {
    size += uintField(raftEntryTypeToNumber(e.type));
  }
  if (e.data.length !== 0) size += lenField(e.data.length);
  return size;
}

class Writer {
  pos = 0;
  private nextSize = 0;
  private nextSnapshot = 0;

  constructor(
    private readonly out: Buffer,
    private readonly plan: Plan,
  ) {}

  key(field: number, wireType: number): void {
    // Every field number here is below 16: one byte.
    this.out[this.pos++] = (field << 3) | wireType;
  }

  varint(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, 'a uint64 below 2^53');
    while (value >= 128) {
      this.out[this.pos++] = (value % 128) | 128;
      value = Math.floor(value / 128);
    }
    this.out[this.pos++] = value;
  }

  uint(field: number, value: number): void {
    if (value === 0) return;
    this.key(field, VARINT);
    this.varint(value);
  }

  bool(field: number, value: boolean): void {
    if (!value) return;
    this.key(field, VARINT);
    this.out[this.pos++] = 1;
  }

  string(field: number, value: string): void {
    if (value === '') return;
    const length = Buffer.byteLength(value);
    this.key(field, LEN);
    this.varint(length);
    this.pos += this.out.write(value, this.pos, length, 'utf8');
  }

  bytes(field: number, value: Uint8Array): void {
    if (value.length === 0) return;
    this.key(field, LEN);
    this.varint(value.length);
    this.out.set(value, this.pos);
    this.pos += value.length;
  }

  /** The next sub-message's size, as sizing recorded it. */
  private size(field: number): void {
    this.key(field, LEN);
    this.varint(this.plan.sizes[this.nextSize++] as number);
  }

  batch(b: RaftBatch): void {
    this.uint(1, b.fromBroker);
    this.string(2, b.clusterId);
    for (const gm of b.messages) {
      this.size(3);
      this.uint(1, gm.group);
      if (gm.message !== undefined) {
        this.size(2);
        this.message(gm.message);
      }
    }
  }

  private message(m: RaftMessage): void {
    if (m.type !== RaftMessageType.RAFT_MESSAGE_TYPE_UNSPECIFIED) {
      this.uint(1, raftMessageTypeToNumber(m.type));
    }
    this.uint(2, m.from);
    this.uint(3, m.to);
    this.uint(4, m.term);
    this.uint(5, m.index);
    this.uint(6, m.logTerm);
    for (const e of m.entries) {
      this.size(7);
      this.uint(1, e.index);
      this.uint(2, e.term);
      if (e.type !== RaftEntryType.RAFT_ENTRY_TYPE_UNSPECIFIED) {
        this.uint(3, raftEntryTypeToNumber(e.type));
      }
      this.bytes(4, e.data);
    }
    this.uint(8, m.commit);
    this.bool(9, m.reject);
    this.uint(10, m.rejectHint);
    this.bool(11, m.force);
    this.string(12, m.context);
    if (m.snapshot !== undefined) {
      const bytes = this.plan.snapshots[this.nextSnapshot++];
      assert(bytes !== undefined, 'the snapshot was encoded while sizing');
      this.key(13, LEN);
      this.varint(bytes.length);
      this.out.set(bytes, this.pos);
      this.pos += bytes.length;
    }
    this.bool(14, m.quiesce);
    this.bool(15, m.catchUp);
  }
}
