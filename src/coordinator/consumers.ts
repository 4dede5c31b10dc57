import { LimitExceededError, ResourceInUseError, ResourceNotFoundError } from '../common/errors.js';
import { CONSUMERS_CREATING_MAX, CONSUMERS_PER_STREAM_MAX } from '../common/limits.js';
import type { ConsumerRecord, MetadataState, StreamRecord } from './model.js';

/**
 * The registry of enhanced fan-out consumers (RegisterStreamConsumer and its siblings), as pure
 * steps of the metadata machine. A consumer is CREATING when registered and ACTIVE at the next
 * lifecycle turn (the coordinator leader's duties, or the single node's broker); deregistering
 * makes it DELETING, and the next turn removes it. Kinesis' limits: 20 per stream, and at most 5
 * CREATING at once in the account.
 */

export function consumersOf(stream: StreamRecord): readonly ConsumerRecord[] {
  return stream.consumers ?? [];
}

/** The stream with `name` registered (CREATING) at `nowMs`; throws Kinesis' refusals. */
export function withRegisteredConsumer(
  state: MetadataState,
  stream: StreamRecord,
  name: string,
  nowMs: number,
  accountId: string,
): StreamRecord {
  const consumers = consumersOf(stream);
  if (consumers.some((c) => c.name === name)) {
    throw new ResourceInUseError(
      `Consumer ${name} under stream ${stream.name} under account ${accountId} already exists.`,
    );
  }
  if (consumers.length >= CONSUMERS_PER_STREAM_MAX) {
    throw new LimitExceededError(
      `Stream ${stream.name} under account ${accountId} already has ${CONSUMERS_PER_STREAM_MAX} registered consumers, the most a stream can have.`,
    );
  }
  let creating = 0;
  for (const s of state.streams.values()) {
    creating += consumersOf(s).filter((c) => c.status === 'CREATING').length;
  }
  if (creating >= CONSUMERS_CREATING_MAX) {
    throw new LimitExceededError(
      `Account ${accountId} already has ${CONSUMERS_CREATING_MAX} consumers in CREATING status; try again once they are ACTIVE.`,
    );
  }
  // Arrival order is registration order; creation times never go back within a stream.
  const createdMs = Math.max(nowMs, ...consumers.map((c) => c.createdMs));
  return { ...stream, consumers: [...consumers, { name, status: 'CREATING', createdMs }] };
}

/** The consumer named, or ResourceNotFoundException. */
export function requireConsumer(
  stream: StreamRecord,
  name: string,
  accountId: string,
): ConsumerRecord {
  const consumer = consumersOf(stream).find((c) => c.name === name);
  if (consumer === undefined) {
    throw new ResourceNotFoundError(
      `Consumer ${name} under stream ${stream.name} under account ${accountId} not found.`,
    );
  }
  return consumer;
}

/** The stream with its consumer `name` DELETING (already DELETING: unchanged). */
export function withDeregisteredConsumer(
  stream: StreamRecord,
  name: string,
  accountId: string,
): StreamRecord {
  if (requireConsumer(stream, name, accountId).status === 'DELETING') return stream;
  return withConsumers(
    stream,
    consumersOf(stream).map((c) => (c.name === name ? { ...c, status: 'DELETING' } : c)),
  );
}

/**
 * One lifecycle turn of a stream's consumers: CREATING ones become ACTIVE, DELETING ones go.
 * Undefined when nothing changes.
 */
export function consumersAfterTurn(stream: StreamRecord): StreamRecord | undefined {
  const consumers = consumersOf(stream);
  if (!consumers.some((c) => c.status !== 'ACTIVE')) return undefined;
  return withConsumers(
    stream,
    consumers
      .filter((c) => c.status !== 'DELETING')
      .map((c) => (c.status === 'CREATING' ? { ...c, status: 'ACTIVE' } : c)),
  );
}

function withConsumers(stream: StreamRecord, consumers: readonly ConsumerRecord[]): StreamRecord {
  if (consumers.length > 0) return { ...stream, consumers };
  const { consumers: _gone, ...rest } = stream;
  return rest;
}
