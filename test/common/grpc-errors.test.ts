import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  errorFromName,
  InternalFailureError,
  NotLeaderError,
  ProvisionedThroughputExceededError,
  RheosError,
  ServiceUnavailableError,
  ValidationError,
  type KinesisErrorName,
} from '../../src/common/errors.js';
import { fromServiceError, toServiceError } from '../../src/common/grpc-errors.js';

const NAMES: readonly KinesisErrorName[] = [
  'ResourceNotFoundException',
  'ResourceInUseException',
  'ValidationException',
  'InvalidArgumentException',
  'ProvisionedThroughputExceededException',
  'ExpiredIteratorException',
  'ExpiredNextTokenException',
  'LimitExceededException',
  'AccessDeniedException',
  'InternalFailureException',
  'ServiceUnavailableException',
  'NotLeaderException',
];

/** What a grpc-js client would hand back for the status a server sent. */
function asReceived(sent: Partial<ServiceError>): ServiceError {
  expect(sent.code).toBeTypeOf('number');
  expect(sent.details).toBeTypeOf('string');
  expect(sent.metadata).toBeInstanceOf(Metadata);
  const error = new Error(`${sent.code} ${status[sent.code!]}: ${sent.details}`) as ServiceError;
  error.code = sent.code!;
  error.details = sent.details!;
  // Metadata crosses the wire as a copy.
  error.metadata = sent.metadata!.clone();
  return error;
}

/** A transport-level failure: no Rheos metadata at all. */
function transportError(code: status, details: string, message = details): ServiceError {
  const error = new Error(message) as ServiceError;
  error.code = code;
  error.details = details;
  error.metadata = new Metadata();
  return error;
}

describe('toServiceError / fromServiceError', () => {
  for (const name of NAMES) {
    it(`round-trips ${name} with every combination of flags`, () => {
      for (const retriable of [false, true]) {
        for (const indeterminate of [false, true]) {
          const original = errorFromName(name, `the ${name} message: ü 😀 "quoted"\nline 2`, {
            retriable,
            indeterminate,
          });
          const sent = toServiceError(original);
          expect(sent.code).not.toBe(status.OK);
          const received = fromServiceError(asReceived(sent));
          const label = `${name} retriable=${retriable} indeterminate=${indeterminate}`;
          expect(received, label).toBeInstanceOf(RheosError);
          expect(received.constructor, label).toBe(original.constructor);
          expect(received.name, label).toBe(name);
          expect(received.message, label).toBe(original.message);
          expect(received.retriable, label).toBe(retriable);
          expect(received.indeterminate, label).toBe(indeterminate);
        }
      }
    });
  }

  it('round-trips each class with its default flags', () => {
    for (const name of NAMES) {
      const original = errorFromName(name, 'm', {});
      const received = fromServiceError(asReceived(toServiceError(original)));
      expect(received.retriable, name).toBe(original.retriable);
      expect(received.indeterminate, name).toBe(original.indeterminate);
    }
  });

  it('carries the leader hint of NotLeader, and copes without one', () => {
    const leader = { brokerId: 3, endpoint: '127.0.0.4:7400' };
    const received = fromServiceError(
      asReceived(toServiceError(new NotLeaderError('not the leader of shard 1', { leader }))),
    );
    expect(received).toBeInstanceOf(NotLeaderError);
    expect((received as NotLeaderError).leader).toEqual(leader);
    expect(received.retriable).toBe(true);
    expect(received.indeterminate).toBe(false);
    const unknown = fromServiceError(asReceived(toServiceError(new NotLeaderError('no leader'))));
    expect((unknown as NotLeaderError).leader).toBeUndefined();
  });

  it('keeps the received ServiceError as the cause', () => {
    const wire = asReceived(toServiceError(new ValidationError('bad')));
    expect(fromServiceError(wire).cause).toBe(wire);
  });

  it('maps names to the expected gRPC status codes', () => {
    const code = (name: KinesisErrorName) => toServiceError(errorFromName(name, 'm', {})).code;
    expect(code('ResourceNotFoundException')).toBe(status.NOT_FOUND);
    expect(code('ValidationException')).toBe(status.INVALID_ARGUMENT);
    expect(code('InvalidArgumentException')).toBe(status.INVALID_ARGUMENT);
    expect(code('ProvisionedThroughputExceededException')).toBe(status.RESOURCE_EXHAUSTED);
    expect(code('AccessDeniedException')).toBe(status.PERMISSION_DENIED);
    expect(code('InternalFailureException')).toBe(status.INTERNAL);
    expect(code('ServiceUnavailableException')).toBe(status.UNAVAILABLE);
  });

  it('carries the message as the status details', () => {
    expect(toServiceError(new ProvisionedThroughputExceededError('slow down')).details).toBe(
      'slow down',
    );
  });
});

describe('non-Rheos errors', () => {
  for (const [label, thrown] of [
    ['an Error', new Error('secret internal detail')],
    ['a TypeError', new TypeError('x is undefined')],
    ['a string', 'boom'],
    ['undefined', undefined],
    ['null', null],
    ['an object', { code: 42 }],
  ] as const) {
    it(`${label} becomes a retriable, indeterminate InternalFailureException`, () => {
      const sent = toServiceError(thrown);
      expect(sent.code).toBe(status.INTERNAL);
      expect(sent.details).toBe('Internal service failure.');
      const received = fromServiceError(asReceived(sent));
      expect(received).toBeInstanceOf(InternalFailureError);
      expect(received.name).toBe('InternalFailureException');
      expect(received.retriable).toBe(true);
      expect(received.indeterminate).toBe(true);
      expect(received.message).not.toContain('secret');
    });
  }
});

describe('errors without Rheos metadata (transport failures)', () => {
  it('UNAVAILABLE is a retriable, indeterminate ServiceUnavailableException', () => {
    const received = fromServiceError(transportError(status.UNAVAILABLE, 'connection reset'));
    expect(received).toBeInstanceOf(ServiceUnavailableError);
    expect(received.retriable).toBe(true);
    expect(received.indeterminate).toBe(true);
    expect(received.message).toBe('connection reset');
  });

  it('UNAVAILABLE for a call grpc-js never sent (no connection) is definite', () => {
    const error = fromServiceError(
      transportError(
        status.UNAVAILABLE,
        'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1',
      ),
    );
    expect(error.name).toBe('ServiceUnavailableException');
    expect(error.retriable).toBe(true);
    expect(error.indeterminate).toBe(false);
  });

  it('RESOURCE_EXHAUSTED and INVALID_ARGUMENT from grpc-js are definite ValidationExceptions', () => {
    for (const code of [status.RESOURCE_EXHAUSTED, status.INVALID_ARGUMENT]) {
      const received = fromServiceError(transportError(code, 'message larger than max'));
      expect(received).toBeInstanceOf(ValidationError);
      expect(received.retriable).toBe(false);
      expect(received.indeterminate).toBe(false);
    }
  });

  it('other codes are retriable, indeterminate InternalFailureExceptions', () => {
    for (const code of [
      status.DEADLINE_EXCEEDED,
      status.CANCELLED,
      status.UNKNOWN,
      status.INTERNAL,
    ]) {
      const received = fromServiceError(transportError(code, 'deadline'));
      expect(received, status[code]).toBeInstanceOf(InternalFailureError);
      expect(received.retriable).toBe(true);
      expect(received.indeterminate).toBe(true);
    }
  });

  it('falls back to the error message when details are empty', () => {
    const received = fromServiceError(transportError(status.UNKNOWN, '', 'socket hang up'));
    expect(received.message).toBe('socket hang up');
  });

  it('an unknown error name in the metadata falls back to the status code', () => {
    const wire = transportError(status.UNAVAILABLE, 'draining');
    wire.metadata.set('rheos-error-name', 'SomethingElseException');
    wire.metadata.set('rheos-retriable', 'false');
    const received = fromServiceError(wire);
    expect(received).toBeInstanceOf(ServiceUnavailableError);
    expect(received.indeterminate).toBe(true);
  });
});
