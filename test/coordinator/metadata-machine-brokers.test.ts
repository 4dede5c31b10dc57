import fc from 'fast-check';
import { rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { InvalidArgumentError, ResourceNotFoundError } from '../../src/common/errors.js';
import { UNLIMITED_SHARD_LIMITS } from '../../src/common/limits.js';
import {
  applyCommand,
  withChanges,
  type MetadataChange,
  type MetadataCommand,
} from '../../src/coordinator/metadata-machine.js';
import { stateFromRecords, toRecord } from '../../src/coordinator/metadata-records.js';
import type { MetadataState } from '../../src/coordinator/model.js';
import { MetadataService } from '../../src/coordinator/metadata-service.js';
import { GroupCommitWriter } from '../../src/storage/group-commit.js';
import { openKvStore } from '../../src/storage/kv-store.js';
import { MetadataStore } from '../../src/storage/metadata-store.js';
import { tempDir } from '../helpers/node.js';
import { context, createStream, EMPTY, registerBroker, run } from './fixtures.js';

/** Brokers in the metadata machine: registration, up/down, and placement of new streams. */

function register(state: MetadataState, zone = '', id?: number): MetadataState {
  return registerBroker(state, zone, id);
}

function create(state: MetadataState, name: string, shardCount: number, rf = 3): MetadataState {
  return run(state, createStream(name, shardCount, rf));
}

function perBroker(state: MetadataState): { replicas: number[]; leaders: number[] } {
  const replicas = new Map([...state.brokers.keys()].map((id) => [id, 0]));
  const leaders = new Map(replicas);
  for (const stream of state.streams.values()) {
    for (const shard of stream.shards) {
      shard.replicas?.forEach((id, i) => {
        replicas.set(id, (replicas.get(id) ?? 0) + 1);
        if (i === 0) leaders.set(id, (leaders.get(id) ?? 0) + 1);
      });
    }
  }
  return { replicas: [...replicas.values()], leaders: [...leaders.values()] };
}

const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);

describe('brokers in the metadata machine', () => {
  it('a registration retried with the same token gets the same id, never a second one', () => {
    const command = {
      type: 'registerBroker',
      zone: '',
      api: '10.0.0.1:7400',
      peer: '10.0.0.1:7401',
      nowMs: 5,
      token: 'folder-token-1',
    } as const;
    let state = run(EMPTY, command);
    expect([...state.brokers.keys()]).toEqual([1]);
    // The first answer was lost; the broker asks again, even from a new address.
    state = run(state, { ...command, api: '10.0.0.9:7400', peer: '10.0.0.9:7401' });
    expect([...state.brokers.keys()]).toEqual([1]);
    expect(state.brokers.get(1)?.api).toBe('10.0.0.9:7400');
    // Another folder's token is another broker.
    state = run(state, { ...command, token: 'folder-token-2' });
    expect([...state.brokers.keys()]).toEqual([1, 2]);
  });

  it('refuses an id that another data folder registered (a broker that lost its disk gets a new id)', () => {
    const state = run(EMPTY, {
      type: 'registerBroker',
      id: 4,
      zone: '',
      api: 'a:1',
      peer: 'a:2',
      nowMs: 1,
      token: 'first-folder',
    });
    expect(() =>
      applyCommand(
        state,
        {
          type: 'registerBroker',
          id: 4,
          zone: '',
          api: 'a:1',
          peer: 'a:2',
          nowMs: 2,
          token: 'wiped-and-restarted',
        },
        context,
      ),
    ).toThrow(InvalidArgumentError);
    // The same folder comes back fine.
    const again = applyCommand(
      state,
      {
        type: 'registerBroker',
        id: 4,
        zone: '',
        api: 'b:1',
        peer: 'b:2',
        nowMs: 3,
        token: 'first-folder',
        returning: true,
      },
      context,
    );
    expect(again).toContainEqual(expect.objectContaining({ kind: 'broker', id: 4 }));
  });

  it('refuses a returning broker the metadata does not know (the coordinators lost their metadata)', () => {
    expect(() =>
      applyCommand(
        EMPTY,
        {
          type: 'registerBroker',
          id: 2,
          zone: '',
          api: 'a:1',
          peer: 'a:2',
          nowMs: 1,
          returning: true,
        },
        context,
      ),
    ).toThrow(/not known to these coordinators/);
  });

  it('gives new brokers the next id, keeps explicit ids, and never reuses one', () => {
    let state = register(register(EMPTY));
    expect([...state.brokers.keys()]).toEqual([1, 2]);
    state = register(state, '', 7);
    state = register(state);
    expect([...state.brokers.keys()]).toEqual([1, 2, 7, 8]);
    expect(state.brokers.get(7)).toMatchObject({ id: 7, state: 'up', registeredMs: 1_000 });
  });

  it('re-registering with the same addresses changes nothing; new addresses or zone update it', () => {
    const state = register(EMPTY, 'a');
    const same = applyCommand(
      state,
      {
        type: 'registerBroker',
        id: 1,
        zone: 'a',
        api: '127.0.0.2:7400',
        peer: '127.0.0.2:7401',
        nowMs: 5,
      },
      context,
    );
    expect(same).toEqual([]);
    const moved = run(state, {
      type: 'registerBroker',
      id: 1,
      zone: 'b',
      api: '127.0.0.9:7400',
      peer: '127.0.0.9:7401',
      nowMs: 5,
    });
    expect(moved.brokers.get(1)).toMatchObject({
      zone: 'b',
      api: '127.0.0.9:7400',
      registeredMs: 1_000,
    });
  });

  it('marks brokers down and up; an unknown broker is ResourceNotFoundException', () => {
    let state = register(EMPTY);
    state = run(state, { type: 'setBrokerState', id: 1, state: 'down', nowMs: 9 });
    expect(state.brokers.get(1)).toMatchObject({ state: 'down', stateSinceMs: 9 });
    expect(
      applyCommand(state, { type: 'setBrokerState', id: 1, state: 'down', nowMs: 10 }, context),
    ).toEqual([]);
    expect(() =>
      applyCommand(state, { type: 'setBrokerState', id: 5, state: 'up', nowMs: 1 }, context),
    ).toThrow(ResourceNotFoundError);
    // Registering again brings it back up.
    state = register(state, '', 1);
    expect(state.brokers.get(1)?.state).toBe('up');
  });

  it('leaves shards without replica sets when no broker registered (a single node)', () => {
    const state = create(EMPTY, 'solo', 2, 1);
    for (const shard of state.streams.get('solo')?.shards ?? [])
      expect(shard.replicas).toBeUndefined();
  });

  it('places replica sets on distinct brokers, balanced for replicas and leaders across streams', () => {
    let state = EMPTY;
    for (let i = 0; i < 5; i++) state = register(state);
    const sizes = [4, 3, 7, 1, 2, 5];
    sizes.forEach((n, i) => {
      state = create(state, `s${i}`, n);
      for (const shard of state.streams.get(`s${i}`)?.shards ?? []) {
        expect(new Set(shard.replicas).size).toBe(3);
      }
      const { replicas, leaders } = perBroker(state);
      expect(spread(replicas)).toBeLessThanOrEqual(1);
      expect(spread(leaders)).toBeLessThanOrEqual(1);
    });
  });

  it('moves only the order of older shards’ replicas when balancing leaders, never their members', () => {
    let state = EMPTY;
    for (let i = 0; i < 4; i++) state = register(state);
    const before = new Map<string, string[]>();
    for (let i = 0; i < 6; i++) {
      state = create(state, `s${i}`, i + 1, 2);
      for (const stream of state.streams.values()) {
        stream.shards.forEach((shard, k) => {
          const key = `${stream.name}/${k}`;
          const members = [...(shard.replicas ?? [])].sort().join(',');
          const seen = before.get(key);
          if (seen !== undefined) expect(members).toBe(seen[0]);
          before.set(key, [members]);
        });
      }
      expect(spread(perBroker(state).leaders)).toBeLessThanOrEqual(1);
    }
  });

  it('uses only brokers that are up, and refuses a replication factor larger than them', () => {
    let state = EMPTY;
    for (let i = 0; i < 4; i++) state = register(state);
    state = run(state, { type: 'setBrokerState', id: 2, state: 'down', nowMs: 3 });
    state = create(state, 'ok', 6);
    for (const shard of state.streams.get('ok')?.shards ?? [])
      expect(shard.replicas).not.toContain(2);
    state = run(state, { type: 'setBrokerState', id: 3, state: 'down', nowMs: 4 });
    expect(() => create(state, 'too-many', 1, 3)).toThrow(InvalidArgumentError);
  });

  it('spreads every shard across zones', () => {
    let state = EMPTY;
    for (const zone of ['a', 'b', 'c', 'a', 'b', 'c']) state = register(state, zone);
    state = create(state, 'zoned', 12);
    for (const shard of state.streams.get('zoned')?.shards ?? []) {
      const zones = new Set(shard.replicas?.map((id) => state.brokers.get(id)?.zone));
      expect(zones.size).toBe(3);
    }
  });
});

describe('brokers in the metadata service', () => {
  it('persists registered brokers, their state and the next id across a restart', async () => {
    const dir = await tempDir('rheos-meta-');
    const open = async () => {
      const kv = await openKvStore(dir);
      const writer = new GroupCommitWriter(kv, {
        onFatal: (error) => {
          throw error;
        },
      });
      const service = await MetadataService.open(new MetadataStore(kv, writer), {
        context,
        clock: new ManualClock(1_000),
      });
      return {
        service,
        close: async () => {
          await service.close();
          await writer.drain();
          await kv.close();
        },
      };
    };
    try {
      const first = await open();
      await first.service.propose({
        type: 'registerBroker',
        zone: 'a',
        api: 'h:1',
        peer: 'h:2',
        nowMs: 5,
      });
      await first.service.propose({
        type: 'registerBroker',
        zone: 'b',
        api: 'h:3',
        peer: 'h:4',
        nowMs: 6,
      });
      await first.service.propose({ type: 'setBrokerState', id: 2, state: 'down', nowMs: 7 });
      await first.close();
      const second = await open();
      expect([...second.service.state.brokers.values()]).toEqual([
        {
          id: 1,
          zone: 'a',
          api: 'h:1',
          peer: 'h:2',
          registeredMs: 5,
          state: 'up',
          stateSinceMs: 5,
        },
        {
          id: 2,
          zone: 'b',
          api: 'h:3',
          peer: 'h:4',
          registeredMs: 6,
          state: 'down',
          stateSinceMs: 7,
        },
      ]);
      await second.service.propose({
        type: 'registerBroker',
        zone: 'c',
        api: 'h:5',
        peer: 'h:6',
        nowMs: 8,
      });
      expect([...second.service.state.brokers.keys()]).toEqual([1, 2, 3]);
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('determinism of the metadata machine', () => {
  /** The state as a member that restarted sees it: records read back in key order. */
  function reloaded(state: MetadataState): MetadataState {
    const changes: MetadataChange[] = [
      ...[...state.streams.values()].map((value): MetadataChange => ({
        kind: 'stream',
        name: value.name,
        value,
      })),
      ...[...state.brokers.values()].map((value): MetadataChange => ({
        kind: 'broker',
        id: value.id,
        value,
      })),
      { kind: 'counters', value: state.counters },
      { kind: 'iteratorKeys', value: state.iteratorKeys },
    ];
    const records = changes
      .map(toRecord)
      .map(([name, value]) => [name, JSON.parse(JSON.stringify(value)) as unknown] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return stateFromRecords(new Map(records));
  }

  it('gives a restarted member the same changes as one that never stopped', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('z0', 'z1', 'z2'), { minLength: 3, maxLength: 6 }),
        fc.array(
          fc.record({
            name: fc.stringMatching(/^[a-z]{1,3}$/),
            shards: fc.integer({ min: 1, max: 6 }),
            rf: fc.integer({ min: 1, max: 3 }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        (zones, streams) => {
          let live = EMPTY;
          for (const zone of zones) live = register(live, zone);
          for (const { name, shards, rf } of streams) {
            if (live.streams.has(name)) continue;
            const command: MetadataCommand = {
              type: 'createStream',
              name,
              shardCount: shards,
              mode: 'PROVISIONED',
              shardLimits: UNLIMITED_SHARD_LIMITS,
              replicationFactor: rf,
              tags: {},
              nowMs: 2_000,
            };
            const fromLive = applyCommand(live, command, context);
            const fromDisk = applyCommand(reloaded(live), command, context);
            expect(fromDisk).toEqual(fromLive);
            live = withChanges(live, fromLive);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
