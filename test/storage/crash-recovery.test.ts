import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { appendFile, readdir, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SingleNodeReplica } from '../../src/broker/single-node-replica.js';
import { ManualClock } from '../../src/common/clock.js';
import { EntryType } from '../../src/storage/entry-codec.js';
import { GroupCommitWriter } from '../../src/storage/group-commit.js';
import type { KvStore } from '../../src/storage/kv-store.js';
import { openBrokerStore } from '../../src/storage/log-store.js';
import { ShardLog } from '../../src/storage/shard-log.js';
import { tempDir } from '../helpers/node.js';
import { prng, recordsHash } from './fixtures/crash-protocol.js';
import { Cleanup, openStore, rawLog, RecordingKvStore, tempFolder } from './kv-helpers.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHARDS = [1, 2, 3];
const CYCLES = Number(process.env['RHEOS_CRASH_CYCLES'] ?? 8);
const SEED = Number(process.env['RHEOS_CRASH_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

const cleanup = new Cleanup();
const children = new Set<ChildProcess>();
let buildDir = '';

/**
 * The child runs outside vitest, so it needs JavaScript: compile the child (and the sources it
 * imports) with tsc into a private folder. A private folder, not dist/, so the test never races
 * another build and never runs stale code. node_modules is linked in so `classic-level` resolves.
 */
beforeAll(async () => {
  buildDir = await tempDir('rheos-crash-build-');
  await promisify(execFile)(
    process.execPath,
    [
      join(REPO, 'node_modules/typescript/bin/tsc'),
      '--ignoreConfig',
      join(REPO, 'test/storage/fixtures/crash-writer.ts'),
      '--outDir',
      buildDir,
      '--rootDir',
      REPO,
      '--module',
      'NodeNext',
      '--moduleResolution',
      'NodeNext',
      '--target',
      'ES2022',
      '--strict',
      '--skipLibCheck',
      '--types',
      'node',
    ],
    { cwd: REPO },
  );
  await writeFile(join(buildDir, 'package.json'), '{ "type": "module" }\n');
  await symlink(join(REPO, 'node_modules'), join(buildDir, 'node_modules'), 'dir');
}, 120_000);

afterAll(async () => {
  for (const child of children) killChild(child);
  if (buildDir !== '') {
    await unlink(join(buildDir, 'node_modules')).catch(() => undefined);
    await rm(buildDir, { recursive: true, force: true });
  }
});

afterEach(async () => {
  for (const child of children) killChild(child);
  await cleanup.run();
});

function killChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

interface Ack {
  readonly shard: number;
  readonly index: number;
  readonly count: number;
  readonly hash: string;
}

interface CycleResult {
  readonly acks: Ack[];
  /** The commit index each shard reported after recovery (its new term's empty entry). */
  readonly opened: Map<number, number>;
  readonly ready: boolean;
}

type KillPoint = { kind: 'first-open' } | { kind: 'ready' } | { kind: 'acks'; count: number };

/** Runs the child until the kill point, kill -9s it, and returns every complete line it printed. */
async function runAndKill(dataDir: string, seed: number, killAt: KillPoint): Promise<CycleResult> {
  const childJs = join(buildDir, 'test/storage/fixtures/crash-writer.js');
  const child = spawn(process.execPath, [childJs, dataDir, SHARDS.join(','), String(seed), '8'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  const acks: Ack[] = [];
  const opened = new Map<number, number>();
  let ready = false;
  let stderr = '';
  let pending = '';
  let killed = false;
  const kill = () => {
    if (killed) return;
    killed = true;
    killChild(child);
  };
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    // A line without its newline may have been cut by the kill: only complete lines count.
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const [kind, ...rest] = line.split(' ');
      if (kind === 'open') {
        opened.set(Number(rest[0]), Number(rest[1]));
        if (killAt.kind === 'first-open') kill();
      } else if (kind === 'ready') {
        ready = true;
        if (killAt.kind === 'ready') kill();
      } else if (kind === 'ack') {
        acks.push({
          shard: Number(rest[0]),
          index: Number(rest[1]),
          count: Number(rest[2]),
          hash: rest[3] as string,
        });
        if (killAt.kind === 'acks' && acks.length >= killAt.count) kill();
      } else {
        throw new Error(`unexpected line from the child: ${line}`);
      }
    }
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.on('close', (c, s) => resolve([c, s]));
  });
  children.delete(child);
  if (!killed || signal !== 'SIGKILL') {
    throw new Error(`the child ended by itself (code ${code}, signal ${signal}):\n${stderr}`);
  }
  return { acks, opened, ready };
}

describe('kill -9 recovery', () => {
  it(`keeps every acknowledged entry across ${CYCLES} kill -9 restarts (seed ${SEED})`, async () => {
    console.log(`crash-recovery: seed ${SEED}, ${CYCLES} cycles (RHEOS_CRASH_SEED to replay)`);
    const random = prng(SEED);
    const dataDir = await tempFolder(cleanup, 'rheos-crash-data-');
    const acked = new Map<number, Map<number, Ack>>(SHARDS.map((s) => [s, new Map()]));
    const lastTerm = new Map<number, number>(SHARDS.map((s) => [s, 0]));
    const maxAcked = (shard: number) => Math.max(0, ...(acked.get(shard)?.keys() ?? []));
    const why = (cycle: number, shard: number) => `seed ${SEED}, cycle ${cycle}, shard ${shard}`;
    let totalAcks = 0;

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const r = random();
      const killAt: KillPoint =
        cycle > 0 && r < 0.15
          ? { kind: 'first-open' } // in the middle of recovery
          : r < 0.25
            ? { kind: 'ready' }
            : { kind: 'acks', count: 1 + Math.floor(random() * 600) };
      const previousMax = new Map(SHARDS.map((s) => [s, maxAcked(s)]));
      const result = await runAndKill(dataDir, Math.floor(random() * 2 ** 31), killAt);
      totalAcks += result.acks.length;
      console.log(
        `cycle ${cycle}: killed at ${killAt.kind === 'acks' ? `${killAt.count} acks` : killAt.kind}; ` +
          `${result.acks.length} acks, ${result.opened.size} shards recovered`,
      );

      // Every recovery numbers its new empty entry after everything acknowledged before.
      for (const [shard, commitIndex] of result.opened) {
        expect(commitIndex, why(cycle, shard)).toBeGreaterThan(previousMax.get(shard) as number);
      }
      for (const ack of result.acks) {
        const shardAcks = acked.get(ack.shard) as Map<number, Ack>;
        expect(
          shardAcks.has(ack.index),
          `${why(cycle, ack.shard)}: index ${ack.index} acked twice`,
        ).toBe(false);
        shardAcks.set(ack.index, ack);
      }

      // Now and then a power cut tore the write in flight: garbage after the last frame.
      const torn = random() < 0.4 ? await tearNewestSegment(dataDir, random) : undefined;
      // Reopen the store in this process and check every shard's log.
      const kv = await openBrokerStore(dataDir);
      if (torn !== undefined) {
        expect((await stat(torn.path)).size, why(cycle, 0)).toBeLessThanOrEqual(torn.sizeBytes);
      }
      try {
        for (const shard of SHARDS) {
          await checkShard(
            kv,
            shard,
            acked.get(shard) as Map<number, Ack>,
            lastTerm,
            result,
            why(cycle, shard),
          );
        }
      } finally {
        await kv.close();
      }
    }
    expect(totalAcks).toBeGreaterThan(0);

    // A final in-process recovery: everything acknowledged is readable, and new entries come after.
    const kv = await openStore(cleanup, dataDir);
    const writer = new GroupCommitWriter(kv, {
      onFatal: (error) => {
        throw error;
      },
    });
    for (const shard of SHARDS) {
      const replica = await SingleNodeReplica.open({
        shard,
        log: new ShardLog(kv, shard),
        writer,
        clock: new ManualClock(),
      });
      const shardAcks = acked.get(shard) as Map<number, Ack>;
      expect(replica.commitIndex(), why(CYCLES, shard)).toBeGreaterThan(maxAcked(shard));
      const { index } = await replica.propose([
        { partitionKey: 'after', data: Buffer.from('crash') },
      ]);
      expect(index, why(CYCLES, shard)).toBeGreaterThan(maxAcked(shard));

      const byIndex = new Map<number, Array<{ partitionKey: string; data: Buffer }>>();
      let position = replica.trimHorizon();
      for (;;) {
        const read = await replica.read(position, { maxRecords: 10_000, maxBytes: 10 << 20 });
        for (const record of read.records) {
          const list = byIndex.get(record.position.index) ?? [];
          expect(record.position.offset).toBe(list.length);
          list.push(record);
          byIndex.set(record.position.index, list);
        }
        if (read.caughtUp) break;
        position = read.next;
      }
      for (const ack of shardAcks.values()) {
        const records = byIndex.get(ack.index) ?? [];
        expect(records.length, `${why(CYCLES, shard)}: entry ${ack.index}`).toBe(ack.count);
        expect(recordsHash(records), `${why(CYCLES, shard)}: entry ${ack.index}`).toBe(ack.hash);
      }
      expect(byIndex.get(index)?.[0]?.data.toString()).toBe('crash');
    }
    await writer.drain();
  }, 300_000);
});

/**
 * Appends what a torn write leaves: a frame header whose body never fully reached the disk, then
 * a few random bytes. Returns the segment and its size before.
 */
async function tearNewestSegment(
  dataDir: string,
  random: () => number,
): Promise<{ path: string; sizeBytes: number } | undefined> {
  const dir = join(dataDir, 'broker.segments');
  const newest = (await readdir(dir))
    .filter((n) => n.endsWith('.seg'))
    .sort()
    .pop();
  if (newest === undefined) return undefined;
  const path = join(dir, newest);
  const { size } = await stat(path);
  const garbage = Buffer.alloc(12 + Math.floor(random() * 500));
  garbage.write('RF', 0, 'latin1');
  garbage[2] = 1;
  garbage.writeUInt32BE(4096, 4);
  for (let i = 8; i < garbage.length; i++) garbage[i] = Math.floor(random() * 256);
  await appendFile(path, garbage);
  return { path, sizeBytes: size };
}

async function checkShard(
  kv: KvStore,
  shard: number,
  acks: Map<number, Ack>,
  lastTerm: Map<number, number>,
  cycle: CycleResult,
  why: string,
): Promise<void> {
  const log = new ShardLog(kv, shard);
  const recovered = await log.recover();
  // rawLog checks every entry's checksum and decodes every record batch.
  const entries = await rawLog(kv, shard);
  if (entries.length === 0) {
    // Killed before this shard's first recovery finished its first write.
    expect(acks.size, why).toBe(0);
    expect(recovered.lastIndex, why).toBe(0);
    return;
  }
  // No holes: indexes run 1, 2, 3, ... and the library's own reader agrees.
  expect(
    entries.map((e) => e.index),
    why,
  ).toEqual(entries.map((_, i) => i + 1));
  let count = 0;
  for await (const entry of log.entries(1, recovered.lastIndex)) {
    expect(entry.index, why).toBe(++count);
  }
  expect(count, why).toBe(entries.length);
  expect(recovered.lastIndex, why).toBe(entries.length);

  // Terms: every term starts with an empty entry, terms never go back, and the hard state's term
  // is the newest one (it is written with that empty entry).
  const first = entries[0];
  expect([first?.type, first?.term], why).toEqual([EntryType.Empty, 1]);
  for (let i = 1; i < entries.length; i++) {
    const previous = entries[i - 1] as (typeof entries)[number];
    const entry = entries[i] as (typeof entries)[number];
    if (entry.type === EntryType.Empty) expect(entry.term, why).toBeGreaterThan(previous.term);
    else expect(entry.term, why).toBe(previous.term);
    expect(entry.arrivalMs, why).toBeGreaterThanOrEqual(previous.arrivalMs);
  }
  const newestTerm = (entries[entries.length - 1] as (typeof entries)[number]).term;
  expect(recovered.hardState.term, why).toBe(newestTerm);
  const previousTerm = lastTerm.get(shard) as number;
  expect(recovered.hardState.term, why).toBeGreaterThanOrEqual(previousTerm);
  lastTerm.set(shard, recovered.hardState.term);
  const opened = cycle.opened.get(shard);
  if (opened !== undefined) {
    // This run recovered the shard: a new term, opened by the empty entry it reported.
    expect(recovered.hardState.term, why).toBeGreaterThan(previousTerm);
    const empty = entries[opened - 1];
    expect([empty?.type, empty?.term], why).toEqual([EntryType.Empty, newestTerm]);
  }

  // Every acknowledged entry, from this cycle and all before, is there byte for byte.
  let maxAck = 0;
  for (const ack of acks.values()) {
    const entry = entries[ack.index - 1];
    expect(entry?.type, `${why}: entry ${ack.index}`).toBe(EntryType.Records);
    expect(entry?.records.length, `${why}: entry ${ack.index}`).toBe(ack.count);
    expect(recordsHash(entry?.records ?? []), `${why}: entry ${ack.index}`).toBe(ack.hash);
    maxAck = Math.max(maxAck, ack.index);
  }
  expect(recovered.lastIndex, why).toBeGreaterThanOrEqual(maxAck);
}

describe('crash between writing the trim pointer and removing the entries', () => {
  const T0 = 1_700_000_000_000;

  async function trimThenCrash(extraAfterTrim: boolean): Promise<{
    dir: string;
    trimmedTo: number;
    lastIndex: number;
  }> {
    const dir = await tempFolder(cleanup);
    const kv = new RecordingKvStore(await openStore(cleanup, dir));
    const writer = new GroupCommitWriter(kv, { onFatal: () => undefined });
    const clock = new ManualClock(T0);
    const replica = await SingleNodeReplica.open({
      shard: 1,
      log: new ShardLog(kv, 1),
      writer,
      clock,
    });
    await replica.propose([{ partitionKey: 'k', data: Buffer.from('old-1') }]); // 2
    await replica.propose([{ partitionKey: 'k', data: Buffer.from('old-2') }]); // 3
    let lastIndex = 3;
    if (extraAfterTrim) {
      clock.advance(1000);
      lastIndex = (await replica.propose([{ partitionKey: 'k', data: Buffer.from('new') }])).index;
    }
    await writer.drain();
    // The process dies after the trim pointer is durable, before any entry is deleted.
    kv.failClears(new Error('killed'));
    await expect(replica.trimArrivedBefore(T0 + 1)).rejects.toThrow('killed');
    await writer.drain();
    await kv.close();
    return { dir, trimmedTo: 3, lastIndex };
  }

  async function reopen(
    dir: string,
  ): Promise<{ replica: SingleNodeReplica; kv: KvStore; writer: GroupCommitWriter }> {
    const kv = await openStore(cleanup, dir);
    const writer = new GroupCommitWriter(kv, { onFatal: () => undefined });
    const replica = await SingleNodeReplica.open({
      shard: 1,
      log: new ShardLog(kv, 1),
      writer,
      clock: new ManualClock(T0 + 5000),
    });
    return { replica, kv, writer };
  }

  it('recovers when entries after the trim point remain', async () => {
    const { dir, lastIndex } = await trimThenCrash(true);
    const { replica, kv, writer } = await reopen(dir);
    expect(replica.trimHorizon()).toEqual({ index: 4, offset: 0 });
    expect(replica.commitIndex()).toBe(lastIndex + 1);
    const read = await replica.read(
      { index: 1, offset: 0 },
      { maxRecords: 100, maxBytes: 1 << 20 },
    );
    expect(read.records.map((r) => r.data.toString())).toEqual(['new']);
    // The next trim that moves the trim point finishes the interrupted removal.
    await replica.propose([{ partitionKey: 'k', data: Buffer.from('newest') }]);
    await writer.drain();
    expect(await replica.trimArrivedBefore(T0 + 1001)).toBe(lastIndex - 3);
    expect((await rawLog(kv, 1)).map((e) => e.index)).toEqual([lastIndex + 1, lastIndex + 2]);
  });

  it('recovers when the trim covered the whole log', async () => {
    const { dir, trimmedTo } = await trimThenCrash(false);
    // Expected: recovery finishes (or ignores) the interrupted trim. Entries 1..3 are still on
    // disk below the durable trim point 3, and recover() rejects that as corruption.
    const { replica, kv } = await reopen(dir);
    expect(replica.trimHorizon()).toEqual({ index: trimmedTo + 1, offset: 0 });
    expect(replica.commitIndex()).toBe(trimmedTo + 1);
    const { index } = await replica.propose([{ partitionKey: 'k', data: Buffer.from('after') }]);
    expect(index).toBe(trimmedTo + 2);
    const read = await replica.read(
      { index: 1, offset: 0 },
      { maxRecords: 100, maxBytes: 1 << 20 },
    );
    expect(read.records.map((r) => r.data.toString())).toEqual(['after']);
    expect((await rawLog(kv, 1)).every((e) => e.index > trimmedTo)).toBe(true);
  });
});
