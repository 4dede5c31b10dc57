import type { MetadataChange } from './metadata-machine.js';
import {
  INITIAL_COUNTERS,
  type BrokerRecord,
  type Counters,
  type GroupRecord,
  type IteratorKeyRecord,
  type MetadataState,
  type StreamRecord,
} from './model.js';

/**
 * How metadata is stored: one JSON record per stream (`stream/<name>`), broker (`broker/<id>`)
 * and consumer group (`group/<application>`), plus `counters` and `iteratorKeys`. Shared by the
 * single node's metadata service and the coordinator's replicated one.
 */

const STREAM_PREFIX = 'stream/';
const BROKER_PREFIX = 'broker/';
const COUNTERS_KEY = 'counters';
const ITERATOR_KEYS_KEY = 'iteratorKeys';
const GROUP_PREFIX = 'group/';

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
    case 'group':
      return [GROUP_PREFIX + change.application, change.value];
  }
}

/** The state the stored records describe. */
export function stateFromRecords(records: ReadonlyMap<string, unknown>): MetadataState {
  const streams = new Map<string, StreamRecord>();
  const brokers = new Map<number, BrokerRecord>();
  let counters: Counters = INITIAL_COUNTERS;
  let iteratorKeys: readonly IteratorKeyRecord[] = [];
  const groups = new Map<string, GroupRecord>();
  for (const [name, value] of records) {
    if (name.startsWith(STREAM_PREFIX)) {
      streams.set(name.slice(STREAM_PREFIX.length), value as StreamRecord);
    } else if (name.startsWith(BROKER_PREFIX)) {
      brokers.set(Number(name.slice(BROKER_PREFIX.length)), value as BrokerRecord);
    } else if (name === COUNTERS_KEY) {
      counters = value as Counters;
    } else if (name === ITERATOR_KEYS_KEY) {
      iteratorKeys = value as IteratorKeyRecord[];
    } else if (name.startsWith(GROUP_PREFIX)) {
      groups.set(name.slice(GROUP_PREFIX.length), value as GroupRecord);
    }
  }
  return { streams, brokers, counters, iteratorKeys, groups };
}

/**
 * Every record of a state (the inverse of stateFromRecords), for snapshots. Brokers are sent
 * them without the consumer groups (`groups: false`), which only the coordinator serves.
 */
export function recordsOf(
  state: MetadataState,
  options: { readonly groups: boolean } = { groups: true },
): Record<string, unknown> {
  const records: Record<string, unknown> = {};
  for (const [name, stream] of state.streams) records[STREAM_PREFIX + name] = stream;
  for (const [id, broker] of state.brokers) records[BROKER_PREFIX + String(id)] = broker;
  records[COUNTERS_KEY] = state.counters;
  records[ITERATOR_KEYS_KEY] = state.iteratorKeys;
  if (options.groups) {
    for (const [application, group] of state.groups) records[GROUP_PREFIX + application] = group;
  }
  return records;
}

/** Whether a change is one brokers are sent (consumer groups are not). */
export function concernsBrokers(change: MetadataChange): boolean {
  return change.kind !== 'group';
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
  for (const application of new Set([...before.groups.keys(), ...after.groups.keys()])) {
    const value = after.groups.get(application);
    if (!same(before.groups.get(application), value)) {
      changes.push({ kind: 'group', application, value });
    }
  }
  return changes;
}
