import {
  EntryType,
  MessageType,
  type ConfState,
  type Entry,
  type Message,
  type Snapshot,
} from '../raft/types.js';
import {
  RaftEntryType,
  RaftMessageType,
  type RaftConfState,
  type RaftEntry,
  type RaftMessage,
  type RaftSnapshot,
} from '../gen/rheos/v1/peer.js';

/**
 * Raft messages on the peer wire and back. Whatever arrives from the network is checked before it
 * reaches the library (whose invariants would otherwise throw): unknown types, impossible numbers
 * and malformed entries make the message invalid, and it is dropped.
 */

const TO_WIRE: Record<MessageType, RaftMessageType> = {
  [MessageType.App]: RaftMessageType.RAFT_MESSAGE_TYPE_APP,
  [MessageType.AppResp]: RaftMessageType.RAFT_MESSAGE_TYPE_APP_RESP,
  [MessageType.Vote]: RaftMessageType.RAFT_MESSAGE_TYPE_VOTE,
  [MessageType.VoteResp]: RaftMessageType.RAFT_MESSAGE_TYPE_VOTE_RESP,
  [MessageType.PreVote]: RaftMessageType.RAFT_MESSAGE_TYPE_PRE_VOTE,
  [MessageType.PreVoteResp]: RaftMessageType.RAFT_MESSAGE_TYPE_PRE_VOTE_RESP,
  [MessageType.Heartbeat]: RaftMessageType.RAFT_MESSAGE_TYPE_HEARTBEAT,
  [MessageType.HeartbeatResp]: RaftMessageType.RAFT_MESSAGE_TYPE_HEARTBEAT_RESP,
  [MessageType.TimeoutNow]: RaftMessageType.RAFT_MESSAGE_TYPE_TIMEOUT_NOW,
  [MessageType.ReadIndex]: RaftMessageType.RAFT_MESSAGE_TYPE_READ_INDEX,
  [MessageType.ReadIndexResp]: RaftMessageType.RAFT_MESSAGE_TYPE_READ_INDEX_RESP,
  [MessageType.Snap]: RaftMessageType.RAFT_MESSAGE_TYPE_SNAP,
};

const FROM_WIRE = new Map<RaftMessageType, MessageType>(
  Object.entries(TO_WIRE).map(([k, v]) => [v, k as MessageType]),
);

const ENTRY_TO_WIRE: Record<EntryType, RaftEntryType> = {
  [EntryType.Normal]: RaftEntryType.RAFT_ENTRY_TYPE_NORMAL,
  [EntryType.Empty]: RaftEntryType.RAFT_ENTRY_TYPE_EMPTY,
  [EntryType.ConfChange]: RaftEntryType.RAFT_ENTRY_TYPE_CONF_CHANGE,
};

const ENTRY_FROM_WIRE = new Map<RaftEntryType, EntryType>([
  [RaftEntryType.RAFT_ENTRY_TYPE_NORMAL, EntryType.Normal],
  [RaftEntryType.RAFT_ENTRY_TYPE_EMPTY, EntryType.Empty],
  [RaftEntryType.RAFT_ENTRY_TYPE_CONF_CHANGE, EntryType.ConfChange],
]);

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function toWireMessage(m: Message): RaftMessage {
  return {
    type: TO_WIRE[m.type],
    from: m.from,
    to: m.to,
    term: m.term,
    index: m.index,
    logTerm: m.logTerm,
    entries: m.entries.map((e): RaftEntry => ({
      index: e.index,
      term: e.term,
      type: ENTRY_TO_WIRE[e.type],
      data: asBuffer(e.data),
    })),
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    force: m.force,
    context: m.context,
    ...(m.snapshot === undefined ? {} : { snapshot: toWireSnapshot(m.snapshot) }),
    quiesce: m.quiesce === true,
    catchUp: m.catchUp === true,
  };
}

function toWireSnapshot(s: Snapshot): RaftSnapshot {
  return {
    index: s.index,
    term: s.term,
    confState: {
      voters: [...s.confState.voters],
      learners: [...s.confState.learners],
      removed: [...s.confState.removed],
    },
    data: asBuffer(s.data),
  };
}

const isCount = (n: number) => Number.isSafeInteger(n) && n >= 0;
const isId = (n: number) => Number.isSafeInteger(n) && n > 0;

/** The library's message, or undefined if what arrived is not a valid Raft message. */
export function fromWireMessage(w: RaftMessage): Message | undefined {
  const type = FROM_WIRE.get(w.type);
  if (type === undefined) return undefined;
  if (!isId(w.from) || !isId(w.to) || !isCount(w.term) || !isCount(w.index)) return undefined;
  if (!isCount(w.logTerm) || !isCount(w.commit) || !isCount(w.rejectHint)) return undefined;
  if (w.context.length > 1024) return undefined;
  const entries: Entry[] = [];
  let expected = w.index + 1;
  for (const e of w.entries) {
    const entryType = ENTRY_FROM_WIRE.get(e.type);
    // Appended entries are contiguous after `index`, in terms that never go down.
    if (entryType === undefined || e.index !== expected || !isId(e.term) || e.term > w.term) {
      return undefined;
    }
    const previous = entries[entries.length - 1];
    if (previous !== undefined && e.term < previous.term) return undefined;
    entries.push({ index: e.index, term: e.term, type: entryType, data: e.data });
    expected++;
  }
  if (entries.length > 0 && type !== MessageType.App) return undefined;
  let snapshot: Snapshot | undefined;
  if (w.snapshot !== undefined) {
    if (type !== MessageType.Snap) return undefined;
    snapshot = fromWireSnapshot(w.snapshot);
    if (snapshot === undefined) return undefined;
  } else if (type === MessageType.Snap) {
    return undefined;
  }
  return {
    type,
    from: w.from,
    to: w.to,
    term: w.term,
    index: w.index,
    logTerm: w.logTerm,
    entries,
    commit: w.commit,
    reject: w.reject,
    rejectHint: w.rejectHint,
    force: w.force,
    context: w.context,
    ...(snapshot === undefined ? {} : { snapshot }),
    ...(w.quiesce ? { quiesce: true } : {}),
    ...(w.catchUp ? { catchUp: true } : {}),
  };
}

function fromWireSnapshot(s: RaftSnapshot): Snapshot | undefined {
  if (!isId(s.index) || !isId(s.term) || s.confState === undefined) return undefined;
  const conf = fromWireConf(s.confState);
  if (conf === undefined) return undefined;
  return { index: s.index, term: s.term, confState: conf, data: s.data };
}

function fromWireConf(c: RaftConfState): ConfState | undefined {
  const ids = [...c.voters, ...c.learners, ...c.removed];
  if (!ids.every(isId) || c.voters.length === 0) return undefined;
  return { voters: c.voters, learners: c.learners, removed: c.removed };
}

/** Bytes a message adds to a batch (entries and snapshot dominate), for splitting batches. */
export function wireSizeEstimate(m: Message): number {
  let bytes = 64 + m.context.length;
  for (const e of m.entries) bytes += 24 + e.data.length;
  if (m.snapshot !== undefined) bytes += 64 + m.snapshot.data.length;
  return bytes;
}
