import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { ReplicaManager } from '../broker/replica-manager.js';
import type { GroupCommitWriter } from '../storage/group-commit.js';

/** One registry per node (not prom-client's global one), so several nodes can share a process. */
export function createNodeMetrics(writer: GroupCommitWriter, replicas: ReplicaManager): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'rheos_' });
  new Gauge({
    name: 'rheos_storage_batches_total',
    help: 'Synced LevelDB batches written by group commit',
    registers: [registry],
    collect() {
      this.set(writer.stats.batches);
    },
  });
  new Gauge({
    name: 'rheos_storage_written_bytes_total',
    help: 'Bytes of keys and values written in synced batches',
    registers: [registry],
    collect() {
      this.set(writer.stats.bytes);
    },
  });
  new Gauge({
    name: 'rheos_broker_replicas',
    help: 'Shard replicas hosted by this broker',
    registers: [registry],
    collect() {
      this.set(replicas.size);
    },
  });
  return registry;
}
