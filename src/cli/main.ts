import { Command } from 'commander';
import { RheosError } from '../common/errors.js';
import { registerAdmin } from './commands/admin.js';
import { registerBroker } from './commands/broker.js';
import { registerCoordinator } from './commands/coordinator.js';
import { registerDev } from './commands/dev.js';
import { registerGroups } from './commands/groups.js';
import { registerPut } from './commands/put.js';
import { registerStream } from './commands/stream.js';
import { registerTail } from './commands/tail.js';
import { DEFAULT_ENDPOINT } from './options.js';

const program = new Command('rheos')
  .description('Rheos: a self-hosted streaming cluster compatible with Amazon Kinesis')
  .option(
    '--endpoint <host:port>',
    `gRPC API of a Rheos node, or several brokers separated by commas (env RHEOS_ENDPOINT; default ${DEFAULT_ENDPOINT})`,
  )
  .showHelpAfterError();

registerDev(program);
registerBroker(program);
registerCoordinator(program);
registerStream(program);
registerPut(program);
registerTail(program);
registerAdmin(program);
registerGroups(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof RheosError) {
    process.stderr.write(`rheos: ${error.name}: ${error.message}\n`);
  } else {
    process.stderr.write(`rheos: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  process.exitCode = 1;
});
