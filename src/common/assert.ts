/**
 * Assertions stay on in production: a broken invariant means a programmer error, and continuing
 * with corrupt state is worse than crashing (TigerBeetle's rule).
 */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
