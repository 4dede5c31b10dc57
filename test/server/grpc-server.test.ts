import { connect } from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/client.js';
import { STREAM_WINDOW_BYTES } from '../../src/server/grpc-server.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

let t: TestNode | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

describe('grpc server', () => {
  it('grpc server raises HTTP/2 receive windows', async () => {
    t = await startTestNode();
    const session = connect(`http://${t.node.grpcAddress}`);
    try {
      const settings = await new Promise<{ initialWindowSize?: number }>((resolve, reject) => {
        session.once('error', reject);
        // The server sends its defaults first, then the raised window in a second SETTINGS frame.
        session.on('remoteSettings', (s) => {
          if (s.initialWindowSize === STREAM_WINDOW_BYTES) resolve(s);
        });
        setTimeout(() => resolve(session.remoteSettings), 2_000).unref();
      });
      expect(settings.initialWindowSize).toBe(STREAM_WINDOW_BYTES);
    } finally {
      session.destroy();
    }
  });

  it('answers many concurrent calls and stays up after a client closes its channel mid-upload', async () => {
    t = await startTestNode();
    const { client } = t;
    await client.createStream({ streamName: 'c', shardCount: 1 });
    await client.waitForStreamActive('c');
    const calls = Array.from({ length: 200 }, (_, i) =>
      client
        .putRecord({ streamName: 'c', partitionKey: `k${i}`, data: Buffer.from(String(i)) })
        .then(
          () => 'ok',
          (error: { name?: string }) => error.name,
        ),
    );
    const outcomes = await Promise.all(calls);
    // The default quota (1,000 records/s) admits all 200.
    expect(outcomes.every((o) => o === 'ok')).toBe(true);
    // A client that closes its channel while a 4 MB upload is under way does not hurt the server.
    const quitter = createClient({ endpoint: t.node.grpcAddress });
    const abandoned = quitter
      .putRecords({
        streamName: 'c',
        records: Array.from({ length: 4 }, (_, i) => ({
          partitionKey: `q${i}`,
          data: Buffer.alloc(1000_000, i),
        })),
      })
      .catch((error: unknown) => error);
    quitter.close();
    await abandoned;
    const limits = await client.describeLimits();
    expect(limits.openShardCount).toBe(1);
  });
});
