/**
 * Turns a producer that pushes values through `emit` into an async iterable, with backpressure:
 * at most `capacity` values wait for the consumer, and `emit` resolves only once there is room.
 * The producer stops on `signal`, which aborts when the consumer stops iterating (break, return,
 * a throw) or `outer` aborts; then `emit` resolves at once and drops the value. The producer's
 * failure is thrown to the consumer after the values emitted before it.
 */
export async function* pushIterable<T>(
  run: (emit: (value: T) => Promise<void>, signal: AbortSignal) => Promise<void>,
  outer?: AbortSignal,
  capacity = 1,
): AsyncGenerator<T> {
  const stop = new AbortController();
  const onOuterAbort = () => stop.abort();
  if (outer?.aborted === true) stop.abort();
  outer?.addEventListener('abort', onOuterAbort, { once: true });

  const queue: T[] = [];
  let room: (() => void) | undefined;
  let ready: (() => void) | undefined;
  let finished = false;
  let failure: { error: unknown } | undefined;
  const wakeProducer = () => {
    const wake = room;
    room = undefined;
    wake?.();
  };
  const wakeConsumer = () => {
    const wake = ready;
    ready = undefined;
    wake?.();
  };
  const onStop = () => {
    wakeProducer();
    wakeConsumer();
  };
  stop.signal.addEventListener('abort', onStop, { once: true });

  const emit = async (value: T): Promise<void> => {
    while (queue.length >= capacity && !stop.signal.aborted) {
      await new Promise<void>((resolve) => (room = resolve));
    }
    if (stop.signal.aborted) return;
    queue.push(value);
    wakeConsumer();
  };
  const task = run(emit, stop.signal).then(
    () => {
      finished = true;
      wakeConsumer();
    },
    (error: unknown) => {
      failure = { error };
      finished = true;
      wakeConsumer();
    },
  );

  try {
    for (;;) {
      if (queue.length > 0) {
        const value = queue.shift() as T;
        wakeProducer();
        yield value;
        continue;
      }
      if (failure !== undefined) throw failure.error;
      if (finished || stop.signal.aborted) return;
      await new Promise<void>((resolve) => (ready = resolve));
    }
  } finally {
    stop.abort();
    outer?.removeEventListener('abort', onOuterAbort);
    await task;
  }
}
