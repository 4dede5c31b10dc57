import {
  Client,
  credentials,
  Metadata,
  type ChannelOptions,
  type ClientDuplexStream,
  type ServerDuplexStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { backoffDelayMs } from '../common/backoff.js';
import { brokerOfReplica } from '../common/replica-id.js';
import type { Clock } from '../common/clock.js';
import { GRPC_CHANNEL_OPTIONS } from '../common/grpc-options.js';
import type { Logger } from '../common/logger.js';
import { TokenBucket } from '../common/token-bucket.js';
import { PeerServiceService, type RaftBatch } from '../gen/rheos/v1/peer.js';
import { encodePeerEnvelope } from './peer-encoding.js';

/** PeerService with the one-pass serializer (peer-encoding.ts) in both directions. */
const PEER_SERVICE: typeof PeerServiceService = {
  raft: {
    ...PeerServiceService.raft,
    requestSerialize: encodePeerEnvelope,
    responseSerialize: encodePeerEnvelope,
  },
  catchUp: {
    ...PeerServiceService.catchUp,
    requestSerialize: encodePeerEnvelope,
    responseSerialize: encodePeerEnvelope,
  },
};
import type { NodeId } from '../raft/types.js';
import type { GroupMessage, PeerLane, PeerTransport } from './peer-transport.js';
import { fromWireMessage, toWireMessage, wireSizeEstimate } from './raft-wire.js';

/**
 * The peer transport on gRPC. For each pair of brokers and each lane there is one long-lived
 * bidirectional stream, opened by the broker with the lower id (so there is exactly one, and the
 * other side simply uses the stream it accepted); both directions carry batches holding every
 * group's messages for the other broker. The 'catchUp' lane runs on its own connection and is
 * rate-limited, so a follower catching up cannot delay heartbeats and fresh appends.
 *
 * Nothing waits and nothing grows without bound: a link whose stream is not writable (HTTP/2 flow
 * control) queues up to maxQueuedBytes and then drops, which Raft tolerates (it resends). A peer
 * that is down, or a stream that failed, is redialled with exponential backoff; every stream has
 * a deadline and every connection keepalives, so a dead peer is noticed.
 */

export interface GrpcPeerTransportOptions {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  /** The other brokers: id -> host:port of their peer service. */
  readonly peers: ReadonlyMap<NodeId, string>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly maxQueuedBytesPerLink?: number;
  readonly maxBatchBytes?: number;
  /** Catch-up traffic per peer (0: unlimited). */
  readonly catchUpBytesPerSecond?: number;
  readonly streamDeadlineMs?: number;
}

type AnyStream = ClientDuplexStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

export interface TransportStats {
  batchesSent: number;
  batchesReceived: number;
  messagesDropped: number;
  invalidMessages: number;
  streamsOpened: number;
}

const LANES: readonly PeerLane[] = ['raft', 'catchUp'];

export class GrpcPeerTransport implements PeerTransport {
  private readonly links = new Map<string, Link>();
  private readonly clients = new Map<string, Client>();
  private handler: (from: NodeId, messages: readonly GroupMessage[]) => void = () => undefined;
  private closed = false;
  readonly stats: TransportStats = {
    batchesSent: 0,
    batchesReceived: 0,
    messagesDropped: 0,
    invalidMessages: 0,
    streamsOpened: 0,
  };

  /** Peer addresses: the configured ones, then as the coordinator's metadata announces them. */
  private readonly addresses: Map<NodeId, string>;
  private started = false;

  constructor(private readonly options: GrpcPeerTransportOptions) {
    this.addresses = new Map(options.peers);
    for (const peer of options.peers.keys()) {
      for (const lane of LANES) this.links.set(linkKey(peer, lane), new Link(peer, lane, this));
    }
  }

  /**
   * Adds a peer, or moves one to a new address (a broker that restarted elsewhere): its links are
   * redialled there. Unchanged addresses change nothing.
   */
  setPeer(peer: NodeId, address: string): void {
    if (peer === this.options.nodeId || this.closed) return;
    const known = this.addresses.get(peer);
    if (known === address) return;
    this.addresses.set(peer, address);
    for (const lane of LANES) {
      const key = linkKey(peer, lane);
      let link = this.links.get(key);
      if (link === undefined) {
        link = new Link(peer, lane, this);
        this.links.set(key, link);
      } else {
        link.close();
        this.clients.get(key)?.close();
        this.clients.delete(key);
      }
      if (this.started && peer > this.options.nodeId) link.dial();
    }
  }

  get nodeId(): NodeId {
    return this.options.nodeId;
  }

  get clusterId(): string {
    return this.options.clusterId;
  }

  get config(): GrpcPeerTransportOptions {
    return this.options;
  }

  /** The PeerService implementation to register on this broker's peer server. */
  service(): {
    definition: typeof PeerServiceService;
    implementation: UntypedServiceImplementation;
  } {
    return {
      definition: PEER_SERVICE,
      implementation: {
        raft: (call: ServerDuplexStream<unknown, unknown>) => this.accept(call, 'raft'),
        catchUp: (call: ServerDuplexStream<unknown, unknown>) => this.accept(call, 'catchUp'),
      },
    };
  }

  /** Dials every peer with a higher id. */
  start(): void {
    this.started = true;
    for (const link of this.links.values()) {
      if (link.peer > this.options.nodeId) link.dial();
    }
  }

  onReceive(handler: (from: NodeId, messages: readonly GroupMessage[]) => void): void {
    this.handler = handler;
  }

  send(to: NodeId, messages: readonly GroupMessage[], lane: PeerLane): void {
    const link = this.links.get(linkKey(to, lane));
    if (link === undefined || this.closed) {
      this.stats.messagesDropped += messages.length;
      return;
    }
    link.enqueue(messages);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const link of this.links.values()) link.close();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** A channel per peer and lane (the catch-up lane gets its own TCP connection). */
  clientFor(peer: NodeId, lane: PeerLane): Client {
    const key = linkKey(peer, lane);
    let client = this.clients.get(key);
    if (client === undefined) {
      const address = this.addresses.get(peer) as string;
      const options: ChannelOptions = {
        ...GRPC_CHANNEL_OPTIONS,
        // A dead peer must be noticed quickly; the peer server accepts frequent pings.
        'grpc.keepalive_time_ms': 5_000,
        'grpc.keepalive_timeout_ms': 5_000,
        // Separate connections per lane: catch-up bytes must not queue in front of heartbeats.
        'grpc.use_local_subchannel_pool': 1,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 2_000,
      };
      client = new Client(address, credentials.createInsecure(), options);
      this.clients.set(key, client);
    }
    return client;
  }

  deliver(from: NodeId, batch: RaftBatch): void {
    this.stats.batchesReceived++;
    const messages: GroupMessage[] = [];
    for (const item of batch.messages) {
      const message = item.message === undefined ? undefined : fromWireMessage(item.message);
      // Members are named by replica ids; the broker each lives on is in their low bits.
      if (
        message === undefined ||
        brokerOfReplica(message.from) !== from ||
        brokerOfReplica(message.to) !== this.options.nodeId
      ) {
        this.stats.invalidMessages++;
        continue;
      }
      messages.push({ group: item.group, message });
    }
    this.handler(from, messages);
  }

  /** A lower-id broker opened a stream to us: its first batch says who it is. */
  private accept(call: ServerDuplexStream<unknown, unknown>, lane: PeerLane): void {
    let link: Link | undefined;
    call.on('data', (request: { batch?: RaftBatch }) => {
      const batch = request.batch;
      if (batch === undefined) return;
      if (link === undefined) {
        const candidate = this.links.get(linkKey(batch.fromBroker, lane));
        if (
          this.closed ||
          batch.clusterId !== this.options.clusterId ||
          candidate === undefined ||
          batch.fromBroker >= this.options.nodeId
        ) {
          this.options.logger.warn(
            { from: batch.fromBroker, cluster: batch.clusterId, lane },
            'refused a peer stream',
          );
          call.end();
          return;
        }
        link = candidate;
        link.attach(call);
      }
      this.deliver(batch.fromBroker, batch);
    });
    const detach = () => link?.detach(call);
    call.on('end', () => {
      detach();
      call.end();
    });
    call.on('error', detach);
    call.on('cancelled', detach);
  }
}

function linkKey(peer: NodeId, lane: PeerLane): string {
  return `${peer}:${lane}`;
}

interface QueuedBatch {
  readonly batch: RaftBatch;
  readonly bytes: number;
  readonly messages: number;
}

/** One peer, one lane: the current stream (dialled or accepted) and a bounded send queue. */
class Link {
  private stream: AnyStream | undefined;
  private writable = false;
  private readonly queue: QueuedBatch[] = [];
  private queuedBytes = 0;
  private attempts = 0;
  private redial: NodeJS.Timeout | undefined;
  private refill: NodeJS.Timeout | undefined;
  private readonly bucket: TokenBucket | undefined;
  private readonly maxQueuedBytes: number;
  private readonly maxBatchBytes: number;

  constructor(
    readonly peer: NodeId,
    readonly lane: PeerLane,
    private readonly transport: GrpcPeerTransport,
  ) {
    const o = transport.config;
    this.maxQueuedBytes = o.maxQueuedBytesPerLink ?? 16 * 1024 * 1024;
    this.maxBatchBytes = o.maxBatchBytes ?? 4 * 1024 * 1024;
    const rate = o.catchUpBytesPerSecond ?? 64 * 1024 * 1024;
    this.bucket =
      lane === 'catchUp' && rate > 0
        ? new TokenBucket(rate, Math.max(rate / 10, this.maxBatchBytes), o.clock)
        : undefined;
  }

  /** Splits messages into batches of at most maxBatchBytes and queues them (or drops). */
  enqueue(messages: readonly GroupMessage[]): void {
    if (this.stream === undefined) {
      this.transport.stats.messagesDropped += messages.length;
      return;
    }
    let current: GroupMessage[] = [];
    let bytes = 0;
    const push = () => {
      const batch: RaftBatch = {
        fromBroker: this.transport.nodeId,
        clusterId: this.transport.clusterId,
        messages: current.map((m) => ({ group: m.group, message: toWireMessage(m.message) })),
      };
      if (this.queuedBytes + bytes > this.maxQueuedBytes) {
        this.transport.stats.messagesDropped += current.length;
      } else {
        this.queue.push({ batch, bytes, messages: current.length });
        this.queuedBytes += bytes;
      }
      current = [];
      bytes = 0;
    };
    for (const item of messages) {
      const size = wireSizeEstimate(item.message);
      if (current.length > 0 && bytes + size > this.maxBatchBytes) push();
      current.push(item);
      bytes += size;
    }
    if (current.length > 0 || messages.length === 0) push();
    this.flush();
  }

  private flush(): void {
    while (this.stream !== undefined && this.writable && this.queue.length > 0) {
      const next = this.queue[0] as QueuedBatch;
      if (this.bucket !== undefined && !this.bucket.take(next.bytes)) {
        // Out of catch-up budget: try again when the bucket has refilled enough.
        if (this.refill === undefined) {
          this.refill = setTimeout(() => {
            this.refill = undefined;
            this.flush();
          }, 20);
        }
        return;
      }
      this.queue.shift();
      this.queuedBytes -= next.bytes;
      this.transport.stats.batchesSent++;
      const ok = this.stream.write({ batch: next.batch });
      if (!ok) {
        this.writable = false;
        const stream = this.stream;
        stream.once('drain', () => {
          if (this.stream !== stream) return;
          this.writable = true;
          this.flush();
        });
      }
    }
  }

  /** Opens the stream to a higher-id peer; redials with backoff when it ends. */
  dial(): void {
    if (this.transport.isClosed) return;
    const client = this.transport.clientFor(this.peer, this.lane);
    const method = this.lane === 'raft' ? PEER_SERVICE.raft : PEER_SERVICE.catchUp;
    const deadlineMs = this.transport.config.streamDeadlineMs ?? 60 * 60 * 1000;
    const stream = client.makeBidiStreamRequest(
      method.path,
      (value: unknown) => method.requestSerialize(value as never),
      (bytes: Buffer) => method.responseDeserialize(bytes),
      new Metadata(),
      { deadline: Date.now() + deadlineMs },
    ) as ClientDuplexStream<unknown, unknown>;
    this.transport.stats.streamsOpened++;
    this.attach(stream);
    stream.on('data', (response: { batch?: RaftBatch }) => {
      this.attempts = 0;
      if (response.batch !== undefined) this.transport.deliver(this.peer, response.batch);
    });
    const ended = () => {
      if (this.stream !== stream) return;
      this.detach(stream);
      this.scheduleRedial();
    };
    stream.on('error', ended);
    stream.on('end', ended);
    // Say who we are at once, so the peer can answer on this stream before we have news.
    this.enqueue([]);
  }

  attach(stream: AnyStream): void {
    if (this.stream !== undefined && this.stream !== stream) this.stream.end();
    this.stream = stream;
    this.writable = true;
    this.flush();
  }

  detach(stream: AnyStream): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.writable = false;
    // What was queued for the broken stream is stale by the time a new one is up.
    this.transport.stats.messagesDropped += this.queue.reduce((n, q) => n + q.messages, 0);
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  private scheduleRedial(): void {
    if (this.transport.isClosed || this.redial !== undefined) return;
    const delayMs = backoffDelayMs(this.attempts++, { initialMs: 50, maxMs: 2_000 });
    this.redial = setTimeout(() => {
      this.redial = undefined;
      this.dial();
    }, delayMs);
  }

  /** Ends the link's stream and timers; the link may be dialled again (a peer that moved). */
  close(): void {
    if (this.redial !== undefined) clearTimeout(this.redial);
    if (this.refill !== undefined) clearTimeout(this.refill);
    // Cleared, not just stopped: a pending timer id would keep scheduleRedial from ever
    // scheduling again after the link is redialled.
    this.redial = undefined;
    this.refill = undefined;
    this.attempts = 0;
    const stream = this.stream;
    if (stream !== undefined) {
      this.detach(stream);
      if ('cancel' in stream) stream.cancel();
      else stream.end();
    }
  }
}
