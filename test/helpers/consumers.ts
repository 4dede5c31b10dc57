import type { RheosClient } from '../../src/client/client.js';
import { DEFAULT_IDENTITY, streamArn } from '../../src/common/arn.js';
import { ConsumerStatus } from '../../src/gen/rheos/v1/control.js';
import { waitUntil } from './wait.js';

/** Registers an enhanced fan-out consumer on `streamName` and waits until it is ACTIVE. */
export async function registerActiveConsumer(
  client: Pick<RheosClient, 'registerStreamConsumer' | 'describeStreamConsumer'>,
  streamName: string,
  consumerName: string,
  timeoutMs = 30_000,
): Promise<string> {
  const { consumer } = await client.registerStreamConsumer({
    streamArn: streamArn(DEFAULT_IDENTITY, streamName),
    consumerName,
  });
  const consumerArn = consumer?.consumerArn ?? '';
  await waitUntil(
    `consumer ${consumerName} to be ACTIVE`,
    async () => {
      const { consumerDescription: d } = await client.describeStreamConsumer({ consumerArn });
      return d?.consumerStatus === ConsumerStatus.CONSUMER_STATUS_ACTIVE ? true : undefined;
    },
    timeoutMs,
    10,
  );
  return consumerArn;
}
