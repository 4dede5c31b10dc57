import { afterEach, describe, expect, it } from 'vitest';
import { GrpcPeerTransport } from '../../src/broker/grpc-peer-transport.js';
import type { GroupMessage } from '../../src/broker/peer-transport.js';
import { ManualClock, systemClock, type Clock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { EntryType, MessageType, type Message } from '../../src/raft/types.js';
import { peerServer, type PeerServer } from '../../src/server/peer-server.js';
import { freePort } from '../helpers/processes.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The peer transport between two brokers over real gRPC on loopback: the lower id dials, and a
 * peer that moves to a new address (announced by the coordinator's metadata) is dialled there and
 * redialled there whenever its stream breaks.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function heartbeat(from: number, to: number): GroupMessage {
  const message: Message = {
    type: MessageType.Heartbeat,
    from,
    to,
    term: 1,
    index: 0,
    logTerm: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    force: false,
    context: '',
  } as Message;
  return { group: 7, message };
}

/** A catch-up append carrying `bytes` of entry data (what a replica move copies). */
function catchUpAppend(from: number, to: number, index: number, bytes: number): GroupMessage {
  const message = {
    ...heartbeat(from, to).message,
    type: MessageType.App,
    index: index - 1,
    logTerm: 1,
    entries: [{ index, term: 1, type: EntryType.Normal, data: new Uint8Array(bytes) }],
    catchUp: true,
  } as Message;
  return { group: 7, message };
}

function transport(
  nodeId: number,
  peers: Map<number, string>,
  tuning: {
    readonly clock?: Clock;
    readonly catchUpBytesPerSecond?: number;
    readonly maxBatchBytes?: number;
  } = {},
): GrpcPeerTransport {
  const t = new GrpcPeerTransport({
    nodeId,
    clusterId: 'peer-test',
    peers,
    clock: tuning.clock ?? systemClock,
    logger: silentLogger(),
    ...(tuning.catchUpBytesPerSecond === undefined
      ? {}
      : { catchUpBytesPerSecond: tuning.catchUpBytesPerSecond }),
    ...(tuning.maxBatchBytes === undefined ? {} : { maxBatchBytes: tuning.maxBatchBytes }),
  });
  cleanups.push(() => t.close());
  return t;
}

async function serve(t: GrpcPeerTransport, address: string): Promise<PeerServer> {
  const server = peerServer(t);
  await server.listen(address);
  cleanups.push(() => server.stop());
  return server;
}

describe('gRPC peer transport', () => {
  it('dials a peer at its new address after setPeer, and keeps redialling it there when the stream breaks', async () => {
    const deadAddress = `127.0.0.1:${await freePort()}`;
    const liveAddress = `127.0.0.1:${await freePort()}`;
    const low = transport(1, new Map([[2, deadAddress]]));
    const high = transport(2, new Map([[1, `127.0.0.1:${await freePort()}`]]));
    let received = 0;
    high.onReceive((_from, messages) => (received += messages.length));
    low.onReceive(() => undefined);
    await serve(low, `127.0.0.1:${await freePort()}`);
    low.start();
    high.start();
    // Dialling the dead address fails and is retried with a growing backoff, so by now a redial
    // is (almost always) pending when the new address arrives.
    await new Promise((resolve) => setTimeout(resolve, 700));
    let server = await serve(high, liveAddress);
    low.setPeer(2, liveAddress);
    const delivered = async (atLeast: number) =>
      waitUntil(
        `${atLeast} messages delivered`,
        () => {
          low.send(2, [heartbeat(1, 2)], 'raft');
          return received >= atLeast ? true : undefined;
        },
        10_000,
        50,
      );
    await delivered(1);
    // The peer's server goes away and comes back at the same address: the link redials.
    server.stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = received;
    server = await serve(high, liveAddress);
    await delivered(before + 1);
    expect(low.stats.streamsOpened).toBeGreaterThanOrEqual(3);
  }, 30_000);

  it('the catch-up lane (what replica moves copy) sends no faster than its byte rate; the raft lane is not held up', async () => {
    const clock = new ManualClock();
    const rate = 256 * 1024;
    const highAddress = `127.0.0.1:${await freePort()}`;
    const low = transport(1, new Map([[2, highAddress]]), {
      clock,
      catchUpBytesPerSecond: rate,
      maxBatchBytes: 16 * 1024,
    });
    const high = transport(2, new Map([[1, `127.0.0.1:${await freePort()}`]]));
    let caughtUpBytes = 0;
    let heartbeats = 0;
    high.onReceive((_from, messages) => {
      for (const { message } of messages) {
        if (message.type === MessageType.Heartbeat) heartbeats++;
        for (const entry of message.entries) caughtUpBytes += entry.data.byteLength;
      }
    });
    low.onReceive(() => undefined);
    await serve(high, highAddress);
    low.start();
    high.start();
    await waitUntil(
      'the raft lane is up',
      () => {
        low.send(2, [heartbeat(1, 2)], 'raft');
        return heartbeats > 0 ? true : undefined;
      },
      10_000,
      50,
    );
    // The catch-up link dials on first use; 64 entries of 8 KiB (512 KiB) are queued behind it.
    low.send(2, [catchUpAppend(1, 2, 1, 8 * 1024)], 'catchUp');
    await waitUntil(
      'the catch-up lane is up',
      () => (caughtUpBytes > 0 ? true : undefined),
      10_000,
      20,
    );
    const sent = 8 * 1024;
    const rest = Array.from({ length: 63 }, (_, i) => catchUpAppend(1, 2, i + 2, 8 * 1024));
    low.send(2, rest, 'catchUp');
    // The clock stands still: no more than the bucket's burst (a tenth of a second's worth)
    // crosses, however long we wait; heartbeats still do.
    const burst = rate / 10;
    const heartbeatsBefore = heartbeats;
    for (let i = 0; i < 10; i++) {
      low.send(2, [heartbeat(1, 2)], 'raft');
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    expect(caughtUpBytes).toBeLessThanOrEqual(sent + burst);
    expect(heartbeats).toBeGreaterThan(heartbeatsBefore);
    // Two seconds of the clock, in steps: the rate's worth per second goes through, and no more.
    const before = caughtUpBytes;
    for (let step = 0; step < 40; step++) {
      clock.advance(50);
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    expect(caughtUpBytes - before).toBeLessThanOrEqual(2 * rate + burst);
    expect(caughtUpBytes - before).toBeGreaterThanOrEqual(rate);
  }, 30_000);
});
