import type { UserRecord } from './kpl-aggregation.js';
import {
  startGroupWorker,
  type GroupWorker,
  type GroupWorkerOptions,
  type ProcessRecordsInput,
} from './group-worker.js';

/**
 * The async-iterator form of a consumer-group worker:
 *
 *   for await (const batch of consumeGroup({ client, application, streamName })) {
 *     await handle(batch.records);
 *     await batch.checkpoint();
 *   }
 *
 * Batches of every shard this worker holds arrive interleaved, each shard's in order. A shard's
 * next batch is read only once the loop asks for the next batch after it, so a batch counts as
 * processed when the loop body that got it has finished; nothing waits in memory beyond one batch
 * per held shard. Breaking out of the loop (or an exception in it) stops the worker gracefully:
 * every lease is released, checkpointed only as far as the loop checkpointed. A batch whose lease
 * was lost before the loop reached it is dropped (the lease's new holder reads it); one lost while
 * in hand fails its checkpoint with LeaseLostError.
 */

export interface GroupBatch {
  readonly shardId: string;
  readonly records: readonly UserRecord[];
  /** Records everything up to `record` (default: this batch's last record) as processed. */
  checkpoint(record?: UserRecord): Promise<void>;
  /** Aborted once this shard's lease is lost or the worker stops. */
  readonly signal: AbortSignal;
}

export type GroupConsumerOptions = Omit<GroupWorkerOptions, 'processRecords' | 'shutdown'>;

export interface GroupConsumer extends AsyncIterable<GroupBatch> {
  readonly workerId: string;
  /** The shards this worker holds now. */
  shards(): string[];
  /** Stops the worker (as breaking out of the loop does); the loop then ends. */
  stop(): Promise<void>;
}

interface Pending {
  readonly batch: GroupBatch;
  /** Lets the shard's processor go on to its next batch. */
  readonly release: () => void;
}

export function consumeGroup(options: GroupConsumerOptions): GroupConsumer {
  // At most one batch per held shard: each processor waits until its batch has been processed.
  const pending: Pending[] = [];
  let wake: (() => void) | undefined;
  let iterating = false;
  const notify = () => {
    wake?.();
    wake = undefined;
  };

  const processRecords = (input: ProcessRecordsInput) =>
    new Promise<void>((resolve) => {
      if (input.signal.aborted) return resolve();
      const entry: Pending = {
        batch: {
          shardId: input.shardId,
          records: input.records,
          checkpoint: (record) =>
            input.checkpointer.checkpoint(record ?? input.records[input.records.length - 1]),
          signal: input.signal,
        },
        release: () => {
          input.signal.removeEventListener('abort', dropped);
          resolve();
        },
      };
      // The lease is gone (or the worker stops): a batch not yet handed out is not handed out.
      function dropped() {
        const at = pending.indexOf(entry);
        if (at >= 0) pending.splice(at, 1);
        resolve();
      }
      input.signal.addEventListener('abort', dropped, { once: true });
      pending.push(entry);
      notify();
    });

  const worker: GroupWorker = startGroupWorker({ ...options, processRecords });
  let finished = false;
  void worker.finished
    .catch(() => undefined)
    .finally(() => {
      finished = true;
      notify();
    });

  async function* batches(): AsyncGenerator<GroupBatch> {
    if (iterating) throw new Error('a group consumer can be iterated once');
    iterating = true;
    try {
      for (;;) {
        while (pending.length === 0 && !finished) {
          await new Promise<void>((resolve) => (wake = resolve));
        }
        const entry = pending.shift();
        if (entry === undefined) break;
        try {
          yield entry.batch;
        } finally {
          entry.release();
        }
      }
      // The worker ended by itself: with an error if it failed (a deleted stream, a bad name).
      await worker.finished;
    } finally {
      for (const entry of pending.splice(0)) entry.release();
      await worker.stop().catch(() => undefined);
    }
  }

  return {
    workerId: worker.workerId,
    shards: () => worker.shards(),
    stop: () => worker.stop(),
    [Symbol.asyncIterator]: () => batches(),
  };
}
