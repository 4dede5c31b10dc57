import { describe, expect, it } from 'vitest';
import {
  AccessDeniedError,
  errorFromName,
  ExpiredIteratorError,
  ExpiredNextTokenError,
  InternalFailureError,
  InvalidArgumentError,
  isKinesisErrorName,
  LimitExceededError,
  NotLeaderError,
  ProvisionedThroughputExceededError,
  ResourceInUseError,
  ResourceNotFoundError,
  RheosError,
  ServiceUnavailableError,
  ValidationError,
  type KinesisErrorName,
  type RheosErrorOptions,
  ShardSealedError,
  ProducerFencedError,
  OutOfOrderSequenceError,
  LeaseLostError,
} from '../../src/common/errors.js';

type ErrorClass = new (message: string, options?: RheosErrorOptions) => RheosError;

/** Every Kinesis error name with its class and default flags (the Record makes it exhaustive). */
const EXPECTED: Record<
  KinesisErrorName,
  { cls: ErrorClass; retriable: boolean; indeterminate: boolean }
> = {
  ResourceNotFoundException: { cls: ResourceNotFoundError, retriable: false, indeterminate: false },
  ResourceInUseException: { cls: ResourceInUseError, retriable: false, indeterminate: false },
  ValidationException: { cls: ValidationError, retriable: false, indeterminate: false },
  InvalidArgumentException: { cls: InvalidArgumentError, retriable: false, indeterminate: false },
  ProvisionedThroughputExceededException: {
    cls: ProvisionedThroughputExceededError,
    retriable: true,
    indeterminate: false,
  },
  ExpiredIteratorException: { cls: ExpiredIteratorError, retriable: false, indeterminate: false },
  ExpiredNextTokenException: {
    cls: ExpiredNextTokenError,
    retriable: false,
    indeterminate: false,
  },
  LimitExceededException: { cls: LimitExceededError, retriable: false, indeterminate: false },
  ShardSealedException: { cls: ShardSealedError, retriable: true, indeterminate: false },
  AccessDeniedException: { cls: AccessDeniedError, retriable: false, indeterminate: false },
  InternalFailureException: { cls: InternalFailureError, retriable: true, indeterminate: true },
  ServiceUnavailableException: {
    cls: ServiceUnavailableError,
    retriable: true,
    indeterminate: false,
  },
  NotLeaderException: { cls: NotLeaderError, retriable: true, indeterminate: false },
  ProducerFencedException: { cls: ProducerFencedError, retriable: false, indeterminate: false },
  OutOfOrderSequenceException: {
    cls: OutOfOrderSequenceError,
    retriable: false,
    indeterminate: false,
  },
  LeaseLostException: { cls: LeaseLostError, retriable: false, indeterminate: false },
};

const NAMES = Object.keys(EXPECTED) as KinesisErrorName[];

describe('error classes', () => {
  for (const name of NAMES) {
    const { cls, retriable, indeterminate } = EXPECTED[name];

    it(`${cls.name} is a ${name} with retriable=${retriable}, indeterminate=${indeterminate}`, () => {
      const error = new cls('something happened');
      expect(error).toBeInstanceOf(RheosError);
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe(name);
      expect(error.message).toBe('something happened');
      expect(error.retriable).toBe(retriable);
      expect(error.indeterminate).toBe(indeterminate);
      expect(String(error)).toBe(`${name}: something happened`);
    });

    it(`${cls.name} flags can be overridden either way`, () => {
      const flipped = new cls('m', { retriable: !retriable, indeterminate: !indeterminate });
      expect(flipped.retriable).toBe(!retriable);
      expect(flipped.indeterminate).toBe(!indeterminate);
    });
  }

  it('keeps the cause', () => {
    const cause = new Error('disk on fire');
    expect(new InternalFailureError('m', { cause }).cause).toBe(cause);
    expect(new ValidationError('m').cause).toBeUndefined();
  });

  it('a bare RheosError is definite and not retriable by default', () => {
    const error = new RheosError('LimitExceededException', 'too many');
    expect(error.retriable).toBe(false);
    expect(error.indeterminate).toBe(false);
  });
});

describe('isKinesisErrorName', () => {
  it('accepts every Kinesis error name', () => {
    for (const name of NAMES) expect(isKinesisErrorName(name), name).toBe(true);
  });

  it('rejects other strings, including inherited property names', () => {
    for (const other of [
      '',
      'Error',
      'ResourceNotFound',
      'resourcenotfoundexception',
      'KMSAccessDeniedException',
      'toString',
      'constructor',
      '__proto__',
      'hasOwnProperty',
    ]) {
      expect(isKinesisErrorName(other), other).toBe(false);
    }
  });
});

describe('errorFromName', () => {
  for (const name of NAMES) {
    it(`rebuilds ${name} as its own class, with the given flags`, () => {
      for (const retriable of [false, true]) {
        for (const indeterminate of [false, true]) {
          const error = errorFromName(name, 'msg', { retriable, indeterminate });
          expect(error).toBeInstanceOf(EXPECTED[name].cls);
          expect(error.name).toBe(name);
          expect(error.message).toBe('msg');
          expect(error.retriable).toBe(retriable);
          expect(error.indeterminate).toBe(indeterminate);
        }
      }
    });
  }
});
