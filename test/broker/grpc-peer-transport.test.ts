import { afterEach, describe, expect, it } from 'vitest';
import { GrpcPeerTransport } from '../../src/broker/grpc-peer-transport.js';
import type { GroupMessage } from '../../src/broker/peer-transport.js';
import { systemClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { MessageType, type Message } from '../../src/raft/types.js';
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

function transport(nodeId: number, peers: Map<number, string>): GrpcPeerTransport {
  const t = new GrpcPeerTransport({
    nodeId,
    clusterId: 'peer-test',
    peers,
    clock: systemClock,
    logger: silentLogger(),
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
});
