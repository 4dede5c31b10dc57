import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { fromServiceError } from './grpc-errors.js';
import { GRPC_CHANNEL_OPTIONS } from './grpc-options.js';

/** Set on a call one coordinator forwards to another (which then never forwards it again). */
export const FORWARDED_HEADER = 'x-rheos-forwarded';

/** What a unary call needs of a generated method definition. */
export interface UnaryMethod<Req, Res> {
  readonly path: string;
  readonly requestSerialize: (value: Req) => Buffer;
  readonly responseDeserialize: (bytes: Buffer) => Res;
}

/** One unary call; failures come back as RheosErrors (see fromServiceError). */
export function unaryCall<Req, Res>(
  channel: Client,
  method: UnaryMethod<Req, Res>,
  request: Req,
  deadlineMs: number,
  headers: Readonly<Record<string, string>> = {},
): Promise<Res> {
  const metadata = new Metadata();
  for (const [name, value] of Object.entries(headers)) metadata.set(name, value);
  return new Promise<Res>((resolve, reject) => {
    channel.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      metadata,
      { deadline: Date.now() + deadlineMs },
      (error: ServiceError | null, response?: Res) => {
        if (error) reject(fromServiceError(error));
        else resolve(response as Res);
      },
    );
  });
}

/**
 * A server-streaming call as an async iterator of its messages; the stream's failure comes back
 * as a RheosError; `signal` cancels the call (the iterator then ends). The transport's flow
 * control holds the server back while the consumer is slow: messages are pulled as consumed.
 */
export async function* streamCall<Req, Res>(
  channel: Client,
  method: UnaryMethod<Req, Res>,
  request: Req,
  signal?: AbortSignal,
): AsyncGenerator<Res> {
  const call = channel.makeServerStreamRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    request,
    new Metadata(),
    {},
  );
  const cancel = () => call.cancel();
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    for await (const message of call as AsyncIterable<Res>) yield message;
  } catch (error) {
    if (signal?.aborted === true) return;
    throw isServiceError(error) ? fromServiceError(error) : error;
  } finally {
    signal?.removeEventListener('abort', cancel);
    call.cancel();
  }
}

function isServiceError(error: unknown): error is ServiceError {
  return typeof error === 'object' && error !== null && 'code' in error && 'metadata' in error;
}

/** Channels by endpoint, opened on first use and closed together. */
export class ChannelPool {
  private readonly channels = new Map<string, Client>();

  get(endpoint: string): Client {
    let channel = this.channels.get(endpoint);
    if (channel === undefined) {
      channel = new Client(endpoint, credentials.createInsecure(), {
        ...GRPC_CHANNEL_OPTIONS,
        // grpc-js backs off reconnecting up to 2 minutes; a node that restarts is back in
        // seconds, and calls to it would fail until the channel tries again.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
      });
      this.channels.set(endpoint, channel);
    }
    return channel;
  }

  close(): void {
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
  }
}
