import { partitionKeyToHashKey } from '../common/hash-key.js';
import type { BrokerAddress, GetShardMapResponse } from '../gen/rheos/v1/cluster.js';

/**
 * The client's cache of where each shard lives: hash ranges, the brokers holding replicas and the
 * leader last heard of. Filled from GetShardMap, corrected by NOT_LEADER hints, dropped when a
 * broker stops answering. Bounded: at most `maxStreams` streams are remembered.
 */

export interface ShardRoute {
  readonly shardId: string;
  readonly start: bigint;
  readonly end: bigint;
  readonly open: boolean;
  readonly replicas: readonly BrokerAddress[];
  leader: BrokerAddress | undefined;
}

export interface StreamRoutes {
  readonly streamName: string;
  /** Open shards sorted by hash range, for routing writes. */
  readonly open: readonly ShardRoute[];
  readonly byId: ReadonlyMap<string, ShardRoute>;
  readonly fetchedMs: number;
}

export class ShardRoutes {
  private readonly streams = new Map<string, Promise<StreamRoutes>>();
  /** Streams whose next fetch must see the newest metadata (a shard was found sealed). */
  private readonly stale = new Set<string>();

  constructor(
    private readonly fetch: (streamName: string, refresh: boolean) => Promise<GetShardMapResponse>,
    private readonly maxStreams = 1000,
  ) {}

  get(streamName: string): Promise<StreamRoutes> {
    let routes = this.streams.get(streamName);
    if (routes === undefined) {
      routes = this.fetch(streamName, this.stale.delete(streamName)).then(build);
      // A failed fetch is not cached.
      routes.catch(() => {
        if (this.streams.get(streamName) === routes) this.streams.delete(streamName);
      });
      if (this.streams.size >= this.maxStreams) {
        const oldest = this.streams.keys().next().value as string;
        this.streams.delete(oldest);
      }
      this.streams.set(streamName, routes);
    }
    return routes;
  }

  /**
   * Forget a stream's routes: the next call fetches them again (`stale`: from the newest
   * metadata, because the answering broker's copy may be older than what the client saw).
   */
  invalidate(streamName: string, stale = false): void {
    this.streams.delete(streamName);
    if (stale) this.stale.add(streamName);
  }

  /** A NOT_LEADER answer named the leader. */
  async setLeader(streamName: string, shardId: string, leader: BrokerAddress): Promise<void> {
    const routes = await this.streams.get(streamName)?.catch(() => undefined);
    const route = routes?.byId.get(shardId);
    if (route !== undefined) route.leader = leader;
  }
}

function build(response: GetShardMapResponse): StreamRoutes {
  const all = response.shards.map((s): ShardRoute => ({
    shardId: s.shardId,
    start: BigInt(s.hashKeyStart),
    end: BigInt(s.hashKeyEnd),
    open: s.open,
    replicas: s.replicas,
    leader: s.leader,
  }));
  const open = all
    .filter((r) => r.open)
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  return {
    streamName: response.streamName,
    open,
    byId: new Map(all.map((r) => [r.shardId, r])),
    fetchedMs: Date.now(),
  };
}

/** The open shard owning a record, by explicit hash key or MD5 of its partition key. */
export function routeRecord(
  routes: StreamRoutes,
  record: { readonly partitionKey: string; readonly explicitHashKey?: string | undefined },
): ShardRoute | undefined {
  let hashKey: bigint;
  try {
    hashKey =
      record.explicitHashKey === undefined
        ? partitionKeyToHashKey(record.partitionKey)
        : BigInt(record.explicitHashKey);
  } catch {
    // Not a number: the server answers with the proper validation error.
    return undefined;
  }
  let lo = 0;
  let hi = routes.open.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const route = routes.open[mid] as ShardRoute;
    if (hashKey < route.start) hi = mid - 1;
    else if (hashKey > route.end) lo = mid + 1;
    else return route;
  }
  return undefined;
}

/** Where to send a shard's call: its leader if known, else its replicas in turn. */
export function endpointFor(route: ShardRoute, attempt: number): string | undefined {
  if (route.leader !== undefined) return route.leader.endpoint;
  if (route.replicas.length === 0) return undefined;
  return (route.replicas[attempt % route.replicas.length] as BrokerAddress).endpoint;
}
