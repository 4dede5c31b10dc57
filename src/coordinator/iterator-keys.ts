import type { SigningKey, SigningKeyring } from '../common/iterator-token.js';
import { ITERATOR_LIFETIME_MS } from '../common/limits.js';
import type { MetadataCommand } from './metadata-machine.js';
import type { IteratorKeyRecord, MetadataState } from './model.js';

/**
 * The iterator-signing keys kept in metadata: the newest signs, every kept key verifies, and the
 * oldest is dropped only once every iterator it signed has expired. Shared by the single node's
 * metadata service and the coordinator.
 */

export const DEFAULT_KEY_ROTATION_MS = 60 * 60 * 1000;

/** A keyring over whatever metadata state is current. */
export class MetadataKeyring implements SigningKeyring {
  private readonly cache = new Map<number, SigningKey>();

  constructor(private readonly state: () => MetadataState) {}

  current(): SigningKey {
    const keys = this.state().iteratorKeys;
    const newest = keys[keys.length - 1];
    if (newest === undefined) throw new Error('no iterator signing key yet');
    return this.key(newest);
  }

  find(id: number): SigningKey | undefined {
    const record = this.state().iteratorKeys.find((k) => k.id === id);
    return record === undefined ? undefined : this.key(record);
  }

  oldestId(): number {
    return this.state().iteratorKeys[0]?.id ?? 0;
  }

  private key(record: IteratorKeyRecord): SigningKey {
    let key = this.cache.get(record.id);
    if (key === undefined) {
      key = { id: record.id, secret: Buffer.from(record.secretBase64, 'base64') };
      this.cache.set(record.id, key);
    }
    return key;
  }
}

/** The rotation to propose now, if the newest key is older than `rotationMs` (or there is none). */
export function keyRotationDue(
  state: MetadataState,
  nowMs: number,
  rotationMs: number,
  secret: () => Buffer,
): Extract<MetadataCommand, { type: 'rotateIteratorKey' }> | undefined {
  const keys = state.iteratorKeys;
  const newest = keys[keys.length - 1];
  if (newest !== undefined && nowMs - newest.createdMs < rotationMs) return undefined;
  // Keep enough keys that a retired key outlives every iterator it signed.
  const keep = 1 + Math.ceil(ITERATOR_LIFETIME_MS / rotationMs) + 1;
  return { type: 'rotateIteratorKey', secretBase64: secret().toString('base64'), nowMs, keep };
}
