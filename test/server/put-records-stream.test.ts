import { Client, credentials } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createClient } from '../../src/client/client.js';
import { MAX_PIPELINED_CALLS, PutStreams } from '../../src/client/put-stream.js';
import { RheosError } from '../../src/common/errors.js';
import { isDeadlineExceeded } from '../../src/common/grpc-errors.js';
import {
  DataPlaneServiceClient,
  type PutRecordsResponse,
  type PutRecordsStreamResponse,
} from '../../src/gen/rheos/v1/data.js';
import {
  MAX_STREAM_CALLS_IN_FLIGHT,
  startGrpcServer,
  type RunningGrpcServer,
} from '../../src/server/grpc-server.js';
import type { DataApi } from '../../src/server/native-api.js';
import { silentLogger } from '../../src/common/logger.js';
import { MAX_HASH_KEY } from '../../src/common/hash-key.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

/**
 * PutRecordsStream: PutRecords calls pipelined on one stream per broker, each answered exactly as
 * the unary call is. Against a real node, and against a server whose PutRecords never completes
 * (to see deadlines, limits and closing), since no real shard can be made to hang on purpose.
 */

let t: TestNode | undefined;
let hanging: RunningGrpcServer | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await t?.stop();
  t = undefined;
  await hanging?.close(100);
  hanging = undefined;
});

/** A server whose PutRecords calls wait until `release` is called. */
async function startHangingServer(): Promise<{
  endpoint: string;
  release: (response: PutRecordsResponse) => void;
  started: () => number;
}> {
  const waiting: Array<(response: PutRecordsResponse) => void> = [];
  let started = 0;
  const data = {
    putRecords: () =>
      new Promise<PutRecordsResponse>((resolve) => {
        started++;
        waiting.push(resolve);
      }),
  } as unknown as DataApi;
  let endpoint = '';
  hanging = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    data,
    // Stream 'x' is one shard, led here, so clients send its records here on the stream.
    shardMap: async (request) => ({
      streamName: request.streamName,
      shards: [
        {
          shardId: 'shardId-000000000000',
          hashKeyStart: '0',
          hashKeyEnd: MAX_HASH_KEY.toString(),
          open: true,
          replicas: [{ brokerId: 1, endpoint }],
          leader: { brokerId: 1, endpoint },
        },
      ],
    }),
    logger: silentLogger(),
  });
  endpoint = `127.0.0.1:${hanging.port}`;
  return {
    endpoint,
    release: (response) => {
      for (const resolve of waiting.splice(0)) resolve(response);
    },
    started: () => started,
  };
}

describe('PutRecordsStream', () => {
  it('carries many concurrent PutRecords calls on one stream, each answered as unary PutRecords is', async () => {
    t = await startTestNode();
    const { client } = t;
    await client.createStream({ streamName: 'p', shardCount: 2 });
    await client.waitForStreamActive('p');
    const opened = vi.spyOn(Client.prototype, 'makeBidiStreamRequest');
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        client.putRecords({
          streamName: 'p',
          records: [{ partitionKey: `k${i % 7}`, data: Buffer.from(`r${i}`) }],
        }),
      ),
    );
    expect(answers.every((a) => a.failedRecordCount === 0)).toBe(true);
    expect(
      opened.mock.calls.filter((c) => String(c[0]).endsWith('/PutRecordsStream')),
    ).toHaveLength(1);
    // Per key, the sequence numbers grow in the order the calls were made.
    const byKey = new Map<number, bigint[]>();
    answers.forEach((a, i) => {
      const list = byKey.get(i % 7) ?? [];
      list.push(BigInt(a.records[0]?.sequenceNumber ?? '0'));
      byKey.set(i % 7, list);
    });
    for (const list of byKey.values()) {
      expect([...list].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(list);
    }
    // A call that fails as a whole fails with the same error as the unary call.
    const unknown = await client
      .putRecords({ streamName: 'nope', records: [{ partitionKey: 'k', data: Buffer.from('x') }] })
      .catch((error: unknown) => error);
    expect(unknown).toBeInstanceOf(RheosError);
    expect((unknown as RheosError).name).toBe('ResourceNotFoundException');
    expect((unknown as RheosError).retriable).toBe(false);
  });

  it('fails calls in flight as indeterminate when the server goes away, and the next call opens a new stream', async () => {
    t = await startTestNode();
    await t.client.createStream({ streamName: 'q', shardCount: 1 });
    await t.client.waitForStreamActive('q');
    const endpoint = t.node.grpcAddress;
    const client = createClient({ endpoint, deadlineMs: 5_000 });
    try {
      const put = () =>
        client.putRecords({
          streamName: 'q',
          records: [{ partitionKey: 'k', data: Buffer.from('v') }],
        });
      expect((await put()).failedRecordCount).toBe(0);
      const inFlight = Array.from({ length: 20 }, () => put().catch((error: unknown) => error));
      t = await t.restart();
      const outcomes = await Promise.all(inFlight);
      for (const outcome of outcomes) {
        // Either it was answered before the server closed, or it failed as a broken call does.
        if (outcome instanceof Error) {
          expect(outcome).toBeInstanceOf(RheosError);
          expect((outcome as RheosError).retriable).toBe(true);
        } else {
          expect((outcome as PutRecordsResponse).failedRecordCount).toBe(0);
        }
      }
      await t.client.waitForStreamActive('q');
      // The restarted node has another port; a client of it writes on a fresh stream.
      const after = createClient({ endpoint: t.node.grpcAddress });
      try {
        expect(
          (
            await after.putRecords({
              streamName: 'q',
              records: [{ partitionKey: 'k', data: Buffer.from('w') }],
            })
          ).failedRecordCount,
        ).toBe(0);
      } finally {
        after.close();
      }
    } finally {
      client.close();
    }
  });

  it('gives each call its own deadline, as a unary call has', async () => {
    const server = await startHangingServer();
    const client = createClient({ endpoint: server.endpoint, deadlineMs: 300 });
    const pipelined = vi.spyOn(PutStreams.prototype, 'send');
    try {
      const error = await client
        .putToShard('shardId-000000000000', {
          streamName: 'x',
          records: [{ partitionKey: 'k', data: Buffer.from('v') }],
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RheosError);
      expect(isDeadlineExceeded(error)).toBe(true);
      expect((error as RheosError).indeterminate).toBe(true);
      expect(pipelined).toHaveBeenCalledTimes(1);
    } finally {
      client.close();
    }
  });

  it('refuses calls beyond its limit in flight (definite, retriable) and answers the rest', async () => {
    const server = await startHangingServer();
    const raw = new DataPlaneServiceClient(server.endpoint, credentials.createInsecure());
    const stream = raw.putRecordsStream();
    const answers: PutRecordsStreamResponse[] = [];
    stream.on('data', (m: PutRecordsStreamResponse) => answers.push(m));
    // Cancelled at the end: that is the status it ends with.
    stream.on('error', () => undefined);
    try {
      const total = MAX_STREAM_CALLS_IN_FLIGHT + 5;
      for (let callId = 1; callId <= total; callId++) {
        stream.write({
          callId,
          request: {
            streamName: 'x',
            streamArn: '',
            records: [{ partitionKey: 'k', data: Buffer.from('v') }],
          },
        });
      }
      const deadline = Date.now() + 10_000;
      while (answers.length < 5 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(server.started()).toBe(MAX_STREAM_CALLS_IN_FLIGHT);
      expect(answers.map((a) => a.callId)).toEqual(
        [1, 2, 3, 4, 5].map((k) => MAX_STREAM_CALLS_IN_FLIGHT + k),
      );
      for (const a of answers) {
        expect(a.error).toMatchObject({
          name: 'ServiceUnavailableException',
          retriable: true,
          indeterminate: false,
        });
      }
      // The calls it took are answered when they complete, each with its own id.
      server.release({ failedRecordCount: 0, records: [], encryptionType: 0 as never });
      while (answers.length < total && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(new Set(answers.map((a) => a.callId)).size).toBe(total);
      expect(answers.filter((a) => a.response !== undefined)).toHaveLength(
        MAX_STREAM_CALLS_IN_FLIGHT,
      );
    } finally {
      stream.cancel();
      raw.close();
    }
  });

  it('a client keeps at most its limit of calls on one stream and sends the rest as unary calls', async () => {
    const server = await startHangingServer();
    const client = createClient({ endpoint: server.endpoint, deadlineMs: 10_000 });
    const unary = vi.spyOn(Client.prototype, 'makeUnaryRequest');
    try {
      const calls = Array.from({ length: MAX_PIPELINED_CALLS + 3 }, () =>
        client
          .putToShard('shardId-000000000000', {
            streamName: 'x',
            records: [{ partitionKey: 'k', data: Buffer.from('v') }],
          })
          .catch((e: unknown) => e),
      );
      const deadline = Date.now() + 10_000;
      while (server.started() < MAX_PIPELINED_CALLS + 3 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(server.started()).toBe(MAX_PIPELINED_CALLS + 3);
      expect(unary.mock.calls.filter((c) => String(c[0]).endsWith('/PutRecords'))).toHaveLength(3);
      server.release({ failedRecordCount: 0, records: [], encryptionType: 0 as never });
      const outcomes = await Promise.all(calls);
      expect(outcomes.every((o) => !(o instanceof Error))).toBe(true);
    } finally {
      client.close();
    }
  });
});
