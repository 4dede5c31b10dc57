import { assert } from './assert.js';
import { InvalidArgumentError } from './errors.js';
import {
  PUT_RECORDS_MAX_RECORDS,
  PUT_RECORDS_MAX_SIZE_BYTES,
  RECORD_MAX_SIZE_BYTES,
} from './limits.js';
import { Validator } from './validation.js';

/**
 * The checks of a put request that need no stream: the API model's constraints and the size
 * limits. The data plane runs them before anything is written; the client runs them before it
 * splits a PutRecords across shard leaders, so a bad request is refused whole, never half stored.
 */

const EXPLICIT_HASH_KEY_PATTERN = /^(0|[1-9]\d{0,38})$/;

export interface PutEntry {
  readonly partitionKey: string;
  readonly data?: Buffer | undefined;
  readonly explicitHashKey?: string | undefined;
}

export function hasData<T extends { data?: Buffer | undefined }>(
  entry: T,
): entry is T & { data: Buffer } {
  return entry.data !== undefined;
}

export function validateStreamRef(
  v: Validator,
  ref: { readonly streamName: string; readonly streamArn: string },
): void {
  if (ref.streamName === '' && ref.streamArn === '') v.required('streamName', ref.streamName);
  else if (ref.streamName !== '') v.streamName('streamName', ref.streamName);
}

export function validateEntry(v: Validator, entry: PutEntry, prefix: string): void {
  v.partitionKey(prefix + 'partitionKey', entry.partitionKey);
  if (entry.data === undefined) {
    v.required(prefix + 'data', undefined);
  } else if (entry.data.length > RECORD_MAX_SIZE_BYTES) {
    v.fail(
      prefix + 'data',
      entry.data,
      `Member must have length less than or equal to ${RECORD_MAX_SIZE_BYTES}`,
    );
  }
  if (
    entry.explicitHashKey !== undefined &&
    !EXPLICIT_HASH_KEY_PATTERN.test(entry.explicitHashKey)
  ) {
    v.fail(
      prefix + 'explicitHashKey',
      entry.explicitHashKey,
      'Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})',
    );
  }
}

export function recordSize(entry: { partitionKey: string; data: Buffer }): number {
  return entry.data.length + Buffer.byteLength(entry.partitionKey, 'utf8');
}

export function checkRecordSize(sizeBytes: number): void {
  if (sizeBytes > RECORD_MAX_SIZE_BYTES) {
    throw new InvalidArgumentError(
      `A record's data and partition key together are ${sizeBytes} bytes, above the limit of ${RECORD_MAX_SIZE_BYTES} bytes.`,
    );
  }
}

/** Validates a PutRecords request; returns its records and their sizes, or throws. */
export function checkPutRecords<E extends PutEntry>(request: {
  readonly streamName: string;
  readonly streamArn: string;
  readonly records: readonly E[];
}): { entries: Array<E & { data: Buffer }>; sizes: number[] } {
  const v = new Validator();
  validateStreamRef(v, request);
  if (request.records.length < 1) {
    v.fail('records', `[]`, 'Member must have length greater than or equal to 1');
  } else if (request.records.length > PUT_RECORDS_MAX_RECORDS) {
    v.fail(
      'records',
      `<${request.records.length} records>`,
      `Member must have length less than or equal to ${PUT_RECORDS_MAX_RECORDS}`,
    );
  } else {
    request.records.forEach((entry, i) => validateEntry(v, entry, `records.${i + 1}.member.`));
  }
  v.throwIfInvalid();
  const entries = request.records.filter(hasData);
  assert(entries.length === request.records.length, 'validated: every record has data');
  let totalBytes = 0;
  const sizes = entries.map((entry) => {
    const size = recordSize(entry);
    checkRecordSize(size);
    totalBytes += size;
    return size;
  });
  if (totalBytes > PUT_RECORDS_MAX_SIZE_BYTES) {
    throw new InvalidArgumentError(
      `Records size exceeds 5 MB limit: the request holds ${totalBytes} bytes of data and partition keys.`,
    );
  }
  return { entries, sizes };
}
