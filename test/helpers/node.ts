import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type RheosClient } from '../../src/client/client.js';
import { startNode, type NodeConfig, type RunningNode } from '../../src/server/node.js';

export interface TestNode {
  readonly node: RunningNode;
  readonly client: RheosClient;
  readonly dataDir: string;
  /** Stops the node (graceful) and removes its data. */
  stop(): Promise<void>;
  /** Stops the node gracefully and starts a new one on the same data. */
  restart(overrides?: Partial<NodeConfig>): Promise<TestNode>;
}

export async function tempDir(prefix = 'rheos-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Starts an in-process node on a free port with a client connected to it. */
export async function startTestNode(
  overrides: Partial<NodeConfig> = {},
  dataDir?: string,
): Promise<TestNode> {
  const dir = dataDir ?? (await tempDir());
  const node = await startNode({
    dataDir: dir,
    host: '127.0.0.1',
    grpcPort: 0,
    adminPort: null,
    retentionCheckIntervalMs: 0,
    onFatal: (error) => {
      throw error;
    },
    ...overrides,
  });
  const client = createClient({ endpoint: node.grpcAddress });
  const testNode: TestNode = {
    node,
    client,
    dataDir: dir,
    async stop() {
      client.close();
      await node.close();
      await rm(dir, { recursive: true, force: true });
    },
    async restart(more = {}) {
      client.close();
      await node.close();
      return startTestNode({ ...overrides, ...more }, dir);
    },
  };
  return testNode;
}
