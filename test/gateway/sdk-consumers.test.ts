import {
  DeleteStreamCommand,
  DeregisterStreamConsumerCommand,
  DescribeStreamConsumerCommand,
  ListStreamConsumersCommand,
  RegisterStreamConsumerCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  ValidationException,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { createActiveSdk, HANDLERS, useGateway } from './sdk-helpers.js';

/**
 * The enhanced fan-out consumer operations through the real AWS SDK v3 and the Kinesis gateway:
 * the shapes the SDK parses (ConsumerStatus, ConsumerARN, ConsumerCreationTimestamp as a Date),
 * pagination, and Kinesis' error names.
 */

async function waitConsumer(
  sdk: KinesisClient,
  consumerArn: string,
  status: string,
): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const { ConsumerDescription: d } = await sdk.send(
      new DescribeStreamConsumerCommand({ ConsumerARN: consumerArn }),
    );
    if (d?.ConsumerStatus === status) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`consumer did not become ${status}`);
}

describe.each(HANDLERS)('consumer operations through the AWS SDK over %s', (_label, kind) => {
  const gateway = useGateway(kind);

  it('registers, describes, lists and deregisters consumers as Kinesis does', async () => {
    const { sdk } = await gateway.start();
    const summary = await createActiveSdk(sdk, 'orders', 1);
    const streamArn = summary.StreamARN as string;
    const before = Date.now();
    const { Consumer: c } = await sdk.send(
      new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'billing' }),
    );
    expect(c?.ConsumerName).toBe('billing');
    expect(c?.ConsumerStatus).toBe('CREATING');
    expect(c?.ConsumerARN).toMatch(new RegExp(`^${streamArn}/consumer/billing:\\d+$`));
    expect(c?.ConsumerCreationTimestamp).toBeInstanceOf(Date);
    expect(Math.abs((c?.ConsumerCreationTimestamp as Date).getTime() - before)).toBeLessThan(
      60_000,
    );
    const consumerArn = c?.ConsumerARN as string;
    await waitConsumer(sdk, consumerArn, 'ACTIVE');

    const { ConsumerDescription: d } = await sdk.send(
      new DescribeStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'billing' }),
    );
    expect(d).toEqual({
      ConsumerName: 'billing',
      ConsumerARN: consumerArn,
      ConsumerStatus: 'ACTIVE',
      ConsumerCreationTimestamp: c?.ConsumerCreationTimestamp,
      StreamARN: streamArn,
    });

    for (const name of ['audit', 'search']) {
      await sdk.send(
        new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: name }),
      );
    }
    const first = await sdk.send(
      new ListStreamConsumersCommand({ StreamARN: streamArn, MaxResults: 2 }),
    );
    expect(first.Consumers?.map((x) => x.ConsumerName)).toEqual(['billing', 'audit']);
    expect(first.NextToken).toBeTruthy();
    const second = await sdk.send(
      new ListStreamConsumersCommand({ StreamARN: streamArn, NextToken: first.NextToken }),
    );
    expect(second.Consumers?.map((x) => x.ConsumerName)).toEqual(['search']);
    expect(second.NextToken).toBeUndefined();

    await expect(
      sdk.send(
        new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'billing' }),
      ),
    ).rejects.toBeInstanceOf(ResourceInUseException);
    await expect(
      sdk.send(new DescribeStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'nobody' })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(
      sdk.send(new RegisterStreamConsumerCommand({ StreamARN: 'junk', ConsumerName: 'x' })),
    ).rejects.toBeInstanceOf(ValidationException);
    await expect(
      sdk.send(new DeleteStreamCommand({ StreamName: 'orders' })),
    ).rejects.toBeInstanceOf(ResourceInUseException);

    await sdk.send(new DeregisterStreamConsumerCommand({ ConsumerARN: consumerArn }));
    let gone = false;
    for (let attempt = 0; attempt < 500 && !gone; attempt++) {
      const listed = await sdk.send(new ListStreamConsumersCommand({ StreamARN: streamArn }));
      gone = !(listed.Consumers ?? []).some((x) => x.ConsumerName === 'billing');
      if (!gone) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(gone).toBe(true);
    await sdk.send(
      new DeleteStreamCommand({ StreamName: 'orders', EnforceConsumerDeletion: true }),
    );
  });
});
