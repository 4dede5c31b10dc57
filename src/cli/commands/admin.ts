import type { Command } from 'commander';
import { CoordinatorLink } from '../../coordinator/coordinator-link.js';
import {
  CoordinatorServiceService as Coordinator,
  ReplicaRole,
  type DescribeClusterResponse,
} from '../../gen/rheos/v1/coordinator.js';
import { printJson, table } from '../format.js';
import { endpointsFrom } from '../options.js';

interface GlobalOptions {
  endpoint?: string;
}

export function registerAdmin(program: Command): void {
  const admin = program.command('admin').description('look at the cluster (asks the coordinators)');
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
}

/** The cluster as a table per broker, then each shard's replicas with its reported leader. */
export function formatCluster(cluster: DescribeClusterResponse): string {
  const lines: string[] = [];
  const coordinators = cluster.coordinators
    .map((c) => `${c.coordinatorId} ${c.apiEndpoint}${c.leader ? ' (leader)' : ''}`)
    .join(', ');
  lines.push(`coordinators: ${coordinators}   metadata version ${cluster.metadataVersion}`, '');
  const rows = [['BROKER', 'ZONE', 'STATE', 'API', 'REPLICAS', 'LEADERS', 'LAST HEARTBEAT']];
  for (const b of cluster.brokers) {
    const leaders = b.replicas.filter((r) => r.reportedRole === ReplicaRole.REPLICA_ROLE_LEADER);
    rows.push([
      String(b.brokerId),
      b.zone === '' ? '-' : b.zone,
      b.state,
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
