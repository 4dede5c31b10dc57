import type { BackoffOptions } from '../common/backoff.js';
import {
  readLineage,
  type LineageClient,
  type LineageItem,
  type LineageStart,
} from './lineage-reader.js';
import { subscribeShard, type FanOutClient } from './shard-subscriber.js';

/**
 * An enhanced fan-out consumer of a whole stream, as an async iterator: every shard is read
 * through SubscribeToShard with the consumer's own throughput, subscriptions are renewed from
 * their continuation every 5 minutes and after a leader moves, and shards are taken in lineage
 * order (each child starts once all its parents have been read to their end), as `readLineage`
 * does for polling readers. It always follows the stream (it ends only with `signal`, or with a
 * failure that retrying cannot mend, such as the consumer being deregistered).
 */

export interface FanOutReaderOptions {
  readonly client: FanOutClient & LineageClient;
  readonly streamName: string;
  /** A registered consumer of the stream (RegisterStreamConsumer); ACTIVE, or soon. */
  readonly consumerArn: string;
  readonly from: LineageStart;
  readonly signal?: AbortSignal;
  /** Records read ahead of the caller, all shards together (default 256). */
  readonly bufferSize?: number;
  /** Yield the user records of KPL aggregates (default true). */
  readonly deaggregate?: boolean;
  readonly backoff?: BackoffOptions;
  /** Called at each subscription to a shard (the first and every renewal). */
  readonly onSubscribe?: (shardId: string) => void;
}

export function readFanOut(options: FanOutReaderOptions): AsyncGenerator<LineageItem> {
  const { client, streamName, consumerArn } = options;
  return readLineage({
    client,
    streamName,
    from: options.from,
    follow: true,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.bufferSize === undefined ? {} : { bufferSize: options.bufferSize }),
    readShard: ({ shardId, from, signal, onEnd }) =>
      subscribeShard({
        client,
        streamName,
        consumerArn,
        shardId,
        from,
        signal,
        onEnd,
        ...(options.deaggregate === undefined ? {} : { deaggregate: options.deaggregate }),
        ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
        ...(options.onSubscribe === undefined
          ? {}
          : { onSubscribe: () => options.onSubscribe?.(shardId) }),
      }),
  });
}
