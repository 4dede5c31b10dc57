import * as grpc from '@grpc/grpc-js';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy, type TcpProxyOptions } from './tcp-proxy.js';

const HOST = '127.0.0.1';
const MiB = 1024 * 1024;

/** Everything a test opened, closed after it whatever the outcome. */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Polls until `predicate` holds; bounded in time so a broken proxy fails instead of hanging. */
async function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(5);
  }
}

/** Fails instead of hanging when `promise` does not settle within `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A socket with everything it received and whether it has closed. */
class Peer {
  private readonly chunks: Buffer[] = [];
  bytes = 0;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
    });
    socket.on('error', () => {}); // resets are expected; 'close' records them
    socket.on('close', () => (this.closed = true));
  }

  received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  text(): string {
    return this.received().toString('utf8');
  }
}

interface TestServer {
  readonly port: number;
  /** Server side of every accepted connection, in accept order. */
  readonly peers: Peer[];
}

/** A node:net server on 127.0.0.1; `onSocket` decides what it does with each connection. */
async function startServer(onSocket: (socket: Socket) => void = () => {}): Promise<TestServer> {
  const peers: Peer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    peers.push(new Peer(socket));
    onSocket(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no server address');
  return { port: address.port, peers };
}

function startEchoServer(): Promise<TestServer> {
  return startServer((socket) => socket.pipe(socket));
}

async function proxyTo(
  targetPort: number,
  options: Partial<TcpProxyOptions> = {},
): Promise<TcpProxy> {
  const proxy = await startTcpProxy({ listenHost: HOST, targetHost: HOST, targetPort, ...options });
  cleanups.push(() => proxy.close());
  return proxy;
}

/** Opens a connection without waiting for it: it may be reset before 'connect' is seen. */
function dialNoWait(port: number): Peer {
  const socket = connect({ host: HOST, port, noDelay: true });
  cleanups.push(() => void socket.destroy());
  return new Peer(socket);
}

async function dial(port: number): Promise<Peer> {
  const peer = dialNoWait(port);
  const { socket } = peer;
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return peer;
}

/** A port nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no server address');
  return address.port;
}

/** Sends `text` from `from` and waits until `to` has received exactly `expected` in total. */
async function roundTrip(from: Peer, to: Peer, text: string, expected: string): Promise<void> {
  from.socket.write(text);
  await waitFor(() => to.text().length >= expected.length, `"${expected}" to arrive`);
  expect(to.text()).toBe(expected);
}

describe('tcp proxy', () => {
  it('pass mode forwards bytes both ways unchanged, 5 MiB byte for byte, and passes the FIN', async () => {
    const echo = await startEchoServer();
    const proxy = await proxyTo(echo.port);
    expect(proxy.mode()).toEqual({ kind: 'pass' });
    const client = await dial(proxy.port);

    await roundTrip(client, client, 'hello', 'hello');
    const payload = randomBytes(5 * MiB);
    client.socket.write(payload);
    await waitFor(() => client.bytes >= 5 * MiB + 5, '5 MiB to come back', 30_000);
    expect(client.bytes).toBe(5 * MiB + 5);
    expect(client.received().subarray(5).equals(payload)).toBe(true);
    expect(proxy.stats.bytesForwarded).toBe(2 * (5 * MiB + 5));
    expect(proxy.stats.bytesDropped).toBe(0);

    // The echo server answers our FIN with its own: a clean close travels through both ways.
    client.socket.end();
    await waitFor(() => client.closed, 'the client to close');
    await waitFor(() => proxy.stats.openConnections === 0, 'the proxy to forget the connection');
  });

  it('delay mode delays every direction by at least delayMs and keeps order despite jitter', async () => {
    const echo = await startEchoServer();
    const proxy = await proxyTo(echo.port);
    proxy.setMode({ kind: 'delay', delayMs: 300 });
    const client = await dial(proxy.port);

    const startMs = performance.now();
    await roundTrip(client, client, 'ping', 'ping');
    // Each of the two crossings waits 300 ms; the proxy checks due times on the same clock.
    expect(performance.now() - startMs).toBeGreaterThanOrEqual(600 - 1);

    // Jitter alternating between ~0 and ~40 ms would let a later chunk overtake an earlier one.
    let draws = 0;
    const proxy2 = await proxyTo(echo.port, { random: () => (draws++ % 2 === 0 ? 0.99 : 0) });
    proxy2.setMode({ kind: 'delay', delayMs: 10, jitterMs: 40 });
    const client2 = await dial(proxy2.port);
    let expected = '';
    for (let i = 0; i < 60; i += 1) {
      const message = `<${i}>`;
      expected += message;
      client2.socket.write(message);
      await sleep(2);
    }
    await waitFor(() => client2.text().length >= expected.length, 'every message to come back');
    expect(client2.text()).toBe(expected);
    expect(draws).toBeGreaterThan(2); // several separate chunks really were delayed
  });

  it('blackhole drops bytes both ways without closing; leaving it resets only connections that lost bytes', async () => {
    const server = await startServer();
    const proxy = await proxyTo(server.port);
    const active = await dial(proxy.port);
    await waitFor(() => server.peers.length === 1, 'accept 1');
    const idle = await dial(proxy.port);
    await waitFor(() => server.peers.length === 2, 'accept 2');
    const [activeServer, idleServer] = server.peers;
    if (activeServer === undefined || idleServer === undefined) throw new Error('no peers');
    await roundTrip(active, activeServer, 'up', 'up');
    await roundTrip(activeServer, active, 'down', 'down');

    proxy.setMode({ kind: 'blackhole' });
    active.socket.write('lost-up'); // 7 bytes
    activeServer.socket.write('lost-down'); // 9 bytes
    await waitFor(() => proxy.stats.bytesDropped === 16, 'the proxy to drop 16 bytes');
    // A connection made during the partition is accepted, but gets nothing through either.
    const during = await dial(proxy.port);
    during.socket.write('x');
    await waitFor(() => proxy.stats.bytesDropped === 17, 'the proxy to drop the new byte');
    await sleep(200); // time for a wrongly closed connection to show it
    expect(activeServer.text()).toBe('up');
    expect(active.text()).toBe('down');
    expect([active.closed, activeServer.closed, idle.closed, during.closed]).toEqual([
      false,
      false,
      false,
      false,
    ]);

    proxy.setMode({ kind: 'pass' });
    await waitFor(() => active.closed && activeServer.closed, 'the active connection to reset');
    await waitFor(() => during.closed, 'the connection made in the partition to reset');
    // The idle connection lost nothing, so its stream is intact and it keeps working.
    expect(idle.closed).toBe(false);
    await roundTrip(idle, idleServer, 'still', 'still');
    await roundTrip(idleServer, idle, 'here', 'here');
    const fresh = await dial(proxy.port);
    await waitFor(() => server.peers.length === 4, 'accept 4');
    const freshServer = server.peers[3];
    if (freshServer === undefined) throw new Error('no peer');
    await roundTrip(fresh, freshServer, 'new', 'new');
    await roundTrip(freshServer, fresh, 'works', 'works');
  });

  it('reset destroys existing connections and every new one until the mode changes', async () => {
    const echo = await startEchoServer();
    const proxy = await proxyTo(echo.port);
    const before = await dial(proxy.port);
    await roundTrip(before, before, 'a', 'a');

    proxy.setMode({ kind: 'reset' });
    await waitFor(() => before.closed, 'the existing connection to be destroyed');
    const during = dialNoWait(proxy.port);
    await waitFor(() => during.closed, 'the new connection to be destroyed');
    expect(during.bytes).toBe(0);
    expect(proxy.stats.openConnections).toBe(0);

    proxy.setMode({ kind: 'pass' });
    const after = await dial(proxy.port);
    await roundTrip(after, after, 'back', 'back');
  });

  it('closes the client connection when the target cannot be reached', async () => {
    const proxy = await proxyTo(await closedPort());
    const client = await dial(proxy.port);
    await waitFor(() => client.closed, 'the client connection to close');
    await waitFor(() => proxy.stats.openConnections === 0, 'the proxy to forget the connection');
    expect(proxy.stats.connections).toBe(1);
  });

  it('keeps its buffers bounded behind a slow reader, then delivers everything', async () => {
    const sink = await startServer((socket) => socket.pause()); // reads nothing until resumed
    const maxBufferedBytes = 1 * MiB;
    const proxy = await proxyTo(sink.port, { maxBufferedBytes });
    proxy.setMode({ kind: 'delay', delayMs: 5 });
    const client = await dial(proxy.port);
    await waitFor(() => sink.peers.length === 1, 'accept');
    const sinkPeer = sink.peers[0];
    if (sinkPeer === undefined) throw new Error('no peer');

    // Far more than the kernel buffers of the four socket ends can hold.
    const payload = randomBytes(48 * MiB);
    client.socket.write(payload);
    let maxSeenBytes = 0;
    const sampler = setInterval(() => {
      maxSeenBytes = Math.max(maxSeenBytes, proxy.bufferedBytes());
    }, 2);
    cleanups.push(() => clearInterval(sampler));
    // The queue fills up to the bound (the source is paused only above it) ...
    await waitFor(() => maxSeenBytes > maxBufferedBytes, 'the queue to fill', 20_000);
    // ... and stays there while the reader still reads nothing.
    await sleep(500);
    // Slack: one read chunk over the bound plus the sink socket's write buffer.
    const slackBytes = 256 * 1024;
    expect(maxSeenBytes).toBeLessThanOrEqual(maxBufferedBytes + slackBytes);
    expect(sinkPeer.bytes).toBe(0);

    const hash = createHash('sha256');
    sinkPeer.socket.on('data', (chunk: Buffer) => hash.update(chunk));
    sinkPeer.socket.resume();
    proxy.setMode({ kind: 'pass' });
    await waitFor(() => sinkPeer.bytes >= payload.length, 'everything to arrive', 40_000);
    expect(sinkPeer.bytes).toBe(payload.length);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
    expect(maxSeenBytes).toBeLessThanOrEqual(maxBufferedBytes + slackBytes);
  });

  it('close() destroys connections and releases the port', async () => {
    const echo = await startEchoServer();
    const proxy = await startTcpProxy({
      listenHost: HOST,
      targetHost: HOST,
      targetPort: echo.port,
    });
    const client = await dial(proxy.port);
    await roundTrip(client, client, 'x', 'x');
    await within(proxy.close(), 10_000, 'close() to resolve');
    await waitFor(() => client.closed, 'the client connection to close');
    expect(proxy.stats.openConnections).toBe(0);
    // The same port can be listened on again at once.
    const again = await proxyTo(echo.port, { listenPort: proxy.port });
    expect(again.port).toBe(proxy.port);
    const client2 = await dial(again.port);
    await roundTrip(client2, client2, 'y', 'y');
  });

  it('refuses addresses outside 127.0.0.0/8 and invalid delays', async () => {
    await expect(
      startTcpProxy({ listenHost: '0.0.0.0', targetHost: HOST, targetPort: 1 }),
    ).rejects.toThrow(/127\.0\.0\.0\/8/);
    await expect(
      startTcpProxy({ listenHost: HOST, targetHost: '10.0.0.1', targetPort: 1 }),
    ).rejects.toThrow(/127\.0\.0\.0\/8/);
    const proxy = await proxyTo(await closedPort());
    expect(() => proxy.setMode({ kind: 'delay', delayMs: -1 })).toThrow(RangeError);
    expect(() => proxy.setMode({ kind: 'delay', delayMs: 5, jitterMs: Number.NaN })).toThrow(
      RangeError,
    );
    expect(proxy.mode()).toEqual({ kind: 'pass' });
  });

  it('carries a gRPC unary call, breaks it under blackhole and lets the client reconnect after', async () => {
    const method = {
      path: '/rheos.test.Echo/Echo',
      requestStream: false,
      responseStream: false,
      requestSerialize: (value: Buffer): Buffer => value,
      requestDeserialize: (bytes: Buffer): Buffer => bytes,
      responseSerialize: (value: Buffer): Buffer => value,
      responseDeserialize: (bytes: Buffer): Buffer => bytes,
    };
    const server = new grpc.Server();
    server.addService(
      { echo: method },
      {
        echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) =>
          done(null, call.request),
      },
    );
    const serverPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${HOST}:0`, grpc.ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    );
    cleanups.push(() => server.forceShutdown());
    const proxy = await proxyTo(serverPort);
    const EchoClient = grpc.makeGenericClientConstructor({ echo: method }, 'Echo');
    // No HTTP proxy from the environment: the call must go straight to our proxy.
    const client = new EchoClient(`${HOST}:${proxy.port}`, grpc.credentials.createInsecure(), {
      'grpc.enable_http_proxy': 0,
    });
    cleanups.push(() => client.close());
    const echo = (text: string, deadlineMs: number): Promise<string> =>
      new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          Buffer.from(text),
          { deadline: Date.now() + deadlineMs },
          (error, value) => (error ? reject(error) : resolve(value?.toString('utf8') ?? '')),
        );
      });

    expect(await echo('one', 10_000)).toBe('one');

    proxy.setMode({ kind: 'blackhole' });
    const failure = await echo('two', 1_000).then(
      () => undefined,
      (error: grpc.ServiceError) => error.code,
    );
    expect([grpc.status.DEADLINE_EXCEEDED, grpc.status.UNAVAILABLE]).toContain(failure);
    expect(proxy.stats.bytesDropped).toBeGreaterThan(0);

    const connectionsBefore = proxy.stats.connections;
    proxy.setMode({ kind: 'pass' });
    // The broken connection is reset; a call may race that, so retry a bounded number of times.
    let answer: string | undefined;
    for (let attempt = 0; attempt < 10 && answer === undefined; attempt += 1) {
      answer = await echo('three', 2_000).catch(() => undefined);
      if (answer === undefined) await sleep(100);
    }
    expect(answer).toBe('three');
    expect(proxy.stats.connections).toBeGreaterThan(connectionsBefore);
  });
});
