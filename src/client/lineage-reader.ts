import type { ChildShard, Shard } from '../gen/rheos/v1/stream.js';
import type { RheosClient } from './client.js';
import type { UserRecord } from './kpl-aggregation.js';
import { pollShard, type ShardReadClient, type StartPosition } from './shard-poller.js';

/**
 * Reads a whole stream in lineage order, as the KCL does: the shards without a listed parent
 * first, each read with `pollShard`; when a shard ends (a closed shard read to its empty next
 * iterator) its ChildShards are learned, and each child starts once every one of its parents has
 * ended. So for any partition key, the records of a parent come out before those of its
 * children, and shards made by later splits and merges are found as the reading goes.
 *
 * Shards are read concurrently, each by its own poller, into one small bounded queue: a poller
 * waits while the queue is full, so memory is bounded by the queue plus one GetRecords answer per
 * shard being read, however slow the consumer.
 *
 * `from: LATEST` applies to the shards open when the reading starts: closed ones are skipped, and
 * children found later are read from their trim horizon (nothing written after the start is
 * missed). `follow: false` reads every open shard to its current end and then stops (closed
 * shards are always read to their end); a child whose parents were not all read to their end is
 * not started.
 *
 * `from: AT_TIMESTAMP` starts each root shard (no listed parent) at the timestamp. A child of
 * ended parents starts at its trim horizon, as with TRIM_HORIZON, once a parent has yielded a
 * record (the reading has reached the timestamp, and everything in the child is newer); a child
 * whose parents yielded nothing (all they held was older, or they expired) starts at the
 * timestamp itself, or it would yield records older than the timestamp.
 *
 * Records are KPL-deaggregated by default (see `pollShard`); each shard's GetRecords calls are
 * paced by `minCallIntervalMs`.
 */

/** The calls the reader makes: a RheosClient, or a stand-in for one in tests. */
export type LineageClient = ShardReadClient & Pick<RheosClient, 'listShards'>;

export interface LineageItem {
  readonly shardId: string;
  readonly record: UserRecord;
}

export type LineageStart =
  | { readonly type: 'TRIM_HORIZON' }
  | { readonly type: 'LATEST' }
  | { readonly type: 'AT_TIMESTAMP'; readonly timestampMs: number };

export interface LineageReaderOptions {
  readonly client: LineageClient;
  readonly streamName: string;
  readonly from: LineageStart;
  /** Keep reading once caught up, following new children (default true). */
  readonly follow?: boolean;
  readonly signal?: AbortSignal;
  /** Poll interval of a shard that is caught up (default: the poller's). */
  readonly idlePollMs?: number;
  /** GetRecords limit per call (default: the server's). */
  readonly limit?: number;
  /** Records read ahead of the consumer, all shards together (default 256). */
  readonly bufferSize?: number;
  /** Yield the user records of KPL aggregates (default true; see `pollShard`). */
  readonly deaggregate?: boolean;
  /** Least time between two GetRecords calls of one shard (default: the poller's, 200). */
  readonly minCallIntervalMs?: number;
  /**
   * Reads one shard instead of `pollShard` (the fan-out consumer subscribes to it). It must call
   * `onEnd` with the children once a closed shard has been read to its end, and stop on `signal`.
   */
  readonly readShard?: (args: ShardReadArgs) => AsyncIterable<UserRecord>;
}

export interface ShardReadArgs {
  readonly shardId: string;
  readonly from: StartPosition;
  /** Keep reading once caught up (false: stop at the shard's current end). */
  readonly follow: boolean;
  readonly signal: AbortSignal;
  readonly onEnd: (childShards: readonly ChildShard[]) => void;
}

type ShardState = 'waiting' | 'reading' | 'ended' | 'stopped';

interface TrackedShard {
  /** Parents that must end before this shard starts. */
  readonly parents: readonly string[];
  /** Listed as closed: read to its end even with `follow: false`. */
  readonly closed: boolean;
  state: ShardState;
  /**
   * From AT_TIMESTAMP: the reading of this shard is past the timestamp (it started at its trim
   * horizon, or yielded a record), so its children start at their trim horizon.
   */
  reached?: boolean;
}

const DEFAULT_BUFFER = 256;

export async function* readLineage(options: LineageReaderOptions): AsyncGenerator<LineageItem> {
  const { client, streamName } = options;
  const follow = options.follow ?? true;
  const capacity = Math.max(1, options.bufferSize ?? DEFAULT_BUFFER);

  const stop = new AbortController();
  const onOuterAbort = () => stop.abort();
  if (options.signal?.aborted) stop.abort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });

  const shards = new Map<string, TrackedShard>();
  const tasks = new Set<Promise<void>>();
  const queue: LineageItem[] = [];
  const spaceWaiters: Array<() => void> = [];
  let consumerWaiter: (() => void) | undefined;
  let failure: { error: unknown } | undefined;

  const wakeConsumer = () => {
    const wake = consumerWaiter;
    consumerWaiter = undefined;
    wake?.();
  };
  const wakeAll = () => {
    for (const wake of spaceWaiters.splice(0)) wake();
    wakeConsumer();
  };
  stop.signal.addEventListener('abort', wakeAll, { once: true });

  const push = async (item: LineageItem): Promise<void> => {
    while (queue.length >= capacity && !stop.signal.aborted) {
      await new Promise<void>((resolve) => spaceWaiters.push(resolve));
    }
    if (stop.signal.aborted) return;
    queue.push(item);
    wakeConsumer();
  };

  const track = (shardId: string, shard: TrackedShard) => {
    if (!shards.has(shardId)) shards.set(shardId, shard);
  };

  const start = (shardId: string, shard: TrackedShard, from: StartPosition) => {
    shard.state = 'reading';
    if (from.type === 'TRIM_HORIZON') shard.reached = true;
    let children: readonly ChildShard[] | undefined;
    const task = (async () => {
      const onEnd = (childShards: readonly ChildShard[]) => (children = childShards);
      const records =
        options.readShard?.({
          shardId,
          from,
          follow: follow || shard.closed,
          signal: stop.signal,
          onEnd,
        }) ??
        pollShard({
          client,
          streamName,
          shardId,
          from,
          follow: follow || shard.closed,
          signal: stop.signal,
          ...(options.idlePollMs === undefined ? {} : { idlePollMs: options.idlePollMs }),
          ...(options.limit === undefined ? {} : { limit: options.limit }),
          ...(options.deaggregate === undefined ? {} : { deaggregate: options.deaggregate }),
          ...(options.minCallIntervalMs === undefined
            ? {}
            : { minCallIntervalMs: options.minCallIntervalMs }),
          onEnd,
        });
      for await (const record of records) {
        shard.reached = true;
        await push({ shardId, record });
        if (stop.signal.aborted) return;
      }
    })()
      .then(
        () => {
          if (stop.signal.aborted) return;
          if (children === undefined) {
            shard.state = 'stopped';
            return;
          }
          shard.state = 'ended';
          for (const child of children) {
            track(child.shardId, { parents: child.parentShards, closed: false, state: 'waiting' });
          }
        },
        (error: unknown) => {
          failure ??= { error };
          stop.abort();
        },
      )
      .finally(() => {
        tasks.delete(task);
        schedule();
        wakeConsumer();
      });
    tasks.add(task);
  };

  /** Starts every waiting shard whose parents have all ended; true if any started. */
  const schedule = (): boolean => {
    if (stop.signal.aborted) return false;
    let started = false;
    for (const [shardId, shard] of shards) {
      if (shard.state !== 'waiting') continue;
      if (shard.parents.every((p) => shards.get(p)?.state === 'ended')) {
        start(shardId, shard, firstPosition(shard));
        started = true;
      }
    }
    return started;
  };

  /** Where a shard whose parents have all ended starts. */
  const firstPosition = (shard: TrackedShard): StartPosition => {
    const from = options.from;
    if (from.type !== 'AT_TIMESTAMP') return { type: 'TRIM_HORIZON' };
    if (shard.parents.some((p) => shards.get(p)?.reached === true)) return { type: 'TRIM_HORIZON' };
    return { type: 'AT_TIMESTAMP', timestampMs: from.timestampMs };
  };

  /**
   * Nothing is being read but shards wait for parents this reader never met: look again. A
   * parent no longer listed has expired (it counts as ended); one that is listed is read too.
   * True if it learned of any shard.
   */
  const relist = async (): Promise<boolean> => {
    const listed = new Map((await listAllShards(client, streamName)).map((s) => [s.shardId, s]));
    const missing = new Set<string>();
    for (const shard of shards.values()) {
      if (shard.state !== 'waiting') continue;
      for (const p of shard.parents) if (!shards.has(p)) missing.add(p);
    }
    for (const shardId of missing) {
      const shard = listed.get(shardId);
      if (shard === undefined) {
        shards.set(shardId, { parents: [], closed: true, state: 'ended' });
      } else {
        track(shardId, {
          parents: parentsOf(shard).filter((p) => listed.has(p)),
          closed: isClosed(shard),
          state: 'waiting',
        });
      }
    }
    return missing.size > 0;
  };

  try {
    const listed = await listAllShards(client, streamName);
    const listedIds = new Set(listed.map((s) => s.shardId));
    for (const shard of listed) {
      if (options.from.type === 'LATEST') {
        // History is skipped: closed shards have nothing new, open ones start at their tip.
        const tracked: TrackedShard = {
          parents: [],
          closed: isClosed(shard),
          state: isClosed(shard) ? 'ended' : 'waiting',
        };
        track(shard.shardId, tracked);
        if (tracked.state === 'waiting') start(shard.shardId, tracked, { type: 'LATEST' });
      } else {
        track(shard.shardId, {
          parents: parentsOf(shard).filter((p) => listedIds.has(p)),
          closed: isClosed(shard),
          state: 'waiting',
        });
      }
    }
    schedule();

    for (;;) {
      if (failure !== undefined) throw failure.error;
      if (stop.signal.aborted) return;
      const item = queue.shift();
      if (item !== undefined) {
        spaceWaiters.shift()?.();
        yield item;
        continue;
      }
      if (tasks.size === 0) {
        if (![...shards.values()].some((s) => s.state === 'waiting')) return;
        // Shards wait for parents this reader has not met: look again, once per new finding.
        if (!(await relist())) return;
        schedule();
        continue;
      }
      await new Promise<void>((resolve) => (consumerWaiter = resolve));
    }
  } finally {
    stop.abort();
    options.signal?.removeEventListener('abort', onOuterAbort);
    await Promise.allSettled([...tasks]);
  }
}

/** Every shard of the stream ListShards returns (all pages). */
export async function listAllShards(
  client: Pick<RheosClient, 'listShards'>,
  streamName: string,
): Promise<Shard[]> {
  const shards: Shard[] = [];
  let nextToken = '';
  do {
    const page = await client.listShards(nextToken === '' ? { streamName } : { nextToken });
    shards.push(...page.shards);
    nextToken = page.nextToken;
  } while (nextToken !== '');
  return shards;
}

function parentsOf(shard: Shard): string[] {
  return [shard.parentShardId, shard.adjacentParentShardId].filter((p) => p !== '');
}

function isClosed(shard: Shard): boolean {
  const ending = shard.sequenceNumberRange?.endingSequenceNumber;
  return ending !== undefined && ending !== '';
}
