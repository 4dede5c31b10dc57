import type { UserRecord } from '../client/kpl-aggregation.js';
import { StreamMode, StreamStatus, type Shard } from '../gen/rheos/v1/stream.js';

/** Human-facing names: the API's enum spellings without their protobuf prefixes. */
export function statusName(status: StreamStatus): string {
  return status.replace('STREAM_STATUS_', '');
}

export function modeName(mode: StreamMode): string {
  return mode.replace('STREAM_MODE_', '');
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** One shard as a tab-separated line: id, first and last hash key, parents ('-' when none). */
export function shardLine(shard: Shard): string {
  const parents = [shard.parentShardId, shard.adjacentParentShardId].filter((p) => p !== '');
  return [
    shard.shardId,
    shard.hashKeyRange?.startingHashKey ?? '',
    shard.hashKeyRange?.endingHashKey ?? '',
    parents.length === 0 ? '-' : parents.join(','),
  ].join('\t');
}

/** Rows as aligned columns (the first row is the header). */
export function table(rows: readonly string[][]): string[] {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

/**
 * A record as one JSON line, as `rheos tail` and `rheos groups consume` print them; the
 * sub-sequence number appears only for the members of a KPL aggregate past its first.
 */
export function recordLine(shardId: string, record: UserRecord, base64: boolean): string {
  return JSON.stringify({
    shardId,
    sequenceNumber: record.sequenceNumber,
    ...(record.subSequenceNumber > 0 ? { subSequenceNumber: record.subSequenceNumber } : {}),
    partitionKey: record.partitionKey,
    arrivalTime: new Date(record.approximateArrivalTimestampMs).toISOString(),
    data: base64 ? record.data.toString('base64') : record.data.toString('utf8'),
  });
}

/** Writes to stdout, waiting while its buffer is full (a slow pipe slows the reading down). */
export async function writeOut(text: string): Promise<void> {
  if (!process.stdout.write(text)) {
    await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
}
