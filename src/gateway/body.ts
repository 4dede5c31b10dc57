import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { GatewayRequestError } from './http-errors.js';

/**
 * Reads a request body with a size limit and a deadline. A body announced or grown beyond the
 * limit, one that stalls, and one that is cut off each fail the request without touching anything
 * else.
 *
 * HTTP/1.1 refuses an oversize body at once (Node then reads and drops the rest of it). HTTP/2
 * cannot: Node resets a stream with ENHANCE_YOUR_CALM, hiding the answer from the client, when many
 * DATA frames keep arriving after the stream was answered (measured: 40 MB after the answer, with
 * or without the protocol sniffer). So on HTTP/2 the rest of an oversize body is read and dropped
 * until it ends, pauses, or passes a cap, and only then is the 413 sent.
 */

/** On HTTP/2, an oversize body is drained up to this multiple of the limit before giving up. */
const HTTP2_DRAIN_FACTOR = 4;
/** While draining, a client that sends nothing for this long is answered (it may be waiting). */
const HTTP2_DRAIN_IDLE_MS = 100;

export function readBody(
  req: IncomingMessage | Http2ServerRequest,
  maxBytes: number,
  timeoutMs: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = () =>
      new GatewayRequestError(
        413,
        'SerializationException',
        `Request body is larger than ${maxBytes} bytes.`,
      );
    const http2 = req.httpVersionMajor === 2;
    const declared = req.headers['content-length'];
    let oversize = declared !== undefined && Number(declared) > maxBytes;
    if (oversize && !http2) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    let idleTimer: NodeJS.Timeout | undefined;
    const settle = (error: Error | undefined, body?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(idleTimer);
      req.off('data', onData);
      req.off('end', onEnd);
      if (error) reject(error);
      else resolve(body as Buffer);
    };
    const drainUntilIdle = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => settle(tooLarge()), HTTP2_DRAIN_IDLE_MS);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (!oversize && size > maxBytes) {
        oversize = true;
        chunks.length = 0;
      }
      if (!oversize) chunks.push(chunk);
      else if (!http2 || size > maxBytes * HTTP2_DRAIN_FACTOR) settle(tooLarge());
      else drainUntilIdle();
    };
    const onEnd = () => settle(oversize ? tooLarge() : undefined, Buffer.concat(chunks, size));
    const timer = setTimeout(
      () =>
        settle(
          oversize
            ? tooLarge()
            : new GatewayRequestError(
                408,
                'RequestTimeoutException',
                'The request body did not arrive in time.',
              ),
        ),
      timeoutMs,
    );
    if (oversize) drainUntilIdle();
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', (error: Error) => settle(error));
    req.once('aborted', () =>
      settle(
        new GatewayRequestError(400, 'SerializationException', 'The client aborted the request.'),
      ),
    );
  });
}
