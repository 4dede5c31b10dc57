import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export interface LoggerOptions {
  readonly level?: string;
  /** File descriptor to write to: 1 (stdout) for servers, 2 (stderr) for CLI commands. */
  readonly fd?: 1 | 2;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env['RHEOS_LOG_LEVEL'] ?? 'info',
      base: { pid: process.pid },
    },
    pino.destination({ fd: options.fd ?? 1, sync: true }),
  );
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
