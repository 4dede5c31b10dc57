import { describe, expect, it } from 'vitest';
import { formatCluster } from '../../src/cli/commands/admin.js';
import {
  DescribeClusterResponse,
  ReplicaRole,
  type ClusterReplica,
} from '../../src/gen/rheos/v1/coordinator.js';

/** `rheos admin cluster` without --json: the coordinators, a broker table and a shard table. */

const { REPLICA_ROLE_LEADER: LEADER, REPLICA_ROLE_FOLLOWER: FOLLOWER } = ReplicaRole;

function replica(
  streamName: string,
  shard: number,
  reportedRole: ReplicaRole = FOLLOWER,
): ClusterReplica {
  return {
    streamName,
    shardId: `shardId-${String(shard).padStart(12, '0')}`,
    shardIncarnation: shard + 1,
    reportedRole,
  };
}

/** The rows of the table whose header line starts with `header`, split into cells. */
function tableRows(text: string, header: string): string[][] {
  const lines = text.split('\n');
  const start = lines.findIndex((line) => line.startsWith(header));
  if (start < 0) throw new Error(`no table headed ${header}`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line === '') break;
    rows.push(line.split(/ {2,}/));
  }
  return rows;
}

const twoBrokers = DescribeClusterResponse.fromPartial({
  metadataVersion: 42,
  coordinators: [
    { coordinatorId: 1, apiEndpoint: 'c1:7500', leader: false },
    { coordinatorId: 2, apiEndpoint: 'c2:7500', leader: true },
  ],
  brokers: [
    {
      brokerId: 1,
      zone: 'eu-1a',
      apiEndpoint: '10.0.0.1:7400',
      state: 'up',
      lastHeartbeatAgeMs: 1_234,
      replicas: [replica('orders', 1, LEADER), replica('orders', 0, FOLLOWER)],
    },
    {
      brokerId: 2,
      zone: '',
      apiEndpoint: '10.0.0.2:7400',
      state: 'down',
      replicas: [replica('orders', 0, LEADER)],
    },
  ],
});

describe('formatCluster', () => {
  it('prints the coordinators, an aligned broker table and a shard table', () => {
    expect(formatCluster(twoBrokers)).toBe(
      [
        'coordinators: 1 c1:7500, 2 c2:7500 (leader)   metadata version 42',
        '',
        'BROKER  ZONE   STATE  API            REPLICAS  LEADERS  LAST HEARTBEAT',
        '1       eu-1a  up     10.0.0.1:7400  2         1        1.2s ago',
        '2       -      down   10.0.0.2:7400  1         1        never',
        '',
        'STREAM  SHARD                 REPLICAS (* leads)',
        'orders  shardId-000000000000  1 2*',
        'orders  shardId-000000000001  1*',
        '',
      ].join('\n'),
    );
  });

  it('marks only the leading coordinator, whichever position it has', () => {
    const text = formatCluster(
      DescribeClusterResponse.fromPartial({
        metadataVersion: 7,
        coordinators: [
          { coordinatorId: 3, apiEndpoint: 'a:1', leader: true },
          { coordinatorId: 4, apiEndpoint: 'b:1', leader: false },
          { coordinatorId: 5, apiEndpoint: 'c:1', leader: false },
        ],
      }),
    );
    expect(text.split('\n')[0]).toBe(
      'coordinators: 3 a:1 (leader), 4 b:1, 5 c:1   metadata version 7',
    );
    expect(text.match(/\(leader\)/g)).toHaveLength(1);
  });

  it('counts as leaders only the replicas reported as REPLICA_ROLE_LEADER', () => {
    const text = formatCluster(
      DescribeClusterResponse.fromPartial({
        brokers: [
          {
            brokerId: 9,
            zone: 'z',
            apiEndpoint: 'h:1',
            state: 'up',
            lastHeartbeatAgeMs: 0,
            replicas: [
              replica('s', 0, LEADER),
              replica('s', 1, ReplicaRole.REPLICA_ROLE_CANDIDATE),
              replica('s', 2, ReplicaRole.REPLICA_ROLE_UNSPECIFIED),
              replica('s', 3, LEADER),
              replica('s', 4, ReplicaRole.REPLICA_ROLE_LEARNER),
            ],
          },
        ],
      }),
    );
    // A heartbeat heard this very millisecond is an age of 0, not "never".
    expect(tableRows(text, 'BROKER')).toEqual([['9', 'z', 'up', 'h:1', '5', '2', '0.0s ago']]);
    expect(tableRows(text, 'STREAM').map((row) => row[2])).toEqual(['9*', '9', '9', '9*', '9']);
  });

  it('shows "-" for an empty zone and "never" for a broker never heard from', () => {
    const text = formatCluster(
      DescribeClusterResponse.fromPartial({
        brokers: [
          { brokerId: 1, zone: '', apiEndpoint: 'h:1', state: 'down' },
          { brokerId: 2, zone: 'b', apiEndpoint: 'h:2', state: 'up', lastHeartbeatAgeMs: 61_500 },
        ],
      }),
    );
    expect(tableRows(text, 'BROKER')).toEqual([
      ['1', '-', 'down', 'h:1', '0', '0', 'never'],
      ['2', 'b', 'up', 'h:2', '0', '0', '61.5s ago'],
    ]);
  });

  it('groups replicas by shard, sorted by stream and shard, and stars the reported leader', () => {
    const text = formatCluster(
      DescribeClusterResponse.fromPartial({
        brokers: [1, 2, 3].map((brokerId) => ({
          brokerId,
          zone: '',
          apiEndpoint: `h:${brokerId}`,
          state: 'up',
          replicas: [
            replica('zeta', 0, brokerId === 3 ? LEADER : FOLLOWER),
            replica('alpha', 1, brokerId === 2 ? LEADER : FOLLOWER),
            // A shard in an election: no broker reports leading it.
            replica('alpha', 0, FOLLOWER),
          ],
        })),
      }),
    );
    expect(tableRows(text, 'STREAM')).toEqual([
      ['alpha', 'shardId-000000000000', '1 2 3'],
      ['alpha', 'shardId-000000000001', '1 2* 3'],
      ['zeta', 'shardId-000000000000', '1 2 3*'],
    ]);
  });

  it('prints no shard table when no broker holds a replica', () => {
    const text = formatCluster(
      DescribeClusterResponse.fromPartial({
        metadataVersion: 1,
        coordinators: [{ coordinatorId: 1, apiEndpoint: 'c:1', leader: true }],
        brokers: [{ brokerId: 1, zone: 'a', apiEndpoint: 'h:1', state: 'up' }],
      }),
    );
    expect(text).not.toContain('STREAM');
    expect(tableRows(text, 'BROKER')).toEqual([['1', 'a', 'up', 'h:1', '0', '0', 'never']]);
  });
});
