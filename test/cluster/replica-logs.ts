import type { MetadataState } from '../../src/coordinator/model.js';
import { openBrokerStore } from '../../src/storage/log-store.js';
import { ShardRaftStore } from '../../src/storage/shard-raft-store.js';
import type { ReplicaLog, ReplicaLogEntry } from './checker.js';

/**
 * Every replica's committed log of one stream, read from the brokers' stores after they stopped, for the
 * checker's byte-for-byte divergence check. An entry's bytes are its type, term and payload (the
 * leader stamps arrival times into the payload, so replicas of one entry are identical).
 */
export async function readReplicaLogs(
  state: MetadataState,
  brokerIds: readonly number[],
  dataDirOf: (brokerId: number) => string,
  streamName: string,
): Promise<ReplicaLog[]> {
  const out: ReplicaLog[] = [];
  for (const id of brokerIds) {
    const broker = { id };
    const kv = await openBrokerStore(dataDirOf(broker.id));
    try {
      for (const stream of state.streams.values()) {
        if (stream.name !== streamName) continue;
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
