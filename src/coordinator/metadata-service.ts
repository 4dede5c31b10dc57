import { randomBytes } from 'node:crypto';
import type { Clock } from '../common/clock.js';
import { LimitExceededError } from '../common/errors.js';
import type { SigningKey, SigningKeyring } from '../common/iterator-token.js';
import type { MetadataStore } from '../storage/metadata-store.js';
import {
  applyCommand,
  withChanges,
  type MachineContext,
  type MetadataChange,
  type MetadataCommand,
} from './metadata-machine.js';
import { DEFAULT_KEY_ROTATION_MS, keyRotationDue, MetadataKeyring } from './iterator-keys.js';
import { stateFromRecords, toRecord } from './metadata-records.js';
import type { MetadataState } from './model.js';

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

export class MetadataService implements SigningKeyring {
  private snapshot: MetadataState;
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private readonly listeners = new Set<ChangeListener>();
  private rotationTimer: NodeJS.Timeout | undefined;
  private readonly keyring = new MetadataKeyring(() => this.snapshot);

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
    return this.keyring.current();
  }

  find(id: number): SigningKey | undefined {
    return this.keyring.find(id);
  }

  oldestId(): number {
    return this.keyring.oldestId();
  }

  async rotateKeyIfDue(): Promise<void> {
    const random = this.options.randomBytes ?? randomBytes;
    const command = keyRotationDue(
      this.snapshot,
      this.options.clock.nowMs(),
      this.rotationMs(),
      () => random(32),
    );
    if (command !== undefined) await this.propose(command);
  }

  private rotationMs(): number {
    return this.options.keyRotationMs ?? DEFAULT_KEY_ROTATION_MS;
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
