import { createClient, createProducer, readLineage, ResourceInUseError } from 'rheos/client';

const client = createClient({ endpoint: process.env.RHEOS_ENDPOINT ?? '127.0.0.1:7400' });
try {
  try {
    await client.createStream({ streamName: 'orders', shardCount: 2 });
  } catch (error) {
    if (!(error instanceof ResourceInUseError)) throw error; // it exists already
  }
  await client.waitForStreamActive('orders');

  // One record, one call.
  const { shardId, sequenceNumber } = await client.putRecord({
    streamName: 'orders',
    partitionKey: 'customer-42',
    data: Buffer.from('hello'),
  });
  console.log(`stored in ${shardId} as ${sequenceNumber}`);

  // Many records: batched per shard, retried, each key's records kept in order, never stored twice.
  const producer = createProducer({ client, streamName: 'orders' });
  const outcomes = await producer.putMany(
    Array.from({ length: 100 }, (_, i) => ({
      partitionKey: `customer-${i % 10}`,
      data: Buffer.from(`order ${i}`),
    })),
  );
  await producer.close();
  console.log(`${outcomes.filter((o) => o.ok).length} of ${outcomes.length} orders stored`);

  // Everything in the stream so far, each shard in order (parents before children), then stop.
  const records = readLineage({
    client,
    streamName: 'orders',
    from: { type: 'TRIM_HORIZON' },
    follow: false,
  });
  let read = 0;
  const ofCustomer2 = [];
  for await (const { record } of records) {
    read++;
    if (record.partitionKey === 'customer-2') ofCustomer2.push(record.data.toString('utf8'));
  }
  console.log(`read ${read} records`);
  console.log(`customer-2: ${ofCustomer2.join(', ')}`); // in the order they were sent
} finally {
  client.close();
}
