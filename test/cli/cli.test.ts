import { rm } from 'node:fs/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/node.js';
import { killAllChildren, runRheos, startDevServer } from '../helpers/processes.js';
import { parseTail } from '../helpers/tail-output.js';

/**
 * The product as a user meets it: `rheos dev` as a real process, and the `rheos` commands against
 * it. This is the acceptance scenario: create a stream, put 10,000 records, tail them back
 * in order, restart (gracefully and with kill -9), and find them all still there.
 */

const dirs: string[] = [];
afterEach(killAllChildren);
afterAll(async () => {
  await killAllChildren();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('rheos CLI against rheos dev', () => {
  it('puts 10,000 records, tails them in order, and keeps them across restarts and kill -9', async () => {
    const dataDir = await tempDir('rheos-cli-');
    dirs.push(dataDir);
    let server = await startDevServer(dataDir);
    const rheos = (args: string[], input?: string) =>
      runRheos(['--endpoint', server.endpoint, ...args], input);

    const created = await rheos(['stream', 'create', 'orders', '--shards', '3', '--unlimited']);
    expect(created.code, created.stderr).toBe(0);
    const listed = await rheos(['stream', 'list']);
    expect(listed.stdout).toMatch(/^orders\tACTIVE\tPROVISIONED$/m);

    const lines = Array.from({ length: 10_000 }, (_, i) => `record ${i} ${'x'.repeat(i % 50)}`);
    const put = await rheos(['put', 'orders', '--key', 'customer-42'], lines.join('\n') + '\n');
    expect(put.code, put.stderr).toBe(0);
    expect(put.stderr).toContain('put 10000 records');

    const expectAll = async () => {
      const tail = await rheos(['tail', 'orders', '--from', 'trim-horizon', '--no-follow']);
      expect(tail.code, tail.stderr).toBe(0);
      const records = parseTail(tail.stdout);
      expect(records.map((r) => r.data)).toEqual(lines);
      // One partition key: one shard, strictly increasing sequence numbers.
      expect(new Set(records.map((r) => r.shardId)).size).toBe(1);
      for (let i = 1; i < records.length; i++) {
        expect(BigInt(records[i]!.sequenceNumber) > BigInt(records[i - 1]!.sequenceNumber)).toBe(
          true,
        );
      }
      expect(records.every((r) => r.partitionKey === 'customer-42')).toBe(true);
      expect(records.every((r) => !Number.isNaN(Date.parse(r.arrivalTime)))).toBe(true);
      return records;
    };
    const before = await expectAll();

    // Graceful stop: SIGTERM finishes and exits 0.
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    server = await startDevServer(dataDir);
    expect((await expectAll()).map((r) => r.sequenceNumber)).toEqual(
      before.map((r) => r.sequenceNumber),
    );

    // kill -9: everything acknowledged is still there.
    server.child.kill('SIGKILL');
    await server.exited;
    server = await startDevServer(dataDir);
    await expectAll();

    // New records after restarts get larger sequence numbers than every old one.
    const single = await rheos(['put', 'orders', '--key', 'customer-42', 'after restart']);
    expect(single.code, single.stderr).toBe(0);
    const { sequenceNumber } = JSON.parse(single.stdout) as { sequenceNumber: string };
    expect(BigInt(sequenceNumber) > BigInt(before[before.length - 1]!.sequenceNumber)).toBe(true);
  });

  it('tail follows new records from latest, prints base64 when asked, and stops at --limit', async () => {
    const dataDir = await tempDir('rheos-cli-');
    dirs.push(dataDir);
    const server = await startDevServer(dataDir);
    const rheos = (args: string[], input?: string) =>
      runRheos(['--endpoint', server.endpoint, ...args], input);
    expect((await rheos(['stream', 'create', 'events', '--shards', '2'])).code).toBe(0);
    const tail = rheos(['tail', 'events', '--from', 'latest', '--base64', '--limit', '3']);
    // The tail starts from LATEST, so keep putting until it has seen three records.
    let tailed: Awaited<typeof tail> | undefined;
    void tail.then((result) => (tailed = result));
    for (let i = 0; i < 100 && tailed === undefined; i++) {
      await rheos(['put', 'events', '--key', `k${i}`, `payload-${i}`]);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const result = await tail;
    expect(result.code, result.stderr).toBe(0);
    const records = parseTail(result.stdout);
    expect(records).toHaveLength(3);
    for (const record of records) {
      expect(Buffer.from(record.data, 'base64').toString('utf8')).toMatch(/^payload-\d+$/);
    }
  });

  it('stream describe and delete, and clear errors for bad input', async () => {
    const dataDir = await tempDir('rheos-cli-');
    dirs.push(dataDir);
    const server = await startDevServer(dataDir);
    const rheos = (args: string[], input?: string) =>
      runRheos(['--endpoint', server.endpoint, ...args], input);
    expect((await rheos(['stream', 'create', 'od', '--on-demand'])).code).toBe(0);
    const described = await rheos(['stream', 'describe', 'od']);
    const description = JSON.parse(described.stdout) as {
      mode: string;
      status: string;
      shards: unknown[];
    };
    expect(description).toMatchObject({ mode: 'ON_DEMAND', status: 'ACTIVE' });
    expect(description.shards).toHaveLength(4);

    const bad = await rheos(['stream', 'create', 'bad name!', '--shards', '1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('ValidationException');
    const missing = await rheos(['put', 'nope', '--key', 'k', 'data']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ResourceNotFoundException');
    const noShards = await rheos(['stream', 'create', 'x']);
    expect(noShards.code).toBe(1);
    expect(noShards.stderr).toContain('--shards');
    for (const command of [
      ['tail', 'od'],
      ['groups', 'consume', 'app', '--stream', 'od'],
    ]) {
      const badFrom = await rheos([...command, '--from', 'yesterday']);
      expect(badFrom.code, badFrom.stderr).toBe(1);
      expect(badFrom.stderr).toContain('--from must be trim-horizon or latest, not yesterday');
    }

    expect((await rheos(['stream', 'delete', 'od'])).code).toBe(0);
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      gone = !(await rheos(['stream', 'list'])).stdout.includes('od\t');
      if (!gone) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(gone).toBe(true);
  });

  it('prints help for every command', async () => {
    for (const args of [
      ['--help'],
      ['dev', '--help'],
      ['stream', '--help'],
      ['stream', 'create', '--help'],
      ['put', '--help'],
      ['tail', '--help'],
    ]) {
      const result = await runRheos(args);
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stdout).toContain('Usage: rheos');
    }
  });
});
