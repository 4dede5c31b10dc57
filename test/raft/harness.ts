import { RawNode, type Ready } from '../../src/raft/raw-node.js';
import type { RaftConfig } from '../../src/raft/config.js';
import {
  EMPTY_HARD_STATE,
  EntryType,
  MessageType,
  entryBytes,
  type Entry,
  type HardState,
  type InitialState,
  type Snapshot,
  type LoadRequest,
  type Message,
  type NodeId,
} from '../../src/raft/types.js';

/**
 * A synchronous test harness in the manner of etcd's rafttest: replicas over an in-memory network
 * that delivers what the test lets through, with storage that persists each Ready at once (or, for
 * replicas on a "slow disk", only when the test calls sync()).
 */

export class MemoryStorage {
  entries: Entry[] = [];
  hardState: HardState = EMPTY_HARD_STATE;
  /** The latest snapshot: entries up to its index are gone. */
  snapshot: Snapshot | undefined;

  /** Applies a Ready's writes: a snapshot replaces the log; entries replace it from their first index on. */
  write(ready: Pick<Ready, 'entries' | 'hardState' | 'snapshot'>): void {
    if (ready.snapshot !== undefined) {
      this.snapshot = ready.snapshot;
      this.entries = [];
    }
    if (ready.entries.length > 0) {
      const first = (ready.entries[0] as Entry).index;
      this.entries = this.entries.filter((e) => e.index < first).concat(ready.entries);
    }
    if (ready.hardState !== undefined) this.hardState = ready.hardState;
  }

  /** Log compaction: the state machine saved as `snapshot`; entries up to it are deleted. */
  compact(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.entries = this.entries.filter((e) => e.index > snapshot.index);
  }

  initialState(tailEntries = Number.POSITIVE_INFINITY): InitialState {
    const termStarts: { index: number; term: number }[] = [];
    for (const e of this.entries) {
      const last = termStarts[termStarts.length - 1];
      if (last === undefined || last.term !== e.term)
        termStarts.push({ index: e.index, term: e.term });
    }
    const base = this.snapshot?.index ?? 0;
    const lastIndex = this.entries[this.entries.length - 1]?.index ?? base;
    const tail = this.entries.slice(Math.max(0, this.entries.length - tailEntries));
    return {
      hardState: this.hardState,
      firstIndexMinusOne: base,
      termAtFirstIndexMinusOne: this.snapshot?.term ?? 0,
      ...(this.snapshot === undefined
        ? {}
        : { snapshot: this.snapshot, confState: this.snapshot.confState }),
      lastIndex,
      termStarts,
      tail,
      intact: true,
      confEntries: this.entries.filter((e) => e.type === EntryType.ConfChange),
    };
  }

  /** Serves a LoadRequest as a host would: contiguous from `from`, at most maxBytes (at least one). */
  read(load: LoadRequest): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (const e of this.entries) {
      if (e.index < load.from || e.index > load.to) continue;
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > load.maxBytes) break;
      out.push(e);
    }
    return out;
  }
}

/** Deterministic PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A normal entry; its data defaults to "index@term" so that logs compare by content too. */
export function entry(index: number, term: number, data = `${index}@${term}`): Entry {
  return { index, term, type: EntryType.Normal, data: encoder.encode(data) };
}

/** Entries 1..n with the given terms (etcd's tests write logs as lists of terms). */
export function logOfTerms(terms: readonly number[]): Entry[] {
  return terms.map((term, i) => entry(i + 1, term));
}

/** A storage holding `entries` and `hardState` (term defaults to the last entry's term). */
export function storageWith(
  entries: readonly Entry[],
  hardState: Partial<HardState> = {},
): MemoryStorage {
  const s = new MemoryStorage();
  s.entries = [...entries];
  s.hardState = {
    term: entries[entries.length - 1]?.term ?? 0,
    vote: 0,
    commit: 0,
    ...hardState,
  };
  return s;
}

/** A message with the fields a test does not care about zeroed. */
export function msg(
  fields: Partial<Message> & Pick<Message, 'type' | 'from' | 'to' | 'term'>,
): Message {
  return {
    index: 0,
    logTerm: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    force: false,
    context: '',
    ...fields,
  };
}

export function text(e: Entry): string {
  return decoder.decode(e.data);
}

/** (index, term) pairs, for comparing logs. */
export function ids(entries: readonly Entry[]): string[] {
  return entries.map((e) => `${e.index}@${e.term}`);
}

/** Whether a Ready carries anything at all. */
export function isEmptyReady(ready: Ready): boolean {
  return (
    ready.softState === undefined &&
    ready.hardState === undefined &&
    ready.entries.length === 0 &&
    ready.messagesNow.length === 0 &&
    ready.messagesAfterPersist.length === 0 &&
    ready.committedEntries.length === 0 &&
    ready.loads.length === 0
  );
}

export interface Replica {
  node: RawNode;
  storage: MemoryStorage;
  /** Entries applied since the replica started or installed a snapshot. */
  applied: Entry[];
  /** The texts a snapshot brought (the state machine of these tests is the list of texts). */
  snapshotTexts: string[];
}

export interface StartOptions {
  /** Entries the replica keeps in memory at start (InitialState.tail); the rest must be loaded. */
  tailEntries?: number;
}

export class Cluster {
  readonly replicas = new Map<NodeId, Replica>();
  /** Messages sent and not yet delivered. */
  inFlight: Message[] = [];
  /** Every message handed to the network (cut links included), in order, when `recording`. */
  readonly sent: Message[] = [];
  recording = false;
  /** Messages this returns true for are dropped on delivery (in addition to cut links). */
  drop: ((m: Message) => boolean) | undefined;
  /** Called with each Ready as it is taken. */
  onReady: ((id: NodeId, ready: Ready) => void) | undefined;
  /** Called once a Ready's writes are in storage, before its messagesAfterPersist are sent. */
  onPersisted: ((id: NodeId, ready: Ready) => void) | undefined;
  /** Replicas whose writes complete only when the test calls sync(id). */
  readonly slowDisk = new Set<NodeId>();
  /** Replicas whose load requests wait in `pendingLoads` until the test answers them. */
  readonly deferLoads = new Set<NodeId>();
  pendingLoads: { id: NodeId; load: LoadRequest }[] = [];
  /** Readies taken by slow-disk replicas and not yet written. */
  private readonly unsynced = new Map<NodeId, Ready>();
  /** Links that drop everything: `${from}->${to}`. */
  private readonly cut = new Set<string>();

  constructor(
    readonly ids: readonly NodeId[],
    private readonly configFor: (id: NodeId) => Partial<RaftConfig> = () => ({}),
  ) {
    for (const id of ids) this.start(id, new MemoryStorage());
  }

  start(id: NodeId, storage: MemoryStorage, applied = 0, options: StartOptions = {}): Replica {
    const node = new RawNode(
      { id, voters: this.ids, random: seededRandom(id * 7919), applied, ...this.configFor(id) },
      storage.initialState(options.tailEntries),
    );
    const replica: Replica = {
      node,
      storage,
      applied: [],
      snapshotTexts:
        storage.snapshot === undefined
          ? []
          : (JSON.parse(decoder.decode(storage.snapshot.data)) as string[]),
    };
    this.replicas.set(id, replica);
    this.unsynced.delete(id);
    this.pendingLoads = this.pendingLoads.filter((p) => p.id !== id);
    return replica;
  }

  /** Restarts a replica from what it persisted (a crash: an unsynced Ready is lost). */
  restart(id: NodeId, options: StartOptions = {}): Replica {
    const old = this.get(id);
    return this.start(id, old.storage, 0, options);
  }

  get(id: NodeId): Replica {
    const r = this.replicas.get(id);
    if (r === undefined) throw new Error(`no replica ${id}`);
    return r;
  }

  isolate(id: NodeId): void {
    for (const other of this.ids) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}->${to}`);
  }

  /** Cuts every link between the two sides, both ways. */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cut.add(`${x}->${y}`);
        this.cut.add(`${y}->${x}`);
      }
    }
  }

  heal(): void {
    this.cut.clear();
  }

  private dropped(m: Message): boolean {
    return this.cut.has(`${m.from}->${m.to}`) || (this.drop !== undefined && this.drop(m));
  }

  /** Processes one Ready of a replica, as a host would. */
  processReady(id: NodeId): Ready | undefined {
    const r = this.get(id);
    if (!r.node.hasReady()) return undefined;
    const ready = r.node.ready();
    this.onReady?.(id, ready);
    this.deliverLater(ready.messagesNow);
    if (this.slowDisk.has(id)) {
      this.unsynced.set(id, ready);
      return ready;
    }
    this.complete(id, ready);
    return ready;
  }

  /** Completes the write of a slow-disk replica's outstanding Ready; false if there is none. */
  sync(id: NodeId): boolean {
    const ready = this.unsynced.get(id);
    if (ready === undefined) return false;
    this.unsynced.delete(id);
    this.complete(id, ready);
    return true;
  }

  hasUnsynced(id: NodeId): boolean {
    return this.unsynced.has(id);
  }

  private complete(id: NodeId, ready: Ready): void {
    const r = this.get(id);
    r.storage.write(ready);
    if (ready.snapshot !== undefined) {
      r.snapshotTexts = JSON.parse(decoder.decode(ready.snapshot.data)) as string[];
      r.applied = [];
    }
    this.onPersisted?.(id, ready);
    this.deliverLater(ready.messagesAfterPersist);
    r.applied.push(...ready.committedEntries);
    for (const load of ready.loads) {
      if (this.deferLoads.has(id)) this.pendingLoads.push({ id, load });
      else r.node.loaded({ from: load.from, entries: r.storage.read(load) });
    }
    r.node.advance(ready);
  }

  /** Answers the deferred load at `position` in pendingLoads (default: the oldest). */
  answerLoad(position = 0): LoadRequest {
    const p = this.pendingLoads[position];
    if (p === undefined) throw new Error(`no pending load at ${position}`);
    this.pendingLoads.splice(position, 1);
    const r = this.get(p.id);
    r.node.loaded({ from: p.load.from, entries: r.storage.read(p.load) });
    return p.load;
  }

  private deliverLater(messages: readonly Message[]): void {
    for (const m of messages) {
      if (this.recording) this.sent.push(m);
      if (!this.cut.has(`${m.from}->${m.to}`)) this.inFlight.push(m);
    }
  }

  /** Delivers the in-flight messages `pred` selects (all by default); returns how many. */
  deliver(pred: (m: Message) => boolean = () => true): number {
    const batch = this.inFlight.filter(pred);
    this.inFlight = this.inFlight.filter((m) => !pred(m));
    for (const m of batch) {
      const target = this.replicas.get(m.to);
      if (target !== undefined && !this.dropped(m)) target.node.step(m);
    }
    return batch.length;
  }

  /** Runs readies and delivers messages until nothing is left to do. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let progressed = false;
      for (const id of this.ids) {
        const ready = this.processReady(id);
        // An empty Ready does no work (a replica waiting for a load may keep offering one).
        if (ready !== undefined && !isEmptyReady(ready)) progressed = true;
      }
      if (this.deliver() > 0) progressed = true;
      if (!progressed) return;
    }
    throw new Error('cluster did not stabilize');
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.get(id).node.tick();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) for (const id of this.ids) this.get(id).node.tick();
  }

  /** Ticks every replica once and stabilizes, `times` times (time passing with a working network). */
  run(times: number): void {
    for (let i = 0; i < times; i++) {
      this.tickAll();
      this.stabilize();
    }
  }

  /** Elects `id` (campaign, then stabilize). */
  elect(id: NodeId): void {
    this.get(id).node.campaign();
    this.stabilize();
  }

  /** The replicas among `ids` that believe they lead (a partitioned old leader may still). */
  leadersAmong(ids: readonly NodeId[] = this.ids): NodeId[] {
    return ids.filter((id) => this.get(id).node.status().role === 'leader');
  }

  leader(): NodeId | undefined {
    for (const [id, r] of this.replicas) if (r.node.status().role === 'leader') return id;
    return undefined;
  }

  propose(id: NodeId, text: string): { index: number; term: number } {
    return this.get(id).node.propose(encoder.encode(text));
  }

  appliedTexts(id: NodeId): string[] {
    const r = this.get(id);
    return [
      ...r.snapshotTexts,
      ...r.applied
        .filter((e) => e.type === EntryType.Normal && e.data.length > 0)
        .map((e) => decoder.decode(e.data)),
    ];
  }

  /**
   * Saves replica `id`'s state machine at its applied index and compacts its log there (assumes
   * no membership change after that index, which these tests never make).
   */
  compact(id: NodeId): Snapshot {
    const r = this.get(id);
    const status = r.node.status();
    const index = status.applied;
    const term = r.node.internals.log.term(index) as number;
    const snapshot: Snapshot = {
      index,
      term,
      confState: r.node.internals.confState,
      data: encoder.encode(JSON.stringify(this.appliedTexts(id))),
    };
    r.node.compact(snapshot);
    r.storage.compact(snapshot);
    return snapshot;
  }

  /** The replica's persisted log. */
  log(id: NodeId): Entry[] {
    return this.get(id).storage.entries;
  }

  /** Messages recorded in `sent` that match. */
  sentWhere(pred: (m: Message) => boolean): Message[] {
    return this.sent.filter(pred);
  }
}

export const isApp = (m: Message): boolean => m.type === MessageType.App;

/** The configuration of the paper's algorithm alone (etcd's paper tests): no pre-vote, no check-quorum. */
export const PAPER: Partial<RaftConfig> = { preVote: false, checkQuorum: false };

export interface SoloOptions {
  storage?: MemoryStorage;
  config?: Partial<RaftConfig>;
  tailEntries?: number;
  seed?: number;
}

/**
 * One replica driven by hand, in the manner of etcd's paper tests: the test steps messages in and
 * reads what comes out. Each Ready is written to memory storage, its loads answered, and advanced.
 */
export class Solo {
  readonly storage: MemoryStorage;
  readonly node: RawNode;
  /** Every Ready taken, in order. */
  readonly readies: Ready[] = [];
  /** Every committed entry handed out, in order. */
  readonly applied: Entry[] = [];

  constructor(
    readonly id: NodeId,
    readonly voters: readonly NodeId[],
    options: SoloOptions = {},
  ) {
    this.storage = options.storage ?? new MemoryStorage();
    this.node = new RawNode(
      { id, voters, random: seededRandom(options.seed ?? id * 7919), ...options.config },
      this.storage.initialState(options.tailEntries),
    );
  }

  /** Takes, persists and advances one Ready (undefined if there is none). */
  ready(): Ready | undefined {
    if (!this.node.hasReady()) return undefined;
    const ready = this.node.ready();
    this.readies.push(ready);
    this.storage.write(ready);
    this.applied.push(...ready.committedEntries);
    for (const load of ready.loads) {
      this.node.loaded({ from: load.from, entries: this.storage.read(load) });
    }
    this.node.advance(ready);
    return ready;
  }

  /** Takes Readies until there are none (or only empty ones); returns them. */
  drain(): Ready[] {
    const out: Ready[] = [];
    for (let i = 0; i < 1000; i++) {
      const ready = this.ready();
      if (ready === undefined || isEmptyReady(ready)) return out;
      out.push(ready);
    }
    throw new Error('the node kept producing Readies');
  }

  /** All messages of the Readies drained now, both kinds. */
  messages(): Message[] {
    return this.drain().flatMap((r) => [...r.messagesNow, ...r.messagesAfterPersist]);
  }

  step(m: Message): void {
    this.node.step(m);
  }

  status(): ReturnType<RawNode['status']> {
    return this.node.status();
  }

  /** Ticks until `pred` holds; returns the number of ticks (Infinity if `max` ticks were not enough). */
  tickUntil(pred: () => boolean, max = 1000): number {
    for (let i = 1; i <= max; i++) {
      this.node.tick();
      if (pred()) return i;
    }
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * Replica 1 as leader of `voters`: it campaigns, gets every vote, and the followers in `ackFrom`
 * (default: all) acknowledge its first append, so that they are in the replicate state.
 */
export function soloLeader(
  voters: readonly NodeId[],
  options: SoloOptions & { ackFrom?: readonly NodeId[] } = {},
): Solo {
  const s = new Solo(1, voters, options);
  s.node.campaign();
  s.drain();
  const term = s.status().term;
  for (const v of voters) {
    if (v !== 1) s.step(msg({ type: MessageType.VoteResp, from: v, to: 1, term }));
  }
  s.drain();
  if (s.status().role !== 'leader') throw new Error('soloLeader: replica 1 did not become leader');
  const last = s.status().lastIndex;
  for (const v of options.ackFrom ?? voters) {
    if (v !== 1) s.step(msg({ type: MessageType.AppResp, from: v, to: 1, term, index: last }));
  }
  s.drain();
  return s;
}
