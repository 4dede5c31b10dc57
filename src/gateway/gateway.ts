import { randomUUID } from 'node:crypto';
import {
  createServer as createHttp1Server,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import {
  constants as http2Constants,
  createServer as createHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import type { NativeApi } from '../server/native-api.js';
import { readBody } from './body.js';
import { GatewayRequestError, toHttpError } from './http-errors.js';
import type { JsonObject } from './json-shapes.js';
import { serveSubscription } from './event-stream.js';
import { NOT_YET_SUPPORTED, OPERATIONS, subscribeToShardRequest } from './operations.js';
import { sniffProtocol } from './protocol-sniffer.js';

/**
 * The Kinesis-compatible HTTP API: `POST /` with `X-Amz-Target: Kinesis_20131202.<Operation>` and
 * an AWS JSON 1.1 body, over HTTP/1.1 or cleartext HTTP/2 on one port. It translates each call
 * onto the native API and holds no data; SubscribeToShard answers with an event stream
 * (event-stream.ts). Signatures (SigV4) are accepted without being checked:
 * authentication arrives with the security work.
 */

export interface GatewayLimits {
  /** PutRecords of 5 MiB is about 6.7 MiB as base64 JSON; anything far above is refused (413). */
  readonly maxBodyBytes: number;
  readonly maxHeaderBytes: number;
  /** Time for a client to send its request headers (HTTP/1.1). */
  readonly headersTimeoutMs: number;
  /** Time for a client to send its request body. */
  readonly bodyTimeoutMs: number;
  /** Idle connections are closed after this. */
  readonly idleTimeoutMs: number;
  /** Time for a new connection to show which protocol it speaks. */
  readonly sniffTimeoutMs: number;
  readonly maxConnections: number;
}

export const DEFAULT_GATEWAY_LIMITS: GatewayLimits = {
  maxBodyBytes: 12 * 1024 * 1024,
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  idleTimeoutMs: 120_000,
  sniffTimeoutMs: 10_000,
  maxConnections: 4096,
};

export interface GatewayOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly api: NativeApi;
  readonly logger: Logger;
  readonly limits?: Partial<GatewayLimits>;
}

export interface RunningGateway {
  readonly port: number;
  close(): Promise<void>;
}

const TARGET_PATTERN = /^Kinesis_20131202\.([A-Za-z0-9]+)$/;
const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
const UTF8 = new TextDecoder('utf-8', { fatal: true });

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const limits: GatewayLimits = { ...DEFAULT_GATEWAY_LIMITS, ...options.limits };
  const serve = (req: Request, res: Response) => {
    void handle(req, res, options.api, limits, options.logger);
  };
  const http1 = createHttp1Server(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.headersTimeoutMs + limits.bodyTimeoutMs,
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, limits.headersTimeoutMs / 4)),
    },
    serve,
  );
  // Node enforces headersTimeout and requestTimeout (slowloris) with a checker it starts when a
  // server emits 'listening'. This server never listens itself (the sniffer hands it sockets), so
  // the checker is started here.
  http1.emit('listening');
  http1.maxHeadersCount = 200;
  http1.timeout = limits.idleTimeoutMs;
  const http2 = createHttp2Server(
    {
      settings: {
        maxHeaderListSize: limits.maxHeaderBytes,
        maxConcurrentStreams: 128,
        // Let a 5 MiB PutRecords arrive without waiting for window updates.
        initialWindowSize: 8 * 1024 * 1024,
      },
      maxHeaderListPairs: 200,
      maxSessionMemory: 64,
    },
    serve,
  );
  http2.on('session', (session) => session.setLocalWindowSize(32 * 1024 * 1024));
  // Broken sessions and streams end themselves; the gateway only has to not crash on them.
  http2.on('sessionError', (error) => options.logger.debug({ err: error }, 'HTTP/2 session error'));
  http2.setTimeout(limits.idleTimeoutMs);

  const connections = new Set<Socket>();
  const tcp = createTcpServer((socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    socket.setNoDelay(true);
    sniffProtocol(socket, {
      timeoutMs: limits.sniffTimeoutMs,
      onProtocol: (s, protocol) => {
        if (protocol === 'h2c') {
          // Node's HTTP/2 session takes the bytes the sniffer put back from socket.read().
          http2.emit('connection', s);
        } else {
          // The HTTP/1.1 parser reads new bytes straight from the handle, but the sniffed bytes
          // wait in the stream's buffer and reach it as 'data' events once the socket flows;
          // resuming emits them before the handle delivers anything newer.
          http1.emit('connection', s);
          s.resume();
        }
      },
    });
  });
  tcp.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (tcp.address() as AddressInfo).port,
    close: async () => {
      // Stops the slowloris checker (it errors as not listening, which is expected).
      http1.close(() => undefined);
      await new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        http1.closeIdleConnections();
        // Give in-flight requests a moment, then cut whatever is left.
        setTimeout(() => {
          for (const socket of connections) socket.destroy();
        }, 2_000).unref();
      });
    },
  };
}

async function handle(
  req: Request,
  res: Response,
  api: NativeApi,
  limits: GatewayLimits,
  logger: Logger,
) {
  const requestId = randomUUID();
  try {
    // The body is read (within its limits) before anything is answered: an HTTP/2 stream answered
    // before its DATA is consumed can take down the session (see body.ts), and on HTTP/1.1 an
    // unread body would be parsed as the next request.
    const body = await readBody(req, limits.maxBodyBytes, limits.bodyTimeoutMs);
    if (req.method !== 'POST') {
      throw new GatewayRequestError(
        405,
        'UnknownOperationException',
        'Kinesis requests are HTTP POST.',
      );
    }
    if (headerBytes(req) > limits.maxHeaderBytes) {
      // HTTP/1.1 refuses these while parsing; HTTP/2 only once the client has acknowledged the
      // server's SETTINGS, so a session's first request is checked here.
      throw new GatewayRequestError(
        431,
        'SerializationException',
        `Request headers exceed ${limits.maxHeaderBytes} bytes.`,
      );
    }
    const target = headerValue(req, 'x-amz-target');
    const name = target === undefined ? undefined : TARGET_PATTERN.exec(target)?.[1];
    if (name === undefined) {
      throw new GatewayRequestError(
        400,
        'UnknownOperationException',
        `Unknown or missing X-Amz-Target: ${target ?? '(none)'}.`,
      );
    }
    if (NOT_YET_SUPPORTED.has(name)) {
      throw new GatewayRequestError(
        400,
        'UnsupportedOperationException',
        `Rheos does not support ${name} yet (see docs/KINESIS-API.md).`,
      );
    }
    if (name === 'SubscribeToShard') {
      const subscription = new AbortController();
      const events = api.subscribeToShard(subscribeToShardRequest(parseJsonObject(body)), {
        signal: subscription.signal,
      });
      await serveSubscription(res, requestId, events, () => subscription.abort(), logger);
      return;
    }
    // hasOwn: names such as 'constructor' or 'toString' must not reach Object.prototype.
    const operation = Object.hasOwn(OPERATIONS, name) ? OPERATIONS[name] : undefined;
    if (operation === undefined) {
      throw new GatewayRequestError(400, 'UnknownOperationException', `Unknown operation ${name}.`);
    }
    const output = await operation(api, parseJsonObject(body));
    send(res, 200, requestId, output);
  } catch (error) {
    const http = toHttpError(error);
    if (http.status >= 500) logger.error({ err: error, requestId }, 'Kinesis API request failed');
    // A request refused before its body was read leaves that body on the connection.
    const unreadBody = http.status === 413 || http.status === 408;
    if (unreadBody) lingerThenClose(req, res);
    send(res, http.status, requestId, { __type: http.type, message: http.message }, http.type);
  }
}

function parseJsonObject(body: Buffer): JsonObject {
  if (body.length === 0) return {};
  let text: string;
  try {
    // fatal: invalid UTF-8 is refused, never silently replaced (it could become a partition key).
    text = UTF8.decode(body);
  } catch {
    throw new GatewayRequestError(
      400,
      'SerializationException',
      'The request body is not valid UTF-8.',
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new GatewayRequestError(
      400,
      'SerializationException',
      'The request body is not valid JSON.',
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GatewayRequestError(
      400,
      'SerializationException',
      'The request body must be a JSON object.',
    );
  }
  return value as JsonObject;
}

/** Request header bytes as HTTP/1.1 counts them: names, values and ': ' and CRLF per header. */
function headerBytes(req: Request): number {
  let total = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    total += (raw[i] as string).length + (raw[i + 1] as string).length + 4;
  }
  return total;
}

function headerValue(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function send(
  res: Response,
  status: number,
  requestId: string,
  body: JsonObject,
  errorType?: string,
): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  const headers: Record<string, string | number> = {
    'content-type': JSON_CONTENT_TYPE,
    'content-length': payload.length,
    'x-amzn-requestid': requestId,
  };
  if (errorType !== undefined) headers['x-amzn-errortype'] = errorType;
  // The two response classes have the same writeHead/end but no common declared type.
  (res as ServerResponse).writeHead(status, headers);
  (res as ServerResponse).end(payload);
}

/** How long the rest of a refused body is read and dropped, so its sender sees the answer. */
const LINGER_MS = 2_000;

/**
 * Ends a connection (HTTP/1.1) or stream (HTTP/2) whose request body was refused unread. Closing
 * at once would make a client that is still uploading fail with EPIPE or a reset before it reads
 * the answer: HTTP/1.1 lets Node read and drop the rest of the body (it knows where the body ends),
 * HTTP/2 streams were drained by readBody already. Whatever is still unfinished after a short
 * while is cut.
 */
function lingerThenClose(req: Request, res: Response): void {
  req.resume();
  const timer = setTimeout(() => {
    if (req.httpVersionMajor === 2)
      (res as Http2ServerResponse).stream.close(http2Constants.NGHTTP2_CANCEL);
    else req.socket.destroy();
  }, LINGER_MS);
  timer.unref();
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
}
