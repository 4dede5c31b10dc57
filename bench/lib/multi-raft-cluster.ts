import { MultiRaft, type GroupId, type PeerBatch } from '../../src/raft/multi-raft.js';
import {
  EMPTY_INITIAL_STATE,
  type Entry,
  type Message,
  type NodeId,
} from '../../src/raft/types.js';

/**
 * Several MultiRaft nodes in one process with in-memory storage and delivery: enough to measure
 * what idle groups cost and how many messages cross between two nodes (the multi-raft test and
 * `npm run bench:multiraft` share it).
 */

export interface ClusterStats {
  /** Peer batches sent from node 1 to node 2 (what crosses one link). */
  batchesOneToTwo: number;
  /** Raft heartbeats inside all batches. */
  groupHeartbeats: number;
  /** Raft messages of any kind inside all batches. */
  messages: number;
  campaigns: number;
}

export class MultiRaftCluster {
  readonly nodes = new Map<NodeId, MultiRaft>();
  /** Nodes whose batches are dropped (a dead or cut-off node). */
  readonly down = new Set<NodeId>();
  readonly stats: ClusterStats = {
    batchesOneToTwo: 0,
    groupHeartbeats: 0,
    messages: 0,
    campaigns: 0,
  };
  private inFlight: Array<{ from: NodeId; batch: PeerBatch }> = [];
  private seed = 7;

  /**
   * `members`: each node's member id in the groups (default: the node id), with `nodeOf` mapping
   * member ids back to nodes (as brokers name shard replicas by generation).
   */
  constructor(
    readonly ids: readonly NodeId[],
    readonly groups: readonly GroupId[],
    quiesce = true,
    members?: {
      readonly memberOf: (node: NodeId) => NodeId;
      readonly nodeOf: (member: NodeId) => NodeId;
    },
  ) {
    const memberOf = members?.memberOf ?? ((id: NodeId) => id);
    for (const id of ids) {
      const node = new MultiRaft({
        nodeId: id,
        peerTimeoutTicks: 10,
        maxCampaignsPerTick: 8,
        ...(members === undefined ? {} : { nodeOf: members.nodeOf }),
      });
      this.nodes.set(id, node);
      for (const group of groups) {
        node.addGroup(
          group,
          {
            id: memberOf(id),
            voters: ids.map(memberOf),
            random: () => this.random(),
            electionTicks: 10,
            heartbeatTicks: 1,
            quiesce,
          },
          EMPTY_INITIAL_STATE,
        );
      }
    }
  }

  private random(): number {
    this.seed = (this.seed * 1103515245 + 12345) % 2147483648;
    return this.seed / 2147483648;
  }

  /** Spreads leadership: group i campaigns on node ids[i % n]. */
  electSpread(): void {
    this.groups.forEach((group, i) => {
      const id = this.ids[i % this.ids.length] as NodeId;
      this.nodes.get(id)?.group(group)?.campaign();
      this.nodes.get(id)?.touch(group);
    });
    this.settle();
  }

  /** One tick of every live node's timer, then everything that follows from it. */
  tick(): void {
    for (const [id, node] of this.nodes) if (!this.down.has(id)) node.tick();
    this.flush(true);
    this.settle();
  }

  /** Processes Readies and delivers batches until nothing moves. */
  settle(maxRounds = 100): void {
    for (let round = 0; round < maxRounds; round++) {
      const moved = this.flush(false);
      const batches = this.inFlight;
      this.inFlight = [];
      for (const { from, batch } of batches) this.deliver(from, batch);
      if (!moved && batches.length === 0) return;
    }
  }

  private flush(withNodeHeartbeats: boolean): boolean {
    let moved = false;
    for (const [id, node] of this.nodes) {
      if (this.down.has(id)) continue;
      const out: Array<{ group: GroupId; message: Message }> = [];
      for (const { group, node: raft, ready } of node.readies()) {
        moved = true;
        if (ready.softState?.role === 'candidate') this.stats.campaigns++;
        for (const message of ready.messagesNow) out.push({ group, message });
        // In memory, "persisting" is instant; entries are kept by the replica itself.
        for (const message of ready.messagesAfterPersist) out.push({ group, message });
        for (const load of ready.loads) raft.loaded({ from: load.from, entries: [] as Entry[] });
        raft.advance(ready);
        node.advanced(group);
      }
      if (out.length === 0 && !withNodeHeartbeats) continue;
      for (const batch of node.batch(out, withNodeHeartbeats)) {
        if (id === 1 && batch.to === 2) this.stats.batchesOneToTwo++;
        for (const { message } of batch.messages) {
          this.stats.messages++;
          if (message.type === 'MsgHeartbeat') this.stats.groupHeartbeats++;
        }
        this.inFlight.push({ from: id, batch });
      }
    }
    return moved;
  }

  private deliver(from: NodeId, batch: PeerBatch): void {
    if (this.down.has(from) || this.down.has(batch.to)) return;
    const target = this.nodes.get(batch.to);
    if (target === undefined) return;
    target.heardFrom(from);
    for (const { group, message } of batch.messages) target.step(group, message);
  }

  leaderOf(group: GroupId): NodeId | undefined {
    for (const [id, node] of this.nodes) {
      if (!this.down.has(id) && node.group(group)?.status().role === 'leader') return id;
    }
    return undefined;
  }

  quietGroups(id: NodeId): number {
    let n = 0;
    for (const group of this.groups) if (this.nodes.get(id)?.group(group)?.quiesced) n++;
    return n;
  }
}
