import type { Command } from 'commander';
import { DEFAULT_IDENTITY } from '../../common/arn.js';
import { createLogger } from '../../common/logger.js';
import { startNode } from '../../server/node.js';
import { parsePort } from '../options.js';

interface DevOptions {
  host: string;
  grpcPort: number;
  httpPort: number;
  region: string;
  adminPort: number;
  dataDir: string;
  logLevel: string;
}

export function registerDev(program: Command): void {
  program
    .command('dev')
    .description('run a single-node Rheos (metadata, broker and APIs in one process)')
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
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error)', 'info')
    .action(async (options: DevOptions) => {
      const logger = createLogger({ level: options.logLevel });
      const node = await startNode({
        dataDir: options.dataDir,
        host: options.host,
        grpcPort: options.grpcPort,
        httpPort: options.httpPort,
        adminPort: options.adminPort,
        identity: { region: options.region, accountId: DEFAULT_IDENTITY.accountId },
        logger,
      });
      logger.info(
        {
          grpc: node.grpcAddress,
          admin: `${options.host}:${node.adminPort}`,
          dataDir: options.dataDir,
        },
        'rheos dev is ready',
      );
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) {
          logger.warn({ signal }, 'second signal: exiting now');
          process.exit(130);
        }
        stopping = true;
        logger.info({ signal }, 'stopping: finishing in-flight requests, closing the database');
        node.close().then(
          () => {
            logger.info('stopped');
            process.exit(0);
          },
          (error: unknown) => {
            logger.error({ err: error }, 'unclean stop');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}
