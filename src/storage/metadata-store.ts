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
