import { describe, expect, it } from 'vitest';
import { FailureDetector } from '../../src/coordinator/failure-detector.js';
import type { BrokerRecord, BrokerState } from '../../src/coordinator/model.js';

/** The coordinator leader's failure detector (src/coordinator/failure-detector.ts). */

function broker(id: number, state: BrokerState = 'up'): BrokerRecord {
  return { id, zone: '', api: 'h:1', peer: 'h:2', registeredMs: 0, state, stateSinceMs: 0 };
}

describe('failure detector', () => {
  it('judges a broker down after downAfterMs of silence, and not a moment before', () => {
    const fd = new FailureDetector({ downAfterMs: 3_000 });
    fd.becameLeader(0);
    fd.heartbeat(1, 1_000);
    fd.heartbeat(2, 1_000);
    fd.heartbeat(2, 3_500);
    const brokers = [broker(1), broker(2)];
    expect(fd.judge(brokers, 3_999)).toEqual([]);
    expect(fd.judge(brokers, 4_000)).toEqual([{ id: 1, state: 'down' }]);
    expect(fd.judge(brokers, 6_500)).toEqual([
      { id: 1, state: 'down' },
      { id: 2, state: 'down' },
    ]);
  });

  it('brings a down broker back up on its next heartbeat', () => {
    const fd = new FailureDetector({ downAfterMs: 3_000 });
    fd.becameLeader(0);
    expect(fd.judge([broker(1, 'down')], 10_000)).toEqual([]);
    fd.heartbeat(1, 10_000);
    expect(fd.judge([broker(1, 'down')], 10_001)).toEqual([{ id: 1, state: 'up' }]);
  });

  it('a new leader gives every broker a full period before judging it down', () => {
    const fd = new FailureDetector({ downAfterMs: 3_000 });
    fd.becameLeader(50_000);
    expect(fd.judge([broker(1), broker(2)], 52_999)).toEqual([]);
    fd.heartbeat(2, 52_000);
    expect(fd.judge([broker(1), broker(2)], 53_000)).toEqual([{ id: 1, state: 'down' }]);
  });

  it('judges nothing while it is not the leader, and forgets heartbeats when leadership changes', () => {
    const fd = new FailureDetector({ downAfterMs: 3_000 });
    fd.heartbeat(1, 0);
    expect(fd.judge([broker(1)], 100_000)).toEqual([]);
    fd.becameLeader(100_000);
    fd.heartbeat(1, 100_500);
    fd.lostLeadership();
    expect(fd.judge([broker(1)], 200_000)).toEqual([]);
    fd.becameLeader(200_000);
    // The heartbeat from the earlier leadership does not count as fresh.
    expect(fd.judge([broker(1, 'down')], 200_001)).toEqual([]);
  });

  it('ignores a heartbeat older than one already seen (reordered)', () => {
    const fd = new FailureDetector({ downAfterMs: 3_000 });
    fd.becameLeader(0);
    fd.heartbeat(1, 5_000);
    fd.heartbeat(1, 1_000);
    expect(fd.judge([broker(1)], 7_999)).toEqual([]);
  });
});
