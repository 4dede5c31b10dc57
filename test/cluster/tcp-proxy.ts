import { connect, createServer, isIPv4, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * A user-space TCP proxy for fault injection between cluster processes (no `tc netem` or
 * iptables on the test machines). Broker i dials broker j through proxy i->j, and the test
 * switches the proxy's mode to delay, partition or reset that link.
 */

export type ProxyMode =
  | { readonly kind: 'pass' }
  /** Every chunk is forwarded delayMs (+ uniform jitter in [0, jitterMs)) after it arrived; order is kept per direction. */
  | { readonly kind: 'delay'; readonly delayMs: number; readonly jitterMs?: number }
  /**
   * A partition: connections stay open, but every byte (and FIN) is discarded in both directions,
   * on old and new connections alike. Leaving blackhole destroys every connection that lost
   * bytes, since its byte stream is corrupt; the clients then reconnect.
   */
  | { readonly kind: 'blackhole' }
  /** Every connection is destroyed (RST) at once; new ones are destroyed on accept. */
  | { readonly kind: 'reset' };

export interface ProxyStats {
  /** Client connections accepted since start, including those destroyed at once. */
  readonly connections: number;
  /** Client connections currently proxied. */
  readonly openConnections: number;
  readonly bytesForwarded: number;
  /** Bytes discarded: read in blackhole mode, or queued when a partition or reset began. */
  readonly bytesDropped: number;
}

export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  mode(): ProxyMode;
  setMode(mode: ProxyMode): void;
  readonly stats: ProxyStats;
  /** Bytes the proxy holds in memory (delay queues plus socket write buffers), all connections. */
  bufferedBytes(): number;
  /** Destroys every connection and closes the listening socket. */
  close(): Promise<void>;
}

export interface TcpProxyOptions {
  readonly listenHost: string;
  /** 0 or absent: any free port. */
  readonly listenPort?: number;
  readonly targetHost: string;
  readonly targetPort: number;
  /** Source of jitter, in [0, 1). Default Math.random. */
  readonly random?: () => number;
  /** Per direction of a connection: above this the source socket is paused. Default 8 MiB. */
  readonly maxBufferedBytes?: number;
}

const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const PASS: ProxyMode = { kind: 'pass' };

export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  requireLoopback(options.listenHost, 'listenHost');
  requireLoopback(options.targetHost, 'targetHost');
  const maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  if (!Number.isInteger(maxBufferedBytes) || maxBufferedBytes <= 0) {
    throw new RangeError(`maxBufferedBytes must be a positive integer, got ${maxBufferedBytes}`);
  }
  const proxy = new ProxyServer(options, maxBufferedBytes);
  await proxy.listen(options.listenPort ?? 0);
  return proxy;
}

/** Tests must never open ports beyond the machine: only 127.0.0.0/8 is allowed. */
function requireLoopback(host: string, name: string): void {
  if (!isIPv4(host) || !host.startsWith('127.')) {
    throw new RangeError(`${name} must be an IPv4 address in 127.0.0.0/8, got ${host}`);
  }
}

function validateMode(mode: ProxyMode): void {
  if (mode.kind !== 'delay') return;
  const jitterMs = mode.jitterMs ?? 0;
  if (!Number.isFinite(mode.delayMs) || mode.delayMs < 0) {
    throw new RangeError(`delayMs must be a finite number >= 0, got ${mode.delayMs}`);
  }
  if (!Number.isFinite(jitterMs) || jitterMs < 0) {
    throw new RangeError(`jitterMs must be a finite number >= 0, got ${jitterMs}`);
  }
}

/** Socket errors are expected here (resets are the point); they must never crash the process. */
function ignoreError(): void {}

/** Ends a connection abruptly: RST once connected, so the peer sees a broken stream, not a clean FIN. */
function abort(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}

interface Chunk {
  readonly data: Buffer;
  readonly dueAtMs: number;
}

/** What a direction needs from its proxy. */
interface ProxyContext {
  readonly currentMode: ProxyMode;
  readonly maxBufferedBytes: number;
  random(): number;
  countForwarded(bytes: number): void;
  countDropped(bytes: number): void;
}

/**
 * One direction of a connection: bytes read from `source` wait in a FIFO queue until due, then
 * are written to `sink`. The queue never passes a chunk to a sink whose write buffer is full,
 * and the source is paused while the queue holds more than maxBufferedBytes, so a slow reader
 * pushes back to the writer through TCP flow control instead of growing memory.
 */
class Direction {
  private readonly queue: Chunk[] = [];
  private head = 0;
  private lastDueAtMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private sourcePaused = false;
  queuedBytes = 0;
  /** FIN received from the source. */
  sourceEnded = false;
  /** FIN passed on to the sink (after every queued byte). */
  sinkEnded = false;
  /** Bytes or a FIN of this direction were discarded: the stream can no longer be trusted. */
  lostBytes = false;

  constructor(
    private readonly source: Socket,
    readonly sink: Socket,
    private readonly context: ProxyContext,
  ) {
    source.on('data', (data: Buffer) => this.onData(data));
    source.on('end', () => this.onEnd());
    sink.on('drain', () => this.flush());
  }

  private onData(data: Buffer): void {
    const mode = this.context.currentMode;
    switch (mode.kind) {
      case 'blackhole':
      case 'reset':
        this.lostBytes = true;
        this.context.countDropped(data.length);
        return;
      case 'pass':
        this.enqueue(data, performance.now());
        break;
      case 'delay': {
        const jitterMs = (mode.jitterMs ?? 0) * this.context.random();
        this.enqueue(data, performance.now() + mode.delayMs + jitterMs);
        break;
      }
    }
    this.flush();
  }

  private onEnd(): void {
    this.sourceEnded = true;
    const kind = this.context.currentMode.kind;
    if (kind === 'blackhole' || kind === 'reset') this.lostBytes = true;
    else this.flush();
  }

  private enqueue(data: Buffer, dueAtMs: number): void {
    // A chunk never overtakes an earlier one, whatever its jitter or a mode change in between.
    const due = Math.max(dueAtMs, this.lastDueAtMs);
    this.lastDueAtMs = due;
    this.queue.push({ data, dueAtMs: due });
    this.queuedBytes += data.length;
  }

  /** Writes every due chunk the sink accepts, then waits for the next due time or a drain. */
  flush(): void {
    this.clearTimer();
    const kind = this.context.currentMode.kind;
    if (kind === 'blackhole' || kind === 'reset' || this.sink.destroyed) return;
    const nowMs = performance.now();
    let next = this.queue[this.head];
    while (next !== undefined && next.dueAtMs <= nowMs && !this.sink.writableNeedDrain) {
      this.head += 1;
      this.queuedBytes -= next.data.length;
      this.context.countForwarded(next.data.length);
      this.sink.write(next.data);
      next = this.queue[this.head];
    }
    this.compact();
    if (next !== undefined && !this.sink.writableNeedDrain) {
      // Timers may fire a little early against performance.now(); flush re-arms if so.
      const waitMs = Math.max(1, Math.ceil(next.dueAtMs - nowMs));
      this.timer = setTimeout(() => this.flush(), waitMs);
    }
    if (next === undefined && this.sourceEnded && !this.sinkEnded) {
      this.sinkEnded = true;
      this.sink.end();
    }
    this.updateFlow();
  }

  /** Discards everything queued: a partition or reset loses the bytes in flight. */
  dropQueued(): void {
    this.clearTimer();
    if (this.queuedBytes > 0) {
      this.lostBytes = true;
      this.context.countDropped(this.queuedBytes);
    }
    if (this.sourceEnded && !this.sinkEnded) this.lostBytes = true;
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
    this.updateFlow();
  }

  dispose(): void {
    this.clearTimer();
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
  }

  /** Pauses the source above the bound and resumes it at half, so it does not flap per chunk. */
  updateFlow(): void {
    const max = this.context.maxBufferedBytes;
    if (!this.sourcePaused && this.queuedBytes > max) {
      this.sourcePaused = true;
      this.source.pause();
    } else if (this.sourcePaused && this.queuedBytes <= max / 2) {
      this.sourcePaused = false;
      this.source.resume();
    }
  }

  /** Drops the consumed prefix of the queue once it is large, keeping shifts O(1) amortized. */
  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** A proxied connection: the accepted client socket and the socket to the target. */
class Link {
  readonly toTarget: Direction;
  readonly toClient: Direction;
  private closedSockets = 0;

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    context: ProxyContext,
    onGone: (link: Link) => void,
  ) {
    this.toTarget = new Direction(client, upstream, context);
    this.toClient = new Direction(upstream, client, context);
    const onClose = (socket: Socket): void => {
      // A socket that closed without a clean FIN each way (error, RST, failed connect) takes
      // the other side with it; after a clean close, the other direction may still be draining.
      if (!this.from(socket).sourceEnded || !this.into(socket).sinkEnded) this.destroy();
      this.closedSockets += 1;
      if (this.closedSockets === 2) {
        this.toTarget.dispose();
        this.toClient.dispose();
        onGone(this);
      }
    };
    client.on('close', () => onClose(client));
    upstream.on('close', () => onClose(upstream));
  }

  lostBytes(): boolean {
    return this.toTarget.lostBytes || this.toClient.lostBytes;
  }

  bufferedBytes(): number {
    return (
      this.toTarget.queuedBytes +
      this.toTarget.sink.writableLength +
      this.toClient.queuedBytes +
      this.toClient.sink.writableLength
    );
  }

  destroy(): void {
    this.toTarget.dispose();
    this.toClient.dispose();
    abort(this.client);
    abort(this.upstream);
  }

  private from(socket: Socket): Direction {
    return socket === this.client ? this.toTarget : this.toClient;
  }

  private into(socket: Socket): Direction {
    return socket === this.client ? this.toClient : this.toTarget;
  }
}

class ProxyServer implements TcpProxy, ProxyContext {
  readonly host: string;
  port = 0;
  currentMode: ProxyMode = PASS;
  readonly stats = { connections: 0, openConnections: 0, bytesForwarded: 0, bytesDropped: 0 };
  private readonly links = new Set<Link>();
  private readonly server: Server;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly options: TcpProxyOptions,
    readonly maxBufferedBytes: number,
  ) {
    this.host = options.listenHost;
    // Half-open sockets let a FIN travel one way while the other direction keeps flowing.
    this.server = createServer({ allowHalfOpen: true }, (client) => this.onConnection(client));
    this.server.on('error', ignoreError);
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen(port, this.host, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        this.port = typeof address === 'object' && address !== null ? address.port : 0;
        resolve();
      });
    });
  }

  random(): number {
    return (this.options.random ?? Math.random)();
  }

  countForwarded(bytes: number): void {
    this.stats.bytesForwarded += bytes;
  }

  countDropped(bytes: number): void {
    this.stats.bytesDropped += bytes;
  }

  mode(): ProxyMode {
    return this.currentMode;
  }

  setMode(mode: ProxyMode): void {
    validateMode(mode);
    const previous = this.currentMode;
    this.currentMode = mode;
    if (mode.kind === 'reset') {
      for (const link of this.links) link.destroy();
      return;
    }
    for (const link of this.links) {
      if (mode.kind === 'blackhole') {
        // dropQueued also resumes paused sources, so the partition keeps reading and discarding.
        link.toTarget.dropQueued();
        link.toClient.dropQueued();
      } else if (previous.kind === 'blackhole' && link.lostBytes()) {
        link.destroy();
      } else {
        // Queued chunks keep their due times; a drain or due time may have passed meanwhile.
        link.toTarget.flush();
        link.toClient.flush();
      }
    }
  }

  bufferedBytes(): number {
    let total = 0;
    for (const link of this.links) total += link.bufferedBytes();
    return total;
  }

  close(): Promise<void> {
    this.closing ??= new Promise((resolve) => {
      // server.close waits for accepted sockets, so destroy them first.
      this.server.close(() => resolve());
      for (const link of this.links) link.destroy();
    });
    return this.closing;
  }

  private onConnection(client: Socket): void {
    this.stats.connections += 1;
    client.on('error', ignoreError);
    if (this.closing !== undefined || this.currentMode.kind === 'reset') {
      abort(client);
      return;
    }
    client.setNoDelay(true);
    const upstream = connect({
      host: this.options.targetHost,
      port: this.options.targetPort,
      allowHalfOpen: true,
      noDelay: true,
    });
    upstream.on('error', ignoreError);
    const link = new Link(client, upstream, this, (gone) => {
      this.links.delete(gone);
      this.stats.openConnections = this.links.size;
    });
    this.links.add(link);
    this.stats.openConnections = this.links.size;
  }
}
