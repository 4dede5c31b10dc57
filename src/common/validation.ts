import { ValidationError } from './errors.js';
import {
  PARTITION_KEY_MAX_CHARS,
  SHARD_ID_MAX_LENGTH,
  STREAM_NAME_MAX_LENGTH,
  STREAM_NAME_PATTERN,
} from './limits.js';

/**
 * Checks request fields against the constraints of the Kinesis API model and reports every
 * violation at once, in AWS' wording:
 *   "2 validation errors detected: Value 'x' at 'streamName' failed to satisfy constraint: ..."
 * Violations of the model are ValidationException; semantic problems (a sequence number from
 * another shard, a retention period out of range) are InvalidArgumentException and are raised
 * where the semantics live.
 */
export class Validator {
  private readonly problems: string[] = [];

  fail(field: string, value: unknown, constraint: string): this {
    this.problems.push(
      `Value '${describe(value)}' at '${field}' failed to satisfy constraint: ${constraint}`,
    );
    return this;
  }

  required(field: string, value: unknown): this {
    if (value === undefined || value === null || value === '') {
      this.problems.push(
        `Value null at '${field}' failed to satisfy constraint: Member must not be null`,
      );
    }
    return this;
  }

  length(field: string, value: string, min: number, max: number): this {
    const chars = countChars(value);
    if (chars < min)
      this.fail(field, value, `Member must have length greater than or equal to ${min}`);
    else if (chars > max)
      this.fail(field, value, `Member must have length less than or equal to ${max}`);
    return this;
  }

  pattern(field: string, value: string, pattern: RegExp, shown: string): this {
    if (value !== '' && !pattern.test(value)) {
      this.fail(field, value, `Member must satisfy regular expression pattern: ${shown}`);
    }
    return this;
  }

  range(field: string, value: number, min: number, max: number): this {
    if (!Number.isFinite(value) || value < min) {
      this.fail(field, value, `Member must have value greater than or equal to ${min}`);
    } else if (value > max) {
      this.fail(field, value, `Member must have value less than or equal to ${max}`);
    }
    return this;
  }

  streamName(field: string, value: string): this {
    if (value === '') return this.required(field, value);
    this.length(field, value, 1, STREAM_NAME_MAX_LENGTH);
    return this.pattern(field, value, STREAM_NAME_PATTERN, '[a-zA-Z0-9_.-]+');
  }

  shardId(field: string, value: string): this {
    if (value === '') return this.required(field, value);
    this.length(field, value, 1, SHARD_ID_MAX_LENGTH);
    return this.pattern(field, value, STREAM_NAME_PATTERN, '[a-zA-Z0-9_.-]+');
  }

  partitionKey(field: string, value: string): this {
    if (value === '') return this.required(field, value);
    return this.length(field, value, 1, PARTITION_KEY_MAX_CHARS);
  }

  get ok(): boolean {
    return this.problems.length === 0;
  }

  throwIfInvalid(): void {
    if (this.problems.length === 0) return;
    const count = this.problems.length;
    const head = `${count} validation error${count === 1 ? '' : 's'} detected: `;
    throw new ValidationError(head + this.problems.join('; '));
  }
}

/** Length in Unicode code points, as the API model counts it (not UTF-16 units). */
export function countChars(value: string): number {
  let count = 0;
  for (const _ of value) count++;
  return count;
}

function describe(value: unknown): string {
  if (typeof value === 'string') {
    // Cut by code points, never inside a surrogate pair.
    const chars = Array.from(value);
    return chars.length > 200 ? chars.slice(0, 200).join('') + '...' : value;
  }
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  return String(value);
}
