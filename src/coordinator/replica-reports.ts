import { ReplicaRole, type ReplicaStatus } from '../gen/rheos/v1/coordinator.js';

/**
 * What brokers last reported of their replicas, kept by the coordinator leader in memory only (a
 * new leader hears it all again within a heartbeat period). It is advice: which shards have an
 * elected leader (a new stream turns ACTIVE once all of its shards have one) and what
 * `rheos admin cluster` shows; Raft alone decides who leads.
 */
export class ReplicaReports {
  private readonly byBroker = new Map<
    number,
    {
      readonly heardMs: number;
      readonly session: string;
      readonly sequence: number;
      readonly replicas: readonly ReplicaStatus[];
    }
  >();

  constructor(private readonly freshForMs: number) {}

  /**
   * Keeps a broker's report unless it is older than the one kept (same process, lower or equal
   * sequence: a slow copy); returns whether it was kept, so stale news does not count as a sign
   * of life either.
   */
  record(
    brokerId: number,
    report: { readonly session: string; readonly sequence: number },
    replicas: readonly ReplicaStatus[],
    nowMs: number,
  ): boolean {
    const kept = this.byBroker.get(brokerId);
    if (kept !== undefined && kept.session === report.session && report.sequence <= kept.sequence) {
      return false;
    }
    this.byBroker.set(brokerId, {
      heardMs: nowMs,
      session: report.session,
      sequence: report.sequence,
      replicas,
    });
    return true;
  }

  clear(): void {
    this.byBroker.clear();
  }

  /** Milliseconds since the broker last reported, or undefined when it has not. */
  ageMs(brokerId: number, nowMs: number): number | undefined {
    const report = this.byBroker.get(brokerId);
    return report === undefined ? undefined : Math.max(0, Math.round(nowMs - report.heardMs));
  }

  /** The role a broker reported recently for a shard's replica (UNSPECIFIED when it did not). */
  roleOf(brokerId: number, shard: number, nowMs: number): ReplicaRole {
    const report = this.byBroker.get(brokerId);
    if (report === undefined || nowMs - report.heardMs > this.freshForMs) {
      return ReplicaRole.REPLICA_ROLE_UNSPECIFIED;
    }
    const status = report.replicas.find((r) => r.shardIncarnation === shard);
    return status?.role ?? ReplicaRole.REPLICA_ROLE_UNSPECIFIED;
  }

  /** Write rates (bytes per second) the shard leaders reported recently, by shard incarnation. */
  writeRates(nowMs: number): Map<number, number> {
    const rates = new Map<number, number>();
    for (const report of this.byBroker.values()) {
      if (nowMs - report.heardMs > this.freshForMs) continue;
      for (const replica of report.replicas) {
        if (replica.role === ReplicaRole.REPLICA_ROLE_LEADER) {
          rates.set(replica.shardIncarnation, replica.writeBytesPerSecond);
        }
      }
    }
    return rates;
  }

  /** Shards some broker reporting recently says it leads. */
  ledShards(nowMs: number): Set<number> {
    const led = new Set<number>();
    for (const report of this.byBroker.values()) {
      if (nowMs - report.heardMs > this.freshForMs) continue;
      for (const replica of report.replicas) {
        if (replica.role === ReplicaRole.REPLICA_ROLE_LEADER) led.add(replica.shardIncarnation);
      }
    }
    return led;
  }
}
