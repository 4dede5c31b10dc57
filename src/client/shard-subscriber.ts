import { backoffDelayMs, sleep, type BackoffOptions } from '../common/backoff.js';
import { RheosError } from '../common/errors.js';
import { ShardIteratorType, type StartingPosition } from '../gen/rheos/v1/data.js';
import type { ChildShard } from '../gen/rheos/v1/stream.js';
import type { RheosClient } from './client.js';
import { deaggregateRecord, type UserRecord } from './kpl-aggregation.js';
import type { StartPosition } from './shard-poller.js';

/**
 * Reads one shard through enhanced fan-out (SubscribeToShard) as an async iterator of records,
 * for as long as the caller wants: each subscription lasts up to 5 minutes and is renewed from
 * its last ContinuationSequenceNumber, so nothing is skipped or repeated at a renewal; a lost
 * leader, a refused takeover or a transport failure is retried with backoff after looking at the
 * newest routes (the shard's new leader). A closed shard ends the iterator with `onEnd(children)`.
 *
 * Records are KPL-deaggregated by default, each with its sub-sequence number; a start position
 * with a sub-sequence number resumes inside an aggregate.
 */

export type FanOutClient = Pick<RheosClient, 'subscribeToShard' | 'shardRoutes'>;

export interface ShardSubscriberOptions {
  readonly client: FanOutClient;
  readonly streamName: string;
  readonly consumerArn: string;
  readonly shardId: string;
  readonly from: StartPosition;
  readonly signal?: AbortSignal;
  /** Yield the user records of KPL aggregates (default true). */
  readonly deaggregate?: boolean;
  readonly backoff?: BackoffOptions;
  /** Called once a closed shard has been read to its end, with its children. */
  readonly onEnd?: (childShards: readonly ChildShard[]) => void;
  /** Called at each new subscription (the first included), for tests and metrics. */
  readonly onSubscribe?: () => void;
}

/** Errors after which subscribing again (to the shard's current leader) can succeed. */
const RETRIABLE = new Set([
  'NotLeaderException',
  'ServiceUnavailableException',
  'InternalFailureException',
  // Kinesis: another subscription started less than 5 s ago, or the consumer is not ACTIVE yet.
  'ResourceInUseException',
  'LimitExceededException',
]);

export async function* subscribeShard(options: ShardSubscriberOptions): AsyncGenerator<UserRecord> {
  const { client, signal } = options;
  const deaggregate = options.deaggregate ?? true;
  const backoff = options.backoff ?? { initialMs: 100, maxMs: 2_000 };
  let position = startingPosition(options.from);
  // A start inside an aggregate: members before this sub-sequence number are skipped.
  let skip = skipOf(options.from);
  let failures = 0;
  const aborted = () => signal?.aborted === true;
  while (!aborted()) {
    options.onSubscribe?.();
    try {
      const events = client.subscribeToShard(
        { consumerArn: options.consumerArn, shardId: options.shardId, startingPosition: position },
        signal === undefined ? {} : { signal },
      );
      for await (const event of events) {
        failures = 0;
        for (const stored of event.records) {
          const users = deaggregate
            ? deaggregateRecord(stored)
            : [{ ...stored, subSequenceNumber: 0 }];
          let first = 0;
          if (skip !== undefined) {
            if (stored.sequenceNumber === skip.sequenceNumber) first = skip.fromSub;
            skip = undefined;
          }
          for (let i = first; i < users.length; i++) yield users[i] as UserRecord;
        }
        if (event.continuationSequenceNumber !== '') {
          position = {
            type: ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER,
            sequenceNumber: event.continuationSequenceNumber,
          };
        }
        if (event.childShards.length > 0) {
          options.onEnd?.(event.childShards);
          return;
        }
      }
    } catch (error) {
      if (aborted()) return;
      if (!(error instanceof RheosError) || !RETRIABLE.has(error.name)) throw error;
      // The leader may have moved: look at the newest routes before subscribing again.
      await client.shardRoutes(options.streamName, true).catch(() => undefined);
      await sleep(backoffDelayMs(failures++, backoff), signal);
      continue;
    }
    // The subscription ended by its lifetime (or was taken over): renew from the continuation.
  }
}

function startingPosition(from: StartPosition): StartingPosition {
  switch (from.type) {
    case 'TRIM_HORIZON':
      return { type: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON, sequenceNumber: '' };
    case 'LATEST':
      return { type: ShardIteratorType.SHARD_ITERATOR_TYPE_LATEST, sequenceNumber: '' };
    case 'AT_TIMESTAMP':
      return {
        type: ShardIteratorType.SHARD_ITERATOR_TYPE_AT_TIMESTAMP,
        sequenceNumber: '',
        timestampMs: from.timestampMs,
      };
    case 'AT_SEQUENCE_NUMBER':
    case 'AFTER_SEQUENCE_NUMBER':
      return {
        // Inside an aggregate, the aggregate itself is read again and its earlier members cut.
        type:
          from.type === 'AT_SEQUENCE_NUMBER' || from.subSequenceNumber !== undefined
            ? ShardIteratorType.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER
            : ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER,
        sequenceNumber: from.sequenceNumber,
      };
  }
}

function skipOf(from: StartPosition): { sequenceNumber: string; fromSub: number } | undefined {
  if (from.type !== 'AT_SEQUENCE_NUMBER' && from.type !== 'AFTER_SEQUENCE_NUMBER') return undefined;
  if (from.subSequenceNumber === undefined) return undefined;
  return {
    sequenceNumber: from.sequenceNumber,
    fromSub:
      from.type === 'AFTER_SEQUENCE_NUMBER' ? from.subSequenceNumber + 1 : from.subSequenceNumber,
  };
}
