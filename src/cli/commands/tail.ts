import type { Command } from 'commander';
import { createClient } from '../../client/client.js';
import { pollShard, type StartPosition } from '../../client/shard-poller.js';
import { endpointsFrom, parsePositiveInt } from '../options.js';

interface TailOptions {
  from: string;
  base64?: boolean;
  follow: boolean;
  limit?: number;
}

export function registerTail(program: Command): void {
  program
    .command('tail')
    .description('print the records of every shard of a stream, one JSON object per line')
    .argument('<stream>', 'stream name')
    .option('--from <position>', 'trim-horizon (oldest) or latest (only new records)', 'latest')
    .option('--base64', 'print data as base64 instead of UTF-8 text')
    .option('--no-follow', 'stop once every shard has been read to its end')
    .option('--limit <count>', 'stop after this many records', parsePositiveInt)
    .action(async (stream: string, options: TailOptions) => {
      const from = startPosition(options.from);
      const client = createClient({
        endpoints: endpointsFrom(program.opts<{ endpoint?: string }>()),
      });
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let printed = 0;
      try {
        const shardIds: string[] = [];
        let nextToken = '';
        do {
          const page = await client.listShards(
            nextToken === '' ? { streamName: stream } : { nextToken },
          );
          shardIds.push(...page.shards.map((s) => s.shardId));
          nextToken = page.nextToken;
        } while (nextToken !== '');
        await Promise.all(
          shardIds.map(async (shardId) => {
            const records = pollShard({
              client,
              streamName: stream,
              shardId,
              from,
              follow: options.follow,
              signal: stop.signal,
            });
            for await (const record of records) {
              if (options.limit !== undefined && printed >= options.limit) break;
              const line = JSON.stringify({
                shardId,
                sequenceNumber: record.sequenceNumber,
                partitionKey: record.partitionKey,
                arrivalTime: new Date(record.approximateArrivalTimestampMs).toISOString(),
                data: options.base64
                  ? record.data.toString('base64')
                  : record.data.toString('utf8'),
              });
              printed++;
              if (!process.stdout.write(line + '\n')) {
                await new Promise((resolve) => process.stdout.once('drain', resolve));
              }
              if (options.limit !== undefined && printed >= options.limit) stop.abort();
            }
          }),
        );
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        client.close();
      }
    });
}

function startPosition(text: string): StartPosition {
  switch (text) {
    case 'trim-horizon':
      return { type: 'TRIM_HORIZON' };
    case 'latest':
      return { type: 'LATEST' };
    default:
      throw new Error(`--from must be trim-horizon or latest, not ${text}`);
  }
}
