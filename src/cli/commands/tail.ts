import type { Command } from 'commander';
import { createClient } from '../../client/client.js';
import { readLineage } from '../../client/lineage-reader.js';
import { recordLine, writeOut } from '../format.js';
import { endpointsFrom, parseEdgePosition, parsePositiveInt } from '../options.js';

interface TailOptions {
  from: string;
  base64?: boolean;
  follow: boolean;
  limit?: number;
}

export function registerTail(program: Command): void {
  program
    .command('tail')
    .description(
      'print the records of a stream, one JSON object per line: every shard, parents before their children (splits and merges are followed)',
    )
    .argument('<stream>', 'stream name')
    .option(
      '--from <position>',
      'trim-horizon (every record kept, every generation of shards) or latest (only new records)',
      'latest',
    )
    .option('--base64', 'print data as base64 instead of UTF-8 text')
    .option('--no-follow', 'stop once every open shard has been read to its end')
    .option('--limit <count>', 'stop after this many records', parsePositiveInt)
    .action(async (stream: string, options: TailOptions) => {
      const from = parseEdgePosition(options.from);
      const client = createClient({
        endpoints: endpointsFrom(program.opts<{ endpoint?: string }>()),
      });
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let printed = 0;
      try {
        const records = readLineage({
          client,
          streamName: stream,
          from,
          follow: options.follow,
          signal: stop.signal,
        });
        for await (const { shardId, record } of records) {
          printed++;
          await writeOut(recordLine(shardId, record, options.base64 === true) + '\n');
          if (options.limit !== undefined && printed >= options.limit) break;
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        client.close();
      }
    });
}
