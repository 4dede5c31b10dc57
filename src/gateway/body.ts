import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { GatewayRequestError } from './http-errors.js';

/**
 * Reads a request body with a size limit and a deadline. A Content-Length above the limit is
 * refused before any byte is read; a body that outgrows the limit, stalls, or is cut off fails
 * the request without touching anything else.
 */
export function readBody(
  req: IncomingMessage | Http2ServerRequest,
  maxBytes: number,
  timeoutMs: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBytes) {
      reject(
        new GatewayRequestError(
          413,
          'SerializationException',
          `Request body is larger than ${maxBytes} bytes.`,
        ),
      );
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (error: Error | undefined, body?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      if (error) reject(error);
      else resolve(body as Buffer);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        settle(
          new GatewayRequestError(
            413,
            'SerializationException',
            `Request body is larger than ${maxBytes} bytes.`,
          ),
        );
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => settle(undefined, Buffer.concat(chunks, size));
    const timer = setTimeout(
      () =>
        settle(
          new GatewayRequestError(
            408,
            'RequestTimeoutException',
            'The request body did not arrive in time.',
          ),
        ),
      timeoutMs,
    );
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
