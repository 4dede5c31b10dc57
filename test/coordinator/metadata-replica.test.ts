import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { GroupMessage, PeerLane, PeerTransport } from '../../src/broker/peer-transport.js';
import { RaftHost } from '../../src/broker/raft-host.js';
import { systemClock } from '../../src/common/clock.js';
import {
  InternalFailureError,
  LimitExceededError,
  NotLeaderError,
  ResourceInUseError,
} from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/logger.js';
import { UNLIMITED_SHARD_LIMITS } from '../../src/common/limits.js';
import { MetadataReplica, openMetadataReplica } from '../../src/coordinator/metadata-replica.js';
import { DEFAULT_ACCOUNT_LIMITS } from '../../src/coordinator/model.js';
import type { NodeId } from '../../src/raft/types.js';
import { GroupCommitWriter } from '../../src/storage/group-commit.js';
import { openKvStore, type KvStore } from '../../src/storage/kv-store.js';
import { tempDir } from '../helpers/node.js';

/**
 * The coordinator's replicated metadata: three members of the metadata Raft group, each on its
 * own RaftHost and LevelDB, connected by an in-process transport that a test can cut.
 */

class Loopback {
  private readonly handlers = new Map<NodeId, (from: NodeId, m: readonly GroupMessage[]) => void>();
  readonly down = new Set<NodeId>();

  transport(self: NodeId): PeerTransport {
    return {
      send: (to: NodeId, messages: readonly GroupMessage[], _lane: PeerLane) => {
        if (this.down.has(self) || this.down.has(to)) return;
        setImmediate(() => {
          if (this.down.has(self) || this.down.has(to)) return;
          this.handlers.get(to)?.(self, messages);
        });
      },
      onReceive: (handler) => this.handlers.set(self, handler),
      close: () => Promise.resolve(),
    };
  }
}

const context = { accountId: '123456789012', limits: DEFAULT_ACCOUNT_LIMITS };
const VOTERS = [1, 2, 3];

interface Member {
  id: number;
  dir: string;
  kv: KvStore;
  writer: GroupCommitWriter;
  host: RaftHost;
  replica: MetadataReplica;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface MemberOptions {
  readonly snapshotEveryEntries?: number;
  readonly proposalTimeoutMs?: number;
  readonly maxPendingProposals?: number;
  readonly maxPendingReads?: number;
}

async function startMember(
  net: Loopback,
  id: number,
  dir: string,
  options: MemberOptions = {},
): Promise<Member> {
  const kv = await openKvStore(dir);
  const writer = new GroupCommitWriter(kv, {
    onFatal: (error) => {
      throw error;
    },
  });
  const host = new RaftHost({
    nodeId: id,
    kv,
    writer,
    transport: net.transport(id),
    clock: systemClock,
    logger: silentLogger(),
    addressOf: (n) => `127.0.0.${n + 1}:7600`,
    tickMs: 10,
  });
  const replica = await openMetadataReplica({
    host,
    kv,
    voters: VOTERS,
    clock: systemClock,
    context,
    ...options,
  });
  host.start();
  return { id, dir, kv, writer, host, replica };
}

async function stopMember(m: Member): Promise<void> {
  await m.host.stop();
  await m.writer.drain();
  await m.kv.close();
}

async function startGroup(
  options: MemberOptions = {},
): Promise<{ net: Loopback; members: Member[] }> {
  const net = new Loopback();
  const members: Member[] = [];
  for (const id of VOTERS) {
    const dir = await tempDir('rheos-coord-');
    const member = await startMember(net, id, dir, options);
    members.push(member);
    cleanups.push(async () => {
      await stopMember(members[id - 1] as Member).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    });
  }
  return { net, members };
}

async function waitFor<T>(
  what: string,
  probe: () => T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function leaderOf(members: readonly Member[], among = members): Member | undefined {
  return among.find((m) => m.replica.isLeader);
}

const register = (n: number) =>
  ({
    type: 'registerBroker',
    zone: `z${n % 3}`,
    api: `10.0.0.${n}:7400`,
    peer: `10.0.0.${n}:7401`,
    nowMs: 1_000 + n,
  }) as const;

describe('the coordinator metadata group', () => {
  it('applies every committed command on every member, and the proposer gets its result or the machine’s refusal', async () => {
    const { members } = await startGroup();
    const leader = await waitFor('a leader', () => leaderOf(members));
    for (let n = 1; n <= 3; n++) await leader.replica.propose(register(n));
    const create = {
      type: 'createStream',
      name: 'orders',
      shardCount: 4,
      mode: 'PROVISIONED',
      shardLimits: UNLIMITED_SHARD_LIMITS,
      replicationFactor: 3,
      tags: {},
      nowMs: 2_000,
    } as const;
    const changes = await leader.replica.propose(create);
    expect(changes.some((c) => c.kind === 'stream' && c.name === 'orders')).toBe(true);
    await expect(leader.replica.propose(create)).rejects.toBeInstanceOf(ResourceInUseError);
    // Followers hold the same state once they have applied as far.
    const index = leader.replica.appliedIndex;
    for (const m of members) {
      await waitFor(`member ${m.id} to apply ${index}`, () =>
        m.replica.appliedIndex >= index ? true : undefined,
      );
      expect([...m.replica.state.brokers.keys()]).toEqual([1, 2, 3]);
      expect(m.replica.state.streams.get('orders')).toEqual(
        leader.replica.state.streams.get('orders'),
      );
    }
    const follower = members.find((m) => m !== leader) as Member;
    await expect(follower.replica.propose(register(4))).rejects.toBeInstanceOf(NotLeaderError);
  });

  it('keeps every acknowledged change when the leader is cut off and another takes over', async () => {
    const { net, members } = await startGroup();
    const first = await waitFor('a leader', () => leaderOf(members));
    await first.replica.propose(register(1));
    net.down.add(first.id);
    // A change proposed on the cut-off leader is never acknowledged.
    // Settled into a value at once: it may fail before the test gets to look at it.
    const stranded = first.replica.propose(register(9)).then(
      () => 'acknowledged',
      (error: unknown) => error,
    );
    const rest = members.filter((m) => m !== first);
    const second = await waitFor('a new leader', () => leaderOf(members, rest));
    await second.replica.propose(register(2));
    expect(await stranded).toBeInstanceOf(InternalFailureError);
    net.down.delete(first.id);
    const index = second.replica.appliedIndex;
    await waitFor('the old leader to catch up', () =>
      first.replica.appliedIndex >= index ? true : undefined,
    );
    for (const m of members) expect([...m.replica.state.brokers.keys()]).toEqual([1, 2]);
  });

  it('a restarted member recovers the state it had applied from its own disk, then catches up', async () => {
    const { net, members } = await startGroup();
    const leader = await waitFor('a leader', () => leaderOf(members));
    await leader.replica.propose(register(1));
    const victim = members.find((m) => m !== leader) as Member;
    await waitFor('the victim to apply', () =>
      victim.replica.state.brokers.size === 1 ? true : undefined,
    );
    await stopMember(victim);
    await leader.replica.propose(register(2));
    const restarted = await startMember(net, victim.id, victim.dir);
    members[victim.id - 1] = restarted;
    expect([...restarted.replica.state.brokers.keys()]).toEqual([1]);
    await waitFor('the restarted member to catch up', () =>
      restarted.replica.state.brokers.size === 2 ? true : undefined,
    );
  });

  it('reads are linearizable on any member: a follower’s read sees every change acknowledged before it', async () => {
    const { members } = await startGroup();
    const leader = await waitFor('a leader', () => leaderOf(members));
    const follower = members.find((m) => m !== leader) as Member;
    for (let n = 1; n <= 5; n++) {
      await leader.replica.propose(register(n));
      // No waiting for the follower to apply: the read itself must catch up first.
      const state = await follower.replica.read();
      expect(state.brokers.size).toBe(n);
    }
  });

  it('a member cut off from the majority answers no read (it fails at its deadline)', async () => {
    const { net, members } = await startGroup();
    const leader = await waitFor('a leader', () => leaderOf(members));
    await leader.replica.propose(register(1));
    net.down.add(leader.id);
    const rest = members.filter((m) => m !== leader);
    const second = await waitFor('a new leader', () => leaderOf(members, rest));
    await second.replica.propose(register(2));
    // The old leader may still believe it leads: its read must not return its stale state.
    await expect(leader.replica.read()).rejects.toBeInstanceOf(Error);
    expect((await second.replica.read()).brokers.size).toBe(2);
  });

  it('compacts its log into snapshots of the metadata; a member that was away catches up from one, also after the others restarted', async () => {
    const options = { snapshotEveryEntries: 10 };
    const { net, members } = await startGroup(options);
    const leader = await waitFor('a leader', () => leaderOf(members));
    for (let n = 1; n <= 5; n++) await leader.replica.propose(register(n));
    const away = members.find((m) => m !== leader) as Member;
    await waitFor('the member to apply', () =>
      away.replica.state.brokers.size === 5 ? true : undefined,
    );
    await stopMember(away);
    for (let n = 6; n <= 45; n++) await leader.replica.propose(register(n));
    const others = members.filter((m) => m !== away);
    // The others compact past everything the absent member holds.
    const awayApplied = away.replica.appliedIndex;
    for (const m of others) {
      await waitFor(`member ${m.id} to compact`, () =>
        m.replica.store.trimPoint.index > awayApplied ? true : undefined,
      );
    }
    // Restarted, they can only send a snapshot read back from their disks.
    for (const m of others) {
      await stopMember(m);
      members[m.id - 1] = await startMember(net, m.id, m.dir, options);
    }
    const expected = members[others[0]!.id - 1]!.replica.state;
    expect(expected.brokers.size).toBe(45);
    const back = await startMember(net, away.id, away.dir, options);
    members[away.id - 1] = back;
    await waitFor('the absent member to catch up', () =>
      back.replica.state.brokers.size === 45 ? true : undefined,
    );
    expect(back.replica.store.trimPoint.index).toBeGreaterThan(awayApplied);
    // (Maps as sets: the snapshot and the disk list records in different orders.)
    const byId = (state: typeof expected) =>
      [...state.brokers.values()].sort((a, b) => a.id - b.id);
    expect(byId(back.replica.state)).toEqual(byId(expected));
    expect(back.replica.state.counters).toEqual(expected.counters);
    // The snapshot's records are on its disk: a restart finds the same metadata.
    await stopMember(back);
    const again = await startMember(net, away.id, away.dir, options);
    members[away.id - 1] = again;
    expect([...again.replica.state.brokers.keys()]).toHaveLength(45);
    // And the group goes on from there.
    const newLeader = await waitFor('a leader', () => leaderOf(members));
    await newLeader.replica.propose(register(46));
    await waitFor('everyone to apply the next change', () =>
      members.every((m) => m.replica.state.brokers.size === 46) ? true : undefined,
    );
  }, 30_000);

  it('a follower’s read in flight when its leader dies is answered by the next leader, not at its deadline', async () => {
    const { net, members } = await startGroup({ proposalTimeoutMs: 120_000 });
    const leader = await waitFor('a leader', () => leaderOf(members));
    await leader.replica.propose(register(1));
    const follower = members.find((m) => m !== leader) as Member;
    await waitFor('the follower to know its leader', () =>
      follower.replica.leaderId() === leader.id ? true : undefined,
    );
    net.down.add(leader.id);
    const read = follower.replica.read();
    const rest = members.filter((m) => m !== leader);
    const second = await waitFor('a new leader', () => leaderOf(members, rest));
    await second.replica.propose(register(2));
    // Without asking again, the read would wait for its 120 s deadline (the test's is 20 s).
    expect((await read).brokers.size).toBeGreaterThanOrEqual(1);
  }, 20_000);

  it('refuses changes and reads beyond its bounds with LimitExceededException, and serves those it took', async () => {
    const { members } = await startGroup({ maxPendingProposals: 2, maxPendingReads: 1 });
    const leader = await waitFor('a leader', () => leaderOf(members));
    // Asked in one go, before any of them can commit.
    const first = leader.replica.propose(register(1));
    const second = leader.replica.propose(register(2));
    await expect(leader.replica.propose(register(3))).rejects.toBeInstanceOf(LimitExceededError);
    await first;
    await second;
    const read = leader.replica.read();
    await expect(leader.replica.read()).rejects.toBeInstanceOf(LimitExceededError);
    expect((await read).brokers.size).toBe(2);
  });
});
