import { execFileSync } from 'node:child_process';
import { cpus, release, totalmem } from 'node:os';

/** What a benchmark figure is worth without: the commit and the machine it was measured on. */
export interface RunContext {
  readonly commit: string;
  readonly dirty: boolean;
  readonly date: string;
  readonly machine: {
    readonly cpu: string;
    readonly cores: number;
    readonly memoryGiB: number;
    readonly kernel: string;
    readonly node: string;
  };
}

export function runContext(): RunContext {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      return '';
    }
  };
  return {
    commit: git('rev-parse', 'HEAD') || 'unknown',
    dirty: git('status', '--porcelain', '--untracked-files=no') !== '',
    date: new Date().toISOString(),
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      node: process.version,
    },
  };
}
