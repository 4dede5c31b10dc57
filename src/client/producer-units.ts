/**
 * How the producer turns queued user records into the Kinesis records it sends ("units"): one
 * record each, or, with aggregation, consecutive small records of one shard packed into a KPL
 * aggregate (kpl-aggregation.ts). A unit is what a shard numbers and stores as one record.
 */

import { assert } from '../common/assert.js';
import { ValidationError } from '../common/errors.js';
import { RECORD_MAX_SIZE_BYTES } from '../common/limits.js';
import { AggregateSizer, encodeAggregate } from './kpl-aggregation.js';

export interface UnitEntry {
  readonly partitionKey: string;
  readonly data: Buffer;
  readonly explicitHashKey?: string;
}

export interface UnitMember {
  readonly entry: UnitEntry;
  readonly hashKey: bigint;
  /** Data plus partition key, as Kinesis counts a record. */
  readonly sizeBytes: number;
}

export interface Unit<M extends UnitMember> {
  readonly members: readonly M[];
  /** The record sent. */
  readonly entry: UnitEntry;
  readonly sizeBytes: number;
  /** A KPL aggregate: member i has sub-sequence number i. */
  readonly aggregated: boolean;
}

export interface Packer {
  /**
   * Takes the next unit off the front of `queue` if one fits in `maxBytes`, else undefined and
   * the queue is left as it was.
   */
  take<M extends UnitMember>(queue: M[], maxBytes: number): Unit<M> | undefined;
}

export interface PackerOptions {
  /** Pack into KPL aggregates of at most this many bytes (KPL's AggregationMaxSize). */
  readonly aggregateMaxBytes?: number;
}

/** One record per unit. */
const single: Packer = {
  take<M extends UnitMember>(queue: M[], maxBytes: number): Unit<M> | undefined {
    const first = queue[0];
    if (first === undefined || first.sizeBytes > maxBytes) return undefined;
    queue.shift();
    return { members: [first], entry: first.entry, sizeBytes: first.sizeBytes, aggregated: false };
  },
};

/**
 * Consecutive members packed into KPL aggregates (what the KPL does with AggregationEnabled): the
 * queue of a lane holds records of one shard, so taking from its front keeps their order, and
 * member i of an aggregate is sub-sequence number i. An aggregate grows while its encoded length
 * stays within `aggregateMaxBytes` and, counted as Kinesis counts a record (data plus partition
 * key), within both the caller's budget and the 1 MiB record limit. A unit that would hold one
 * member is sent plain, as the KPL sends a lone record: readers see no difference and it saves
 * the 20 bytes of framing.
 *
 * The aggregate goes out under the first member's partition key, with the first member's hash
 * key as its explicit hash key: the server routes it (and checks it belongs) by that key, so it
 * lands on the shard the lane was packed for, whatever the other members' keys hash to.
 */
function aggregating(aggregateMaxBytes: number): Packer {
  return {
    take<M extends UnitMember>(queue: M[], maxBytes: number): Unit<M> | undefined {
      const first = queue[0];
      if (first === undefined) return undefined;
      const outerKeyBytes = Buffer.byteLength(first.entry.partitionKey, 'utf8');
      // Limits on the aggregate's data length: its own, and the record's size within budget.
      const maxDataBytes = Math.min(
        aggregateMaxBytes,
        maxBytes - outerKeyBytes,
        RECORD_MAX_SIZE_BYTES - outerKeyBytes,
      );
      const sizer = new AggregateSizer();
      let count = 0;
      // Bounded by the queue; stops at the first member that does not fit (order is kept).
      while (count < queue.length) {
        const next = (queue[count] as M).entry;
        if (sizer.sizeBytes + sizer.costBytes(next) > maxDataBytes) break;
        sizer.add(next);
        count++;
      }
      if (count < 2) {
        if (first.sizeBytes > maxBytes) return undefined;
        queue.shift();
        return {
          members: [first],
          entry: first.entry,
          sizeBytes: first.sizeBytes,
          aggregated: false,
        };
      }
      const members = queue.splice(0, count);
      const data = encodeAggregate(members.map((m) => m.entry));
      assert(data.length === sizer.sizeBytes, 'the aggregate has the size it was packed to');
      return {
        members,
        entry: {
          partitionKey: first.entry.partitionKey,
          data,
          explicitHashKey: first.hashKey.toString(),
        },
        sizeBytes: data.length + outerKeyBytes,
        aggregated: true,
      };
    },
  };
}

export function createPacker(options: PackerOptions = {}): Packer {
  const { aggregateMaxBytes } = options;
  if (aggregateMaxBytes === undefined) return single;
  if (!Number.isSafeInteger(aggregateMaxBytes) || aggregateMaxBytes < 1) {
    throw new ValidationError(
      `The aggregate size limit must be a positive whole number of bytes, not ${aggregateMaxBytes}.`,
    );
  }
  return aggregating(aggregateMaxBytes);
}
