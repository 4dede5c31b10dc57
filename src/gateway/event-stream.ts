import { EventStreamCodec } from '@smithy/core/event-streams';
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Logger } from '../common/logger.js';
import type { SubscribeToShardResponse } from '../gen/rheos/v1/data.js';
import { toHttpError } from './http-errors.js';
import type { JsonObject } from './json-shapes.js';
import { subscribeToShardEventJson } from './operations.js';

/**
 * SubscribeToShard's answer on the Kinesis HTTP API: an `application/vnd.amazon.eventstream` body
 * of binary event-stream messages (prelude, headers, payload, each with its CRC, framed by the
 * codec the AWS SDK itself uses), as @aws-sdk/client-kinesis v3 reads them over HTTP/2: first an
 * `initial-response` event, then one `SubscribeToShardEvent` per native event, and a failure
 * after the stream started as an `exception` message. A subscription refused before its first
 * event (unknown consumer, a takeover too soon, bad input) is an ordinary JSON error answer: the
 * caller's, thrown from here before any header is written. Writes wait for the transport to
 * drain (backpressure); a client that goes away ends the subscription.
 */

type Response = ServerResponse | Http2ServerResponse;

const EVENT_STREAM_CONTENT_TYPE = 'application/vnd.amazon.eventstream';

const codec = new EventStreamCodec(
  (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
  (text) => Buffer.from(text, 'utf8'),
);

/** The exceptions SubscribeToShardEventStream models; others reach SDKs as unknown errors. */
const MODELED_EXCEPTIONS: ReadonlySet<string> = new Set([
  'ResourceNotFoundException',
  'ResourceInUseException',
  'KMSDisabledException',
  'KMSInvalidStateException',
  'KMSAccessDeniedException',
  'KMSNotFoundException',
  'KMSOptInRequired',
  'KMSThrottlingException',
  'InternalFailureException',
]);

function stringHeader(value: string) {
  return { type: 'string' as const, value };
}

export function eventMessage(eventType: string, payload: JsonObject): Uint8Array {
  return codec.encode({
    headers: {
      ':event-type': stringHeader(eventType),
      ':content-type': stringHeader('application/json'),
      ':message-type': stringHeader('event'),
    },
    body: Buffer.from(JSON.stringify(payload), 'utf8'),
  });
}

export function exceptionMessage(exceptionType: string, message: string): Uint8Array {
  return codec.encode({
    headers: {
      ':exception-type': stringHeader(exceptionType),
      ':content-type': stringHeader('application/json'),
      ':message-type': stringHeader('exception'),
    },
    body: Buffer.from(JSON.stringify({ message }), 'utf8'),
  });
}

/**
 * Serves `events` as the answer of SubscribeToShard. Throws (with nothing written) if the first
 * event cannot be had; otherwise answers 200 and streams until the events end, fail, or the
 * client goes (`abort` is then called, which must end `events`).
 */
export async function serveSubscription(
  res: Response,
  requestId: string,
  events: AsyncIterable<SubscribeToShardResponse>,
  abort: () => void,
  logger: Logger,
): Promise<void> {
  const iterator = events[Symbol.asyncIterator]();
  let gone = false;
  const onClose = () => {
    gone = true;
    abort();
  };
  res.once('close', onClose);
  // An HTTP/2 stream reset by the client closes the stream; the response may not say so first.
  if ('stream' in res) res.stream.once('close', onClose);
  let next: IteratorResult<SubscribeToShardResponse>;
  try {
    next = await iterator.next();
  } catch (error) {
    res.off('close', onClose);
    if ('stream' in res) res.stream.off('close', onClose);
    throw error;
  }
  try {
    (res as ServerResponse).writeHead(200, {
      'content-type': EVENT_STREAM_CONTENT_TYPE,
      'x-amzn-requestid': requestId,
    });
    await write(res, eventMessage('initial-response', {}));
    while (next.done !== true && !gone) {
      await write(
        res,
        eventMessage('SubscribeToShardEvent', subscribeToShardEventJson(next.value)),
      );
      next = await iterator.next();
    }
  } catch (error) {
    if (!gone) {
      const http = toHttpError(error);
      if (http.status >= 500) logger.warn({ err: error, requestId }, 'subscription failed');
      const type = MODELED_EXCEPTIONS.has(http.type) ? http.type : 'InternalFailureException';
      await write(res, exceptionMessage(type, http.message)).catch(() => undefined);
    }
  } finally {
    res.off('close', onClose);
    if ('stream' in res) res.stream.off('close', onClose);
    await iterator.return?.();
    if (!res.writableEnded && !res.destroyed) res.end();
  }
}

/** Writes a chunk and waits for the transport to drain when its buffer is full. */
function write(res: Response, chunk: Uint8Array): Promise<void> {
  if (res.destroyed || res.writableEnded) return Promise.reject(new Error('the client is gone'));
  if ((res as ServerResponse).write(chunk)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      res.off('drain', onDrain);
      res.off('close', onGone);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onDrain = () => done();
    const onGone = () => done(new Error('the client is gone'));
    res.once('drain', onDrain);
    res.once('close', onGone);
  });
}
