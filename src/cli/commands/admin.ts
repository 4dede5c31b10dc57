import type { Command } from 'commander';
import { CoordinatorLink } from '../../coordinator/coordinator-link.js';
import {
  CoordinatorServiceService as Coordinator,
  ReplicaRole,
  type DescribeClusterResponse,
} from '../../gen/rheos/v1/coordinator.js';
import { printJson, table } from '../format.js';
import { endpointsFrom, parsePositiveInt } from '../options.js';

interface GlobalOptions {
  endpoint?: string;
}

export function registerAdmin(program: Command): void {
  const admin = program
    .command('admin')
    .description('look at and change the cluster (asks the coordinators)');
  admin
    .command('cluster')
    .description(
      'brokers with their zones, state, replicas and the shard leaders they report (--endpoint: coordinators or brokers of the cluster)',
    )
    .option('--json', 'print the coordinator answer as JSON')
    .action(async (options: { json?: boolean }) => {
      const link = new CoordinatorLink({
        endpoints: endpointsFrom(program.opts<GlobalOptions>()),
        maxAttempts: 6,
        deadlineMs: 5_000,
      });
      try {
        const cluster = await link.call(Coordinator.describeCluster, {}, true);
        if (options.json === true) printJson(cluster);
        else process.stdout.write(formatCluster(cluster));
      } finally {
        link.close();
      }
    });
  admin
    .command('drain')
    .description(
      'move every replica and leadership off a broker (it takes no new ones); --undo lets it take them again',
    )
    .argument('<broker>', 'the broker id', parsePositiveInt)
    .option('--undo', 'stop draining: the broker takes replicas again (and balancing fills it)')
    .option('--wait', 'wait until the broker holds no replica (prints the moves as they go)')
    .action(async (brokerId: number, options: { undo?: boolean; wait?: boolean }) => {
      const link = new CoordinatorLink({
        endpoints: endpointsFrom(program.opts<GlobalOptions>()),
        maxAttempts: 6,
        deadlineMs: 5_000,
      });
      try {
        const draining = options.undo !== true;
        await link.call(Coordinator.setBrokerDraining, { brokerId, draining }, true);
        process.stdout.write(
          `broker ${brokerId} ${draining ? 'is draining' : 'takes replicas again'}\n`,
        );
        if (!draining || options.wait !== true) return;
        for (let lastCount = -1; ;) {
          const cluster = await link.call(Coordinator.describeCluster, {}, true);
          const broker = cluster.brokers.find((b) => b.brokerId === brokerId);
          if (broker === undefined) throw new Error(`broker ${brokerId} is not registered`);
          const count = broker.replicas.length;
          if (count !== lastCount) {
            process.stdout.write(
              `broker ${brokerId}: ${count} replicas left, ${cluster.moves.length} moves in flight\n`,
            );
            lastCount = count;
          }
          if (count === 0) return;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      } finally {
        link.close();
      }
    });
}

/** The cluster as a table per broker, then each shard's replicas with its reported leader. */
export function formatCluster(cluster: DescribeClusterResponse): string {
  const lines: string[] = [];
  const coordinators = cluster.coordinators
    .map((c) => `${c.coordinatorId} ${c.apiEndpoint}${c.leader ? ' (leader)' : ''}`)
    .join(', ');
  lines.push(`coordinators: ${coordinators}   metadata version ${cluster.metadataVersion}`, '');
  const rows = [['BROKER', 'ZONE', 'STATE', 'API', 'REPLICAS', 'LEADERS', 'LAST HEARTBEAT']];
  // A draining broker shows it in its state.
  for (const b of cluster.brokers) {
    const leaders = b.replicas.filter((r) => r.reportedRole === ReplicaRole.REPLICA_ROLE_LEADER);
    rows.push([
      String(b.brokerId),
      b.zone === '' ? '-' : b.zone,
      b.draining ? `${b.state} (draining)` : b.state,
      b.apiEndpoint,
      String(b.replicas.length),
      String(leaders.length),
      b.lastHeartbeatAgeMs === undefined
        ? 'never'
        : `${(b.lastHeartbeatAgeMs / 1000).toFixed(1)}s ago`,
    ]);
  }
  lines.push(...table(rows), '');
  const shards = new Map<string, string[]>();
  for (const b of cluster.brokers) {
    for (const r of b.replicas) {
      const key = `${r.streamName} ${r.shardId}`;
      const leads = r.reportedRole === ReplicaRole.REPLICA_ROLE_LEADER;
      const list = shards.get(key) ?? [];
      list.push(leads ? `${b.brokerId}*` : String(b.brokerId));
      shards.set(key, list);
    }
  }
  if (cluster.moves.length > 0) {
    const moveRows = [['MOVING', 'SHARD', 'FROM', 'TO', 'WHY', 'FOR', 'STEP']];
    for (const m of cluster.moves) {
      moveRows.push([
        m.streamName,
        m.shardId,
        String(m.fromBroker),
        String(m.toBroker),
        m.reason,
        `${(m.ageMs / 1000).toFixed(1)}s`,
        m.step === '' ? '-' : m.step,
      ]);
    }
    lines.push(...table(moveRows), '');
  }
  if (shards.size > 0) {
    const shardRows = [['STREAM', 'SHARD', 'REPLICAS (* leads)']];
    for (const [key, replicas] of [...shards].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const [stream, shard] = key.split(' ') as [string, string];
      shardRows.push([stream, shard, replicas.join(' ')]);
    }
    lines.push(...table(shardRows), '');
  }
  return lines.join('\n');
}
