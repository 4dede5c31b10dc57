import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseClusterConfig } from '../../src/broker/cluster-config.js';
import { StaticMetadata } from '../../src/broker/static-metadata.js';
import { DEFAULT_IDENTITY } from '../../src/common/arn.js';
import { DEFAULT_ACCOUNT_LIMITS } from '../../src/coordinator/model.js';
import { openKvStore } from '../../src/storage/kv-store.js';
import { ShardRaftStore } from '../../src/storage/shard-raft-store.js';
import type { ReplicaLog, ReplicaLogEntry } from './checker.js';

/**
 * Every replica's committed log, read from the brokers' LevelDBs after they stopped, for the
 * checker's byte-for-byte divergence check. An entry's bytes are its type, term and payload (the
 * leader stamps arrival times into the payload, so replicas of one entry are identical).
 */
export async function readReplicaLogs(
  configFile: string,
  dataDirOf: (brokerId: number) => string,
): Promise<ReplicaLog[]> {
  const config = parseClusterConfig(await readFile(configFile, 'utf8'));
  const metadata = new StaticMetadata(config, {
    accountId: DEFAULT_IDENTITY.accountId,
    limits: DEFAULT_ACCOUNT_LIMITS,
  });
  const out: ReplicaLog[] = [];
  for (const broker of config.brokers) {
    const kv = await openKvStore(join(dataDirOf(broker.id), 'broker.db'));
    try {
      for (const stream of metadata.state.streams.values()) {
        for (const shard of stream.shards) {
          const voters = shard.replicas ?? [];
          if (!voters.includes(broker.id)) continue;
          const store = new ShardRaftStore(kv, shard.incarnation, voters);
          const { initial } = await store.recover(0);
          const commitIndex = Math.min(initial.hardState.commit, initial.lastIndex);
          const entries: ReplicaLogEntry[] = [];
          for (let from = initial.firstIndexMinusOne + 1; from <= commitIndex;) {
            const batch = await store.load({ from, to: commitIndex, maxBytes: 8 << 20 });
            if (batch.length === 0) throw new Error(`broker ${broker.id}: no entry ${from}`);
            for (const e of batch) {
              const bytes = new Uint8Array(1 + e.data.byteLength);
              bytes[0] = e.type;
              bytes.set(e.data, 1);
              entries.push({ index: e.index, term: e.term, bytes });
            }
            from = (batch[batch.length - 1] as { index: number }).index + 1;
          }
          out.push({ broker: String(broker.id), shardId: shard.shardId, commitIndex, entries });
        }
      }
    } finally {
      await kv.close();
    }
  }
  return out;
}
