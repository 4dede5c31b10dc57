/**
 * Errors of the buffered producer itself (the server's arrive as RheosError subclasses). Each
 * carries the same two flags as RheosError, so one retry policy reads them all.
 */

/** The producer was closed: it takes no more records. */
export class ProducerClosedError extends Error {
  override readonly name = 'ProducerClosedError';
  readonly retriable = false;
  readonly indeterminate = false;

  constructor(message = 'The producer is closed; it takes no more records.') {
    super(message);
  }
}

/**
 * A record was not acknowledged within its time to live (`recordTtlMs`). `indeterminate`: an
 * attempt's outcome was unknown, so it may be stored anyway; `cause` is the last failure.
 */
export class RecordExpiredError extends Error {
  override readonly name = 'RecordExpiredError';
  readonly retriable = false;
  readonly indeterminate: boolean;

  constructor(message: string, options: { indeterminate: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.indeterminate = options.indeterminate;
  }
}
