import type { Command } from 'commander';
import { createClient, type RheosClient } from '../../client/client.js';
import {
  GroupInitialPosition,
  type GroupDescription,
  type Lease,
} from '../../gen/rheos/v1/control.js';
import { ShardIteratorType } from '../../gen/rheos/v1/data.js';
import { printJson, table } from '../format.js';
import { registerGroupConsume } from './group-consume.js';
import { endpointsFrom } from '../options.js';

interface GlobalOptions {
  endpoint?: string;
}

/**
 * `rheos groups list|describe APP`: consumer groups, their leases, owners, checkpoints and lag;
 * `rheos groups consume APP`: one worker of a group.
 */
export function registerGroups(program: Command): void {
  const groups = program.command('groups').description('consumer groups (leases and checkpoints)');
  const client = () => createClient({ endpoints: endpointsFrom(program.opts<GlobalOptions>()) });
  registerGroupConsume(groups, client);
  groups
    .command('list')
    .description('the consumer groups, one per line')
    .action(async () => {
      const c = client();
      try {
        for (const name of (await c.listGroups()).applications) process.stdout.write(`${name}\n`);
      } finally {
        c.close();
      }
    });
  groups
    .command('describe')
    .description(
      'each shard of the group: its lease owner, counter, checkpoint and lag (the age in ms of the oldest record not yet checkpointed)',
    )
    .argument('<application>', 'the consumer group (the KCL application name)')
    .option('--json', 'print the group and the lag per shard as JSON')
    .action(async (application: string, options: { json?: boolean }) => {
      const c = client();
      try {
        const { group } = await c.describeGroup({ application });
        if (group === undefined) throw new Error(`no answer for consumer group ${application}`);
        const lags = await Promise.all(group.leases.map((l) => lagOf(c, group, l)));
        if (options.json === true) {
          printJson({
            ...group,
            leases: group.leases.map((l, i) => ({ ...l, lagMs: lags[i] ?? null })),
          });
        } else {
          process.stdout.write(formatGroup(group, lags));
        }
      } finally {
        c.close();
      }
    });
}

/**
 * How far behind the lease's checkpoint is: the age in milliseconds of the oldest record after it
 * (what Kinesis reports as GetRecords.IteratorAgeMilliseconds); 0 when nothing waits, undefined
 * if the shard cannot be read.
 */
async function lagOf(
  client: RheosClient,
  group: GroupDescription,
  lease: Lease,
): Promise<number | undefined> {
  if (lease.checkpoint === 'SHARD_END') return 0;
  const base = { streamName: group.streamName, shardId: lease.shardId };
  const request =
    lease.checkpoint === 'TRIM_HORIZON' || lease.checkpoint === 'AT_TIMESTAMP'
      ? lease.checkpoint === 'AT_TIMESTAMP'
        ? {
            ...base,
            shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_AT_TIMESTAMP,
            timestampMs: group.initialTimestampMs,
          }
        : { ...base, shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON }
      : lease.checkpoint === 'LATEST'
        ? { ...base, shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_LATEST }
        : {
            ...base,
            shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER,
            startingSequenceNumber: lease.checkpoint,
          };
  try {
    const { shardIterator } = await client.getShardIterator(request);
    const page = await client.getRecords({ shardIterator, limit: 1 });
    const oldest = page.records[0];
    return oldest === undefined
      ? 0
      : Math.max(0, Date.now() - oldest.approximateArrivalTimestampMs);
  } catch {
    return undefined;
  }
}

export function formatGroup(
  group: GroupDescription,
  lags: ReadonlyArray<number | undefined>,
): string {
  const start =
    group.initialPosition === GroupInitialPosition.GROUP_INITIAL_POSITION_AT_TIMESTAMP
      ? `AT_TIMESTAMP ${new Date(group.initialTimestampMs).toISOString()}`
      : group.initialPosition.replace('GROUP_INITIAL_POSITION_', '');
  const lines = [
    `group ${group.application} on stream ${group.streamName}, starting at ${start}; failover ${group.failoverMs} ms`,
    `live workers: ${group.liveWorkers.length === 0 ? '(none)' : group.liveWorkers.join(', ')}`,
    '',
  ];
  const rows = [['SHARD', 'OWNER', 'COUNTER', 'CHECKPOINT', 'LAG MS', 'PARENTS']];
  group.leases.forEach((l, i) => {
    const lag = lags[i];
    rows.push([
      l.shardId,
      l.owner === '' ? '-' : `${l.owner}${l.expired ? ' (expired)' : ''}`,
      String(l.counter),
      l.checkpointSubSequenceNumber > 0
        ? `${l.checkpoint}/${l.checkpointSubSequenceNumber}`
        : l.checkpoint,
      lag === undefined ? '?' : String(lag),
      l.parentShardIds.length === 0 ? '-' : l.parentShardIds.join(','),
    ]);
  });
  lines.push(...table(rows), '');
  return lines.join('\n');
}
