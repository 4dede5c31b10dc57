import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/common/logger.js';
import { startGateway, type RunningGateway } from '../../src/gateway/gateway.js';
import { HTTP2_PREFACE } from '../../src/gateway/protocol-sniffer.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

/**
 * Hostile input on the wire of the Kinesis-compatible HTTP gateway: malformed JSON, wrong or
 * missing targets, oversized bodies, lying Content-Length, slow clients, junk headers, garbage
 * bytes, HTTP/2 abuse. Every case must end in a 4xx or a closed connection (never a 5xx, a crash
 * or a hang), and after every case both gateways still serve a normal request over HTTP/1.1 and
 * HTTP/2 and nothing was logged at error level. At the end, every record the gateway acknowledged
 * reads back exactly, and nothing else is in the stream.
 *
 * Two gateways share one node: the node's own (default limits, in-process API) and a strict one
 * (small limits and timeouts, over the node's gRPC API) for the size and timeout cases.
 */

const HOST = '127.0.0.1';
const JSON_TYPE = 'application/x-amz-json-1.1';
const PREFIX = 'Kinesis_20131202.';
const STREAM = 'wire';
const JUNK = 'junk';
const MIB = 1024 * 1024;
const DEFAULT_MAX_BODY = 12 * MIB;
const STRICT = {
  maxBodyBytes: 64 * 1024,
  headersTimeoutMs: 500,
  bodyTimeoutMs: 500,
  sniffTimeoutMs: 500,
} as const;
/** Every wait on the network is bounded by this unless stated otherwise. */
const WAIT_MS = 3_000;

type Protocol = 'http/1.1' | 'h2';
const PROTOCOLS: readonly Protocol[] = ['http/1.1', 'h2'];
type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Set-up: one node, two gateways, a stream of acknowledged records to read back at the end.

const errorLogs: string[] = [];
function recordingLogger(): Logger {
  return pino({ level: 'error' }, { write: (line: string) => void errorLogs.push(line) });
}

let t: TestNode;
let main: number;
let strict: RunningGateway;
/** Sequence number -> [partition key, base64 data] of every record the gateway acknowledged. */
const acknowledged = new Map<string, [string, string]>();
/**
 * Records whose request was complete but whose answer never came: they may or may not be stored
 * (at least once). Records whose request was never complete must not be.
 */
const indeterminate = new Set<string>();

beforeAll(async () => {
  const logger = recordingLogger();
  t = await startTestNode({ httpPort: 0, logger });
  main = t.node.httpPort as number;
  strict = await startGateway({ host: HOST, port: 0, api: t.client, logger, limits: STRICT });
  await ok('http/1.1', main, 'CreateStream', { StreamName: STREAM, ShardCount: 2 });
  await ok('h2', main, 'CreateStream', { StreamName: JUNK, ShardCount: 1 });
  await t.client.waitForStreamActive(STREAM);
  await t.client.waitForStreamActive(JUNK);
  for (let i = 0; i < 5; i++) await putOne(PROTOCOLS[i % 2] as Protocol, main, `before-${i}`);
  const records = Array.from({ length: 5 }, (_, i) => record(`before-batch-${i}`));
  const put = await ok('h2', main, 'PutRecords', { StreamName: STREAM, Records: records });
  expect(put.FailedRecordCount).toBe(0);
  (put.Records as Json[]).forEach((r, i) => {
    const sent = records[i] as { PartitionKey: string; Data: string };
    acknowledged.set(r.SequenceNumber as string, [sent.PartitionKey, sent.Data]);
  });
  expect(acknowledged.size).toBe(10);
});

afterAll(async () => {
  await strict?.close();
  await t?.stop();
});

afterEach(async () => {
  // After every hostile case: both gateways answer normal requests over both protocols ...
  await expectServing();
  // ... and nothing failed inside the server (a 5xx, even one the client never saw, logs here).
  const logged = errorLogs.splice(0);
  expect(logged, `error-level logs: ${logged.join('\n')}`).toEqual([]);
});

async function expectServing(): Promise<void> {
  for (const port of [main, strict.port]) {
    for (const protocol of PROTOCOLS) {
      const limits = await ok(protocol, port, 'DescribeLimits', {});
      expect(limits.OpenShardCount, `${protocol} on port ${port}`).toBe(3);
    }
  }
}

function record(label: string): { PartitionKey: string; Data: string } {
  return { PartitionKey: `pk-${label}`, Data: Buffer.from(`record ${label}`).toString('base64') };
}

async function putOne(protocol: Protocol, port: number, label: string): Promise<void> {
  const r = record(label);
  const out = await ok(protocol, port, 'PutRecord', { StreamName: STREAM, ...r });
  expect(typeof out.SequenceNumber).toBe('string');
  acknowledged.set(out.SequenceNumber as string, [r.PartitionKey, r.Data]);
}

// ---------------------------------------------------------------------------------------------
// Bounded waiting.

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no outcome within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Well-behaved clients: node:http (one connection per call) and node:http2 (one session per call).

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | number | undefined>;
  readonly body: Buffer;
}

interface CallOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
}

function call(
  protocol: Protocol,
  port: number,
  target: string | undefined,
  body: string | Buffer,
  options: CallOptions = {},
): Promise<Reply> {
  return protocol === 'h2'
    ? call2(port, target, body, options)
    : call1(port, target, body, options);
}

function call1(
  port: number,
  target: string | undefined,
  body: string | Buffer,
  options: CallOptions,
): Promise<Reply> {
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  const method = options.method ?? 'POST';
  return within(
    new Promise<Reply>((resolve, reject) => {
      const req = http.request(
        {
          host: HOST,
          port,
          method,
          path: '/',
          agent: false,
          headers: {
            'content-type': JSON_TYPE,
            ...(target === undefined ? {} : { 'x-amz-target': target }),
            ...(method === 'GET' || method === 'HEAD' ? {} : { 'content-length': payload.length }),
            ...options.headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(method === 'GET' || method === 'HEAD' ? undefined : payload);
    }),
    WAIT_MS,
    `HTTP/1.1 ${target ?? '(no target)'}`,
  );
}

async function call2(
  port: number,
  target: string | undefined,
  body: string | Buffer,
  options: CallOptions,
): Promise<Reply> {
  const session = http2.connect(`http://${HOST}:${port}`);
  try {
    return await within(
      new Promise<Reply>((resolve, reject) => {
        session.on('error', reject);
        const method = options.method ?? 'POST';
        const stream = session.request(
          {
            ':method': method,
            ':path': '/',
            'content-type': JSON_TYPE,
            ...(target === undefined ? {} : { 'x-amz-target': target }),
            ...options.headers,
          },
          { endStream: false },
        );
        let status = 0;
        let headers: Reply['headers'] = {};
        const chunks: Buffer[] = [];
        stream.on('response', (h) => {
          status = Number(h[':status']);
          headers = h;
        });
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('error', reject);
        stream.on('end', () => resolve({ status, headers, body: Buffer.concat(chunks) }));
        if (method === 'GET' || method === 'HEAD') stream.end();
        else stream.end(body);
      }),
      WAIT_MS,
      `HTTP/2 ${target ?? '(no target)'}`,
    );
  } finally {
    session.destroy();
  }
}

async function ok(protocol: Protocol, port: number, operation: string, input: Json): Promise<Json> {
  const reply = await call(protocol, port, PREFIX + operation, JSON.stringify(input));
  expect(reply.status, `${operation} over ${protocol}: ${reply.body.toString()}`).toBe(200);
  return JSON.parse(reply.body.toString('utf8')) as Json;
}

function expectAwsError(reply: Reply, status: number, type: string): void {
  const text = reply.body.toString('utf8');
  expect(reply.status, text).toBe(status);
  expect(reply.headers['x-amzn-errortype']).toBe(type);
  expect(reply.headers['content-type']).toBe(JSON_TYPE);
  expect(reply.headers['x-amzn-requestid']).toMatch(/^[0-9a-f-]{36}$/);
  const parsed = JSON.parse(text) as Json;
  expect(parsed.__type).toBe(type);
  expect(typeof parsed.message).toBe('string');
}

// ---------------------------------------------------------------------------------------------
// Raw sockets: hand-written HTTP/1.1 (and HTTP/2 frames), responses parsed by hand.

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

function parseResponse(
  buffer: Buffer,
  closed: boolean,
): { response: RawResponse; rest: Buffer } | undefined {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!statusLine) throw new Error(`not an HTTP/1.1 response: ${JSON.stringify(lines[0])}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const start = end + 4;
  const length = headers['content-length'];
  if (length !== undefined) {
    const stop = start + Number(length);
    if (buffer.length < stop) return undefined;
    return {
      response: { status: Number(statusLine[1]), headers, body: buffer.subarray(start, stop) },
      rest: buffer.subarray(stop),
    };
  }
  // No length (Node's own 400/408/431 answers): the body runs to the end of the connection.
  if (!closed) return undefined;
  return {
    response: { status: Number(statusLine[1]), headers, body: buffer.subarray(start) },
    rest: Buffer.alloc(0),
  };
}

class RawConnection {
  /** Everything received so far. */
  received: Buffer = Buffer.alloc(0);
  /** Received and not yet taken by response(). */
  private pending: Buffer = Buffer.alloc(0);
  closed = false;
  closedAt: number | undefined;
  readonly openedAt = Date.now();
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.pending = Buffer.concat([this.pending, chunk]);
      this.changed();
    });
    // Resets and broken pipes are expected outcomes here, not test failures.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.closedAt = Date.now();
      this.changed();
    });
  }

  static async open(port: number): Promise<RawConnection> {
    const socket = net.connect(port, HOST);
    socket.setNoDelay(true);
    await within(once(socket, 'connect'), WAIT_MS, 'connect');
    return new RawConnection(socket);
  }

  /** Resolves once the bytes are handed to the kernel; false if the connection is gone. */
  write(data: string | Buffer): Promise<boolean> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, (error) =>
        resolve(!error),
      );
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private changed(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private until<T>(check: () => T | undefined, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(attempt);
      };
      const attempt = () => {
        try {
          const value = check();
          if (value === undefined) return;
          finish();
          resolve(value);
        } catch (error) {
          finish();
          reject(error as Error);
        }
      };
      const timer = setTimeout(() => {
        finish();
        const got = JSON.stringify(this.received.subarray(0, 200).toString('latin1'));
        reject(new Error(`${what}: nothing within ${ms} ms (received ${got}, open)`));
      }, ms);
      this.waiters.add(attempt);
      attempt();
    });
  }

  /** The next HTTP/1.1 response, or null when the connection closes without (another) one. */
  response(ms = WAIT_MS): Promise<RawResponse | null> {
    return this.until<RawResponse | null>(
      () => {
        const parsed = parseResponse(this.pending, this.closed);
        if (parsed) {
          this.pending = parsed.rest;
          return parsed.response;
        }
        return this.closed ? null : undefined;
      },
      ms,
      'HTTP/1.1 response',
    );
  }

  /** Milliseconds from opening to the close; rejects if the connection stays open past ms. */
  async waitClosed(ms = WAIT_MS): Promise<number> {
    await this.until(() => (this.closed ? true : undefined), ms, 'connection close');
    return (this.closedAt as number) - this.openedAt;
  }

  /** Resolves once the received bytes satisfy the check. */
  waitReceived(check: (received: Buffer) => boolean, ms = WAIT_MS): Promise<true> {
    return this.until(
      () => (check(this.received) ? true : this.closed ? true : undefined),
      ms,
      'bytes',
    );
  }
}

/** A hand-written HTTP/1.1 request. */
function rawRequest(
  target: string | undefined,
  body: string | Buffer,
  extraHeaders: string[] = [],
  options: { contentLength?: number | string | null } = {},
): Buffer {
  const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const length = options.contentLength === undefined ? payload.length : options.contentLength;
  const head = [
    'POST / HTTP/1.1',
    `Host: ${HOST}`,
    `Content-Type: ${JSON_TYPE}`,
    ...(target === undefined ? [] : [`X-Amz-Target: ${target}`]),
    ...(length === null ? [] : [`Content-Length: ${length}`]),
    ...extraHeaders,
  ];
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), payload]);
}

function chunk(data: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`${data.length.toString(16)}\r\n`, 'latin1'),
    data,
    Buffer.from('\r\n', 'latin1'),
  ]);
}

/**
 * The outcome the issue allows for hostile HTTP/1.1: a 4xx (optionally one of `statuses`) or a
 * connection closed without an answer; either way the connection ends.
 */
async function expectRefusedOrClosed(
  conn: RawConnection,
  statuses?: readonly number[],
): Promise<RawResponse | null> {
  const res = await conn.response();
  if (res !== null) {
    expect(res.status, res.body.toString()).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    if (statuses) expect(statuses).toContain(res.status);
  }
  await conn.waitClosed();
  return res;
}

/** Opens a raw connection, sends the bytes, and checks the refusal. */
async function sendHostile(
  port: number,
  bytes: string | Buffer,
  statuses?: readonly number[],
): Promise<RawResponse | null> {
  const conn = await RawConnection.open(port);
  try {
    await conn.write(bytes);
    return await expectRefusedOrClosed(conn, statuses);
  } finally {
    conn.destroy();
  }
}

// HTTP/2 frames by hand.

const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7, CONTINUATION: 9 };
const FLAG = { END_STREAM: 0x1, END_HEADERS: 0x4 };

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

function framesOf(bytes: Buffer): Frame[] {
  const frames: Frame[] = [];
  let at = 0;
  while (at + 9 <= bytes.length) {
    const length = bytes.readUIntBE(at, 3);
    if (at + 9 + length > bytes.length) break;
    frames.push({
      type: bytes[at + 3] as number,
      flags: bytes[at + 4] as number,
      streamId: bytes.readUInt32BE(at + 5) & 0x7fffffff,
      payload: bytes.subarray(at + 9, at + 9 + length),
    });
    at += 9 + length;
  }
  return frames;
}

/** HPACK: an integer with an n-bit prefix. */
function hpackInt(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const bytes = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** HPACK: a literal header field without indexing, with a literal name. */
function hpackLiteral(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  return Buffer.concat([
    Buffer.from([0]),
    hpackInt(n.length, 7, 0),
    n,
    hpackInt(v.length, 7, 0),
    v,
  ]);
}

/** :method POST, :path /, :scheme http (static table), :authority. */
const HPACK_POST = Buffer.concat([
  Buffer.from([0x83, 0x84, 0x86]),
  hpackInt(1, 4, 0),
  hpackInt(HOST.length, 7, 0),
  Buffer.from(HOST, 'latin1'),
]);

/** The client preface and an empty SETTINGS frame: a valid start of an h2c connection. */
const H2_START = Buffer.concat([HTTP2_PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))]);

// HTTP/2 with node:http2, for hostile streams.

interface H2Outcome {
  status?: number;
  headers?: http2.IncomingHttpHeaders;
  body: Buffer;
  rstCode?: number;
  streamError?: string;
  sessionError?: string;
  goaway?: number;
}

/**
 * Opens a session and one stream with `headers`, lets `drive` write (or not) the body, and
 * resolves when the response ends or the stream closes, whichever is first.
 */
async function h2Exchange(
  port: number,
  headers: http2.OutgoingHttpHeaders,
  drive: (stream: http2.ClientHttp2Stream) => void | Promise<void>,
  options: http2.ClientSessionOptions = {},
  ms = WAIT_MS,
): Promise<H2Outcome> {
  const session = http2.connect(`http://${HOST}:${port}`, options);
  const outcome: H2Outcome = { body: Buffer.alloc(0) };
  session.on('error', (e: NodeJS.ErrnoException) => (outcome.sessionError = e.code ?? e.message));
  session.on('goaway', (code: number) => (outcome.goaway = code));
  try {
    return await within(
      new Promise<H2Outcome>((resolve) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/',
          'content-type': JSON_TYPE,
          ...headers,
        });
        const chunks: Buffer[] = [];
        const done = () => {
          outcome.body = Buffer.concat(chunks);
          if (stream.rstCode !== undefined) outcome.rstCode = stream.rstCode;
          resolve(outcome);
        };
        stream.on('response', (h) => {
          outcome.status = Number(h[':status']);
          outcome.headers = h;
        });
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on(
          'error',
          (e: NodeJS.ErrnoException) => (outcome.streamError = e.code ?? e.message),
        );
        stream.on('end', done);
        stream.on('close', done);
        void Promise.resolve(drive(stream)).catch(() => undefined);
      }),
      ms,
      'HTTP/2 exchange',
    );
  } finally {
    session.destroy();
  }
}

/** Writes `total` bytes in pieces, stopping early if the stream goes away. */
async function writeBytes(stream: http2.ClientHttp2Stream, total: number, piece = MIB) {
  for (let sent = 0; sent < total && !stream.destroyed; sent += piece) {
    const data = Buffer.alloc(Math.min(piece, total - sent), 0x61);
    if (!stream.write(data)) {
      await Promise.race([once(stream, 'drain'), once(stream, 'close')]);
    }
  }
}

// ---------------------------------------------------------------------------------------------

describe.each(PROTOCOLS)('malformed requests over %s', (protocol) => {
  const serialization: [string, string, string | Buffer][] = [
    ['truncated JSON', 'PutRecord', '{"StreamName": "wire", "PartitionKey": "k", "Data": "AAAA"'],
    ['trailing garbage after the object', 'DescribeLimits', '{} x'],
    ['single-quoted JSON', 'DescribeStreamSummary', "{'StreamName': 'junk'}"],
    ['a bare word', 'DescribeLimits', 'hello'],
    ['a JSON array', 'DescribeStreamSummary', '[{"StreamName": "junk"}]'],
    ['a JSON number', 'DescribeLimits', '5'],
    ['a JSON string', 'DescribeLimits', '"junk"'],
    ['JSON null', 'DescribeLimits', 'null'],
    ['JSON true', 'DescribeLimits', 'true'],
    ['200,000 nested arrays', 'DescribeLimits', '['.repeat(200_000) + ']'.repeat(200_000)],
    ['ShardCount "two"', 'CreateStream', '{"StreamName": "never", "ShardCount": "two"}'],
    [
      'StreamModeDetails as a string',
      'CreateStream',
      '{"StreamName": "never", "StreamModeDetails": "ON_DEMAND"}',
    ],
    ['Data 5', 'PutRecord', '{"StreamName": "junk", "PartitionKey": "k", "Data": 5}'],
    [
      'Data "not base64!"',
      'PutRecord',
      '{"StreamName": "junk", "PartitionKey": "k", "Data": "not base64!"}',
    ],
    [
      'StreamName as a list',
      'PutRecord',
      '{"StreamName": ["junk"], "PartitionKey": "k", "Data": "AAAA"}',
    ],
    ['Records {}', 'PutRecords', '{"StreamName": "junk", "Records": {}}'],
    ['Records [5]', 'PutRecords', '{"StreamName": "junk", "Records": [5]}'],
    [
      'Records[0].Data as a list',
      'PutRecords',
      '{"StreamName": "junk", "Records": [{"PartitionKey": "k", "Data": [1, 2]}]}',
    ],
    ['StreamName 7', 'DescribeStreamSummary', '{"StreamName": 7}'],
    ['Limit 1.5', 'ListStreams', '{"Limit": 1.5}'],
    ['Limit "10"', 'ListStreams', '{"Limit": "10"}'],
    ['a tag value 1', 'AddTagsToStream', '{"StreamName": "nope", "Tags": {"a": 1}}'],
    ['Tags as a list', 'AddTagsToStream', '{"StreamName": "nope", "Tags": []}'],
    [
      'Tags with an object under __proto__',
      'AddTagsToStream',
      '{"StreamName": "nope", "Tags": {"__proto__": {"x": "y"}}}',
    ],
    [
      'Timestamp "yesterday"',
      'GetShardIterator',
      '{"StreamName": "junk", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": "yesterday"}',
    ],
    [
      'NewStartingHashKey 5',
      'SplitShard',
      '{"StreamName": "junk", "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": 5}',
    ],
    [
      'AdjacentShardToMerge as a list',
      'MergeShards',
      '{"StreamName": "junk", "ShardToMerge": "a", "AdjacentShardToMerge": ["b"]}',
    ],
    [
      'TargetShardCount "4"',
      'UpdateShardCount',
      '{"StreamName": "junk", "TargetShardCount": "4", "ScalingType": "UNIFORM_SCALING"}',
    ],
    [
      'TargetShardCount 2.5',
      'UpdateShardCount',
      '{"StreamName": "junk", "TargetShardCount": 2.5, "ScalingType": "UNIFORM_SCALING"}',
    ],
    [
      'ScalingType 1',
      'UpdateShardCount',
      '{"StreamName": "junk", "TargetShardCount": 4, "ScalingType": 1}',
    ],
    [
      'EnforceConsumerDeletion "yes"',
      'DeleteStream',
      '{"StreamName": "nope", "EnforceConsumerDeletion": "yes"}',
    ],
  ];

  it.each(serialization)('%s -> 400 SerializationException', async (_label, operation, body) => {
    const reply = await call(protocol, main, PREFIX + operation, body);
    expectAwsError(reply, 400, 'SerializationException');
  });

  it('invalid UTF-8 in the body -> 400 SerializationException (not silently replaced)', async () => {
    const invalid = [
      Buffer.from([0xff, 0xfe]), // never valid
      Buffer.from([0xc0, 0xaf]), // overlong '/'
      Buffer.from([0xed, 0xa0, 0x80]), // a UTF-16 surrogate
      Buffer.from([0xe2, 0x82]), // truncated sequence
    ];
    for (const bytes of invalid) {
      // A partition key with invalid bytes: if decoded leniently, a record with U+FFFD in its key
      // would be stored and acknowledged, a key the client never sent.
      const body = Buffer.concat([
        Buffer.from('{"StreamName": "junk", "PartitionKey": "k', 'utf8'),
        bytes,
        Buffer.from('", "Data": "AAAA"}', 'utf8'),
      ]);
      const reply = await call(protocol, main, `${PREFIX}PutRecord`, body);
      expectAwsError(reply, 400, 'SerializationException');
    }
  });

  it.each([
    ['missing', undefined],
    ['an unknown prefix', 'DynamoDB_20120810.ListTables'],
    ['no operation', 'Kinesis_20131202'],
    ['an empty operation', 'Kinesis_20131202.'],
    ['the wrong API version', 'Kinesis_20121212.DescribeLimits'],
    ['a lower-case prefix', 'kinesis_20131202.DescribeLimits'],
    ['a lower-case operation', 'Kinesis_20131202.describelimits'],
    ['an unknown operation', 'Kinesis_20131202.Frobnicate'],
    ['two targets', 'Kinesis_20131202.DescribeLimits, Kinesis_20131202.DeleteStream'],
    ['__proto__', 'Kinesis_20131202.__proto__'],
  ])('X-Amz-Target %s -> 400 UnknownOperationException', async (_label, target) => {
    const reply = await call(protocol, main, target, '{"StreamName": "junk"}');
    expectAwsError(reply, 400, 'UnknownOperationException');
  });

  it.each([
    'constructor',
    'toString',
    'valueOf',
    'hasOwnProperty',
    'isPrototypeOf',
    'toLocaleString',
  ])('X-Amz-Target naming Object.prototype.%s -> 400 UnknownOperationException', async (name) => {
    const reply = await call(protocol, main, PREFIX + name, '{}');
    expectAwsError(reply, 400, 'UnknownOperationException');
  });

  it.each(['GET', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'])(
    '%s instead of POST -> 405',
    async (method) => {
      const reply = await call(protocol, main, `${PREFIX}DescribeLimits`, '{}', { method });
      expectAwsError(reply, 405, 'UnknownOperationException');
    },
  );

  it('HEAD instead of POST -> 405', async () => {
    const reply = await call(protocol, main, `${PREFIX}DescribeLimits`, '', { method: 'HEAD' });
    expect(reply.status).toBe(405);
    expect(reply.headers['x-amzn-errortype']).toBe('UnknownOperationException');
  });

  it.each(['EnableEnhancedMonitoring', 'StartStreamEncryption'])(
    'known but unsupported %s -> 400 UnsupportedOperationException',
    async (operation) => {
      const reply = await call(protocol, main, PREFIX + operation, '{"StreamName": "junk"}');
      expectAwsError(reply, 400, 'UnsupportedOperationException');
    },
  );
});

describe('HTTP/1.1 connections survive refused requests', () => {
  it('pipelined requests with errors in between are answered in order on one connection', async () => {
    const conn = await RawConnection.open(main);
    try {
      await conn.write(
        Buffer.concat([
          rawRequest(`${PREFIX}DescribeLimits`, '{}'),
          rawRequest(`${PREFIX}DescribeLimits`, '{"broken'),
          // Refused before its body is read: the unread body must not become the next request.
          rawRequest(`${PREFIX}Frobnicate`, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
          rawRequest(`${PREFIX}StartStreamEncryption`, '{"StreamARN": "junk"}'),
          rawRequest(`${PREFIX}DescribeLimits`, '{}'),
        ]),
      );
      const statuses: number[] = [];
      const types: (string | undefined)[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await conn.response();
        expect(res, `response ${i}`).not.toBeNull();
        statuses.push((res as RawResponse).status);
        types.push((res as RawResponse).headers['x-amzn-errortype']);
      }
      expect(statuses).toEqual([200, 400, 400, 400, 200]);
      expect(types).toEqual([
        undefined,
        'SerializationException',
        'UnknownOperationException',
        'UnsupportedOperationException',
        undefined,
      ]);
      expect(conn.closed).toBe(false);
    } finally {
      conn.destroy();
    }
  });
});

describe('oversized bodies', () => {
  it('HTTP/1.1: Content-Length above 12 MiB -> 413 before any body byte, then the connection closes', async () => {
    const conn = await RawConnection.open(main);
    try {
      const started = Date.now();
      await conn.write(
        rawRequest(`${PREFIX}PutRecords`, '', [], { contentLength: DEFAULT_MAX_BODY + 1 }),
      );
      const res = await conn.response();
      expect(res?.status).toBe(413);
      expect(res?.headers['x-amzn-errortype']).toBe('SerializationException');
      expect(Date.now() - started).toBeLessThan(2_000);
      await conn.waitClosed();
    } finally {
      conn.destroy();
    }
  });

  it('HTTP/1.1: an absurd Content-Length (2^53 + 1) -> 413 and close', async () => {
    const conn = await RawConnection.open(main);
    try {
      await conn.write(
        rawRequest(`${PREFIX}PutRecords`, '', [], { contentLength: '9007199254740993' }),
      );
      const res = await expectRefusedOrClosed(conn, [400, 413]);
      expect(res).not.toBeNull();
    } finally {
      conn.destroy();
    }
  });

  it('HTTP/1.1: a body of exactly maxBodyBytes is accepted, one byte more is 413', async () => {
    const at = (size: number) => `{"Pad": "${'a'.repeat(size - 11)}"}`;
    expect(Buffer.byteLength(at(STRICT.maxBodyBytes))).toBe(STRICT.maxBodyBytes);
    const fits = await call(
      'http/1.1',
      strict.port,
      `${PREFIX}DescribeLimits`,
      at(STRICT.maxBodyBytes),
    );
    expect(fits.status).toBe(200);
    const conn = await RawConnection.open(strict.port);
    try {
      await conn.write(rawRequest(`${PREFIX}DescribeLimits`, at(STRICT.maxBodyBytes + 1)));
      expect((await conn.response())?.status).toBe(413);
      // The refused body was announced and sent in full, so the connection may stay open (the
      // server read and dropped the body) or close; if it stays open it must still work.
      if (!conn.closed) {
        await conn.write(rawRequest(`${PREFIX}DescribeLimits`, '{}'));
        expect((await conn.response())?.status).toBe(200);
      }
    } finally {
      conn.destroy();
    }
  });

  it('HTTP/1.1: a chunked body that grows past the limit -> 413 and close (strict and default limits)', async () => {
    for (const [port, limit] of [
      [strict.port, STRICT.maxBodyBytes],
      [main, DEFAULT_MAX_BODY],
    ] as const) {
      const conn = await RawConnection.open(port);
      try {
        await conn.write(
          rawRequest(`${PREFIX}PutRecords`, '', ['Transfer-Encoding: chunked'], {
            contentLength: null,
          }),
        );
        const piece = Math.min(limit, MIB);
        let sent = 0;
        // Just past the limit, then stop: no terminating chunk, so only the limit can answer.
        while (sent <= limit && !conn.closed) {
          const size = Math.min(piece, limit + 1 - sent);
          await conn.write(chunk(Buffer.alloc(size, 0x61)));
          sent += size;
        }
        const res = await conn.response();
        expect(res?.status, `limit ${limit}`).toBe(413);
        await conn.waitClosed();
      } finally {
        conn.destroy();
      }
    }
  });

  it('HTTP/2: content-length above 12 MiB -> 413 without the body being sent', async () => {
    const outcome = await h2Exchange(
      main,
      { 'x-amz-target': `${PREFIX}PutRecords`, 'content-length': String(DEFAULT_MAX_BODY + 1) },
      () => undefined,
    );
    expect(outcome.status).toBe(413);
    expect(outcome.headers?.['x-amzn-errortype']).toBe('SerializationException');
  });

  it('HTTP/2: a body without content-length that grows past the limit -> 413 (strict and default limits)', async () => {
    for (const [port, limit] of [
      [strict.port, STRICT.maxBodyBytes],
      [main, DEFAULT_MAX_BODY],
    ] as const) {
      const outcome = await h2Exchange(
        port,
        { 'x-amz-target': `${PREFIX}PutRecords` },
        (stream) => writeBytes(stream, limit + 16 * 1024, Math.min(limit, MIB)),
        {},
        10_000,
      );
      expect(outcome.status, `limit ${limit}`).toBe(413);
    }
  });
});

describe('lying Content-Length', () => {
  it('HTTP/1.1: declares more than it sends, then waits -> 408 at the body timeout, then close', async () => {
    const conn = await RawConnection.open(strict.port);
    try {
      await conn.write(
        rawRequest(`${PREFIX}PutRecord`, '{"StreamName": "wire"', [], { contentLength: 1000 }),
      );
      const started = Date.now();
      const res = await expectRefusedOrClosed(conn, [408]);
      expect(res?.status).toBe(408);
      expect(res?.headers['x-amzn-errortype']).toBe('RequestTimeoutException');
      const waited = Date.now() - started;
      expect(waited).toBeGreaterThanOrEqual(STRICT.bodyTimeoutMs - 50);
      expect(waited).toBeLessThan(2_000);
    } finally {
      conn.destroy();
    }
  });

  it('HTTP/1.1: declares less than it sends -> the extra bytes are refused (400 or close)', async () => {
    const r = record('short-content-length');
    const body = JSON.stringify({ StreamName: STREAM, ...r });
    const conn = await RawConnection.open(main);
    try {
      await conn.write(
        Buffer.concat([rawRequest(`${PREFIX}PutRecord`, body), Buffer.from('{"x": 1}}}\r\n\r\n')]),
      );
      const first = await conn.response();
      if (first?.status === 200) {
        // The declared body was a whole request: served, then the rest refused.
        const out = JSON.parse(first.body.toString()) as Json;
        acknowledged.set(out.SequenceNumber as string, [r.PartitionKey, r.Data]);
        await expectRefusedOrClosed(conn, [400]);
      } else {
        // Node's parser reads the extra bytes in the same pass and answers the broken "next
        // request" before the first one is answered; the first may still have been executed.
        indeterminate.add(`${r.PartitionKey}|${r.Data}`);
        expect(first?.status ?? 400).toBe(400);
        await conn.waitClosed();
      }
    } finally {
      conn.destroy();
    }
  });

  it('HTTP/1.1: declares more, then hangs up mid-body (destroy or half-close)', async () => {
    const body = JSON.stringify({ StreamName: STREAM, ...record('never-finished') });
    for (const hangUp of ['destroy', 'end'] as const) {
      for (const port of [main, strict.port]) {
        const conn = await RawConnection.open(port);
        await conn.write(
          rawRequest(`${PREFIX}PutRecord`, body.slice(0, 20), [], { contentLength: body.length }),
        );
        await sleep(20);
        if (hangUp === 'destroy') conn.destroy();
        else conn.socket.end();
        await conn.waitClosed();
      }
    }
    // And one that hangs up with 50 pipelined requests unanswered.
    const conn = await RawConnection.open(main);
    await conn.write(
      Buffer.concat(Array.from({ length: 50 }, () => rawRequest(`${PREFIX}DescribeLimits`, '{}'))),
    );
    conn.destroy();
    await sleep(50);
  });

  it('HTTP/2: declares more than it sends, then waits -> 408 at the body timeout', async () => {
    const outcome = await h2Exchange(
      strict.port,
      { 'x-amz-target': `${PREFIX}PutRecord`, 'content-length': '1000' },
      (stream) => void stream.write('{"StreamName": "wire"'),
    );
    expect(outcome.status).toBe(408);
    expect(outcome.headers?.['x-amzn-errortype']).toBe('RequestTimeoutException');
  });

  it('HTTP/2: declares more than it sends, then ends the stream -> refused', async () => {
    const outcome = await h2Exchange(
      main,
      { 'x-amz-target': `${PREFIX}PutRecord`, 'content-length': '1000' },
      (stream) => void stream.end(JSON.stringify({ StreamName: STREAM, ...record('cl-too-big') })),
    );
    if (outcome.status !== undefined) {
      expect(outcome.status).toBeGreaterThanOrEqual(400);
      expect(outcome.status).toBeLessThan(500);
    } else {
      expect(outcome.rstCode).toBe(http2.constants.NGHTTP2_PROTOCOL_ERROR);
    }
  });

  it('HTTP/2: declares less than it sends -> refused', async () => {
    const outcome = await h2Exchange(
      main,
      { 'x-amz-target': `${PREFIX}PutRecord`, 'content-length': '10' },
      (stream) =>
        void stream.end(JSON.stringify({ StreamName: STREAM, ...record('cl-too-small') })),
    );
    if (outcome.status !== undefined) {
      expect(outcome.status).toBeGreaterThanOrEqual(400);
      expect(outcome.status).toBeLessThan(500);
    } else {
      expect(outcome.rstCode).toBe(http2.constants.NGHTTP2_PROTOCOL_ERROR);
    }
  });
});

describe('slow clients', () => {
  /** Normal requests on both gateways and protocols while slow clients hold connections. */
  async function othersAreServed(slow: RawConnection[]): Promise<void> {
    await expectServing();
    for (const conn of slow) expect(conn.closed, 'a slow client was cut off early').toBe(false);
  }

  function drip(conn: RawConnection, bytes: string | Buffer, everyMs: number): () => void {
    const data = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    let at = 0;
    const timer = setInterval(() => {
      if (at >= data.length || conn.closed) return clearInterval(timer);
      void conn.write(data.subarray(at, at + 1));
      at += 1;
    }, everyMs);
    return () => clearInterval(timer);
  }

  it('a client that sends nothing is disconnected at the sniff timeout; others are served meanwhile', async () => {
    const silent = await RawConnection.open(strict.port);
    try {
      await othersAreServed([silent]);
      const lived = await silent.waitClosed();
      expect(lived).toBeGreaterThanOrEqual(STRICT.sniffTimeoutMs - 50);
      expect(lived).toBeLessThan(2_000);
      expect(silent.received.length).toBe(0);
    } finally {
      silent.destroy();
    }
  });

  it('part of the HTTP/2 preface, sent at once or one byte at a time, is disconnected at the sniff timeout', async () => {
    const partial = await RawConnection.open(strict.port);
    const dripper = await RawConnection.open(strict.port);
    const stop = drip(dripper, HTTP2_PREFACE, 40);
    try {
      await partial.write(HTTP2_PREFACE.subarray(0, 16));
      await othersAreServed([partial, dripper]);
      for (const conn of [partial, dripper]) {
        const lived = await conn.waitClosed();
        expect(lived).toBeGreaterThanOrEqual(STRICT.sniffTimeoutMs - 50);
        expect(lived).toBeLessThan(2_000);
      }
    } finally {
      stop();
      partial.destroy();
      dripper.destroy();
    }
  });

  it('a body dripped one byte at a time is answered 408 at the body timeout', async () => {
    for (const port of [strict.port]) {
      const conn = await RawConnection.open(port);
      const body = JSON.stringify({ StreamName: STREAM, ...record('dripped-body') });
      await conn.write(rawRequest(`${PREFIX}PutRecord`, '', [], { contentLength: body.length }));
      const stop = drip(conn, body, 40);
      try {
        await othersAreServed([conn]);
        const res = await conn.response();
        expect(res?.status).toBe(408);
        const lived = await conn.waitClosed();
        expect(lived).toBeLessThan(2_000);
      } finally {
        stop();
        conn.destroy();
      }
    }
  });

  it('slowloris: headers dripped one byte at a time are cut off at the headers timeout', async () => {
    const conn = await RawConnection.open(strict.port);
    const headers = `POST / HTTP/1.1\r\nHost: ${HOST}\r\n${'X-Slow: loris\r\n'.repeat(200)}`;
    const stop = drip(conn, headers, 20);
    try {
      await othersAreServed([conn]);
      // headersTimeoutMs is 500: a 408 or a close must come well within 2.5 s.
      const res = await conn.response(2_500);
      if (res !== null) expect(res.status).toBe(408);
      expect(await conn.waitClosed(500)).toBeLessThan(3_000);
    } finally {
      stop();
      conn.destroy();
    }
  });

  it('a request line followed by silence is cut off at the headers timeout', async () => {
    const conn = await RawConnection.open(strict.port);
    try {
      await conn.write('POST / HTTP/1.1\r\n');
      await othersAreServed([conn]);
      const res = await conn.response(2_500);
      if (res !== null) expect(res.status).toBe(408);
      await conn.waitClosed(500);
    } finally {
      conn.destroy();
    }
  });
});

describe('junk headers', () => {
  it('HTTP/1.1: 5,000 headers -> 431 or closed', async () => {
    const junk = Array.from({ length: 5_000 }, (_, i) => `X-Junk-${i}: ${i}`);
    const res = await sendHostile(
      main,
      rawRequest(`${PREFIX}DescribeLimits`, '{}', junk),
      [431, 400],
    );
    if (res) expect(res.status).toBe(431);
  });

  it('HTTP/1.1: one 100 KiB header -> 431 or closed', async () => {
    const res = await sendHostile(
      main,
      rawRequest(`${PREFIX}DescribeLimits`, '{}', [`X-Huge: ${'a'.repeat(100 * 1024)}`]),
      [431, 400],
    );
    if (res) expect(res.status).toBe(431);
  });

  it('HTTP/1.1: headers just over 16 KiB in total -> 431 or closed', async () => {
    const junk = Array.from({ length: 17 }, (_, i) => `X-Pad-${i}: ${'b'.repeat(1_000)}`);
    await sendHostile(main, rawRequest(`${PREFIX}DescribeLimits`, '{}', junk), [431, 400]);
  });

  it('HTTP/2: 5,000 headers -> the stream or the session is refused', async () => {
    const headers = Object.fromEntries(
      Array.from({ length: 5_000 }, (_, i) => [`x-junk-${i}`, String(i)]),
    );
    const outcome = await h2Exchange(
      main,
      { 'x-amz-target': `${PREFIX}DescribeLimits`, ...headers },
      (stream) => void stream.end('{}'),
      { maxSendHeaderBlockLength: 16 * MIB },
    );
    expect(outcome.status === undefined || outcome.status >= 400, `status ${outcome.status}`).toBe(
      true,
    );
  });

  it('HTTP/2: one 100 KiB header -> refused (as the first request of a session)', async () => {
    const outcome = await h2Exchange(
      main,
      { 'x-amz-target': `${PREFIX}DescribeLimits`, 'x-huge': 'a'.repeat(100 * 1024) },
      (stream) => void stream.end('{}'),
      { maxSendHeaderBlockLength: 16 * MIB },
    );
    expect(outcome.status === undefined || outcome.status >= 400, `status ${outcome.status}`).toBe(
      true,
    );
  });

  it('HTTP/2: one 100 KiB header -> refused (after the settings exchange)', async () => {
    const session = http2.connect(`http://${HOST}:${main}`, { maxSendHeaderBlockLength: 16 * MIB });
    session.on('error', () => undefined);
    try {
      // A first request completes the settings exchange, so the header limit is in force.
      await within(once(session, 'remoteSettings'), WAIT_MS, 'settings');
      const first = await within(
        new Promise<number>((resolve, reject) => {
          const s = session.request({
            ':method': 'POST',
            'x-amz-target': `${PREFIX}DescribeLimits`,
          });
          s.on('response', (h) => resolve(Number(h[':status'])));
          s.on('error', reject);
          s.resume();
          s.end('{}');
        }),
        WAIT_MS,
        'first request',
      );
      expect(first).toBe(200);
      const outcome = await within(
        new Promise<{ status?: number; rst?: number }>((resolve) => {
          const s = session.request({
            ':method': 'POST',
            'x-amz-target': `${PREFIX}DescribeLimits`,
            'x-huge': 'a'.repeat(100 * 1024),
          });
          let status: number | undefined;
          s.on('response', (h) => (status = Number(h[':status'])));
          s.on('error', () => undefined);
          s.on('close', () =>
            resolve({ ...(status === undefined ? {} : { status }), rst: s.rstCode }),
          );
          s.resume();
          s.end('{}');
        }),
        WAIT_MS,
        'huge header',
      );
      expect(
        outcome.status === undefined || outcome.status >= 400,
        `status ${outcome.status}`,
      ).toBe(true);
    } finally {
      session.destroy();
    }
  });

  it('HTTP/2: a CONTINUATION flood (10,000 frames, never END_HEADERS) ends the connection', async () => {
    const conn = await RawConnection.open(main);
    try {
      const flood = Buffer.concat(
        Array.from({ length: 10_000 }, (_, i) =>
          frame(FRAME.CONTINUATION, 0, 1, hpackLiteral(`x-flood-${i}`, 'v'.repeat(16))),
        ),
      );
      await conn.write(Buffer.concat([H2_START, frame(FRAME.HEADERS, 0, 1, HPACK_POST), flood]));
      await conn.waitReceived((bytes) =>
        framesOf(bytes.subarray(0)).some(
          (f) => f.type === FRAME.GOAWAY || (f.type === FRAME.RST_STREAM && f.streamId === 1),
        ),
      );
      const frames = framesOf(conn.received);
      expect(frames.some((f) => f.type === FRAME.HEADERS)).toBe(false);
      expect(
        frames.some((f) => f.type === FRAME.GOAWAY || f.type === FRAME.RST_STREAM) || conn.closed,
      ).toBe(true);
    } finally {
      conn.destroy();
    }
  });
});

describe('garbage on the wire', () => {
  it.each([
    ['random bytes', Buffer.concat([Buffer.from([0x00, 0xff]), randomBytes(254)])],
    ['a near miss of the HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'],
    ['a request line only, then garbage', 'POST / HTTP/1.1\r\n\x01\x02\x03\r\n\r\n'],
    ['an unknown HTTP version', 'POST / HTTP/9.9\r\nHost: x\r\n\r\n'],
    ['a header line without a colon', 'POST / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n'],
    ['a NUL byte in a header', 'POST / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n'],
    [
      'two different Content-Lengths',
      'POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Kinesis_20131202.DescribeLimits\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{} ',
    ],
    [
      'Content-Length and Transfer-Encoding',
      'POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Kinesis_20131202.DescribeLimits\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    [
      'a negative Content-Length',
      'POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Kinesis_20131202.DescribeLimits\r\nContent-Length: -1\r\n\r\n',
    ],
    [
      'a non-numeric Content-Length',
      'POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Kinesis_20131202.DescribeLimits\r\nContent-Length: 1e3\r\n\r\n',
    ],
    [
      'an overflowing Content-Length',
      'POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Kinesis_20131202.DescribeLimits\r\nContent-Length: 99999999999999999999999\r\n\r\n',
    ],
    [
      'a bad chunk size',
      'POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Kinesis_20131202.DescribeLimits\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
    ],
  ])('%s -> 400 or closed', async (_label, bytes) => {
    await sendHostile(main, bytes, [400]);
  });

  it('the HTTP/2 preface followed by garbage -> GOAWAY, and a close by the idle timeout', async () => {
    // Node's HTTP/2 server answers a connection error with GOAWAY but can leave the socket open
    // until the idle timeout; a gateway with a short one shows the connection does end.
    const idle = await startGateway({
      host: HOST,
      port: 0,
      api: t.client,
      logger: recordingLogger(),
      limits: { idleTimeoutMs: 1_000 },
    });
    try {
      await preludeGarbage(main, false);
      await preludeGarbage(idle.port, true);
    } finally {
      await idle.close();
    }
  });

  async function preludeGarbage(port: number, mustClose: boolean): Promise<void> {
    for (const garbage of [
      Buffer.alloc(64, 0xff),
      randomBytes(256),
      // A valid start, then a DATA frame on stream 0 (a connection error).
      Buffer.concat([
        frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0)),
        frame(FRAME.DATA, 0, 0, Buffer.from('{}')),
      ]),
      // A valid start, then a HEADERS frame whose HPACK block names table entry 1,000,000.
      Buffer.concat([
        frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0)),
        frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, hpackInt(1_000_000, 7, 0x80)),
      ]),
    ]) {
      const conn = await RawConnection.open(port);
      try {
        await conn.write(Buffer.concat([HTTP2_PREFACE, garbage]));
        await conn.waitReceived((bytes) => framesOf(bytes).some((f) => f.type === FRAME.GOAWAY));
        const goaway = framesOf(conn.received).find((f) => f.type === FRAME.GOAWAY);
        expect(goaway, `no GOAWAY after ${garbage.length} bytes of garbage`).toBeDefined();
        // The error code: anything but NO_ERROR.
        expect((goaway as Frame).payload.readUInt32BE(4)).not.toBe(0);
        if (mustClose) expect(await conn.waitClosed(2_500)).toBeLessThan(2_500);
      } finally {
        conn.destroy();
      }
    }
  }

  it('HTTP/2: 100 streams reset mid-body, then the same session serves a request', async () => {
    const session = http2.connect(`http://${HOST}:${main}`);
    session.on('error', () => undefined);
    try {
      const body = JSON.stringify({ StreamName: STREAM, ...record('reset-mid-body') });
      await within(
        Promise.all(
          Array.from({ length: 100 }, async () => {
            const stream = session.request({
              ':method': 'POST',
              'x-amz-target': `${PREFIX}PutRecord`,
              'content-type': JSON_TYPE,
              'content-length': String(body.length),
            });
            stream.on('error', () => undefined);
            stream.write(body.slice(0, 30));
            await sleep(10);
            stream.close(http2.constants.NGHTTP2_CANCEL);
            await once(stream, 'close');
          }),
        ),
        WAIT_MS,
        '100 resets',
      );
      const reply = await within(
        new Promise<number>((resolve, reject) => {
          const s = session.request({
            ':method': 'POST',
            'x-amz-target': `${PREFIX}DescribeLimits`,
          });
          s.on('response', (h) => resolve(Number(h[':status'])));
          s.on('error', reject);
          s.resume();
          s.end('{}');
        }),
        WAIT_MS,
        'request after resets',
      );
      expect(reply).toBe(200);
    } finally {
      session.destroy();
    }
  });

  it('HTTP/2: rapid reset (1,000 streams opened and cancelled at once) does not hurt anyone else', async () => {
    const session = http2.connect(`http://${HOST}:${main}`);
    session.on('error', () => undefined);
    let goaway: number | undefined;
    session.on('goaway', (code: number) => (goaway = code));
    const sessionClosed = once(session, 'close');
    try {
      await within(once(session, 'connect'), WAIT_MS, 'h2 connect');
      for (let batch = 0; batch < 10 && !session.destroyed && !session.closed; batch++) {
        let closed = 0;
        const streams = Array.from({ length: 100 }, () => {
          const s = session.request({
            ':method': 'POST',
            'x-amz-target': `${PREFIX}PutRecord`,
            'content-length': '1000',
          });
          s.on('error', () => undefined);
          s.close(http2.constants.NGHTTP2_CANCEL);
          return once(s, 'close').then(() => closed++);
        });
        // The server may end the whole session instead (a rapid-reset defence): also fine. Node's
        // client now and then never emits 'close' for a stream it cancelled before sending it
        // (seen: 1 in 1,000, with nothing left on the server), so a batch waits a bounded time
        // and then needs almost every stream closed. Whether anyone else was hurt is what the
        // afterEach check of both gateways proves.
        await Promise.race([Promise.all(streams), sessionClosed, sleep(WAIT_MS)]);
        if (!session.closed && !session.destroyed && closed < 95) {
          throw new Error(
            `batch ${batch}: only ${closed}/100 cancelled streams closed within ${WAIT_MS} ms, ` +
              `goaway ${goaway}, state ${JSON.stringify(session.state)}`,
          );
        }
      }
    } finally {
      session.destroy();
    }
  });

  it('HTTP/2: the client destroys its socket mid-body', async () => {
    const socket = net.connect(main, HOST);
    socket.on('error', () => undefined);
    const session = http2.connect(`http://${HOST}:${main}`, { createConnection: () => socket });
    session.on('error', () => undefined);
    const stream = session.request({
      ':method': 'POST',
      'x-amz-target': `${PREFIX}PutRecord`,
      'content-length': '100000',
    });
    stream.on('error', () => undefined);
    stream.write(
      `{"StreamName": "${STREAM}", "PartitionKey": "gone", "Data": "${'A'.repeat(1000)}`,
    );
    await sleep(30);
    socket.destroy();
    await within(once(session, 'close'), WAIT_MS, 'session close');
  });

  it('a gateway at maxConnections refuses more connections and recovers when they close', async () => {
    const tiny = await startGateway({
      host: HOST,
      port: 0,
      api: t.client,
      logger: recordingLogger(),
      limits: { maxConnections: 3, sniffTimeoutMs: 5_000 },
    });
    const held: RawConnection[] = [];
    try {
      for (let i = 0; i < 3; i++) held.push(await RawConnection.open(tiny.port));
      await sleep(50);
      const extra = await RawConnection.open(tiny.port);
      await extra.write(rawRequest(`${PREFIX}DescribeLimits`, '{}'));
      expect(await extra.response()).toBeNull();
      for (const conn of held) conn.destroy();
      // The server counts the closes asynchronously: retry briefly.
      let status = 0;
      for (let i = 0; i < 20 && status !== 200; i++) {
        status = await call('http/1.1', tiny.port, `${PREFIX}DescribeLimits`, '{}').then(
          (r) => r.status,
          () => 0,
        );
        if (status !== 200) await sleep(50);
      }
      expect(status).toBe(200);
      expect((await call('h2', tiny.port, `${PREFIX}DescribeLimits`, '{}')).status).toBe(200);
    } finally {
      for (const conn of held) conn.destroy();
      await tiny.close();
    }
  });
});

describe('load', () => {
  it('200 concurrent connections (100 HTTP/1.1, 100 HTTP/2) each put a record: all succeed', async () => {
    const results = await within(
      Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const protocol: Protocol = i % 2 === 0 ? 'http/1.1' : 'h2';
          const r = record(`concurrent-${i}`);
          const reply = await call(
            protocol,
            main,
            `${PREFIX}PutRecord`,
            JSON.stringify({ StreamName: STREAM, ...r }),
          );
          return { reply, r };
        }),
      ),
      20_000,
      '200 concurrent puts',
    );
    const statuses = results.map(({ reply }) => reply.status);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    for (const { reply, r } of results) {
      const out = JSON.parse(reply.body.toString()) as Json;
      acknowledged.set(out.SequenceNumber as string, [r.PartitionKey, r.Data]);
    }
  });
});

describe('afterwards', () => {
  it('every record the gateway acknowledged reads back exactly, and nothing else', async () => {
    for (const protocol of PROTOCOLS) {
      const listed = await ok(protocol, main, 'ListShards', { StreamName: STREAM });
      const shards = (listed.Shards as Json[]).map((s) => s.ShardId as string);
      expect(shards).toHaveLength(2);
      const read = new Map<string, [string, string]>();
      for (const shardId of shards) {
        let iterator = (
          await ok(protocol, main, 'GetShardIterator', {
            StreamName: STREAM,
            ShardId: shardId,
            ShardIteratorType: 'TRIM_HORIZON',
          })
        ).ShardIterator as string;
        for (let page = 0; page < 100; page++) {
          const got = await ok(protocol, main, 'GetRecords', {
            ShardIterator: iterator,
            Limit: 10_000,
          });
          const records = (got.Records ?? []) as Json[];
          for (const r of records) {
            read.set(r.SequenceNumber as string, [r.PartitionKey as string, r.Data as string]);
          }
          if (records.length === 0) break;
          iterator = got.NextShardIterator as string;
        }
      }
      expect(acknowledged.size).toBeGreaterThanOrEqual(210);
      // Everything acknowledged, byte for byte ...
      const missing = [...acknowledged].filter(
        ([seq, [pk, data]]) => read.get(seq)?.[0] !== pk || read.get(seq)?.[1] !== data,
      );
      expect(missing).toEqual([]);
      // ... and nothing else but records whose answer was lost (never half-sent ones).
      const extra = [...read]
        .filter(([seq]) => !acknowledged.has(seq))
        .map(([, [pk, data]]) => `${pk}|${data}`);
      expect(extra.filter((e) => !indeterminate.has(e))).toEqual([]);
      expect(new Set(extra).size).toBe(extra.length);
    }
  });
});
