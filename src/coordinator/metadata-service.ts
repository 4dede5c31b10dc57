import { randomBytes } from 'node:crypto';
import type { Clock } from '../common/clock.js';
import { LimitExceededError } from '../common/errors.js';
import type { SigningKey, SigningKeyring } from '../common/iterator-token.js';
import { ITERATOR_LIFETIME_MS } from '../common/limits.js';
import type { MetadataStore } from '../storage/metadata-store.js';
import {
  applyCommand,
  withChanges,
  type MachineContext,
  type MetadataChange,
  type MetadataCommand,
} from './metadata-machine.js';
import { stateFromRecords, toRecord } from './metadata-records.js';
import type { IteratorKeyRecord, MetadataState } from './model.js';

/**
 * Runs the metadata state machine on one node: commands are applied one at a time, their changes
 * made durable, and only then published (so nobody reads metadata that a crash could take back).
 * The Raft-replicated coordinator will replace the "made durable" step with "committed".
 */

export interface MetadataServiceOptions {
  readonly context: MachineContext;
  readonly clock: Clock;
  /** How often the iterator-signing key is replaced. */
  readonly keyRotationMs?: number;
  /** Source of key material; injectable so tests are reproducible. */
  readonly randomBytes?: (size: number) => Buffer;
  /** Commands queued beyond this are refused with LimitExceededException. */
  readonly maxQueuedCommands?: number;
}

export type ChangeListener = (changes: readonly MetadataChange[], state: MetadataState) => void;

const DEFAULT_KEY_ROTATION_MS = 60 * 60 * 1000;

export class MetadataService implements SigningKeyring {
  private snapshot: MetadataState;
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private readonly listeners = new Set<ChangeListener>();
  private rotationTimer: NodeJS.Timeout | undefined;
  private keyCache = new Map<number, SigningKey>();

  private constructor(
    private readonly store: MetadataStore,
    initial: MetadataState,
    private readonly options: MetadataServiceOptions,
  ) {
    this.snapshot = initial;
  }

  static async open(
    store: MetadataStore,
    options: MetadataServiceOptions,
  ): Promise<MetadataService> {
    const records = await store.loadAll();
    const service = new MetadataService(store, stateFromRecords(records), options);
    await service.rotateKeyIfDue();
    return service;
  }

  get state(): MetadataState {
    return this.snapshot;
  }

  get context(): MachineContext {
    return this.options.context;
  }

  /** Applies a command after every earlier one; resolves once its changes are durable. */
  propose(command: MetadataCommand): Promise<readonly MetadataChange[]> {
    const limit = this.options.maxQueuedCommands ?? 1000;
    if (this.queued >= limit) {
      return Promise.reject(new LimitExceededError('Rate exceeded for control-plane operations.'));
    }
    this.queued++;
    const run = this.queue.then(() => this.run(command));
    this.queue = run.catch(() => undefined).finally(() => this.queued--);
    return run;
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts periodic key rotation. */
  start(): void {
    const periodMs = Math.min(this.rotationMs() / 4, 60_000);
    this.rotationTimer = setInterval(() => {
      this.rotateKeyIfDue().catch(() => undefined);
    }, periodMs);
    this.rotationTimer.unref();
  }

  async close(): Promise<void> {
    if (this.rotationTimer !== undefined) clearInterval(this.rotationTimer);
    await this.queue;
  }

  // SigningKeyring: the newest key signs; every kept key verifies.
  current(): SigningKey {
    const keys = this.snapshot.iteratorKeys;
    const newest = keys[keys.length - 1];
    if (newest === undefined) throw new Error('no iterator signing key yet');
    return this.signingKey(newest);
  }

  find(id: number): SigningKey | undefined {
    const record = this.snapshot.iteratorKeys.find((k) => k.id === id);
    return record === undefined ? undefined : this.signingKey(record);
  }

  oldestId(): number {
    return this.snapshot.iteratorKeys[0]?.id ?? 0;
  }

  async rotateKeyIfDue(): Promise<void> {
    const keys = this.snapshot.iteratorKeys;
    const newest = keys[keys.length - 1];
    const nowMs = this.options.clock.nowMs();
    if (newest !== undefined && nowMs - newest.createdMs < this.rotationMs()) return;
    // Keep enough keys that a retired key outlives every iterator it signed.
    const keep = 1 + Math.ceil(ITERATOR_LIFETIME_MS / this.rotationMs()) + 1;
    const random = this.options.randomBytes ?? randomBytes;
    await this.propose({
      type: 'rotateIteratorKey',
      secretBase64: random(32).toString('base64'),
      nowMs,
      keep,
    });
  }

  private rotationMs(): number {
    return this.options.keyRotationMs ?? DEFAULT_KEY_ROTATION_MS;
  }

  private signingKey(record: IteratorKeyRecord): SigningKey {
    let key = this.keyCache.get(record.id);
    if (key === undefined) {
      key = { id: record.id, secret: Buffer.from(record.secretBase64, 'base64') };
      this.keyCache.set(record.id, key);
    }
    return key;
  }

  private async run(command: MetadataCommand): Promise<readonly MetadataChange[]> {
    const changes = applyCommand(this.snapshot, command, this.options.context);
    if (changes.length === 0) return changes;
    await this.store.write(changes.map(toRecord));
    this.snapshot = withChanges(this.snapshot, changes);
    for (const listener of this.listeners) listener(changes, this.snapshot);
    return changes;
  }
}
