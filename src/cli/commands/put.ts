import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { createClient } from '../../client/client.js';
import { writeInOrder, type OutgoingRecord } from '../../client/ordered-writer.js';
import { printJson } from '../format.js';
import { endpointsFrom } from '../options.js';

interface PutOptions {
  key: string;
  explicitHashKey?: string;
  base64?: boolean;
}

export function registerPut(program: Command): void {
  program
    .command('put')
    .description('put one record (DATA), or one record per line of standard input, in order')
    .argument('<stream>', 'stream name')
    .argument('[data]', 'the record; without it, every line of stdin is a record')
    .requiredOption('--key <partitionKey>', 'partition key of the records')
    .option('--explicit-hash-key <decimal>', 'route by this hash key instead of the partition key')
    .option('--base64', 'the data (or each line) is base64-encoded binary')
    .action(async (stream: string, data: string | undefined, options: PutOptions) => {
      const client = createClient({
        endpoints: endpointsFrom(program.opts<{ endpoint?: string }>()),
      });
      const toRecord = (text: string): OutgoingRecord => ({
        partitionKey: options.key,
        data: options.base64 ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8'),
        ...(options.explicitHashKey === undefined
          ? {}
          : { explicitHashKey: options.explicitHashKey }),
      });
      try {
        if (data !== undefined) {
          const record = toRecord(data);
          const result = await client.putRecord({ streamName: stream, ...record });
          printJson({ shardId: result.shardId, sequenceNumber: result.sequenceNumber });
          return;
        }
        // SIGINT/SIGTERM stop reading; records already read are still written before exit.
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
        stop.signal.addEventListener('abort', () => lines.close(), { once: true });
        async function* records(): AsyncGenerator<OutgoingRecord> {
          for await (const line of lines) yield toRecord(line);
        }
        const summary = await writeInOrder(records(), {
          client,
          streamName: stream,
          signal: stop.signal,
        });
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.stderr.write(
          `put ${summary.stored} records` +
            (summary.retried > 0
              ? ` (${summary.retried} retried after throttling or failure)`
              : '') +
            (summary.indeterminate > 0
              ? `; ${summary.indeterminate} outcomes were uncertain, so duplicates are possible`
              : '') +
            '\n',
        );
      } finally {
        client.close();
      }
    });
}
