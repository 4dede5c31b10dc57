/**
 * Checks the history of a cluster test after the run, in the manner of Jepsen's queue checkers:
 * the producers' acknowledgements, the consumers' reads and the replicas' disks are compared with
 * the authoritative final contents of each shard, which are read after the faults healed.
 *
 * Sequence numbers are compared as BigInt (decimal strings, width not assumed), and a record's
 * position is (shard, sequence number). Everything is indexed in Maps once, so a history of a
 * million puts is checked in linear time plus a sort only where input arrives out of order.
 * A sequence number that is not a decimal string is a broken history, not an anomaly: it throws.
 */

/** Examples kept per anomaly kind; the count is always complete. */
export const MAX_EXAMPLES = 20;

export type PutResult =
  | { readonly type: 'ok'; readonly shardId: string; readonly sequenceNumber: string }
  /** Definite: the server guarantees nothing was written. */
  | { readonly type: 'fail'; readonly error: string }
  /** Indeterminate: outcome unknown (timeout, lost connection, InternalFailure). */
  | { readonly type: 'info'; readonly error: string };

export interface PutOp {
  /** Producer id. */
  readonly process: string;
  /** Unique per attempt chain; a producer may retry the same value after 'info'. */
  readonly value: string;
  readonly partitionKey: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly result: PutResult;
}

export interface ReadRecord {
  readonly sequenceNumber: string;
  readonly value: string;
}

/** One consumer's reads of one shard, in the order it received them, starting after `startAfter` (undefined: from the shard's first record). */
export interface ReadObservation {
  readonly consumer: string;
  readonly shardId: string;
  readonly startAfter?: string;
  readonly records: readonly ReadRecord[];
}

/** The authoritative contents of each shard, read after the faults healed, in sequence-number order. */
export interface FinalShardLog {
  readonly shardId: string;
  readonly records: readonly ReadRecord[];
}

export interface ReplicaLogEntry {
  readonly index: number;
  readonly term: number;
  readonly bytes: Uint8Array;
}

/** One replica's committed log entries of one shard, read from its disk after the brokers stopped. */
export interface ReplicaLog {
  readonly broker: string;
  readonly shardId: string;
  readonly commitIndex: number;
  readonly entries: readonly ReplicaLogEntry[];
}

export interface History {
  readonly puts: readonly PutOp[];
  readonly reads: readonly ReadObservation[];
  readonly finalLogs: readonly FinalShardLog[];
  readonly replicaLogs: readonly ReplicaLog[];
}

export interface AnomalyReport {
  readonly count: number;
  /** The first MAX_EXAMPLES occurrences, human-readable. */
  readonly examples: readonly string[];
}

export interface CheckResult {
  /** False iff any anomaly other than duplicates was found. */
  readonly ok: boolean;
  readonly acknowledged: number;
  readonly definiteFailures: number;
  readonly indeterminate: number;
  /** Indeterminate puts whose value is in some final log. */
  readonly indeterminateWritten: number;
  readonly indeterminateLost: number;
  readonly finalRecords: number;
  readonly recordsRead: number;
  /** Acknowledged puts whose value is not at their acknowledged position (one per put). */
  readonly lost: AnomalyReport;
  /** Positions that were given two or more different values, by any source (one per position). */
  readonly conflicts: AnomalyReport;
  /** Records read at a position the final log does not have (one per record read). */
  readonly phantomReads: AnomalyReport;
  /** Values in a final log whose every attempt failed definitely (one per value). */
  readonly definiteButWritten: AnomalyReport;
  /** Records read at or before the previous one (or startAfter); also a final log out of order. */
  readonly nonMonotonicReads: AnomalyReport;
  /** Final-log records a consumer passed over without reading (one per record, examples per gap). */
  readonly skippedReads: AnomalyReport;
  /** Committed replica entries that disagree (one per index) and holes (one per run of indexes). */
  readonly divergence: AnomalyReport;
  /** Values stored more than once across the final logs (one per value); allowed. */
  readonly duplicates: AnomalyReport;
}

export type AnomalyKind =
  | 'lost'
  | 'conflicts'
  | 'phantomReads'
  | 'definiteButWritten'
  | 'nonMonotonicReads'
  | 'skippedReads'
  | 'divergence'
  | 'duplicates';

/** The kinds that fail a run; duplicates are the expected price of retrying indeterminate puts. */
export const FAILING_KINDS: readonly AnomalyKind[] = [
  'lost',
  'conflicts',
  'phantomReads',
  'definiteButWritten',
  'nonMonotonicReads',
  'skippedReads',
  'divergence',
];
export const ANOMALY_KINDS: readonly AnomalyKind[] = [...FAILING_KINDS, 'duplicates'];

export function checkHistory(history: History): CheckResult {
  const found = {
    lost: new Anomalies(),
    phantomReads: new Anomalies(),
    definiteButWritten: new Anomalies(),
    nonMonotonicReads: new Anomalies(),
    skippedReads: new Anomalies(),
    divergence: new Anomalies(),
    duplicates: new Anomalies(),
  };
  const conflicts = new ConflictTracker();

  const final = indexFinalLogs(history.finalLogs, conflicts, found.nonMonotonicReads);
  const putCounts = checkPuts(history.puts, final, conflicts, found);
  let recordsRead = 0;
  for (const observation of history.reads) {
    checkObservation(observation, final, conflicts, found);
    recordsRead += observation.records.length;
  }
  checkReplicas(history.replicaLogs, found.divergence);
  reportDuplicates(final, found.duplicates);

  const reports: Record<AnomalyKind, AnomalyReport> = {
    lost: found.lost.report(),
    conflicts: conflicts.report(),
    phantomReads: found.phantomReads.report(),
    definiteButWritten: found.definiteButWritten.report(),
    nonMonotonicReads: found.nonMonotonicReads.report(),
    skippedReads: found.skippedReads.report(),
    divergence: found.divergence.report(),
    duplicates: found.duplicates.report(),
  };
  return {
    ok: FAILING_KINDS.every((kind) => reports[kind].count === 0),
    ...putCounts,
    finalRecords: final.records,
    recordsRead,
    ...reports,
  };
}

/** A few lines for a test log: the verdict, the counts, and a few examples of each anomaly found. */
export function formatCheckResult(result: CheckResult, examplesPerKind = 3): string {
  const lines = [
    `history ${result.ok ? 'OK' : 'FAILED'}: ${result.acknowledged} acknowledged, ` +
      `${result.definiteFailures} failed, ${result.indeterminate} indeterminate ` +
      `(${result.indeterminateWritten} written, ${result.indeterminateLost} not); ` +
      `${result.finalRecords} records in the final logs, ${result.recordsRead} read`,
    ANOMALY_KINDS.map((kind) => `${kind} ${result[kind].count}`).join(', '),
  ];
  for (const kind of ANOMALY_KINDS) {
    const { count, examples } = result[kind];
    for (const example of examples.slice(0, examplesPerKind)) lines.push(`  ${kind}: ${example}`);
    const more = count - Math.min(examples.length, examplesPerKind);
    if (more > 0) lines.push(`  ${kind}: ... and ${more} more`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Collecting anomalies

class Anomalies {
  private count = 0;
  private readonly examples: string[] = [];

  /** `describe` runs only for the first few, so a million anomalies stay cheap to count. */
  add(describe: () => string, count = 1): void {
    this.count += count;
    if (this.examples.length < MAX_EXAMPLES) this.examples.push(describe());
  }

  report(): AnomalyReport {
    return { count: this.count, examples: [...this.examples] };
  }
}

type Claimant =
  | { readonly kind: 'final' }
  | { readonly kind: 'ack'; readonly process: string }
  | { readonly kind: 'read'; readonly consumer: string };

interface Claim {
  readonly value: string;
  readonly by: Claimant;
}

const FINAL: Claimant = { kind: 'final' };

/**
 * Positions claimed with more than one value. The final log is the reference where it has the
 * position; elsewhere (lost or phantom positions) the first claim is, so two acks or two reads of
 * a position nobody kept still conflict. Each position counts once, listing every value claimed.
 */
class ConflictTracker {
  /** position -> first claim, for positions absent from the final logs. */
  private readonly unlogged = new Map<string, Claim>();
  private readonly conflicting = new Map<
    string,
    { readonly shardId: string; readonly sequenceNumber: string; readonly claims: Claim[] }
  >();

  /** `key` is the canonical sequence number; `logged` the final log's value there, if any. */
  claim(
    shardId: string,
    key: string,
    sequenceNumber: string,
    incoming: Claim,
    logged: string | undefined,
  ): void {
    const position = positionKey(shardId, key);
    if (logged !== undefined) {
      if (logged !== incoming.value) {
        this.conflict(position, shardId, sequenceNumber, { value: logged, by: FINAL }, incoming);
      }
      return;
    }
    const first = this.unlogged.get(position);
    if (first === undefined) this.unlogged.set(position, incoming);
    else if (first.value !== incoming.value) {
      this.conflict(position, shardId, sequenceNumber, first, incoming);
    }
  }

  conflict(
    position: string,
    shardId: string,
    sequenceNumber: string,
    existing: Claim,
    incoming: Claim,
  ): void {
    let entry = this.conflicting.get(position);
    if (entry === undefined) {
      entry = { shardId, sequenceNumber, claims: [existing] };
      this.conflicting.set(position, entry);
    }
    if (!entry.claims.some((claim) => claim.value === incoming.value)) entry.claims.push(incoming);
  }

  report(): AnomalyReport {
    const examples: string[] = [];
    for (const { shardId, sequenceNumber, claims } of this.conflicting.values()) {
      if (examples.length === MAX_EXAMPLES) break;
      const values = claims.map((claim) => `${quote(claim.value)} (${describeClaimant(claim.by)})`);
      examples.push(`${shardId}/${sequenceNumber} holds ${values.join(' and ')}`);
    }
    return { count: this.conflicting.size, examples };
  }
}

function describeClaimant(by: Claimant): string {
  switch (by.kind) {
    case 'final':
      return 'final log';
    case 'ack':
      return `acknowledged to ${by.process}`;
    case 'read':
      return `read by ${by.consumer}`;
  }
}

// ---------------------------------------------------------------------------------------------
// The final logs

interface Location {
  readonly shardId: string;
  readonly sequenceNumber: string;
}

/** Where a value is stored: a list only for duplicated values, so unique ones cost one object. */
type ValueLocations = Location | Location[];

interface ShardIndex {
  /** Canonical sequence number (BigInt's decimal) -> value; the first one if a number repeats. */
  readonly valueAt: ReadonlyMap<string, string>;
  /** Distinct sequence numbers, ascending, with their spelling in the log (for messages). */
  readonly sorted: readonly bigint[];
  readonly spelled: readonly string[];
}

interface FinalIndex {
  readonly shards: ReadonlyMap<string, ShardIndex>;
  readonly values: ReadonlyMap<string, ValueLocations>;
  readonly records: number;
}

const EMPTY_SHARD: ShardIndex = { valueAt: new Map(), sorted: [], spelled: [] };

function indexFinalLogs(
  finalLogs: readonly FinalShardLog[],
  conflicts: ConflictTracker,
  nonMonotonic: Anomalies,
): FinalIndex {
  const shards = new Map<string, ShardIndex>();
  const values = new Map<string, ValueLocations>();
  let records = 0;
  for (const log of finalLogs) {
    if (shards.has(log.shardId)) throw new Error(`two final logs for shard ${log.shardId}`);
    shards.set(log.shardId, indexShardLog(log, values, conflicts, nonMonotonic));
    records += log.records.length;
  }
  return { shards, values, records };
}

function indexShardLog(
  log: FinalShardLog,
  values: Map<string, ValueLocations>,
  conflicts: ConflictTracker,
  nonMonotonic: Anomalies,
): ShardIndex {
  const { shardId } = log;
  const valueAt = new Map<string, string>();
  const sorted: bigint[] = [];
  const spelled: string[] = [];
  let previous: { seq: bigint; spelled: string } | undefined;
  let inOrder = true;
  for (const { sequenceNumber, value } of log.records) {
    const key = sequenceKey(sequenceNumber, () => `the final log of ${shardId}`);
    const seq = BigInt(key);
    // The final log is itself a read; it must come in order too.
    if (previous !== undefined && seq <= previous.seq) {
      inOrder = false;
      const before = previous.spelled;
      nonMonotonic.add(() => `the final log of ${shardId} has ${sequenceNumber} after ${before}`);
    }
    previous = { seq, spelled: sequenceNumber };
    addLocation(values, value, { shardId, sequenceNumber });

    const known = valueAt.get(key);
    if (known === undefined) {
      valueAt.set(key, value);
      sorted.push(seq);
      spelled.push(sequenceNumber);
    } else if (known !== value) {
      conflicts.conflict(
        positionKey(shardId, key),
        shardId,
        sequenceNumber,
        { value: known, by: FINAL },
        { value, by: FINAL },
      );
    }
  }
  return inOrder ? { valueAt, sorted, spelled } : sortedShardIndex(valueAt, sorted, spelled);
}

function sortedShardIndex(
  valueAt: Map<string, string>,
  seqs: readonly bigint[],
  spelled: readonly string[],
): ShardIndex {
  const order = seqs.map((_, i) => i).sort((a, b) => compareBigInt(seqs[a]!, seqs[b]!));
  return {
    valueAt,
    sorted: order.map((i) => seqs[i]!),
    spelled: order.map((i) => spelled[i]!),
  };
}

function addLocation(values: Map<string, ValueLocations>, value: string, at: Location): void {
  const known = values.get(value);
  if (known === undefined) values.set(value, at);
  else if (Array.isArray(known)) known.push(at);
  else values.set(value, [known, at]);
}

function occurrences(locations: ValueLocations): number {
  return Array.isArray(locations) ? locations.length : 1;
}

function firstLocation(locations: ValueLocations): Location {
  return Array.isArray(locations) ? locations[0]! : locations;
}

function reportDuplicates(final: FinalIndex, duplicates: Anomalies): void {
  for (const [value, locations] of final.values) {
    if (!Array.isArray(locations)) continue;
    duplicates.add(() => {
      const where = locations.map(formatLocation).join(', ');
      return `${quote(value)} is stored ${occurrences(locations)} times: ${where}`;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Puts

const ATTEMPT_OK = 1;
const ATTEMPT_INFO = 2;
const ATTEMPT_FAIL = 4;
const ATTEMPT_FLAG = { ok: ATTEMPT_OK, info: ATTEMPT_INFO, fail: ATTEMPT_FAIL } as const;

interface PutCounts {
  readonly acknowledged: number;
  readonly definiteFailures: number;
  readonly indeterminate: number;
  readonly indeterminateWritten: number;
  readonly indeterminateLost: number;
}

function checkPuts(
  puts: readonly PutOp[],
  final: FinalIndex,
  conflicts: ConflictTracker,
  found: { readonly lost: Anomalies; readonly definiteButWritten: Anomalies },
): PutCounts {
  let acknowledged = 0;
  let definiteFailures = 0;
  let indeterminate = 0;
  let indeterminateWritten = 0;
  /** value -> which kinds of outcome its attempts had (ATTEMPT_* bits). */
  const outcomes = new Map<string, number>();
  for (const put of puts) {
    const { result } = put;
    outcomes.set(put.value, (outcomes.get(put.value) ?? 0) | ATTEMPT_FLAG[result.type]);
    switch (result.type) {
      case 'ok':
        acknowledged++;
        checkAcknowledged(put, result, final, conflicts, found.lost);
        break;
      case 'fail':
        definiteFailures++;
        break;
      case 'info':
        indeterminate++;
        if (final.values.has(put.value)) indeterminateWritten++;
        break;
    }
  }
  checkDefiniteFailures(puts, outcomes, final, found.definiteButWritten);
  return {
    acknowledged,
    definiteFailures,
    indeterminate,
    indeterminateWritten,
    indeterminateLost: indeterminate - indeterminateWritten,
  };
}

function checkAcknowledged(
  put: PutOp,
  ack: Extract<PutResult, { type: 'ok' }>,
  final: FinalIndex,
  conflicts: ConflictTracker,
  lost: Anomalies,
): void {
  const key = sequenceKey(ack.sequenceNumber, () => `the acknowledgement of ${quote(put.value)}`);
  const logged = final.shards.get(ack.shardId)?.valueAt.get(key);
  if (logged === put.value) return;
  const claim: Claim = { value: put.value, by: { kind: 'ack', process: put.process } };
  conflicts.claim(ack.shardId, key, ack.sequenceNumber, claim, logged);
  lost.add(() => {
    const acked = `${quote(put.value)} acknowledged to ${put.process} at ${ack.shardId}/${ack.sequenceNumber}`;
    const locations = final.values.get(put.value);
    if (locations === undefined) return `${acked} is absent from every final log`;
    const others = occurrences(locations) - 1;
    return (
      `${acked} is not there but elsewhere, at ${formatLocation(firstLocation(locations))}` +
      (others > 0 ? ` and ${others} more` : '')
    );
  });
}

/** A definite failure is a lie only if no other attempt of the value may have written it. */
function checkDefiniteFailures(
  puts: readonly PutOp[],
  outcomes: ReadonlyMap<string, number>,
  final: FinalIndex,
  definiteButWritten: Anomalies,
): void {
  const reported = new Set<string>();
  for (const put of puts) {
    if (put.result.type !== 'fail' || outcomes.get(put.value) !== ATTEMPT_FAIL) continue;
    const locations = final.values.get(put.value);
    if (locations === undefined || reported.has(put.value)) continue;
    reported.add(put.value);
    const { error } = put.result;
    definiteButWritten.add(
      () =>
        `${quote(put.value)} failed definitely for ${put.process} (${error}) ` +
        `yet is at ${formatLocation(firstLocation(locations))}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Reads

interface ParsedRead {
  readonly seq: bigint;
  readonly key: string;
  readonly record: ReadRecord;
}

function checkObservation(
  observation: ReadObservation,
  final: FinalIndex,
  conflicts: ConflictTracker,
  found: {
    readonly phantomReads: Anomalies;
    readonly nonMonotonicReads: Anomalies;
    readonly skippedReads: Anomalies;
  },
): void {
  const { consumer, shardId, startAfter } = observation;
  const where = (): string => `the reads of ${consumer} on ${shardId}`;
  const shard = final.shards.get(shardId) ?? EMPTY_SHARD;
  const start = startAfter === undefined ? undefined : BigInt(sequenceKey(startAfter, where));
  const reads: ParsedRead[] = observation.records.map((record) => {
    const key = sequenceKey(record.sequenceNumber, where);
    return { seq: BigInt(key), key, record };
  });

  for (const { key, record } of reads) {
    const logged = shard.valueAt.get(key);
    if (logged === record.value) continue;
    const claim: Claim = { value: record.value, by: { kind: 'read', consumer } };
    conflicts.claim(shardId, key, record.sequenceNumber, claim, logged);
    if (logged !== undefined) continue;
    found.phantomReads.add(
      () =>
        `${consumer} read ${quote(record.value)} at ${shardId}/${record.sequenceNumber}, ` +
        `which no final log has`,
    );
  }
  checkReadOrder(observation, start, reads, found.nonMonotonicReads);
  checkSkips(observation, start, reads, shard, found.skippedReads);
}

function checkReadOrder(
  observation: ReadObservation,
  start: bigint | undefined,
  reads: readonly ParsedRead[],
  nonMonotonic: Anomalies,
): void {
  const { consumer, shardId, startAfter } = observation;
  let previous = start;
  let previousText = `starting after ${startAfter ?? ''}`;
  for (const { seq, record } of reads) {
    if (previous !== undefined && seq <= previous) {
      const after = previousText;
      nonMonotonic.add(() => `${consumer} on ${shardId} read ${record.sequenceNumber} ${after}`);
    }
    previous = seq;
    previousText = `after ${record.sequenceNumber}`;
  }
}

/**
 * Every final-log record between the start and the highest record read must have been read
 * (at any point of the observation: reading back and forth is a separate anomaly, and a record
 * read late was not skipped). Gaps are taken from the running maximum, so none is counted twice.
 */
function checkSkips(
  observation: ReadObservation,
  start: bigint | undefined,
  reads: readonly ParsedRead[],
  shard: ShardIndex,
  skipped: Anomalies,
): void {
  const readInLog = distinctSorted(
    reads.filter((read) => shard.valueAt.has(read.key)).map((read) => read.seq),
  );
  let covered = start;
  let coveredText = observation.startAfter ?? 'the start of the shard';
  for (const { seq, record } of reads) {
    if (covered !== undefined && seq <= covered) continue;
    const from = covered === undefined ? 0 : upperBound(shard.sorted, covered);
    const to = lowerBound(shard.sorted, seq);
    const readBetween =
      lowerBound(readInLog, seq) - (covered === undefined ? 0 : upperBound(readInLog, covered));
    const missed = to - from - readBetween;
    if (missed > 0) {
      const after = coveredText;
      skipped.add(() => {
        const examples = missedSequenceNumbers(shard, from, to, readInLog, 3);
        return (
          `${observation.consumer} on ${observation.shardId} skipped ${missed} record(s) ` +
          `between ${after} and ${record.sequenceNumber}: ${examples.join(', ')}` +
          (missed > examples.length ? ', ...' : '')
        );
      }, missed);
    }
    covered = seq;
    coveredText = record.sequenceNumber;
  }
}

function missedSequenceNumbers(
  shard: ShardIndex,
  from: number,
  to: number,
  readInLog: readonly bigint[],
  limit: number,
): string[] {
  const missed: string[] = [];
  for (let i = from; i < to && missed.length < limit; i++) {
    const seq = shard.sorted[i]!;
    const at = lowerBound(readInLog, seq);
    if (readInLog[at] !== seq) missed.push(shard.spelled[i]!);
  }
  return missed;
}

// ---------------------------------------------------------------------------------------------
// Replicas

interface Holder {
  readonly replica: ReplicaLog;
  readonly entry: ReplicaLogEntry;
}

function checkReplicas(replicaLogs: readonly ReplicaLog[], divergence: Anomalies): void {
  const byShard = new Map<string, ReplicaLog[]>();
  for (const replica of replicaLogs) {
    const replicas = byShard.get(replica.shardId) ?? [];
    if (replicas.some((other) => other.broker === replica.broker)) {
      throw new Error(`two replica logs of ${replica.shardId} on ${replica.broker}`);
    }
    replicas.push(replica);
    byShard.set(replica.shardId, replicas);
  }
  for (const [shardId, replicas] of byShard) checkShardReplicas(shardId, replicas, divergence);
}

function checkShardReplicas(
  shardId: string,
  replicas: readonly ReplicaLog[],
  divergence: Anomalies,
): void {
  const holders = new Map<number, Holder[]>();
  for (const replica of replicas) {
    for (const entry of replica.entries) {
      const list = holders.get(entry.index) ?? [];
      list.push({ replica, entry });
      holders.set(entry.index, list);
    }
  }
  const indexes = [...holders.keys()].sort((a, b) => a - b);
  for (const index of indexes) {
    // Only entries both sides have committed must agree; an uncommitted tail may be overwritten.
    const committed = holders.get(index)!.filter((h) => index <= h.replica.commitIndex);
    const [reference, ...others] = committed;
    if (reference === undefined || others.every((h) => sameEntry(h.entry, reference.entry))) {
      continue;
    }
    divergence.add(() => describeMismatch(shardId, index, committed));
  }
  for (const replica of replicas) {
    for (const run of consecutiveRuns(findHoles(replica, indexes, holders))) {
      divergence.add(() => describeHole(shardId, replica, run, holders));
    }
  }
}

/** Indexes in [first entry, commitIndex] the replica lacks but another replica has. */
function findHoles(
  replica: ReplicaLog,
  sortedIndexes: readonly number[],
  holders: ReadonlyMap<number, readonly Holder[]>,
): number[] {
  if (replica.entries.length === 0) return [];
  // Below the first entry the replica trimmed its log; that is not a hole.
  const firstIndex = Math.min(...replica.entries.map((entry) => entry.index));
  const missing: number[] = [];
  for (const index of sortedIndexes) {
    if (index < firstIndex) continue;
    if (index > replica.commitIndex) break;
    if (!holders.get(index)!.some((h) => h.replica === replica)) missing.push(index);
  }
  return missing;
}

function consecutiveRuns(sorted: readonly number[]): Array<{ first: number; last: number }> {
  const runs: Array<{ first: number; last: number }> = [];
  for (const index of sorted) {
    const run = runs[runs.length - 1];
    if (run !== undefined && run.last + 1 === index) run.last = index;
    else runs.push({ first: index, last: index });
  }
  return runs;
}

function describeMismatch(shardId: string, index: number, committed: readonly Holder[]): string {
  const groups: Array<{ entry: ReplicaLogEntry; brokers: string[] }> = [];
  for (const { replica, entry } of committed) {
    const group = groups.find((g) => sameEntry(g.entry, entry));
    if (group === undefined) groups.push({ entry, brokers: [replica.broker] });
    else group.brokers.push(replica.broker);
  }
  const variants = groups.map(
    ({ entry, brokers }) =>
      `${brokers.join(', ')}: term ${entry.term}, ${entry.bytes.length} bytes ${hexPrefix(entry.bytes)}`,
  );
  return `${shardId} index ${index} differs between replicas that committed it: ${variants.join('; ')}`;
}

function describeHole(
  shardId: string,
  replica: ReplicaLog,
  run: { first: number; last: number },
  holders: ReadonlyMap<number, readonly Holder[]>,
): string {
  const span = run.first === run.last ? `${run.first}` : `${run.first}..${run.last}`;
  const other = holders.get(run.first)?.[0]?.replica.broker ?? 'another replica';
  return (
    `${replica.broker} of ${shardId} lacks entry ${span} at or below its commitIndex ` +
    `${replica.commitIndex}, which ${other} has`
  );
}

function sameEntry(a: ReplicaLogEntry, b: ReplicaLogEntry): boolean {
  if (a.term !== b.term || a.bytes.length !== b.bytes.length) return false;
  return Buffer.from(a.bytes.buffer, a.bytes.byteOffset, a.bytes.length).equals(b.bytes);
}

function hexPrefix(bytes: Uint8Array, maxBytes = 8): string {
  const hex = Buffer.from(bytes.subarray(0, maxBytes)).toString('hex');
  return bytes.length > maxBytes ? `${hex}...` : hex;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * The canonical spelling of a sequence number (no leading zeros), used as a Map key so that '09'
 * and '9' are one position; BigInt(key) gives its order. Checked first, since BigInt() alone
 * would accept '', ' 1', '0x1f' and '1e3'.
 */
function sequenceKey(sequenceNumber: string, where: () => string): string {
  if (!/^\d+$/.test(sequenceNumber)) {
    throw new Error(`malformed sequence number ${JSON.stringify(sequenceNumber)} in ${where()}`);
  }
  return sequenceNumber[0] === '0' ? sequenceNumber.replace(/^0+(?=\d)/, '') : sequenceNumber;
}

function positionKey(shardId: string, canonicalSequence: string): string {
  return `${shardId}\u0000${canonicalSequence}`;
}

function compareBigInt(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function distinctSorted(seqs: readonly bigint[]): bigint[] {
  const sorted = [...seqs].sort(compareBigInt);
  return sorted.filter((seq, i) => i === 0 || seq !== sorted[i - 1]);
}

/** First index whose element is >= target. */
function lowerBound(sorted: readonly bigint[], target: bigint): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose element is > target. */
function upperBound(sorted: readonly bigint[], target: bigint): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function formatLocation(at: Location): string {
  return `${at.shardId}/${at.sequenceNumber}`;
}

function quote(value: string, maxChars = 60): string {
  return JSON.stringify(value.length > maxChars ? `${value.slice(0, maxChars)}...` : value);
}
