import type { Clock } from '../common/clock.js';
import {
  GET_RECORDS_MAX_SIZE_BYTES,
  RECORD_MAX_SIZE_BYTES,
  type ShardThroughputLimits,
} from '../common/limits.js';
import { TokenBucket } from '../common/token-bucket.js';

/**
 * The provisioned throughput of one shard, as token buckets refilled every second:
 *  - writes: bytes and records, charged per record before it is proposed;
 *  - reads: GetRecords calls, and bytes charged after the read. A read may overdraw the byte
 *    bucket (one call can return 10 MiB), which throttles the calls that follow it, as on Kinesis.
 * Each bucket holds one second's worth of its rate, so short bursts pass and sustained excess
 * does not. A limit of 0 is unlimited.
 */
export class ShardQuota {
  private readonly writeBytes: TokenBucket;
  private readonly writeRecords: TokenBucket;
  private readonly readCalls: TokenBucket;
  private readonly readBytes: TokenBucket;

  constructor(
    readonly limits: ShardThroughputLimits,
    clock: Clock,
  ) {
    // The byte bucket holds at least one maximum-size record, or such a record could never pass.
    const writeBurstBytes = Math.max(limits.writeBytesPerSecond, RECORD_MAX_SIZE_BYTES);
    this.writeBytes = new TokenBucket(limits.writeBytesPerSecond, writeBurstBytes, clock);
    this.writeRecords = new TokenBucket(
      limits.writeRecordsPerSecond,
      limits.writeRecordsPerSecond,
      clock,
    );
    this.readCalls = new TokenBucket(limits.readCallsPerSecond, limits.readCallsPerSecond, clock);
    this.readBytes = new TokenBucket(
      limits.readBytesPerSecond,
      limits.readBytesPerSecond,
      clock,
      GET_RECORDS_MAX_SIZE_BYTES,
    );
  }

  /** Charges one record of `sizeBytes` if both write buckets allow it; false means throttled. */
  tryWrite(sizeBytes: number): boolean {
    if (!this.writeBytes.canTake(sizeBytes) || !this.writeRecords.canTake(1)) return false;
    this.writeBytes.take(sizeBytes);
    this.writeRecords.take(1);
    return true;
  }

  /** Admits one GetRecords call if the call rate allows it and earlier reads are paid for. */
  tryStartRead(): boolean {
    if (!this.readBytes.unlimited && this.readBytes.available() <= 0) return false;
    return this.readCalls.take(1);
  }

  chargeRead(sizeBytes: number): void {
    this.readBytes.takeWithDebt(sizeBytes);
  }
}
