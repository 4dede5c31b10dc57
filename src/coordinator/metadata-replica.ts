import type { HostedGroup, RaftHost } from '../broker/raft-host.js';
import { ReadIndexReads } from '../broker/read-index.js';
import type { Clock } from '../common/clock.js';
import {
  InternalFailureError,
  InvalidArgumentError,
  LimitExceededError,
  NotLeaderError,
  RheosError,
} from '../common/errors.js';
import { ProposalDroppedError } from '../raft/errors.js';
import type { RawNode } from '../raft/raw-node.js';
import {
  EntryType,
  NONE,
  Role,
  type Entry,
  type NodeId,
  type ReadState,
  type Snapshot,
} from '../raft/types.js';
import type { KvOp, KvStore } from '../storage/kv-store.js';
import { loadMetadataRecords, metadataOps } from '../storage/metadata-store.js';
import { encodeStampedCommand, stampedPayload } from '../storage/raft-entry.js';
import {
  decodeShardSnapshotData,
  encodeShardSnapshotData,
  type ShardRaftStore,
} from '../storage/shard-raft-store.js';
import {
  applyCommand,
  withChanges,
  type MachineContext,
  type MetadataChange,
  type MetadataCommand,
} from './metadata-machine.js';
import {
  concernsBrokers,
  diffStates,
  recordsOf,
  stateFromRecords,
  toRecord,
} from './metadata-records.js';
import type { MetadataState } from './model.js';

/**
 * One coordinator's member of the metadata Raft group. Commands are proposed on the leader as
 * JSON in Raft entries; every member applies every committed command with the same pure state
 * machine, and writes the resulting metadata records in the same synced batch that records the
 * applied index, so after a crash the stored records are exactly the state at the applied index.
 * A command the machine refuses (a stream that already exists, say) is refused identically on
 * every member, and its proposer gets the error.
 */

/** The metadata group's id in the coordinator's RaftHost (shard incarnations start at 1). */
export const METADATA_GROUP = 0;

export interface MetadataReplicaHost {
  touch(group: number): void;
  /** Queues a compaction of the group's log for the next cycle; resolves once it is durable. */
  compact(group: number, snapshot: Snapshot): Promise<void>;
  /** Where a coordinator serves, for NOT_LEADER hints. */
  addressOf(id: NodeId): string | undefined;
}

export interface MetadataReplicaOptions {
  readonly node: RawNode;
  readonly store: ShardRaftStore;
  readonly host: MetadataReplicaHost;
  readonly clock: Clock;
  readonly context: MachineContext;
  /** The state stored at `appliedIndex` (read from the metadata records at start). */
  readonly state: MetadataState;
  readonly appliedIndex: number;
  readonly proposalTimeoutMs?: number;
  /** Applied entries beyond the last snapshot after which the log is compacted. */
  readonly snapshotEveryEntries?: number;
  /** Changes and reads waiting at once beyond which more are refused (LimitExceededException). */
  readonly maxPendingProposals?: number;
  readonly maxPendingReads?: number;
}

/** Entries kept in the log before it is compacted into a snapshot of the metadata. */
export const DEFAULT_SNAPSHOT_EVERY_ENTRIES = 1_000;

type Outcome =
  | { readonly ok: true; readonly changes: readonly MetadataChange[] }
  | { readonly ok: false; readonly error: Error };

interface Waiter {
  readonly term: number;
  readonly deadlineMs: number;
  readonly resolve: (changes: readonly MetadataChange[]) => void;
  readonly reject: (error: Error) => void;
}

export type MetadataListener = (changes: readonly MetadataChange[], state: MetadataState) => void;

export class MetadataReplica implements HostedGroup {
  readonly shard = METADATA_GROUP;
  readonly node: RawNode;
  readonly store: ShardRaftStore;
  /** The state everyone may see: applied and durable. */
  private published: MetadataState;
  /** The state after the commands of the batch being written (published once it is durable). */
  private pending: MetadataState;
  private applied: number;
  /** The last applied index that changed what brokers are sent (not consumer groups). */
  private brokerApplied: number;
  private readonly outcomes = new Map<number, Outcome>();
  private readonly waiters = new Map<number, Waiter>();
  private readonly listeners = new Set<MetadataListener>();
  private readonly reads: ReadIndexReads;
  private closed = false;
  private compacting = false;

  constructor(private readonly options: MetadataReplicaOptions) {
    this.node = options.node;
    this.store = options.store;
    this.published = options.state;
    this.pending = options.state;
    this.applied = options.appliedIndex;
    // Not stored: after a restart brokers fetch the metadata once more, which is harmless.
    this.brokerApplied = options.appliedIndex;
    this.reads = new ReadIndexReads({
      node: options.node,
      touch: () => options.host.touch(this.shard),
      maxPending: options.maxPendingReads ?? 10_000,
      overLimit: () => new LimitExceededError('Rate exceeded for control-plane reads.'),
      noLeader: () => this.notLeader(),
    });
  }

  get state(): MetadataState {
    return this.published;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  /**
   * The metadata version brokers see: it moves only with changes they are sent, so the frequent
   * checkpoints of consumer groups do not make every broker fetch the whole metadata again.
   */
  get brokerVersion(): number {
    return this.brokerApplied;
  }

  /** The Raft term this member knows: a new leadership has a new one. */
  get leadershipTerm(): number {
    return this.node.status().term;
  }

  get isLeader(): boolean {
    return this.node.status().role === Role.Leader;
  }

  leaderId(): NodeId | undefined {
    return this.node.lead === NONE ? undefined : this.node.lead;
  }

  onChange(listener: MetadataListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Proposes a command; resolves with its changes once committed and applied here. */
  propose(command: MetadataCommand): Promise<readonly MetadataChange[]> {
    if (this.closed) return Promise.reject(new InternalFailureError('the coordinator is closing'));
    if (!this.isLeader) return Promise.reject(this.notLeader());
    if (this.waiters.size >= (this.options.maxPendingProposals ?? 1_000)) {
      return Promise.reject(new LimitExceededError('Rate exceeded for control-plane operations.'));
    }
    const data = encodeStampedCommand(
      this.options.clock.nowMs(),
      Buffer.from(JSON.stringify(command), 'utf8'),
    );
    let where: { index: number; term: number };
    try {
      where = this.node.propose(data);
    } catch (error) {
      if (error instanceof ProposalDroppedError) return Promise.reject(this.notLeader());
      throw error;
    }
    // An index proposed again (a new term on the same leader) supersedes the old waiter.
    this.waiters.get(where.index)?.reject(this.lostProposal());
    const promise = new Promise<readonly MetadataChange[]>((resolve, reject) => {
      this.waiters.set(where.index, {
        term: where.term,
        deadlineMs: this.options.clock.monotonicMs() + (this.options.proposalTimeoutMs ?? 10_000),
        resolve,
        reject,
      });
    });
    this.options.host.touch(this.shard);
    return promise;
  }

  /**
   * A linearizable view of the metadata (ReadIndex, no clock leases): the state once this member
   * has applied everything committed when the read was asked, so it reflects every change
   * acknowledged before. A member that cannot reach the leader's majority never answers (the
   * read fails at its deadline).
   */
  async read(): Promise<MetadataState> {
    if (this.closed) throw new InternalFailureError('the coordinator is closing');
    await this.reads.ask(
      this.options.clock.monotonicMs() + (this.options.proposalTimeoutMs ?? 10_000),
    );
    return this.published;
  }

  notLeader(): NotLeaderError {
    const lead = this.leaderId();
    const endpoint = lead === undefined ? undefined : this.options.host.addressOf(lead);
    return new NotLeaderError(
      lead === undefined || endpoint === undefined
        ? 'No coordinator leader is known yet; retry shortly.'
        : `This coordinator does not lead; coordinator ${lead} at ${endpoint} does.`,
      lead === undefined || endpoint === undefined ? {} : { leader: { brokerId: lead, endpoint } },
    );
  }

  // ---------------------------------------------------------------------------------------------
  // HostedGroup, in cycle order.

  appended(): void {}

  applyOps(entries: readonly Entry[]): KvOp[] {
    const records: Array<readonly [string, unknown]> = [];
    for (const entry of entries) {
      if (entry.type !== EntryType.Normal) continue;
      try {
        const command = JSON.parse(stampedPayload(entry).toString('utf8')) as MetadataCommand;
        const changes = applyCommand(this.pending, command, this.options.context) as
          MetadataChange[] | undefined;
        if (!Array.isArray(changes)) {
          throw new InvalidArgumentError(`unknown metadata command ${JSON.stringify(command)}`);
        }
        const next = withChanges(this.pending, changes);
        this.pending = next;
        for (const change of changes) records.push(toRecord(change));
        this.outcomes.set(entry.index, { ok: true, changes });
      } catch (error) {
        // Every member applies the same entry to the same state, so a refusal (or a command this
        // version cannot read) is refused alike everywhere: it changes nothing and the log moves
        // on, rather than stopping every group on the host.
        const refusal =
          error instanceof RheosError
            ? error
            : new InternalFailureError(
                `the metadata command could not be applied: ${String(error)}`,
                {
                  indeterminate: false,
                  cause: error,
                },
              );
        this.outcomes.set(entry.index, { ok: false, error: refusal });
      }
    }
    return [...metadataOps(records), ...this.store.applyOps(entries)];
  }

  /**
   * A member too far behind the leader's compacted log gets a snapshot: the whole metadata at its
   * index. Its records replace ours in the same synced batch that moves the log to it.
   */
  snapshotOps(snapshot: Snapshot): KvOp[] {
    const { payload } = decodeShardSnapshotData(snapshot.data);
    if (payload === undefined) throw new Error('a metadata snapshot without its metadata');
    const records = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
    const next = stateFromRecords(new Map(Object.entries(records)));
    const gone = Object.keys(recordsOf(this.pending)).filter((name) => !(name in records));
    this.pending = next;
    return metadataOps([
      ...gone.map((name): readonly [string, unknown] => [name, undefined]),
      ...Object.entries(records),
    ]);
  }

  persisted(): void {}

  appliedEntries(entries: readonly Entry[], snapshot: Snapshot | undefined): void {
    if (snapshot !== undefined) {
      // Everything the snapshot covers is applied (its records were written with it).
      const before = this.published;
      this.published = this.pending;
      this.applied = Math.max(this.applied, snapshot.index);
      this.brokerApplied = Math.max(this.brokerApplied, snapshot.index);
      for (const index of [...this.outcomes.keys()]) {
        if (index <= snapshot.index) this.outcomes.delete(index);
      }
      const changes = diffStates(before, this.published);
      if (changes.length > 0)
        for (const listener of this.listeners) listener(changes, this.published);
    }
    if (entries.length === 0) {
      this.reads.serve(this.applied);
      return;
    }
    const before = this.published;
    this.published = this.pending;
    const all: MetadataChange[] = [];
    for (const entry of entries) {
      this.applied = entry.index;
      const outcome = this.outcomes.get(entry.index);
      this.outcomes.delete(entry.index);
      if (outcome?.ok === true) {
        all.push(...outcome.changes);
        if (outcome.changes.some(concernsBrokers)) this.brokerApplied = entry.index;
      }
      const waiter = this.waiters.get(entry.index);
      if (waiter === undefined) continue;
      this.waiters.delete(entry.index);
      if (waiter.term !== entry.term || outcome === undefined) {
        // Another leader's entry took the index: ours was lost.
        waiter.reject(this.lostProposal());
      } else if (outcome.ok) {
        waiter.resolve(outcome.changes);
      } else {
        waiter.reject(outcome.error);
      }
    }
    if (all.length > 0 && before !== this.published) {
      for (const listener of this.listeners) listener(all, this.published);
    }
    this.reads.serve(this.applied);
    this.compactIfDue();
  }

  /**
   * Every member compacts its own log once enough entries were applied past its last snapshot:
   * the snapshot is the metadata at the applied index (stored with the trim point, so it can be
   * sent to a member that is behind, also after a restart).
   */
  private compactIfDue(): void {
    const every = this.options.snapshotEveryEntries ?? DEFAULT_SNAPSHOT_EVERY_ENTRIES;
    if (this.compacting || this.closed || this.applied - this.store.trimPoint.index < every) return;
    const index = this.applied;
    const snapshot: Snapshot = {
      index,
      term: this.store.termAt(index),
      confState: this.node.confStateAt(index),
      data: encodeShardSnapshotData({
        arrivalMs: 0,
        payload: Buffer.from(JSON.stringify(recordsOf(this.published)), 'utf8'),
      }),
    };
    this.compacting = true;
    this.options.host
      .compact(this.shard, snapshot)
      .catch(() => undefined)
      .finally(() => (this.compacting = false));
  }

  readStates(states: readonly ReadState[]): void {
    this.reads.confirmed(states, this.applied);
  }

  roleChanged(role: Role): void {
    if (role === Role.Leader) return;
    for (const [index, waiter] of this.waiters) {
      this.waiters.delete(index);
      waiter.reject(
        new InternalFailureError(
          'Coordinator leadership moved while the change was in flight; it may or may not be applied.',
        ),
      );
    }
  }

  expire(nowMs: number): void {
    // Nothing was changed: a read that times out is safe to retry anywhere.
    this.reads.expire(
      nowMs,
      () =>
        new InternalFailureError('The read could not be confirmed by a majority in time.', {
          indeterminate: false,
        }),
    );
    for (const [index, waiter] of this.waiters) {
      if (waiter.deadlineMs > nowMs) continue;
      this.waiters.delete(index);
      waiter.reject(
        new InternalFailureError(
          'The change was not committed in time; it may or may not be applied.',
        ),
      );
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.roleChanged(Role.Follower);
    this.reads.failAll(() => new InternalFailureError('closing', { indeterminate: false }));
    await Promise.resolve();
  }

  private lostProposal(): Error {
    return new InternalFailureError(
      'The change was overwritten by a new coordinator leader and was not applied; retry it.',
      { indeterminate: false },
    );
  }
}

/** Opens this coordinator's member of the metadata group on `host`, from what `kv` holds. */
/** The tuning a caller may set; everything else a member is built from comes from `host`. */
export type MetadataReplicaTuning = Pick<
  MetadataReplicaOptions,
  'proposalTimeoutMs' | 'snapshotEveryEntries' | 'maxPendingProposals' | 'maxPendingReads'
>;

export async function openMetadataReplica(
  options: {
    readonly host: RaftHost;
    readonly kv: KvStore;
    readonly voters: readonly NodeId[];
    readonly clock: Clock;
    readonly context: MachineContext;
  } & MetadataReplicaTuning,
): Promise<MetadataReplica> {
  const { host, kv, voters, clock, context, ...tuning } = options;
  const state = stateFromRecords(await loadMetadataRecords(kv));
  const member = await host.openGroup(
    METADATA_GROUP,
    voters,
    ({ node, store, recovered }) =>
      new MetadataReplica({
        ...tuning,
        node,
        store,
        host,
        clock,
        context,
        state,
        appliedIndex: recovered.appliedIndex,
      }),
  );
  if (!(member instanceof MetadataReplica)) throw new Error('group 0 is not the metadata group');
  return member;
}
