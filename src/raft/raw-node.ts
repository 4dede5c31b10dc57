import type { RaftConfig } from './config.js';
import { invariant } from './errors.js';
import { Raft } from './raft.js';
import {
  Role,
  type Entry,
  type HardState,
  type InitialState,
  type LoadRequest,
  type LoadResult,
  type Message,
  type NodeId,
  type ReadState,
  type ConfChange,
  type ConfState,
  type Snapshot,
} from './types.js';

/**
 * The library's interface (etcd's RawNode). The host drives it:
 *
 *   1. feed inputs: tick() on a timer, step() for each message, propose(), loaded() for storage reads;
 *   2. when hasReady(), take ready();
 *   3. send ready.messagesNow at once; persist ready.entries and ready.hardState (one atomic,
 *      synced write; writing entries from index k replaces whatever was stored from k on); then
 *      send ready.messagesAfterPersist; apply ready.committedEntries in order; start
 *      ready.loads and hand each result back with loaded();
 *   4. call advance(ready).
 *
 * Only one Ready is out at a time. Nothing here blocks, waits, or reads a clock.
 */

export interface Ready {
  /** Role and leader, when either changed. */
  readonly softState?: { readonly role: Role; readonly lead: NodeId };
  /** Persist before sending messagesAfterPersist (present only when changed). */
  readonly hardState?: HardState;
  /** Persist before sending messagesAfterPersist; they replace the stored log from entries[0].index. */
  readonly entries: readonly Entry[];
  /** Whether entries or hardState must be written with sync before messagesAfterPersist go out. */
  readonly mustSync: boolean;
  /** Safe to send immediately (the leader's appends and heartbeats; Raft §10.2.1). */
  readonly messagesNow: readonly Message[];
  /** Responses and vote requests: they vouch for what this Ready persists. */
  readonly messagesAfterPersist: readonly Message[];
  /** Committed and durable entries to apply, in order. */
  readonly committedEntries: readonly Entry[];
  /** Log ranges to read from storage and return with loaded(). */
  readonly loads: readonly LoadRequest[];
  /** Linearizable reads: serve each once committedEntries applied up to its index. */
  readonly readStates: readonly ReadState[];
  /** The membership in force (the latest change in the log), when it changed. */
  readonly confState?: ConfState;
  /**
   * A snapshot from the leader to install before anything else in this Ready: replace the state
   * machine with it and discard the whole stored log (entries then follow it).
   */
  readonly snapshot?: Snapshot;
}

export interface Status {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly role: Role;
  readonly lead: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly stable: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
}

export class RawNode {
  private readonly raft: Raft;
  private persistedHardState: HardState;
  private lastSoft: { role: Role; lead: NodeId };
  private outstanding: Ready | undefined;

  constructor(config: RaftConfig, initial: InitialState) {
    this.raft = new Raft(config, initial);
    this.persistedHardState = initial.hardState;
    this.lastSoft = { role: this.raft.role, lead: this.raft.lead };
  }

  /** This member's id in its group. */
  get id(): NodeId {
    return this.raft.id;
  }

  tick(): void {
    this.raft.tick();
  }

  step(message: Message): void {
    invariant(
      message.to === this.raft.id,
      `message for ${message.to} stepped into ${this.raft.id}`,
    );
    this.raft.step(message);
  }

  /** Appends a command; returns where. Throws ProposalDroppedError if this replica is not leader. */
  propose(data: Uint8Array): { index: number; term: number } {
    return this.raft.propose(data);
  }

  loaded(result: LoadResult): void {
    this.raft.loaded(result);
  }

  /** Starts an election now, skipping pre-vote (tests). */
  campaign(): void {
    this.raft.campaign(false);
  }

  /**
   * Proposes a membership change: one at a time, and a new leader first commits an entry of its
   * term. It is in force on each replica once in its log. Throws ProposalDroppedError if refused.
   */
  proposeConfChange(change: ConfChange): { index: number; term: number } {
    return this.raft.proposeConfChange(change);
  }

  /**
   * The host saved its state machine as `snapshot` (index at or below the applied index): entries
   * up to it may be deleted from storage. Followers behind it will be sent the snapshot.
   */
  compact(snapshot: Snapshot): void {
    this.raft.compact(snapshot);
  }

  /** The membership in force at `index` (for the snapshot a host takes there). */
  confStateAt(index: number): ConfState {
    return this.raft.confStateAt(index);
  }

  /** Whether the group is quiet (see RaftConfig.quiesce): ticks do nothing until it wakes. */
  get quiesced(): boolean {
    return this.raft.quiesced;
  }

  /** Wakes a quiet group (the host calls it when the leader's node seems dead). */
  unquiesce(): void {
    this.raft.unquiesce();
  }

  /** The leader this replica follows (0 if none known). */
  get lead(): NodeId {
    return this.raft.lead;
  }

  /** On the leader: hands leadership to `target` once it has caught up (proposals wait). */
  transferLeadership(target: NodeId): void {
    this.raft.transferLeadership(target);
  }

  /**
   * A linearizable read without clock leases: Ready.readStates will carry `context` with the index
   * to apply up to before serving the read. Throws ProposalDroppedError when no leader is known.
   */
  readIndex(context: string): void {
    this.raft.readIndex(context);
  }

  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const r = this.raft;
    return (
      r.hasPendingBroadcast ||
      r.sendNow.length > 0 ||
      r.sendAfterPersist.length > 0 ||
      r.loadRequests.length > 0 ||
      r.readStates.length > 0 ||
      r.confChanged ||
      r.snapshotToInstall !== undefined ||
      r.log.hasUnpersisted ||
      !sameHardState(r.hardState, this.persistedHardState) ||
      r.role !== this.lastSoft.role ||
      r.lead !== this.lastSoft.lead ||
      r.hasEntriesToApply
    );
  }

  ready(): Ready {
    invariant(this.outstanding === undefined, 'advance() the previous Ready first');
    const r = this.raft;
    r.flushBroadcast();
    const committedEntries = r.nextCommittedEntries();
    const hardState = r.hardState;
    const hardStateChanged = !sameHardState(hardState, this.persistedHardState);
    const entries = r.log.unpersisted();
    const soft = { role: r.role, lead: r.lead };
    const softChanged = soft.role !== this.lastSoft.role || soft.lead !== this.lastSoft.lead;
    const ready: Ready = {
      ...(softChanged ? { softState: soft } : {}),
      ...(hardStateChanged ? { hardState } : {}),
      entries,
      mustSync:
        entries.length > 0 ||
        r.snapshotToInstall !== undefined ||
        (hardStateChanged &&
          (hardState.term !== this.persistedHardState.term ||
            hardState.vote !== this.persistedHardState.vote)),
      messagesNow: r.sendNow.splice(0),
      messagesAfterPersist: r.sendAfterPersist.splice(0),
      committedEntries,
      loads: r.loadRequests.splice(0),
      readStates: r.readStates.splice(0),
      ...(r.confChanged ? { confState: r.confState } : {}),
      ...(r.snapshotToInstall === undefined ? {} : { snapshot: r.snapshotToInstall }),
    };
    r.snapshotToInstall = undefined;
    r.confChanged = false;
    if (softChanged) this.lastSoft = soft;
    this.outstanding = ready;
    return ready;
  }

  /** The host has persisted, sent and applied what `ready` asked for. */
  advance(ready: Ready): void {
    invariant(ready === this.outstanding, 'advance() takes the Ready last returned');
    this.outstanding = undefined;
    if (ready.hardState !== undefined) this.persistedHardState = ready.hardState;
    this.raft.persisted(ready.entries);
    const last = ready.committedEntries[ready.committedEntries.length - 1];
    if (last !== undefined) this.raft.appliedTo(last.index);

    this.raft.log.shrinkTail(this.raft.config.maxTailBytes);
  }

  /** On a leader: whether `id` holds every entry and was heard from lately. */
  isCaughtUp(id: NodeId): boolean {
    return this.raft.isCaughtUp(id);
  }

  /** The membership in force: the latest in the log, committed or not. */
  membership(): ConfState {
    return this.raft.confState;
  }

  /** On a leader: how far a member's log matches, and whether it was heard from lately. */
  matchOf(id: NodeId): { readonly match: number; readonly recentActive: boolean } | undefined {
    return this.raft.matchOf(id);
  }

  /** On a leader: entries the furthest-behind other member lacks. */
  maxFollowerLag(): number {
    return this.raft.maxFollowerLag();
  }

  status(): Status {
    const r = this.raft;
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      role: r.role,
      lead: r.lead,
      commit: r.log.committed,
      applied: r.log.applied,
      stable: r.log.stable,
      lastIndex: r.log.lastIndex,
      lastTerm: r.log.lastTerm,
    };
  }

  /** The underlying state machine, for white-box tests. */
  get internals(): Raft {
    return this.raft;
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
