import { InvalidArgumentError } from '../common/errors.js';
import type { SigningKey, SigningKeyring } from '../common/iterator-token.js';
import {
  applyCommand,
  withChanges,
  type MachineContext,
  type MetadataChange,
  type MetadataCommand,
} from '../coordinator/metadata-machine.js';
import { INITIAL_COUNTERS, type MetadataState, type StreamRecord } from '../coordinator/model.js';
import type { MetadataSource } from './broker.js';
import type { ClusterConfig } from './cluster-config.js';

/**
 * The metadata of a cluster with static placement, derived from the cluster file alone: the same
 * file gives every broker the same streams, shard incarnations, hash ranges, replica sets and
 * iterator-signing key (so an iterator from one broker works on every other). The streams are built
 * by the same state machine the coordinator runs, so they look exactly like created ones. Changes
 * are refused: the file is the source of truth until the coordinator arrives.
 */
export class StaticMetadata implements MetadataSource, SigningKeyring {
  readonly state: MetadataState;
  private readonly key: SigningKey;

  constructor(
    config: ClusterConfig,
    readonly context: MachineContext,
  ) {
    this.key = { id: 1, secret: config.iteratorSecret };
    let state: MetadataState = {
      streams: new Map(),
      // No registered brokers: placement comes from the file, not from the placement planner.
      brokers: new Map(),
      counters: { ...INITIAL_COUNTERS, nextIteratorKeyId: 2 },
      groups: new Map(),
      iteratorKeys: [
        { id: 1, secretBase64: config.iteratorSecret.toString('base64'), createdMs: 0 },
      ],
    };
    for (const stream of config.streams) {
      state = withChanges(
        state,
        applyCommand(
          state,
          {
            type: 'createStream',
            name: stream.name,
            shardCount: stream.shardCount,
            mode: 'PROVISIONED',
            shardLimits: stream.shardLimits,
            replicationFactor: stream.replicationFactor,
            tags: {},
            nowMs: 0,
          },
          context,
        ),
      );
      const created = state.streams.get(stream.name) as StreamRecord;
      const placed: StreamRecord = {
        ...created,
        status: 'ACTIVE',
        retentionHours: stream.retentionHours,
        shards: created.shards.map((shard, i) => ({
          ...shard,
          replicas: [...(stream.placement[i] as readonly number[])],
        })),
      };
      state = withChanges(state, [{ kind: 'stream', name: stream.name, value: placed }]);
    }
    this.state = state;
  }

  onChange(): () => void {
    return () => undefined;
  }

  propose(command: MetadataCommand): Promise<readonly MetadataChange[]> {
    return Promise.reject(
      new InvalidArgumentError(
        `${command.type} is not available: this cluster's streams are defined in its cluster file (static placement).`,
      ),
    );
  }

  current(): SigningKey {
    return this.key;
  }

  find(id: number): SigningKey | undefined {
    return id === this.key.id ? this.key : undefined;
  }

  oldestId(): number {
    return this.key.id;
  }
}
