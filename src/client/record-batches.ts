/**
 * Turns an async iterator of records into batches of whatever has arrived: a pump reads ahead
 * into a bounded buffer (it waits while the buffer is full: backpressure), and each batch is
 * everything buffered, up to `maxBatch`, once at least one record is there. So a processor gets
 * large batches when it falls behind and single records when it keeps up, as the KCL's
 * processRecords does.
 */
export async function* recordBatches<T>(
  source: AsyncIterable<T>,
  maxBatch: number,
  maxBuffered = maxBatch * 2,
): AsyncGenerator<T[]> {
  const buffer: T[] = [];
  let done = false;
  let failure: { error: unknown } | undefined;
  let wakeConsumer: (() => void) | undefined;
  let wakePump: (() => void) | undefined;
  let stopped = false;
  // Ends with its source (which ends with its own signal): nobody waits for it, since waiting
  // would hang a consumer that broke out.
  void (async () => {
    try {
      for await (const item of source) {
        if (stopped) return;
        buffer.push(item);
        wakeConsumer?.();
        while (buffer.length >= maxBuffered && !stopped) {
          await new Promise<void>((resolve) => (wakePump = resolve));
        }
        if (stopped) return;
      }
    } catch (error) {
      failure = { error };
    } finally {
      done = true;
      wakeConsumer?.();
    }
  })();
  try {
    for (;;) {
      while (buffer.length === 0 && !done) {
        await new Promise<void>((resolve) => (wakeConsumer = resolve));
      }
      wakeConsumer = undefined;
      if (buffer.length > 0) {
        const batch = buffer.splice(0, maxBatch);
        wakePump?.();
        wakePump = undefined;
        yield batch;
        continue;
      }
      if (failure !== undefined) throw failure.error;
      return;
    }
  } finally {
    stopped = true;
    wakePump?.();
  }
}
