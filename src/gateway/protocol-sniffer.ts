import type { Socket } from 'node:net';

/**
 * One port for HTTP/1.1 and cleartext HTTP/2 with prior knowledge. The AWS SDK for JavaScript v3
 * Kinesis client speaks HTTP/2 (also to http:// endpoints) and the AWS CLI speaks HTTP/1.1, but
 * Node's cleartext HTTP/2 server cannot also speak HTTP/1.1. So each connection's first bytes are
 * compared with the 24-byte HTTP/2 client preface, and the socket, with those bytes put back, is
 * handed to the server that speaks its protocol.
 */

export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export type Protocol = 'http/1.1' | 'h2c';

export interface SniffOptions {
  /** A client that has not sent enough bytes to tell by then is disconnected. */
  readonly timeoutMs: number;
  readonly onProtocol: (socket: Socket, protocol: Protocol) => void;
}

export function sniffProtocol(socket: Socket, options: SniffOptions): void {
  let buffered: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), options.timeoutMs);
  const finish = (protocol: Protocol) => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
    socket.pause();
    socket.unshift(buffered);
    options.onProtocol(socket, protocol);
  };
  const onData = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const n = Math.min(buffered.length, HTTP2_PREFACE.length);
    if (!buffered.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n))) finish('http/1.1');
    else if (buffered.length >= HTTP2_PREFACE.length) finish('h2c');
  };
  // Errors before the protocol is known (a reset, say) end the connection and nothing else.
  const onError = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  socket.on('data', onData);
  socket.on('error', onError);
  socket.once('close', () => clearTimeout(timer));
}
