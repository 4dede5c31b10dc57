import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { RaftConfig } from '../raft/config.js';
import { MultiRaft, type GroupReady } from '../raft/multi-raft.js';
import type { RecoveredRaftShard } from '../storage/shard-raft-store.js';
import type { RawNode } from '../raft/raw-node.js';
import type { Entry, LoadRequest, NodeId, ReadState, Role, Snapshot } from '../raft/types.js';
import type { GroupCommitWriter } from '../storage/group-commit.js';
import type { KvOp, KvStore } from '../storage/kv-store.js';
import { claimGroupStorage, ShardRaftStore } from '../storage/shard-raft-store.js';
import { brokerOfReplica, MAX_BROKER_ID } from '../common/replica-id.js';
import type { GroupMessage, PeerLane, PeerTransport } from './peer-transport.js';
import { RaftReplica, type RaftReplicaHost } from './raft-replica.js';

/**
 * The broker's multi-raft driver. Every shard replica on the broker is a group in one MultiRaft;
 * one timer ticks them all (a late timer is one tick, never a replay); each processing cycle takes
 * the Readies of the groups with work, sends the leaders' appends at once, writes every group's
 * entries, hard state and applied index in ONE synced LevelDB batch (group commit across groups),
 * then sends the acknowledgements and votes that batch vouches for, and acknowledges clients.
 * One cycle runs at a time; work arriving meanwhile joins the next.
 */

export interface RaftHostOptions {
  readonly nodeId: NodeId;
  readonly kv: KvStore;
  readonly writer: GroupCommitWriter;
  readonly transport: PeerTransport;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Where each broker serves clients (for NOT_LEADER hints). */
  readonly addressOf: (brokerId: NodeId) => string | undefined;
  /** The host timer; Raft timeouts are counted in ticks of it. */
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly random?: () => number;
  /** Raft tuning beyond the defaults. */
  readonly raft?: Partial<Omit<RaftConfig, 'id' | 'voters' | 'random'>>;
  /** Bytes of Raft log kept in memory per replica after a restart. */
  readonly recoveryTailBytes?: number;
  readonly proposalTimeoutMs?: number;
  /** Test-only switch: acknowledge writes once the leader's own copy is durable (unsafe). */
  readonly unsafeAckBeforeCommit?: boolean;
}

/**
 * A member of a Raft group driven by the host: a shard replica, or a coordinator's metadata
 * replica. The host calls these in cycle order.
 */
export interface HostedGroup {
  /** The group id (a shard incarnation; 0 is the coordinator's metadata group). */
  readonly shard: number;
  readonly node: RawNode;
  readonly store: ShardRaftStore;
  /** Entries about to be written (as leader or follower). */
  appended(entries: readonly Entry[]): void;
  /**
   * The writes that install a snapshot's state machine (groups whose state is not their log);
   * they join the cycle's synced batch, before the entries applied after it.
   */
  snapshotOps?(snapshot: Snapshot): KvOp[];
  /** The writes that apply committed entries; they join the cycle's synced batch. */
  applyOps(entries: readonly Entry[]): KvOp[];
  /** The batch holding this Ready's entries is durable. */
  persisted(entries: readonly Entry[]): void;
  /** Committed entries (and any snapshot) are applied and durable. */
  appliedEntries(entries: readonly Entry[], snapshot: Snapshot | undefined): void;
  roleChanged(role: Role): void;
  /** ReadIndex answers (after this Ready's entries were applied), for members that read. */
  readStates?(states: readonly ReadState[]): void;
  /** Fails proposals that waited past their deadline. */
  expire(nowMs: number): void;
  close(): Promise<void>;
}

/** What a group member is built from once its storage is recovered. */
export interface GroupParts {
  readonly node: RawNode;
  readonly store: ShardRaftStore;
  readonly recovered: RecoveredRaftShard;
}

export class RaftHost implements RaftReplicaHost {
  private readonly multi: MultiRaft;
  private readonly replicas = new Map<number, HostedGroup>();
  private readonly compactions: Array<{
    shard: number;
    snapshot: Snapshot;
    done: () => void;
    failed: (error: unknown) => void;
  }> = [];
  private timer: NodeJS.Timeout | undefined;
  private cycleRunning = false;
  private cycleWanted = false;
  private stopped = false;
  readonly stats = { cycles: 0, readies: 0, ticks: 0, messagesOut: 0, messagesIn: 0 };

  constructor(private readonly options: RaftHostOptions) {
    if (brokerOfReplica(options.nodeId) !== options.nodeId) {
      throw new RangeError(`node id ${options.nodeId} is above ${MAX_BROKER_ID}`);
    }
    // Members are named by replica ids (replica-id.ts); liveness and batching are per broker.
    this.multi = new MultiRaft({ nodeId: options.nodeId, nodeOf: brokerOfReplica });
    options.transport.onReceive((from, messages) => this.receive(from, messages));
  }

  get nodeId(): NodeId {
    return this.options.nodeId;
  }

  get storageFailed(): boolean {
    return this.options.writer.failed;
  }

  addressOf(brokerId: NodeId): string | undefined {
    return this.options.addressOf(brokerId);
  }

  /** The broker a group member (a Raft replica id) lives on. */
  brokerOf(replicaId: NodeId): NodeId {
    return brokerOfReplica(replicaId);
  }

  start(): void {
    const tickMs = this.options.tickMs ?? 50;
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  get(shard: number): RaftReplica | undefined {
    const member = this.replicas.get(shard);
    return member instanceof RaftReplica ? member : undefined;
  }

  /** Every group hosted here. */
  groups(): IterableIterator<HostedGroup> {
    return this.replicas.values();
  }

  /**
   * Opens (or returns) this broker's replica of a shard. `campaignIfNew`: a replica of a group
   * that has never had a leader starts an election at once, so the leader placement prefers is
   * the one elected (the others wait an election timeout first). `replicaId`: this broker's
   * member id in the group (default: the broker id).
   */
  async open(
    shard: number,
    voters: readonly NodeId[],
    options: { readonly campaignIfNew?: boolean; readonly replicaId?: NodeId } = {},
  ): Promise<RaftReplica> {
    const build = ({ node, store, recovered }: GroupParts) => {
      return new RaftReplica({
        shard,
        node,
        store,
        host: this,
        clock: this.options.clock,
        appliedIndex: recovered.appliedIndex,
        lastArrivalMs: recovered.lastArrivalMs,
        ...(this.options.proposalTimeoutMs === undefined
          ? {}
          : { proposalTimeoutMs: this.options.proposalTimeoutMs }),
        ...(this.options.unsafeAckBeforeCommit === true ? { unsafeAckBeforeCommit: true } : {}),
      });
    };
    const replica = await this.openGroup(shard, voters, build, options.replicaId);
    if (!(replica instanceof RaftReplica)) throw new Error(`group ${shard} is not a shard replica`);
    const status = replica.node.status();
    if (options.campaignIfNew === true && status.term === 0 && status.lastIndex === 0) {
      replica.node.campaign();
      this.touch(shard);
    }
    return replica;
  }

  /**
   * Opens (or returns) member `replicaId` (default: the node id) of group `id`: recovers its
   * storage, adds it to the MultiRaft and builds it with `build`. `init()` of the built member,
   * if any, runs before it is driven.
   */
  async openGroup(
    id: number,
    voters: readonly NodeId[],
    build: (parts: GroupParts) => HostedGroup & { init?: () => Promise<void> },
    replicaId: NodeId = this.options.nodeId,
  ): Promise<HostedGroup> {
    const existing = this.replicas.get(id);
    if (existing !== undefined) {
      if (existing.node.id !== replicaId) {
        throw new Error(
          `group ${id} is open here as replica ${existing.node.id}, not ${replicaId}`,
        );
      }
      return existing;
    }
    // Storage an earlier member of this group left here is not the new member's: it goes first.
    const claim = await claimGroupStorage(this.options.kv, id, replicaId, this.options.nodeId);
    if (claim.length > 0) await this.options.writer.write(claim);
    const store = new ShardRaftStore(this.options.kv, id, voters);
    const recovered = await store.recover(this.options.recoveryTailBytes ?? 4 * 1024 * 1024);
    const again = this.replicas.get(id);
    if (again !== undefined) return again;
    const random = this.options.random ?? Math.random;
    const node = this.multi.addGroup(
      String(id),
      {
        id: replicaId,
        voters,
        electionTicks: this.options.electionTicks ?? 10,
        heartbeatTicks: 1,
        random,
        applied: recovered.appliedIndex,
        ...this.options.raft,
      },
      recovered.initial,
    );
    const member = build({ node, store, recovered });
    await member.init?.();
    this.replicas.set(id, member);
    this.schedule();
    return member;
  }

  /** Removes a replica (its data stays unless the caller destroys it). */
  async remove(shard: number): Promise<void> {
    const replica = this.replicas.get(shard);
    if (replica === undefined) return;
    this.replicas.delete(shard);
    this.multi.removeGroup(String(shard));
    await replica.close();
  }

  touch(shard: number): void {
    this.multi.touch(String(shard));
    this.schedule();
  }

  compact(shard: number, snapshot: Snapshot): Promise<void> {
    return new Promise<void>((done, failed) => {
      this.compactions.push({ shard, snapshot, done, failed });
      this.schedule();
    });
  }

  /** Stops ticking and processing; in-flight writes fail as indeterminate. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const replica of this.replicas.values()) await replica.close();
    while (this.cycleRunning) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  private tick(): void {
    if (this.stopped) return;
    this.stats.ticks++;
    this.multi.tick();
    const nowMs = this.options.clock.monotonicMs();
    for (const replica of this.replicas.values()) replica.expire(nowMs);
    // One empty batch per peer per tick: the node heartbeat that tells quiet groups we are alive.
    for (const batch of this.multi.batch([], true)) {
      this.options.transport.send(batch.to, [], 'raft');
    }
    this.schedule();
  }

  private receive(from: NodeId, messages: readonly GroupMessage[]): void {
    if (this.stopped) return;
    this.multi.heardFrom(from);
    for (const { group, message } of messages) {
      this.stats.messagesIn++;
      // Addressed to the member open here now: a message for an earlier (or later) member of
      // the group on this broker is stale and dropped.
      if (brokerOfReplica(message.from) !== from) continue;
      if (this.replicas.get(group)?.node.id !== message.to) continue;
      this.multi.step(String(group), message);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.cycleRunning) {
      this.cycleWanted = true;
      return;
    }
    this.cycleRunning = true;
    setImmediate(() => void this.runCycles());
  }

  private async runCycles(): Promise<void> {
    try {
      // A cycle's acknowledgements travel with the next cycle's appends when one follows at once:
      // one transport batch per peer instead of two.
      let carried: GroupMessage[] = [];
      do {
        this.cycleWanted = false;
        carried = await this.cycle(carried);
      } while (this.cycleWanted && !this.stopped);
      if (!this.stopped) this.send(carried);
    } catch (error) {
      // A storage failure is fail-stop (the writer's onFatal ends the process); anything else is
      // a bug, and continuing could acknowledge what is not durable.
      this.options.logger.fatal({ err: error }, 'raft processing failed; stopping the host');
      this.stopped = true;
      if (this.timer !== undefined) clearInterval(this.timer);
      for (const replica of this.replicas.values()) void replica.close();
    } finally {
      this.cycleRunning = false;
    }
  }

  /**
   * One processing cycle. `carried`: messages of the previous cycle that its batch made safe to
   * send; they go out with this cycle's first messages. Returns this cycle's own such messages.
   */
  private async cycle(carried: GroupMessage[]): Promise<GroupMessage[]> {
    const compactions = this.compactions.splice(0);
    const readies = this.multi.readies();
    if (readies.length === 0 && compactions.length === 0) {
      this.send(carried);
      return [];
    }
    this.stats.cycles++;
    this.stats.readies += readies.length;
    const ops: KvOp[] = [];
    const now: GroupMessage[] = carried;
    for (const { group, ready } of readies) {
      const replica = this.replicaOf(group);
      for (const message of ready.messagesNow) now.push({ group: replica.shard, message });
      replica.appended(ready.entries);
      for (const op of replica.store.persistOps(ready)) ops.push(op);
      if (ready.snapshot !== undefined && replica.snapshotOps !== undefined) {
        for (const op of replica.snapshotOps(ready.snapshot)) ops.push(op);
      }
      for (const op of replica.applyOps(ready.committedEntries)) ops.push(op);
      if (ready.softState !== undefined) replica.roleChanged(ready.softState.role);
    }
    const planned = compactions.filter((c) => {
      const replica = this.replicas.get(c.shard);
      if (replica === undefined || c.snapshot.index <= replica.store.trimPoint.index) {
        c.done();
        return false;
      }
      for (const op of replica.store.compactOps(c.snapshot)) ops.push(op);
      return true;
    });
    // The leaders' appends go out before their own fsync (Raft §10.2.1); followers write in
    // parallel with us.
    this.send(now);
    if (ops.length > 0) await this.options.writer.write(ops);
    const after: GroupMessage[] = [];
    for (const { group, node, ready } of readies) {
      const replica = this.replicaOf(group);
      for (const message of ready.messagesAfterPersist)
        after.push({ group: replica.shard, message });
      replica.persisted(ready.entries);
      replica.appliedEntries(ready.committedEntries, ready.snapshot);
      if (ready.readStates.length > 0) replica.readStates?.(ready.readStates);
      for (const load of ready.loads) this.load(replica, load);
      node.advance(ready);
      this.multi.advanced(group);
      this.finishRemoval(replica);
    }
    for (const c of planned) {
      const replica = this.replicas.get(c.shard);
      if (replica !== undefined) {
        replica.node.compact(c.snapshot);
        this.finishRemoval(replica);
      }
      c.done();
    }
    return after;
  }

  private replicaOf(group: GroupReady['group']): HostedGroup {
    const replica = this.replicas.get(Number(group));
    if (replica === undefined) throw new Error(`no replica for group ${group}`);
    return replica;
  }

  /** Entries covered by a snapshot or a trim go once the batch that moved the trim point is durable. */
  private finishRemoval(replica: HostedGroup): void {
    replica.store.afterPersist().catch((error: unknown) => {
      this.options.logger.error(
        { err: error, shard: replica.shard },
        'removing trimmed entries failed',
      );
    });
  }

  private load(replica: HostedGroup, request: LoadRequest): void {
    replica.store.load(request).then(
      (entries) => {
        if (this.replicas.get(replica.shard) !== replica) return;
        replica.node.loaded({ from: request.from, entries });
        this.touch(replica.shard);
      },
      (error: unknown) => {
        this.options.logger.error(
          { err: error, shard: replica.shard },
          'reading the raft log failed',
        );
        if (this.replicas.get(replica.shard) !== replica) return;
        // Raft asks again when it still needs the entries.
        replica.node.loaded({ from: request.from, entries: [] });
        this.touch(replica.shard);
      },
    );
  }

  /** Groups messages per peer and lane (catch-up traffic apart) and hands them to the transport. */
  private send(messages: readonly GroupMessage[]): void {
    if (messages.length === 0) return;
    const byPeer = new Map<string, { to: NodeId; lane: PeerLane; list: GroupMessage[] }>();
    for (const item of messages) {
      const lane: PeerLane = item.message.catchUp === true ? 'catchUp' : 'raft';
      const to = brokerOfReplica(item.message.to);
      const key = `${to}:${lane}`;
      let entry = byPeer.get(key);
      if (entry === undefined) byPeer.set(key, (entry = { to, lane, list: [] }));
      entry.list.push(item);
    }
    for (const { to, lane, list } of byPeer.values()) {
      this.stats.messagesOut += list.length;
      this.options.transport.send(to, list, lane);
    }
  }
}
