import { sleep } from '../common/backoff.js';
import type { Clock } from '../common/clock.js';
import { TokenBucket } from '../common/token-bucket.js';
import {
  formatSequenceNumber,
  MAX_RECORDS_PER_ENTRY,
  type LogPosition,
} from '../common/sequence-number.js';
import type { SubscribeToShardResponse } from '../gen/rheos/v1/data.js';
import { EncryptionType, type ChildShard } from '../gen/rheos/v1/stream.js';
import type { ShardReplica } from './replica.js';

/**
 * One SubscribeToShard subscription, served by the shard's leader: records are read from the
 * replica (its newest entries from the in-memory committed tail, decoded once for every consumer;
 * laggards' older entries from storage) and pushed as events as soon as they are readable, waking on the replica's ReadableSignal rather
 * than polling. Each event says where to go on from (ContinuationSequenceNumber, to subscribe again
 * AFTER_SEQUENCE_NUMBER) and how far behind the tip it is; an idle subscription still gets an event
 * every `idleEventMs`, so its checkpoint stays fresh; a closed shard read to its end gets a last
 * event naming its children, and the subscription ends. The consumer's throughput is its own: at
 * most `bytesPerSecond` of records per second, so a reader that catches up cannot take the shard's
 * disk from the others. `emit` resolves once the transport has room (backpressure).
 */

export interface SubscriptionSource {
  readonly replica: ShardReplica;
  readonly shardIncarnation: number;
  readonly from: LogPosition;
  /** The children of the sealed shard once they are all open; undefined while one is pending. */
  children(): Promise<ChildShard[] | undefined>;
  readonly clock: Clock;
  /** Ends the subscription (lifetime, takeover, the client went). */
  readonly signal: AbortSignal;
  readonly endsAtMs: number;
  /** How the subscription waits out its pace (tests pass one that moves a manual clock). */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface SubscriptionPacing {
  readonly bytesPerSecond: number;
  readonly idleEventMs: number;
  readonly maxEventBytes: number;
}

export const DEFAULT_SUBSCRIPTION_PACING: SubscriptionPacing = {
  bytesPerSecond: 2 * 1024 * 1024,
  idleEventMs: 5_000,
  maxEventBytes: 1024 * 1024,
};

export async function serveSubscription(
  source: SubscriptionSource,
  emit: (event: SubscribeToShardResponse) => Promise<void>,
  pacing: SubscriptionPacing = DEFAULT_SUBSCRIPTION_PACING,
): Promise<void> {
  const { replica, clock, signal } = source;
  const wait = source.sleep ?? sleep;
  // The consumer's own throughput: a bucket of one second's bytes, refilled continuously. A read
  // asks for no more than the bucket holds; a record larger than that still goes (a read returns
  // at least one), leaving the bucket in debt that the next reads wait out.
  const bucket = new TokenBucket(
    pacing.bytesPerSecond,
    pacing.bytesPerSecond,
    clock,
    2 * pacing.maxEventBytes,
  );
  let from = source.from;
  let lastEventMs = Number.NEGATIVE_INFINITY;
  while (!signal.aborted && clock.nowMs() < source.endsAtMs) {
    const budget = bucket.available();
    if (budget < 1) {
      await wait(Math.ceil(((1 - budget) * 1000) / pacing.bytesPerSecond), signal);
      continue;
    }
    const result = await replica.read(from, {
      maxRecords: 10_000,
      maxBytes: Math.max(1, Math.min(pacing.maxEventBytes, Math.floor(budget))),
    });
    let bytes = 0;
    const records = result.records.map((r) => {
      bytes += r.data.length + Buffer.byteLength(r.partitionKey, 'utf8');
      return {
        sequenceNumber: formatSequenceNumber({
          incarnation: source.shardIncarnation,
          ...r.position,
        }),
        approximateArrivalTimestampMs: r.arrivalMs,
        data: r.data,
        partitionKey: r.partitionKey,
        encryptionType: EncryptionType.ENCRYPTION_TYPE_NONE,
      };
    });
    const last = result.records[result.records.length - 1];
    const children = result.endOfShard ? await source.children() : undefined;
    const nowMs = clock.nowMs();
    if (records.length > 0 || children !== undefined || nowMs - lastEventMs >= pacing.idleEventMs) {
      await emit({
        records,
        continuationSequenceNumber:
          last === undefined
            ? continuationBefore(source.shardIncarnation, result.next)
            : (records[records.length - 1]?.sequenceNumber as string),
        millisBehindLatest:
          result.caughtUp || last === undefined
            ? 0
            : Math.max(0, result.tipArrivalMs - last.arrivalMs),
        childShards: children ?? [],
      });
      lastEventMs = nowMs;
    }
    if (children !== undefined) return;
    from = result.next;
    bucket.takeWithDebt(bytes);
    if (result.endOfShard) {
      // A merge's child opens once both parents are sealed: look again shortly.
      await wait(50, signal);
    } else if (result.caughtUp) {
      // Ended while the event was being sent: an abort listener added now would never fire.
      if (signal.aborted) return;
      const idle = new AbortController();
      const wake = () => idle.abort();
      signal.addEventListener('abort', wake, { once: true });
      const timer = setTimeout(
        wake,
        Math.max(1, Math.min(pacing.idleEventMs, source.endsAtMs - clock.nowMs())),
      );
      try {
        await replica.waitReadable(from.index - 1, idle.signal);
      } finally {
        clearTimeout(timer);
        signal.removeEventListener('abort', wake);
      }
    }
  }
}

/**
 * The sequence number whose AFTER position is `next`: the record before it in its entry, or,
 * at an entry's start, the last offset an entry could hold in the one before (nothing of it is
 * read again).
 */
function continuationBefore(incarnation: number, next: LogPosition): string {
  return next.offset > 0
    ? formatSequenceNumber({ incarnation, index: next.index, offset: next.offset - 1 })
    : formatSequenceNumber({
        incarnation,
        index: Math.max(0, next.index - 1),
        offset: MAX_RECORDS_PER_ENTRY - 1,
      });
}
