import type { MetadataChange } from './metadata-machine.js';
import {
  INITIAL_COUNTERS,
  type BrokerRecord,
  type Counters,
  type IteratorKeyRecord,
  type MetadataState,
  type StreamRecord,
} from './model.js';

/**
 * How metadata is stored: one JSON record per stream (`stream/<name>`) and broker
 * (`broker/<id>`), plus `counters` and `iteratorKeys`. Shared by the single node's metadata
 * service and the coordinator's replicated one.
 */

const STREAM_PREFIX = 'stream/';
const BROKER_PREFIX = 'broker/';
const COUNTERS_KEY = 'counters';
const ITERATOR_KEYS_KEY = 'iteratorKeys';

/** The record a change writes (`undefined` value: deleted). */
export function toRecord(change: MetadataChange): readonly [string, unknown] {
  switch (change.kind) {
    case 'stream':
      return [STREAM_PREFIX + change.name, change.value];
    case 'broker':
      return [BROKER_PREFIX + String(change.id), change.value];
    case 'counters':
      return [COUNTERS_KEY, change.value];
    case 'iteratorKeys':
      return [ITERATOR_KEYS_KEY, change.value];
  }
}

/** The state the stored records describe. */
export function stateFromRecords(records: ReadonlyMap<string, unknown>): MetadataState {
  const streams = new Map<string, StreamRecord>();
  const brokers = new Map<number, BrokerRecord>();
  let counters: Counters = INITIAL_COUNTERS;
  let iteratorKeys: readonly IteratorKeyRecord[] = [];
  for (const [name, value] of records) {
    if (name.startsWith(STREAM_PREFIX)) {
      streams.set(name.slice(STREAM_PREFIX.length), value as StreamRecord);
    } else if (name.startsWith(BROKER_PREFIX)) {
      brokers.set(Number(name.slice(BROKER_PREFIX.length)), value as BrokerRecord);
    } else if (name === COUNTERS_KEY) {
      counters = value as Counters;
    } else if (name === ITERATOR_KEYS_KEY) {
      iteratorKeys = value as IteratorKeyRecord[];
    }
  }
  return { streams, brokers, counters, iteratorKeys };
}

/** Every record of a state (the inverse of stateFromRecords), as brokers are sent it. */
export function recordsOf(state: MetadataState): Record<string, unknown> {
  const records: Record<string, unknown> = {};
  for (const [name, stream] of state.streams) records[STREAM_PREFIX + name] = stream;
  for (const [id, broker] of state.brokers) records[BROKER_PREFIX + String(id)] = broker;
  records[COUNTERS_KEY] = state.counters;
  records[ITERATOR_KEYS_KEY] = state.iteratorKeys;
  return records;
}

/** The changes that turn `before` into `after` (streams, brokers and keys that differ). */
export function diffStates(before: MetadataState, after: MetadataState): MetadataChange[] {
  const changes: MetadataChange[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const name of new Set([...before.streams.keys(), ...after.streams.keys()])) {
    const value = after.streams.get(name);
    if (!same(before.streams.get(name), value)) changes.push({ kind: 'stream', name, value });
  }
  for (const id of new Set([...before.brokers.keys(), ...after.brokers.keys()])) {
    const value = after.brokers.get(id);
    if (!same(before.brokers.get(id), value)) changes.push({ kind: 'broker', id, value });
  }
  if (!same(before.iteratorKeys, after.iteratorKeys)) {
    changes.push({ kind: 'iteratorKeys', value: after.iteratorKeys });
  }
  return changes;
}
