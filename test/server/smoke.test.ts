import { afterEach, describe, expect, it } from 'vitest';
import { ShardIteratorType } from '../../src/gen/rheos/v1/data.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

let t: TestNode | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

describe('single node', () => {
  it('stores records and reads them back in order', async () => {
    t = await startTestNode();
    const { client } = t;
    await client.createStream({ streamName: 's1', shardCount: 2 });
    await client.waitForStreamActive('s1');
    const put = await client.putRecords({
      streamName: 's1',
      records: Array.from({ length: 10 }, (_, i) => ({
        partitionKey: 'k',
        data: Buffer.from(`r${i}`),
      })),
    });
    expect(put.failedRecordCount).toBe(0);
    const shardId = put.records[0]!.shardId;
    const { shardIterator } = await client.getShardIterator({
      streamName: 's1',
      shardId,
      shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
    });
    const got = await client.getRecords({ shardIterator });
    expect(got.records.map((r) => r.data.toString())).toEqual(
      Array.from({ length: 10 }, (_, i) => `r${i}`),
    );
    expect(got.records.map((r) => r.sequenceNumber)).toEqual(
      put.records.map((r) => r.sequenceNumber),
    );
  });
});
