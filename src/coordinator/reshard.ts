import { assert } from '../common/assert.js';
import {
  InvalidArgumentError,
  LimitExceededError,
  ResourceInUseError,
  ResourceNotFoundError,
  ValidationError,
} from '../common/errors.js';
import { evenHashRanges, MAX_HASH_KEY } from '../common/hash-key.js';
import { formatShardId } from '../common/shard-id.js';
import {
  isOpen,
  type ReshardIntent,
  type ReshardStep,
  type ShardRecord,
  type StreamRecord,
} from './model.js';

/**
 * Resharding as pure functions of the metadata: checking a request against a stream (Kinesis'
 * rules and messages), planning UpdateShardCount as splits and merges, and starting one step
 * (its children, pending). The metadata machine calls these; placement is passed in.
 */

export interface ReshardContext {
  readonly accountId: string;
}

/**
 * Where the children of a step go: one replica set per child (undefined on a single node), given
 * the step's parents (the parent first, then the adjacent parent of a merge).
 */
export type PlaceChildren = (
  count: number,
  parents: readonly ShardRecord[],
) => ReadonlyArray<readonly number[]> | undefined;

/** SplitShard's checks; the step that carries it out. */
export function planSplit(
  stream: StreamRecord,
  shardId: string,
  newStartingHashKey: string,
  context: ReshardContext,
): ReshardStep {
  const shard = requireReshardable(stream, shardId, context);
  const key = BigInt(newStartingHashKey);
  const start = BigInt(shard.hashKeyStart);
  const end = BigInt(shard.hashKeyEnd);
  if (key <= start + 1n || key >= end) {
    throw new InvalidArgumentError(
      `NewStartingHashKey ${newStartingHashKey} used in SplitShard() on shard ${shardId} in stream ` +
        `${stream.name} under account ${context.accountId} is not both greater than one plus the ` +
        `shard's StartingHashKey ${shard.hashKeyStart} and less than the shard's EndingHashKey ` +
        `${shard.hashKeyEnd}.`,
    );
  }
  return { kind: 'split', hashKey: newStartingHashKey };
}

/** MergeShards' checks; the step that carries it out. */
export function planMerge(
  stream: StreamRecord,
  shardToMerge: string,
  adjacentShardToMerge: string,
  context: ReshardContext,
): ReshardStep {
  const first = requireReshardable(stream, shardToMerge, context);
  const second = requireReshardable(stream, adjacentShardToMerge, context);
  const [lower, upper] =
    BigInt(first.hashKeyStart) < BigInt(second.hashKeyStart) ? [first, second] : [second, first];
  if (first === second || BigInt(lower.hashKeyEnd) + 1n !== BigInt(upper.hashKeyStart)) {
    throw new InvalidArgumentError(
      `Shards ${shardToMerge} and ${adjacentShardToMerge} in stream ${stream.name} under account ` +
        `${context.accountId} are not an adjacent pair of shards eligible for merging`,
    );
  }
  return {
    kind: 'merge',
    hashKey: upper.hashKeyStart,
    ...(upper === first ? { upperIsParent: true as const } : {}),
  };
}

/**
 * UpdateShardCount with UNIFORM_SCALING: the splits and merges that turn the open shards into
 * `target` shards of equal ranges. Splits first (at every target boundary the shards lack), then
 * merges (across every boundary the target lacks), so the hash space stays covered throughout.
 */
export function planScale(
  stream: StreamRecord,
  target: number,
  context: ReshardContext,
): ReshardStep[] {
  const open = openShardsByRange(stream);
  const current = open.length;
  if (target > current * 2) {
    throw new InvalidArgumentError(
      `UpdateShardCount request for stream ${stream.name} under account ${context.accountId} ` +
        `cannot scale up above double the current open shard count (${current}). Requested ` +
        `TargetShardCount: ${target}.`,
    );
  }
  if (target * 2 < current) {
    throw new InvalidArgumentError(
      `UpdateShardCount request for stream ${stream.name} under account ${context.accountId} ` +
        `cannot scale down below half the current open shard count (${current}). Requested ` +
        `TargetShardCount: ${target}.`,
    );
  }
  const have = new Set(open.slice(1).map((s) => s.hashKeyStart));
  const want = new Set(
    evenHashRanges(target)
      .slice(1)
      .map((r) => r.start.toString()),
  );
  const steps: ReshardStep[] = [];
  for (const key of want) if (!have.has(key)) steps.push({ kind: 'split', hashKey: key });
  for (const key of have) if (!want.has(key)) steps.push({ kind: 'merge', hashKey: key });
  return steps;
}

/** How many more shards than now exist at the peak of a plan (a split adds two, closes one). */
export function peakExtraShards(steps: readonly ReshardStep[]): number {
  // Every split leaves one more open shard and two more listed; the pending children of the
  // step under way count against the account's limit as Kinesis counts temporary shards.
  const splits = steps.filter((s) => s.kind === 'split').length;
  return splits + 1;
}

/**
 * Starts `step` on `stream`: its children are created pending (placed by `place`), the intent
 * names its parents and children. Throws if the step no longer fits the open shards (a plan that
 * went stale), which the caller treats as the end of the plan.
 */
export function startStep(
  stream: StreamRecord,
  step: ReshardStep,
  base: Omit<ReshardIntent, 'parents' | 'children'>,
  nowMs: number,
  firstIncarnation: number,
  place: PlaceChildren,
): StreamRecord {
  const key = BigInt(step.hashKey);
  assert(key > 0n && key <= MAX_HASH_KEY, 'a step starts inside the hash space');
  const open = openShardsByRange(stream);
  let ordinal = stream.nextShardOrdinal ?? stream.shards.length;
  const child = (
    start: string,
    end: string,
    parent: string,
    adjacent: string | undefined,
    i: number,
    replicas: readonly number[] | undefined,
  ): ShardRecord => ({
    shardId: formatShardId(ordinal++),
    incarnation: firstIncarnation + i,
    hashKeyStart: start,
    hashKeyEnd: end,
    parentShardId: parent,
    ...(adjacent === undefined ? {} : { adjacentParentShardId: adjacent }),
    createdMs: nowMs,
    pending: true,
    ...(replicas === undefined ? {} : { replicas }),
  });
  let parents: ShardRecord[];
  let children: ShardRecord[];
  if (step.kind === 'split') {
    const parent = open.find((s) => BigInt(s.hashKeyStart) < key && key <= BigInt(s.hashKeyEnd));
    if (parent === undefined) throw new StaleStepError(step);
    parents = [parent];
    const placement = place(2, parents);
    children = [
      child(
        parent.hashKeyStart,
        (key - 1n).toString(),
        parent.shardId,
        undefined,
        0,
        placement?.[0],
      ),
      child(step.hashKey, parent.hashKeyEnd, parent.shardId, undefined, 1, placement?.[1]),
    ];
  } else {
    const upper = open.find((s) => s.hashKeyStart === step.hashKey);
    const lower = open.find((s) => BigInt(s.hashKeyEnd) + 1n === key);
    if (upper === undefined || lower === undefined) throw new StaleStepError(step);
    const [parent, adjacent] = step.upperIsParent === true ? [upper, lower] : [lower, upper];
    parents = [parent, adjacent];
    const placement = place(1, parents);
    children = [
      child(
        lower.hashKeyStart,
        upper.hashKeyEnd,
        parent.shardId,
        adjacent.shardId,
        0,
        placement?.[0],
      ),
    ];
  }
  return {
    ...stream,
    status: 'UPDATING',
    shards: [...stream.shards, ...children],
    nextShardOrdinal: ordinal,
    reshard: {
      ...base,
      parents: parents.map((s) => s.shardId),
      children: children.map((s) => s.shardId),
    },
  };
}

/** A planned step that no longer matches the open shards. */
export class StaleStepError extends Error {
  constructor(readonly step: ReshardStep) {
    super(`reshard step ${step.kind} at ${step.hashKey} matches no open shards`);
  }
}

/**
 * A parent's seal is recorded: it is closed with its ending sequence number. Once every parent of
 * the step is, the children open. Returns the stream and whether the step is complete.
 */
export function recordSeal(
  stream: StreamRecord,
  shardId: string,
  endingSequenceNumber: string,
  nowMs: number,
): { stream: StreamRecord; stepDone: boolean } | undefined {
  const intent = stream.reshard;
  if (intent === undefined || !intent.parents.includes(shardId)) return undefined;
  const target = stream.shards.find((s) => s.shardId === shardId);
  if (target === undefined || target.endingSequenceNumber !== undefined) return undefined;
  let shards = stream.shards.map((s) =>
    s.shardId === shardId ? { ...s, closedMs: nowMs, endingSequenceNumber } : s,
  );
  const stepDone = intent.parents.every(
    (id) => shards.find((s) => s.shardId === id)?.endingSequenceNumber !== undefined,
  );
  if (stepDone) {
    shards = shards.map((s) => {
      if (!intent.children.includes(s.shardId)) return s;
      const { pending: _pending, ...opened } = s;
      return { ...opened, createdMs: nowMs };
    });
  }
  return { stream: { ...stream, shards }, stepDone };
}

/** The stream with the reshard finished: ACTIVE, no intent. */
export function finishReshard(stream: StreamRecord): StreamRecord {
  const { reshard: _reshard, ...rest } = stream;
  return { ...rest, status: 'ACTIVE' };
}

/**
 * Closed shards whose every record has passed the retention period (they closed that long ago)
 * leave the stream, as Kinesis drops them from ListShards; their replicas are then deleted.
 */
export function expiredClosedShards(stream: StreamRecord, nowMs: number): ShardRecord[] {
  const retentionMs = stream.retentionHours * 3_600_000;
  const busy = new Set(stream.reshard?.parents ?? []);
  return stream.shards.filter(
    (s) => s.closedMs !== undefined && s.closedMs + retentionMs <= nowMs && !busy.has(s.shardId),
  );
}

/**
 * How many streams of an account may be resharding at once; one more gets LimitExceededException
 * (Kinesis limits simultaneous SplitShard/MergeShards/UpdateShardCount operations likewise).
 */
export const CONCURRENT_RESHARDS_MAX = 5;

/**
 * A reshard may start: the stream is ACTIVE (UPDATING, CREATING and DELETING answer
 * ResourceInUseException, as Kinesis does), in PROVISIONED mode, and fewer than
 * CONCURRENT_RESHARDS_MAX streams are resharding.
 */
export function checkCanReshard(
  stream: StreamRecord,
  reshardingStreams: number,
  operation: string,
  context: ReshardContext,
  automatic = false,
): void {
  if (stream.status !== 'ACTIVE') {
    throw new ResourceInUseError(
      `Stream ${stream.name} under account ${context.accountId} not ACTIVE, instead in state ${stream.status}`,
    );
  }
  // ON_DEMAND streams are resharded by Rheos alone (on-demand.ts), as Kinesis does.
  if (stream.mode === 'ON_DEMAND' && !automatic) {
    throw new ValidationError(
      `${operation} is not supported for stream ${stream.name} under account ${context.accountId} in ON_DEMAND mode.`,
    );
  }
  if (reshardingStreams >= CONCURRENT_RESHARDS_MAX) {
    throw new LimitExceededError(
      `Account ${context.accountId} already has ${reshardingStreams} streams being resharded; ` +
        `at most ${CONCURRENT_RESHARDS_MAX} can be at once. Retry once one of them is ACTIVE.`,
    );
  }
}

function requireReshardable(
  stream: StreamRecord,
  shardId: string,
  context: ReshardContext,
): ShardRecord {
  const shard = stream.shards.find((s) => s.shardId === shardId && s.pending !== true);
  if (shard === undefined) {
    throw new ResourceNotFoundError(
      `Could not find shard ${shardId} in stream ${stream.name} under account ${context.accountId}.`,
    );
  }
  if (!isOpen(shard)) {
    throw new ResourceInUseError(
      `Shard ${shardId} in stream ${stream.name} under account ${context.accountId} has already ` +
        `been merged or split, and thus is not eligible for merging or splitting.`,
    );
  }
  return shard;
}

function openShardsByRange(stream: StreamRecord): ShardRecord[] {
  return stream.shards.filter(isOpen).sort((a, b) => {
    const x = BigInt(a.hashKeyStart);
    const y = BigInt(b.hashKeyStart);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}
