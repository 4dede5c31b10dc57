import type { LogPosition } from '../common/sequence-number.js';
import { StorageCorruptionError } from './entry-codec.js';
import { readU64, writeU64 } from './keys.js';

/**
 * The idempotent-producer table of one shard: for each producer id, its epoch, the last sequence
 * number applied, and where its last few batches are in the log. It is a pure, deterministic
 * function of the accepted batches in log order (each stamped with its entry's arrival time), so
 * every replica that applies the same log holds the same table, and a replica can rebuild it by
 * folding the accepted batches after its trim point onto the table at the trim point.
 *
 * Decisions are made at apply (never at propose): a retry proposed on a new leader while the
 * original is still in the log is caught because the original is applied first.
 *
 * Bounded: a producer not seen for `expiryMs` of arrival time is forgotten (decided as a new
 * producer), and beyond `maxProducers` the least recently seen goes. Both are pure functions of the
 * applied log, so they cannot make replicas disagree.
 */

export interface ProducerHeader {
  readonly producerId: number;
  readonly epoch: number;
  /** The sequence number of the batch's first record; record i has firstSequence + i. */
  readonly firstSequence: number;
}

export type ProducerDecision =
  | { readonly kind: 'accept' }
  /** Every record was applied before: where each one is (undefined: older than the window). */
  | { readonly kind: 'duplicate'; readonly positions: readonly (LogPosition | undefined)[] }
  /** A newer epoch of this producer id has written: this one is a zombie. */
  | { readonly kind: 'fenced'; readonly currentEpoch: number }
  /** Not the next sequence: an earlier batch is missing (or the batch overlaps applied ones). */
  | { readonly kind: 'outOfOrder'; readonly expectedSequence: number };

export interface ProducerTableLimits {
  readonly maxProducers: number;
  readonly expiryMs: number;
  /** Batches remembered per producer, to answer retries with their original positions. */
  readonly windowBatches: number;
}

/** Fixed for the cluster: every replica must decide alike. */
export const PRODUCER_TABLE_LIMITS: ProducerTableLimits = {
  maxProducers: 10_000,
  expiryMs: 24 * 60 * 60 * 1000,
  windowBatches: 8,
};

interface BatchRef {
  readonly firstSequence: number;
  readonly count: number;
  readonly index: number;
}

interface ProducerState {
  readonly epoch: number;
  readonly lastSequence: number;
  readonly lastArrivalMs: number;
  readonly batches: readonly BatchRef[];
}

const FORMAT_VERSION = 1;

export class ProducerTable {
  /** In order of last acceptance, oldest first (arrival times never go back, so also by time). */
  private readonly producers = new Map<number, ProducerState>();

  constructor(private readonly limits: ProducerTableLimits = PRODUCER_TABLE_LIMITS) {}

  get size(): number {
    return this.producers.size;
  }

  /** What applying a batch of `count` records with `header`, arriving at `arrivalMs`, means. */
  decide(header: ProducerHeader, count: number, arrivalMs: number): ProducerDecision {
    const state = this.producers.get(header.producerId);
    if (state === undefined || this.expired(state, arrivalMs)) return { kind: 'accept' };
    return decideFor(state, header, count);
  }

  /**
   * The decision for a shard that is sealed: nothing more can be applied, so a batch is either
   * wholly applied already (a duplicate), fenced, or not stored (the caller sends it to the
   * children). Expiry does not matter: what is in the table was applied.
   */
  decideSealed(header: ProducerHeader, count: number): ProducerDecision {
    const state = this.producers.get(header.producerId);
    if (state === undefined) return { kind: 'accept' };
    return decideFor(state, header, count);
  }

  /** A batch was accepted at log `index`. */
  record(header: ProducerHeader, count: number, index: number, arrivalMs: number): void {
    this.sweep(arrivalMs);
    const id = header.producerId;
    const previous = this.producers.get(id);
    const batch: BatchRef = { firstSequence: header.firstSequence, count, index };
    const continues = previous !== undefined && previous.epoch === header.epoch;
    const batches = continues ? [...previous.batches, batch] : [batch];
    if (batches.length > this.limits.windowBatches) batches.shift();
    this.producers.delete(id);
    this.producers.set(id, {
      epoch: header.epoch,
      lastSequence: header.firstSequence + count - 1,
      lastArrivalMs: arrivalMs,
      batches,
    });
    if (this.producers.size > this.limits.maxProducers) {
      this.producers.delete(this.producers.keys().next().value as number);
    }
  }

  clone(): ProducerTable {
    const copy = new ProducerTable(this.limits);
    for (const [id, state] of this.producers) copy.producers.set(id, state);
    return copy;
  }

  /** version u8 | count u32 | { id u64 | epoch u32 | last u64 | arrival u64 | n u8 | { first u64 | count u32 | index u64 } * n } * count */
  encode(): Buffer {
    let size = 5;
    for (const state of this.producers.values()) size += 29 + state.batches.length * 20;
    const out = Buffer.allocUnsafe(size);
    out[0] = FORMAT_VERSION;
    let o = out.writeUInt32BE(this.producers.size, 1);
    for (const [id, state] of this.producers) {
      o = writeU64(out, id, o);
      o = out.writeUInt32BE(state.epoch, o);
      o = writeU64(out, state.lastSequence, o);
      o = writeU64(out, state.lastArrivalMs, o);
      o = out.writeUInt8(state.batches.length, o);
      for (const batch of state.batches) {
        o = writeU64(out, batch.firstSequence, o);
        o = out.writeUInt32BE(batch.count, o);
        o = writeU64(out, batch.index, o);
      }
    }
    return out;
  }

  static decode(raw: Buffer, limits: ProducerTableLimits = PRODUCER_TABLE_LIMITS): ProducerTable {
    const fail = (why: string) => new StorageCorruptionError(`producer table: ${why}`);
    if (raw.length < 5 || raw[0] !== FORMAT_VERSION) throw fail('unknown format');
    const table = new ProducerTable(limits);
    const count = raw.readUInt32BE(1);
    let o = 5;
    for (let i = 0; i < count; i++) {
      if (o + 29 > raw.length) throw fail('truncated');
      const id = readU64(raw, o);
      const epoch = raw.readUInt32BE(o + 8);
      const lastSequence = readU64(raw, o + 12);
      const lastArrivalMs = readU64(raw, o + 20);
      const n = raw.readUInt8(o + 28);
      o += 29;
      if (o + n * 20 > raw.length) throw fail('truncated');
      const batches: BatchRef[] = [];
      for (let k = 0; k < n; k++, o += 20) {
        batches.push({
          firstSequence: readU64(raw, o),
          count: raw.readUInt32BE(o + 8),
          index: readU64(raw, o + 12),
        });
      }
      table.producers.set(id, { epoch, lastSequence, lastArrivalMs, batches });
    }
    if (o !== raw.length) throw fail(`${raw.length - o} trailing bytes`);
    return table;
  }

  private expired(state: ProducerState, arrivalMs: number): boolean {
    return arrivalMs - state.lastArrivalMs > this.limits.expiryMs;
  }

  /** Forgets expired producers: they sit at the front, being the least recently seen. */
  private sweep(arrivalMs: number): void {
    for (const [id, state] of this.producers) {
      if (!this.expired(state, arrivalMs)) return;
      this.producers.delete(id);
    }
  }
}

function decideFor(state: ProducerState, header: ProducerHeader, count: number): ProducerDecision {
  if (header.epoch < state.epoch) return { kind: 'fenced', currentEpoch: state.epoch };
  if (header.epoch > state.epoch) return { kind: 'accept' };
  if (header.firstSequence === state.lastSequence + 1) return { kind: 'accept' };
  if (header.firstSequence + count - 1 <= state.lastSequence) {
    return { kind: 'duplicate', positions: positionsOf(state, header.firstSequence, count) };
  }
  return { kind: 'outOfOrder', expectedSequence: state.lastSequence + 1 };
}

function positionsOf(
  state: ProducerState,
  firstSequence: number,
  count: number,
): (LogPosition | undefined)[] {
  const positions: (LogPosition | undefined)[] = [];
  for (let sequence = firstSequence; sequence < firstSequence + count; sequence++) {
    const batch = state.batches.find(
      (b) => b.firstSequence <= sequence && sequence < b.firstSequence + b.count,
    );
    positions.push(
      batch === undefined
        ? undefined
        : { index: batch.index, offset: sequence - batch.firstSequence },
    );
  }
  return positions;
}
