import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_IDENTITY } from '../../common/arn.js';
import { createLogger } from '../../common/logger.js';
import { DEFAULT_ON_DEMAND } from '../../coordinator/on-demand.js';
import { startCoordinator, type CoordinatorMember } from '../../server/coordinator-node.js';
import { stopOnSignals } from '../lifecycle.js';
import { parsePositiveInt } from '../options.js';

interface CoordinatorOptions {
  id: number;
  member: Map<number, CoordinatorMember>;
  clusterId: string;
  dataDir: string;
  apiListen: string;
  peerListen: string;
  admin?: string;
  region: string;
  tickMs: number;
  heartbeatMs: number;
  replicationFactor: number;
  groupFailoverMs: number;
  maxConcurrentMoves: number;
  replaceDownAfterMs: number;
  onDemandSplitBytesPerSecond: number;
  onDemandSplitAfterMs: number;
  onDemandMergeBytesPerSecond: number;
  onDemandMergeAfterMs: number;
  logLevel: string;
}

function collectMember(
  value: string,
  previous: Map<number, CoordinatorMember>,
): Map<number, CoordinatorMember> {
  const match = /^([1-9]\d*)=(.+:\d+),(.+:\d+)$/.exec(value);
  if (match === null) {
    throw new InvalidArgumentError('must be ID=API_HOST:PORT,PEER_HOST:PORT with an id from 1.');
  }
  return new Map(previous).set(Number(match[1]), {
    api: match[2] as string,
    peer: match[3] as string,
  });
}

export function registerCoordinator(program: Command): void {
  program
    .command('coordinator')
    .description(
      'run one coordinator: the metadata quorum that places replicas and watches brokers',
    )
    .option('--id <n>', 'this coordinator id', parsePositiveInt, 1)
    .option(
      '--member <id=api,peer>',
      'every coordinator of the quorum, this one included (repeatable; default: this one alone)',
      collectMember,
      new Map<number, CoordinatorMember>(),
    )
    .option('--cluster-id <id>', 'cluster id (brokers must name the same)', 'rheos')
    .option('--data-dir <path>', 'data folder', './.rheos-coordinator')
    .option('--api-listen <host:port>', 'API for clients and brokers (alone)', '127.0.0.1:7500')
    .option('--peer-listen <host:port>', 'peer service for coordinators (alone)', '127.0.0.1:7501')
    .option('--admin <host:port>', 'HTTP admin endpoint (/metrics, /healthz)')
    .option('--region <region>', 'AWS region this cluster says it is in', 'us-east-1')
    .option('--tick-ms <ms>', 'Raft tick (election timeout is 10-20 ticks)', parsePositiveInt, 50)
    .option('--heartbeat-ms <ms>', 'broker heartbeat period', parsePositiveInt, 500)
    .option('--replication-factor <n>', 'replicas per shard by default', parsePositiveInt, 3)
    .option(
      '--group-failover-ms <ms>',
      'how long a consumer-group worker may be silent before others may take its leases',
      parsePositiveInt,
      10_000,
    )
    .option(
      '--max-concurrent-moves <n>',
      'replica moves in flight at most, cluster-wide',
      parsePositiveInt,
      2,
    )
    .option(
      '--replace-down-after-ms <ms>',
      'a broker down this long has its replicas re-created on the others',
      parsePositiveInt,
      600_000,
    )
    .option(
      '--on-demand-split-bytes-per-second <n>',
      'an ON_DEMAND stream splits a shard that writes more than this...',
      parsePositiveInt,
      DEFAULT_ON_DEMAND.splitAboveBytesPerSecond,
    )
    .option(
      '--on-demand-split-after-ms <ms>',
      '...for this long',
      parsePositiveInt,
      DEFAULT_ON_DEMAND.splitAfterMs,
    )
    .option(
      '--on-demand-merge-bytes-per-second <n>',
      'and merges two adjacent shards that each write less than this...',
      parsePositiveInt,
      DEFAULT_ON_DEMAND.mergeBelowBytesPerSecond,
    )
    .option(
      '--on-demand-merge-after-ms <ms>',
      `...for this long (down to ${DEFAULT_ON_DEMAND.minShards} shards)`,
      parsePositiveInt,
      DEFAULT_ON_DEMAND.mergeAfterMs,
    )
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error)', 'info')
    .action(async (options: CoordinatorOptions) => {
      const logger = createLogger({ level: options.logLevel });
      const members =
        options.member.size > 0
          ? options.member
          : new Map([[options.id, { api: options.apiListen, peer: options.peerListen }]]);
      if (!members.has(options.id)) {
        throw new InvalidArgumentError(`--member must list this coordinator (${options.id})`);
      }
      const coordinator = await startCoordinator({
        clusterId: options.clusterId,
        id: options.id,
        members,
        dataDir: options.dataDir,
        adminListen: options.admin ?? null,
        identity: { region: options.region, accountId: DEFAULT_IDENTITY.accountId },
        tickMs: options.tickMs,
        heartbeatIntervalMs: options.heartbeatMs,
        defaultReplicationFactor: options.replicationFactor,
        groupFailoverMs: options.groupFailoverMs,
        maxConcurrentMoves: options.maxConcurrentMoves,
        replaceDownAfterMs: options.replaceDownAfterMs,
        onDemand: {
          splitAboveBytesPerSecond: options.onDemandSplitBytesPerSecond,
          splitAfterMs: options.onDemandSplitAfterMs,
          mergeBelowBytesPerSecond: options.onDemandMergeBytesPerSecond,
          mergeAfterMs: options.onDemandMergeAfterMs,
        },
        logger,
      });
      logger.info(
        { id: options.id, api: coordinator.apiAddress, dataDir: options.dataDir },
        'rheos coordinator is ready',
      );
      stopOnSignals(logger, () => coordinator.close());
    });
}
