/**
 * How the producer turns queued user records into the Kinesis records it sends ("units"): one
 * record each, or, with aggregation, consecutive small records of one shard packed into a KPL
 * aggregate (kpl-aggregation.ts). A unit is what a shard numbers and stores as one record.
 */

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

export function createPacker(options: PackerOptions = {}): Packer {
  return options.aggregateMaxBytes === undefined ? single : single;
}
