/**
 * `npm run sim`: explores seeds of the Raft simulator.
 *
 *   npm run sim -- --seeds 1000            seeds 1..1000 on all cores; prints failing seeds
 *   npm run sim -- --minutes 120           fresh random seeds for two hours
 *   npm run sim -- --seed 42 --trace       replays one seed, event by event
 *   npm run sim -- --seeds 500 --unsafe commitEntriesOfEarlierTerms   (a planted bug)
 *
 * A failing seed belongs in test/sim/regression-seeds.json, which CI replays on every run.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { UnsafeSwitches } from '../../src/raft/config.js';
import { runSeed, type SimOptions, type SimResult } from './simulation.js';

interface Job {
  readonly seeds: readonly number[] | undefined;
  readonly from: number;
  readonly stride: number;
  readonly deadlineMs: number | undefined;
  readonly options: Omit<SimOptions, 'seed' | 'trace'>;
}

function planted(name: string | undefined): Omit<SimOptions, 'seed' | 'trace'> {
  if (name === undefined) return {};
  if (name === 'ackBeforePersist') return { ackBeforePersist: true };
  if (name === 'rejoinWithEmptyDisk') return { rejoinWithEmptyDisk: true };
  const known: Array<keyof UnsafeSwitches> = [
    'commitEntriesOfEarlierTerms',
    'voteWithoutLogCheck',
    'leaderCountsUnsyncedEntries',
    'readWithoutQuorumCheck',
    'concurrentConfChanges',
    'installOlderSnapshots',
  ];
  if (!known.includes(name as keyof UnsafeSwitches)) {
    throw new Error(
      `--unsafe must be one of ${[...known, 'ackBeforePersist', 'rejoinWithEmptyDisk'].join(', ')}`,
    );
  }
  return { unsafe: { [name]: true } };
}

function work(job: Job, report: (result: SimResult) => void): void {
  if (job.seeds !== undefined) {
    for (const seed of job.seeds) report(runSeed({ seed, ...job.options }));
    return;
  }
  for (
    let seed = job.from;
    job.deadlineMs === undefined || Date.now() < job.deadlineMs;
    seed += job.stride
  ) {
    report(runSeed({ seed, ...job.options }));
  }
}

if (!isMainThread) {
  work(workerData as Job, (result) => parentPort?.postMessage(result));
} else {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string' },
      from: { type: 'string', default: '1' },
      seed: { type: 'string' },
      minutes: { type: 'string' },
      workers: { type: 'string' },
      trace: { type: 'boolean', default: false },
      unsafe: { type: 'string' },
    },
  });
  const options = planted(values.unsafe);
  if (values.seed !== undefined) {
    const seed = Number(values.seed);
    const result = runSeed({
      seed,
      ...options,
      ...(values.trace ? { trace: (line: string) => console.log(line) } : {}),
    });
    console.log(JSON.stringify(result, null, 2));
    process.exitCode = result.ok ? 0 : 1;
  } else {
    const workers = Number(values.workers ?? availableParallelism());
    const startedMs = Date.now();
    const deadlineMs =
      values.minutes === undefined ? undefined : startedMs + Number(values.minutes) * 60_000;
    const from =
      values.minutes !== undefined && values.seeds === undefined
        ? Math.floor(Math.random() * 2 ** 31)
        : Number(values.from);
    const count = values.seeds === undefined ? undefined : Number(values.seeds);
    if (count === undefined && deadlineMs === undefined)
      throw new Error('give --seeds N, --minutes M or --seed S');
    console.log(
      `rheos raft simulator: ${count === undefined ? `${values.minutes} minutes of seeds from ${from}` : `seeds ${from}..${from + count - 1}`}` +
        `, ${workers} workers${values.unsafe ? `, planted bug ${values.unsafe}` : ''}`,
    );
    let done = 0;
    const failures: SimResult[] = [];
    /** Every counter of SimStats, summed over the seeds run. */
    const totals = new Map<string, number>();
    const progress = setInterval(() => {
      const s = (Date.now() - startedMs) / 1000;
      console.log(`  ${done} seeds, ${(done / s).toFixed(1)} seeds/s, ${failures.length} failing`);
    }, 60_000);
    await Promise.all(
      Array.from({ length: workers }, (_, w) => {
        const seeds =
          count === undefined
            ? undefined
            : Array.from({ length: count }, (_, i) => from + i).filter((_, i) => i % workers === w);
        const job: Job = { seeds, from: from + w, stride: workers, deadlineMs, options };
        return new Promise<void>((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), { workerData: job });
          worker.on('message', (result: SimResult) => {
            done++;
            for (const [key, value] of Object.entries(result.stats))
              totals.set(key, (totals.get(key) ?? 0) + value);
            if (!result.ok) {
              failures.push(result);
              console.log(`FAIL seed ${result.seed}: ${result.violation}`);
            }
          });
          worker.on('error', reject);
          worker.on('exit', () => resolve());
        });
      }),
    );
    clearInterval(progress);
    const seconds = (Date.now() - startedMs) / 1000;
    console.log(
      JSON.stringify({
        seedsRun: done,
        seconds: Math.round(seconds),
        seedsPerSecond: Number((done / seconds).toFixed(1)),
        failing: failures.map((f) => f.seed),
        virtualHours: Number(((totals.get('virtualMs') ?? 0) / 3_600_000).toFixed(2)),
        totals: Object.fromEntries([...totals].filter(([key]) => key !== 'virtualMs')),
      }),
    );
    process.exitCode = failures.length === 0 ? 0 : 1;
  }
}
