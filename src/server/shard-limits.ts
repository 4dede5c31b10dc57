/**
 * Whether a node enforces per-shard limits (`--limits aws|off`). It is a property of the node,
 * not of streams: with `off` no shard of any stream is throttled here, however the stream was
 * created (native API, Kinesis HTTP API, a cluster file) and whatever limits it stores; the
 * stored limits (shown by DescribeStreamSummary) apply again once the node runs with `aws`.
 * Keeping it out of the metadata means a data folder behaves the same under either setting.
 */
export type LimitsMode = 'aws' | 'off';

export const LIMITS_MODES: readonly LimitsMode[] = ['aws', 'off'];
