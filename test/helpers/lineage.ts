import type { RheosClient } from '../../src/client/client.js';
import { RheosError } from '../../src/common/errors.js';
import { MAX_HASH_KEY } from '../../src/common/hash-key.js';
import { ShardIteratorType } from '../../src/gen/rheos/v1/data.js';
import type { Record as StreamRecord, Shard } from '../../src/gen/rheos/v1/stream.js';

/**
 * Test readers of a resharded stream: every shard in lineage order (each parent read to its end
 * before any child), as a KCL worker would, for checks of exactly-once delivery and per-key order
 * across generations.
 */

export interface LineageRecord {
  readonly shardId: string;
  readonly record: StreamRecord;
}

export async function listAll(client: RheosClient, streamName: string): Promise<Shard[]> {
  const shards: Shard[] = [];
  let nextToken = '';
  for (let page = 0; page < 100; page++) {
    const answer = await client.listShards(nextToken === '' ? { streamName } : { nextToken });
    shards.push(...answer.shards);
    nextToken = answer.nextToken;
    if (nextToken === '') return shards;
  }
  throw new Error('ListShards did not end');
}

/** Polls until the stream is ACTIVE (a reshard finished); bounded. */
export async function waitActive(client: RheosClient, streamName: string, timeoutMs = 60_000) {
  await client.waitForStreamActive(streamName, timeoutMs, 20);
}

/**
 * Splits the stream's first open shard at the middle of its hash-key range and waits until the
 * stream is ACTIVE again; returns the split shard's id.
 */
export async function splitFirstOpenShard(
  client: RheosClient,
  streamName: string,
  timeoutMs = 90_000,
): Promise<string> {
  const [parent] = (await listAll(client, streamName)).filter(
    (s) => s.sequenceNumberRange?.endingSequenceNumber === '',
  );
  if (parent === undefined) throw new Error(`stream ${streamName} has no open shard`);
  const lo = BigInt(parent.hashKeyRange?.startingHashKey ?? 0);
  const hi = BigInt(parent.hashKeyRange?.endingHashKey ?? MAX_HASH_KEY);
  await client.splitShard({
    streamName,
    shardToSplit: parent.shardId,
    newStartingHashKey: ((lo + hi + 1n) / 2n).toString(),
  });
  await waitActive(client, streamName, timeoutMs);
  return parent.shardId;
}

/**
 * Reads one shard from TRIM_HORIZON: a closed shard until its null next iterator (returning the
 * children named), an open one until a read comes back empty. `closed`: the listing says the
 * shard is closed, so an empty read (a replica that has not applied the SEAL yet) is polled on.
 */
export async function readShardToEnd(
  client: RheosClient,
  streamName: string,
  shardId: string,
  closed = false,
  maxCalls = 10_000,
): Promise<{ records: StreamRecord[]; children: string[]; closed: boolean }> {
  const records: StreamRecord[] = [];
  let { shardIterator } = await client.getShardIterator({
    streamName,
    shardId,
    shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
  });
  const deadline = Date.now() + 30_000;
  let last: unknown;
  for (let call = 0; call < maxCalls; call++) {
    if (closed && Date.now() > deadline) {
      throw new Error(
        `closed shard ${shardId} did not end within 30 s (${records.length} records read, last ${records.at(-1)?.sequenceNumber}; last answer ${JSON.stringify(last)})`,
      );
    }
    let answer;
    try {
      answer = await client.getRecords({ shardIterator });
    } catch (error) {
      if (error instanceof RheosError && error.name === 'ProvisionedThroughputExceededException') {
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      throw error;
    }
    records.push(...answer.records);
    last = {
      records: answer.records.length,
      next: answer.nextShardIterator.length,
      millisBehindLatest: answer.millisBehindLatest,
      children: answer.childShards.map((c) => c.shardId),
    };
    if (answer.nextShardIterator === '') {
      return { records, children: answer.childShards.map((c) => c.shardId), closed: true };
    }
    if (answer.records.length === 0) {
      if (!closed) return { records, children: [], closed: false };
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    shardIterator = answer.nextShardIterator;
  }
  throw new Error(`shard ${shardId} did not end within ${maxCalls} reads`);
}

/** Every listed shard, parents before children, with its records. */
export async function readLineage(
  client: RheosClient,
  streamName: string,
): Promise<LineageRecord[]> {
  const shards = await listAll(client, streamName);
  const listed = new Set(shards.map((s) => s.shardId));
  const done = new Set<string>();
  const out: LineageRecord[] = [];
  const parentsOf = (s: Shard) =>
    [s.parentShardId, s.adjacentParentShardId].filter((p) => p !== '' && listed.has(p));
  while (done.size < shards.length) {
    const ready = shards.filter(
      (s) => !done.has(s.shardId) && parentsOf(s).every((p) => done.has(p)),
    );
    if (ready.length === 0) throw new Error('lineage has a cycle or a missing parent');
    for (const shard of ready) {
      const listedClosed = shard.sequenceNumberRange?.endingSequenceNumber !== '';
      const { records } = await readShardToEnd(client, streamName, shard.shardId, listedClosed);
      for (const record of records) out.push({ shardId: shard.shardId, record });
      done.add(shard.shardId);
    }
  }
  return out;
}
