import {
  OutOfOrderSequenceError,
  ProducerFencedError,
  ShardSealedError,
} from '../common/errors.js';
import type { ProducerDecision, ProducerHeader } from '../storage/producer-table.js';
import type { ShardLog } from '../storage/shard-log.js';
import type { AppendResult } from './replica.js';

/**
 * What a writer is told once its entry is applied, from the producer table's decision (shared by
 * every kind of replica). Throws the definite refusals.
 */
export function appendOutcome(
  decision: ProducerDecision | undefined,
  index: number,
  arrivalMs: number,
): AppendResult {
  switch (decision?.kind) {
    case undefined:
    case 'accept':
      return { index, arrivalMs };
    case 'duplicate':
      return { index, arrivalMs, duplicateOf: decision.positions };
    case 'fenced':
      throw new ProducerFencedError(
        `A newer epoch (${decision.currentEpoch}) of this producer id has written to the shard; this producer is fenced.`,
      );
    case 'outOfOrder':
      throw new OutOfOrderSequenceError(
        `The batch does not continue the producer's sequence on this shard: expected sequence number ${decision.expectedSequence}.`,
        { expectedSequence: decision.expectedSequence },
      );
  }
}

/**
 * A sealed shard's answer to an idempotent producer's batch: the positions it was stored at if it
 * was, else ShardSealedError (nothing of it is here: send it to the children).
 */
export function sealedOutcome(
  log: ShardLog,
  producer: ProducerHeader,
  count: number,
  children: readonly string[],
): AppendResult {
  const decision = log.decideSealed(producer, count);
  // A batch overlapping stored records (the retry of one stored in part, before a throttle or
  // SEAL cut it) is refused as out of order, so the caller can split it at the expected number.
  if (decision.kind === 'accept' || (decision.kind === 'outOfOrder' && !overlaps(decision))) {
    throw ShardSealedError.forChildren(children);
  }
  return appendOutcome(decision, 0, 0);

  function overlaps(d: { readonly expectedSequence: number }): boolean {
    return producer.firstSequence < d.expectedSequence;
  }
}
