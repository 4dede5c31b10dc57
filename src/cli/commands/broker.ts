import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { parseClusterConfig } from '../../broker/cluster-config.js';
import { DEFAULT_IDENTITY } from '../../common/arn.js';
import { createLogger } from '../../common/logger.js';
import { startBroker } from '../../server/broker-node.js';
import { parsePositiveInt } from '../options.js';

interface BrokerOptions {
  config: string;
  id: number;
  dataDir: string;
  apiListen?: string;
  peerListen?: string;
  peer: Map<number, string>;
  admin?: string;
  region: string;
  tickMs: number;
  logLevel: string;
}

function collectPeer(value: string, previous: Map<number, string>): Map<number, string> {
  const match = /^(\d+)=(.+:\d+)$/.exec(value);
  if (match === null) throw new InvalidArgumentError('must be ID=HOST:PORT.');
  return new Map(previous).set(Number(match[1]), match[2] as string);
}

export function registerBroker(program: Command): void {
  program
    .command('broker')
    .description('run one broker of a cluster whose streams and replicas a cluster file places')
    .requiredOption('--config <file>', 'cluster file (JSON: clusterId, brokers, streams)')
    .requiredOption('--id <n>', 'this broker id (in the cluster file)', parsePositiveInt)
    .option('--data-dir <path>', 'data folder', './.rheos-broker')
    .option('--api-listen <host:port>', 'listen here for clients (default: the file)')
    .option('--peer-listen <host:port>', 'listen here for brokers (default: the file)')
    .option(
      '--peer <id=host:port>',
      'reach broker ID at this address instead of the file (repeatable)',
      collectPeer,
      new Map<number, string>(),
    )
    .option('--admin <host:port>', 'HTTP admin endpoint (/metrics, /healthz)')
    .option('--region <region>', 'AWS region this cluster says it is in', 'us-east-1')
    .option('--tick-ms <ms>', 'Raft tick (election timeout is 10-20 ticks)', parsePositiveInt, 50)
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error)', 'info')
    .action(async (options: BrokerOptions) => {
      const logger = createLogger({ level: options.logLevel });
      const cluster = parseClusterConfig(await readFile(options.config, 'utf8'));
      const unsafeAckBeforeCommit = process.env['RHEOS_UNSAFE_ACK_BEFORE_COMMIT'] === '1';
      if (unsafeAckBeforeCommit) {
        logger.warn(
          'RHEOS_UNSAFE_ACK_BEFORE_COMMIT=1: writes are acknowledged before they commit (tests only)',
        );
      }
      const broker = await startBroker({
        cluster,
        brokerId: options.id,
        dataDir: options.dataDir,
        ...(options.apiListen === undefined ? {} : { apiListen: options.apiListen }),
        ...(options.peerListen === undefined ? {} : { peerListen: options.peerListen }),
        ...(options.peer.size === 0 ? {} : { peerAddresses: options.peer }),
        adminListen: options.admin ?? null,
        identity: { region: options.region, accountId: DEFAULT_IDENTITY.accountId },
        tickMs: options.tickMs,
        logger,
        unsafeAckBeforeCommit,
      });
      logger.info(
        {
          id: options.id,
          api: broker.apiAddress,
          peer: broker.peerAddress,
          dataDir: options.dataDir,
        },
        'rheos broker is ready',
      );
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) process.exit(130);
        stopping = true;
        logger.info({ signal }, 'stopping');
        broker.close().then(
          () => process.exit(0),
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
