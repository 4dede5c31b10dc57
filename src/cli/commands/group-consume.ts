import type { Command } from 'commander';
import type { RheosClient } from '../../client/client.js';
import { consumeGroup, type GroupBatch } from '../../client/group-consumer.js';
import { ensureStreamConsumer } from '../../client/stream-consumers.js';
import { LeaseLostError } from '../../common/errors.js';
import { recordLine, writeOut } from '../format.js';
import { parseEdgePosition, parsePositiveInt, type EdgePosition } from '../options.js';

interface ConsumeOptions {
  stream: string;
  workerId?: string;
  from: string;
  fanOut?: string;
  checkpointIntervalMs: number;
  base64?: boolean;
}

/**
 * `rheos groups consume APP --stream S`: one worker of a consumer group, printing each record it
 * processes as a JSON line (as `rheos tail` does). Run several, and they share the shards; kill
 * one, and the others take its shards over once it is silent for the group's failover time.
 * What was printed is checkpointed once per interval, so a worker that dies replays at most one
 * interval's records of its shards to their next holders (at-least-once). SIGINT or
 * SIGTERM checkpoints everything printed and releases the leases, so the others go on exactly
 * where it stopped.
 */
export function registerGroupConsume(groups: Command, connect: () => RheosClient): void {
  groups
    .command('consume')
    .description(
      'process a stream as one worker of a consumer group, printing each record as a JSON line; workers share the shards',
    )
    .argument('<application>', 'the consumer group (the KCL application name)')
    .requiredOption(
      '--stream <name>',
      'the stream the group reads (fixed when the group is created)',
    )
    .option('--worker-id <id>', "unique among the group's workers (default: a random id)")
    .option(
      '--from <position>',
      'where shards never checkpointed start when the group is created: trim-horizon or latest',
      'trim-horizon',
    )
    .option(
      '--fan-out <consumer-name>',
      'read by enhanced fan-out as this consumer (registered if it is not yet) instead of polling',
    )
    .option(
      '--checkpoint-interval-ms <ms>',
      'checkpoint what was printed this often',
      parsePositiveInt,
      1_000,
    )
    .option('--base64', 'print data as base64 instead of UTF-8 text')
    .action(async (application: string, options: ConsumeOptions) => {
      const initialPosition = parseEdgePosition(options.from);
      const client = connect();
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const fanOutConsumerArn =
          options.fanOut === undefined
            ? undefined
            : await ensureStreamConsumer(client, options.stream, options.fanOut, {
                signal: stop.signal,
              });
        await consume(
          client,
          application,
          options,
          initialPosition,
          fanOutConsumerArn,
          stop.signal,
        );
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        client.close();
      }
    });
}

async function consume(
  client: RheosClient,
  application: string,
  options: ConsumeOptions,
  initialPosition: EdgePosition,
  fanOutConsumerArn: string | undefined,
  signal: AbortSignal,
): Promise<void> {
  const consumer = consumeGroup({
    client,
    application,
    streamName: options.stream,
    initialPosition,
    ...(options.workerId === undefined ? {} : { workerId: options.workerId }),
    ...(fanOutConsumerArn === undefined ? {} : { fanOutConsumerArn }),
  });
  process.stderr.write(`rheos: worker ${consumer.workerId} of group ${application}\n`);
  // Per shard: the newest printed batch not yet checkpointed.
  const unsaved = new Map<string, GroupBatch>();
  // Printing and checkpointing take turns, so no checkpoint runs ahead of what was printed.
  let turn: Promise<void> = Promise.resolve();
  const inTurn = (task: () => Promise<void>): Promise<void> => {
    const run = turn.catch(() => undefined).then(task);
    turn = run;
    return run;
  };
  const saveAll = async () => {
    for (const batch of [...unsaved.values()]) {
      unsaved.delete(batch.shardId);
      try {
        await batch.checkpoint();
      } catch (error) {
        // Lost: the shard is another worker's now, which reads again what this one printed
        // after its last checkpoint (at-least-once). Anything else: try again next time.
        if (error instanceof LeaseLostError) continue;
        if (!unsaved.has(batch.shardId)) unsaved.set(batch.shardId, batch);
        process.stderr.write(`rheos: checkpoint of ${batch.shardId} failed: ${String(error)}\n`);
      }
    }
  };
  // On a timer, not per batch: a shard that goes quiet is checkpointed too, so a worker that
  // dies replays at most one interval's records.
  const timer = setInterval(() => void inTurn(saveAll), options.checkpointIntervalMs);
  const stopping = (async () => {
    if (!signal.aborted) {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    }
    // Whatever was printed is checkpointed before the leases are released.
    await inTurn(saveAll).catch(() => undefined);
    await consumer.stop();
  })();
  try {
    for await (const batch of consumer) {
      // Stopping: nothing more is printed; the loop ends once the worker has stopped (breaking
      // out now would release the leases before the last checkpoints).
      if (signal.aborted) continue;
      await inTurn(async () => {
        let text = '';
        for (const r of batch.records) {
          text += recordLine(batch.shardId, r, options.base64 === true) + '\n';
        }
        await writeOut(text);
        if (!batch.signal.aborted) unsaved.set(batch.shardId, batch);
      });
    }
  } finally {
    clearInterval(timer);
    if (!signal.aborted) {
      // The worker ended by itself (an error): nothing is left to wait for.
      await consumer.stop().catch(() => undefined);
    } else {
      await stopping;
    }
  }
}
