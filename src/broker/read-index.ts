import { randomUUID } from 'node:crypto';
import { ProposalDroppedError } from '../raft/errors.js';
import type { RawNode } from '../raft/raw-node.js';
import { NONE, type NodeId, type ReadState } from '../raft/types.js';

/**
 * Reads confirmed by the group's leader (Raft's ReadIndex, thesis §6.4; no clock leases): a read
 * asked at time t is served once this member has applied everything the leader had committed at
 * t, so it sees every write acknowledged before t, on a follower as on the leader. A member that
 * cannot reach the leader's majority never confirms a read (it fails at its deadline).
 *
 * Used by the metadata replica (linearizable control-plane reads) and by shard replicas (a
 * follower's GetRecords at its own tip, which may lag the leader's commit by a message).
 */

export interface ReadIndexOptions {
  readonly node: RawNode;
  /** Asks the host for a processing cycle: the request has to be sent. */
  readonly touch: () => void;
  /** Reads waiting at once beyond which more are refused. */
  readonly maxPending: number;
  /** The error for a read refused because too many wait. */
  readonly overLimit: () => Error;
  /** The error for a read asked while no leader is known. */
  readonly noLeader: () => Error;
}

interface PendingRead {
  readonly deadlineMs: number;
  /** Set once the leader confirmed it: the read is served when this index is applied. */
  index?: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export class ReadIndexReads {
  private readonly pending = new Map<string, PendingRead>();
  private nextReadId = 0;
  /** Unique across restarts too: a leader may still hold a read a previous incarnation asked. */
  private readonly nonce = randomUUID();
  /** The leader that pending reads were last sent to. */
  private askedLeader: NodeId = NONE;

  constructor(private readonly options: ReadIndexOptions) {}

  get size(): number {
    return this.pending.size;
  }

  /** Resolves once this member has applied what the leader had committed when it was asked. */
  ask(deadlineMs: number): Promise<void> {
    if (this.pending.size >= this.options.maxPending)
      return Promise.reject(this.options.overLimit());
    const context = `read-${this.nonce}-${this.nextReadId++}`;
    // Older reads go to the current leader first, so this one does not hide a change of leader.
    this.reissueOnNewLeader();
    try {
      this.options.node.readIndex(context);
    } catch (error) {
      if (error instanceof ProposalDroppedError) return Promise.reject(this.options.noLeader());
      throw error;
    }
    const promise = new Promise<void>((resolve, reject) => {
      this.pending.set(context, { deadlineMs, resolve, reject });
    });
    this.options.touch();
    return promise;
  }

  /** The leader's answers (a Ready's read states, after its entries were applied). */
  confirmed(states: readonly ReadState[], appliedIndex: number): void {
    for (const { context, index } of states) {
      const read = this.pending.get(context);
      if (read !== undefined) read.index = index;
    }
    this.serve(appliedIndex);
  }

  /** Serves the confirmed reads whose index is applied. */
  serve(appliedIndex: number): void {
    for (const [context, read] of this.pending) {
      if (read.index === undefined || read.index > appliedIndex) continue;
      this.pending.delete(context);
      read.resolve();
    }
  }

  /** Fails reads past their deadline (after asking a new leader about the others). */
  expire(nowMs: number, error: () => Error): void {
    this.reissueOnNewLeader();
    for (const [context, read] of this.pending) {
      if (read.deadlineMs > nowMs) continue;
      this.pending.delete(context);
      read.reject(error());
    }
  }

  failAll(error: () => Error): void {
    for (const read of this.pending.values()) read.reject(error());
    this.pending.clear();
  }

  /**
   * A follower's read goes to the leader it knows; when that leader dies the request is lost, so
   * reads not yet confirmed are asked again of each new leader (an answer from either confirms
   * the read, as both come after it was asked).
   */
  private reissueOnNewLeader(): void {
    const lead = this.options.node.lead;
    if (lead === this.askedLeader) return;
    this.askedLeader = lead;
    if (lead === NONE) return;
    let asked = false;
    for (const [context, read] of this.pending) {
      if (read.index !== undefined) continue;
      try {
        this.options.node.readIndex(context);
        asked = true;
      } catch (error) {
        if (!(error instanceof ProposalDroppedError)) throw error;
      }
    }
    if (asked) this.options.touch();
  }
}
