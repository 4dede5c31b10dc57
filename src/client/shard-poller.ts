import { RheosError } from '../common/errors.js';
import { ShardIteratorType } from '../gen/rheos/v1/data.js';
import type { ChildShard, Record as StreamRecord } from '../gen/rheos/v1/stream.js';
import { backoffDelayMs, sleep } from '../common/backoff.js';
import type { RheosClient } from './client.js';

/**
 * Reads one shard in order with GetShardIterator/GetRecords, as an async iterator of records.
 * Throttling backs off; an expired iterator is replaced from the last record seen; when caught up
 * it polls at `idlePollMs` (or stops, with `follow: false`). A closed shard read to its end (an
 * empty next iterator) ends the iterator and calls `onEnd` with the shard's children.
 */

export type StartPosition =
  | { readonly type: 'TRIM_HORIZON' }
  | { readonly type: 'LATEST' }
  | { readonly type: 'AT_TIMESTAMP'; readonly timestampMs: number }
  | { readonly type: 'AFTER_SEQUENCE_NUMBER'; readonly sequenceNumber: string }
  | { readonly type: 'AT_SEQUENCE_NUMBER'; readonly sequenceNumber: string };

/** The calls the poller makes: a RheosClient, or a stand-in for one in tests. */
export type ShardReadClient = Pick<RheosClient, 'getShardIterator' | 'getRecords'>;

export interface ShardPollerOptions {
  readonly client: ShardReadClient;
  readonly streamName: string;
  readonly shardId: string;
  readonly from: StartPosition;
  /** Keep polling once caught up (default true). */
  readonly follow?: boolean;
  readonly idlePollMs?: number;
  readonly limit?: number;
  readonly signal?: AbortSignal;
  /**
   * Called once when the shard is closed and has been read to its end (the iterator then ends),
   * with the children the last response named. Not called when the iterator stops for any other
   * reason (caught up with `follow: false`, aborted, an error).
   */
  readonly onEnd?: (childShards: readonly ChildShard[]) => void;
}

export async function* pollShard(options: ShardPollerOptions): AsyncGenerator<StreamRecord> {
  const { client, streamName, shardId, signal } = options;
  const follow = options.follow ?? true;
  const idlePollMs = options.idlePollMs ?? 250;
  let lastSequence: string | undefined;
  let iterator = await iteratorFor(client, streamName, shardId, options.from);
  let failures = 0;
  while (!signal?.aborted) {
    let response;
    try {
      response = await client.getRecords({
        shardIterator: iterator,
        ...(options.limit ? { limit: options.limit } : {}),
      });
      failures = 0;
    } catch (error) {
      if (error instanceof RheosError && error.name === 'ExpiredIteratorException') {
        const from: StartPosition =
          lastSequence === undefined
            ? options.from
            : { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: lastSequence };
        iterator = await iteratorFor(client, streamName, shardId, from);
        continue;
      }
      if (error instanceof RheosError && error.retriable) {
        await sleep(backoffDelayMs(failures++, { initialMs: 100, maxMs: 5_000 }), signal);
        continue;
      }
      throw error;
    }
    for (const record of response.records) {
      lastSequence = record.sequenceNumber;
      yield record;
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

async function iteratorFor(
  client: ShardReadClient,
  streamName: string,
  shardId: string,
  from: StartPosition,
): Promise<string> {
  const type = ShardIteratorType[`SHARD_ITERATOR_TYPE_${from.type}`];
  const response = await client.getShardIterator({
    streamName,
    shardId,
    shardIteratorType: type,
    ...('sequenceNumber' in from ? { startingSequenceNumber: from.sequenceNumber } : {}),
    ...('timestampMs' in from ? { timestampMs: from.timestampMs } : {}),
  });
  return response.shardIterator;
}
