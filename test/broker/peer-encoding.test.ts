import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodePeerEnvelope } from '../../src/broker/peer-encoding.js';
import {
  RaftEntryType,
  RaftMessageType,
  RaftRequest,
  RaftResponse,
  type RaftBatch,
  type RaftMessage,
} from '../../src/gen/rheos/v1/peer.js';

/** Numbers as the wire carries them: small, around varint boundaries, and up to 2^53 - 1. */
const uint = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 0, max: 300 }),
  fc.constantFrom(127, 128, 16_383, 16_384, 2 ** 31 - 1, 2 ** 32, 2 ** 35, Number.MAX_SAFE_INTEGER),
  fc.maxSafeNat(),
);
const messageTypes = Object.values(RaftMessageType).filter((t) => t !== 'UNRECOGNIZED');
const entryTypes = Object.values(RaftEntryType).filter((t) => t !== 'UNRECOGNIZED');

const entry = fc.record({
  index: uint,
  term: uint,
  type: fc.constantFrom(...entryTypes),
  data: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
});

const snapshot = fc.record({
  index: uint,
  term: uint,
  confState: fc.option(
    fc.record({
      voters: fc.array(uint, { maxLength: 4 }),
      learners: fc.array(uint, { maxLength: 2 }),
      removed: fc.array(uint, { maxLength: 2 }),
    }),
    { nil: undefined },
  ),
  data: fc.uint8Array({ maxLength: 100 }).map((a) => Buffer.from(a)),
});

const message: fc.Arbitrary<RaftMessage> = fc
  .record({
    type: fc.constantFrom(...messageTypes),
    from: uint,
    to: uint,
    term: uint,
    index: uint,
    logTerm: uint,
    entries: fc.array(entry, { maxLength: 5 }),
    commit: uint,
    reject: fc.boolean(),
    rejectHint: uint,
    force: fc.boolean(),
    context: fc.string({ unit: 'grapheme', maxLength: 20 }),
    snapshot: fc.option(snapshot, { nil: undefined }),
    quiesce: fc.boolean(),
    catchUp: fc.boolean(),
  })
  .map((m) => {
    const { snapshot: s, ...rest } = m;
    return s === undefined ? rest : { ...rest, snapshot: s };
  });

const batch: fc.Arbitrary<RaftBatch> = fc.record({
  fromBroker: uint,
  clusterId: fc.string({ unit: 'grapheme', maxLength: 12 }),
  messages: fc.array(
    fc
      .record({ group: uint, message: fc.option(message, { nil: undefined }) })
      .map(({ group, message: m }) => (m === undefined ? { group } : { group, message: m })),
    { maxLength: 6 },
  ),
});

describe('the peer streams’ one-pass encoder', () => {
  it('writes exactly the bytes of the generated encoder, for requests and responses alike', () => {
    fc.assert(
      fc.property(batch, (b) => {
        const ours = encodePeerEnvelope({ batch: b });
        expect(ours).toEqual(Buffer.from(RaftRequest.encode({ batch: b }).finish()));
        expect(ours).toEqual(Buffer.from(RaftResponse.encode({ batch: b }).finish()));
        expect(RaftRequest.decode(ours)).toEqual(
          RaftRequest.decode(RaftRequest.encode({ batch: b }).finish()),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('encodes an envelope without a batch as an empty message', () => {
    expect(encodePeerEnvelope({})).toEqual(Buffer.alloc(0));
  });
});
