import type { Command } from 'commander';
import { createClient, type RheosClient } from '../../client/client.js';
import { listAllShards } from '../../client/lineage-reader.js';
import { UNLIMITED_SHARD_LIMITS } from '../../common/limits.js';
import { ScalingType } from '../../gen/rheos/v1/control.js';
import { StreamMode, type Shard } from '../../gen/rheos/v1/stream.js';
import { modeName, printJson, shardLine, statusName } from '../format.js';
import { endpointsFrom, parseHashKey, parsePositiveInt } from '../options.js';

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

interface SplitOptions {
  shard: string;
  hashKey?: string;
  wait: boolean;
}

interface MergeOptions {
  shard: string;
  adjacent: string;
  wait: boolean;
}

interface ScaleOptions {
  count: number;
  wait: boolean;
}

/** How long a split, merge or rescale may take before the command gives up waiting. */
const RESHARD_WAIT_MS = 300_000;

export function registerStream(program: Command): void {
  const stream = program
    .command('stream')
    .description('create, list, describe, delete and reshard streams');
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
    .command('split')
    .description('split a shard in two, wait until the stream is ACTIVE, print the open shards')
    .argument('<name>', 'stream name')
    .requiredOption('--shard <shard-id>', 'the open shard to split')
    .option(
      '--hash-key <key>',
      "first hash key of the second child (default: the middle of the shard's range)",
      parseHashKey,
    )
    .option('--no-wait', 'return as soon as the split has started')
    .action(async (name: string, options: SplitOptions) => {
      const c = client();
      try {
        const newStartingHashKey =
          options.hashKey ?? middleHashKey(await shardOf(c, name, options.shard));
        await c.splitShard({ streamName: name, shardToSplit: options.shard, newStartingHashKey });
        await afterReshard(
          c,
          name,
          options.wait,
          `split of ${options.shard} at ${newStartingHashKey}`,
        );
      } finally {
        c.close();
      }
    });

  stream
    .command('merge')
    .description(
      'merge two adjacent shards, wait until the stream is ACTIVE, print the open shards',
    )
    .argument('<name>', 'stream name')
    .requiredOption('--shard <shard-id>', 'one open shard')
    .requiredOption('--adjacent <shard-id>', 'the open shard whose hash range adjoins it')
    .option('--no-wait', 'return as soon as the merge has started')
    .action(async (name: string, options: MergeOptions) => {
      const c = client();
      try {
        await c.mergeShards({
          streamName: name,
          shardToMerge: options.shard,
          adjacentShardToMerge: options.adjacent,
        });
        await afterReshard(
          c,
          name,
          options.wait,
          `merge of ${options.shard} and ${options.adjacent}`,
        );
      } finally {
        c.close();
      }
    });

  stream
    .command('scale')
    .description(
      'change the number of open shards to N with even hash ranges (uniform scaling), wait until ACTIVE',
    )
    .argument('<name>', 'stream name')
    .requiredOption('--count <n>', 'target number of open shards', parsePositiveInt)
    .option('--no-wait', 'return as soon as the rescale has started')
    .action(async (name: string, options: ScaleOptions) => {
      const c = client();
      try {
        const answer = await c.updateShardCount({
          streamName: name,
          targetShardCount: options.count,
          scalingType: ScalingType.SCALING_TYPE_UNIFORM_SCALING,
        });
        await afterReshard(
          c,
          name,
          options.wait,
          `rescale from ${answer.currentShardCount} to ${answer.targetShardCount} shards`,
        );
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

/** The shard's listing, refused if it is not an open shard of the stream. */
async function shardOf(c: RheosClient, streamName: string, shardId: string): Promise<Shard> {
  const shard = (await listAllShards(c, streamName)).find((s) => s.shardId === shardId);
  if (shard === undefined) throw new Error(`stream ${streamName} has no shard ${shardId}`);
  if (!isOpen(shard)) throw new Error(`shard ${shardId} is closed (it was split or merged)`);
  return shard;
}

/** The hash key that halves the shard's range: the first key of the upper half. */
function middleHashKey(shard: Shard): string {
  const start = BigInt(shard.hashKeyRange?.startingHashKey ?? '0');
  const end = BigInt(shard.hashKeyRange?.endingHashKey ?? '0');
  if (end <= start)
    throw new Error(`shard ${shard.shardId} holds one hash key: it cannot be split`);
  return ((start + end + 1n) / 2n).toString();
}

function isOpen(shard: Shard): boolean {
  return (shard.sequenceNumberRange?.endingSequenceNumber ?? '') === '';
}

/** Waits for ACTIVE (unless told not to), then prints the open shards, lowest hash keys first. */
async function afterReshard(
  c: RheosClient,
  streamName: string,
  wait: boolean,
  what: string,
): Promise<void> {
  if (!wait) {
    process.stderr.write(`stream ${streamName}: ${what} started (UPDATING)\n`);
    return;
  }
  await c.waitForStreamActive(streamName, RESHARD_WAIT_MS, 100);
  const open = (await listAllShards(c, streamName)).filter(isOpen);
  open.sort((a, b) => {
    const x = BigInt(a.hashKeyRange?.startingHashKey ?? '0');
    const y = BigInt(b.hashKeyRange?.startingHashKey ?? '0');
    return x < y ? -1 : x > y ? 1 : 0;
  });
  for (const shard of open) process.stdout.write(shardLine(shard) + '\n');
  process.stderr.write(
    `stream ${streamName}: ${what} done, ACTIVE with ${open.length} open shards\n`,
  );
}
