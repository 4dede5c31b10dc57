import { describe, expect, it, vi } from 'vitest';
import { MetadataMirror } from '../../src/broker/metadata-mirror.js';
import type { MetadataChange } from '../../src/coordinator/metadata-machine.js';
import { recordsOf, stateFromRecords } from '../../src/coordinator/metadata-records.js';
import type { MetadataState, StreamRecord } from '../../src/coordinator/model.js';
import { createStream, EMPTY, registerBroker, run } from '../coordinator/fixtures.js';

/** A broker's copy of the coordinator's metadata (src/broker/metadata-mirror.ts). */

/** The state as a broker receives it: the records as JSON, parsed back (all objects new). */
function overTheWire(state: MetadataState): MetadataState {
  const json = JSON.stringify(recordsOf(state));
  return stateFromRecords(new Map(Object.entries(JSON.parse(json) as Record<string, unknown>)));
}

function rotateKey(state: MetadataState, secret: string, nowMs: number, keep = 3): MetadataState {
  return run(state, {
    type: 'rotateIteratorKey',
    secretBase64: Buffer.from(secret).toString('base64'),
    nowMs,
    keep,
  });
}

function stream(state: MetadataState, name: string): StreamRecord {
  const record = state.streams.get(name);
  if (record === undefined) throw new Error(`no stream ${name}`);
  return record;
}

function activate(state: MetadataState, name: string): MetadataState {
  const { incarnation } = stream(state, name);
  return run(state, { type: 'setStreamStatus', name, incarnation, status: 'ACTIVE' });
}

/** Two brokers, two ACTIVE streams and one iterator key. */
function baseState(): MetadataState {
  let state = registerBroker(EMPTY, 'a');
  state = registerBroker(state, 'b');
  state = activate(run(state, createStream('alpha', 2, 2)), 'alpha');
  state = activate(run(state, createStream('beta', 1, 2)), 'beta');
  return rotateKey(state, 'first', 3_000);
}

/** A mirror with every change it announces collected. */
function watched(fetch?: () => Promise<void>): {
  mirror: MetadataMirror;
  calls: Array<{ changes: readonly MetadataChange[]; state: MetadataState }>;
} {
  const mirror = new MetadataMirror(fetch);
  const calls: Array<{ changes: readonly MetadataChange[]; state: MetadataState }> = [];
  mirror.onChange((changes, state) => calls.push({ changes, state }));
  return { mirror, calls };
}

function sortChanges(changes: readonly MetadataChange[]): string[] {
  return changes
    .map((c) =>
      c.kind === 'stream' ? `stream:${c.name}` : c.kind === 'broker' ? `broker:${c.id}` : c.kind,
    )
    .sort();
}

describe('metadata records', () => {
  it('survive a JSON round trip through recordsOf and stateFromRecords unchanged', () => {
    let state = baseState();
    state = run(state, { type: 'addTags', name: 'beta', tags: { team: 'x' } });
    state = run(state, { type: 'deleteStream', name: 'alpha' });
    state = run(state, { type: 'setBrokerState', id: 2, state: 'down', nowMs: 4_000 });
    state = rotateKey(state, 'second', 5_000);
    const copy = overTheWire(state);
    expect(copy).toEqual(state);
    // Broker ids come back as numbers, not as the strings of the record names.
    expect([...copy.brokers.keys()]).toEqual([1, 2]);
    expect(copy.counters).toEqual(state.counters);
    expect(copy.iteratorKeys.map((k) => k.id)).toEqual([1, 2]);
  });

  it('round-trip the empty state to the empty state', () => {
    expect(overTheWire(EMPTY)).toEqual(EMPTY);
  });
});

describe('metadata mirror versions', () => {
  it('starts empty at version 0 and ignores version 0', () => {
    const { mirror, calls } = watched();
    expect(mirror.version).toBe(0);
    expect(mirror.state.streams.size).toBe(0);
    expect(mirror.update(0, baseState())).toBe(false);
    expect(mirror.version).toBe(0);
    expect(mirror.state.streams.size).toBe(0);
    expect(calls).toEqual([]);
  });

  it('takes a newer version and ignores an equal or older one, keeping its state', () => {
    const { mirror, calls } = watched();
    const v5 = baseState();
    expect(mirror.update(5, v5)).toBe(true);
    expect(mirror.version).toBe(5);
    expect(mirror.state).toBe(v5);

    const other = run(v5, createStream('gamma', 1, 2));
    expect(mirror.update(5, other)).toBe(false);
    expect(mirror.update(4, other)).toBe(false);
    expect(mirror.version).toBe(5);
    expect(mirror.state).toBe(v5);
    expect(calls).toHaveLength(1);

    expect(mirror.update(9, other)).toBe(true);
    expect(mirror.version).toBe(9);
    expect(mirror.state).toBe(other);
    expect(calls).toHaveLength(2);
  });

  it('announces every stream, broker and the iterator keys of the first state', () => {
    const { mirror, calls } = watched();
    const state = baseState();
    mirror.update(1, state);
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call?.state).toBe(state);
    expect(sortChanges(call?.changes ?? [])).toEqual([
      'broker:1',
      'broker:2',
      'iteratorKeys',
      'stream:alpha',
      'stream:beta',
    ]);
    expect(call?.changes).toContainEqual({
      kind: 'stream',
      name: 'alpha',
      value: stream(state, 'alpha'),
    });
    expect(call?.changes).toContainEqual({ kind: 'broker', id: 2, value: state.brokers.get(2) });
    expect(call?.changes).toContainEqual({ kind: 'iteratorKeys', value: state.iteratorKeys });
  });

  it('announces nothing for a newer version whose records are equal copies', () => {
    const { mirror, calls } = watched();
    const state = baseState();
    mirror.update(1, state);
    const copy = overTheWire(state);
    expect(copy.streams.get('alpha')).not.toBe(state.streams.get('alpha'));
    expect(mirror.update(2, copy)).toBe(true);
    expect(mirror.version).toBe(2);
    expect(mirror.state).toBe(copy);
    expect(calls).toHaveLength(1);
  });

  it('announces exactly the stream and broker that changed', () => {
    const { mirror, calls } = watched();
    const before = baseState();
    mirror.update(1, before);
    let after = run(before, { type: 'addTags', name: 'beta', tags: { owner: 'me' } });
    after = run(after, { type: 'setBrokerState', id: 1, state: 'down', nowMs: 9_000 });
    mirror.update(2, overTheWire(after));
    expect(calls).toHaveLength(2);
    const changes = calls[1]?.changes;
    expect(changes).toHaveLength(2);
    expect(changes).toContainEqual({ kind: 'stream', name: 'beta', value: stream(after, 'beta') });
    expect(changes).toContainEqual({ kind: 'broker', id: 1, value: after.brokers.get(1) });
  });

  it('announces a removed stream with an undefined value', () => {
    const { mirror, calls } = watched();
    let state = baseState();
    const incarnation = stream(state, 'beta').incarnation;
    mirror.update(1, state);
    state = run(state, { type: 'deleteStream', name: 'beta' });
    state = run(state, { type: 'removeStream', name: 'beta', incarnation });
    expect(mirror.update(2, overTheWire(state))).toBe(true);
    expect(calls[1]?.changes).toEqual([{ kind: 'stream', name: 'beta', value: undefined }]);
    expect(mirror.state.streams.has('beta')).toBe(false);
  });

  it('announces a new stream, and a removed broker with an undefined value', () => {
    const { mirror, calls } = watched();
    const before = baseState();
    mirror.update(1, before);
    const withGamma = run(before, createStream('gamma', 1, 1));
    const brokers = new Map(withGamma.brokers);
    brokers.delete(2);
    mirror.update(2, { ...withGamma, brokers });
    expect(sortChanges(calls[1]?.changes ?? [])).toEqual(['broker:2', 'stream:gamma']);
    expect(calls[1]?.changes).toContainEqual({ kind: 'broker', id: 2, value: undefined });
  });

  it('announces a key rotation as an iteratorKeys change, not the counters it moves', () => {
    const { mirror, calls } = watched();
    const before = baseState();
    mirror.update(1, before);
    const after = rotateKey(before, 'second', 7_000);
    expect(after.counters).not.toEqual(before.counters);
    mirror.update(2, after);
    expect(calls[1]?.changes).toEqual([{ kind: 'iteratorKeys', value: after.iteratorKeys }]);
  });

  it('tells every listener until it unsubscribes', () => {
    const mirror = new MetadataMirror();
    const first = vi.fn();
    const second = vi.fn();
    const stopFirst = mirror.onChange(first);
    mirror.onChange(second);
    const state = baseState();
    mirror.update(1, state);
    expect(first).toHaveBeenCalledTimes(1);
    expect(second).toHaveBeenCalledTimes(1);
    stopFirst();
    mirror.update(2, run(state, createStream('gamma', 1, 1)));
    expect(first).toHaveBeenCalledTimes(1);
    expect(second).toHaveBeenCalledTimes(2);
  });
});

describe('metadata mirror keyring', () => {
  it('has no signing key before the first state', () => {
    const mirror = new MetadataMirror();
    expect(() => mirror.current()).toThrow();
    expect(mirror.find(1)).toBeUndefined();
    expect(mirror.oldestId()).toBe(0);
  });

  it('signs with the newest key and verifies with every kept one', () => {
    const mirror = new MetadataMirror();
    let state = baseState();
    state = rotateKey(state, 'second', 4_000);
    state = rotateKey(state, 'third', 5_000);
    mirror.update(1, overTheWire(state));
    expect(mirror.current()).toEqual({ id: 3, secret: Buffer.from('third') });
    expect(mirror.find(1)).toEqual({ id: 1, secret: Buffer.from('first') });
    expect(mirror.find(2)?.secret.toString()).toBe('second');
    expect(mirror.find(4)).toBeUndefined();
    expect(mirror.oldestId()).toBe(1);
  });

  it('follows the keys of each newer version', () => {
    const mirror = new MetadataMirror();
    let state = baseState();
    mirror.update(1, state);
    expect(mirror.current().id).toBe(1);
    state = rotateKey(state, 'second', 4_000, 2);
    state = rotateKey(state, 'third', 5_000, 2);
    mirror.update(2, state);
    expect(mirror.current()).toEqual({ id: 3, secret: Buffer.from('third') });
    expect(mirror.find(1)).toBeUndefined();
    expect(mirror.oldestId()).toBe(2);
    // An older version does not bring the dropped key back.
    mirror.update(1, baseState());
    expect(mirror.find(1)).toBeUndefined();
  });
});

describe('metadata mirror refresh', () => {
  it('calls the fetch function it was given, once per refresh', async () => {
    const fetch = vi.fn(() => Promise.resolve());
    const mirror = new MetadataMirror(fetch);
    await mirror.refresh();
    await mirror.refresh();
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('passes on the fetch function’s failure', async () => {
    const mirror = new MetadataMirror(() => Promise.reject(new Error('coordinators gone')));
    await expect(mirror.refresh()).rejects.toThrow('coordinators gone');
  });

  it('resolves without a fetch function', async () => {
    await expect(new MetadataMirror().refresh()).resolves.toBeUndefined();
  });
});
