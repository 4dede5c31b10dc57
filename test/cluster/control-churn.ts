import { performance } from 'node:perf_hooks';
import type { RheosClient } from '../../src/client/client.js';
import { RheosError } from '../../src/common/errors.js';
import { StreamStatus } from '../../src/gen/rheos/v1/stream.js';

/**
 * A stream of control-plane calls (create a stream, tag it, delete an older one) whose outcomes
 * are recorded as ok, definite failure or indeterminate, and checked against what the
 * coordinators say afterwards: every acknowledged change is there, nothing that definitely failed
 * is, and whatever was indeterminate may be either.
 */

export type Outcome = 'ok' | 'fail' | 'info';

export interface ControlOp {
  readonly kind: 'create' | 'tag' | 'delete';
  readonly stream: string;
  readonly tag?: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly outcome: Outcome;
  readonly error?: string;
}

export interface ChurnOptions {
  readonly client: RheosClient;
  /** performance.now() the op times count from. */
  readonly t0: number;
  readonly prefix: string;
  readonly shouldStop: () => boolean;
}

export async function churnControlPlane(options: ChurnOptions): Promise<ControlOp[]> {
  const { client, t0, prefix } = options;
  const ops: ControlOp[] = [];
  const now = () => performance.now() - t0;
  const run = async (
    kind: ControlOp['kind'],
    stream: string,
    call: () => Promise<unknown>,
    tag?: string,
  ): Promise<Outcome> => {
    const startMs = now();
    let outcome: Outcome = 'ok';
    let error: string | undefined;
    try {
      await call();
    } catch (e) {
      outcome = e instanceof RheosError && !e.indeterminate ? 'fail' : 'info';
      error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    ops.push({
      kind,
      stream,
      ...(tag === undefined ? {} : { tag }),
      startMs,
      endMs: now(),
      outcome,
      ...(error === undefined ? {} : { error }),
    });
    return outcome;
  };
  const created: string[] = [];
  for (let i = 0; !options.shouldStop(); i++) {
    const stream = `${prefix}-${i}`;
    const outcome = await run('create', stream, () =>
      client.createStream({ streamName: stream, shardCount: 1 }),
    );
    if (outcome !== 'fail') {
      created.push(stream);
      // Tags change ACTIVE streams only; an indeterminate creation may have left nothing.
      await client.waitForStreamActive(stream, 10_000).catch(() => undefined);
      await run(
        'tag',
        stream,
        () => client.addTagsToStream({ streamName: stream, tags: { n: String(i) } }),
        String(i),
      );
    }
    if (i % 3 === 2 && created.length > 1) {
      const victim = created.shift() as string;
      await run('delete', victim, () => client.deleteStream({ streamName: victim }));
    }
    // About ten calls a second: a steady stream, not a flood of streams for the brokers to open.
    await new Promise((resolve) => setTimeout(resolve, outcome === 'ok' ? 100 : 200));
  }
  return ops;
}

export interface ChurnCheck {
  readonly acknowledged: number;
  readonly definiteFailures: number;
  readonly indeterminate: number;
  /** Streams that should exist and do (created, not deleted, all acknowledged). */
  readonly survivors: readonly string[];
  readonly problems: readonly string[];
}

/** Compares the recorded calls with the streams and tags the control plane reports now. */
export async function checkChurn(
  client: RheosClient,
  ops: readonly ControlOp[],
): Promise<ChurnCheck> {
  const problems: string[] = [];
  const byStream = new Map<string, ControlOp[]>();
  for (const op of ops) byStream.set(op.stream, [...(byStream.get(op.stream) ?? []), op]);
  const survivors: string[] = [];
  for (const [stream, streamOps] of byStream) {
    const create = streamOps.find((o) => o.kind === 'create');
    const del = streamOps.find((o) => o.kind === 'delete');
    const tag = streamOps.find((o) => o.kind === 'tag');
    let status: StreamStatus | undefined;
    try {
      const { streamDescriptionSummary } = await client.describeStreamSummary({
        streamName: stream,
      });
      status = streamDescriptionSummary?.streamStatus;
    } catch (error) {
      if (!(error instanceof RheosError && error.name === 'ResourceNotFoundException')) throw error;
    }
    const exists = status !== undefined && status !== StreamStatus.STREAM_STATUS_DELETING;
    if (del?.outcome === 'ok') {
      if (exists) problems.push(`${stream}: deleted (acknowledged) but still ${status}`);
      continue;
    }
    if (create?.outcome === 'fail' && status !== undefined) {
      problems.push(`${stream}: creation failed definitely, yet the stream exists`);
    }
    if (create?.outcome === 'ok' && del === undefined) {
      if (!exists) {
        problems.push(`${stream}: created (acknowledged) but missing`);
        continue;
      }
      survivors.push(stream);
      if (tag?.outcome === 'ok') {
        const { tags } = await client.listTagsForStream({ streamName: stream });
        if (!tags.some((t) => t.key === 'n' && t.value === tag.tag)) {
          problems.push(`${stream}: tag n=${tag.tag} acknowledged but missing`);
        }
      }
    }
  }
  return {
    acknowledged: ops.filter((o) => o.outcome === 'ok').length,
    definiteFailures: ops.filter((o) => o.outcome === 'fail').length,
    indeterminate: ops.filter((o) => o.outcome === 'info').length,
    survivors,
    problems,
  };
}
