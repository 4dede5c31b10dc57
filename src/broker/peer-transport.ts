import type { Message, NodeId } from '../raft/types.js';

/**
 * How a broker's Raft groups reach the same groups on other brokers. Raft tolerates lost,
 * duplicated and reordered messages, so a transport may drop rather than queue without bound:
 * sending never waits, and a peer that cannot keep up loses messages (Raft resends).
 */

export interface GroupMessage {
  /** The Raft group: the shard incarnation. */
  readonly group: number;
  readonly message: Message;
}

/** 'catchUp' carries appends read from disk and snapshots, rate-limited, apart from the rest. */
export type PeerLane = 'raft' | 'catchUp';

export interface PeerTransport {
  /** Queues messages for one peer. An empty list is a node heartbeat (quiet groups rely on it). */
  send(to: NodeId, messages: readonly GroupMessage[], lane: PeerLane): void;
  /** Everything received from peers goes to this handler. */
  onReceive(handler: (from: NodeId, messages: readonly GroupMessage[]) => void): void;
  close(): Promise<void>;
}
