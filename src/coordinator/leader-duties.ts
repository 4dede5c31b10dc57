import { consumersAfterTurn } from './consumers.js';
import type { Verdict } from './failure-detector.js';
import { keyRotationDue } from './iterator-keys.js';
import type { MetadataCommand } from './metadata-machine.js';
import type { MetadataState } from './model.js';

/**
 * What the coordinator leader proposes on each of its periodic turns, decided from the metadata it
 * has applied: broker state changes from the failure detector, iterator-key rotation, and stream
 * lifecycle steps that the single node's broker used to take itself (a new stream is ACTIVE once
 * every shard has a leader that a broker reported, so a client that waits for ACTIVE can write at
 * once; a deleted stream is removed at once: brokers delete the replicas of streams that are no
 * longer in the metadata; registered consumers become ACTIVE, deregistered ones go). Pure, so it is tested without a cluster; every command it returns is
 * idempotent against the state it was computed from (the machine ignores stale ones).
 */

export interface DutyInputs {
  readonly state: MetadataState;
  readonly nowMs: number;
  readonly verdicts: readonly Verdict[];
  readonly keyRotationMs: number;
  readonly newSecret: () => Buffer;
  /** Shards whose leader a broker reported recently. */
  readonly ledShards: ReadonlySet<number>;
}

export function leaderDuties(inputs: DutyInputs): MetadataCommand[] {
  const { state, nowMs } = inputs;
  const commands: MetadataCommand[] = [];
  for (const verdict of inputs.verdicts) {
    commands.push({ type: 'setBrokerState', id: verdict.id, state: verdict.state, nowMs });
  }
  const rotation = keyRotationDue(state, nowMs, inputs.keyRotationMs, inputs.newSecret);
  if (rotation !== undefined) commands.push(rotation);
  const streams = [...state.streams.values()].sort((a, b) => a.incarnation - b.incarnation);
  for (const stream of streams) {
    const ready = stream.shards.every(
      (s) => s.replicas !== undefined && inputs.ledShards.has(s.incarnation),
    );
    if (stream.status === 'CREATING' && ready) {
      commands.push({
        type: 'setStreamStatus',
        name: stream.name,
        incarnation: stream.incarnation,
        status: 'ACTIVE',
      });
    } else if (stream.status === 'DELETING') {
      commands.push({ type: 'removeStream', name: stream.name, incarnation: stream.incarnation });
    }
    if (stream.status !== 'DELETING' && consumersAfterTurn(stream) !== undefined) {
      commands.push({ type: 'consumerTurn', name: stream.name, incarnation: stream.incarnation });
    }
  }
  return commands;
}
