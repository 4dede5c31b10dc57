import { randomUUID } from 'node:crypto';
import { brokerOfReplica } from '../common/replica-id.js';
import { backoffDelayMs, sleep } from '../common/backoff.js';
import type { Clock } from '../common/clock.js';
import { ServiceUnavailableError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { CoordinatorLink } from '../coordinator/coordinator-link.js';
import { stateFromRecords } from '../coordinator/metadata-records.js';
import {
  CoordinatorServiceService as Coordinator,
  ReplicaRole,
  type RegisterBrokerResponse,
  type ReplicaStatus,
} from '../gen/rheos/v1/coordinator.js';
import { Role } from '../raft/types.js';
import type { MetadataMirror } from './metadata-mirror.js';
import type { RaftHost } from './raft-host.js';
import { RaftReplica } from './raft-replica.js';

/**
 * A broker's side of the coordinator protocol: it registers (getting an id the first time), then
 * heartbeats with its replicas' state; when an answer carries a newer metadata version it fetches
 * the metadata into its mirror, and the broker reconciles its replicas from that. Nothing here
 * stops the data plane: with the coordinators gone, the broker keeps serving the shards it has
 * (Raft elects their leaders), it only learns nothing new.
 */

export interface RegistrationRequest {
  readonly clusterId: string;
  readonly brokerId: number | undefined;
  readonly zone: string;
  readonly apiEndpoint: string;
  readonly peerEndpoint: string;
  /** Stored in the data folder before the first attempt. */
  readonly token: string;
  /** The data folder holds an id from an earlier registration. */
  readonly returning: boolean;
}

/** Registers, retrying while no coordinator can take it, for up to `timeoutMs`. */
export async function registerBroker(
  link: CoordinatorLink,
  request: RegistrationRequest,
  timeoutMs: number,
  logger: Logger,
  /** Stops retrying (the broker is closing). */
  cancelled: () => boolean = () => false,
): Promise<RegisterBrokerResponse> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await link.call(
        Coordinator.registerBroker,
        {
          clusterId: request.clusterId,
          ...(request.brokerId === undefined ? {} : { brokerId: request.brokerId }),
          zone: request.zone,
          apiEndpoint: request.apiEndpoint,
          peerEndpoint: request.peerEndpoint,
          registrationToken: request.token,
          returning: request.returning,
        },
        // Safe to repeat: the same token gets the same id back.
        true,
      );
    } catch (error) {
      const retriable = error instanceof Error && 'retriable' in error && error.retriable === true;
      if (!retriable || Date.now() > deadline || cancelled()) throw error;
      // Said once, not once per attempt.
      if (attempt === 0)
        logger.warn({ err: error }, 'no coordinator took the registration yet; retrying');
      await sleep(backoffDelayMs(attempt, { initialMs: 100, maxMs: 1_000 }));
    }
  }
}

export interface CoordinatorSessionOptions {
  readonly link: CoordinatorLink;
  readonly clusterId: string;
  readonly brokerId: number;
  readonly mirror: MetadataMirror;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly heartbeatIntervalMs: number;
  /** Keeps each newer metadata version (the broker's copy for starting without coordinators). */
  readonly persist?: (version: number, recordsJson: Uint8Array) => Promise<void>;
}

export class CoordinatorSession {
  private timer: NodeJS.Timeout | undefined;
  private fetching: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;
  private refreshFailedMs: number | undefined;
  private stopped = false;
  private failures = 0;
  private readonly lastBytes = new Map<number, { bytes: number; atMs: number }>();
  private host: RaftHost | undefined;
  /** Heartbeats of this process are ordered by (session, sequence). */
  private readonly session = randomUUID();
  private sequence = 0;

  constructor(private readonly options: CoordinatorSessionOptions) {}

  /** The replicas to report on (a broker fetches its first metadata before it hosts any). */
  attach(host: RaftHost): void {
    this.host = host;
  }

  /** Fetches the newest metadata (linearizable), once however many callers ask at the same time. */
  fetch(): Promise<void> {
    this.fetching ??= this.fetchOnce().finally(() => (this.fetching = undefined));
    return this.fetching;
  }

  /**
   * A quick look at the newest metadata for a client's request (a stream this broker does not
   * know yet): two short attempts at most, and none for a second after one failed, so requests
   * are not held up while the coordinators are away.
   */
  async refresh(): Promise<void> {
    const nowMs = this.options.clock.monotonicMs();
    if (this.refreshFailedMs !== undefined && nowMs - this.refreshFailedMs < 1_000) {
      throw new ServiceUnavailableError('The coordinators could not be reached a moment ago.');
    }
    try {
      this.refreshing ??= this.fetchOnce({ maxAttempts: 2, deadlineMs: 2_000 }).finally(
        () => (this.refreshing = undefined),
      );
      await this.refreshing;
      this.refreshFailedMs = undefined;
    } catch (error) {
      this.refreshFailedMs = this.options.clock.monotonicMs();
      throw error;
    }
  }

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  /** One heartbeat (exposed for tests). */
  async heartbeat(): Promise<void> {
    const response = await this.options.link.call(
      Coordinator.heartbeat,
      {
        clusterId: this.options.clusterId,
        brokerId: this.options.brokerId,
        metadataVersion: this.options.mirror.version,
        replicas: this.statuses(),
        session: this.session,
        sequence: ++this.sequence,
      },
      true,
      // A heartbeat that cannot get through soon is dropped; the next one tries again.
      { deadlineMs: Math.max(1_000, 4 * this.options.heartbeatIntervalMs), maxAttempts: 4 },
    );
    if (response.metadataVersion > this.options.mirror.version) {
      // Not awaited: the next heartbeat must not wait behind a slow metadata fetch, or the
      // coordinators judge this broker down while it is only busy.
      this.fetch().catch((error: unknown) => {
        this.options.logger.warn({ err: error }, 'metadata fetch after a heartbeat failed');
      });
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.heartbeat().then(
        () => {
          if (this.failures > 0) this.options.logger.info('coordinator reachable again');
          this.failures = 0;
          this.schedule();
        },
        (error: unknown) => {
          // Logged once per outage, not once per period.
          if (this.failures++ === 0) {
            this.options.logger.warn({ err: error }, 'heartbeat to the coordinators failed');
          }
          this.schedule();
        },
      );
    }, this.options.heartbeatIntervalMs);
    this.timer.unref();
  }

  private async fetchOnce(
    limits: { readonly maxAttempts?: number; readonly deadlineMs?: number } = {},
  ): Promise<void> {
    const response = await this.options.link.call(
      Coordinator.getMetadata,
      { clusterId: this.options.clusterId },
      true,
      limits,
    );
    const records = JSON.parse(Buffer.from(response.recordsJson).toString('utf8')) as Record<
      string,
      unknown
    >;
    const state = stateFromRecords(new Map(Object.entries(records)));
    if (this.options.mirror.update(response.version, state)) {
      await this.options.persist?.(response.version, response.recordsJson);
    }
  }

  private statuses(): ReplicaStatus[] {
    const nowMs = this.options.clock.monotonicMs();
    const out: ReplicaStatus[] = [];
    if (this.host === undefined) return out;
    const seen = new Set<number>();
    for (const group of this.host.groups()) {
      if (!(group instanceof RaftReplica)) continue;
      const status = group.node.status();
      const bytes = group.bytesApplied;
      seen.add(group.shard);
      const last = this.lastBytes.get(group.shard);
      this.lastBytes.set(group.shard, { bytes, atMs: nowMs });
      const elapsedMs = last === undefined ? 0 : nowMs - last.atMs;
      out.push({
        shardIncarnation: group.shard,
        role: roleOf(status.role),
        leaderId: brokerOfReplica(status.lead),
        term: status.term,
        commitIndex: status.commit,
        appliedIndex: status.applied,
        maxFollowerLag: group.node.maxFollowerLag(),
        bytesApplied: bytes,
        writeBytesPerSecond:
          last === undefined || elapsedMs <= 0
            ? 0
            : Math.round(((bytes - last.bytes) * 1000) / elapsedMs),
      });
    }
    for (const shard of this.lastBytes.keys()) if (!seen.has(shard)) this.lastBytes.delete(shard);
    return out;
  }
}

function roleOf(role: Role): ReplicaRole {
  switch (role) {
    case Role.Leader:
      return ReplicaRole.REPLICA_ROLE_LEADER;
    case Role.Candidate:
    case Role.PreCandidate:
      return ReplicaRole.REPLICA_ROLE_CANDIDATE;
    case Role.Follower:
      return ReplicaRole.REPLICA_ROLE_FOLLOWER;
    default:
      return ReplicaRole.REPLICA_ROLE_UNSPECIFIED;
  }
}
