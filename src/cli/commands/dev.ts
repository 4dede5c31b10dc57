import type { Command } from 'commander';
import { DEFAULT_SUBSCRIPTION_LIMITS } from '../../broker/subscriptions.js';
import { DEFAULT_IDENTITY } from '../../common/arn.js';
import { createLogger } from '../../common/logger.js';
import { startDevCluster } from '../../server/dev-cluster.js';
import { startNode } from '../../server/node.js';
import { stopOnSignals } from '../lifecycle.js';
import type { LimitsMode } from '../../server/shard-limits.js';
import { parseLimitsMode, parsePort, parsePositiveInt } from '../options.js';

interface DevOptions {
  host: string;
  grpcPort: number;
  httpPort: number;
  region: string;
  adminPort: number;
  dataDir: string;
  brokers?: number;
  limits: LimitsMode;
  subscriptionLifetimeMs: number;
  groupFailoverMs: number;
  logLevel: string;
}

export function registerDev(program: Command): void {
  program
    .command('dev')
    .description(
      'run Rheos on this machine: one process (metadata, broker and APIs), or a coordinator with --brokers N broker processes',
    )
    .option('--host <address>', 'address to bind', '127.0.0.1')
    .option('--grpc-port <port>', 'native gRPC API port', parsePort, 7400)
    .option(
      '--http-port <port>',
      'Kinesis-compatible HTTP API port (AWS SDK, AWS CLI)',
      parsePort,
      4567,
    )
    .option(
      '--region <region>',
      'AWS region this server says it is in (ARNs, SDK endpoints)',
      'us-east-1',
    )
    .option('--admin-port <port>', 'HTTP admin port (/metrics, /healthz)', parsePort, 7480)
    .option('--data-dir <path>', 'data folder', './.rheos')
    .option(
      '--brokers <n>',
      'run a coordinator here and N broker processes on 127.0.0.2, 127.0.0.3, ... (replication factor min(3, N))',
      parsePositiveInt,
    )
    .option(
      '--limits <mode>',
      "per-shard limits: aws (Kinesis' quotas, throttling with ProvisionedThroughputExceededException) or off (no stream is throttled)",
      parseLimitsMode,
      'aws',
    )
    .option(
      '--subscription-lifetime-ms <ms>',
      'how long a SubscribeToShard subscription lasts before the consumer must subscribe again',
      parsePositiveInt,
      300_000,
    )
    .option(
      '--group-failover-ms <ms>',
      'how long a consumer-group worker may be silent before others may take its leases',
      parsePositiveInt,
      10_000,
    )
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error)', 'info')
    .action(async (options: DevOptions) => {
      const logger = createLogger({ level: options.logLevel });
      const identity = { region: options.region, accountId: DEFAULT_IDENTITY.accountId };
      if (options.brokers !== undefined) {
        const cluster = await startDevCluster({
          brokers: options.brokers,
          dataDir: options.dataDir,
          host: options.host,
          grpcPort: options.grpcPort,
          httpPort: options.httpPort,
          adminPort: options.adminPort,
          identity,
          logger,
          bin: process.argv[1] as string,
          limits: options.limits,
          subscriptionLifetimeMs: options.subscriptionLifetimeMs,
          groupFailoverMs: options.groupFailoverMs,
        });
        logger.info(
          {
            grpc: cluster.grpcAddress,
            http: `${options.host}:${options.httpPort}`,
            brokers: cluster.brokerEndpoints,
            pids: Object.fromEntries(cluster.pids),
            dataDir: options.dataDir,
            limits: options.limits,
          },
          'rheos dev is ready',
        );
        stopOnSignals(logger, () => cluster.close());
        return;
      }
      const node = await startNode({
        dataDir: options.dataDir,
        host: options.host,
        grpcPort: options.grpcPort,
        httpPort: options.httpPort,
        adminPort: options.adminPort,
        identity,
        logger,
        limits: options.limits,
        subscriptionLimits: {
          ...DEFAULT_SUBSCRIPTION_LIMITS,
          lifetimeMs: options.subscriptionLifetimeMs,
        },
        groupFailoverMs: options.groupFailoverMs,
      });
      logger.info(
        {
          grpc: node.grpcAddress,
          admin: `${options.host}:${node.adminPort}`,
          dataDir: options.dataDir,
          limits: options.limits,
        },
        'rheos dev is ready',
      );
      stopOnSignals(logger, () => node.close());
    });
}
