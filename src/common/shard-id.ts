/** Shard ids look like Kinesis': `shardId-` and 12 zero-padded decimal digits. */
const SHARD_ID_PATTERN = /^shardId-(\d{12})$/;

export function formatShardId(ordinal: number): string {
  return 'shardId-' + String(ordinal).padStart(12, '0');
}

/** Returns the ordinal of a well-formed shard id, or undefined. */
export function parseShardId(shardId: string): number | undefined {
  const match = SHARD_ID_PATTERN.exec(shardId);
  return match ? Number(match[1]) : undefined;
}
