import type { UnsafeSwitches } from '../../src/raft/config.js';
import { ProposalDroppedError } from '../../src/raft/errors.js';
import { Membership } from '../../src/raft/membership.js';
import { RawNode, type Ready } from '../../src/raft/raw-node.js';
import {
  EntryType,
  Role,
  type ConfChange,
  type ConfState,
  type Entry,
  type LoadRequest,
  type Message,
  type NodeId,
} from '../../src/raft/types.js';
import { SafetyChecker, SimViolation } from './checker.js';
import { EventQueue } from './event-queue.js';
import { Random } from './random.js';
import { SimStorage } from './sim-storage.js';

/**
 * A deterministic simulation of one Raft group: replicas with simulated disks, an in-memory
 * network that drops, duplicates, delays, reorders and partitions, a client proposing commands,
 * and a nemesis that crashes, restarts, partitions and slows things down. Virtual time only; one
 * seeded generator drives everything, so a seed replays exactly. After every event the safety
 * checks run; after the faults stop, the group must elect a leader and make progress in bounded
 * time (liveness), and every acknowledged proposal must be applied on every replica.
 */

export interface SimOptions {
  readonly seed: number;
  /** Virtual milliseconds of faults before the heal. */
  readonly chaosMs?: number;
  /** Virtual milliseconds after the heal within which the group must make progress. */
  readonly livenessMs?: number;
  readonly unsafe?: UnsafeSwitches;
  /** Planted host bug: send acknowledgements before the write is synced. */
  readonly ackBeforePersist?: boolean;
  /**
   * Planted host bug: a replica whose disk was lost restarts under its old id with an empty disk
   * (it forgets its votes and the entries it acknowledged) instead of rejoining as a new learner.
   */
  readonly rejoinWithEmptyDisk?: boolean;
  /**
   * Run the group quiescent-capable with node-level heartbeats, as a multi-raft host does.
   * Drawn per seed (half the seeds) when not given.
   */
  readonly quiesce?: boolean;
  readonly trace?: (line: string) => void;
  /**
   * How the nemesis behaves. 'mixed' (the default) draws one of the others per seed: 'steady'
   * (faults every 50-1500 ms, all kinds) or 'churn' (faults every 5-200 ms aimed at leaders:
   * crashes with quick restarts, slow leader disks, lost and tiny messages), which provokes the
   * rare interleavings of Figure 8 and of lost unsynced writes, or 'membership' (membership
   * changes, two at a time when allowed, under partitions, crashes and transfers).
   */
  readonly profile?: 'mixed' | 'steady' | 'churn' | 'membership';
}

export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation?: string;
  readonly stats: SimStats;
}

export interface SimStats {
  replicas: number;
  events: number;
  messages: number;
  proposals: number;
  acknowledged: number;
  leaders: number;
  reads: number;
  transfers: number;
  confChanges: number;
  compactions: number;
  snapshotsInstalled: number;
  quietTicks: number;
  crashes: number;
  disksLost: number;
  replacements: number;
  lostWrites: number;
  loads: number;
  virtualMs: number;
}

const TICK_MS = 10;
/** A quiet group wakes when its leader's node has been silent this long (an election timeout). */
const QUIET_LEADER_TIMEOUT_MS = 10 * TICK_MS;

type SimEvent =
  | { kind: 'tick'; node: NodeId; incarnation: number }
  | { kind: 'ping'; from: NodeId; to: NodeId }
  | { kind: 'deliver'; message: Message }
  | { kind: 'synced'; node: NodeId; incarnation: number; batch: number }
  | { kind: 'loaded'; node: NodeId; incarnation: number; request: LoadRequest }
  | { kind: 'client' }
  | { kind: 'nemesis' }
  | { kind: 'restart'; node: NodeId }
  | { kind: 'replace'; lost: NodeId; by: NodeId | undefined };

interface Replica {
  readonly id: NodeId;
  storage: SimStorage;
  node: RawNode | undefined;
  /** Bumped on every restart, so events of an earlier life are ignored. */
  incarnation: number;
  /** A Ready written and waiting for its sync. */
  waiting: Ready | undefined;
  diskDelayMs: [number, number];
  /** Terms of the entries applied since the last start, by index. */
  appliedTerms: number[];
  /** Virtual time a node-level heartbeat (or any message) last arrived from each peer. */
  lastHeard: Map<NodeId, number>;
  /** Lost its disk: its id is retired for good and it never runs again. */
  retired: boolean;
}

export class Simulation {
  private readonly random: Random;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly replicas = new Map<NodeId, Replica>();
  /** Every replica ever created, including ones added by membership changes. */
  private readonly ids: NodeId[];
  /** The group's voters when it was created. */
  private readonly bootstrap: readonly NodeId[];
  readonly checker = new SafetyChecker();
  private now = 0;
  private readonly blocked = new Set<string>();
  private network = { dropRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 5 };
  private readonly tuning: {
    maxTailEntries: number;
    maxTailBytes: number;
    maxSizePerMsgBytes: number;
    maxInflightMsgs: number;
    maxLoadBytes: number;
  };
  private chaos = true;
  private readonly profile: 'steady' | 'churn' | 'membership';
  /** Half the seeds run with quiescence and node-level heartbeats, as a multi-raft host would. */
  private readonly quiesce: boolean;
  /** Randomness for node-level heartbeats, apart from the main stream. */
  private readonly sideRandom: Random;
  /** Whether this seed loses disks (half the membership seeds), and when; its own stream too. */
  private readonly diskLossRandom: Random;
  private readonly diskLoss: boolean;
  /** A lost replica is being replaced; one at a time, as an operator would. */
  private replacing = false;
  private proposalCounter = 0;
  /** Proposals accepted by a leader: value -> who accepted it and where. */
  private readonly accepted = new Map<string, { node: NodeId; index: number; term: number }>();
  private lastKnownLeader: NodeId | undefined;
  readonly stats: SimStats;

  constructor(private readonly options: SimOptions) {
    this.random = new Random(options.seed);
    const draw = this.random.next();
    this.profile =
      options.profile === undefined || options.profile === 'mixed'
        ? draw < 0.5
          ? 'steady'
          : draw < 0.8
            ? 'churn'
            : 'membership'
        : options.profile;
    // Quiescence draws from its own stream, so seeds without it replay exactly as they did
    // before it existed (regression seeds keep their meaning).
    this.sideRandom = new Random(options.seed ^ 0x5eed51de);
    this.quiesce = options.quiesce ?? this.sideRandom.chance(0.5);
    this.diskLossRandom = new Random(options.seed ^ 0xd15c1055);
    this.diskLoss = this.profile === 'membership' && this.diskLossRandom.chance(0.5);
    const size = this.profile === 'churn' || this.random.chance(0.5) ? 3 : 5;
    this.ids = Array.from({ length: size }, (_, i) => i + 1);
    this.bootstrap = [...this.ids];
    this.tuning = {
      maxTailEntries: this.random.int(0, 40),
      maxTailBytes: this.random.pick([256, 2048, 1 << 20]),
      maxSizePerMsgBytes: this.profile === 'churn' ? 32 : this.random.pick([64, 512, 1 << 16]),
      maxInflightMsgs: this.random.int(1, 8),
      maxLoadBytes: this.random.pick([64, 1024, 1 << 16]),
    };
    this.stats = {
      replicas: size,
      events: 0,
      messages: 0,
      proposals: 0,
      acknowledged: 0,
      leaders: 0,
      reads: 0,
      transfers: 0,
      confChanges: 0,
      compactions: 0,
      snapshotsInstalled: 0,
      quietTicks: 0,
      crashes: 0,
      disksLost: 0,
      replacements: 0,
      lostWrites: 0,
      loads: 0,
      virtualMs: 0,
    };
    for (const id of this.ids) this.createReplica(id);
    this.queue.push(this.random.int(1, 20), { kind: 'client' });
    this.queue.push(this.random.int(100, 500), { kind: 'nemesis' });
  }

  run(): SimResult {
    const chaosMs = this.options.chaosMs ?? 5_000;
    const livenessMs = this.options.livenessMs ?? 10_000;
    try {
      this.runUntil(chaosMs);
      this.heal();
      this.trace(`-- heal at ${this.now} ms`);
      this.awaitProgress(chaosMs + livenessMs);
      this.checkAcknowledgedEverywhere();
      return { seed: this.options.seed, ok: true, stats: this.finish() };
    } catch (error) {
      if (error instanceof SimViolation) {
        this.trace(`!! ${error.message}`);
        return {
          seed: this.options.seed,
          ok: false,
          violation: error.message,
          stats: this.finish(),
        };
      }
      throw error;
    }
  }

  private finish(): SimStats {
    this.stats.virtualMs = this.now;
    this.stats.acknowledged = this.checker.acknowledged.size;
    return this.stats;
  }

  private trace(line: string): void {
    this.options.trace?.(`${String(this.now).padStart(6)} ${line}`);
  }

  private runUntil(endMs: number, stop?: () => boolean): void {
    for (;;) {
      const next = this.queue.pop();
      if (next === undefined) return;
      if (next.at > endMs) {
        this.queue.push(next.at, next.event);
        this.now = endMs;
        return;
      }
      this.now = next.at;
      if (++this.stats.events > 5_000_000)
        throw new SimViolation('livelock', 'more than 5,000,000 events');
      this.handle(next.event);
      this.checkLeaders();
      if (stop?.()) return;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Replicas

  private start(replica: Replica): void {
    replica.incarnation++;
    replica.waiting = undefined;
    // The state machine restarts from the latest snapshot (entries after it are applied again).
    const saved = replica.storage.snapshot;
    replica.appliedTerms = saved === undefined ? [] : decodeTerms(saved.data);
    replica.node = new RawNode(
      {
        id: replica.id,
        voters: this.bootstrap,
        electionTicks: 10,
        heartbeatTicks: 1,
        maxTailBytes: this.tuning.maxTailBytes,
        maxSizePerMsgBytes: this.tuning.maxSizePerMsgBytes,
        maxInflightMsgs: this.tuning.maxInflightMsgs,
        maxLoadBytes: this.tuning.maxLoadBytes,
        random: () => this.random.next(),
        quiesce: this.quiesce,
        applied: replica.appliedTerms.length,
        ...(this.options.unsafe === undefined ? {} : { unsafe: this.options.unsafe }),
      },
      replica.storage.initialState(this.tuning.maxTailEntries),
    );
    this.trace(`start ${replica.id} (incarnation ${replica.incarnation})`);
    this.queue.push(this.now + this.random.int(1, TICK_MS), {
      kind: 'tick',
      node: replica.id,
      incarnation: replica.incarnation,
    });
  }

  private createReplica(id: NodeId): Replica {
    const replica: Replica = {
      id,
      storage: new SimStorage(),
      node: undefined,
      incarnation: 0,
      waiting: undefined,
      diskDelayMs: [0, 2],
      appliedTerms: [],
      lastHeard: new Map(),
      retired: false,
    };
    this.replicas.set(id, replica);
    if (!this.ids.includes(id)) this.ids.push(id);
    this.start(replica);
    return replica;
  }

  /** A replica saves its state machine and compacts its log (as retention trimming will). */
  private compact(): void {
    const up = [...this.replicas.values()].filter(
      (r) => r.node !== undefined && r.waiting === undefined,
    );
    if (up.length === 0) return;
    const replica = this.random.pick(up);
    const node = replica.node as RawNode;
    const index = node.status().applied - this.random.int(0, 5);
    const base = replica.storage.snapshot?.index ?? 0;
    if (index <= base || index < 1) return;
    const snapshot = {
      index,
      term: replica.storage.termAt(index),
      confState: node.internals.confStateAt(index),
      data: encodeTerms(replica.appliedTerms.slice(0, index)),
    };
    node.compact(snapshot);
    replica.storage.compact(snapshot);
    this.stats.compactions++;
    this.trace(`${replica.id} compacts to ${index}`);
  }

  /** The membership as the replica that has applied the most sees it. */
  private members(): NodeId[] {
    let best: Replica | undefined;
    for (const r of this.replicas.values()) {
      if (r.node === undefined) continue;
      if (best === undefined || r.appliedTerms.length > best.appliedTerms.length) best = r;
    }
    const conf = best?.node?.internals.confState;
    const all = conf === undefined ? [...this.ids] : [...conf.voters, ...conf.learners];
    return all.filter((id) => this.replicas.get(id)?.retired !== true);
  }

  /**
   * An operator changes the membership through the leader: adds a learner (a new replica id),
   * promotes a learner, or removes a member (the leader itself included). Sometimes two changes
   * at once: the second must be refused while the first is not applied.
   */
  private changeMembership(): void {
    const leader = [...this.replicas.values()].find((x) => x.node?.status().role === Role.Leader);
    const node = leader?.node;
    if (node === undefined) return;
    const count = this.random.chance(0.5) ? 2 : 1;
    for (let i = 0; i < count; i++) {
      const conf = node.internals.confState;
      const options: ConfChange[] = [];
      if (this.ids.length < 8)
        options.push({ type: 'addLearner', node: Math.max(...this.ids) + 1 });
      for (const learner of conf.learners) {
        options.push({ type: 'addVoter', node: learner }, { type: 'removeNode', node: learner });
      }
      // Removing a live voter while a dead disk still holds a vote could leave no quorum.
      const deadVoter = conf.voters.some((v) => this.replicas.get(v)?.retired === true);
      if (conf.voters.length > 2 && !deadVoter)
        for (const voter of conf.voters) options.push({ type: 'removeNode', node: voter });
      if (options.length === 0) return;
      const change = this.random.pick(options);
      try {
        node.proposeConfChange(change);
        this.stats.confChanges++;
        this.trace(`leader ${(leader as Replica).id} proposes ${change.type} ${change.node}`);
        if (change.type === 'addLearner' && !this.replicas.has(change.node))
          this.createReplica(change.node);
      } catch (error) {
        if (!(error instanceof ProposalDroppedError)) throw error;
      }
    }
    this.pump(leader as Replica);
  }

  /**
   * Losing a disk must not cost the group its quorum for good: one replacement at a time, and
   * only while at least three voters remain (two of them can still elect and commit).
   */
  private mayLoseDisk(): boolean {
    if (this.replacing) return false;
    // Every replica's view, crashed ones from their disks, so a removal still pending in any log
    // is counted.
    for (const replica of this.replicas.values()) {
      if (replica.retired) continue;
      const views = [this.confOnDisk(replica), replica.node?.internals.confState];
      for (const conf of views) {
        if (conf === undefined) continue;
        const voters = conf.voters.filter((v) => this.replicas.get(v)?.retired !== true);
        if (voters.length < 3) return false;
      }
    }
    return true;
  }

  /** The membership a replica would start with from what its disk holds now. */
  private confOnDisk(replica: Replica): ConfState {
    const state = replica.storage.initialState(0);
    const base = state.snapshot?.confState ?? { voters: this.bootstrap, learners: [], removed: [] };
    return new Membership(
      state.snapshot?.index ?? 0,
      state.snapshot?.term ?? 0,
      base,
      state.confEntries ?? [],
    ).current;
  }

  /**
   * The disk is gone. A replica that forgot its votes and acknowledged entries must not come back
   * under its old id (it could vote twice in a term, or help elect a leader without entries it
   * confirmed): its id is retired, and an operator replaces it with a new learner.
   */
  private loseDisk(victim: Replica): void {
    this.crash(victim);
    victim.storage = new SimStorage();
    victim.appliedTerms = [];
    this.stats.disksLost++;
    this.trace(`disk of ${victim.id} lost`);
    if (this.options.rejoinWithEmptyDisk === true) {
      this.queue.push(this.now + this.diskLossRandom.int(5, 300), {
        kind: 'restart',
        node: victim.id,
      });
      return;
    }
    victim.retired = true;
    this.replacing = true;
    this.queue.push(this.now + this.diskLossRandom.int(20, 300), {
      kind: 'replace',
      lost: victim.id,
      by: undefined,
    });
  }

  /**
   * The operator's replacement, one step per visit until done: remove the lost id, add a new
   * learner, promote it once it has caught up with the commit index. Each step goes through the
   * current leader and is retried (changes are refused while another is pending, and leaders
   * change).
   */
  private replace(lost: NodeId, by: NodeId | undefined): void {
    const leader = [...this.replicas.values()].find((x) => x.node?.status().role === Role.Leader);
    const node = leader?.node;
    let next = by;
    let done = false;
    if (node !== undefined) {
      const conf = node.internals.confState;
      let change: ConfChange | undefined;
      if (conf.voters.includes(lost) || conf.learners.includes(lost)) {
        change = { type: 'removeNode', node: lost };
      } else if (next === undefined) {
        next = Math.max(...this.ids) + 1;
        change = { type: 'addLearner', node: next };
      } else if (conf.learners.includes(next)) {
        const newcomer = this.replicas.get(next)?.node?.status();
        if (newcomer !== undefined && newcomer.applied >= node.status().commit)
          change = { type: 'addVoter', node: next };
      } else if (conf.voters.includes(next)) {
        done = true;
      } else {
        // The newcomer was removed by another change: start over with a fresh id.
        next = undefined;
      }
      if (change !== undefined) {
        try {
          node.proposeConfChange(change);
          this.stats.confChanges++;
          this.trace(`operator replaces ${lost}: ${change.type} ${change.node}`);
          if (change.type === 'addLearner' && !this.replicas.has(change.node))
            this.createReplica(change.node);
        } catch (error) {
          if (!(error instanceof ProposalDroppedError)) throw error;
          if (change.type === 'addLearner') next = undefined;
        }
        this.pump(leader as Replica);
      }
    }
    if (done) {
      this.replacing = false;
      this.stats.replacements++;
      this.trace(`operator replaced ${lost} by ${next}`);
      return;
    }
    this.queue.push(this.now + this.diskLossRandom.int(20, 200), {
      kind: 'replace',
      lost,
      by: next,
    });
  }

  private crash(replica: Replica): void {
    const { lost } = replica.storage.crash(this.random);
    this.stats.crashes++;
    this.stats.lostWrites += lost;
    replica.node = undefined;
    replica.waiting = undefined;
    this.trace(`crash ${replica.id} (${lost} unsynced writes lost)`);
  }

  private live(id: NodeId, incarnation?: number): Replica | undefined {
    const replica = this.replicas.get(id);
    if (replica === undefined || replica.node === undefined) return undefined;
    if (incarnation !== undefined && incarnation !== replica.incarnation) return undefined;
    return replica;
  }

  /** Runs the replica's Ready loop as a host would, as far as it can go right now. */
  private pump(replica: Replica): void {
    const node = replica.node;
    while (
      node !== undefined &&
      replica.node === node &&
      replica.waiting === undefined &&
      node.hasReady()
    ) {
      const ready = node.ready();
      if (ready.softState !== undefined)
        this.trace(`${replica.id} is ${ready.softState.role} (leader ${ready.softState.lead})`);
      for (const m of ready.messagesNow) this.send(m);
      for (const entry of ready.committedEntries) this.apply(replica, entry);
      for (const read of ready.readStates) this.checkRead(replica, read.context, read.index);
      for (const request of ready.loads) {
        this.stats.loads++;
        this.queue.push(this.now + this.random.int(0, 30), {
          kind: 'loaded',
          node: replica.id,
          incarnation: replica.incarnation,
          request,
        });
      }
      if (ready.snapshot !== undefined) {
        // The leader's snapshot replaces this replica's state machine.
        const terms = decodeTerms(ready.snapshot.data);
        this.checker.observeSnapshot(replica.id, terms);
        replica.appliedTerms = terms;
        this.stats.snapshotsInstalled++;
      }
      if (
        ready.entries.length === 0 &&
        ready.hardState === undefined &&
        ready.snapshot === undefined
      ) {
        for (const m of ready.messagesAfterPersist) this.send(m);
        node.advance(ready);
        continue;
      }
      const first = ready.entries[0];
      if (first !== undefined) {
        const prevTerm =
          ready.snapshot !== undefined && first.index === ready.snapshot.index + 1
            ? ready.snapshot.term
            : replica.storage.termAt(first.index - 1);
        this.checker.observeWrite(replica.id, ready.entries, prevTerm);
      }
      const batch = replica.storage.write(ready.snapshot, ready.entries, ready.hardState);
      if (this.options.ackBeforePersist === true) {
        for (const m of ready.messagesAfterPersist) this.send(m);
      }
      replica.waiting = ready;
      const [lo, hi] = replica.diskDelayMs;
      this.queue.push(this.now + this.random.int(lo, hi), {
        kind: 'synced',
        node: replica.id,
        incarnation: replica.incarnation,
        batch,
      });
    }
  }

  private synced(replica: Replica, batch: number): void {
    const ready = replica.waiting;
    const node = replica.node;
    if (ready === undefined || node === undefined) return;
    replica.storage.sync(batch);
    replica.waiting = undefined;
    if (this.options.ackBeforePersist !== true) {
      for (const m of ready.messagesAfterPersist) this.send(m);
    }
    node.advance(ready);
    this.pump(replica);
  }

  private apply(replica: Replica, entry: Entry): void {
    const expected = replica.appliedTerms.length + 1;
    if (entry.index !== expected) {
      throw new SimViolation(
        'apply order',
        `replica ${replica.id} applied ${entry.index} after ${expected - 1}`,
      );
    }
    this.checker.observeApply(replica.id, entry, replica.node?.status().term ?? 0);
    replica.appliedTerms[entry.index - 1] = entry.term;
    if (entry.type !== EntryType.Normal) return;
    const value = new TextDecoder().decode(entry.data);
    const accepted = this.accepted.get(value);
    if (
      accepted !== undefined &&
      accepted.node === replica.id &&
      accepted.index === entry.index &&
      accepted.term === entry.term
    ) {
      // The replica that took the proposal has applied it: the client is told it committed.
      this.checker.acknowledge(value, entry.index, entry.term);
      this.accepted.delete(value);
    }
  }

  private checkLeaders(): void {
    for (const replica of this.replicas.values()) {
      const status = replica.node?.status();
      if (status === undefined || status.role !== Role.Leader) continue;
      this.checker.observeLeaderCommit(status.term, status.commit);
      if (this.checker.observeLeader(replica.id, status.term)) {
        this.stats.leaders++;
        this.lastKnownLeader = replica.id;
        const log = replica.node?.internals.log;
        if (log !== undefined)
          this.checker.checkLeaderComplete(
            replica.id,
            status.term,
            (i) => log.term(i),
            log.firstIndex,
          );
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Network

  private ping(from: NodeId, to: NodeId): void {
    if (this.blocked.has(`${from}->${to}`) || this.sideRandom.chance(this.network.dropRate)) return;
    const delayMs = this.sideRandom.int(this.network.minDelayMs, this.network.maxDelayMs);
    this.queue.push(this.now + delayMs, {
      kind: 'ping',
      from,
      to,
    });
  }

  private send(message: Message): void {
    this.stats.messages++;
    if (this.blocked.has(`${message.from}->${message.to}`)) return;
    if (this.random.chance(this.network.dropRate)) return;
    const copies = this.random.chance(this.network.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.random.int(this.network.minDelayMs, this.network.maxDelayMs);
      this.queue.push(this.now + delay, { kind: 'deliver', message });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Events

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'tick': {
        const replica = this.live(event.node, event.incarnation);
        if (replica === undefined) return;
        const node = replica.node as RawNode;
        if (this.quiesce) {
          // The multi-raft host's job: a quiet group whose leader's node fell silent wakes up.
          const heard = replica.lastHeard.get(node.lead) ?? -Infinity;
          if (node.quiesced) this.stats.quietTicks++;
          if (node.quiesced && this.now - heard > QUIET_LEADER_TIMEOUT_MS) node.unquiesce();
          // One node-level heartbeat per peer per tick (what MultiRaft batches carry).
          for (const peer of this.ids) if (peer !== replica.id) this.ping(replica.id, peer);
        }
        node.tick();
        this.pump(replica);
        this.queue.push(this.now + TICK_MS, event);
        return;
      }
      case 'ping': {
        const replica = this.live(event.to);
        if (replica === undefined || this.blocked.has(`${event.from}->${event.to}`)) return;
        replica.lastHeard.set(event.from, this.now);
        return;
      }
      case 'deliver': {
        const m = event.message;
        const replica = this.live(m.to);
        // A partition that started while the message was in flight also stops it.
        if (replica === undefined || this.blocked.has(`${m.from}->${m.to}`)) return;
        replica.lastHeard.set(m.from, this.now);
        replica.node?.step(m);
        this.pump(replica);
        return;
      }
      case 'synced': {
        const replica = this.live(event.node, event.incarnation);
        if (replica !== undefined) this.synced(replica, event.batch);
        return;
      }
      case 'loaded': {
        const replica = this.live(event.node, event.incarnation);
        if (replica === undefined) return;
        replica.node?.loaded({
          from: event.request.from,
          entries: replica.storage.read(event.request),
        });
        this.pump(replica);
        return;
      }
      case 'client':
        // The client stops with the faults; after the heal only the liveness probe is proposed.
        if (!this.chaos) return;
        if (this.random.chance(0.2)) this.read();
        else this.propose();
        this.queue.push(this.now + this.random.int(1, 40), { kind: 'client' });
        return;
      case 'nemesis':
        if (!this.chaos) return;
        this.nemesis();
        this.queue.push(
          this.now +
            (this.profile === 'churn'
              ? this.random.int(5, 200)
              : this.profile === 'membership'
                ? this.random.int(20, 300)
                : this.random.int(50, 1_500)),
          { kind: 'nemesis' },
        );
        return;
      case 'restart': {
        const replica = this.replicas.get(event.node);
        if (replica !== undefined && replica.node === undefined && !replica.retired)
          this.start(replica);
        return;
      }
      case 'replace':
        this.replace(event.lost, event.by);
        return;
    }
  }

  /** Reads asked and not yet answered: context -> the highest acknowledged index when asked. */
  private readonly reads = new Map<string, number>();
  private readCounter = 0;

  /** A linearizable read: it must see every write acknowledged before it was asked. */
  private read(): void {
    const up = this.ids.filter((id) => this.live(id) !== undefined);
    if (up.length === 0) return;
    const replica = this.live(this.random.pick(up)) as Replica;
    let highestAcked = 0;
    for (const ack of this.checker.acknowledged.values())
      highestAcked = Math.max(highestAcked, ack.index);
    const context = `read-${++this.readCounter}`;
    try {
      (replica.node as RawNode).readIndex(context);
      this.reads.set(context, highestAcked);
      this.stats.reads++;
      this.pump(replica);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
    }
  }

  private checkRead(replica: Replica, context: string, index: number): void {
    const mustSee = this.reads.get(context);
    if (mustSee === undefined) return;
    this.reads.delete(context);
    if (index < mustSee) {
      throw new SimViolation(
        'linearizable reads',
        `replica ${replica.id} answered ${context} at index ${index}, but index ${mustSee} was acknowledged before the read was asked`,
      );
    }
  }

  private propose(value?: string): void {
    const up = this.ids.filter((id) => this.live(id) !== undefined);
    if (up.length === 0) return;
    const target =
      this.lastKnownLeader !== undefined &&
      up.includes(this.lastKnownLeader) &&
      this.random.chance(0.8)
        ? this.lastKnownLeader
        : this.random.pick(up);
    const replica = this.live(target) as Replica;
    const text = value ?? `v${++this.proposalCounter}`;
    try {
      const where = (replica.node as RawNode).propose(new TextEncoder().encode(text));
      this.stats.proposals++;
      this.accepted.set(text, { node: target, ...where });
      this.pump(replica);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      if (error.leaderHint !== 0) this.lastKnownLeader = error.leaderHint;
    }
  }

  private nemesis(): void {
    // Replicas compact their logs now and then, whatever else the nemesis does.
    if (this.random.chance(0.15)) this.compact();
    if (this.profile === 'churn') {
      this.churn();
      return;
    }
    if (this.profile === 'membership') {
      this.membershipChurn();
      return;
    }
    const r = this.random.next();
    const replicas = [...this.replicas.values()];
    // Leaders are where the interesting failures are, so they are picked more often.
    const leader = replicas.find((x) => x.node?.status().role === Role.Leader);
    const target = (pool: Replica[]): Replica =>
      leader !== undefined && pool.includes(leader) && this.random.chance(0.5)
        ? leader
        : this.random.pick(pool);
    if (r < 0.25) {
      const up = replicas.filter((x) => x.node !== undefined);
      if (up.length === 0) return;
      const victim = target(up);
      this.crash(victim);
      this.queue.push(this.now + this.random.int(10, 2_000), { kind: 'restart', node: victim.id });
    } else if (r < 0.45) {
      this.partition();
    } else if (r < 0.6) {
      this.blocked.clear();
      this.trace('network healed');
    } else if (r < 0.75) {
      this.network = {
        dropRate: this.random.pick([0, 0, 0.05, 0.2, 0.5]),
        duplicateRate: this.random.pick([0, 0.05, 0.2]),
        minDelayMs: this.random.int(0, 5),
        maxDelayMs: this.random.pick([5, 20, 100, 400]),
      };
      this.trace(`network ${JSON.stringify(this.network)}`);
    } else if (r < 0.9) {
      const replica = target(replicas);
      replica.diskDelayMs = this.random.chance(0.5)
        ? [0, 2]
        : [this.random.int(5, 50), this.random.int(50, 400)];
      this.trace(`disk of ${replica.id}: ${replica.diskDelayMs.join('-')} ms`);
    } else if (r < 0.93) {
      this.changeMembership();
    } else if (r < 0.96 && leader !== undefined) {
      const target = this.random.pick(this.ids.filter((id) => id !== leader.id));
      leader.node?.transferLeadership(target);
      this.stats.transfers++;
      this.pump(leader);
      this.trace(`leader ${leader.id} transfers to ${target}`);
    } else {
      // Force an election somewhere (a node whose timer fired early).
      const up = replicas.filter((x) => x.node !== undefined);
      if (up.length > 0) {
        const candidate = this.random.pick(up);
        candidate.node?.campaign();
        this.pump(candidate);
        this.trace(`${candidate.id} campaigns`);
      }
    }
  }

  /** Membership changes under partitions, crashes and transfers. */
  private membershipChurn(): void {
    const replicas = [...this.replicas.values()];
    const leader = replicas.find((x) => x.node?.status().role === Role.Leader);
    const r = this.random.next();
    if (r < 0.35) {
      this.changeMembership();
    } else if (r < 0.6) {
      this.partition();
    } else if (r < 0.75) {
      this.blocked.clear();
    } else if (r < 0.9) {
      const up = replicas.filter((x) => x.node !== undefined);
      if (up.length === 0) return;
      const victim = this.random.pick(up);
      if (this.diskLoss && this.diskLossRandom.chance(0.3) && this.mayLoseDisk()) {
        this.loseDisk(victim);
        return;
      }
      this.crash(victim);
      this.queue.push(this.now + this.random.int(5, 500), { kind: 'restart', node: victim.id });
    } else if (leader !== undefined) {
      const target = this.random.pick(this.ids.filter((id) => id !== leader.id));
      leader.node?.transferLeadership(target);
      this.stats.transfers++;
      this.pump(leader);
    }
  }

  /** Faults aimed at the leader, in quick succession. */
  private churn(): void {
    const replicas = [...this.replicas.values()];
    const leader = replicas.find((x) => x.node?.status().role === Role.Leader);
    const r = this.random.next();
    if (r < 0.3 && leader !== undefined) {
      leader.diskDelayMs = [this.random.int(5, 40), this.random.int(40, 200)];
      this.trace(`slow disk on leader ${leader.id}`);
    } else if (r < 0.6) {
      const up = replicas.filter((x) => x.node !== undefined);
      const victim =
        leader !== undefined && this.random.chance(0.7)
          ? leader
          : up.length > 0
            ? this.random.pick(up)
            : undefined;
      if (victim === undefined || victim.node === undefined) return;
      this.crash(victim);
      victim.diskDelayMs = [0, 2];
      this.queue.push(this.now + this.random.int(5, 300), { kind: 'restart', node: victim.id });
    } else if (r < 0.75) {
      this.partition();
    } else if (r < 0.8) {
      this.blocked.clear();
    } else if (r < 0.87 && leader !== undefined) {
      const target = this.random.pick(this.ids.filter((id) => id !== leader.id));
      leader.node?.transferLeadership(target);
      this.stats.transfers++;
      this.pump(leader);
    } else {
      this.network = {
        dropRate: this.random.pick([0, 0.1, 0.3]),
        duplicateRate: this.random.pick([0, 0.1]),
        minDelayMs: this.random.int(0, 3),
        maxDelayMs: this.random.pick([5, 30, 100]),
      };
    }
  }

  private partition(): void {
    this.blocked.clear();
    const leader = [...this.replicas.values()].find((x) => x.node?.status().role === Role.Leader);
    const kind = this.random.int(0, 2);
    if (kind === 0) {
      // Symmetric split into two sides.
      const side = new Set(this.ids.filter(() => this.random.chance(0.5)));
      for (const a of this.ids)
        for (const b of this.ids) if (side.has(a) !== side.has(b)) this.blocked.add(`${a}->${b}`);
      this.trace(`partition {${[...side].join(',')}} | rest`);
    } else if (kind === 1) {
      const lonely =
        leader !== undefined && this.random.chance(0.5) ? leader.id : this.random.pick(this.ids);
      for (const b of this.ids) {
        if (b === lonely) continue;
        this.blocked.add(`${lonely}->${b}`);
        this.blocked.add(`${b}->${lonely}`);
      }
      this.trace(`isolate ${lonely}`);
    } else {
      // One-way cuts.
      for (let i = 0; i < this.random.int(1, 3); i++) {
        const a = this.random.pick(this.ids);
        const b = this.random.pick(this.ids);
        if (a !== b) this.blocked.add(`${a}->${b}`);
      }
      this.trace(`one-way cuts ${[...this.blocked].join(' ')}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Heal, liveness and the final checks

  private heal(): void {
    this.chaos = false;
    this.blocked.clear();
    this.network = { dropRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 5 };
    for (const replica of this.replicas.values()) {
      replica.diskDelayMs = [0, 2];
      if (replica.node === undefined && !replica.retired) this.start(replica);
    }
  }

  /** After the heal, a leader must be elected and a new proposal applied on every replica. */
  private awaitProgress(deadlineMs: number): void {
    // Probes are proposed until one is acknowledged: a probe taken by a leader that is deposed
    // before committing it is lost, as any uncommitted proposal may be.
    let attempt = 0;
    let probe = '';
    let proposedAt = -Infinity;
    let probeIndex: number | undefined;
    const done = () => {
      if (probeIndex === undefined) {
        const ack = this.checker.acknowledged.get(probe);
        if (ack === undefined) return false;
        probeIndex = ack.index;
      }
      // Everything acknowledged (all before the heal) and the probe itself, everywhere.
      let index = probeIndex;
      for (const ack of this.checker.acknowledged.values()) index = Math.max(index, ack.index);
      return this.members().every(
        (id) => (this.replicas.get(id)?.appliedTerms.length ?? 0) >= index,
      );
    };
    while (!done()) {
      if (this.now >= deadlineMs) {
        const roles = [...this.replicas.values()].map((r) => describeReplica(r));
        throw new SimViolation(
          'liveness',
          `no progress within ${deadlineMs - (this.options.chaosMs ?? 5_000)} ms after the heal (${roles.join(' ')})`,
        );
      }
      const pending = this.accepted.has(probe);
      if (probeIndex === undefined && (!pending || this.now - proposedAt > 1_000)) {
        probe = `probe-${this.options.seed}-${++attempt}`;
        this.propose(probe);
        if (this.accepted.has(probe)) proposedAt = this.now;
      }
      this.runUntil(Math.min(deadlineMs, this.now + 50), done);
    }
  }

  private checkAcknowledgedEverywhere(): void {
    const members = this.members();
    for (const [value, { index, term }] of this.checker.acknowledged) {
      for (const replica of this.replicas.values()) {
        if (!members.includes(replica.id)) continue;
        const applied = replica.appliedTerms[index - 1];
        if (applied !== term) {
          throw new SimViolation(
            'durability',
            `proposal ${value}, acknowledged at ${index}:${term}, is ${applied === undefined ? 'not applied' : `${index}:${applied}`} on replica ${replica.id}`,
          );
        }
      }
    }
  }
}

function encodeTerms(terms: readonly number[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(terms));
}

function decodeTerms(data: Uint8Array): number[] {
  return JSON.parse(new TextDecoder().decode(data)) as number[];
}

function describeReplica(r: Replica): string {
  const node = r.node;
  if (node === undefined) return `${r.id}:down`;
  const st = node.status();
  let text = `${r.id}:${st.role}/t${st.term} commit ${st.commit} applied ${st.applied} stable ${st.stable} last ${st.lastIndex} waiting ${r.waiting !== undefined}`;
  if (st.role === Role.Leader) {
    const parts: string[] = [];
    for (let id = 1; id <= 8; id++) {
      const pr = node.internals.progressOf(id);
      if (pr === undefined || id === r.id) continue;
      parts.push(
        `${id}{m${pr.match} n${pr.next} ${pr.state} probe${pr.probeSent} infl${pr.inflights.count} load${pr.loading} cu${pr.catchUp.length}}`,
      );
    }
    text += ` progress ${parts.join(' ')}`;
  }
  return text;
}

export function runSeed(options: SimOptions): SimResult {
  return new Simulation(options).run();
}
