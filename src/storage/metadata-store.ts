import type { GroupCommitWriter } from './group-commit.js';
import type { KvStore } from './kv-store.js';
import { METADATA_END, METADATA_START, metadataKey, metadataKeyName } from './keys.js';

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
    const records = new Map<string, unknown>();
    for (const [key, value] of await this.kv.entries({ gte: METADATA_START, lt: METADATA_END })) {
      records.set(metadataKeyName(key), JSON.parse(value.toString('utf8')) as unknown);
    }
    return records;
  }

  /** Writes (or, for `undefined`, deletes) records atomically and durably. */
  async write(changes: ReadonlyArray<readonly [name: string, value: unknown]>): Promise<void> {
    await this.writer.write(
      changes.map(([name, value]) =>
        value === undefined
          ? { type: 'del', key: metadataKey(name) }
          : {
              type: 'put',
              key: metadataKey(name),
              value: Buffer.from(JSON.stringify(value), 'utf8'),
            },
      ),
    );
  }
}
