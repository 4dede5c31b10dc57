import { createServer } from 'node:net';

/**
 * Ports for test and bench servers, chosen below the kernel's ephemeral range (32768-60999 on
 * Linux). A port the OS picks for `listen(0)` can be taken, between our probe and the server's
 * bind, by any outgoing connection on the machine, which is how a CI run failed with EADDRINUSE.
 * Ports below the range are never picked for outgoing connections, and each vitest worker
 * (VITEST_POOL_ID 1..n) hands out ports from its own block, so two test files running at once
 * never pick the same one.
 */
const FIRST_PORT = 15_000;
const BLOCK_SIZE_PORTS = 1_500;
const BLOCKS = 11; // 15000..31499: below 32768

const poolId = Number(process.env.VITEST_POOL_ID ?? '0');
const block = Number.isInteger(poolId) && poolId > 0 ? (poolId - 1) % (BLOCKS - 1) : BLOCKS - 1;
const blockStart = FIRST_PORT + block * BLOCK_SIZE_PORTS;
// A random start, so a file that follows another in the same worker does not retry its ports.
let next = Math.floor(Math.random() * BLOCK_SIZE_PORTS);
const handedOut = new Set<number>();

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port that was free on `host` a moment ago and that this process has not handed out before. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < BLOCK_SIZE_PORTS; tries += 1) {
    const port = blockStart + (next % BLOCK_SIZE_PORTS);
    next += 1;
    if (handedOut.has(port)) continue;
    if (await canListen(host, port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${blockStart}..${blockStart + BLOCK_SIZE_PORTS - 1} on ${host}`);
}
