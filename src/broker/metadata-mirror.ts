import type { SigningKey, SigningKeyring } from '../common/iterator-token.js';
import { MetadataKeyring } from '../coordinator/iterator-keys.js';
import type { MetadataChange } from '../coordinator/metadata-machine.js';
import { diffStates } from '../coordinator/metadata-records.js';
import { INITIAL_COUNTERS, type MetadataState } from '../coordinator/model.js';
import type { MetadataSource } from './broker.js';

/**
 * A broker's copy of the coordinator's metadata. The coordinator sends whole versions (the
 * metadata group's applied index); an older or equal version is ignored, so the copy only moves
 * forward whichever coordinator answered. Each newer version is compared with the last, and the
 * streams and brokers that differ are announced as changes, as the coordinator's own replica
 * would announce them. `refresh` fetches the newest version on demand (a client asked for a stream
 * this copy does not know yet).
 */
export class MetadataMirror implements MetadataSource, SigningKeyring {
  private snapshot: MetadataState = {
    streams: new Map(),
    brokers: new Map(),
    counters: INITIAL_COUNTERS,
    iteratorKeys: [],
    groups: new Map(),
  };
  private currentVersion = 0;
  private readonly listeners = new Set<
    (changes: readonly MetadataChange[], state: MetadataState) => void
  >();
  private readonly keyring = new MetadataKeyring(() => this.snapshot);

  constructor(private readonly fetchNewest: () => Promise<void> = () => Promise.resolve()) {}

  get state(): MetadataState {
    return this.snapshot;
  }

  get version(): number {
    return this.currentVersion;
  }

  onChange(
    listener: (changes: readonly MetadataChange[], state: MetadataState) => void,
  ): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  refresh(): Promise<void> {
    return this.fetchNewest();
  }

  /** Takes a version from the coordinator; returns whether it was newer. */
  update(version: number, next: MetadataState): boolean {
    if (version <= this.currentVersion) return false;
    const before = this.snapshot;
    const changes = diffStates(before, next);
    this.snapshot = next;
    this.currentVersion = version;
    if (changes.length > 0) for (const listener of this.listeners) listener(changes, next);
    return true;
  }

  // SigningKeyring: the newest key signs; every kept key verifies.
  current(): SigningKey {
    return this.keyring.current();
  }

  find(id: number): SigningKey | undefined {
    return this.keyring.find(id);
  }

  oldestId(): number {
    return this.keyring.oldestId();
  }
}
