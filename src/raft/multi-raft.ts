import type { RaftConfig } from './config.js';
import { invariant } from './errors.js';
import { RawNode, type Ready } from './raw-node.js';
import type { InitialState, Message, NodeId } from './types.js';

/**
 * Many Raft groups on one node (a broker hosts a replica of every shard it serves), driven the way
 * CockroachDB and Redpanda drive theirs:
 *  - one tick for every group, from the host's one timer; a late timer is one tick, never a burst
 *    of missed ticks replayed;
 *  - only groups with work are looked at (a dirty set), so idle groups cost nothing per Ready;
 *  - idle groups go quiet (RaftConfig.quiesce): no heartbeats and no election timers; instead one
 *    node-level heartbeat per peer per tick tells every group that the peer is alive, and groups
 *    led by a peer that falls silent for an election timeout are woken up;
 *  - messages to the same peer travel together (one batch per peer per flush);
 *  - elections after a restart start at a bounded rate (campaigns per tick).
 * Like the rest of src/raft it does no I/O and reads no clock.
 */

export type GroupId = string;

export interface MultiRaftOptions {
  readonly nodeId: NodeId;
  /**
   * The node a group member's replica id lives on (default: the id is the node's). Groups may
   * name their members by replica ids of their own, so that a node leaving a group and joining it
   * again is a new member; liveness and batching are per node all the same.
   */
  readonly nodeOf?: (replicaId: NodeId) => NodeId;
  /** Ticks without hearing from a peer after which the groups it leads are woken. */
  readonly peerTimeoutTicks?: number;
  /** Campaigns started per tick across all groups. */
  readonly maxCampaignsPerTick?: number;
}

/** Everything for one peer from one flush: each group's messages, and the node heartbeat. */
export interface PeerBatch {
  readonly to: NodeId;
  readonly messages: ReadonlyArray<{ readonly group: GroupId; readonly message: Message }>;
}

export interface GroupReady {
  readonly group: GroupId;
  readonly node: RawNode;
  readonly ready: Ready;
}

export class MultiRaft {
  private readonly groups = new Map<GroupId, RawNode>();
  private readonly dirty = new Set<GroupId>();
  private readonly lastHeard = new Map<NodeId, number>();
  private readonly peers = new Set<NodeId>();
  private ticks = 0;
  private campaignsThisTick = 0;
  private readonly peerTimeoutTicks: number;
  private readonly maxCampaignsPerTick: number;
  private readonly nodeOf: (replicaId: NodeId) => NodeId;

  constructor(private readonly options: MultiRaftOptions) {
    this.nodeOf = options.nodeOf ?? ((id) => id);
    this.peerTimeoutTicks = options.peerTimeoutTicks ?? 10;
    this.maxCampaignsPerTick = options.maxCampaignsPerTick ?? 16;
  }

  get size(): number {
    return this.groups.size;
  }

  /**
   * Creates a group's replica here, as member `config.id` (default: the node id), which must live
   * on this node. Its config gains quiescence and the campaign limiter.
   */
  addGroup(
    group: GroupId,
    config: Omit<RaftConfig, 'id'> & { readonly id?: NodeId },
    initial: InitialState,
  ): RawNode {
    invariant(!this.groups.has(group), `group ${group} already exists`);
    const id = config.id ?? this.options.nodeId;
    invariant(this.nodeOf(id) === this.options.nodeId, `replica ${id} is not on this node`);
    const node = new RawNode(
      {
        ...config,
        id,
        quiesce: config.quiesce ?? true,
        mayCampaign: () => this.campaignsThisTick++ < this.maxCampaignsPerTick,
      },
      initial,
    );
    this.groups.set(group, node);
    for (const voter of config.voters) this.addPeer(this.nodeOf(voter));
    this.dirty.add(group);
    return node;
  }

  removeGroup(group: GroupId): void {
    this.groups.delete(group);
    this.dirty.delete(group);
  }

  group(group: GroupId): RawNode | undefined {
    return this.groups.get(group);
  }

  addPeer(id: NodeId): void {
    if (id === this.options.nodeId || this.peers.has(id)) return;
    this.peers.add(id);
    this.lastHeard.set(id, this.ticks);
  }

  /** One tick of the host's timer: every group that is not quiet ticks once. */
  tick(): void {
    this.ticks++;
    this.campaignsThisTick = 0;
    const silent = new Set<NodeId>();
    for (const peer of this.peers) {
      if (this.ticks - (this.lastHeard.get(peer) ?? 0) >= this.peerTimeoutTicks) silent.add(peer);
    }
    for (const [group, node] of this.groups) {
      if (node.quiesced) {
        // A quiet follower whose leader's node fell silent must find a new leader.
        if (!silent.has(this.nodeOf(node.lead))) continue;
        node.unquiesce();
      }
      node.tick();
      this.dirty.add(group);
    }
  }

  /** A message for one of this node's groups. */
  step(group: GroupId, message: Message): void {
    this.heardFrom(this.nodeOf(message.from));
    const node = this.groups.get(group);
    if (node === undefined) return;
    node.step(message);
    this.dirty.add(group);
  }

  /** Anything from `peer` (a node heartbeat included) shows it is alive. */
  heardFrom(peer: NodeId): void {
    this.addPeer(peer);
    this.lastHeard.set(peer, this.ticks);
  }

  /** Marks a group as having work (after a proposal or a load result). */
  touch(group: GroupId): void {
    if (this.groups.has(group)) this.dirty.add(group);
  }

  /** The Readies of the groups that have one; only groups touched since the last call are looked at. */
  readies(): GroupReady[] {
    const out: GroupReady[] = [];
    for (const group of this.dirty) {
      const node = this.groups.get(group);
      if (node !== undefined && node.hasReady()) out.push({ group, node, ready: node.ready() });
    }
    this.dirty.clear();
    return out;
  }

  /** After advance(): the group may have more to do. */
  advanced(group: GroupId): void {
    this.dirty.add(group);
  }

  /**
   * Groups messages by destination, one batch per peer, and adds an empty batch for every peer
   * that gets nothing else: that is the node heartbeat quiet groups rely on.
   */
  batch(
    messages: ReadonlyArray<{ group: GroupId; message: Message }>,
    withNodeHeartbeats: boolean,
  ): PeerBatch[] {
    const byPeer = new Map<NodeId, Array<{ group: GroupId; message: Message }>>();
    if (withNodeHeartbeats) for (const peer of this.peers) byPeer.set(peer, []);
    for (const item of messages) {
      const to = this.nodeOf(item.message.to);
      let list = byPeer.get(to);
      if (list === undefined) byPeer.set(to, (list = []));
      list.push(item);
    }
    return [...byPeer].map(([to, list]) => ({ to, messages: list }));
  }
}
