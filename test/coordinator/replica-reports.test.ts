import { describe, expect, it } from 'vitest';
import { ReplicaReports } from '../../src/coordinator/replica-reports.js';
import { ReplicaRole, type ReplicaStatus } from '../../src/gen/rheos/v1/coordinator.js';

/** What brokers report of their replicas, as the coordinator leader keeps it. */

function replica(shardIncarnation: number, role: ReplicaRole, leaderId = 0): ReplicaStatus {
  return {
    shardIncarnation,
    role,
    leaderId,
    term: 1,
    commitIndex: 10,
    appliedIndex: 10,
    maxFollowerLag: 0,
    bytesApplied: 1_000,
    writeBytesPerSecond: 0,
  };
}

const { REPLICA_ROLE_LEADER: LEADER, REPLICA_ROLE_FOLLOWER: FOLLOWER } = ReplicaRole;
const UNSPECIFIED = ReplicaRole.REPLICA_ROLE_UNSPECIFIED;

/** Heartbeats of one broker process, in the order it sent them. */
let sent = 0;
function next(): { session: string; sequence: number } {
  return { session: 'process-1', sequence: ++sent };
}

function sorted(shards: Set<number>): number[] {
  return [...shards].sort((a, b) => a - b);
}

describe('replica reports', () => {
  it('counts the shards that brokers reporting recently say they lead', () => {
    const reports = new ReplicaReports(3_000);
    reports.record(1, next(), [replica(10, LEADER, 1), replica(11, FOLLOWER, 2)], 1_000);
    reports.record(2, next(), [replica(11, LEADER, 2), replica(10, FOLLOWER, 1)], 1_500);
    reports.record(3, next(), [replica(12, ReplicaRole.REPLICA_ROLE_CANDIDATE)], 1_500);
    expect(sorted(reports.ledShards(2_000))).toEqual([10, 11]);
  });

  it('stops counting a report once it is older than freshForMs, and not a moment before', () => {
    const reports = new ReplicaReports(3_000);
    reports.record(1, next(), [replica(10, LEADER, 1)], 1_000);
    reports.record(2, next(), [replica(11, LEADER, 2)], 2_000);
    expect(sorted(reports.ledShards(4_000))).toEqual([10, 11]);
    expect(sorted(reports.ledShards(4_001))).toEqual([11]);
    expect(sorted(reports.ledShards(5_001))).toEqual([]);
  });

  it('ignores a heartbeat older than the one kept (a slow copy), but not one of a new process', () => {
    const reports = new ReplicaReports(3_000);
    const older = next();
    const newer = next();
    expect(reports.record(1, newer, [replica(10, FOLLOWER, 2)], 1_000)).toBe(true);
    expect(reports.record(1, older, [replica(10, LEADER, 1)], 1_500)).toBe(false);
    expect(reports.record(1, newer, [replica(10, LEADER, 1)], 1_600)).toBe(false);
    expect(reports.roleOf(1, 10, 1_600)).toBe(FOLLOWER);
    // The stale copy did not freshen the report either.
    expect(reports.ageMs(1, 2_000)).toBe(1_000);
    // A restarted broker counts from 1 again, in a new session.
    expect(
      reports.record(1, { session: 'process-2', sequence: 1 }, [replica(10, LEADER, 1)], 2_500),
    ).toBe(true);
    expect(reports.roleOf(1, 10, 2_500)).toBe(LEADER);
  });

  it('keeps only the newest report of each broker', () => {
    const reports = new ReplicaReports(3_000);
    reports.record(1, next(), [replica(10, LEADER, 1)], 1_000);
    reports.record(1, next(), [replica(10, FOLLOWER, 2)], 2_000);
    expect(reports.ledShards(2_000).size).toBe(0);
    expect(reports.roleOf(1, 10, 2_000)).toBe(FOLLOWER);
    // The newer report also freshens the broker.
    expect(reports.roleOf(1, 10, 4_500)).toBe(FOLLOWER);
  });

  it('gives the role a broker reported for a shard while the report is fresh', () => {
    const reports = new ReplicaReports(3_000);
    reports.record(1, next(), [replica(10, LEADER, 1), replica(11, FOLLOWER, 2)], 1_000);
    expect(reports.roleOf(1, 10, 1_000)).toBe(LEADER);
    expect(reports.roleOf(1, 11, 4_000)).toBe(FOLLOWER);
  });

  it('gives UNSPECIFIED for a stale report, an unreported shard or a broker never heard from', () => {
    const reports = new ReplicaReports(3_000);
    reports.record(1, next(), [replica(10, LEADER, 1)], 1_000);
    expect(reports.roleOf(1, 10, 4_001)).toBe(UNSPECIFIED);
    expect(reports.roleOf(1, 99, 1_000)).toBe(UNSPECIFIED);
    expect(reports.roleOf(7, 10, 1_000)).toBe(UNSPECIFIED);
  });

  it('gives the age of each broker’s last report in whole milliseconds', () => {
    const reports = new ReplicaReports(3_000);
    expect(reports.ageMs(1, 5_000)).toBeUndefined();
    reports.record(1, next(), [], 1_000.4);
    reports.record(2, next(), [], 4_000);
    const age = reports.ageMs(1, 2_500.9);
    expect(age).toBe(1_501);
    expect(Number.isInteger(age)).toBe(true);
    // A stale report still has an age (the CLI shows it); a clock that went back gives 0.
    expect(reports.ageMs(1, 60_000)).toBe(59_000);
    expect(reports.ageMs(2, 3_000)).toBe(0);
  });

  it('forgets every report on clear()', () => {
    const reports = new ReplicaReports(3_000);
    reports.record(1, next(), [replica(10, LEADER, 1)], 1_000);
    reports.record(2, next(), [replica(11, LEADER, 2)], 1_000);
    reports.clear();
    expect(reports.ledShards(1_000).size).toBe(0);
    expect(reports.roleOf(1, 10, 1_000)).toBe(UNSPECIFIED);
    expect(reports.ageMs(1, 1_000)).toBeUndefined();
    expect(reports.ageMs(2, 1_000)).toBeUndefined();
    // Reports heard after clear() count again.
    reports.record(2, next(), [replica(11, LEADER, 2)], 2_000);
    expect(sorted(reports.ledShards(2_000))).toEqual([11]);
  });
});
