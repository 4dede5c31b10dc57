import { assert } from '../common/assert.js';
import type { KvOp, KvStore } from './kv-store.js';

/**
 * Group commit: every write of every shard on the broker joins the next LevelDB batch, and each
 * batch is written with `sync: true`. Exactly one batch is in flight; writes that arrive while it
 * is on its way wait for the next one. Durability costs one fsync per batch, not per write, and
 * no timer ever delays a write on purpose.
 *
 * A failed batch is fail-stop: the writer refuses all further work and reports the error to
 * `onFatal`, whose job is to stop the process. Acknowledging anything after a failed fsync would
 * be a lie (the kernel may have dropped the dirty pages: "fsyncgate").
 */

export interface GroupCommitOptions {
  /** Called once, with the first write error. */
  readonly onFatal: (error: unknown) => void;
  /** Above this many queued bytes, `isFull()` says so and callers push back. */
  readonly maxQueuedBytes?: number;
}

export interface GroupCommitStats {
  batches: number;
  ops: number;
  bytes: number;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * The writer has failed. `indeterminate` is true for writes that were in the failed batch (they
 * may be on disk) and false for writes that were never handed to LevelDB.
 */
export class WriterFailedError extends Error {
  override readonly name = 'WriterFailedError';

  constructor(
    message: string,
    readonly indeterminate: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export class GroupCommitWriter {
  private queuedOps: KvOp[] = [];
  private queuedWaiters: Waiter[] = [];
  private queuedBytes = 0;
  private inFlight = false;
  private flushScheduled = false;
  private failure: unknown = undefined;
  private idleWaiters: Array<() => void> = [];
  private readonly maxQueuedBytes: number;
  readonly stats: GroupCommitStats = { batches: 0, ops: 0, bytes: 0 };

  constructor(
    private readonly kv: KvStore,
    private readonly options: GroupCommitOptions,
  ) {
    this.maxQueuedBytes = options.maxQueuedBytes ?? 256 * 1024 * 1024;
  }

  /** Queues `ops` for the next batch; resolves once that batch is durable. */
  write(ops: readonly KvOp[]): Promise<void> {
    if (this.failure !== undefined) {
      return Promise.reject(
        new WriterFailedError('storage has failed', false, { cause: this.failure }),
      );
    }
    for (const op of ops) {
      this.queuedOps.push(op);
      this.queuedBytes += op.key.length + (op.type === 'put' ? op.value.length : 0);
    }
    const done = new Promise<void>((resolve, reject) => {
      this.queuedWaiters.push({ resolve, reject });
    });
    this.scheduleFlush();
    return done;
  }

  isFull(): boolean {
    return this.queuedBytes >= this.maxQueuedBytes;
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Resolves when nothing is queued or in flight (used on shutdown). */
  async drain(): Promise<void> {
    if (!this.inFlight && this.queuedWaiters.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private scheduleFlush(): void {
    if (this.inFlight || this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate lets every write issued in this turn of the event loop join the batch.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    assert(!this.inFlight, 'one batch in flight at a time');
    if (this.queuedWaiters.length === 0) {
      this.notifyIdle();
      return;
    }
    const ops = this.queuedOps;
    const waiters = this.queuedWaiters;
    const bytes = this.queuedBytes;
    this.queuedOps = [];
    this.queuedWaiters = [];
    this.queuedBytes = 0;
    this.inFlight = true;
    this.kv.write(ops, { sync: true }).then(
      () => {
        this.inFlight = false;
        this.stats.batches++;
        this.stats.ops += ops.length;
        this.stats.bytes += bytes;
        for (const w of waiters) w.resolve();
        this.flush();
      },
      (error: unknown) => {
        this.inFlight = false;
        this.fail(error, waiters);
      },
    );
  }

  private fail(error: unknown, inFlightWaiters: Waiter[]): void {
    this.failure = error;
    const maybeWritten = new WriterFailedError('storage write failed', true, { cause: error });
    const notWritten = new WriterFailedError('storage has failed', false, { cause: error });
    for (const w of inFlightWaiters) w.reject(maybeWritten);
    for (const w of this.queuedWaiters) w.reject(notWritten);
    this.queuedOps = [];
    this.queuedWaiters = [];
    this.queuedBytes = 0;
    this.notifyIdle();
    this.options.onFatal(error);
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
