import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  InternalFailureError,
  InvalidArgumentError,
  NotLeaderError,
  ServiceUnavailableError,
} from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/logger.js';
import {
  CoordinatorLink,
  type CoordinatorLinkOptions,
} from '../../src/coordinator/coordinator-link.js';
import {
  CoordinatorServiceService as Coordinator,
  type HeartbeatRequest,
  type HeartbeatResponse,
} from '../../src/gen/rheos/v1/coordinator.js';
import type { CallContext } from '../../src/server/native-api.js';
import { startGrpcServer, type CoordinatorApi } from '../../src/server/grpc-server.js';

/**
 * The link from brokers, coordinators and the CLI to the coordinator quorum, against real gRPC
 * servers on loopback whose Heartbeat answers (or fails) as each test says.
 */

type Answer = (request: HeartbeatRequest, context: CallContext) => HeartbeatResponse;

interface FakeCoordinator {
  readonly endpoint: string;
  /** Heartbeat calls this server has received, with the context each came with. */
  readonly calls: CallContext[];
  answer: Answer;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const version =
  (metadataVersion: number): Answer =>
  () => ({ metadataVersion });

function notImplemented(): Promise<never> {
  return Promise.reject(new InvalidArgumentError('not in this test'));
}

async function coordinator(answer: Answer): Promise<FakeCoordinator> {
  const fake = { endpoint: '', calls: [] as CallContext[], answer };
  const api: CoordinatorApi = {
    registerBroker: notImplemented,
    getMetadata: notImplemented,
    describeCluster: notImplemented,
    setBrokerDraining: notImplemented,
    heartbeat: (request, context) => {
      fake.calls.push(context);
      try {
        return Promise.resolve(fake.answer(request, context));
      } catch (error) {
        return Promise.reject(error);
      }
    },
  };
  const server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    coordinator: api,
    logger: silentLogger(),
  });
  cleanups.push(() => server.close(0));
  fake.endpoint = `127.0.0.1:${server.port}`;
  return fake;
}

/** An endpoint where nothing listens: a port that was free a moment ago. */
async function closedEndpoint(): Promise<string> {
  const server = createServer();
  const port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

function link(
  endpoints: readonly string[],
  options: Partial<CoordinatorLinkOptions> = {},
): CoordinatorLink {
  const l = new CoordinatorLink({
    endpoints,
    deadlineMs: 5_000,
    maxAttempts: 6,
    backoff: { initialMs: 1, maxMs: 5 },
    ...options,
  });
  cleanups.push(() => l.close());
  return l;
}

function heartbeat(
  l: CoordinatorLink,
  idempotent = true,
  options: { forwarded?: boolean; endpoint?: string } = {},
): Promise<HeartbeatResponse> {
  const request: HeartbeatRequest = {
    clusterId: 'c',
    brokerId: 1,
    metadataVersion: 0,
    replicas: [],
    session: 'test',
    sequence: 1,
  };
  return l.call(Coordinator.heartbeat, request, idempotent, options);
}

/** The error a promise rejects with (failing the test if it resolves). */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail');
}

describe('coordinator link', () => {
  it('follows a NOT_LEADER hint to the leader, and calls the leader first from then on', async () => {
    const leader = await coordinator(version(7));
    const follower = await coordinator(() => {
      throw new NotLeaderError('not the leader', {
        leader: { brokerId: 2, endpoint: leader.endpoint },
      });
    });
    const l = link([follower.endpoint, leader.endpoint]);
    expect(l.current).toBe(follower.endpoint);

    expect(await heartbeat(l)).toEqual({ metadataVersion: 7 });
    expect(follower.calls).toHaveLength(1);
    expect(leader.calls).toHaveLength(1);
    expect(l.current).toBe(leader.endpoint);

    expect(await heartbeat(l)).toEqual({ metadataVersion: 7 });
    expect(follower.calls).toHaveLength(1);
    expect(leader.calls).toHaveLength(2);
  });

  it('remembers a leader a hint led to even when it was not in its list (the CLI given one address)', async () => {
    const leader = await coordinator(version(3));
    const follower = await coordinator(() => {
      throw new NotLeaderError('not the leader', {
        leader: { brokerId: 2, endpoint: leader.endpoint },
      });
    });
    const l = link([follower.endpoint]);
    expect(await heartbeat(l)).toEqual({ metadataVersion: 3 });
    expect(l.current).toBe(leader.endpoint);
    expect(await heartbeat(l)).toEqual({ metadataVersion: 3 });
    expect(follower.calls).toHaveLength(1);
    expect(leader.calls).toHaveLength(2);
  });

  it('moves on from a coordinator that never answers for an idempotent call, and starts elsewhere next time', async () => {
    const silent = await coordinator(() => {
      throw new Error('unused');
    });
    // Never answers: a host that drops packets.
    silent.answer = () => new Promise<never>(() => undefined) as never;
    const good = await coordinator(version(5));
    const l = link([silent.endpoint, good.endpoint], { deadlineMs: 200 });
    expect(await heartbeat(l)).toEqual({ metadataVersion: 5 });
    expect(l.current).toBe(good.endpoint);
    // A call that must not be repeated is not: its outcome is unknown.
    const again = link([silent.endpoint, good.endpoint], { deadlineMs: 200 });
    const error = await failure(heartbeat(again, false));
    expect(error.name).toBe('InternalFailureException');
    expect(good.calls).toHaveLength(1);
  });

  it('follows a hint for a call that is not idempotent too (NOT_LEADER is definite)', async () => {
    const leader = await coordinator(version(3));
    const follower = await coordinator(() => {
      throw new NotLeaderError('not the leader', {
        leader: { brokerId: 2, endpoint: leader.endpoint },
      });
    });
    const l = link([follower.endpoint, leader.endpoint]);
    expect(await heartbeat(l, false)).toEqual({ metadataVersion: 3 });
    expect(follower.calls).toHaveLength(1);
    expect(leader.calls).toHaveLength(1);
  });

  it('moves on from NOT_LEADER without a hint to the next coordinator', async () => {
    const electing = await coordinator(() => {
      throw new NotLeaderError('election under way');
    });
    const leader = await coordinator(version(5));
    const l = link([electing.endpoint, leader.endpoint]);
    expect(await heartbeat(l)).toEqual({ metadataVersion: 5 });
    expect(electing.calls).toHaveLength(1);
    expect(leader.calls).toHaveLength(1);
    expect(l.current).toBe(leader.endpoint);
  });

  it('skips an endpoint where nothing listens for an idempotent call', async () => {
    const dead = await closedEndpoint();
    const live = await coordinator(version(11));
    const l = link([dead, live.endpoint]);
    expect(await heartbeat(l, true)).toEqual({ metadataVersion: 11 });
    expect(live.calls).toHaveLength(1);
    expect(l.current).toBe(live.endpoint);
    // The next call goes straight to the coordinator that answered.
    await heartbeat(l, true);
    expect(live.calls).toHaveLength(2);
  });

  it('skips an endpoint where nothing listens even for a call that is not idempotent', async () => {
    // A call that found no connection was never sent: a definite failure, safe to send elsewhere.
    const dead = await closedEndpoint();
    const live = await coordinator(version(12));
    const l = link([dead, live.endpoint]);
    expect(await heartbeat(l, false)).toEqual({ metadataVersion: 12 });
    expect(live.calls).toHaveLength(1);
  });

  it('fails with ServiceUnavailable once maxAttempts NOT_LEADER answers without a hint', async () => {
    const notLeader = () => {
      throw new NotLeaderError('election under way');
    };
    const a = await coordinator(notLeader);
    const b = await coordinator(notLeader);
    const l = link([a.endpoint, b.endpoint], { maxAttempts: 5 });
    const error = await failure(heartbeat(l));
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error.name).toBe('ServiceUnavailableException');
    expect(error.cause).toBeInstanceOf(NotLeaderError);
    // Five attempts in all, taking the coordinators in turn.
    expect(a.calls).toHaveLength(3);
    expect(b.calls).toHaveLength(2);
  });

  it('fails with ServiceUnavailable when hints lead in circles until attempts run out', async () => {
    const servers: FakeCoordinator[] = [];
    const pointToOther = (i: number) => () => {
      const other = servers[1 - i] as FakeCoordinator;
      throw new NotLeaderError('stale hint', { leader: { brokerId: 9, endpoint: other.endpoint } });
    };
    servers.push(await coordinator(pointToOther(0)));
    servers.push(await coordinator(pointToOther(1)));
    const [a, b] = servers as [FakeCoordinator, FakeCoordinator];
    const l = link([a.endpoint, b.endpoint], { maxAttempts: 4 });
    const error = await failure(heartbeat(l));
    expect(error.name).toBe('ServiceUnavailableException');
    expect(a.calls.length + b.calls.length).toBe(4);
  });

  it('returns a definite error that is not about routing at once, trying no other endpoint', async () => {
    const invalid = await coordinator(() => {
      throw new InvalidArgumentError('bad cluster id');
    });
    const other = await coordinator(version(1));
    const l = link([invalid.endpoint, other.endpoint]);
    const error = await failure(heartbeat(l));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.name).toBe('InvalidArgumentException');
    expect(error.message).toBe('bad cluster id');
    expect(invalid.calls).toHaveLength(1);
    expect(other.calls).toHaveLength(0);
  });

  it('returns an internal failure at once, even for an idempotent call', async () => {
    const failing = await coordinator(() => {
      throw new InternalFailureError('disk on fire');
    });
    const other = await coordinator(version(1));
    const l = link([failing.endpoint, other.endpoint]);
    const error = await failure(heartbeat(l, true));
    expect(error.name).toBe('InternalFailureException');
    expect(failing.calls).toHaveLength(1);
    expect(other.calls).toHaveLength(0);
  });

  it('retries an indeterminate ServiceUnavailable elsewhere only when the call is idempotent', async () => {
    const unsure = await coordinator(() => {
      throw new ServiceUnavailableError('shutting down', { indeterminate: true });
    });
    const other = await coordinator(version(4));
    const l = link([unsure.endpoint, other.endpoint]);

    const error = await failure(heartbeat(l, false));
    expect(error.name).toBe('ServiceUnavailableException');
    expect(unsure.calls).toHaveLength(1);
    expect(other.calls).toHaveLength(0);

    expect(await heartbeat(l, true)).toEqual({ metadataVersion: 4 });
    expect(unsure.calls).toHaveLength(2);
    expect(other.calls).toHaveLength(1);
  });

  it('retries a definite ServiceUnavailable elsewhere even when the call is not idempotent', async () => {
    const busy = await coordinator(() => {
      throw new ServiceUnavailableError('not ready');
    });
    const other = await coordinator(version(4));
    const l = link([busy.endpoint, other.endpoint]);
    expect(await heartbeat(l, false)).toEqual({ metadataVersion: 4 });
    expect(busy.calls).toHaveLength(1);
    expect(other.calls).toHaveLength(1);
  });

  it('tells the server a call was forwarded only when it was', async () => {
    const server = await coordinator(version(1));
    const l = link([server.endpoint]);
    await heartbeat(l, true, { forwarded: true });
    await heartbeat(l, true);
    await heartbeat(l, true, { forwarded: false });
    expect(server.calls.map((c) => c.forwarded)).toEqual([true, false, false]);
  });

  it('keeps the forwarded mark on the calls that follow a hint', async () => {
    const leader = await coordinator(version(2));
    const follower = await coordinator(() => {
      throw new NotLeaderError('not the leader', {
        leader: { brokerId: 2, endpoint: leader.endpoint },
      });
    });
    const l = link([follower.endpoint, leader.endpoint]);
    await heartbeat(l, true, { forwarded: true });
    expect(follower.calls.map((c) => c.forwarded)).toEqual([true]);
    expect(leader.calls.map((c) => c.forwarded)).toEqual([true]);
  });

  it('tries the endpoint it is given first', async () => {
    const a = await coordinator(version(1));
    const b = await coordinator(version(2));
    const l = link([a.endpoint, b.endpoint]);
    expect(await heartbeat(l, true, { endpoint: b.endpoint })).toEqual({ metadataVersion: 2 });
    expect(a.calls).toHaveLength(0);
    expect(l.current).toBe(b.endpoint);
  });

  it('fails every call once closed, without calling anyone', async () => {
    const server = await coordinator(version(1));
    const l = link([server.endpoint]);
    l.close();
    const error = await failure(heartbeat(l));
    expect(error.name).toBe('ServiceUnavailableException');
    expect(server.calls).toHaveLength(0);
  });

  it('refuses to be built without endpoints', () => {
    expect(() => new CoordinatorLink({ endpoints: [] })).toThrow('no coordinator endpoints');
  });
});
