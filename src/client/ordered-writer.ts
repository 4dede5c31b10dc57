import { RheosError } from '../common/errors.js';
import { PUT_RECORDS_MAX_RECORDS, PUT_RECORDS_MAX_SIZE_BYTES } from '../common/limits.js';
import type { PutRecordsResultEntry } from '../gen/rheos/v1/data.js';
import { backoffDelayMs, sleep, type BackoffOptions } from '../common/backoff.js';
import type { RheosClient } from './client.js';

/**
 * Writes a sequence of records with PutRecords, batched (500 records / 5 MiB per call), one call in
 * flight, retrying throttled or failed records until they are stored. Order within a shard is
 * kept: the server fails a shard's records after its first throttled one, so the failures of a
 * call are a suffix per shard, and they are retried before anything newer is sent.
 *
 * At-least-once: a record whose outcome was indeterminate (InternalFailure, a lost connection) is
 * sent again and may be stored twice.
 */

export interface OutgoingRecord {
  readonly partitionKey: string;
  readonly data: Buffer;
  readonly explicitHashKey?: string;
}

export interface StoredRecord {
  readonly record: OutgoingRecord;
  readonly shardId: string;
  readonly sequenceNumber: string;
}

export interface OrderedWriterOptions {
  readonly client: RheosClient;
  readonly streamName: string;
  readonly backoff?: BackoffOptions;
  readonly maxBatchRecords?: number;
  /** Called for every stored record, in the order the server acknowledged them. */
  readonly onStored?: (stored: StoredRecord) => void;
  /** Stops taking new records; what was already taken is still written. */
  readonly signal?: AbortSignal;
}

export interface WriteSummary {
  readonly stored: number;
  /** Records sent again after a throttle or failure. */
  readonly retried: number;
  /** Calls or records that failed in a way that may have stored them (possible duplicates). */
  readonly indeterminate: number;
}

export async function writeInOrder(
  records: AsyncIterable<OutgoingRecord> | Iterable<OutgoingRecord>,
  options: OrderedWriterOptions,
): Promise<WriteSummary> {
  const maxRecords = Math.min(
    options.maxBatchRecords ?? PUT_RECORDS_MAX_RECORDS,
    PUT_RECORDS_MAX_RECORDS,
  );
  const summary = { stored: 0, retried: 0, indeterminate: 0 };
  let batch: OutgoingRecord[] = [];
  let batchBytes = 0;
  for await (const record of records) {
    const size = record.data.length + Buffer.byteLength(record.partitionKey, 'utf8');
    if (
      batch.length > 0 &&
      (batch.length >= maxRecords || batchBytes + size > PUT_RECORDS_MAX_SIZE_BYTES)
    ) {
      await sendUntilStored(batch, options, summary);
      batch = [];
      batchBytes = 0;
    }
    batch.push(record);
    batchBytes += size;
    if (options.signal?.aborted) break;
  }
  if (batch.length > 0) await sendUntilStored(batch, options, summary);
  return summary;
}

async function sendUntilStored(
  batch: readonly OutgoingRecord[],
  options: OrderedWriterOptions,
  summary: { stored: number; retried: number; indeterminate: number },
): Promise<void> {
  let pending = batch;
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt > 0) {
      summary.retried += pending.length;
      await sleep(backoffDelayMs(attempt - 1, options.backoff));
    }
    let results: PutRecordsResultEntry[];
    try {
      const response = await options.client.putRecords({
        streamName: options.streamName,
        records: pending.map((r) => ({
          partitionKey: r.partitionKey,
          data: r.data,
          ...(r.explicitHashKey === undefined ? {} : { explicitHashKey: r.explicitHashKey }),
        })),
      });
      results = response.records;
    } catch (error) {
      if (!(error instanceof RheosError) || !error.retriable) throw error;
      if (error.indeterminate) summary.indeterminate++;
      continue;
    }
    const failed: OutgoingRecord[] = [];
    results.forEach((result, i) => {
      const record = pending[i] as OutgoingRecord;
      if (result.errorCode === '') {
        summary.stored++;
        options.onStored?.({
          record,
          shardId: result.shardId,
          sequenceNumber: result.sequenceNumber,
        });
      } else {
        if (result.errorCode !== 'ProvisionedThroughputExceededException') summary.indeterminate++;
        failed.push(record);
      }
    });
    pending = failed;
  }
}
