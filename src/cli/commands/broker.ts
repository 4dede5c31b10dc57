import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { parseClusterConfig } from '../../broker/cluster-config.js';
import { DEFAULT_IDENTITY } from '../../common/arn.js';
import { createLogger } from '../../common/logger.js';
import { startBroker, type BrokerNodeConfig } from '../../server/broker-node.js';
import { stopOnSignals } from '../lifecycle.js';
import type { LimitsMode } from '../../server/shard-limits.js';
import {
  collectIdAddress,
  parseEndpointList,
  parseLimitsMode,
  parsePositiveInt,
} from '../options.js';

interface BrokerOptions {
  config?: string;
  coordinators?: string[];
  clusterId: string;
  zone: string;
  id?: number;
  dataDir: string;
  apiListen?: string;
  peerListen?: string;
  advertiseApi?: string;
  advertisePeer?: string;
  peer: Map<number, string>;
  admin?: string;
  httpListen?: string;
  region: string;
  tickMs: number;
  catchUpBytesPerSecond: number;
  limits: LimitsMode;
  subscriptionLifetimeMs: number;
  logLevel: string;
  exitWithParent?: boolean;
}

export function registerBroker(program: Command): void {
  program
    .command('broker')
    .description(
      'run one broker of a cluster: replicas placed by the coordinators (--coordinators) or by a cluster file (--config)',
    )
    .option(
      '--coordinators <list>',
      'host:port of the coordinators, comma-separated',
      parseEndpointList,
    )
    .option('--cluster-id <id>', 'cluster id (with --coordinators)', 'rheos')
    .option('--zone <zone>', 'failure domain (rack, availability zone) for placement', '')
    .option(
      '--config <file>',
      'cluster file (JSON: clusterId, brokers, streams) for static placement',
    )
    .option(
      '--id <n>',
      'broker id (with --config: required; with --coordinators: given once by them if absent)',
      parsePositiveInt,
    )
    .option('--data-dir <path>', 'data folder', './.rheos-broker')
    .option('--api-listen <host:port>', 'listen here for clients')
    .option('--peer-listen <host:port>', 'listen here for brokers')
    .option(
      '--catch-up-bytes-per-second <n>',
      'bytes per second per peer that replica moves and lagging followers copy (the move rate)',
      parsePositiveInt,
      64 * 1024 * 1024,
    )
    .option(
      '--advertise-api <host:port>',
      'address others reach the API at (default: --api-listen)',
    )
    .option(
      '--advertise-peer <host:port>',
      'address brokers reach this one at (default: --peer-listen)',
    )
    .option(
      '--peer <id=host:port>',
      'reach broker ID at this address instead (repeatable; tests put proxies here)',
      collectIdAddress,
      new Map<number, string>(),
    )
    .option(
      '--http-listen <host:port>',
      'serve the Kinesis-compatible HTTP API (AWS SDK, AWS CLI) here, routed to shard leaders',
    )
    .option('--admin <host:port>', 'HTTP admin endpoint (/metrics, /healthz)')
    .option('--region <region>', 'AWS region this cluster says it is in', 'us-east-1')
    .option('--tick-ms <ms>', 'Raft tick (election timeout is 10-20 ticks)', parsePositiveInt, 50)
    .option(
      '--limits <mode>',
      "per-shard limits on this broker: aws (each stream's, Kinesis' by default) or off (none)",
      parseLimitsMode,
      'aws',
    )
    .option(
      '--subscription-lifetime-ms <ms>',
      'how long a SubscribeToShard subscription lasts before the consumer must subscribe again',
      parsePositiveInt,
      300_000,
    )
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error)', 'info')
    .option(
      '--exit-with-parent',
      'exit when standard input closes (rheos dev runs its brokers so; they die with it)',
    )
    .action(async (options: BrokerOptions) => {
      if (options.exitWithParent === true) {
        // A parent killed with SIGKILL cannot stop its children; its end of the pipe closes.
        process.stdin.on('close', () => process.exit(0));
        process.stdin.on('end', () => process.exit(0));
        process.stdin.resume();
      }
      if ((options.config === undefined) === (options.coordinators === undefined)) {
        throw new InvalidArgumentError('give exactly one of --coordinators and --config');
      }
      const logger = createLogger({ level: options.logLevel });
      const cluster: BrokerNodeConfig['cluster'] =
        options.config !== undefined
          ? parseClusterConfig(await readFile(options.config, 'utf8'))
          : {
              clusterId: options.clusterId,
              coordinators: options.coordinators ?? [],
              zone: options.zone,
              ...(options.advertiseApi === undefined ? {} : { advertiseApi: options.advertiseApi }),
              ...(options.advertisePeer === undefined
                ? {}
                : { advertisePeer: options.advertisePeer }),
            };
      const unsafeAckBeforeCommit = process.env['RHEOS_UNSAFE_ACK_BEFORE_COMMIT'] === '1';
      if (unsafeAckBeforeCommit) {
        logger.warn(
          'RHEOS_UNSAFE_ACK_BEFORE_COMMIT=1: writes are acknowledged before they commit (tests only)',
        );
      }
      const broker = await startBroker({
        cluster,
        ...(options.id === undefined ? {} : { brokerId: options.id }),
        dataDir: options.dataDir,
        ...(options.apiListen === undefined ? {} : { apiListen: options.apiListen }),
        ...(options.peerListen === undefined ? {} : { peerListen: options.peerListen }),
        ...(options.peer.size === 0 ? {} : { peerAddresses: options.peer }),
        adminListen: options.admin ?? null,
        httpListen: options.httpListen ?? null,
        identity: { region: options.region, accountId: DEFAULT_IDENTITY.accountId },
        tickMs: options.tickMs,
        catchUpBytesPerSecond: options.catchUpBytesPerSecond,
        limits: options.limits,
        subscriptionLifetimeMs: options.subscriptionLifetimeMs,
        logger,
        unsafeAckBeforeCommit,
      });
      logger.info(
        {
          id: broker.id,
          api: broker.apiAddress,
          peer: broker.peerAddress,
          dataDir: options.dataDir,
        },
        'rheos broker is ready',
      );
      stopOnSignals(logger, () => broker.close());
    });
}
