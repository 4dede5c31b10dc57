/**
 * Sequence numbers are derived from the log position, never counted separately. A sequence number
 * is a fixed-width decimal string:
 *
 *   format digit (1) | shard incarnation (12) | log index (20) | offset in the entry (5)
 *
 * Fixed width makes string order equal numeric order, so a reader can seek to a sequence number
 * with one key lookup. The shard incarnation is unique to one shard of one stream for the life of
 * the cluster, so a sequence number from another shard (or a deleted stream of the same name)
 * is recognisably foreign.
 */

export const SEQUENCE_FORMAT_DIGIT = '4';
const INCARNATION_DIGITS = 12;
const INDEX_DIGITS = 20;
const OFFSET_DIGITS = 5;
export const SEQUENCE_NUMBER_LENGTH = 1 + INCARNATION_DIGITS + INDEX_DIGITS + OFFSET_DIGITS;
export const MAX_RECORDS_PER_ENTRY = 10 ** OFFSET_DIGITS - 1;
const MAX_INCARNATION = 10 ** INCARNATION_DIGITS - 1;

/** A position in a shard log: the entry's log index and a record's offset inside that entry. */
export interface LogPosition {
  readonly index: number;
  readonly offset: number;
}

export interface SequenceNumberParts extends LogPosition {
  readonly incarnation: number;
}

export function formatSequenceNumber(parts: SequenceNumberParts): string {
  const { incarnation, index, offset } = parts;
  if (!Number.isSafeInteger(incarnation) || incarnation < 1 || incarnation > MAX_INCARNATION) {
    throw new RangeError(`shard incarnation out of range: ${incarnation}`);
  }
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`bad log index ${index}`);
  if (!Number.isInteger(offset) || offset < 0 || offset > MAX_RECORDS_PER_ENTRY) {
    throw new RangeError(`bad offset ${offset}`);
  }
  return (
    SEQUENCE_FORMAT_DIGIT +
    String(incarnation).padStart(INCARNATION_DIGITS, '0') +
    String(index).padStart(INDEX_DIGITS, '0') +
    String(offset).padStart(OFFSET_DIGITS, '0')
  );
}

/** Parses a sequence number this format produced; undefined for anything else. */
export function parseSequenceNumber(sequenceNumber: string): SequenceNumberParts | undefined {
  if (sequenceNumber.length !== SEQUENCE_NUMBER_LENGTH) return undefined;
  if (sequenceNumber[0] !== SEQUENCE_FORMAT_DIGIT) return undefined;
  if (!/^\d+$/.test(sequenceNumber)) return undefined;
  const incarnation = Number(sequenceNumber.slice(1, 1 + INCARNATION_DIGITS));
  const index = Number(
    sequenceNumber.slice(1 + INCARNATION_DIGITS, 1 + INCARNATION_DIGITS + INDEX_DIGITS),
  );
  const offset = Number(sequenceNumber.slice(1 + INCARNATION_DIGITS + INDEX_DIGITS));
  if (incarnation < 1 || !Number.isSafeInteger(index)) return undefined;
  return { incarnation, index, offset };
}

export function comparePositions(a: LogPosition, b: LogPosition): number {
  return a.index !== b.index ? a.index - b.index : a.offset - b.offset;
}
