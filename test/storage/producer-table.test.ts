import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StorageCorruptionError } from '../../src/storage/entry-codec.js';
import {
  PRODUCER_TABLE_LIMITS,
  ProducerTable,
  type ProducerDecision,
  type ProducerHeader,
  type ProducerTableLimits,
} from '../../src/storage/producer-table.js';

/**
 * The idempotent-producer table on its own: the decision rules (new producers, the next batch,
 * retries answered with their original positions, gaps and overlaps, zombie epochs, new epochs,
 * expiry by arrival time, the bound on producers), its encoding, and the property replicas rely
 * on: the table is a pure function of the accepted batches, so a copy decoded at any point of the
 * log and fed the rest decides, and ends up, exactly like the live table.
 */

const LIMITS: ProducerTableLimits = { maxProducers: 100, expiryMs: 1_000, windowBatches: 4 };

function h(producerId: number, epoch: number, firstSequence: number): ProducerHeader {
  return { producerId, epoch, firstSequence };
}

/** Decides a batch and records it if accepted (what applying an entry does). */
function apply(
  table: ProducerTable,
  header: ProducerHeader,
  count: number,
  index: number,
  arrivalMs: number,
): ProducerDecision {
  const decision = table.decide(header, count, arrivalMs);
  if (decision.kind === 'accept') table.record(header, count, index, arrivalMs);
  return decision;
}

describe('ProducerTable decisions', () => {
  it('accepts a producer it does not know at any sequence number, and nothing else changes', () => {
    const table = new ProducerTable(LIMITS);
    expect(table.size).toBe(0);
    expect(table.decide(h(7, 0, 0), 3, 0)).toEqual({ kind: 'accept' });
    expect(table.decide(h(7, 5, 123_456), 1, 0)).toEqual({ kind: 'accept' });
    // Deciding alone does not remember anything.
    expect(table.size).toBe(0);
    table.record(h(7, 5, 123_456), 2, 10, 0);
    expect(table.size).toBe(1);
    // Another producer id is still new.
    expect(table.decide(h(8, 0, 99), 1, 0)).toEqual({ kind: 'accept' });
  });

  it('accepts the next sequence number, and only that one', () => {
    const table = new ProducerTable(LIMITS);
    expect(apply(table, h(1, 0, 0), 3, 10, 0)).toEqual({ kind: 'accept' });
    expect(apply(table, h(1, 0, 3), 2, 11, 0)).toEqual({ kind: 'accept' });
    expect(apply(table, h(1, 0, 5), 1, 12, 0)).toEqual({ kind: 'accept' });
    expect(table.decide(h(1, 0, 6), 4, 0)).toEqual({ kind: 'accept' });
    expect(table.decide(h(1, 0, 7), 1, 0)).toEqual({ kind: 'outOfOrder', expectedSequence: 6 });
  });

  it('answers a retry of any batch in the window with the original position of every record', () => {
    const table = new ProducerTable(LIMITS);
    apply(table, h(1, 0, 0), 3, 10, 0); // 0 1 2 at entry 10
    apply(table, h(1, 0, 3), 2, 11, 0); // 3 4 at entry 11
    apply(table, h(1, 0, 5), 5, 14, 0); // 5..9 at entry 14
    expect(table.decide(h(1, 0, 0), 3, 1)).toEqual({
      kind: 'duplicate',
      positions: [
        { index: 10, offset: 0 },
        { index: 10, offset: 1 },
        { index: 10, offset: 2 },
      ],
    });
    expect(table.decide(h(1, 0, 3), 2, 1)).toEqual({
      kind: 'duplicate',
      positions: [
        { index: 11, offset: 0 },
        { index: 11, offset: 1 },
      ],
    });
    // The last batch, a part of a batch, and a range across batches.
    expect(table.decide(h(1, 0, 5), 5, 1)).toEqual({
      kind: 'duplicate',
      positions: [0, 1, 2, 3, 4].map((offset) => ({ index: 14, offset })),
    });
    expect(table.decide(h(1, 0, 7), 2, 1)).toEqual({
      kind: 'duplicate',
      positions: [
        { index: 14, offset: 2 },
        { index: 14, offset: 3 },
      ],
    });
    expect(table.decide(h(1, 0, 2), 4, 1)).toEqual({
      kind: 'duplicate',
      positions: [
        { index: 10, offset: 2 },
        { index: 11, offset: 0 },
        { index: 11, offset: 1 },
        { index: 14, offset: 0 },
      ],
    });
    // A duplicate is not recorded: the table still expects 10.
    expect(table.decide(h(1, 0, 10), 1, 1)).toEqual({ kind: 'accept' });
  });

  it('still calls a batch older than the window a duplicate, without positions', () => {
    const table = new ProducerTable({ ...LIMITS, windowBatches: 2 });
    apply(table, h(1, 0, 0), 2, 10, 0); // 0 1
    apply(table, h(1, 0, 2), 2, 11, 0); // 2 3
    apply(table, h(1, 0, 4), 2, 12, 0); // 4 5 (the window is now entries 11 and 12)
    expect(table.decide(h(1, 0, 0), 2, 0)).toEqual({
      kind: 'duplicate',
      positions: [undefined, undefined],
    });
    // Straddling the window's start: the old half has no position, the rest has.
    expect(table.decide(h(1, 0, 1), 2, 0)).toEqual({
      kind: 'duplicate',
      positions: [undefined, { index: 11, offset: 0 }],
    });
    expect(table.decide(h(1, 0, 4), 2, 0)).toEqual({
      kind: 'duplicate',
      positions: [
        { index: 12, offset: 0 },
        { index: 12, offset: 1 },
      ],
    });
  });

  it('refuses a batch that overlaps applied ones or skips ahead, naming the expected sequence', () => {
    const table = new ProducerTable(LIMITS);
    apply(table, h(1, 0, 0), 5, 10, 0); // 0..4
    // Overlap: starts inside what was applied but goes past it.
    expect(table.decide(h(1, 0, 3), 4, 0)).toEqual({ kind: 'outOfOrder', expectedSequence: 5 });
    expect(table.decide(h(1, 0, 0), 6, 0)).toEqual({ kind: 'outOfOrder', expectedSequence: 5 });
    // Gap.
    expect(table.decide(h(1, 0, 6), 1, 0)).toEqual({ kind: 'outOfOrder', expectedSequence: 5 });
    expect(table.decide(h(1, 0, 1_000), 3, 0)).toEqual({
      kind: 'outOfOrder',
      expectedSequence: 5,
    });
    // Refusals are not recorded.
    expect(table.decide(h(1, 0, 5), 1, 0)).toEqual({ kind: 'accept' });
  });

  it('fences an older epoch, retries included, once a newer epoch has written', () => {
    const table = new ProducerTable(LIMITS);
    apply(table, h(1, 3, 0), 2, 10, 0);
    expect(table.decide(h(1, 2, 2), 1, 0)).toEqual({ kind: 'fenced', currentEpoch: 3 });
    expect(apply(table, h(1, 4, 0), 1, 11, 0)).toEqual({ kind: 'accept' });
    // A retry of what epoch 3 stored is a zombie's too.
    expect(table.decide(h(1, 3, 0), 2, 0)).toEqual({ kind: 'fenced', currentEpoch: 4 });
    expect(table.decide(h(1, 0, 0), 1, 0)).toEqual({ kind: 'fenced', currentEpoch: 4 });
    // Fencing is per producer id.
    expect(table.decide(h(2, 0, 0), 1, 0)).toEqual({ kind: 'accept' });
  });

  it('starts over with a newer epoch: any sequence, and the old epoch forgotten', () => {
    const table = new ProducerTable(LIMITS);
    apply(table, h(1, 0, 0), 3, 10, 0); // 0 1 2
    apply(table, h(1, 0, 3), 3, 11, 0); // 3 4 5
    expect(apply(table, h(1, 1, 100), 2, 12, 0)).toEqual({ kind: 'accept' }); // 100 101
    expect(table.decide(h(1, 1, 102), 1, 0)).toEqual({ kind: 'accept' });
    expect(table.decide(h(1, 1, 105), 1, 0)).toEqual({
      kind: 'outOfOrder',
      expectedSequence: 102,
    });
    // Epoch 1's numbers below 100 are not epoch 0's batches: no positions are known for them.
    expect(table.decide(h(1, 1, 0), 3, 0)).toEqual({
      kind: 'duplicate',
      positions: [undefined, undefined, undefined],
    });
    expect(table.decide(h(1, 1, 100), 2, 0)).toEqual({
      kind: 'duplicate',
      positions: [
        { index: 12, offset: 0 },
        { index: 12, offset: 1 },
      ],
    });
    // An epoch that skips ahead is accepted as well.
    expect(table.decide(h(1, 9, 0), 1, 0)).toEqual({ kind: 'accept' });
  });

  it('forgets a producer not seen for more than expiryMs of arrival time', () => {
    const table = new ProducerTable(LIMITS); // expiry 1000
    apply(table, h(1, 5, 0), 2, 10, 10_000);
    // Exactly expiryMs later it is still known: a gap, a zombie and a retry are caught.
    expect(table.decide(h(1, 5, 9), 1, 11_000)).toEqual({
      kind: 'outOfOrder',
      expectedSequence: 2,
    });
    expect(table.decide(h(1, 4, 2), 1, 11_000)).toEqual({ kind: 'fenced', currentEpoch: 5 });
    expect(table.decide(h(1, 5, 0), 2, 11_000).kind).toBe('duplicate');
    // One millisecond more and it is a new producer: anything goes, an older epoch too.
    expect(table.decide(h(1, 5, 9), 1, 11_001)).toEqual({ kind: 'accept' });
    expect(table.decide(h(1, 4, 2), 1, 11_001)).toEqual({ kind: 'accept' });
    expect(table.decide(h(1, 5, 0), 2, 11_001)).toEqual({ kind: 'accept' });
    // Accepting it again starts its state afresh: epoch 4's next is 3, and nothing of epoch 5.
    expect(apply(table, h(1, 4, 2), 1, 20, 11_001)).toEqual({ kind: 'accept' });
    expect(table.decide(h(1, 4, 3), 1, 11_001)).toEqual({ kind: 'accept' });
    expect(table.decide(h(1, 4, 0), 1, 11_001)).toEqual({
      kind: 'duplicate',
      positions: [undefined],
    });
  });

  it('arrival time refreshes a producer only when it is accepted, and expired producers are swept', () => {
    const table = new ProducerTable(LIMITS);
    apply(table, h(1, 0, 0), 1, 10, 0);
    apply(table, h(2, 0, 0), 1, 11, 500);
    // A duplicate of producer 1 at 900 does not keep it alive.
    expect(apply(table, h(1, 0, 0), 1, 12, 900).kind).toBe('duplicate');
    expect(table.decide(h(1, 0, 7), 1, 1_001)).toEqual({ kind: 'accept' });
    // Recording anything at 1001 sweeps producer 1 (last seen at 0), not producer 2 (500).
    apply(table, h(3, 0, 0), 1, 13, 1_001);
    expect(table.size).toBe(2);
    expect(table.decideSealed(h(1, 0, 7), 1)).toEqual({ kind: 'accept' });
    expect(table.decideSealed(h(2, 0, 7), 1)).toEqual({ kind: 'outOfOrder', expectedSequence: 1 });
  });

  it('keeps at most maxProducers, dropping the least recently seen', () => {
    const table = new ProducerTable({ ...LIMITS, maxProducers: 2 });
    apply(table, h(1, 0, 0), 1, 10, 0);
    apply(table, h(2, 0, 0), 1, 11, 1);
    apply(table, h(1, 0, 1), 1, 12, 2); // producer 1 is now the most recently seen
    apply(table, h(3, 0, 0), 1, 13, 3); // producer 2 goes
    expect(table.size).toBe(2);
    expect(table.decide(h(2, 0, 50), 1, 3)).toEqual({ kind: 'accept' });
    expect(table.decide(h(1, 0, 50), 1, 3)).toEqual({ kind: 'outOfOrder', expectedSequence: 2 });
    expect(table.decide(h(3, 0, 50), 1, 3)).toEqual({ kind: 'outOfOrder', expectedSequence: 1 });
  });

  it('decides for a sealed shard from what was applied, whatever the time', () => {
    const table = new ProducerTable(LIMITS);
    apply(table, h(1, 2, 0), 2, 10, 0);
    expect(table.decideSealed(h(1, 2, 0), 2)).toEqual({
      kind: 'duplicate',
      positions: [
        { index: 10, offset: 0 },
        { index: 10, offset: 1 },
      ],
    });
    expect(table.decideSealed(h(1, 1, 2), 1)).toEqual({ kind: 'fenced', currentEpoch: 2 });
    expect(table.decideSealed(h(1, 2, 2), 1)).toEqual({ kind: 'accept' });
    expect(table.decideSealed(h(1, 2, 3), 1)).toEqual({ kind: 'outOfOrder', expectedSequence: 2 });
    expect(table.decideSealed(h(9, 0, 0), 1)).toEqual({ kind: 'accept' });
  });

  it('uses cluster-wide limits by default', () => {
    expect(PRODUCER_TABLE_LIMITS).toEqual({
      maxProducers: 10_000,
      expiryMs: 24 * 60 * 60 * 1000,
      windowBatches: 8,
    });
    const table = new ProducerTable();
    for (let k = 0; k < 10; k++) apply(table, h(1, 0, 2 * k), 2, 100 + k, 0);
    // Eight batches are remembered: the first two (sequence 0..3) have no positions.
    const retry = table.decide(h(1, 0, 0), 20, 0);
    expect(retry.kind).toBe('duplicate');
    const positions = retry.kind === 'duplicate' ? retry.positions : [];
    expect(positions.slice(0, 4)).toEqual([undefined, undefined, undefined, undefined]);
    expect(positions[4]).toEqual({ index: 102, offset: 0 });
    expect(positions[19]).toEqual({ index: 109, offset: 1 });
  });
});

describe('ProducerTable encoding', () => {
  function sample(): ProducerTable {
    const table = new ProducerTable(LIMITS);
    apply(table, h(1, 0, 0), 3, 10, 100);
    apply(table, h(2 ** 40 + 3, 2 ** 32 - 1, 2 ** 52), 7, 11, 150);
    apply(table, h(1, 0, 3), 1, 12, 200);
    apply(table, h(5, 1, 0), 65_536, 2 ** 50, 2 ** 45);
    return table;
  }

  it('an empty table encodes to five bytes and back', () => {
    const raw = new ProducerTable(LIMITS).encode();
    expect(raw).toEqual(Buffer.from([1, 0, 0, 0, 0]));
    expect(ProducerTable.decode(raw, LIMITS).size).toBe(0);
  });

  it('decode(encode(t)) encodes to the same bytes and decides the same', () => {
    const table = sample();
    const raw = table.encode();
    const copy = ProducerTable.decode(raw, LIMITS);
    expect(copy.size).toBe(table.size);
    expect(copy.encode().equals(raw)).toBe(true);
    const probes: Array<[ProducerHeader, number, number]> = [
      [h(1, 0, 0), 4, 300],
      [h(1, 0, 4), 1, 300],
      [h(1, 0, 9), 1, 300],
      [h(2 ** 40 + 3, 2 ** 32 - 1, 2 ** 52 + 2), 2, 300],
      [h(2 ** 40 + 3, 7, 0), 1, 300],
      [h(5, 1, 65_535), 1, 300],
      [h(1, 0, 9), 1, 1_101], // expired by then
    ];
    for (const [header, count, at] of probes) {
      expect(copy.decide(header, count, at)).toEqual(table.decide(header, count, at));
      expect(copy.decideSealed(header, count)).toEqual(table.decideSealed(header, count));
    }
    // The least-recently-seen order survives too: with room for no more, the same one goes.
    const a = ProducerTable.decode(raw, { ...LIMITS, maxProducers: 3 });
    const b = ProducerTable.decode(raw, { ...LIMITS, maxProducers: 3 });
    a.record(h(77, 0, 0), 1, 2 ** 50 + 1, 2 ** 45);
    b.record(h(77, 0, 0), 1, 2 ** 50 + 1, 2 ** 45);
    expect(a.encode().equals(b.encode())).toBe(true);
    expect(a.decide(h(2 ** 40 + 3, 0, 0), 1, 2 ** 45)).toEqual({ kind: 'accept' });
    expect(a.decide(h(1, 0, 9), 1, 2 ** 45).kind).toBe('accept');
  });

  it('a clone is independent of the original', () => {
    const table = sample();
    const before = table.encode();
    const copy = table.clone();
    copy.record(h(1, 0, 4), 1, 2 ** 50 + 1, 2 ** 45);
    copy.record(h(99, 0, 0), 1, 2 ** 50 + 2, 2 ** 45);
    expect(table.encode().equals(before)).toBe(true);
    expect(copy.encode().equals(before)).toBe(false);
    expect(table.decide(h(1, 0, 4), 1, 300)).toEqual({ kind: 'accept' });
    expect(copy.decide(h(1, 0, 4), 1, 2 ** 45).kind).toBe('duplicate');
  });

  it('refuses bytes it cannot read as corruption', () => {
    const raw = sample().encode();
    const bad = Buffer.from(raw);
    bad[0] = 2;
    expect(() => ProducerTable.decode(bad, LIMITS)).toThrow(StorageCorruptionError);
    expect(() => ProducerTable.decode(Buffer.alloc(0), LIMITS)).toThrow(StorageCorruptionError);
    expect(() => ProducerTable.decode(raw.subarray(0, raw.length - 1), LIMITS)).toThrow(
      /truncated/,
    );
    expect(() => ProducerTable.decode(raw.subarray(0, 20), LIMITS)).toThrow(/truncated/);
    expect(() => ProducerTable.decode(Buffer.concat([raw, Buffer.of(0)]), LIMITS)).toThrow(
      /trailing/,
    );
    // A count larger than what follows.
    const more = Buffer.from(raw);
    more.writeUInt32BE(5, 1);
    expect(() => ProducerTable.decode(more, LIMITS)).toThrow(StorageCorruptionError);
  });
});

// ---------------------------------------------------------------------------------------------
// The replay property.

type Move =
  | { kind: 'next'; count: number }
  | { kind: 'retry'; pick: number }
  | { kind: 'partialRetry'; pick: number; skip: number }
  | { kind: 'gap'; by: number; count: number }
  | { kind: 'overlap'; back: number; count: number }
  | { kind: 'newEpoch'; start: number; count: number }
  | { kind: 'zombie'; count: number };

interface Step {
  readonly producer: number;
  readonly move: Move;
  /** Arrival time advances by this much before the batch. */
  readonly dt: number;
}

const moveArb: fc.Arbitrary<Move> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant('next'), count: fc.integer({ min: 1, max: 4 }) }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('retry'), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('partialRetry'), pick: fc.nat(), skip: fc.nat(3) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('gap'),
      by: fc.integer({ min: 1, max: 3 }),
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('overlap'),
      back: fc.integer({ min: 1, max: 3 }),
      count: fc.integer({ min: 2, max: 5 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('newEpoch'),
      start: fc.nat(20),
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('zombie'), count: fc.integer({ min: 1, max: 3 }) }),
  },
) as fc.Arbitrary<Move>;

const stepArb: fc.Arbitrary<Step> = fc.record({
  producer: fc.nat(4),
  move: moveArb,
  // Mostly small steps; now and then one past the expiry of everything.
  dt: fc.oneof({ weight: 8, arbitrary: fc.nat(300) }, { weight: 1, arbitrary: fc.constant(1_500) }),
});

interface Batch {
  readonly header: ProducerHeader;
  readonly count: number;
  readonly index: number;
  readonly arrivalMs: number;
  readonly decision: ProducerDecision;
}

/** The client side of a producer: its epoch, its next number, the batches it sent. */
interface Client {
  epoch: number;
  next: number;
  sent: Array<{ header: ProducerHeader; count: number }>;
}

/**
 * Turns steps into batches at log indexes 1, 2, ... and applies them to `table`; `after` sees the
 * table after each batch.
 */
function run(
  table: ProducerTable,
  steps: readonly Step[],
  after: (table: ProducerTable) => void = () => undefined,
): Batch[] {
  const clients = new Map<number, Client>();
  const out: Batch[] = [];
  let now = 1_000;
  steps.forEach((step, i) => {
    now += step.dt;
    const client = clients.get(step.producer) ?? { epoch: 1, next: 0, sent: [] };
    clients.set(step.producer, client);
    const move = step.move;
    let header: ProducerHeader;
    let count: number;
    const sent =
      client.sent[
        move.kind === 'retry' || move.kind === 'partialRetry'
          ? move.pick % Math.max(1, client.sent.length)
          : 0
      ];
    switch (move.kind) {
      case 'retry':
        header = sent?.header ?? h(step.producer, client.epoch, client.next);
        count = sent?.count ?? 1;
        break;
      case 'partialRetry': {
        const base = sent ?? { header: h(step.producer, client.epoch, client.next), count: 1 };
        const skip = Math.min(move.skip, base.count - 1);
        header = { ...base.header, firstSequence: base.header.firstSequence + skip };
        count = base.count - skip;
        break;
      }
      case 'gap':
        header = h(step.producer, client.epoch, client.next + move.by);
        count = move.count;
        break;
      case 'overlap':
        header = h(step.producer, client.epoch, Math.max(0, client.next - move.back));
        count = move.count;
        break;
      case 'newEpoch':
        client.epoch++;
        client.next = move.start;
        header = h(step.producer, client.epoch, client.next);
        count = move.count;
        break;
      case 'zombie':
        header = h(step.producer, Math.max(0, client.epoch - 1), client.next);
        count = move.count;
        break;
      case 'next':
        header = h(step.producer, client.epoch, client.next);
        count = move.count;
        break;
    }
    const index = i + 1;
    const decision = apply(table, header, count, index, now);
    if (decision.kind === 'accept' && header.epoch === client.epoch) {
      client.next = Math.max(client.next, header.firstSequence + count);
    }
    client.sent.push({ header, count });
    out.push({ header, count, index, arrivalMs: now, decision });
    after(table);
  });
  return out;
}

describe('ProducerTable replay', () => {
  const limits: ProducerTableLimits = { maxProducers: 3, expiryMs: 1_000, windowBatches: 3 };

  it('a copy decoded at any point, fed the rest of the log, decides and ends up like the live table', () => {
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 60 }), (steps) => {
        // The live table, with its encoding after every prefix of the log (a trim point there).
        const live = new ProducerTable(limits);
        const prefixes: Buffer[] = [live.encode()];
        const batches = run(live, steps, (t) => prefixes.push(t.encode()));
        for (const b of batches) seen.set(b.decision.kind, (seen.get(b.decision.kind) ?? 0) + 1);
        const final = live.encode();
        for (let k = 0; k < prefixes.length; k++) {
          // A replica that installed the snapshot at k and applies entries k+1.. itself.
          const deciding = ProducerTable.decode(prefixes[k] as Buffer, limits);
          // A replica that restarts: folds the accepted batches (P keys) without deciding.
          const folding = ProducerTable.decode(prefixes[k] as Buffer, limits);
          for (const b of batches.slice(k)) {
            expect(deciding.decide(b.header, b.count, b.arrivalMs)).toEqual(b.decision);
            if (b.decision.kind === 'accept') {
              deciding.record(b.header, b.count, b.index, b.arrivalMs);
              folding.record(b.header, b.count, b.index, b.arrivalMs);
            }
          }
          expect(deciding.encode().equals(final)).toBe(true);
          expect(folding.encode().equals(final)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
    // The generator reaches every kind of decision, or the property would prove little.
    for (const kind of ['accept', 'duplicate', 'outOfOrder', 'fenced']) {
      expect(seen.get(kind) ?? 0, kind).toBeGreaterThan(20);
    }
  });

  it('the same batches in the same order give the same table on every replica', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 40 }), (steps) => {
        const a = new ProducerTable(limits);
        const b = new ProducerTable(limits);
        const da = run(a, steps).map((x) => x.decision);
        const db = run(b, steps).map((x) => x.decision);
        expect(db).toEqual(da);
        expect(b.encode().equals(a.encode())).toBe(true);
        expect(a.size).toBeLessThanOrEqual(limits.maxProducers);
      }),
      { numRuns: 100 },
    );
  });
});
