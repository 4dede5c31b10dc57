import { ExpiredNextTokenError, InvalidArgumentError } from './errors.js';
import { NEXT_TOKEN_LIFETIME_MS } from './limits.js';

/**
 * Pagination tokens (NextToken): opaque to clients, self-describing for the server, and
 * expiring like Kinesis' (ExpiredNextTokenException after 5 minutes). A token only says where a
 * listing continues; it grants nothing, so it needs no signature.
 */

interface TokenEnvelope<T> {
  readonly v: 1;
  readonly kind: string;
  readonly issuedMs: number;
  readonly body: T;
}

export function encodePageToken<T>(kind: string, body: T, nowMs: number): string {
  const envelope: TokenEnvelope<T> = { v: 1, kind, issuedMs: nowMs, body };
  return Buffer.from(JSON.stringify(envelope), 'utf8').toString('base64url');
}

export function decodePageToken<T>(
  kind: string,
  token: string,
  nowMs: number,
  isBody: (body: unknown) => body is T,
): T {
  let envelope: Partial<TokenEnvelope<unknown>>;
  try {
    envelope = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<
      TokenEnvelope<unknown>
    >;
  } catch {
    throw new InvalidArgumentError('Invalid NextToken.');
  }
  if (
    envelope === null ||
    typeof envelope !== 'object' ||
    envelope.v !== 1 ||
    envelope.kind !== kind ||
    typeof envelope.issuedMs !== 'number' ||
    !isBody(envelope.body)
  ) {
    throw new InvalidArgumentError('Invalid NextToken.');
  }
  // A token from the future was not made here (clocks of one cluster agree within a minute).
  if (envelope.issuedMs > nowMs + 60_000) throw new InvalidArgumentError('Invalid NextToken.');
  if (nowMs - envelope.issuedMs > NEXT_TOKEN_LIFETIME_MS) {
    throw new ExpiredNextTokenError('The NextToken has expired. Start the listing again.');
  }
  return envelope.body;
}
