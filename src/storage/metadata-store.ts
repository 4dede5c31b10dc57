import type { GroupCommitWriter } from './group-commit.js';
import type { KvOp, KvStore } from './kv-store.js';
import { METADATA_END, METADATA_START, metadataKey, metadataKeyName } from './keys.js';

/** The writes that store (or, for `undefined`, delete) metadata records. */
export function metadataOps(
  changes: ReadonlyArray<readonly [name: string, value: unknown]>,
): KvOp[] {
  return changes.map(([name, value]) =>
    value === undefined
      ? { type: 'del', key: metadataKey(name) }
      : { type: 'put', key: metadataKey(name), value: Buffer.from(JSON.stringify(value), 'utf8') },
  );
}

/**
 * Durable metadata records (JSON values under `M` keys). Writes go through the broker's
 * group-commit writer, so a metadata change is synced like any log entry.
 */
export class MetadataStore {
  constructor(
    private readonly kv: KvStore,
    private readonly writer: GroupCommitWriter,
  ) {}

  async loadAll(): Promise<Map<string, unknown>> {
    return loadMetadataRecords(this.kv);
  }

  /** Writes (or, for `undefined`, deletes) records atomically and durably. */
  async write(changes: ReadonlyArray<readonly [name: string, value: unknown]>): Promise<void> {
    await this.writer.write(metadataOps(changes));
  }
}

/** Every metadata record in `kv`, by name. */
export async function loadMetadataRecords(kv: KvStore): Promise<Map<string, unknown>> {
  const records = new Map<string, unknown>();
  for (const [key, value] of await kv.entries({ gte: METADATA_START, lt: METADATA_END })) {
    records.set(metadataKeyName(key), JSON.parse(value.toString('utf8')) as unknown);
  }
  return records;
}

/**
 * A coordinated broker's copy of the coordinators' metadata, kept so that it can start (and
 * serve its replicas) while no coordinator answers. It may be older than the coordinators'
 * metadata, never newer; it is written without fsync, since an older copy is as safe.
 */
const MIRROR_KEY = metadataKey('coordinator-metadata');

export interface MirroredMetadata {
  readonly version: number;
  readonly records: Readonly<Record<string, unknown>>;
}

export async function saveMirroredMetadata(
  kv: KvStore,
  version: number,
  recordsJson: Uint8Array,
): Promise<void> {
  const value = Buffer.concat([
    Buffer.from(`{"version":${version},"records":`, 'utf8'),
    recordsJson,
    Buffer.from('}', 'utf8'),
  ]);
  await kv.write([{ type: 'put', key: MIRROR_KEY, value }], { sync: false });
}

export async function loadMirroredMetadata(kv: KvStore): Promise<MirroredMetadata | undefined> {
  const raw = await kv.get(MIRROR_KEY);
  if (raw === undefined) return undefined;
  const parsed = JSON.parse(raw.toString('utf8')) as { version?: unknown; records?: unknown };
  if (
    typeof parsed.version !== 'number' ||
    typeof parsed.records !== 'object' ||
    parsed.records === null
  ) {
    throw new Error('the stored copy of the coordinators’ metadata is unreadable');
  }
  return { version: parsed.version, records: parsed.records as Record<string, unknown> };
}
