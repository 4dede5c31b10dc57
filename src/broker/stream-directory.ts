import { partitionKeyToHashKey } from '../common/hash-key.js';
import {
  isOpen,
  type MetadataState,
  type ShardRecord,
  type StreamRecord,
} from '../coordinator/model.js';

/**
 * Lookups the data plane needs on every call, derived once per metadata version: streams by
 * incarnation (iterators name streams that way), shards by id and by incarnation, and the
 * hash-key router of each stream's open shards.
 */

interface OpenShardRange {
  readonly start: bigint;
  readonly end: bigint;
  readonly shard: ShardRecord;
}

export class ShardRouter {
  private readonly ranges: OpenShardRange[];

  constructor(stream: StreamRecord) {
    this.ranges = stream.shards
      .filter(isOpen)
      .map((shard) => ({ start: BigInt(shard.hashKeyStart), end: BigInt(shard.hashKeyEnd), shard }))
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  /** The open shard owning `hashKey`; the open shards of a stream always cover the whole space. */
  route(hashKey: bigint): ShardRecord | undefined {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const range = this.ranges[mid] as OpenShardRange;
      if (hashKey < range.start) hi = mid - 1;
      else if (hashKey > range.end) lo = mid + 1;
      else return range.shard;
    }
    return undefined;
  }

  routePartitionKey(partitionKey: string): ShardRecord | undefined {
    return this.route(partitionKeyToHashKey(partitionKey));
  }
}

export interface ShardLocation {
  readonly stream: StreamRecord;
  readonly shard: ShardRecord;
}

export class StreamDirectory {
  private readonly byShardIncarnation = new Map<number, ShardLocation>();
  private readonly byStreamIncarnation = new Map<number, StreamRecord>();
  private readonly routers = new WeakMap<StreamRecord, ShardRouter>();

  constructor(readonly state: MetadataState) {
    for (const stream of state.streams.values()) {
      this.byStreamIncarnation.set(stream.incarnation, stream);
      for (const shard of stream.shards)
        this.byShardIncarnation.set(shard.incarnation, { stream, shard });
    }
  }

  stream(name: string): StreamRecord | undefined {
    return this.state.streams.get(name);
  }

  streamByIncarnation(incarnation: number): StreamRecord | undefined {
    return this.byStreamIncarnation.get(incarnation);
  }

  shardByIncarnation(incarnation: number): ShardLocation | undefined {
    return this.byShardIncarnation.get(incarnation);
  }

  router(stream: StreamRecord): ShardRouter {
    let router = this.routers.get(stream);
    if (router === undefined) {
      router = new ShardRouter(stream);
      this.routers.set(stream, router);
    }
    return router;
  }
}
