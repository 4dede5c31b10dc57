import { describe, expect, it } from 'vitest';
import { formatSequenceNumber } from '../../src/common/sequence-number.js';
import {
  ANOMALY_KINDS,
  checkHistory,
  formatCheckResult,
  MAX_EXAMPLES,
  type AnomalyKind,
  type CheckResult,
  type History,
  type PutOp,
  type PutResult,
  type ReadObservation,
  type ReadRecord,
  type ReplicaLog,
} from './checker.js';

const S0 = 'shardId-000000000000';
const S1 = 'shardId-000000000001';

/** Sequence numbers of shard 0 and shard 1 (different incarnations, as in a real stream). */
const at0 = (index: number, offset = 0): string =>
  formatSequenceNumber({ incarnation: 1, index, offset });
const at1 = (index: number, offset = 0): string =>
  formatSequenceNumber({ incarnation: 2, index, offset });

let clockMs = 0;
function put(value: string, result: PutResult, process = 'p1'): PutOp {
  clockMs += 10;
  return {
    process,
    value,
    partitionKey: `pk-${value}`,
    startMs: clockMs,
    endMs: clockMs + 5,
    result,
  };
}
const ok = (shardId: string, sequenceNumber: string): PutResult => ({
  type: 'ok',
  shardId,
  sequenceNumber,
});
const FAIL: PutResult = { type: 'fail', error: 'ValidationException' };
const INFO: PutResult = { type: 'info', error: 'timeout' };

const rec = (sequenceNumber: string, value: string): ReadRecord => ({ sequenceNumber, value });
const read = (
  consumer: string,
  shardId: string,
  records: readonly ReadRecord[],
  startAfter?: string,
): ReadObservation =>
  startAfter === undefined
    ? { consumer, shardId, records }
    : { consumer, shardId, records, startAfter };

const entry = (index: number, term: number, text: string) => ({
  index,
  term,
  bytes: new TextEncoder().encode(text),
});
const replica = (
  broker: string,
  commitIndex: number,
  entries: ReplicaLog['entries'],
  shardId = S0,
): ReplicaLog => ({ broker, shardId, commitIndex, entries });

/** Every anomaly count, so a test asserts that nothing else was reported. */
function anomalyCounts(result: CheckResult): Record<AnomalyKind, number> {
  return Object.fromEntries(ANOMALY_KINDS.map((kind) => [kind, result[kind].count])) as Record<
    AnomalyKind,
    number
  >;
}
const NONE: Record<AnomalyKind, number> = {
  lost: 0,
  conflicts: 0,
  phantomReads: 0,
  definiteButWritten: 0,
  nonMonotonicReads: 0,
  skippedReads: 0,
  divergence: 0,
  duplicates: 0,
};

const FINAL_S0 = [rec(at0(1, 0), 'a'), rec(at0(1, 1), 'b'), rec(at0(2), 'c')];
const FINAL_S1 = [rec(at1(1), 'd'), rec(at1(3), 'e')];

/**
 * Two shards; four acknowledged puts, one definite failure (not written), one indeterminate put
 * that was written (c) and one that was not (g); consumers that read all, read from a
 * startAfter, and stop early; three replicas of shard 0 that agree.
 */
function cleanHistory(): History {
  return {
    puts: [
      put('a', ok(S0, at0(1, 0))),
      put('b', ok(S0, at0(1, 1))),
      put('c', INFO, 'p2'),
      put('d', ok(S1, at1(1)), 'p2'),
      put('e', ok(S1, at1(3)), 'p3'),
      put('f', FAIL, 'p3'),
      put('g', INFO, 'p3'),
    ],
    reads: [
      read('c1', S0, FINAL_S0),
      read('c2', S0, FINAL_S0.slice(1), at0(1, 0)),
      read('c3', S1, FINAL_S1.slice(0, 1)),
    ],
    finalLogs: [
      { shardId: S0, records: FINAL_S0 },
      { shardId: S1, records: FINAL_S1 },
    ],
    replicaLogs: ['b1', 'b2', 'b3'].map((broker) =>
      replica(broker, 2, [entry(1, 1, 'batch-1'), entry(2, 1, 'batch-2')]),
    ),
  };
}

/** The clean history plus some puts, reads, final records of shard 0 or replica logs. */
function cleanWith(extra: {
  puts?: readonly PutOp[];
  reads?: readonly ReadObservation[];
  finalS0?: readonly ReadRecord[];
  replicaLogs?: readonly ReplicaLog[];
}): History {
  const base = cleanHistory();
  return {
    puts: [...base.puts, ...(extra.puts ?? [])],
    reads: [...base.reads, ...(extra.reads ?? [])],
    finalLogs: [
      { shardId: S0, records: [...FINAL_S0, ...(extra.finalS0 ?? [])] },
      { shardId: S1, records: FINAL_S1 },
    ],
    replicaLogs: extra.replicaLogs ?? base.replicaLogs,
  };
}

describe('checkHistory', () => {
  it('passes a clean history and counts the outcomes of puts', () => {
    const result = checkHistory(cleanHistory());
    expect(anomalyCounts(result)).toEqual(NONE);
    expect(result).toMatchObject({
      ok: true,
      acknowledged: 4,
      definiteFailures: 1,
      indeterminate: 2,
      indeterminateWritten: 1,
      indeterminateLost: 1,
      finalRecords: 5,
      recordsRead: 6,
    });
  });

  it('reports a value stored twice as a duplicate and still passes', () => {
    // g timed out but was written; its retry was written again and acknowledged.
    const result = checkHistory(
      cleanWith({
        puts: [put('g', ok(S0, at0(4)), 'p3')],
        finalS0: [rec(at0(3), 'g'), rec(at0(4), 'g')],
      }),
    );
    expect(anomalyCounts(result)).toEqual({ ...NONE, duplicates: 1 });
    expect(result.ok).toBe(true);
    expect(result.indeterminateWritten).toBe(2);
    expect(result.duplicates.examples).toEqual([
      `"g" is stored 2 times: ${S0}/${at0(3)}, ${S0}/${at0(4)}`,
    ]);
  });

  it('reports an acknowledged write missing from the final log as lost', () => {
    const result = checkHistory(cleanWith({ puts: [put('x', ok(S0, at0(5)), 'p4')] }));
    expect(anomalyCounts(result)).toEqual({ ...NONE, lost: 1 });
    expect(result.ok).toBe(false);
    expect(result.lost.examples).toEqual([
      `"x" acknowledged to p4 at ${S0}/${at0(5)} is absent from every final log`,
    ]);
  });

  it('reports an acknowledged write found only at another sequence number as lost, saying where', () => {
    const history = cleanWith({
      puts: [put('x', ok(S1, at1(5)), 'p4')],
      finalS0: [rec(at0(3), 'x')],
    });
    const result = checkHistory(history);
    expect(anomalyCounts(result)).toEqual({ ...NONE, lost: 1 });
    expect(result.lost.examples).toEqual([
      `"x" acknowledged to p4 at ${S1}/${at1(5)} is not there but elsewhere, at ${S0}/${at0(3)}`,
    ]);
  });

  it('reports an acknowledgement of a sequence number that holds another value as a conflict, and the write as lost', () => {
    const result = checkHistory(cleanWith({ puts: [put('x', ok(S0, at0(1, 1)), 'p4')] }));
    expect(anomalyCounts(result)).toEqual({ ...NONE, lost: 1, conflicts: 1 });
    expect(result.conflicts.examples).toEqual([
      `${S0}/${at0(1, 1)} holds "b" (final log) and "x" (acknowledged to p4)`,
    ]);
  });

  it('reports two acknowledgements of one sequence number for different values as a conflict even if the final log lacks it', () => {
    const result = checkHistory(
      cleanWith({ puts: [put('x', ok(S0, at0(7)), 'p4'), put('y', ok(S0, at0(7)), 'p5')] }),
    );
    expect(anomalyCounts(result)).toEqual({ ...NONE, lost: 2, conflicts: 1 });
    expect(result.conflicts.examples).toEqual([
      `${S0}/${at0(7)} holds "x" (acknowledged to p4) and "y" (acknowledged to p5)`,
    ]);
  });

  it('counts one conflict per sequence number, listing every value claimed there once', () => {
    const result = checkHistory(
      cleanWith({
        puts: [put('x', ok(S0, at0(1, 0)), 'p4'), put('y', ok(S0, at0(1, 0)), 'p5')],
        reads: [read('c4', S0, [rec(at0(1, 0), 'x')])],
      }),
    );
    expect(anomalyCounts(result)).toEqual({ ...NONE, lost: 2, conflicts: 1 });
    expect(result.conflicts.examples).toEqual([
      `${S0}/${at0(1, 0)} holds "a" (final log) and "x" (acknowledged to p4) and "y" (acknowledged to p5)`,
    ]);
  });

  it('reports a read of another value at a sequence number in the final log as a conflict, not a phantom', () => {
    const result = checkHistory(
      cleanWith({ reads: [read('c4', S0, [rec(at0(1, 0), 'a'), rec(at0(1, 1), 'z')])] }),
    );
    expect(anomalyCounts(result)).toEqual({ ...NONE, conflicts: 1 });
    expect(result.conflicts.examples).toEqual([
      `${S0}/${at0(1, 1)} holds "b" (final log) and "z" (read by c4)`,
    ]);
  });

  it('reports a read of a sequence number no final log has as a phantom read, once per read', () => {
    // g timed out and was never committed, yet two consumers saw it.
    const seen = [rec(at0(1, 0), 'a'), rec(at0(1, 1), 'b'), rec(at0(1, 5), 'g')];
    const result = checkHistory(
      cleanWith({ reads: [read('c4', S0, seen), read('c5', S0, seen.slice(2), at0(1, 1))] }),
    );
    expect(anomalyCounts(result)).toEqual({ ...NONE, phantomReads: 2 });
    expect(result.indeterminateLost).toBe(1);
    expect(result.phantomReads.examples).toEqual([
      `c4 read "g" at ${S0}/${at0(1, 5)}, which no final log has`,
      `c5 read "g" at ${S0}/${at0(1, 5)}, which no final log has`,
    ]);
  });

  it('reports two reads of different values at a sequence number no final log has as phantoms and a conflict', () => {
    const result = checkHistory(
      cleanWith({
        reads: [read('c4', S1, [rec(at1(2), 'g')]), read('c5', S1, [rec(at1(2), 'h')])],
      }),
    );
    // Each read also passed over d, the first record of the shard.
    expect(anomalyCounts(result)).toEqual({
      ...NONE,
      phantomReads: 2,
      conflicts: 1,
      skippedReads: 2,
    });
    expect(result.conflicts.examples).toEqual([
      `${S1}/${at1(2)} holds "g" (read by c4) and "h" (read by c5)`,
    ]);
  });

  it('reports a definitely failed put whose value was written, unless another attempt may have written it', () => {
    const result = checkHistory(
      cleanWith({
        puts: [
          put('x', FAIL, 'p4'), // only attempt failed, yet written: counted
          put('y', FAIL, 'p4'),
          put('y', INFO, 'p4'), // the retry may have written it
          put('z', FAIL, 'p5'),
          put('z', ok(S0, at0(3, 2)), 'p5'), // the retry wrote it
          put('w', FAIL, 'p5'),
          put('w', FAIL, 'p5'), // two failed attempts of one value count once
          put('v', FAIL, 'p5'), // failed and absent: fine
        ],
        finalS0: [
          rec(at0(3, 0), 'x'),
          rec(at0(3, 1), 'y'),
          rec(at0(3, 2), 'z'),
          rec(at0(3, 3), 'w'),
        ],
      }),
    );
    expect(anomalyCounts(result)).toEqual({ ...NONE, definiteButWritten: 2 });
    expect(result.definiteButWritten.examples).toEqual([
      `"x" failed definitely for p4 (ValidationException) yet is at ${S0}/${at0(3, 0)}`,
      `"w" failed definitely for p5 (ValidationException) yet is at ${S0}/${at0(3, 3)}`,
    ]);
    expect(result).toMatchObject({ definiteFailures: 7, indeterminateWritten: 2 });
  });

  it('reports reads that go backwards, repeat, or return startAfter as non-monotonic', () => {
    const [a, b, c] = FINAL_S0 as [ReadRecord, ReadRecord, ReadRecord];
    const result = checkHistory(
      cleanWith({
        reads: [
          read('c4', S0, [a, c, b]), // b was read late, so it was not skipped either
          read('c5', S0, [a, a, b, c]),
          read('c6', S0, [a, b, c], at0(1, 0)),
        ],
      }),
    );
    expect(anomalyCounts(result)).toEqual({ ...NONE, nonMonotonicReads: 3 });
    expect(result.nonMonotonicReads.examples).toEqual([
      `c4 on ${S0} read ${at0(1, 1)} after ${at0(2)}`,
      `c5 on ${S0} read ${at0(1, 0)} after ${at0(1, 0)}`,
      `c6 on ${S0} read ${at0(1, 0)} starting after ${at0(1, 0)}`,
    ]);
  });

  it('reports a final log out of sequence-number order as non-monotonic', () => {
    const history = cleanHistory();
    const result = checkHistory({
      ...history,
      finalLogs: [
        { shardId: S0, records: [FINAL_S0[1]!, FINAL_S0[0]!, FINAL_S0[2]!] },
        { shardId: S1, records: FINAL_S1 },
      ],
    });
    // The in-order reads of the shard are still complete: the log is indexed by number.
    expect(anomalyCounts(result)).toEqual({ ...NONE, nonMonotonicReads: 1 });
    expect(result.nonMonotonicReads.examples).toEqual([
      `the final log of ${S0} has ${at0(1, 0)} after ${at0(1, 1)}`,
    ]);
  });

  it('reports final-log records passed over between two reads as skipped', () => {
    const extra = [rec(at0(3, 0), 'h'), rec(at0(3, 1), 'i'), rec(at0(4), 'j')];
    const [a, , c] = FINAL_S0 as [ReadRecord, ReadRecord, ReadRecord];
    const result = checkHistory(
      cleanWith({
        finalS0: extra,
        reads: [read('c4', S0, [a, c, extra[2]!])],
      }),
    );
    // b between a and c, then h and i between c and j.
    expect(anomalyCounts(result)).toEqual({ ...NONE, skippedReads: 3 });
    expect(result.skippedReads.examples).toEqual([
      `c4 on ${S0} skipped 1 record(s) between ${at0(1, 0)} and ${at0(2)}: ${at0(1, 1)}`,
      `c4 on ${S0} skipped 2 record(s) between ${at0(2)} and ${at0(4)}: ${at0(3, 0)}, ${at0(3, 1)}`,
    ]);
  });

  it('reports records passed over before the first read, from the start or from startAfter, as skipped', () => {
    const [, b, c] = FINAL_S0 as [ReadRecord, ReadRecord, ReadRecord];
    const e = FINAL_S1[1]!;
    const result = checkHistory(
      cleanWith({
        reads: [read('c4', S0, [b, c]), read('c5', S0, [c], at0(1, 0)), read('c6', S1, [e])],
      }),
    );
    expect(anomalyCounts(result)).toEqual({ ...NONE, skippedReads: 3 });
    expect(result.skippedReads.examples).toEqual([
      `c4 on ${S0} skipped 1 record(s) between the start of the shard and ${at0(1, 1)}: ${at0(1, 0)}`,
      `c5 on ${S0} skipped 1 record(s) between ${at0(1, 0)} and ${at0(2)}: ${at0(1, 1)}`,
      `c6 on ${S1} skipped 1 record(s) between the start of the shard and ${at1(3)}: ${at1(1)}`,
    ]);
  });

  it('does not count records before startAfter, after the last read, or of an empty read as skipped', () => {
    const b = FINAL_S0[1]!;
    const result = checkHistory(
      cleanWith({
        reads: [read('c4', S0, [b], at0(1, 0)), read('c5', S0, []), read('c6', S1, [])],
      }),
    );
    expect(anomalyCounts(result)).toEqual(NONE);
  });

  it('counts a skipped record once even when the consumer reads back and forth', () => {
    // Gaps are measured from the highest record read so far: after (a, c, b) the next gap is
    // (c, j), not (b, j), so i is not counted twice and c is not missed.
    const extra = [rec(at0(3), 'i'), rec(at0(4), 'j')];
    const [a, b, c] = FINAL_S0 as [ReadRecord, ReadRecord, ReadRecord];
    const result = checkHistory(
      cleanWith({ finalS0: extra, reads: [read('c4', S0, [a, c, b, extra[1]!])] }),
    );
    expect(anomalyCounts(result)).toEqual({ ...NONE, nonMonotonicReads: 1, skippedReads: 1 });
    expect(result.skippedReads.examples).toEqual([
      `c4 on ${S0} skipped 1 record(s) between ${at0(2)} and ${at0(4)}: ${at0(3)}`,
    ]);
  });

  it('compares sequence numbers as numbers, not as strings of one width', () => {
    const log = [rec('9', 'n9'), rec('10', 'n10'), rec('11', 'n11')];
    const result = checkHistory({
      puts: [put('n9', ok(S0, '09')), put('n10', ok(S0, '10')), put('n11', ok(S0, '11'))],
      reads: [read('c1', S0, log.slice(0, 2)), read('c2', S0, [log[0]!, log[2]!])],
      finalLogs: [{ shardId: S0, records: log }],
      replicaLogs: [],
    });
    // As strings, '10' < '9' would make the log and c1 non-monotonic and '09' would be lost.
    expect(anomalyCounts(result)).toEqual({ ...NONE, skippedReads: 1 });
    expect(result.skippedReads.examples).toEqual([
      `c2 on ${S0} skipped 1 record(s) between 9 and 11: 10`,
    ]);
  });

  it('reports replicas that committed different bytes at one index as divergence', () => {
    const result = checkHistory(
      cleanWith({
        replicaLogs: [
          replica('b1', 2, [entry(1, 1, 'batch-1'), entry(2, 1, 'batch-2')]),
          replica('b2', 2, [entry(1, 1, 'batch-1'), entry(2, 1, 'batch-X')]),
          replica('b3', 2, [entry(1, 1, 'batch-1'), entry(2, 1, 'batch-2')]),
          // Another shard's log is compared only with its own replicas.
          replica('b1', 1, [entry(1, 1, 'other')], S1),
        ],
      }),
    );
    expect(anomalyCounts(result)).toEqual({ ...NONE, divergence: 1 });
    expect(result.divergence.examples).toEqual([
      `${S0} index 2 differs between replicas that committed it: ` +
        `b1, b3: term 1, 7 bytes 62617463682d32; b2: term 1, 7 bytes 62617463682d58`,
    ]);
  });

  it('reports replicas that committed the same bytes in different terms at one index as divergence', () => {
    const result = checkHistory(
      cleanWith({
        replicaLogs: [
          replica('b1', 2, [entry(1, 1, 'batch-1'), entry(2, 1, 'batch-2')]),
          replica('b2', 2, [entry(1, 1, 'batch-1'), entry(2, 2, 'batch-2')]),
        ],
      }),
    );
    expect(anomalyCounts(result)).toEqual({ ...NONE, divergence: 1 });
    expect(result.divergence.examples[0]).toContain('b1: term 1, 7 bytes');
    expect(result.divergence.examples[0]).toContain('b2: term 2, 7 bytes');
  });

  it('ignores replica entries above a commitIndex and entries a replica trimmed', () => {
    const result = checkHistory(
      cleanWith({
        replicaLogs: [
          replica('b1', 3, [
            entry(1, 1, 'batch-1'),
            entry(2, 1, 'batch-2'),
            entry(3, 2, 'batch-3'),
          ]),
          // b2 has not committed 3; its stale entry there will be overwritten.
          replica('b2', 2, [entry(1, 1, 'batch-1'), entry(2, 1, 'batch-2'), entry(3, 1, 'stale')]),
          // b3 trimmed 1 and 2 after a snapshot.
          replica('b3', 3, [entry(3, 2, 'batch-3')]),
        ],
      }),
    );
    expect(anomalyCounts(result)).toEqual(NONE);
  });

  it('reports committed entries a replica lacks but another has as holes, one per run', () => {
    const full = [1, 2, 3, 4, 5].map((i) => entry(i, 1, `batch-${i}`));
    const result = checkHistory(
      cleanWith({
        replicaLogs: [
          replica('b1', 5, full),
          // Lacks 3, and 5 at the end, though it claims to have committed 5.
          replica('b2', 5, [full[0]!, full[1]!, full[3]!]),
          // Lacks only entries above its commitIndex: fine.
          replica('b3', 3, full.slice(0, 3)),
        ],
      }),
    );
    expect(anomalyCounts(result)).toEqual({ ...NONE, divergence: 2 });
    expect(result.divergence.examples).toEqual([
      `b2 of ${S0} lacks entry 3 at or below its commitIndex 5, which b1 has`,
      `b2 of ${S0} lacks entry 5 at or below its commitIndex 5, which b1 has`,
    ]);
  });

  it(`keeps the first ${MAX_EXAMPLES} examples of an anomaly but counts all of them`, () => {
    const puts = Array.from({ length: 25 }, (_, i) => put(`x${i}`, ok(S0, at0(10 + i))));
    const result = checkHistory(cleanWith({ puts }));
    expect(anomalyCounts(result)).toEqual({ ...NONE, lost: 25 });
    expect(result.lost.examples).toHaveLength(MAX_EXAMPLES);
    expect(result.lost.examples[0]).toContain('"x0"');
    expect(result.lost.examples[MAX_EXAMPLES - 1]).toContain(`"x${MAX_EXAMPLES - 1}"`);
  });

  it('rejects a malformed sequence number instead of guessing what it means', () => {
    for (const bad of ['0x10', '', ' 12', '1e3']) {
      expect(() => checkHistory(cleanWith({ puts: [put('x', ok(S0, bad))] }))).toThrow(
        `malformed sequence number ${JSON.stringify(bad)} in the acknowledgement of "x"`,
      );
    }
    expect(() => checkHistory(cleanWith({ reads: [read('c4', S0, [], 'latest')] }))).toThrow(
      'in the reads of c4',
    );
  });

  it('rejects two final logs of one shard', () => {
    const history = cleanHistory();
    expect(() =>
      checkHistory({ ...history, finalLogs: [...history.finalLogs, { shardId: S0, records: [] }] }),
    ).toThrow(`two final logs for shard ${S0}`);
  });
});

describe('formatCheckResult', () => {
  it('summarises a passing history in two lines', () => {
    expect(formatCheckResult(checkHistory(cleanHistory())).split('\n')).toEqual([
      'history OK: 4 acknowledged, 1 failed, 2 indeterminate (1 written, 1 not); ' +
        '5 records in the final logs, 6 read',
      'lost 0, conflicts 0, phantomReads 0, definiteButWritten 0, nonMonotonicReads 0, ' +
        'skippedReads 0, divergence 0, duplicates 0',
    ]);
  });

  it('lists a few examples of each anomaly and how many more there are', () => {
    const puts = Array.from({ length: 5 }, (_, i) => put(`x${i}`, ok(S0, at0(10 + i)), 'p4'));
    const lines = formatCheckResult(checkHistory(cleanWith({ puts })), 2).split('\n');
    expect(lines[0]).toMatch(/^history FAILED: 9 acknowledged/);
    expect(lines[1]).toContain('lost 5,');
    expect(lines.slice(2)).toEqual([
      `  lost: "x0" acknowledged to p4 at ${S0}/${at0(10)} is absent from every final log`,
      `  lost: "x1" acknowledged to p4 at ${S0}/${at0(11)} is absent from every final log`,
      '  lost: ... and 3 more',
    ]);
  });
});
