import type { RheosClient } from '../../src/client/client.js';
import { ShardIteratorType } from '../../src/gen/rheos/v1/data.js';

/** Every record of one shard from the trim horizon, as "sequenceNumber data" lines, oldest first. */
export async function readShardLines(
  client: RheosClient,
  streamName: string,
  shardId: string,
): Promise<string[]> {
  const { shardIterator } = await client.getShardIterator({
    streamName,
    shardId,
    shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
  });
  const out: string[] = [];
  let iterator: string | undefined = shardIterator;
  for (let i = 0; i < 1000 && iterator !== undefined && iterator !== ''; i++) {
    const page = await client.getRecords({ shardIterator: iterator, limit: 10_000 });
    for (const r of page.records) out.push(`${r.sequenceNumber} ${r.data.toString()}`);
    if (page.records.length === 0 && page.millisBehindLatest === 0) break;
    iterator = page.nextShardIterator;
  }
  return out;
}
