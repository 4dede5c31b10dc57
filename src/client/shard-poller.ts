import { RheosError, ValidationError } from '../common/errors.js';
import { ShardIteratorType } from '../gen/rheos/v1/data.js';
import type { ChildShard } from '../gen/rheos/v1/stream.js';
import { backoffDelayMs, sleep } from '../common/backoff.js';
import type { RheosClient } from './client.js';
import { deaggregateRecord, type UserRecord } from './kpl-aggregation.js';

/**
 * Reads one shard in order with GetShardIterator/GetRecords, as an async iterator of records.
 * Throttling backs off; an expired iterator is replaced from the last record yielded; when caught
 * up it polls at `idlePollMs` (or stops, with `follow: false`). A closed shard read to its end (an
 * empty next iterator) ends the iterator and calls `onEnd` with the shard's children.
 *
 * KPL aggregates are deaggregated (unless `deaggregate: false`): each user record is yielded with
 * its `subSequenceNumber`, and a position can name one inside an aggregate, so a consumer that
 * checkpoints (sequenceNumber, subSequenceNumber) resumes exactly after what it processed.
 *
 * Calls are paced to Kinesis' read quota of 5 GetRecords per second per shard: two calls start at
 * least `minCallIntervalMs` apart (default 200), however fast the records are consumed.
 */

export type StartPosition =
  | { readonly type: 'TRIM_HORIZON' }
  | { readonly type: 'LATEST' }
  | { readonly type: 'AT_TIMESTAMP'; readonly timestampMs: number }
  | {
      readonly type: 'AFTER_SEQUENCE_NUMBER';
      readonly sequenceNumber: string;
      /**
       * After this user record of the aggregate at `sequenceNumber`: its later members come
       * first. A plain record at `sequenceNumber` is skipped whole. Without it, the whole record
       * at `sequenceNumber` is skipped.
       */
      readonly subSequenceNumber?: number;
    }
  | {
      readonly type: 'AT_SEQUENCE_NUMBER';
      readonly sequenceNumber: string;
      /**
       * From this user record of the aggregate at `sequenceNumber` (earlier members are skipped;
       * a plain record counts as sub-sequence number 0).
       */
      readonly subSequenceNumber?: number;
    };

/** The calls the poller makes: a RheosClient, or a stand-in for one in tests. */
export type ShardReadClient = Pick<RheosClient, 'getShardIterator' | 'getRecords'>;

export interface ShardPollerOptions {
  readonly client: ShardReadClient;
  readonly streamName: string;
  readonly shardId: string;
  readonly from: StartPosition;
  /** Keep polling once caught up (default true). */
  readonly follow?: boolean;
  /** Pause after an empty answer before polling again (default 250). */
  readonly idlePollMs?: number;
  readonly limit?: number;
  readonly signal?: AbortSignal;
  /**
   * Yield the user records of KPL aggregates (default true). With `false`, stored records are
   * yielded as they are (each with `subSequenceNumber` 0), and a start position may not name a
   * sub-sequence number.
   */
  readonly deaggregate?: boolean;
  /**
   * Least time between the starts of two GetRecords calls (default 200: Kinesis allows 5 per
   * second per shard). It only ever adds waiting: the pause after an empty answer is taken whole.
   */
  readonly minCallIntervalMs?: number;
  /**
   * Called once when the shard is closed and has been read to its end (the iterator then ends),
   * with the children the last response named. Not called when the iterator stops for any other
   * reason (caught up with `follow: false`, aborted, an error).
   */
  readonly onEnd?: (childShards: readonly ChildShard[]) => void;
}

const DEFAULT_IDLE_POLL_MS = 250;
const DEFAULT_MIN_CALL_INTERVAL_MS = 200;

/**
 * User records at one sequence number to leave out, when a position is inside an aggregate: the
 * first stored record read (at `sequenceNumber`) yields only its members from `fromSub` on.
 */
interface Skip {
  readonly sequenceNumber: string;
  readonly fromSub: number;
}

export async function* pollShard(options: ShardPollerOptions): AsyncGenerator<UserRecord> {
  const { client, streamName, shardId, signal } = options;
  const follow = options.follow ?? true;
  const idlePollMs = options.idlePollMs ?? DEFAULT_IDLE_POLL_MS;
  const deaggregate = options.deaggregate ?? true;
  const minCallIntervalMs = Math.max(0, options.minCallIntervalMs ?? DEFAULT_MIN_CALL_INTERVAL_MS);
  checkPosition(options.from, deaggregate);
  /** Where to go on from after the last user record yielded (undefined: nothing yielded yet). */
  let resume: StartPosition | undefined;
  let skip: Skip | undefined;
  let iterator = '';
  const open = async (from: StartPosition) => {
    const { request, skip: skipping } = iteratorRequest(from);
    skip = skipping;
    iterator = await getIterator(client, streamName, shardId, request);
  };
  await open(options.from);
  let failures = 0;
  let lastCallStartMs = -Infinity;
  while (!signal?.aborted) {
    const waitMs = lastCallStartMs + minCallIntervalMs - Date.now();
    if (waitMs > 0) {
      await sleep(waitMs, signal);
      if (signal?.aborted) return;
    }
    lastCallStartMs = Date.now();
    let response;
    try {
      response = await client.getRecords({
        shardIterator: iterator,
        ...(options.limit ? { limit: options.limit } : {}),
      });
      failures = 0;
    } catch (error) {
      if (error instanceof RheosError && error.name === 'ExpiredIteratorException') {
        await open(resume ?? options.from);
        continue;
      }
      if (error instanceof RheosError && error.retriable) {
        await sleep(backoffDelayMs(failures++, { initialMs: 100, maxMs: 5_000 }), signal);
        continue;
      }
      throw error;
    }
    for (const stored of response.records) {
      const users = deaggregate ? deaggregateRecord(stored) : [{ ...stored, subSequenceNumber: 0 }];
      let first = 0;
      if (skip !== undefined) {
        // Only the record the position names is cut; if it is gone, reading goes on from here.
        if (stored.sequenceNumber === skip.sequenceNumber) first = skip.fromSub;
        skip = undefined;
      }
      for (let i = first; i < users.length; i++) {
        const user = users[i] as UserRecord;
        // The last member done: the whole stored record is, and a resume goes past it.
        resume =
          i === users.length - 1 || !deaggregate
            ? { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: stored.sequenceNumber }
            : {
                type: 'AFTER_SEQUENCE_NUMBER',
                sequenceNumber: stored.sequenceNumber,
                subSequenceNumber: user.subSequenceNumber,
              };
        yield user;
      }
    }
    if (response.nextShardIterator === '') {
      options.onEnd?.(response.childShards);
      return;
    }
    iterator = response.nextShardIterator;
    // The server reads up to the last committed record, so an empty answer means caught up.
    if (response.records.length === 0) {
      if (!follow) return;
      await sleep(idlePollMs, signal);
    }
  }
}

function checkPosition(from: StartPosition, deaggregate: boolean): void {
  if (!('subSequenceNumber' in from) || from.subSequenceNumber === undefined) return;
  const sub = from.subSequenceNumber;
  if (!Number.isSafeInteger(sub) || sub < 0) {
    throw new ValidationError(`subSequenceNumber must be a whole number from 0, not ${sub}.`);
  }
  if (!deaggregate) {
    // Raw records cannot be yielded in part: the position would be silently rounded.
    throw new ValidationError('A start position with a subSequenceNumber needs deaggregate: true.');
  }
}

interface IteratorRequest {
  readonly type: StartPosition['type'];
  readonly sequenceNumber?: string;
  readonly timestampMs?: number;
}

/**
 * The server-side position for `from`, and what to skip of the first record: a position inside
 * an aggregate is read from the aggregate itself (AT its sequence number), members before it cut.
 */
function iteratorRequest(from: StartPosition): { request: IteratorRequest; skip?: Skip } {
  if (
    (from.type === 'AFTER_SEQUENCE_NUMBER' || from.type === 'AT_SEQUENCE_NUMBER') &&
    from.subSequenceNumber !== undefined
  ) {
    const fromSub =
      from.type === 'AFTER_SEQUENCE_NUMBER' ? from.subSequenceNumber + 1 : from.subSequenceNumber;
    return {
      request: { type: 'AT_SEQUENCE_NUMBER', sequenceNumber: from.sequenceNumber },
      skip: { sequenceNumber: from.sequenceNumber, fromSub },
    };
  }
  return { request: from };
}

async function getIterator(
  client: ShardReadClient,
  streamName: string,
  shardId: string,
  from: IteratorRequest,
): Promise<string> {
  const type = ShardIteratorType[`SHARD_ITERATOR_TYPE_${from.type}`];
  const response = await client.getShardIterator({
    streamName,
    shardId,
    shardIteratorType: type,
    ...(from.sequenceNumber === undefined ? {} : { startingSequenceNumber: from.sequenceNumber }),
    ...(from.timestampMs === undefined ? {} : { timestampMs: from.timestampMs }),
  });
  return response.shardIterator;
}
