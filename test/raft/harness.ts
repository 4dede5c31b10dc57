import { RawNode, type Ready } from '../../src/raft/raw-node.js';
import type { RaftConfig } from '../../src/raft/config.js';
import {
  EMPTY_HARD_STATE,
  type Entry,
  type HardState,
  type InitialState,
  type Message,
  type NodeId,
} from '../../src/raft/types.js';

/**
 * A synchronous test harness in the manner of etcd's rafttest: replicas over an in-memory network
 * that delivers what the test lets through, with storage that persists each Ready at once.
 */

export class MemoryStorage {
  entries: Entry[] = [];
  hardState: HardState = EMPTY_HARD_STATE;

  /** Applies a Ready's writes: entries replace the log from their first index on. */
  write(ready: Ready): void {
    if (ready.entries.length > 0) {
      const first = (ready.entries[0] as Entry).index;
      this.entries = this.entries.filter((e) => e.index < first).concat(ready.entries);
    }
    if (ready.hardState !== undefined) this.hardState = ready.hardState;
  }

  initialState(tailEntries = Number.POSITIVE_INFINITY): InitialState {
    const termStarts: { index: number; term: number }[] = [];
    for (const e of this.entries) {
      const last = termStarts[termStarts.length - 1];
      if (last === undefined || last.term !== e.term)
        termStarts.push({ index: e.index, term: e.term });
    }
    const lastIndex = this.entries[this.entries.length - 1]?.index ?? 0;
    const tail = this.entries.slice(Math.max(0, this.entries.length - tailEntries));
    return {
      hardState: this.hardState,
      firstIndexMinusOne: 0,
      termAtFirstIndexMinusOne: 0,
      lastIndex,
      termStarts,
      tail,
      intact: true,
    };
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

export interface Replica {
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
}

export class Cluster {
  readonly replicas = new Map<NodeId, Replica>();
  /** Messages sent and not yet delivered. */
  inFlight: Message[] = [];
  /** Links that drop everything: `${from}->${to}`. */
  private readonly cut = new Set<string>();

  constructor(
    readonly ids: readonly NodeId[],
    private readonly configFor: (id: NodeId) => Partial<RaftConfig> = () => ({}),
  ) {
    for (const id of ids) this.start(id, new MemoryStorage());
  }

  start(id: NodeId, storage: MemoryStorage, applied = 0): Replica {
    const node = new RawNode(
      { id, voters: this.ids, random: seededRandom(id * 7919), applied, ...this.configFor(id) },
      storage.initialState(),
    );
    const replica: Replica = { node, storage, applied: [] };
    this.replicas.set(id, replica);
    return replica;
  }

  /** Restarts a replica from what it persisted. */
  restart(id: NodeId): Replica {
    const old = this.get(id);
    return this.start(id, old.storage);
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

  heal(): void {
    this.cut.clear();
  }

  /** Processes one Ready of a replica, as a host would. */
  processReady(id: NodeId): Ready | undefined {
    const r = this.get(id);
    if (!r.node.hasReady()) return undefined;
    const ready = r.node.ready();
    this.deliverLater(ready.messagesNow);
    r.storage.write(ready);
    this.deliverLater(ready.messagesAfterPersist);
    r.applied.push(...ready.committedEntries);
    for (const load of ready.loads) {
      const entries = r.storage.entries.filter((e) => e.index >= load.from && e.index <= load.to);
      r.node.loaded({ from: load.from, entries });
    }
    r.node.advance(ready);
    return ready;
  }

  private deliverLater(messages: readonly Message[]): void {
    for (const m of messages) {
      if (!this.cut.has(`${m.from}->${m.to}`)) this.inFlight.push(m);
    }
  }

  /** Runs readies and delivers messages until nothing is left to do. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let progressed = false;
      for (const id of this.ids) {
        if (this.processReady(id) !== undefined) progressed = true;
      }
      const batch = this.inFlight;
      this.inFlight = [];
      for (const m of batch) {
        const target = this.replicas.get(m.to);
        if (target !== undefined && !this.cut.has(`${m.from}->${m.to}`)) target.node.step(m);
        progressed = true;
      }
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

  /** Elects `id` (campaign, then stabilize). */
  elect(id: NodeId): void {
    this.get(id).node.campaign();
    this.stabilize();
  }

  leader(): NodeId | undefined {
    for (const [id, r] of this.replicas) if (r.node.status().role === 'leader') return id;
    return undefined;
  }

  propose(id: NodeId, text: string): { index: number; term: number } {
    return this.get(id).node.propose(new TextEncoder().encode(text));
  }

  appliedTexts(id: NodeId): string[] {
    return this.get(id)
      .applied.filter((e) => e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}
