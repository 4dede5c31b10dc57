import { Metadata, status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { InternalFailureError, type RheosError } from '../common/errors.js';
import type { ChannelPool } from '../common/grpc-call.js';
import { fromCallError, fromServiceError } from '../common/grpc-errors.js';
import {
  DataPlaneServiceService as Data,
  type PutRecordsRequest,
  type PutRecordsResponse,
  type PutRecordsStreamRequest,
  type PutRecordsStreamResponse,
} from '../gen/rheos/v1/data.js';

/**
 * PutRecords pipelined on one PutRecordsStream per broker (data.proto): each call is a message
 * with its call id, answered by one message, so a call costs no new HTTP/2 stream and headers.
 * Calls keep their own deadlines; a stream that breaks fails its calls in flight the way a unary
 * call that broke would fail (indeterminate unless the connection was never made), and the next
 * call opens a new stream.
 */

/** Calls and request bytes a client keeps in flight on one stream; beyond them it calls unary. */
export const MAX_PIPELINED_CALLS = 512;
export const MAX_PIPELINED_BYTES = 16 * 1024 * 1024;

interface PendingCall {
  readonly resolve: (response: PutRecordsResponse) => void;
  readonly reject: (error: RheosError) => void;
  readonly timer: NodeJS.Timeout;
  readonly sizeBytes: number;
}

/** One open stream and the calls waiting on it. */
class OpenStream {
  readonly pending = new Map<number, PendingCall>();
  pendingBytes = 0;
  broken = false;

  constructor(
    readonly call: ClientDuplexStream<PutRecordsStreamRequest, PutRecordsStreamResponse>,
  ) {}

  settle(callId: number): PendingCall | undefined {
    const call = this.pending.get(callId);
    if (call === undefined) return undefined;
    this.pending.delete(callId);
    this.pendingBytes -= call.sizeBytes;
    clearTimeout(call.timer);
    return call;
  }

  /** Fails every call still waiting (the stream is gone). */
  fail(error: RheosError): void {
    this.broken = true;
    for (const callId of [...this.pending.keys()]) this.settle(callId)?.reject(error);
  }
}

export class PutStreams {
  private readonly streams = new Map<string, OpenStream>();
  private nextCallId = 1;

  constructor(private readonly channels: ChannelPool) {}

  /** Whether a call of `sizeBytes` to `endpoint` fits the stream's limits now. */
  fits(endpoint: string, sizeBytes: number): boolean {
    const stream = this.streams.get(endpoint);
    if (stream === undefined || stream.broken) return true;
    return (
      stream.pending.size < MAX_PIPELINED_CALLS &&
      stream.pendingBytes + sizeBytes <= MAX_PIPELINED_BYTES
    );
  }

  /** One PutRecords call on `endpoint`'s stream; fails as a unary call would. */
  send(
    endpoint: string,
    request: PutRecordsRequest,
    sizeBytes: number,
    deadlineMs: number,
  ): Promise<PutRecordsResponse> {
    const stream = this.open(endpoint);
    const callId = this.nextCallId++;
    return new Promise<PutRecordsResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        // As a unary call's deadline: no answer in time, so whether the server acted is unknown.
        stream.settle(callId)?.reject(fromServiceError(transportError(status.DEADLINE_EXCEEDED)));
      }, deadlineMs);
      stream.pending.set(callId, { resolve, reject, timer, sizeBytes });
      stream.pendingBytes += sizeBytes;
      stream.call.write({ callId, request });
    });
  }

  close(): void {
    for (const stream of this.streams.values()) {
      stream.fail(new InternalFailureError('The client was closed.', { indeterminate: true }));
      stream.call.cancel();
    }
    this.streams.clear();
  }

  private open(endpoint: string): OpenStream {
    const existing = this.streams.get(endpoint);
    if (existing !== undefined && !existing.broken) return existing;
    const call = this.channels
      .get(endpoint)
      .makeBidiStreamRequest(
        Data.putRecordsStream.path,
        Data.putRecordsStream.requestSerialize,
        Data.putRecordsStream.responseDeserialize,
        new Metadata(),
        {},
      );
    const stream = new OpenStream(call);
    this.streams.set(endpoint, stream);
    call.on('data', (message: PutRecordsStreamResponse) => {
      const pending = stream.settle(message.callId);
      if (pending === undefined) return; // Its deadline passed: it was failed already.
      if (message.response !== undefined) {
        pending.resolve(message.response);
        return;
      }
      const wire = message.error;
      pending.reject(
        (wire === undefined ? undefined : fromCallError(wire)) ??
          new InternalFailureError(wire?.message ?? 'An empty answer to a PutRecords call.', {
            indeterminate: true,
          }),
      );
    });
    // A failed stream carries a status like a failed unary call, mapped the same way.
    call.on('error', (error: ServiceError) => stream.fail(fromServiceError(error)));
    // Ended by the server (it was closing) with calls unanswered: they may have been taken.
    call.on('status', () => stream.fail(fromServiceError(transportError(status.UNAVAILABLE))));
    return stream;
  }
}

/** A status with no Rheos metadata, as grpc-js reports a failure of the transport. */
function transportError(code: status): ServiceError {
  const details =
    code === status.DEADLINE_EXCEEDED ? 'Deadline exceeded' : 'The PutRecordsStream ended';
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), {
    code,
    details,
    metadata: new Metadata(),
  });
}
