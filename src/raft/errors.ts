import type { NodeId } from './types.js';

/**
 * A proposal the state machine refused: nothing was appended, so it is safe to retry, elsewhere if
 * `leaderHint` names the leader.
 */
export class ProposalDroppedError extends Error {
  override readonly name = 'ProposalDroppedError';

  constructor(
    message: string,
    readonly leaderHint: NodeId,
  ) {
    super(message);
  }
}

/** A replica whose persisted state failed verification must not vote or lead. */
export class CorruptStateError extends Error {
  override readonly name = 'CorruptStateError';
}

/** A broken invariant inside the library: a bug, never a condition to handle. */
export class RaftInvariantError extends Error {
  override readonly name = 'RaftInvariantError';
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new RaftInvariantError(message);
}
