import type { Command } from 'commander';
import { createClient } from '../../client/client.js';
import { UNLIMITED_SHARD_LIMITS } from '../../common/limits.js';
import { StreamMode } from '../../gen/rheos/v1/stream.js';
import { modeName, printJson, statusName } from '../format.js';
import { endpointsFrom, parsePositiveInt } from '../options.js';

interface GlobalOptions {
  endpoint?: string;
}

interface CreateOptions {
  shards?: number;
  onDemand?: boolean;
  wait: boolean;
  unlimited?: boolean;
  replicationFactor?: number;
}

export function registerStream(program: Command): void {
  const stream = program.command('stream').description('create, list, describe and delete streams');
  const client = () => createClient({ endpoints: endpointsFrom(program.opts<GlobalOptions>()) });

  stream
    .command('create')
    .description('create a stream and wait until it is ACTIVE')
    .argument('<name>', 'stream name ([a-zA-Z0-9_.-], 1-128 characters)')
    .option('--shards <count>', 'number of shards (provisioned mode)', parsePositiveInt)
    .option('--on-demand', 'on-demand mode instead of a shard count')
    .option('--unlimited', 'no per-shard throughput limits (default: Kinesis provisioned limits)')
    .option(
      '--replication-factor <n>',
      'replicas per shard in a cluster (default: the coordinator default, 3)',
      parsePositiveInt,
    )
    .option('--no-wait', 'return as soon as the stream is CREATING')
    .action(async (name: string, options: CreateOptions) => {
      if ((options.shards === undefined) === (options.onDemand !== true)) {
        throw new Error('give exactly one of --shards N or --on-demand');
      }
      const c = client();
      try {
        await c.createStream({
          streamName: name,
          ...(options.shards === undefined ? {} : { shardCount: options.shards }),
          ...(options.replicationFactor === undefined
            ? {}
            : { replicationFactor: options.replicationFactor }),
          streamMode: options.onDemand
            ? StreamMode.STREAM_MODE_ON_DEMAND
            : StreamMode.STREAM_MODE_PROVISIONED,
          ...(options.unlimited ? { shardLimits: UNLIMITED_SHARD_LIMITS } : {}),
        });
        if (options.wait) await c.waitForStreamActive(name);
        process.stderr.write(`stream ${name} ${options.wait ? 'is ACTIVE' : 'is being created'}\n`);
      } finally {
        c.close();
      }
    });

  stream
    .command('list')
    .description('list stream names, one per line')
    .action(async () => {
      const c = client();
      try {
        let nextToken = '';
        do {
          const page = await c.listStreams(nextToken === '' ? {} : { nextToken });
          for (const s of page.streamSummaries) {
            process.stdout.write(
              `${s.streamName}\t${statusName(s.streamStatus)}\t${modeName(s.streamMode)}\n`,
            );
          }
          nextToken = page.nextToken;
        } while (nextToken !== '');
      } finally {
        c.close();
      }
    });

  stream
    .command('describe')
    .description('print a stream and its shards as JSON')
    .argument('<name>', 'stream name')
    .action(async (name: string) => {
      const c = client();
      try {
        const { streamDescriptionSummary: summary } = await c.describeStreamSummary({
          streamName: name,
        });
        const shards = [];
        let nextToken = '';
        do {
          const page = await c.listShards(nextToken === '' ? { streamName: name } : { nextToken });
          shards.push(...page.shards);
          nextToken = page.nextToken;
        } while (nextToken !== '');
        if (summary === undefined) throw new Error('the server sent no stream description');
        printJson({
          streamName: summary.streamName,
          streamArn: summary.streamArn,
          status: statusName(summary.streamStatus),
          mode: modeName(summary.streamMode),
          retentionPeriodHours: summary.retentionPeriodHours,
          createdAt: new Date(summary.streamCreationTimestampMs).toISOString(),
          openShardCount: summary.openShardCount,
          shardLimits: summary.shardLimits,
          shards: shards.map((s) => ({
            shardId: s.shardId,
            hashKeyRange: s.hashKeyRange,
            sequenceNumberRange: s.sequenceNumberRange,
          })),
        });
      } finally {
        c.close();
      }
    });

  stream
    .command('delete')
    .description('delete a stream and all its data')
    .argument('<name>', 'stream name')
    .action(async (name: string) => {
      const c = client();
      try {
        await c.deleteStream({ streamName: name });
        process.stderr.write(`stream ${name} is being deleted\n`);
      } finally {
        c.close();
      }
    });
}
