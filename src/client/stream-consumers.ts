import { sleep } from '../common/backoff.js';
import { ResourceInUseError, ServiceUnavailableError } from '../common/errors.js';
import { ConsumerStatus } from '../gen/rheos/v1/control.js';
import type { RheosClient } from './client.js';

export type StreamConsumerClient = Pick<
  RheosClient,
  'describeStreamSummary' | 'registerStreamConsumer' | 'describeStreamConsumer'
>;

/**
 * The ARN of the enhanced fan-out consumer `consumerName` of `streamName`, registered if it is
 * not yet, once it is ACTIVE (what a KCL application does at start with its application name).
 */
export async function ensureStreamConsumer(
  client: StreamConsumerClient,
  streamName: string,
  consumerName: string,
  options: { readonly timeoutMs?: number; readonly signal?: AbortSignal } = {},
): Promise<string> {
  const { streamDescriptionSummary } = await client.describeStreamSummary({ streamName });
  const streamArn = streamDescriptionSummary?.streamArn ?? '';
  try {
    await client.registerStreamConsumer({ streamArn, consumerName });
  } catch (error) {
    // Registered before (by an earlier run, or another worker of the same application).
    if (!(error instanceof ResourceInUseError)) throw error;
  }
  const deadlineMs = Date.now() + (options.timeoutMs ?? 60_000);
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    const { consumerDescription: d } = await client.describeStreamConsumer({
      streamArn,
      consumerName,
    });
    if (d?.consumerStatus === ConsumerStatus.CONSUMER_STATUS_ACTIVE) return d.consumerArn;
    if (Date.now() > deadlineMs) {
      throw new ServiceUnavailableError(
        `Consumer ${consumerName} of stream ${streamName} is ${d?.consumerStatus ?? 'unknown'}, not ACTIVE, after ${options.timeoutMs ?? 60_000} ms.`,
      );
    }
    await sleep(Math.min(500, 20 * 2 ** attempt), options.signal);
  }
}
