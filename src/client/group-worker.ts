import { randomUUID } from 'node:crypto';
import { sleep } from '../common/backoff.js';
import { LeaseLostError, RheosError } from '../common/errors.js';
import {
  GroupInitialPosition,
  type GroupDescription,
  type Lease,
} from '../gen/rheos/v1/control.js';
import type { RheosClient } from './client.js';
import type { UserRecord } from './kpl-aggregation.js';
import { recordBatches } from './record-batches.js';
import { pollShard, type StartPosition } from './shard-poller.js';
import { subscribeShard } from './shard-subscriber.js';

/**
 * A consumer-group worker (what a KCL worker does, with Rheos keeping the leases): it heartbeats
 * once per interval for the whole group, takes free and expired leases up to its share of the
 * shards, steals one at a time from a worker above its share, and runs one processor per lease:
 * records are read from the lease's checkpoint (by polling, or by enhanced fan-out) and handed to
 * `processRecords` in batches, in shard order. Delivery is at least once: records after the last
 * checkpoint are processed again by the next holder of the lease. A lease that moves to another
 * worker stops its processor (`shutdown('LEASE_LOST')`, which must not checkpoint); a shard read
 * to its end is checkpointed SHARD_END, which lets its children start; `stop()` checkpoints
 * through `shutdown('REQUESTED')` and releases every lease.
 */

export type ShutdownReason = 'LEASE_LOST' | 'SHARD_END' | 'REQUESTED';

export interface Checkpointer {
  /** Records everything up to `record` (default: the last record handed over) as processed. */
  checkpoint(record?: UserRecord): Promise<void>;
}

export interface ProcessRecordsInput {
  readonly shardId: string;
  readonly records: readonly UserRecord[];
  readonly checkpointer: Checkpointer;
  /** Aborted when this shard's processor stops (its lease was lost, or the worker stops). */
  readonly signal: AbortSignal;
}

export interface ShutdownInput {
  readonly shardId: string;
  readonly reason: ShutdownReason;
  /** Absent after LEASE_LOST: the lease is another worker's now. */
  readonly checkpointer?: Checkpointer;
}

export type GroupWorkerClient = Pick<
  RheosClient,
  | 'groupHeartbeat'
  | 'takeLease'
  | 'checkpointLease'
  | 'releaseLease'
  | 'getShardIterator'
  | 'getRecords'
  | 'subscribeToShard'
  | 'shardRoutes'
>;

export interface GroupWorkerOptions {
  readonly client: GroupWorkerClient;
  readonly application: string;
  readonly streamName: string;
  /** Unique among the group's workers (default: a random id). */
  readonly workerId?: string;
  /** Where shards never checkpointed start (default TRIM_HORIZON); used when the group is created. */
  readonly initialPosition?:
    | { readonly type: 'TRIM_HORIZON' }
    | { readonly type: 'LATEST' }
    | { readonly type: 'AT_TIMESTAMP'; readonly timestampMs: number };
  readonly processRecords: (input: ProcessRecordsInput) => Promise<void>;
  readonly shutdown?: (input: ShutdownInput) => Promise<void>;
  /** Enhanced fan-out with this registered consumer; absent: polling with GetRecords. */
  readonly fanOutConsumerArn?: string;
  /** Default: a third of the group's failover time, at most 1 s. */
  readonly heartbeatIntervalMs?: number;
  /** Records per processRecords call at most (default 1,000). */
  readonly maxBatchRecords?: number;
  /** Called with every error the worker handled itself (a failed heartbeat, a lost race). */
  readonly onError?: (error: unknown) => void;
}

interface Processor {
  readonly shardId: string;
  readonly counter: number;
  readonly stop: AbortController;
  /** Why it stopped, once it was told to. */
  reason?: ShutdownReason;
  /** Stopped as by a crash: no shutdown callback, no checkpoint, no release. */
  abandoned?: boolean;
  done: Promise<void>;
}

export interface GroupWorker {
  readonly workerId: string;
  /** The shards this worker processes now. */
  shards(): string[];
  /** Checkpoints (through shutdown('REQUESTED')) and releases every lease, then stops. */
  stop(): Promise<void>;
  /** Stops at once without checkpointing or releasing (as a crash would, for tests). */
  abandon(): Promise<void>;
  /** Settles when the worker has stopped; rejects if it failed. */
  readonly finished: Promise<void>;
}

export function startGroupWorker(options: GroupWorkerOptions): GroupWorker {
  const workerId = options.workerId ?? `worker-${randomUUID()}`;
  const { client, application } = options;
  const processors = new Map<string, Processor>();
  const stopping = new AbortController();
  let intervalMs = options.heartbeatIntervalMs ?? 1_000;

  const heartbeat = async (): Promise<GroupDescription | undefined> => {
    const { group } = await client.groupHeartbeat({
      application,
      workerId,
      streamName: options.streamName,
      ...initialPositionOf(options.initialPosition),
    });
    if (group !== undefined && options.heartbeatIntervalMs === undefined) {
      intervalMs = Math.max(50, Math.min(1_000, Math.floor(group.failoverMs / 3)));
    }
    return group;
  };

  const startProcessor = (lease: Lease, group: GroupDescription) => {
    const processor: Processor = {
      shardId: lease.shardId,
      counter: lease.counter,
      stop: new AbortController(),
      done: Promise.resolve(),
    };
    processors.set(lease.shardId, processor);
    processor.done = runProcessor(options, workerId, lease, group, processor).finally(() => {
      if (processors.get(lease.shardId) === processor) processors.delete(lease.shardId);
    });
  };

  const balance = async (group: GroupDescription) => {
    // Leases that moved away, or whose counter moved on: their processors stop.
    for (const p of processors.values()) {
      const lease = group.leases.find((l) => l.shardId === p.shardId);
      if (lease === undefined || lease.owner !== workerId || lease.counter !== p.counter) {
        p.reason ??= 'LEASE_LOST';
        p.stop.abort();
      }
    }
    // Leases this worker holds but does not process (taken before a restart of the worker).
    for (const lease of group.leases) {
      if (
        lease.owner === workerId &&
        lease.checkpoint !== 'SHARD_END' &&
        !processors.has(lease.shardId)
      ) {
        startProcessor(lease, group);
      }
    }
    const open = group.leases.filter(
      (l) => l.checkpoint !== 'SHARD_END' && (l.ready || l.owner !== ''),
    );
    const workers = Math.max(1, group.liveWorkers.length);
    const target = Math.ceil(open.length / workers);
    const mine = () => group.leases.filter((l) => processors.has(l.shardId)).length;
    const takeable = shuffle(
      group.leases.filter((l) => l.ready && l.owner !== workerId && (l.owner === '' || l.expired)),
    );
    for (const lease of takeable) {
      if (mine() >= target || stopping.signal.aborted) return;
      await take(lease, group, false);
    }
    if (mine() >= target || takeable.length > 0) return;
    // Nothing free: steal one lease from the worker holding the most, if it is above the share.
    const held = new Map<string, Lease[]>();
    for (const l of open) {
      if (l.owner === '' || l.owner === workerId || l.expired) continue;
      held.set(l.owner, [...(held.get(l.owner) ?? []), l]);
    }
    const [, most] = [...held].sort((a, b) => b[1].length - a[1].length)[0] ?? [];
    // As the KCL: from one above its share; or from one at its share when this worker is more
    // than one short of its own (otherwise a joining worker could never get any).
    const short = target - mine();
    if (
      most !== undefined &&
      short > 0 &&
      (most.length > target || (most.length === target && short > 1))
    ) {
      const victim = shuffle(most.filter((l) => l.ready))[0];
      if (victim !== undefined) await take(victim, group, true);
    }
  };

  const take = async (lease: Lease, group: GroupDescription, steal: boolean) => {
    try {
      const { lease: taken } = await client.takeLease({
        application,
        workerId,
        shardId: lease.shardId,
        expectedCounter: lease.counter,
        steal,
      });
      if (taken === undefined) return;
      if (!stopping.signal.aborted) {
        startProcessor(taken, group);
        return;
      }
      // Stopped while the take was under way: give the lease straight back.
      await client.releaseLease({
        application,
        workerId,
        shardId: taken.shardId,
        counter: taken.counter,
      });
    } catch (error) {
      // Another worker was faster, or the owner came back: the next heartbeat shows it.
      options.onError?.(error);
    }
  };

  const loop = async () => {
    while (!stopping.signal.aborted) {
      try {
        const group = await heartbeat();
        if (group !== undefined && !stopping.signal.aborted) await balance(group);
      } catch (error) {
        if (error instanceof RheosError && !error.retriable && isDefiniteRefusal(error))
          throw error;
        options.onError?.(error);
      }
      await sleep(intervalMs, stopping.signal);
    }
  };

  const finished = loop().finally(async () => {
    for (const p of processors.values()) {
      p.reason ??= 'REQUESTED';
      p.stop.abort();
    }
    await Promise.allSettled([...processors.values()].map((p) => p.done));
  });
  // Observed by the caller through `finished`; never an unhandled rejection.
  finished.catch(() => undefined);

  return {
    workerId,
    shards: () => [...processors.keys()].sort(),
    stop: async () => {
      stopping.abort();
      await finished;
    },
    abandon: async () => {
      for (const p of processors.values()) p.abandoned = true;
      stopping.abort();
      await finished.catch(() => undefined);
    },
    finished,
  };
}

/** Errors that retrying cannot mend: the worker stops with them (a bad name, a deleted stream). */
function isDefiniteRefusal(error: RheosError): boolean {
  return (
    error.name === 'ValidationException' ||
    error.name === 'ResourceNotFoundException' ||
    error.name === 'ResourceInUseException'
  );
}

async function runProcessor(
  options: GroupWorkerOptions,
  workerId: string,
  lease: Lease,
  group: GroupDescription,
  processor: Processor,
): Promise<void> {
  const { client, application } = options;
  const signal = processor.stop.signal;
  let last: UserRecord | undefined;
  let lost = false;
  const checkpointAt = async (sequenceNumber: string, subSequenceNumber: number) => {
    try {
      await client.checkpointLease({
        application,
        workerId,
        shardId: lease.shardId,
        counter: lease.counter,
        sequenceNumber,
        subSequenceNumber,
      });
    } catch (error) {
      if (error instanceof LeaseLostError) {
        lost = true;
        processor.reason ??= 'LEASE_LOST';
        processor.stop.abort();
      }
      throw error;
    }
  };
  const checkpointer: Checkpointer = {
    checkpoint: async (record) => {
      const at = record ?? last;
      if (at === undefined) return;
      await checkpointAt(at.sequenceNumber, at.subSequenceNumber);
    },
  };
  let ended = false;
  const from = startOf(lease, group);
  const records =
    options.fanOutConsumerArn === undefined
      ? pollShard({
          client,
          streamName: group.streamName,
          shardId: lease.shardId,
          from,
          signal,
          onEnd: () => (ended = true),
        })
      : subscribeShard({
          client,
          streamName: group.streamName,
          consumerArn: options.fanOutConsumerArn,
          shardId: lease.shardId,
          from,
          signal,
          onEnd: () => (ended = true),
        });
  try {
    for await (const batch of recordBatches(records, options.maxBatchRecords ?? 1_000)) {
      if (signal.aborted) break;
      last = batch[batch.length - 1];
      await options.processRecords({
        shardId: lease.shardId,
        records: batch,
        checkpointer,
        signal,
      });
    }
  } catch (error) {
    if (!signal.aborted) options.onError?.(error);
  }
  if (processor.abandoned === true) return;
  if (ended && !signal.aborted) processor.reason = 'SHARD_END';
  const reason = processor.reason ?? 'REQUESTED';
  if (lost || reason === 'LEASE_LOST') {
    await options.shutdown?.({ shardId: lease.shardId, reason: 'LEASE_LOST' });
    return;
  }
  try {
    await options.shutdown?.({ shardId: lease.shardId, reason, checkpointer });
    if (reason === 'SHARD_END') {
      // Every record was handed over: the shard is done, and its children may start.
      await checkpointAt('SHARD_END', 0);
    } else {
      await client.releaseLease({
        application,
        workerId,
        shardId: lease.shardId,
        counter: lease.counter,
      });
    }
  } catch (error) {
    options.onError?.(error);
  }
}

function startOf(lease: Lease, group: GroupDescription): StartPosition {
  switch (lease.checkpoint) {
    case 'TRIM_HORIZON':
      return { type: 'TRIM_HORIZON' };
    case 'LATEST':
      return { type: 'LATEST' };
    case 'AT_TIMESTAMP':
      return { type: 'AT_TIMESTAMP', timestampMs: group.initialTimestampMs };
    default:
      return {
        type: 'AFTER_SEQUENCE_NUMBER',
        sequenceNumber: lease.checkpoint,
        subSequenceNumber: lease.checkpointSubSequenceNumber,
      };
  }
}

function initialPositionOf(position: GroupWorkerOptions['initialPosition']): {
  initialPosition: GroupInitialPosition;
  initialTimestampMs?: number;
} {
  switch (position?.type) {
    case 'LATEST':
      return { initialPosition: GroupInitialPosition.GROUP_INITIAL_POSITION_LATEST };
    case 'AT_TIMESTAMP':
      return {
        initialPosition: GroupInitialPosition.GROUP_INITIAL_POSITION_AT_TIMESTAMP,
        initialTimestampMs: position.timestampMs,
      };
    default:
      return { initialPosition: GroupInitialPosition.GROUP_INITIAL_POSITION_TRIM_HORIZON };
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
