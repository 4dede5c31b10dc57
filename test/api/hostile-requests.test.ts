import { createHash } from 'node:crypto';
import {
  Client,
  credentials,
  Metadata,
  status as GrpcStatus,
  type ServiceError,
} from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type RheosClient } from '../../src/client/client.js';
import {
  InternalFailureError,
  InvalidArgumentError,
  isKinesisErrorName,
  ResourceInUseError,
  ResourceNotFoundError,
  RheosError,
  ServiceUnavailableError,
  ValidationError,
  type KinesisErrorName,
} from '../../src/common/errors.js';
import { fromServiceError } from '../../src/common/grpc-errors.js';
import { UNLIMITED_SHARD_LIMITS } from '../../src/common/limits.js';
import { ShardFilterType } from '../../src/gen/rheos/v1/control.js';
import {
  GetShardIteratorRequest,
  ShardIteratorType,
  type GetRecordsResponse,
} from '../../src/gen/rheos/v1/data.js';
import {
  EncryptionType,
  StreamMode,
  StreamStatus,
  type Record as StreamRecord,
} from '../../src/gen/rheos/v1/stream.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

/**
 * Hostile-request robustness: a seeded stream of generated requests, valid and hostile mixed,
 * across every API call (plus raw garbage on the wire). After each request:
 *   1. the server still answers (DescribeLimits within a deadline);
 *   2. the outcome is a success or a RheosError with a Kinesis error name, never
 *      InternalFailureException, never a transport failure or a hang, and (where the request is
 *      clearly valid or clearly invalid) the right one of the two, with the right error class;
 *   3. every acknowledged record reads back byte-identical: a model of every shard of the two
 *      model streams holds the acknowledged records, a read cursor per shard reads forward after
 *      every request that could have written, and what appears must be exactly what was
 *      acknowledged (nothing lost, nothing altered, nothing unacknowledged).
 * Reads are held to the model as well: every iterator obtained for a model shard must point where
 * the model says (TRIM_HORIZON, LATEST, AT/AFTER a sequence number, AT_TIMESTAMP), and GetRecords
 * must return exactly the model's records from that point. At the end every shard is re-read from
 * TRIM_HORIZON and compared with the whole model.
 *
 * Replay: SEED=<printed seed> npx vitest run test/api/hostile-requests.test.ts
 * HOSTILE_REQUESTS=<n> changes the number of requests.
 */

const SEED = process.env.SEED !== undefined ? Number(process.env.SEED) : randomSeed();
const REQUESTS = Number(process.env.HOSTILE_REQUESTS ?? 10_000);
const CALL_DEADLINE_MS = 15_000;

if (!Number.isSafeInteger(SEED) || !Number.isSafeInteger(REQUESTS)) {
  throw new Error(`SEED and HOSTILE_REQUESTS must be integers (got ${SEED}, ${REQUESTS})`);
}

function randomSeed(): number {
  return (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0;
}

const MiB = 1024 * 1024;
const MAX_HASH_KEY = (1n << 128n) - 1n;
const REGION = 'us-east-1';
const ACCOUNT = '000000000000';
const MODEL_STREAMS = { one: 'hostile-one-shard', three: 'hostile-three-shards' } as const;
type ModelStreamKey = keyof typeof MODEL_STREAMS;
const MODEL_KEYS: readonly ModelStreamKey[] = ['one', 'three'];
const MODEL_NAMES: readonly string[] = Object.values(MODEL_STREAMS);
/** Throwaway streams: the only ones ever created or deleted by the generated requests. */
const THROWAWAY = Array.from({ length: 6 }, (_, i) => `hostile-tmp-${i}`);

function arnOf(name: string, region = REGION, account = ACCOUNT, partition = 'aws'): string {
  return `arn:${partition}:kinesis:${region}:${account}:stream/${name}`;
}

// ---------------------------------------------------------------------------------------------
// Expected outcomes

/**
 * Why a request must (or may) fail. `field` reasons are violations of the API model that the
 * server checks before anything else (ValidationException); the others are raised later.
 */
interface Reason {
  readonly name: KinesisErrorName;
  readonly field?: boolean;
  readonly why: string;
}

const fieldInvalid = (why: string): Reason => ({ name: 'ValidationException', field: true, why });
const invalidArgument = (why: string): Reason => ({ name: 'InvalidArgumentException', why });
const notFound = (why: string): Reason => ({ name: 'ResourceNotFoundException', why });
/** An int64 beyond what the API's JS numbers hold: the request cannot even be decoded. */
const undecodable = (why: string): Reason => fieldInvalid(why);

/**
 * What the request is about: one of the model streams; no stream at all (ListStreams,
 * DescribeLimits, a paginated listing of a model stream); or anything else (throwaway streams,
 * missing streams, invalid names), where a valid request may still fail.
 */
type Target =
  | { readonly kind: 'model'; readonly stream: ModelStreamKey }
  | { readonly kind: 'service' }
  | { readonly kind: 'other' }
  | { readonly kind: 'unknown' };
const SERVICE: Target = { kind: 'service' };

interface Expectation {
  /** Each of these makes the request fail. */
  readonly reasons: readonly Reason[];
  /** Each of these may make it fail (the server may be lenient). */
  readonly maybe: readonly Reason[];
  /** Success is required when nothing says otherwise and the target is a model stream or the service. */
  readonly target: Target;
  /** Extra error names a failure may carry. */
  readonly alsoAllowed?: readonly KinesisErrorName[];
}

type Verdict = {
  readonly success: 'must' | 'may' | 'mustNot';
  readonly allowed: ReadonlySet<string> | null;
};

/** Turns reasons into a verdict; `allowed` null means any Kinesis error except the forbidden. */
function verdict(e: Expectation): Verdict {
  const extra = new Set<string>(e.alsoAllowed ?? []);
  const definite = e.target.kind === 'model' || e.target.kind === 'service';
  if (!definite) extra.add('ResourceNotFoundException');
  if (e.reasons.length > 0) {
    if (e.reasons.some((r) => r.field)) {
      return { success: 'mustNot', allowed: new Set(['ValidationException']) };
    }
    return {
      success: 'mustNot',
      allowed: new Set<string>([...[...e.reasons, ...e.maybe].map((r) => r.name), ...extra]),
    };
  }
  if (e.maybe.length > 0) {
    return {
      success: 'may',
      allowed: new Set<string>([...e.maybe.map((r) => r.name), ...extra]),
    };
  }
  if (definite) return { success: 'must', allowed: new Set() };
  return { success: 'may', allowed: null };
}

// ---------------------------------------------------------------------------------------------
// Generated request specs (pure data; resolved against the live state when executed)

interface StreamRef {
  readonly streamName: string;
  readonly streamArn: string;
  readonly target: Target;
  readonly reasons: readonly Reason[];
}

interface RecordSpec {
  readonly partitionKey: string;
  readonly dataLength: number;
  readonly dataSeed: number;
  readonly explicitHashKey?: string | undefined;
}

type SeqSpec =
  | { readonly kind: 'none' }
  | { readonly kind: 'acked'; readonly from: 'same' | 'other'; readonly pick: number }
  /** The shard's StartingSequenceNumber (from ListShards), of this shard or another. */
  | { readonly kind: 'start'; readonly from: 'same' | 'other' }
  | { readonly kind: 'tweak'; readonly pick: number; readonly delta: string }
  | { readonly kind: 'literal'; readonly value: string };

type TimestampSpec =
  | { readonly kind: 'none' }
  | { readonly kind: 'absolute'; readonly value: number }
  | { readonly kind: 'arrival'; readonly pick: number; readonly delta: number }
  | { readonly kind: 'now'; readonly delta: number };

type ShardSpec =
  | { readonly kind: 'index'; readonly index: number; readonly wrap: boolean }
  | { readonly kind: 'literal'; readonly value: string };

type IteratorSpec =
  | { readonly kind: 'pool'; readonly pick: number }
  | { readonly kind: 'mutated'; readonly pick: number; readonly mutation: Mutation }
  | { readonly kind: 'literal'; readonly value: string };

type Mutation =
  | { readonly kind: 'replace'; readonly at: number; readonly char: string }
  | { readonly kind: 'truncate'; readonly keep: number }
  | { readonly kind: 'append'; readonly text: string }
  | { readonly kind: 'swapCase' }
  | { readonly kind: 'reverse' };

type TokenSpec =
  | { readonly kind: 'none' }
  | { readonly kind: 'real'; readonly pick: number }
  | { readonly kind: 'mutated'; readonly pick: number; readonly mutation: Mutation }
  | { readonly kind: 'forged'; readonly patch: Readonly<Record<string, unknown>> }
  | { readonly kind: 'literal'; readonly value: string };

type ArnSpec =
  | { readonly kind: 'none' }
  | { readonly kind: 'same' }
  | { readonly kind: 'otherModel' }
  | { readonly kind: 'literal'; readonly value: string; readonly reason?: Reason };

type Op =
  | {
      readonly op: 'putRecord';
      readonly ref: StreamRef;
      readonly record: RecordSpec;
      readonly sequenceNumberForOrdering?: string | undefined;
    }
  | { readonly op: 'putRecords'; readonly ref: StreamRef; readonly records: readonly RecordSpec[] }
  | {
      readonly op: 'getShardIterator';
      readonly ref: StreamRef;
      readonly shard: ShardSpec;
      readonly type: ShardIteratorType;
      readonly seq: SeqSpec;
      readonly timestamp: TimestampSpec;
      readonly verifyLimit: number;
    }
  | {
      readonly op: 'getRecords';
      readonly iterator: IteratorSpec;
      readonly limit?: number | undefined;
      readonly arn: ArnSpec;
    }
  | {
      readonly op: 'createStream';
      readonly name: string;
      readonly shardCount?: number | undefined;
      readonly mode: StreamMode;
      readonly tags: Readonly<Record<string, string>>;
      readonly replicationFactor?: number | undefined;
      readonly limited: boolean;
    }
  | { readonly op: 'deleteStream'; readonly ref: StreamRef; readonly enforce: boolean }
  | {
      readonly op: 'describeStream';
      readonly ref: StreamRef;
      readonly limit?: number | undefined;
      readonly exclusiveStartShardId: string;
    }
  | { readonly op: 'describeStreamSummary'; readonly ref: StreamRef }
  | {
      readonly op: 'listStreams';
      readonly limit?: number | undefined;
      readonly exclusiveStartStreamName: string;
      readonly token: TokenSpec;
    }
  | {
      readonly op: 'listShards';
      readonly ref: StreamRef | undefined;
      readonly token: TokenSpec;
      readonly exclusiveStartShardId: string;
      readonly maxResults?: number | undefined;
      readonly creationTimestamp: 'none' | 'real' | number;
      readonly filter?:
        | {
            readonly type: ShardFilterType;
            readonly shardId: string;
            readonly timestampMs?: number | undefined;
          }
        | undefined;
    }
  | {
      readonly op: 'addTags';
      readonly ref: StreamRef;
      readonly tags: Readonly<Record<string, string>>;
    }
  | { readonly op: 'removeTags'; readonly ref: StreamRef; readonly keys: readonly string[] }
  | {
      readonly op: 'listTags';
      readonly ref: StreamRef;
      readonly limit?: number | undefined;
      readonly exclusiveStartTagKey: string;
    }
  | {
      readonly op: 'retention';
      readonly ref: StreamRef;
      readonly direction: 'increase' | 'decrease';
      readonly hours: number;
    }
  | { readonly op: 'updateStreamMode'; readonly ref: StreamRef; readonly mode: StreamMode }
  | { readonly op: 'describeLimits' }
  | { readonly op: 'raw'; readonly path: string; readonly payload: RawPayload };

type RawPayload =
  | { readonly kind: 'random'; readonly length: number; readonly seed: number }
  | { readonly kind: 'empty' }
  | { readonly kind: 'truncatedPut'; readonly keep: number; readonly seed: number }
  | { readonly kind: 'badUtf8' }
  | { readonly kind: 'hugeLength' }
  | { readonly kind: 'wrongWireType' }
  | { readonly kind: 'hugeTimestamp' };

// ---------------------------------------------------------------------------------------------
// Arbitraries

const asciiChar = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 });

/** A string of exactly `n` code points, none of them a lone low surrogate (so no pairs form). */
function codePoints(n: number): fc.Arbitrary<string> {
  return fc
    .array(fc.constantFrom('a', 'Z', '9', '😀', 'é', '中', '𝄞', '\u0000', '\uD83D', ' '), {
      minLength: n,
      maxLength: n,
    })
    .map((chars) => chars.join(''));
}

const loneSurrogateKey = fc
  .array(
    fc.oneof(
      asciiChar,
      fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
    ),
    { minLength: 1, maxLength: 10 },
  )
  .map((parts) => parts.join(''));

const partitionKeyArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 40, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 16 }) },
  { weight: 20, arbitrary: fc.nat(1_000_000).map((n) => `key-${n}`) },
  { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }) },
  {
    weight: 4,
    arbitrary: fc
      .array(fc.constantFrom('😀', '🦀', 'é', '中', '\u0301', '𝄞', 'ß'), {
        minLength: 1,
        maxLength: 20,
      })
      .map((a) => a.join('')),
  },
  { weight: 3, arbitrary: loneSurrogateKey },
  { weight: 2, arbitrary: codePoints(256) },
  { weight: 1, arbitrary: codePoints(255) },
  { weight: 1, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: codePoints(257) },
  { weight: 1, arbitrary: fc.constantFrom('\u0000', '\n', '\t\r', '\u007f', ' ', '\uFEFF') },
);

const explicitHashKeyArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 120, arbitrary: fc.constant(undefined) },
  { weight: 8, arbitrary: fc.bigInt({ min: 0n, max: MAX_HASH_KEY }).map(String) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '0',
      String(MAX_HASH_KEY),
      String(MAX_HASH_KEY + 1n),
      String(MAX_HASH_KEY * 10n),
      '9'.repeat(39),
      '1' + '0'.repeat(39),
      '-1',
      '-0',
      '007',
      '00',
      '12a',
      '',
      ' 1',
      '1 ',
      '1e3',
      '+5',
      '0x10',
      '\u0663', // ARABIC-INDIC DIGIT THREE
      '１２', // full-width digits
    ),
  },
);

const dataLengthArb = fc.oneof(
  { weight: 8, arbitrary: fc.constant(0) },
  { weight: 70, arbitrary: fc.integer({ min: 1, max: 64 }) },
  { weight: 20, arbitrary: fc.integer({ min: 65, max: 4096 }) },
  { weight: 2, arbitrary: fc.integer({ min: 4097, max: 65_536 }) },
);

const recordArb: fc.Arbitrary<RecordSpec> = fc.record({
  partitionKey: partitionKeyArb,
  dataLength: dataLengthArb,
  dataSeed: fc.nat(),
  explicitHashKey: explicitHashKeyArb,
});

/** Entries of multi-record requests: mostly well-formed, so that most batches are valid. */
const batchRecordArb: fc.Arbitrary<RecordSpec> = fc.oneof(
  {
    weight: 30,
    arbitrary: fc.record({
      partitionKey: fc.oneof(
        fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 16 }),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }),
        loneSurrogateKey,
      ),
      dataLength: dataLengthArb,
      dataSeed: fc.nat(),
      explicitHashKey: fc.oneof(
        { weight: 10, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: MAX_HASH_KEY }).map(String) },
      ),
    }),
  },
  { weight: 1, arbitrary: recordArb },
);

/** A small valid record (for the 500-record requests). */
const plainRecordArb: fc.Arbitrary<RecordSpec> = fc.record({
  partitionKey: fc.nat(1_000_000).map((n) => `p${n}`),
  dataLength: fc.integer({ min: 0, max: 32 }),
  dataSeed: fc.nat(),
  explicitHashKey: fc.constant(undefined),
});

/** Records at the 1 MiB boundary: data + partition key of exactly 1 MiB, one byte over, ... */
const bigRecordArb: fc.Arbitrary<RecordSpec> = fc
  .tuple(
    fc.constantFrom('k', 'é', '😀'.repeat(3)),
    fc.constantFrom(-1000, -1, 0, 0, 1),
    fc.boolean(),
    fc.nat(),
  )
  .map(([partitionKey, delta, relative, dataSeed]) => ({
    partitionKey,
    dataLength: relative ? MiB - Buffer.byteLength(partitionKey, 'utf8') + delta : MiB + delta,
    dataSeed,
    explicitHashKey: undefined,
  }));

const invalidNames: readonly string[] = [
  '',
  'a'.repeat(129),
  'strëam',
  'stream name',
  'a\u0000b',
  'a\nb',
  '\t',
  '../etc',
  'a/b',
  'a*',
  '😀',
  '\uD800',
  'ｓｔｒｅａｍ',
];
const missingNames: readonly string[] = ['nope', 'a'.repeat(128), 'A.b-c_d', '0', '-', '.'];

/** Stream references. `forWrite` and `forDelete` restrict what may be named. */
function streamRefArb(options: { forDelete?: boolean } = {}): fc.Arbitrary<StreamRef> {
  const model = fc.constantFrom(...MODEL_KEYS);
  const throwaway = fc.constantFrom(...THROWAWAY);
  const modelRefs: fc.WeightedArbitrary<StreamRef>[] = options.forDelete
    ? []
    : [
        {
          weight: 40,
          arbitrary: model.map((m): StreamRef => ({
            streamName: MODEL_STREAMS[m],
            streamArn: '',
            target: { kind: 'model', stream: m },
            reasons: [],
          })),
        },
        {
          weight: 8,
          arbitrary: model.map((m): StreamRef => ({
            streamName: '',
            streamArn: arnOf(MODEL_STREAMS[m]),
            target: { kind: 'model', stream: m },
            reasons: [],
          })),
        },
        {
          weight: 4,
          arbitrary: model.map((m): StreamRef => ({
            streamName: MODEL_STREAMS[m],
            streamArn: arnOf(MODEL_STREAMS[m]),
            target: { kind: 'model', stream: m },
            reasons: [],
          })),
        },
        {
          weight: 2,
          arbitrary: fc.constantFrom<StreamRef>(
            {
              streamName: MODEL_STREAMS.one,
              streamArn: arnOf(MODEL_STREAMS.three),
              target: { kind: 'other' },
              reasons: [invalidArgument('name and ARN disagree')],
            },
            {
              streamName: MODEL_STREAMS.three,
              streamArn: arnOf(MODEL_STREAMS.one),
              target: { kind: 'other' },
              reasons: [invalidArgument('name and ARN disagree')],
            },
          ),
        },
        {
          weight: 3,
          arbitrary: fc
            .tuple(
              model,
              fc.constantFrom(
                { region: 'eu-west-1', account: ACCOUNT },
                { region: REGION, account: '123456789012' },
              ),
            )
            .map(([m, where]): StreamRef => ({
              streamName: '',
              streamArn: arnOf(MODEL_STREAMS[m], where.region, where.account),
              target: { kind: 'other' },
              reasons: [notFound('ARN of another region or account')],
            })),
        },
        {
          // Other partitions (the server's ARN pattern is arn:aws[a-z-]*): same region and
          // account, so the same stream.
          weight: 1,
          arbitrary: fc
            .tuple(model, fc.constantFrom('aws-cn', 'aws-us-gov'))
            .map(([m, partition]): StreamRef => ({
              streamName: '',
              streamArn: arnOf(MODEL_STREAMS[m], REGION, ACCOUNT, partition),
              target: { kind: 'model', stream: m },
              reasons: [],
            })),
        },
      ];
  return fc.oneof(
    ...modelRefs,
    {
      weight: 5,
      arbitrary: throwaway.map((name): StreamRef => ({
        streamName: name,
        streamArn: '',
        target: { kind: 'other' },
        reasons: [],
      })),
    },
    {
      weight: 1,
      arbitrary: throwaway.map((name): StreamRef => ({
        streamName: '',
        streamArn: arnOf(name),
        target: { kind: 'other' },
        reasons: [],
      })),
    },
    {
      weight: 3,
      arbitrary: fc.constantFrom(...missingNames).map((name): StreamRef => ({
        streamName: name,
        streamArn: '',
        target: { kind: 'other' },
        reasons: [notFound('no such stream')],
      })),
    },
    {
      weight: 6,
      arbitrary: fc
        .oneof(fc.constantFrom(...invalidNames), fc.string({ unit: 'binary', maxLength: 4 }))
        .filter((name) => !/^[a-zA-Z0-9_.-]+$/.test(name) || [...name].length > 128)
        .map((name): StreamRef => ({
          streamName: name,
          streamArn: '',
          target: { kind: 'other' },
          reasons: [fieldInvalid('bad stream name')],
        })),
    },
    {
      weight: 3,
      arbitrary: fc
        .oneof(
          fc.constantFrom(
            'arn:aws:kinesis:us-east-1:000000000000:stream/',
            'arn:aws:kinesis:us-east-1:00000000000:stream/x',
            'arn:aws:kinesis:us-east-1:000000000000:stream/a b',
            'arn:aws:kinesis:us-east-1:000000000000:stream/strëam',
            'arn:aws:kinesis:us-east-1:000000000000:deliverystream/x',
            'arn:aws:s3:::bucket',
            'arn:aws:kinesis:US-EAST-1:000000000000:stream/x',
            'arn:aws:kinesis:us-east-1:000000000000:stream/x\n',
            'arn',
            ':::::',
            'x'.repeat(3000),
          ),
          fc.string({ maxLength: 40 }).filter((s) => s !== '' && !s.startsWith('arn:')),
        )
        .map((arn): StreamRef => ({
          streamName: '',
          streamArn: arn,
          target: { kind: 'other' },
          reasons: [{ name: 'ValidationException', why: 'malformed ARN' }],
        })),
    },
  );
}

const anyStreamRef = streamRefArb();

const seqLiteralArb = fc.oneof(
  fc.constantFrom('0', '1', '49590338271490256608559692538361571095921575989136588898', '-1', '01'),
  fc.constantFrom('abc', ' 1', '1'.repeat(129), '1'.repeat(130), '4' + '0'.repeat(37), '\u0663'),
  fc.bigInt({ min: 0n, max: 10n ** 40n }).map(String),
  fc.string({ maxLength: 20 }).filter((s) => s !== ''),
);

const seqArb: fc.Arbitrary<SeqSpec> = fc.oneof(
  { weight: 30, arbitrary: fc.constant({ kind: 'none' as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('start' as const),
      from: fc.constantFrom('same' as const, 'same' as const, 'other' as const),
    }),
  },
  {
    weight: 30,
    arbitrary: fc.record({
      kind: fc.constant('acked' as const),
      from: fc.constantFrom('same' as const, 'same' as const, 'same' as const, 'other' as const),
      pick: fc.nat(),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('tweak' as const),
      pick: fc.nat(),
      delta: fc.constantFrom('1', '-1', '2', '100000', '-100000', '99998', '1000000000000'),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({ kind: fc.constant('literal' as const), value: seqLiteralArb }),
  },
);

const timestampArb: fc.Arbitrary<TimestampSpec> = fc.oneof(
  { weight: 40, arbitrary: fc.constant({ kind: 'none' as const }) },
  {
    weight: 15,
    arbitrary: fc.record({
      kind: fc.constant('arrival' as const),
      pick: fc.nat(),
      delta: fc.constantFrom(-1, 0, 0, 1),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('now' as const),
      delta: fc.constantFrom(-3_600_000, -1000, 0, 60_000, 86_400_000),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('absolute' as const),
      value: fc.oneof(
        fc.constantFrom(0, -1, 1, -86_400_000, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER),
        fc.integer({ min: -2_000_000_000, max: 2_000_000_000 }),
        // int64 values JS numbers cannot hold: the server cannot decode the request.
        fc.constantFrom(2 ** 53 + 2, 2 ** 62, -(2 ** 62), -(2 ** 53) - 2),
      ),
    }),
  },
);

const iteratorTypeArb = fc.oneof(
  {
    weight: 20,
    arbitrary: fc.constantFrom(
      ShardIteratorType.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER,
      ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER,
      ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
      ShardIteratorType.SHARD_ITERATOR_TYPE_LATEST,
      ShardIteratorType.SHARD_ITERATOR_TYPE_AT_TIMESTAMP,
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      ShardIteratorType.SHARD_ITERATOR_TYPE_UNSPECIFIED,
      ShardIteratorType.UNRECOGNIZED,
    ),
  },
);

const shardSpecArb: fc.Arbitrary<ShardSpec> = fc.oneof(
  {
    weight: 30,
    arbitrary: fc.record({
      kind: fc.constant('index' as const),
      index: fc.nat(3),
      wrap: fc.oneof(
        { weight: 5, arbitrary: fc.constant(true) },
        { weight: 1, arbitrary: fc.constant(false) },
      ),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('literal' as const),
      value: fc.oneof(
        fc.constantFrom(
          '',
          'shardId-000000000099',
          'shardId-00000000000',
          'shardId-0000000000000',
          'shardId-000000000000 ',
          'SHARDID-000000000000',
          '0',
          'shardId-1',
          's'.repeat(128),
          's'.repeat(129),
          'shardId-00000000000😀',
          '../shardId-000000000000',
          'shardId-\u0000',
        ),
        fc.string({ maxLength: 24 }),
      ),
    }),
  },
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('replace' as const),
      at: fc.nat(),
      char: fc.constantFrom('A', 'b', '0', '_', '-', '=', '+', '/', 'é', ' '),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      text: fc.constantFrom('A', '==', 'AAAA', '\u0000', 'x'.repeat(500)),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'swapCase' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reverse' as const }) },
);

const iteratorSpecArb: fc.Arbitrary<IteratorSpec> = fc.oneof(
  { weight: 30, arbitrary: fc.record({ kind: fc.constant('pool' as const), pick: fc.nat() }) },
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant('mutated' as const),
      pick: fc.nat(),
      mutation: mutationArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('literal' as const),
      value: fc.oneof(
        fc.constantFrom('', 'A'.repeat(68), 'A'.repeat(512), 'A'.repeat(513), 'A'.repeat(5000)),
        fc.string({ maxLength: 80 }),
        fc.stringMatching(/^[A-Za-z0-9_-]{68}$/),
        fc
          .uint8Array({ minLength: 51, maxLength: 51 })
          .map((b) => Buffer.from(b).toString('base64url')),
      ),
    }),
  },
);

const limitArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 12, arbitrary: fc.integer({ min: 1, max: 50 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(0, 1, 10_000, 10_001, 2 ** 31, 2 ** 32 - 1),
  },
);

const arnSpecArb: fc.Arbitrary<ArnSpec> = fc.oneof(
  { weight: 30, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'same' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'otherModel' as const }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<ArnSpec>(
      { kind: 'literal', value: 'junk', reason: { name: 'ValidationException', why: 'bad ARN' } },
      {
        kind: 'literal',
        value: arnOf(MODEL_STREAMS.one, 'eu-west-1'),
        reason: notFound('ARN of another region'),
      },
      {
        kind: 'literal',
        value: arnOf('nope'),
        reason: invalidArgument('ARN of another stream'),
      },
    ),
  },
);

const tagMapArb: fc.Arbitrary<Record<string, string>> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.dictionary(
      fc
        .stringMatching(/^[a-zA-Z0-9_.:/=+@ -]{1,10}$/)
        .filter((k) => !k.toLowerCase().startsWith('aws:')),
      fc.stringMatching(/^[a-zA-Z0-9_.:/=+@ -]{0,10}$/),
      { minKeys: 1, maxKeys: 4 },
    ),
  },
  {
    weight: 3,
    arbitrary: fc.dictionary(
      fc.oneof(
        fc.constantFrom(
          'aws:x',
          'AWS:reserved',
          '',
          'k'.repeat(128),
          'k'.repeat(129),
          'ключ',
          'a\u0000',
          'a#b',
          'constructor',
          'toString',
          'hasOwnProperty',
          'valueOf',
          '😀',
        ),
        fc.string({ maxLength: 12 }),
      ),
      fc.oneof(
        fc.constantFrom('', 'v'.repeat(256), 'v'.repeat(257), 'a\nb'),
        fc.string({ maxLength: 8 }),
      ),
      { maxKeys: 4 },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constant(
      Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`t${i}`, `v${i}`])),
    ),
  },
);

const tokenSpecArb = (kind: 'ListShards' | 'ListStreams'): fc.Arbitrary<TokenSpec> =>
  fc.oneof(
    { weight: 20, arbitrary: fc.constant({ kind: 'none' as const }) },
    { weight: 8, arbitrary: fc.record({ kind: fc.constant('real' as const), pick: fc.nat() }) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('mutated' as const),
        pick: fc.nat(),
        mutation: mutationArb,
      }),
    },
    {
      weight: 10,
      arbitrary: fc.record({ kind: fc.constant('forged' as const), patch: forgedPatchArb(kind) }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('literal' as const),
        value: fc.oneof(
          fc.constantFrom('x', 'null', 'e30', 'W10', 'bnVsbA', '%%%', 'A'.repeat(10_000)),
          fc.string({ maxLength: 40 }),
          fc.json().map((j) => Buffer.from(j, 'utf8').toString('base64url')),
        ),
      }),
    },
  );

/**
 * Overrides for a forged pagination token (base64url JSON, as the server issues them), applied
 * to a real token: mostly one field at a time, so that the rest of the token stays believable.
 */
function forgedPatchArb(kind: 'ListShards' | 'ListStreams'): fc.Arbitrary<Record<string, unknown>> {
  const jsonJunk = fc.oneof(
    fc.constantFrom(null, 0, -1, 1e308, '', 'x', true, [], {}),
    fc.string({ maxLength: 8 }),
  );
  const filterArb = fc.oneof(
    fc.record(
      {
        type: fc.oneof(fc.constantFrom(...Object.values(ShardFilterType)), jsonJunk),
        shardId: fc.oneof(fc.constantFrom('shardId-000000000001', ''), jsonJunk),
        timestampMs: fc.oneof(fc.integer(), jsonJunk),
      },
      { requiredKeys: [] },
    ),
    fc.constantFrom(0, 'x', [], {}, true),
    fc.constant(null),
  );
  const stream = fc.oneof(fc.constantFrom(...MODEL_NAMES, ...THROWAWAY, 'nope'), jsonJunk);
  const incarnation = fc.oneof(fc.constantFrom('real', 'real+1', 'real-1'), jsonJunk);
  const after = fc.oneof(
    fc.constantFrom('', 'shardId-000000000000', 'shardId-000000000002', 'hostile', '\uffff'),
    jsonJunk,
  );
  const bodyPatch =
    kind === 'ListShards'
      ? fc.oneof(
          fc.record({ stream }),
          fc.record({ incarnation }),
          fc.record({ after }),
          { weight: 2, arbitrary: fc.record({ filter: filterArb }) },
          fc.record({ stream, incarnation, after, filter: filterArb }, { requiredKeys: [] }),
        )
      : fc.record({ after });
  const single = fc.oneof(
    fc.record({ v: jsonJunk }),
    fc.record({ kind: fc.constantFrom('ListShards', 'ListStreams', 'x') }),
    fc.record({ issuedMs: fc.oneof(fc.constantFrom('past', 'future'), jsonJunk) }),
    fc.record({ body: jsonJunk }),
    { weight: 6, arbitrary: bodyPatch.map((body) => ({ body })) },
  );
  const chaotic = fc.record(
    {
      v: fc.oneof(fc.constant(1), jsonJunk),
      kind: fc.constantFrom('ListShards', 'ListStreams', 'x'),
      issuedMs: fc.oneof(fc.constantFrom('now', 'past', 'future'), jsonJunk),
      body: fc.oneof(bodyPatch, jsonJunk),
    },
    { requiredKeys: [] },
  );
  return fc.oneof({ weight: 4, arbitrary: single }, { weight: 1, arbitrary: chaotic });
}

const rawPaths = [
  ...['PutRecord', 'PutRecords', 'GetShardIterator', 'GetRecords'].map(
    (m) => `/rheos.v1.DataPlaneService/${m}`,
  ),
  ...[
    'CreateStream',
    'DeleteStream',
    'DescribeStream',
    'DescribeStreamSummary',
    'ListStreams',
    'ListShards',
    'AddTagsToStream',
    'RemoveTagsFromStream',
    'ListTagsForStream',
    'IncreaseStreamRetentionPeriod',
    'DecreaseStreamRetentionPeriod',
    'UpdateStreamMode',
    'DescribeLimits',
  ].map((m) => `/rheos.v1.ControlPlaneService/${m}`),
  '/rheos.v1.DataPlaneService/Nope',
  '/nope.Nope/PutRecords',
];

const rawPayloadArb: fc.Arbitrary<RawPayload> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant('random' as const),
      length: fc.oneof(
        { weight: 10, arbitrary: fc.integer({ min: 1, max: 300 }) },
        {
          weight: 1,
          arbitrary: fc.integer({ min: 301, max: 100_000 }),
        },
      ),
      seed: fc.nat(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'empty' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('truncatedPut' as const),
      keep: fc.nat(),
      seed: fc.nat(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'badUtf8' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'hugeLength' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'wrongWireType' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'hugeTimestamp' as const }) },
);

/** Optional uint32 parameters: mostly absent or ordinary, sometimes at or past a boundary. */
const uint32Arb = fc.oneof(
  { weight: 5, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 200 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(0, 1, 2, 100, 101, 1000, 1001, 10_000, 10_001, 2 ** 31, 2 ** 32 - 1),
  },
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 220,
    arbitrary: fc.record({
      op: fc.constant('putRecord' as const),
      ref: anyStreamRef,
      record: recordArb,
      sequenceNumberForOrdering: fc.oneof(
        { weight: 20, arbitrary: fc.constant(undefined) },
        { weight: 3, arbitrary: seqLiteralArb },
      ),
    }),
  },
  {
    weight: 180,
    arbitrary: fc.record({
      op: fc.constant('putRecords' as const),
      ref: anyStreamRef,
      records: fc.array(batchRecordArb, { minLength: 1, maxLength: 10 }),
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({
      op: fc.constant('putRecords' as const),
      ref: anyStreamRef,
      records: fc.oneof(
        fc.constant([]),
        fc.array(plainRecordArb, { minLength: 500, maxLength: 500 }),
        fc.array(plainRecordArb, { minLength: 501, maxLength: 501 }),
        fc
          .tuple(fc.array(plainRecordArb, { minLength: 499, maxLength: 499 }), recordArb)
          .map(([a, b]) => [...a, b]),
      ),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('putRecord' as const),
      ref: anyStreamRef,
      record: bigRecordArb,
      sequenceNumberForOrdering: fc.constant(undefined),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('putRecords' as const),
      ref: anyStreamRef,
      records: fc.oneof(
        fc.array(bigRecordArb, { minLength: 1, maxLength: 3 }),
        // Exactly 5 MiB of data and keys, and just above it.
        fc.constantFrom(5, 6).map((n) =>
          Array.from({ length: n }, (_, i) => ({
            partitionKey: `big-${i}`,
            dataLength: (n === 5 ? MiB : 900 * 1024) - Buffer.byteLength(`big-${i}`),
            dataSeed: i + 1,
            explicitHashKey: undefined,
          })),
        ),
      ),
    }),
  },
  {
    weight: 160,
    arbitrary: fc
      .record({
        op: fc.constant('getShardIterator' as const),
        ref: anyStreamRef,
        shard: shardSpecArb,
        type: iteratorTypeArb,
        seq: seqArb,
        timestamp: timestampArb,
        consistent: fc.oneof(
          { weight: 4, arbitrary: fc.constant(true) },
          { weight: 1, arbitrary: fc.constant(false) },
        ),
        verifyLimit: fc.integer({ min: 1, max: 5 }),
      })
      .map(({ consistent, ...op }) => {
        // Mostly the arguments the iterator type takes (otherwise whatever was drawn).
        if (!consistent) return op;
        const bySeq =
          op.type === ShardIteratorType.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER ||
          op.type === ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER;
        const byTime = op.type === ShardIteratorType.SHARD_ITERATOR_TYPE_AT_TIMESTAMP;
        const seq: SeqSpec = !bySeq
          ? { kind: 'none' }
          : op.seq.kind === 'none'
            ? { kind: 'acked', from: 'same', pick: op.verifyLimit * 7919 }
            : op.seq;
        const timestamp: TimestampSpec = !byTime
          ? { kind: 'none' }
          : op.timestamp.kind === 'none'
            ? { kind: 'arrival', pick: op.verifyLimit * 104_729, delta: 0 }
            : op.timestamp;
        return { ...op, seq, timestamp };
      }),
  },
  {
    weight: 200,
    arbitrary: fc.record({
      op: fc.constant('getRecords' as const),
      iterator: iteratorSpecArb,
      limit: limitArb,
      arn: arnSpecArb,
    }),
  },
  {
    weight: 15,
    arbitrary: fc.record({
      op: fc.constant('createStream' as const),
      name: fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...THROWAWAY) },
        { weight: 2, arbitrary: fc.constantFrom(...MODEL_NAMES) },
        { weight: 2, arbitrary: fc.constantFrom(...invalidNames) },
      ),
      shardCount: fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }) },
        {
          weight: 3,
          arbitrary: fc.constantFrom(undefined, 0, 10_001, 1_000_000, 1_000_001, 2 ** 32 - 1),
        },
      ),
      mode: fc.oneof(
        { weight: 6, arbitrary: fc.constant(StreamMode.STREAM_MODE_PROVISIONED) },
        { weight: 1, arbitrary: fc.constantFrom(...Object.values(StreamMode)) },
      ),
      tags: fc.oneof(
        { weight: 3, arbitrary: fc.constant({}) },
        { weight: 1, arbitrary: tagMapArb },
      ),
      replicationFactor: fc.constantFrom(
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
        0,
        1,
        2,
      ),
      limited: fc.boolean(),
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({
      op: fc.constant('deleteStream' as const),
      ref: streamRefArb({ forDelete: true }),
      enforce: fc.boolean(),
    }),
  },
  {
    weight: 20,
    arbitrary: fc.record({
      op: fc.constant('describeStream' as const),
      ref: anyStreamRef,
      limit: uint32Arb,
      exclusiveStartShardId: fc.constantFrom(
        '',
        '',
        'shardId-000000000000',
        'shardId-000000000001',
        'x y',
        'a'.repeat(129),
      ),
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({ op: fc.constant('describeStreamSummary' as const), ref: anyStreamRef }),
  },
  {
    weight: 15,
    arbitrary: fc.record({
      op: fc.constant('listStreams' as const),
      limit: uint32Arb,
      exclusiveStartStreamName: fc.oneof(
        { weight: 5, arbitrary: fc.constant('') },
        { weight: 1, arbitrary: fc.constantFrom(...MODEL_NAMES, ...invalidNames, 'hostile-') },
      ),
      token: tokenSpecArb('ListStreams'),
    }),
  },
  {
    weight: 30,
    arbitrary: fc.record({
      op: fc.constant('listShards' as const),
      ref: fc.oneof(
        { weight: 1, arbitrary: fc.constant(undefined) },
        { weight: 3, arbitrary: anyStreamRef },
      ),
      token: tokenSpecArb('ListShards'),
      exclusiveStartShardId: fc.constantFrom(
        '',
        '',
        '',
        '',
        '',
        '',
        'shardId-000000000000',
        'bad id',
        'z',
      ),
      maxResults: uint32Arb,
      creationTimestamp: fc.oneof(
        { weight: 8, arbitrary: fc.constant('none' as const) },
        { weight: 2, arbitrary: fc.constant('real' as const) },
        {
          weight: 2,
          arbitrary: fc.oneof(
            fc.constantFrom(0, -1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 62),
          ),
        },
      ),
      filter: fc.oneof(
        { weight: 3, arbitrary: fc.constant(undefined) },
        {
          weight: 2,
          arbitrary: fc.record({
            type: fc.constantFrom(...Object.values(ShardFilterType)),
            shardId: fc.constantFrom('', 'shardId-000000000000', 'junk id'),
            timestampMs: fc.oneof(
              fc.constant(undefined),
              fc.constantFrom(0, -1, Date.now(), Number.MAX_SAFE_INTEGER, -(2 ** 60)),
            ),
          }),
        },
      ),
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({
      op: fc.constant('addTags' as const),
      ref: anyStreamRef,
      tags: tagMapArb,
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('removeTags' as const),
      ref: anyStreamRef,
      keys: fc.oneof(
        fc.array(fc.string({ maxLength: 10 }), { maxLength: 5 }),
        fc.constantFrom(
          [],
          ['k'.repeat(129)],
          Array.from({ length: 51 }, (_, i) => `t${i}`),
          ['', 'aws:x'],
        ),
      ),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('listTags' as const),
      ref: anyStreamRef,
      limit: uint32Arb,
      exclusiveStartTagKey: fc.constantFrom('', '', 'k', 'k'.repeat(129), '\uffff'),
    }),
  },
  {
    weight: 12,
    arbitrary: fc.record({
      op: fc.constant('retention' as const),
      ref: anyStreamRef,
      direction: fc.constantFrom('increase' as const, 'decrease' as const),
      hours: fc.constantFrom(0, 1, 23, 24, 25, 48, 168, 8760, 8761, 2 ** 31, 2 ** 32 - 1),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('updateStreamMode' as const),
      ref: anyStreamRef,
      mode: fc.constantFrom(...Object.values(StreamMode)),
    }),
  },
  { weight: 4, arbitrary: fc.constant({ op: 'describeLimits' as const }) },
  {
    weight: 25,
    arbitrary: fc.record({
      op: fc.constant('raw' as const),
      path: fc.constantFrom(...rawPaths),
      payload: rawPayloadArb,
    }),
  },
);

// ---------------------------------------------------------------------------------------------
// The model

interface ModelRecord {
  readonly sequenceNumber: string;
  readonly partitionKey: string;
  readonly data: Buffer;
  /** Learnt from the first read-back. */
  arrivalMs?: number;
}

interface ShardModel {
  readonly stream: ModelStreamKey;
  readonly shardId: string;
  readonly hashStart: bigint;
  readonly hashEnd: bigint;
  readonly startingSequenceNumber: string;
  readonly records: ModelRecord[];
  /** The read cursor: an iterator positioned at `records[cursorPos]`. */
  cursor: string;
  cursorPos: number;
}

interface PooledIterator {
  readonly iterator: string;
  /** Set for iterators of model shards: where in the shard's model the iterator points. */
  readonly shard?: ShardModel;
  readonly pos?: number;
}

/** Deterministic pseudo-random bytes (xorshift32), so a seed replays the same data. */
function bytesFor(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = (seed >>> 0) ^ 0x9e3779b9 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** What the server can receive for a JS string: protobuf strings are UTF-8, lone surrogates become U+FFFD. */
function wireString(value: string): string {
  return Buffer.from(value, 'utf8').toString('utf8');
}

function md5HashKey(partitionKey: string): bigint {
  return BigInt('0x' + createHash('md5').update(Buffer.from(partitionKey, 'utf8')).digest('hex'));
}

const EXPLICIT_HASH_KEY = /^(0|[1-9]\d{0,38})$/;
const SEQUENCE_NUMBER = /^(0|[1-9]\d{0,128})$/;

/** Why a record entry must fail (API model of Kinesis PutRecord/PutRecords). */
function recordReasons(record: RecordSpec): Reason[] {
  const reasons: Reason[] = [];
  const key = wireString(record.partitionKey);
  const chars = [...key].length;
  if (chars < 1 || chars > 256) reasons.push(fieldInvalid(`partition key of ${chars} code points`));
  if (record.dataLength > MiB) reasons.push(fieldInvalid('data above 1 MiB'));
  else if (record.dataLength + Buffer.byteLength(key, 'utf8') > MiB) {
    reasons.push(invalidArgument('data + partition key above 1 MiB'));
  }
  const ehk = record.explicitHashKey;
  if (ehk !== undefined) {
    if (!EXPLICIT_HASH_KEY.test(ehk)) reasons.push(fieldInvalid('explicit hash key pattern'));
    else if (BigInt(ehk) > MAX_HASH_KEY)
      reasons.push(invalidArgument('explicit hash key > 2^128-1'));
  }
  return reasons;
}

function recordSize(record: RecordSpec): number {
  return record.dataLength + Buffer.byteLength(wireString(record.partitionKey), 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Outcomes

type Outcome<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

async function attempt<T>(call: Promise<T>): Promise<Outcome<T>> {
  return call.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

class PropertyFailure extends Error {}

/** The name of the last error checkOutcome saw (for the statistics). */
let lastErrorName = '';

function describeError(error: unknown): string {
  if (error instanceof RheosError) {
    const cause = error.cause as Partial<ServiceError> | undefined;
    const code = cause?.code === undefined ? '' : ` (gRPC status ${GrpcStatus[cause.code]})`;
    return `${error.name}${code}: ${error.message}`;
  }
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Checks the outcome of one request against its expectation and the rules that hold for every
 * request. Returns the value on success, undefined on an allowed failure.
 */
function checkOutcome<T>(
  outcome: Outcome<T>,
  v: Verdict,
  options: { write?: boolean } = {},
): T | undefined {
  if (outcome.ok) {
    if (v.success === 'mustNot') {
      throw new PropertyFailure(
        `the request succeeded, but it must fail with one of [${[...(v.allowed ?? [])].join(', ')}]` +
          `; response: ${preview(outcome.value)}`,
      );
    }
    return outcome.value;
  }
  const error = outcome.error;
  lastErrorName = error instanceof RheosError ? error.name : 'non-Rheos error';
  if (!(error instanceof RheosError)) {
    throw new PropertyFailure(`failed with a non-Rheos error: ${describeError(error)}`);
  }
  if (!isKinesisErrorName(error.name)) {
    throw new PropertyFailure(`error name ${error.name} is not a Kinesis error name`);
  }
  const cause = error.cause as Partial<ServiceError> | undefined;
  if (cause?.code === GrpcStatus.DEADLINE_EXCEEDED) {
    throw new PropertyFailure(
      `no answer within ${CALL_DEADLINE_MS} ms (hang): ${describeError(error)}`,
    );
  }
  if (error.name === 'InternalFailureException') {
    throw new PropertyFailure(`InternalFailureException: ${describeError(error)}`);
  }
  if (error.name === 'ServiceUnavailableException' && error.indeterminate) {
    throw new PropertyFailure(`transport failure (server gone?): ${describeError(error)}`);
  }
  if (options.write && error.indeterminate) {
    throw new PropertyFailure(
      `a write failed indeterminately with quotas off: ${describeError(error)}`,
    );
  }
  if (v.success === 'must') {
    throw new PropertyFailure(`a valid request failed: ${describeError(error)}`);
  }
  if (v.allowed !== null && !v.allowed.has(error.name)) {
    throw new PropertyFailure(
      `failed with ${error.name}, expected one of [${[...v.allowed].join(', ')}]: ${error.message}`,
    );
  }
  return undefined;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (v !== null && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') {
      return `<${((v as { data: unknown[] }).data ?? []).length} bytes>`;
    }
    if (typeof v === 'string' && v.length > 200) return `${v.slice(0, 200)}...(${v.length} chars)`;
    return v;
  });
  return text === undefined
    ? String(value)
    : text.length > 2000
      ? `${text.slice(0, 2000)}...`
      : text;
}

/** Record-by-record comparison of what a shard returned with what the model says it holds. */
function compareRecords(
  actual: readonly StreamRecord[],
  expected: readonly ModelRecord[],
  where: string,
  /** Everything the shard holds, when `expected` is a slice of it (for the messages). */
  all: readonly ModelRecord[] = expected,
): void {
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    const a = actual[i] as StreamRecord;
    const e = expected[i] as ModelRecord;
    if (a.sequenceNumber !== e.sequenceNumber) {
      throw new PropertyFailure(
        `${where}: record ${i} has sequence number ${a.sequenceNumber}, expected ${e.sequenceNumber}` +
          (expected.some((r) => r.sequenceNumber === a.sequenceNumber)
            ? ' (out of order)'
            : all.some((r) => r.sequenceNumber === a.sequenceNumber)
              ? ' (an acknowledged record, but not the one at this position)'
              : ' (never acknowledged)'),
      );
    }
    if (a.partitionKey !== e.partitionKey) {
      throw new PropertyFailure(
        `${where}: record ${a.sequenceNumber} has partition key ${JSON.stringify(a.partitionKey)}, ` +
          `acknowledged with ${JSON.stringify(e.partitionKey)}`,
      );
    }
    if (!Buffer.from(a.data).equals(e.data)) {
      throw new PropertyFailure(
        `${where}: record ${a.sequenceNumber} data differs (${a.data.length} bytes read, ` +
          `${e.data.length} acknowledged)`,
      );
    }
  }
  if (actual.length > expected.length) {
    const extra = actual[expected.length] as StreamRecord;
    throw new PropertyFailure(
      `${where}: ${actual.length - expected.length} record(s) that were never acknowledged, ` +
        `first ${extra.sequenceNumber} (key ${JSON.stringify(extra.partitionKey)}, ${extra.data.length} bytes)`,
    );
  }
  if (actual.length < expected.length) {
    const missing = expected[actual.length] as ModelRecord;
    throw new PropertyFailure(
      `${where}: ${expected.length - actual.length} acknowledged record(s) missing, first ` +
        `${missing.sequenceNumber}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// The harness

class Harness {
  readonly shards = new Map<ModelStreamKey, ShardModel[]>();
  readonly iterators: PooledIterator[] = [];
  readonly listShardsTokens: string[] = [];
  readonly listStreamsTokens: string[] = [];
  private tokensAt = 0;
  readonly streamInfo = new Map<ModelStreamKey, { createdMs: number }>();
  /** Calls made, hostile and verification, for the rate figure. */
  calls = 0;
  readonly stats = new Map<string, number>();

  constructor(
    readonly client: RheosClient,
    readonly raw: Client,
  ) {}

  readonly timing = new Map<string, { n: number; ms: number }>();

  time(key: string, ms: number): void {
    const t = this.timing.get(key) ?? { n: 0, ms: 0 };
    t.n++;
    t.ms += ms;
    this.timing.set(key, t);
  }

  count(key: string): void {
    this.stats.set(key, (this.stats.get(key) ?? 0) + 1);
  }

  async setUp(): Promise<void> {
    for (const key of MODEL_KEYS) {
      const name = MODEL_STREAMS[key];
      await this.client.createStream({ streamName: name, shardCount: key === 'one' ? 1 : 3 });
      await this.client.waitForStreamActive(name, 30_000, 5);
      const { shards, nextToken } = await this.client.listShards({ streamName: name });
      expect(nextToken).toBe('');
      expect(shards).toHaveLength(key === 'one' ? 1 : 3);
      const models: ShardModel[] = [];
      let next = 0n;
      for (const shard of shards) {
        const hashStart = BigInt(shard.hashKeyRange!.startingHashKey);
        const hashEnd = BigInt(shard.hashKeyRange!.endingHashKey);
        expect(hashStart).toBe(next);
        next = hashEnd + 1n;
        const { shardIterator } = await this.client.getShardIterator({
          streamName: name,
          shardId: shard.shardId,
          shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
        });
        models.push({
          stream: key,
          shardId: shard.shardId,
          hashStart,
          hashEnd,
          startingSequenceNumber: shard.sequenceNumberRange!.startingSequenceNumber,
          records: [],
          cursor: shardIterator,
          cursorPos: 0,
        });
      }
      expect(next - 1n).toBe(MAX_HASH_KEY);
      this.shards.set(key, models);
      const summary = await this.client.describeStreamSummary({ streamName: name });
      this.streamInfo.set(key, {
        createdMs: summary.streamDescriptionSummary!.streamCreationTimestampMs,
      });
    }
    await this.freshTokens();
    expect(this.listShardsTokens[0]).not.toBe('');
    expect(this.listStreamsTokens[0]).not.toBe('');
  }

  allShards(): ShardModel[] {
    return MODEL_KEYS.flatMap((k) => this.shards.get(k) ?? []);
  }

  modelShards(stream: ModelStreamKey): ShardModel[] {
    return this.shards.get(stream) as ShardModel[];
  }

  owningShard(stream: ModelStreamKey, hashKey: bigint): ShardModel {
    const owner = this.modelShards(stream).find(
      (s) => s.hashStart <= hashKey && hashKey <= s.hashEnd,
    );
    if (owner === undefined) throw new Error(`no shard owns ${hashKey}`);
    return owner;
  }

  pushIterator(entry: PooledIterator): void {
    this.iterators.push(entry);
    if (this.iterators.length > 64) this.iterators.shift();
  }

  async call<T>(promise: Promise<T>): Promise<Outcome<T>> {
    this.calls++;
    return attempt(promise);
  }

  /** (1) The server still answers. */
  async checkAlive(): Promise<void> {
    const alive = await this.call(this.client.describeLimits());
    if (!alive.ok) {
      throw new PropertyFailure(
        `the server no longer answers DescribeLimits: ${describeError(alive.error)}`,
      );
    }
    if (alive.value.openShardCount < 4) {
      throw new PropertyFailure(
        `DescribeLimits counts ${alive.value.openShardCount} open shards, the model streams alone have 4`,
      );
    }
  }

  /**
   * (3) Reads every model shard forward from its cursor to the end: what appears must be exactly
   * the records acknowledged since the last read, in sequence-number order, byte-identical.
   */
  async readForward(): Promise<void> {
    for (const shard of this.allShards()) {
      const expected = shard.records.slice(shard.cursorPos);
      const { records, next } = await this.readToEnd(
        shard.cursor,
        `${shard.stream}/${shard.shardId} cursor`,
      );
      compareRecords(
        records,
        expected,
        `read-back of ${MODEL_STREAMS[shard.stream]}/${shard.shardId}`,
      );
      this.learnArrivals(shard, shard.cursorPos, records);
      shard.cursor = next;
      shard.cursorPos = shard.records.length;
    }
  }

  learnArrivals(shard: ShardModel, from: number, records: readonly StreamRecord[]): void {
    records.forEach((r, i) => {
      const m = shard.records[from + i] as ModelRecord;
      if (m.arrivalMs === undefined) m.arrivalMs = r.approximateArrivalTimestampMs;
      else if (m.arrivalMs !== r.approximateArrivalTimestampMs) {
        throw new PropertyFailure(
          `record ${m.sequenceNumber} arrival time changed from ${m.arrivalMs} to ${r.approximateArrivalTimestampMs}`,
        );
      }
      const previous = shard.records[from + i - 1];
      if (previous?.arrivalMs !== undefined && previous.arrivalMs > m.arrivalMs) {
        throw new PropertyFailure(
          `arrival times go backwards in ${shard.shardId}: ${previous.sequenceNumber} at ${previous.arrivalMs}, ` +
            `${m.sequenceNumber} at ${m.arrivalMs}`,
        );
      }
    });
  }

  async readToEnd(
    iterator: string,
    where: string,
  ): Promise<{ records: StreamRecord[]; next: string }> {
    const records: StreamRecord[] = [];
    let next = iterator;
    for (;;) {
      const got = await this.call(this.client.getRecords({ shardIterator: next }));
      if (!got.ok)
        throw new PropertyFailure(`${where}: GetRecords failed: ${describeError(got.error)}`);
      if (got.value.nextShardIterator === '') {
        throw new PropertyFailure(`${where}: an open shard returned no next iterator`);
      }
      next = got.value.nextShardIterator;
      if (got.value.records.length === 0) return { records, next };
      records.push(...got.value.records);
    }
  }

  /** Checks a GetRecords answer for an iterator whose model position is known. */
  checkRead(
    shard: ShardModel,
    pos: number,
    limit: number | undefined,
    response: GetRecordsResponse,
    where: string,
  ): void {
    const n = response.records.length;
    const remaining = Math.max(0, shard.records.length - pos);
    const cap = Math.min(limit ?? 10_000, 10_000);
    if (n > cap) throw new PropertyFailure(`${where}: ${n} records returned for a limit of ${cap}`);
    compareRecords(response.records, shard.records.slice(pos, pos + n), where, shard.records);
    if (n < Math.min(cap, remaining)) {
      const bytes = (rs: readonly { data: Buffer; partitionKey: string }[]) =>
        rs.reduce((sum, r) => sum + r.data.length + Buffer.byteLength(r.partitionKey, 'utf8'), 0);
      const next = shard.records[pos + n] as ModelRecord;
      if (n === 0 || bytes(response.records) + bytes([next]) <= 10 * MiB) {
        throw new PropertyFailure(
          `${where}: returned ${n} of ${Math.min(cap, remaining)} available records without reaching the 10 MiB cap`,
        );
      }
    }
    if (response.nextShardIterator === '') {
      throw new PropertyFailure(`${where}: an open shard returned no next iterator`);
    }
    if (response.millisBehindLatest < 0 || (n === remaining && response.millisBehindLatest !== 0)) {
      throw new PropertyFailure(
        `${where}: millisBehindLatest ${response.millisBehindLatest} with ${remaining - n} records left`,
      );
    }
    this.pushIterator({ iterator: response.nextShardIterator, shard, pos: pos + n });
  }

  // -------------------------------------------------------------------------------------------
  // Operations

  async run(op: Op): Promise<void> {
    switch (op.op) {
      case 'putRecord':
        return this.putRecord(op);
      case 'putRecords':
        return this.putRecords(op);
      case 'getShardIterator':
        return this.getShardIterator(op);
      case 'getRecords':
        return this.getRecords(op);
      case 'raw':
        return this.rawCall(op);
      default:
        return this.control(op);
    }
  }

  private acknowledge(
    stream: ModelStreamKey,
    record: RecordSpec,
    ack: { shardId: string; sequenceNumber: string },
    data: Buffer,
  ): void {
    const key = wireString(record.partitionKey);
    const hashKey =
      record.explicitHashKey !== undefined ? BigInt(record.explicitHashKey) : md5HashKey(key);
    const owner = this.owningShard(stream, hashKey);
    if (ack.shardId !== owner.shardId) {
      throw new PropertyFailure(
        `record with hash key ${hashKey} acknowledged by ${ack.shardId}, but ${owner.shardId} owns it`,
      );
    }
    if (!/^\d{1,128}$/.test(ack.sequenceNumber)) {
      throw new PropertyFailure(
        `acknowledged with a malformed sequence number ${JSON.stringify(ack.sequenceNumber)}`,
      );
    }
    const last = owner.records[owner.records.length - 1];
    if (last !== undefined && BigInt(last.sequenceNumber) >= BigInt(ack.sequenceNumber)) {
      throw new PropertyFailure(
        `sequence number ${ack.sequenceNumber} acknowledged after ${last.sequenceNumber} in ${owner.shardId}`,
      );
    }
    owner.records.push({ sequenceNumber: ack.sequenceNumber, partitionKey: key, data });
  }

  private async putRecord(op: Extract<Op, { op: 'putRecord' }>): Promise<void> {
    const reasons = [...op.ref.reasons, ...recordReasons(op.record)];
    const s = op.sequenceNumberForOrdering;
    if (s !== undefined && s !== '' && !SEQUENCE_NUMBER.test(s)) {
      reasons.push(fieldInvalid('sequenceNumberForOrdering pattern'));
    }
    const data = bytesFor(op.record.dataLength, op.record.dataSeed);
    const outcome = await this.call(
      this.client.putRecord({
        streamName: op.ref.streamName,
        streamArn: op.ref.streamArn,
        partitionKey: op.record.partitionKey,
        data,
        explicitHashKey: op.record.explicitHashKey,
        sequenceNumberForOrdering: s,
      }),
    );
    const maybe = s === '' ? [fieldInvalid('empty sequenceNumberForOrdering')] : [];
    const ack = checkOutcome(outcome, verdict({ reasons, maybe, target: op.ref.target }), {
      write: true,
    });
    this.count(`putRecord ${ack ? 'ok' : lastErrorName}`);
    if (ack !== undefined && op.ref.target.kind === 'model') {
      this.acknowledge(op.ref.target.stream, op.record, ack, data);
    }
    await this.readForward();
  }

  private async putRecords(op: Extract<Op, { op: 'putRecords' }>): Promise<void> {
    const reasons = [...op.ref.reasons];
    const count = op.records.length;
    if (count < 1 || count > 500) reasons.push(fieldInvalid(`${count} records`));
    else {
      for (const r of op.records) reasons.push(...recordReasons(r));
      if (op.records.reduce((sum, r) => sum + recordSize(r), 0) > 5 * MiB) {
        reasons.push(invalidArgument('request above 5 MiB'));
      }
    }
    const data = op.records.map((r) => bytesFor(r.dataLength, r.dataSeed));
    const outcome = await this.call(
      this.client.putRecords({
        streamName: op.ref.streamName,
        streamArn: op.ref.streamArn,
        records: op.records.map((r, i) => ({
          partitionKey: r.partitionKey,
          data: data[i],
          explicitHashKey: r.explicitHashKey,
        })),
      }),
    );
    const response = checkOutcome(outcome, verdict({ reasons, maybe: [], target: op.ref.target }), {
      write: true,
    });
    this.count(`putRecords ${response ? 'ok' : lastErrorName}`);
    if (response !== undefined) {
      if (response.records.length !== count) {
        throw new PropertyFailure(`${response.records.length} results for ${count} records`);
      }
      const failed = response.records.filter((r) => r.errorCode !== '');
      if (failed.length !== response.failedRecordCount) {
        throw new PropertyFailure(
          `failedRecordCount ${response.failedRecordCount} but ${failed.length} entries carry an error`,
        );
      }
      for (const f of failed) {
        if (f.sequenceNumber !== '' || f.shardId !== '') {
          throw new PropertyFailure(`a failed entry carries a sequence number: ${preview(f)}`);
        }
      }
      if (
        failed.length > 0 &&
        (op.ref.target.kind === 'model' || failed.some((f) => f.errorCode === 'InternalFailure'))
      ) {
        throw new PropertyFailure(
          `${failed.length} entries failed with quotas off: ${preview(failed.slice(0, 3))}`,
        );
      }
      if (op.ref.target.kind === 'model') {
        const stream = op.ref.target.stream;
        // Per shard, acknowledgements arrive in request order, which is sequence-number order.
        const acked = response.records.map((ack, i) => ({ ack, i }));
        acked.sort((a, b) => {
          const x = BigInt(a.ack.sequenceNumber);
          const y = BigInt(b.ack.sequenceNumber);
          return x < y ? -1 : x > y ? 1 : 0;
        });
        for (const { ack, i } of acked) {
          this.acknowledge(stream, op.records[i] as RecordSpec, ack, data[i] as Buffer);
        }
      }
    }
    await this.readForward();
  }

  /** The sequence number a spec stands for, and how it relates to the shard named by the request. */
  private resolveSeq(spec: SeqSpec, shard: ShardModel | undefined) {
    switch (spec.kind) {
      case 'none':
        return { value: '', relation: 'none' as const };
      case 'literal':
        return { value: spec.value, relation: 'literal' as const };
      case 'acked': {
        const pool =
          spec.from === 'same'
            ? (shard?.records ?? [])
            : this.allShards()
                .filter((s) => s !== shard)
                .flatMap((s) => s.records);
        const pick = pool[spec.pick % Math.max(1, pool.length)];
        if (pick === undefined) return { value: '', relation: 'none' as const };
        return {
          value: pick.sequenceNumber,
          relation: spec.from === 'same' ? ('same' as const) : ('other' as const),
        };
      }
      case 'start': {
        if (spec.from === 'same') {
          if (shard === undefined) return { value: '', relation: 'none' as const };
          return { value: shard.startingSequenceNumber, relation: 'same' as const };
        }
        const other = this.allShards().find((s) => s !== shard) as ShardModel;
        return { value: other.startingSequenceNumber, relation: 'other' as const };
      }
      case 'tweak': {
        const pool = shard?.records ?? this.allShards().flatMap((s) => s.records);
        const pick = pool[spec.pick % Math.max(1, pool.length)];
        if (pick === undefined) return { value: '', relation: 'none' as const };
        const value = BigInt(pick.sequenceNumber) + BigInt(spec.delta);
        return { value: String(value), relation: 'tweak' as const };
      }
    }
  }

  private resolveTimestamp(spec: TimestampSpec, shard: ShardModel | undefined): number | undefined {
    switch (spec.kind) {
      case 'none':
        return undefined;
      case 'absolute':
        return spec.value;
      case 'now':
        return Date.now() + spec.delta;
      case 'arrival': {
        const pool = shard?.records ?? this.allShards().flatMap((s) => s.records);
        const pick = pool[spec.pick % Math.max(1, pool.length)];
        return (pick?.arrivalMs ?? Date.now()) + spec.delta;
      }
    }
  }

  private async getShardIterator(op: Extract<Op, { op: 'getShardIterator' }>): Promise<void> {
    const target = op.ref.target;
    const shards = target.kind === 'model' ? this.modelShards(target.stream) : undefined;
    let shardId: string;
    let shard: ShardModel | undefined;
    if (op.shard.kind === 'index') {
      const index =
        op.shard.wrap && shards !== undefined ? op.shard.index % shards.length : op.shard.index;
      shard = shards?.[index];
      shardId = shard?.shardId ?? `shardId-${String(index).padStart(12, '0')}`;
    } else {
      shardId = op.shard.value;
      shard = shards?.find((s) => s.shardId === wireString(shardId));
    }
    const seq = this.resolveSeq(op.seq, shard);
    const timestampMs = this.resolveTimestamp(op.timestamp, shard);
    const type = op.type;
    const reasons: Reason[] = [...op.ref.reasons];
    const maybe: Reason[] = [];
    if (timestampMs !== undefined && !Number.isSafeInteger(timestampMs)) {
      reasons.push(undecodable('timestamp beyond 2^53'));
    }
    const wireShard = wireString(shardId);
    if (wireShard === '' || [...wireShard].length > 128 || !/^[a-zA-Z0-9_.-]+$/.test(wireShard)) {
      reasons.push(fieldInvalid('shard id'));
    }
    const validType =
      type !== ShardIteratorType.SHARD_ITERATOR_TYPE_UNSPECIFIED &&
      type !== ShardIteratorType.UNRECOGNIZED;
    if (!validType) reasons.push(fieldInvalid('iterator type'));
    if (seq.value !== '' && !SEQUENCE_NUMBER.test(seq.value))
      reasons.push(fieldInvalid('sequence number pattern'));
    const bySeq =
      type === ShardIteratorType.SHARD_ITERATOR_TYPE_AT_SEQUENCE_NUMBER ||
      type === ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER;
    const byTime = type === ShardIteratorType.SHARD_ITERATOR_TYPE_AT_TIMESTAMP;
    if (validType && bySeq !== (seq.value !== ''))
      reasons.push(invalidArgument('sequence number given or missing'));
    if (validType && byTime !== (timestampMs !== undefined))
      reasons.push(invalidArgument('timestamp given or missing'));
    if (target.kind === 'model' && shard === undefined) reasons.push(notFound('no such shard'));
    if (bySeq && seq.value !== '') {
      if (seq.relation === 'other' || seq.relation === 'literal') {
        // A sequence number of another shard, or one no shard issued.
        (seq.relation === 'other' ? reasons : maybe).push(
          invalidArgument('foreign sequence number'),
        );
      } else if (seq.relation === 'tweak') {
        maybe.push(invalidArgument('sequence number no record has'));
      }
    }
    if (byTime && timestampMs !== undefined && timestampMs < 0) {
      maybe.push(invalidArgument('negative timestamp'), fieldInvalid('negative timestamp'));
    }
    const outcome = await this.call(
      this.client.getShardIterator({
        streamName: op.ref.streamName,
        streamArn: op.ref.streamArn,
        shardId,
        shardIteratorType: type,
        startingSequenceNumber: seq.value,
        timestampMs,
      }),
    );
    const response = checkOutcome(outcome, verdict({ reasons, maybe, target }));
    this.count(`getShardIterator ${response ? 'ok' : lastErrorName}`);
    if (response === undefined) return;
    if (response.shardIterator === '') throw new PropertyFailure('empty shard iterator');
    if (shard === undefined) {
      this.pushIterator({ iterator: response.shardIterator });
      return;
    }
    // Where the iterator must point, from the model.
    const records = shard.records;
    let pos: number;
    switch (type) {
      case ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON:
        pos = 0;
        break;
      case ShardIteratorType.SHARD_ITERATOR_TYPE_LATEST:
        pos = records.length;
        break;
      case ShardIteratorType.SHARD_ITERATOR_TYPE_AT_TIMESTAMP: {
        const t = Math.max(0, timestampMs as number);
        pos = records.findIndex((r) => (r.arrivalMs as number) >= t);
        if (pos < 0) pos = records.length;
        break;
      }
      default: {
        const s = BigInt(seq.value);
        const after = type === ShardIteratorType.SHARD_ITERATOR_TYPE_AFTER_SEQUENCE_NUMBER;
        pos = records.findIndex((r) =>
          after ? BigInt(r.sequenceNumber) > s : BigInt(r.sequenceNumber) >= s,
        );
        if (pos < 0) pos = records.length;
      }
    }
    this.pushIterator({ iterator: response.shardIterator, shard, pos });
    const read = await this.call(
      this.client.getRecords({ shardIterator: response.shardIterator, limit: op.verifyLimit }),
    );
    if (!read.ok) {
      throw new PropertyFailure(
        `GetRecords on a fresh iterator failed: ${describeError(read.error)}`,
      );
    }
    this.checkRead(
      shard,
      pos,
      op.verifyLimit,
      read.value,
      `${type} iterator of ${MODEL_STREAMS[shard.stream]}/${shard.shardId} (seq ${seq.value || '-'}, ts ${timestampMs ?? '-'})`,
    );
  }

  private async getRecords(op: Extract<Op, { op: 'getRecords' }>): Promise<void> {
    const reasons: Reason[] = [];
    const maybe: Reason[] = [];
    let iterator: string;
    let pooled: PooledIterator | undefined;
    switch (op.iterator.kind) {
      case 'pool':
        pooled = this.iterators[op.iterator.pick % Math.max(1, this.iterators.length)];
        iterator = pooled?.iterator ?? '';
        break;
      case 'mutated': {
        const base =
          this.iterators[op.iterator.pick % Math.max(1, this.iterators.length)]?.iterator ?? 'AAAA';
        iterator = mutate(base, op.iterator.mutation);
        if (iterator !== base) {
          reasons.push(invalidArgument('corrupted iterator'));
          maybe.push({ name: 'ExpiredIteratorException', why: 'corrupted key id' });
        } else pooled = this.iterators.find((p) => p.iterator === base);
        break;
      }
      case 'literal':
        iterator = op.iterator.value;
        reasons.push(invalidArgument('iterator the server never issued'));
        maybe.push({ name: 'ExpiredIteratorException', why: 'random key id' });
        break;
    }
    if (iterator === '' || [...wireString(iterator)].length > 512)
      reasons.push(fieldInvalid('iterator length'));
    if (op.limit !== undefined && (op.limit < 1 || op.limit > 10_000))
      reasons.push(fieldInvalid('limit'));
    let streamArn = '';
    const shard = pooled?.shard;
    switch (op.arn.kind) {
      case 'none':
        break;
      case 'same':
        if (shard !== undefined) streamArn = arnOf(MODEL_STREAMS[shard.stream]);
        break;
      case 'otherModel':
        if (shard !== undefined) {
          streamArn = arnOf(MODEL_STREAMS[shard.stream === 'one' ? 'three' : 'one']);
          reasons.push(invalidArgument('ARN of another stream'));
        }
        break;
      case 'literal':
        streamArn = op.arn.value;
        if (op.arn.reason !== undefined) (pooled?.shard ? reasons : maybe).push(op.arn.reason);
        break;
    }
    const target: Target =
      shard !== undefined ? { kind: 'model', stream: shard.stream } : { kind: 'other' };
    const outcome = await this.call(
      this.client.getRecords({ shardIterator: iterator, limit: op.limit, streamArn }),
    );
    const response = checkOutcome(outcome, verdict({ reasons, maybe, target }));
    this.count(`getRecords ${response ? 'ok' : lastErrorName}`);
    if (response === undefined) return;
    if (shard !== undefined && pooled?.pos !== undefined) {
      this.checkRead(
        shard,
        pooled.pos,
        op.limit,
        response,
        `GetRecords on a pooled iterator of ${MODEL_STREAMS[shard.stream]}/${shard.shardId}`,
      );
    } else if (response.nextShardIterator !== '') {
      this.pushIterator({ iterator: response.nextShardIterator });
    }
  }

  /** Pagination tokens live 5 minutes: the pools are refreshed every minute. */
  private async freshTokens(): Promise<void> {
    if (Date.now() - this.tokensAt < 60_000) return;
    this.tokensAt = Date.now();
    this.listShardsTokens.length = 0;
    this.listStreamsTokens.length = 0;
    this.calls += 2;
    const page = await this.client.listShards({ streamName: MODEL_STREAMS.three, maxResults: 1 });
    this.listShardsTokens.push(page.nextToken);
    const streams = await this.client.listStreams({ limit: 1 });
    this.listStreamsTokens.push(streams.nextToken);
  }

  private resolveToken(spec: TokenSpec, pool: readonly string[]): { token: string; real: boolean } {
    switch (spec.kind) {
      case 'none':
        return { token: '', real: false };
      case 'real':
        return { token: pool[spec.pick % pool.length] as string, real: true };
      case 'mutated': {
        const base = pool[spec.pick % pool.length] as string;
        return { token: mutate(base, spec.mutation), real: false };
      }
      case 'literal':
        return { token: spec.value, real: false };
      case 'forged': {
        let envelope: Record<string, unknown> = {};
        try {
          envelope = JSON.parse(
            Buffer.from(pool[0] as string, 'base64url').toString('utf8'),
          ) as Record<string, unknown>;
        } catch {
          // Not JSON after all: forge from nothing.
        }
        const realBody = (envelope.body ?? {}) as Record<string, unknown>;
        const patch = { ...spec.patch };
        if (patch.issuedMs === 'now') patch.issuedMs = Date.now();
        if (patch.issuedMs === 'past') patch.issuedMs = Date.now() - 3_600_000;
        if (patch.issuedMs === 'future') patch.issuedMs = Date.now() + 3_600_000_000;
        if (patch.body !== null && typeof patch.body === 'object' && !Array.isArray(patch.body)) {
          const body = { ...realBody, ...(patch.body as Record<string, unknown>) };
          const inc = Number(realBody.incarnation ?? 1);
          if (body.incarnation === 'real') body.incarnation = inc;
          if (body.incarnation === 'real+1') body.incarnation = inc + 1;
          if (body.incarnation === 'real-1') body.incarnation = inc - 1;
          patch.body = body;
        }
        return {
          token: Buffer.from(JSON.stringify({ ...envelope, ...patch }), 'utf8').toString(
            'base64url',
          ),
          real: false,
        };
      }
    }
  }

  private async control(
    op: Exclude<Op, { op: 'putRecord' | 'putRecords' | 'getShardIterator' | 'getRecords' | 'raw' }>,
  ): Promise<void> {
    const c = this.client;
    switch (op.op) {
      case 'createStream': {
        // CreateStream takes a name only. The generated names are throwaway, model or invalid
        // ones, so at most THROWAWAY.length streams can ever be created.
        const name = op.name;
        const reasons: Reason[] = [];
        const maybe: Reason[] = [];
        const wire = wireString(name);
        const validName = /^[a-zA-Z0-9_.-]+$/.test(wire) && [...wire].length <= 128;
        if (!validName) reasons.push(fieldInvalid('stream name'));
        if (op.shardCount !== undefined && (op.shardCount < 1 || op.shardCount > 1_000_000)) {
          reasons.push(fieldInvalid('shard count'));
        }
        if (op.mode === StreamMode.UNRECOGNIZED) reasons.push(fieldInvalid('stream mode'));
        const onDemand = op.mode === StreamMode.STREAM_MODE_ON_DEMAND;
        if (!onDemand && op.shardCount === undefined)
          reasons.push(invalidArgument('no shard count'));
        if (onDemand && op.shardCount !== undefined)
          reasons.push(invalidArgument('shard count on demand'));
        if (op.replicationFactor !== undefined && op.replicationFactor !== 1) {
          reasons.push(invalidArgument('replication factor'));
        }
        if (op.shardCount !== undefined && op.shardCount > 10_000) {
          reasons.push({ name: 'LimitExceededException', why: 'shard limit' });
        }
        if (Object.keys(op.tags).length > 0)
          maybe.push(fieldInvalid('tags'), invalidArgument('tags'));
        if (MODEL_NAMES.includes(name))
          reasons.push({ name: 'ResourceInUseException', why: 'exists' });
        else maybe.push({ name: 'ResourceInUseException', why: 'may exist' });
        const outcome = await this.call(
          c.createStream({
            streamName: name,
            shardCount: op.shardCount,
            streamMode: op.mode,
            tags: op.tags,
            replicationFactor: op.replicationFactor,
            shardLimits: op.limited
              ? { writeRecordsPerSecond: 1, writeBytesPerSecond: 1000, readCallsPerSecond: 1 }
              : undefined,
          }),
        );
        checkOutcome(outcome, verdict({ reasons, maybe, target: SERVICE }));
        this.count(`createStream ${outcome.ok ? 'ok' : lastErrorName}`);
        if (outcome.ok && !THROWAWAY.includes(name)) {
          throw new PropertyFailure(`created a stream named ${JSON.stringify(name)}`);
        }
        return;
      }
      case 'deleteStream': {
        for (const name of MODEL_NAMES) {
          if (op.ref.streamName === name || op.ref.streamArn.endsWith(`/${name}`)) {
            throw new Error(`generator bug: DeleteStream of model stream ${name}`);
          }
        }
        const outcome = await this.call(
          c.deleteStream({
            streamName: op.ref.streamName,
            streamArn: op.ref.streamArn,
            enforceConsumerDeletion: op.enforce,
          }),
        );
        checkOutcome(
          outcome,
          verdict({ reasons: op.ref.reasons, maybe: [], target: op.ref.target }),
        );
        this.count(`deleteStream ${outcome.ok ? 'ok' : lastErrorName}`);
        return;
      }
      case 'describeStream': {
        const reasons: Reason[] = [...op.ref.reasons];
        if (op.limit !== undefined && (op.limit < 1 || op.limit > 10_000))
          reasons.push(fieldInvalid('limit'));
        if (
          op.exclusiveStartShardId !== '' &&
          !/^[a-zA-Z0-9_.-]{1,128}$/.test(op.exclusiveStartShardId)
        ) {
          reasons.push(fieldInvalid('exclusiveStartShardId'));
        }
        const outcome = await this.call(
          c.describeStream({
            streamName: op.ref.streamName,
            streamArn: op.ref.streamArn,
            limit: op.limit,
            exclusiveStartShardId: op.exclusiveStartShardId,
          }),
        );
        const response = checkOutcome(
          outcome,
          verdict({ reasons, maybe: [], target: op.ref.target }),
        );
        this.count(`describeStream ${response ? 'ok' : lastErrorName}`);
        if (response !== undefined && op.ref.target.kind === 'model') {
          const d = response.streamDescription!;
          const model = this.modelShards(op.ref.target.stream);
          const want = model
            .map((s) => s.shardId)
            .filter((id) => op.exclusiveStartShardId === '' || id > op.exclusiveStartShardId)
            .slice(0, op.limit ?? 100);
          if (
            d.streamName !== MODEL_STREAMS[op.ref.target.stream] ||
            d.streamStatus !== StreamStatus.STREAM_STATUS_ACTIVE
          ) {
            throw new PropertyFailure(
              `DescribeStream answered ${preview({ name: d.streamName, status: d.streamStatus })}`,
            );
          }
          if (JSON.stringify(d.shards.map((s) => s.shardId)) !== JSON.stringify(want)) {
            throw new PropertyFailure(
              `DescribeStream lists shards ${preview(d.shards.map((s) => s.shardId))}, expected ${preview(want)}`,
            );
          }
        }
        return;
      }
      case 'describeStreamSummary': {
        const outcome = await this.call(
          c.describeStreamSummary({ streamName: op.ref.streamName, streamArn: op.ref.streamArn }),
        );
        const response = checkOutcome(
          outcome,
          verdict({ reasons: op.ref.reasons, maybe: [], target: op.ref.target }),
        );
        this.count(`describeStreamSummary ${response ? 'ok' : lastErrorName}`);
        if (response !== undefined && op.ref.target.kind === 'model') {
          const s = response.streamDescriptionSummary!;
          if (s.openShardCount !== this.modelShards(op.ref.target.stream).length) {
            throw new PropertyFailure(
              `DescribeStreamSummary counts ${s.openShardCount} open shards`,
            );
          }
        }
        return;
      }
      case 'listStreams': {
        await this.freshTokens();
        const reasons: Reason[] = [];
        const maybe: Reason[] = [];
        if (op.limit !== undefined && (op.limit < 1 || op.limit > 10_000))
          reasons.push(fieldInvalid('limit'));
        const start = op.exclusiveStartStreamName;
        if (start !== '' && (!/^[a-zA-Z0-9_.-]+$/.test(start) || [...start].length > 128)) {
          reasons.push(fieldInvalid('exclusiveStartStreamName'));
        }
        const { token, real } = this.resolveToken(op.token, this.listStreamsTokens);
        if (token !== '' && !real)
          maybe.push(invalidArgument('bad token'), {
            name: 'ExpiredNextTokenException',
            why: 'old token',
          });
        const outcome = await this.call(
          c.listStreams({ limit: op.limit, exclusiveStartStreamName: start, nextToken: token }),
        );
        const response = checkOutcome(outcome, verdict({ reasons, maybe, target: SERVICE }));
        this.count(`listStreams ${response ? 'ok' : lastErrorName}`);
        if (response !== undefined) {
          if (response.nextToken !== '') this.listStreamsTokens.push(response.nextToken);
          if (token === '' && start === '' && (op.limit ?? 100) >= 100) {
            for (const name of MODEL_NAMES) {
              if (!response.streamNames.includes(name)) {
                throw new PropertyFailure(
                  `ListStreams does not list ${name}: ${preview(response.streamNames)}`,
                );
              }
            }
          }
        }
        return;
      }
      case 'listShards': {
        await this.freshTokens();
        const { token, real } = this.resolveToken(op.token, this.listShardsTokens);
        const ref = op.ref;
        const reasons: Reason[] = [];
        const maybe: Reason[] = [];
        if (op.maxResults !== undefined && (op.maxResults < 1 || op.maxResults > 10_000)) {
          reasons.push(fieldInvalid('maxResults'));
        }
        if (ref !== undefined && ref.streamName !== '')
          reasons.push(...ref.reasons.filter((r) => r.field));
        if (
          op.exclusiveStartShardId !== '' &&
          !/^[a-zA-Z0-9_.-]{1,128}$/.test(op.exclusiveStartShardId)
        ) {
          reasons.push(fieldInvalid('exclusiveStartShardId'));
        }
        if (op.filter?.type === ShardFilterType.UNRECOGNIZED)
          reasons.push(fieldInvalid('filter type'));
        for (const ms of [op.creationTimestamp, op.filter?.timestampMs]) {
          if (typeof ms === 'number' && !Number.isSafeInteger(ms)) {
            reasons.push(undecodable('timestamp beyond 2^53'));
          }
        }
        const named = ref !== undefined && (ref.streamName !== '' || ref.streamArn !== '');
        const creationTimestampMs =
          op.creationTimestamp === 'none'
            ? undefined
            : op.creationTimestamp === 'real'
              ? ref?.target.kind === 'model'
                ? this.streamInfo.get(ref.target.stream)!.createdMs
                : 0
              : op.creationTimestamp;
        let target: Target = { kind: 'unknown' };
        if (token !== '') {
          if (named || op.exclusiveStartShardId !== '' || creationTimestampMs !== undefined) {
            reasons.push(invalidArgument('token and stream parameters together'));
          } else if (real) target = SERVICE;
          else
            maybe.push(
              invalidArgument('bad token'),
              { name: 'ExpiredNextTokenException', why: 'old' },
              notFound('forged token'),
            );
        } else if (!named) {
          reasons.push(invalidArgument('neither token nor stream'));
        } else {
          reasons.push(...ref.reasons);
          if (op.exclusiveStartShardId !== '' && op.filter !== undefined)
            reasons.push(invalidArgument('start id and filter'));
          if (op.filter !== undefined) maybe.push(invalidArgument('filter parameters'));
          if (
            ref.target.kind === 'model' &&
            creationTimestampMs !== undefined &&
            op.creationTimestamp !== 'real'
          ) {
            maybe.push(notFound('creation time mismatch'));
          }
          target = ref.target;
        }
        const outcome = await this.call(
          c.listShards({
            streamName: ref?.streamName ?? '',
            streamArn: ref?.streamArn ?? '',
            nextToken: token,
            exclusiveStartShardId: op.exclusiveStartShardId,
            maxResults: op.maxResults,
            streamCreationTimestampMs: creationTimestampMs,
            shardFilter: op.filter,
          }),
        );
        const response = checkOutcome(outcome, verdict({ reasons, maybe, target }));
        this.count(`listShards ${response ? 'ok' : lastErrorName}`);
        if (response !== undefined && response.nextToken !== '' && real)
          this.listShardsTokens.push(response.nextToken);
        if (
          response !== undefined &&
          response.nextToken !== '' &&
          token === '' &&
          ref?.target.kind === 'model'
        ) {
          this.listShardsTokens.push(response.nextToken);
        }
        if (
          response !== undefined &&
          token === '' &&
          ref?.target.kind === 'model' &&
          op.filter === undefined &&
          op.exclusiveStartShardId === ''
        ) {
          const want = this.modelShards(ref.target.stream)
            .map((sh) => sh.shardId)
            .slice(0, op.maxResults ?? 1000);
          const got = response.shards.map((sh) => sh.shardId);
          if (JSON.stringify(got) !== JSON.stringify(want)) {
            throw new PropertyFailure(
              `ListShards lists ${preview(got)}, expected ${preview(want)}`,
            );
          }
        }
        if (this.listShardsTokens.length > 32) this.listShardsTokens.splice(1, 1);
        if (this.listStreamsTokens.length > 32) this.listStreamsTokens.splice(1, 1);
        return;
      }
      case 'addTags': {
        const reasons = [...op.ref.reasons];
        if (Object.keys(op.tags).length === 0) reasons.push(fieldInvalid('no tags'));
        const maybe = [
          fieldInvalid('tag constraints'),
          invalidArgument('tag limits'),
          { name: 'ResourceInUseException' as const, why: 'state' },
        ];
        const outcome = await this.call(
          c.addTagsToStream({
            streamName: op.ref.streamName,
            streamArn: op.ref.streamArn,
            tags: op.tags,
          }),
        );
        checkOutcome(outcome, verdict({ reasons, maybe, target: op.ref.target }));
        this.count(`addTags ${outcome.ok ? 'ok' : lastErrorName}`);
        return;
      }
      case 'removeTags': {
        const reasons = [...op.ref.reasons];
        if (op.keys.length === 0 || op.keys.length > 50)
          reasons.push(fieldInvalid('tag key count'));
        const maybe = [
          fieldInvalid('tag key constraints'),
          { name: 'ResourceInUseException' as const, why: 'state' },
        ];
        const outcome = await this.call(
          c.removeTagsFromStream({
            streamName: op.ref.streamName,
            streamArn: op.ref.streamArn,
            tagKeys: [...op.keys],
          }),
        );
        checkOutcome(outcome, verdict({ reasons, maybe, target: op.ref.target }));
        this.count(`removeTags ${outcome.ok ? 'ok' : lastErrorName}`);
        return;
      }
      case 'listTags': {
        const reasons = [...op.ref.reasons];
        if (op.limit !== undefined && (op.limit < 1 || op.limit > 50))
          reasons.push(fieldInvalid('limit'));
        if ([...op.exclusiveStartTagKey].length > 128)
          reasons.push(fieldInvalid('exclusiveStartTagKey'));
        const outcome = await this.call(
          c.listTagsForStream({
            streamName: op.ref.streamName,
            streamArn: op.ref.streamArn,
            limit: op.limit,
            exclusiveStartTagKey: op.exclusiveStartTagKey,
          }),
        );
        checkOutcome(outcome, verdict({ reasons, maybe: [], target: op.ref.target }));
        this.count(`listTags ${outcome.ok ? 'ok' : lastErrorName}`);
        return;
      }
      case 'retention': {
        const reasons = [...op.ref.reasons];
        if (op.hours === 0) reasons.push(fieldInvalid('retention required'));
        else if (op.hours < 24 || op.hours > 8760)
          reasons.push(invalidArgument('retention out of range'));
        // Increasing below or decreasing above the current period is refused.
        const maybe = [
          invalidArgument('wrong direction'),
          { name: 'ResourceInUseException' as const, why: 'state' },
        ];
        const request = {
          streamName: op.ref.streamName,
          streamArn: op.ref.streamArn,
          retentionPeriodHours: op.hours,
        };
        const outcome = await this.call(
          op.direction === 'increase'
            ? c.increaseStreamRetentionPeriod(request)
            : c.decreaseStreamRetentionPeriod(request),
        );
        checkOutcome(outcome, verdict({ reasons, maybe, target: op.ref.target }));
        this.count(`retention ${outcome.ok ? 'ok' : lastErrorName}`);
        return;
      }
      case 'updateStreamMode': {
        const reasons = [...op.ref.reasons];
        if (op.mode === StreamMode.STREAM_MODE_UNSPECIFIED || op.mode === StreamMode.UNRECOGNIZED) {
          reasons.push(fieldInvalid('stream mode'));
        }
        const maybe = [
          { name: 'ResourceInUseException' as const, why: 'state' },
          { name: 'LimitExceededException' as const, why: 'on-demand limit' },
        ];
        const outcome = await this.call(
          c.updateStreamMode({
            streamName: op.ref.streamName,
            streamArn: op.ref.streamArn,
            streamMode: op.mode,
          }),
        );
        checkOutcome(outcome, verdict({ reasons, maybe, target: op.ref.target }));
        this.count(`updateStreamMode ${outcome.ok ? 'ok' : lastErrorName}`);
        return;
      }
      case 'describeLimits': {
        const outcome = await this.call(c.describeLimits());
        checkOutcome(outcome, verdict({ reasons: [], maybe: [], target: SERVICE }));
        this.count('describeLimits ok');
        return;
      }
    }
  }

  private async rawCall(op: Extract<Op, { op: 'raw' }>): Promise<void> {
    const payload = rawPayload(op.payload);
    // A well-formed GetShardIterator request only makes sense on its own method.
    const path =
      op.payload.kind === 'hugeTimestamp' ? '/rheos.v1.DataPlaneService/GetShardIterator' : op.path;
    this.calls++;
    const result = await new Promise<{ error: ServiceError | null; response?: Buffer }>(
      (resolve) => {
        this.raw.makeUnaryRequest(
          path,
          (b: Buffer) => b,
          (b: Buffer) => b,
          payload,
          new Metadata(),
          { deadline: Date.now() + CALL_DEADLINE_MS },
          (error: ServiceError | null, response?: Buffer) => resolve({ error, response }),
        );
      },
    );
    const method = path.split('/').pop() ?? '';
    const known = path.startsWith('/rheos.v1.') && method !== 'Nope';
    const where = `${op.payload.kind} payload (${payload.length} bytes) to ${path}`;
    if (result.error === null) {
      this.count('raw ok');
      // Only these accept requests whose every field is optional, or a cut that falls on a
      // field boundary (a PutRecords to a stream that does not exist still fails).
      const mayAnswer =
        ['DescribeLimits', 'ListStreams'].includes(method) || op.payload.kind === 'truncatedPut';
      if (!mayAnswer) throw new PropertyFailure(`${where} was answered with success`);
    } else if (!known) {
      this.count(`raw ${GrpcStatus[result.error.code] ?? result.error.code}`);
      if (result.error.code !== GrpcStatus.UNIMPLEMENTED) {
        throw new PropertyFailure(
          `${where}: status ${GrpcStatus[result.error.code]}, expected UNIMPLEMENTED`,
        );
      }
    } else {
      // The same checks as for typed calls: a Kinesis error, never InternalFailure, no hang.
      const error = fromServiceError(result.error);
      this.count(`raw ${error.name}`);
      checkOutcome({ ok: false, error }, { success: 'mustNot', allowed: null });
      if (op.payload.kind === 'hugeTimestamp' && error.name !== 'ValidationException') {
        throw new PropertyFailure(
          `${where}: ${describeError(error)}, expected ValidationException`,
        );
      }
    }
    // Nothing here may have stored anything in the model streams.
    await this.readForward();
  }

  /** At the end: every shard from TRIM_HORIZON equals the whole model. */
  async finalCheck(): Promise<number> {
    let total = 0;
    for (const shard of this.allShards()) {
      const iterator = await this.client.getShardIterator({
        streamName: MODEL_STREAMS[shard.stream],
        shardId: shard.shardId,
        shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_TRIM_HORIZON,
      });
      const { records } = await this.readToEnd(
        iterator.shardIterator,
        `${shard.shardId} final read`,
      );
      compareRecords(
        records,
        shard.records,
        `final read of ${MODEL_STREAMS[shard.stream]}/${shard.shardId} from TRIM_HORIZON`,
      );
      total += records.length;
    }
    return total;
  }
}

function mutate(base: string, m: Mutation): string {
  switch (m.kind) {
    case 'replace': {
      if (base.length === 0) return m.char;
      const at = m.at % base.length;
      const char = base[at] === m.char ? (m.char === 'A' ? 'B' : 'A') : m.char;
      return base.slice(0, at) + char + base.slice(at + 1);
    }
    case 'truncate':
      return base.slice(0, m.keep % Math.max(1, base.length));
    case 'append':
      return base + m.text;
    case 'swapCase': {
      const swapped = [...base]
        .map((c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()))
        .join('');
      return swapped === base ? base + 'A' : swapped;
    }
    case 'reverse': {
      const reversed = [...base].reverse().join('');
      return reversed === base ? base + 'A' : reversed;
    }
  }
}

function rawPayload(p: RawPayload): Buffer {
  switch (p.kind) {
    case 'random':
      return bytesFor(p.length, p.seed);
    case 'empty':
      return Buffer.alloc(0);
    case 'truncatedPut': {
      // A well-formed PutRecords to a stream that does not exist, cut anywhere.
      const w = new BinaryWriter();
      w.uint32((1 << 3) | 2).string('hostile-missing-stream');
      for (let i = 0; i < 3; i++) {
        const entry = new BinaryWriter();
        entry.uint32((1 << 3) | 2).bytes(bytesFor(20, p.seed + i));
        entry.uint32((3 << 3) | 2).string(`k${i}`);
        w.uint32((3 << 3) | 2).bytes(entry.finish());
      }
      const full = Buffer.from(w.finish());
      return full.subarray(0, p.keep % (full.length + 1));
    }
    case 'badUtf8': {
      const w = new BinaryWriter();
      w.uint32((1 << 3) | 2).bytes(Uint8Array.of(0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80));
      w.uint32((4 << 3) | 2).bytes(Uint8Array.of(0xc3, 0x28));
      return Buffer.from(w.finish());
    }
    case 'hugeLength': {
      const w = new BinaryWriter();
      w.uint32((1 << 3) | 2).uint32(0x7fffffff);
      return Buffer.concat([Buffer.from(w.finish()), Buffer.from('abc')]);
    }
    case 'wrongWireType': {
      const w = new BinaryWriter();
      w.uint32((1 << 3) | 0).uint64(12345n);
      w.uint32((3 << 3) | 5).fixed32(7);
      w.uint32((4 << 3) | 1).fixed64(1n);
      return Buffer.from(w.finish());
    }
    case 'hugeTimestamp':
      return Buffer.from(
        GetShardIteratorRequest.encode(
          GetShardIteratorRequest.fromPartial({
            streamName: MODEL_STREAMS.one,
            shardId: 'shardId-000000000000',
            shardIteratorType: ShardIteratorType.SHARD_ITERATOR_TYPE_AT_TIMESTAMP,
            timestampMs: 2 ** 62,
          }),
        ).finish(),
      );
  }
}

// ---------------------------------------------------------------------------------------------
// Tests

describe('hostile requests', () => {
  let t: TestNode;
  let client: RheosClient;
  let raw: Client;

  beforeAll(async () => {
    t = await startTestNode({ defaultShardLimits: UNLIMITED_SHARD_LIMITS });
    client = createClient({ endpoint: t.node.grpcAddress, deadlineMs: CALL_DEADLINE_MS });
    raw = new Client(t.node.grpcAddress, credentials.createInsecure());
  });

  afterAll(async () => {
    raw?.close();
    client?.close();
    await t?.stop();
  });

  it(`survives ${REQUESTS} generated hostile requests with every acknowledged record intact`, async () => {
    console.log(
      `hostile-requests: seed=${SEED} requests=${REQUESTS}; ` +
        `replay with SEED=${SEED} npx vitest run test/api/hostile-requests.test.ts`,
    );
    const harness = new Harness(client, raw);
    await harness.setUp();
    const started = Date.now();
    const ops = fc.sample(opArb, { seed: SEED, numRuns: REQUESTS });
    const generatedMs = Date.now() - started;
    for (let step = 0; step < ops.length; step++) {
      const op = ops[step] as Op;
      try {
        const t0 = performance.now();
        await harness.run(op);
        await harness.checkAlive();
        harness.time(op.op, performance.now() - t0);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new Error(
          `seed ${SEED}, request ${step + 1} of ${ops.length} (${op.op}): ${message}\n` +
            `request: ${preview(op)}\n` +
            `replay: SEED=${SEED} npx vitest run test/api/hostile-requests.test.ts`,
          { cause: error },
        );
      }
    }
    const stored = await harness.finalCheck();
    const seconds = (Date.now() - started) / 1000;
    const summary = [...harness.stats].sort(([a], [b]) => a.localeCompare(b));
    console.log(
      `hostile-requests: seed=${SEED}: ${ops.length} requests (+ verification: ${harness.calls} calls in all) ` +
        `in ${seconds.toFixed(1)} s (generation ${generatedMs} ms): ` +
        `${(ops.length / seconds).toFixed(0)} requests/s, ${(harness.calls / seconds).toFixed(0)} calls/s; ` +
        `${stored} records stored and read back\n` +
        summary.map(([k, n]) => `  ${k}: ${n}`).join('\n') +
        '\n' +
        [...harness.timing]
          .map(
            ([k, t]) =>
              `  ${k}: ${t.n} in ${t.ms.toFixed(0)} ms (${(t.ms / t.n).toFixed(2)} ms each)`,
          )
          .join('\n'),
    );
    expect(stored).toBeGreaterThan(0);
  }, 180_000);
});

describe('the checkers of the hostile-request property catch what they are for', () => {
  const rec = (sequenceNumber: string, partitionKey: string, data: string): ModelRecord => ({
    sequenceNumber,
    partitionKey,
    data: Buffer.from(data),
  });
  const read = (sequenceNumber: string, partitionKey: string, data: string): StreamRecord => ({
    sequenceNumber,
    partitionKey,
    data: Buffer.from(data),
    approximateArrivalTimestampMs: 0,
    encryptionType: EncryptionType.ENCRYPTION_TYPE_NONE,
  });
  const model = [rec('10', 'a', 'x'), rec('11', 'b', 'y')];

  it('compareRecords: identical passes; lost, extra, reordered or altered records fail', () => {
    compareRecords([read('10', 'a', 'x'), read('11', 'b', 'y')], model, 'ok');
    expect(() => compareRecords([read('10', 'a', 'x')], model, 'lost')).toThrow(/missing/);
    expect(() =>
      compareRecords(
        [read('10', 'a', 'x'), read('11', 'b', 'y'), read('12', 'c', 'z')],
        model,
        'extra',
      ),
    ).toThrow(/never acknowledged/);
    expect(() =>
      compareRecords([read('11', 'b', 'y'), read('10', 'a', 'x')], model, 'order'),
    ).toThrow(/out of order/);
    expect(() =>
      compareRecords([read('10', 'a', 'X'), read('11', 'b', 'y')], model, 'data'),
    ).toThrow(/data differs/);
    expect(() =>
      compareRecords([read('10', 'A', 'x'), read('11', 'b', 'y')], model, 'key'),
    ).toThrow(/partition key/);
  });

  it('checkOutcome: enforces must/mustNot, error classes, InternalFailure, hangs, indeterminate writes', () => {
    const ok = { ok: true as const, value: 1 };
    const fail = (error: unknown) => ({ ok: false as const, error });
    const valid = verdict({ reasons: [], maybe: [], target: { kind: 'model', stream: 'one' } });
    const invalid = verdict({
      reasons: [fieldInvalid('x'), invalidArgument('y')],
      maybe: [],
      target: { kind: 'model', stream: 'one' },
    });
    const semantic = verdict({
      reasons: [invalidArgument('y')],
      maybe: [],
      target: { kind: 'model', stream: 'one' },
    });
    const anything = verdict({ reasons: [], maybe: [], target: { kind: 'other' } });
    expect(checkOutcome(ok, valid)).toBe(1);
    expect(() => checkOutcome(ok, invalid)).toThrow(/must fail/);
    expect(() => checkOutcome(fail(new ValidationError('bad')), valid)).toThrow(
      /valid request failed/,
    );
    expect(checkOutcome(fail(new ValidationError('bad')), invalid)).toBeUndefined();
    expect(() => checkOutcome(fail(new InvalidArgumentError('bad')), invalid)).toThrow(
      /expected one of/,
    );
    expect(checkOutcome(fail(new InvalidArgumentError('bad')), semantic)).toBeUndefined();
    expect(() => checkOutcome(fail(new ResourceNotFoundError('gone')), semantic)).toThrow(
      /expected one of/,
    );
    expect(() => checkOutcome(fail(new InternalFailureError('boom')), anything)).toThrow(
      /InternalFailure/,
    );
    expect(() => checkOutcome(fail(new Error('client bug')), anything)).toThrow(/non-Rheos/);
    const hang = new ServiceUnavailableError('late', {
      cause: { code: GrpcStatus.DEADLINE_EXCEEDED } as ServiceError,
    });
    expect(() => checkOutcome(fail(hang), anything)).toThrow(/hang/);
    expect(() =>
      checkOutcome(
        fail(new ServiceUnavailableError('conn reset', { indeterminate: true })),
        anything,
      ),
    ).toThrow(/transport failure/);
    expect(() =>
      checkOutcome(fail(new ResourceInUseError('maybe', { indeterminate: true })), anything, {
        write: true,
      }),
    ).toThrow(/indeterminately/);
    expect(checkOutcome(fail(new ResourceInUseError('busy')), anything)).toBeUndefined();
  });

  it('recordReasons: the API model of a record', () => {
    const r = (partitionKey: string, dataLength = 1, explicitHashKey?: string) =>
      recordReasons({ partitionKey, dataLength, dataSeed: 0, explicitHashKey }).map((x) => x.name);
    expect(r('k')).toEqual([]);
    expect(r('😀'.repeat(256))).toEqual([]);
    expect(r('\uD800')).toEqual([]); // sent as U+FFFD
    expect(r('')).toEqual(['ValidationException']);
    expect(r('😀'.repeat(257))).toEqual(['ValidationException']);
    expect(r('k', MiB - 1)).toEqual([]);
    expect(r('k', MiB)).toEqual(['InvalidArgumentException']);
    expect(r('k', MiB + 1)).toEqual(['ValidationException']);
    expect(r('k', 1, String(MAX_HASH_KEY))).toEqual([]);
    expect(r('k', 1, String(MAX_HASH_KEY + 1n))).toEqual(['InvalidArgumentException']);
    expect(r('k', 1, '007')).toEqual(['ValidationException']);
  });
});

/** Bugs the property found, each kept as a minimal reproduction (regression test). */
describe('hostile requests: regressions', () => {
  let t: TestNode;
  let client: RheosClient;

  beforeAll(async () => {
    t = await startTestNode({ defaultShardLimits: UNLIMITED_SHARD_LIMITS });
    client = createClient({ endpoint: t.node.grpcAddress, deadlineMs: CALL_DEADLINE_MS });
    await client.createStream({ streamName: 'bugs', shardCount: 3 });
    await client.waitForStreamActive('bugs', 30_000, 5);
  });

  afterAll(async () => {
    client?.close();
    await t?.stop();
  });

  async function errorName(call: Promise<unknown>): Promise<string> {
    const outcome = await attempt(call);
    if (outcome.ok) return 'success';
    return outcome.error instanceof RheosError ? outcome.error.name : String(outcome.error);
  }

  // Found by seed 8: isListShardsToken() did not check the filter, and shardMatches() then read
  // filter.type of null (TypeError -> InternalFailure). NextTokens are unsigned base64url JSON, so
  // any client can send this.
  it('a ListShards NextToken whose filter is null gets InvalidArgumentException, not InternalFailure', async () => {
    const { nextToken } = await client.listShards({ streamName: 'bugs', maxResults: 1 });
    const envelope = JSON.parse(Buffer.from(nextToken, 'base64url').toString('utf8')) as {
      body: Record<string, unknown>;
    };
    envelope.body.filter = null;
    const forged = Buffer.from(JSON.stringify(envelope), 'utf8').toString('base64url');
    expect(await errorName(client.listShards({ nextToken: forged }))).toBe(
      'InvalidArgumentException',
    );
  });
});
