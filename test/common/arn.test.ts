import { describe, expect, it } from 'vitest';
import {
  DEFAULT_IDENTITY,
  resolveStreamName,
  streamArn,
  type ServiceIdentity,
} from '../../src/common/arn.js';
import {
  InvalidArgumentError,
  ResourceNotFoundError,
  RheosError,
  ValidationError,
} from '../../src/common/errors.js';

const id: ServiceIdentity = { region: 'eu-west-1', accountId: '123456789012' };
const arnOf = (name: string, identity = id) => streamArn(identity, name);

function thrownBy(fn: () => unknown): RheosError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(RheosError);
    return error as RheosError;
  }
  return expect.fail('expected an error to be thrown');
}

describe('streamArn', () => {
  it('formats a Kinesis stream ARN', () => {
    expect(streamArn(id, 'orders')).toBe('arn:aws:kinesis:eu-west-1:123456789012:stream/orders');
    expect(streamArn(DEFAULT_IDENTITY, 's')).toBe(
      'arn:aws:kinesis:us-east-1:000000000000:stream/s',
    );
  });
});

describe('resolveStreamName', () => {
  it('returns the name when only the name is given', () => {
    expect(resolveStreamName({ streamName: 'orders', streamArn: '' }, id)).toBe('orders');
  });

  it('returns the name inside the ARN when only the ARN is given', () => {
    expect(resolveStreamName({ streamName: '', streamArn: arnOf('orders') }, id)).toBe('orders');
    expect(resolveStreamName({ streamName: '', streamArn: arnOf('a.b-c_D9') }, id)).toBe(
      'a.b-c_D9',
    );
  });

  it('accepts both when they agree', () => {
    expect(resolveStreamName({ streamName: 'orders', streamArn: arnOf('orders') }, id)).toBe(
      'orders',
    );
  });

  it('rejects both when they disagree with InvalidArgument', () => {
    const error = thrownBy(() =>
      resolveStreamName({ streamName: 'orders', streamArn: arnOf('payments') }, id),
    );
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.name).toBe('InvalidArgumentException');
    expect(error.message).toContain('orders');
    expect(error.message).toContain('payments');
  });

  it('names differing only in case disagree', () => {
    expect(() =>
      resolveStreamName({ streamName: 'Orders', streamArn: arnOf('orders') }, id),
    ).toThrow(InvalidArgumentError);
  });

  it('rejects malformed ARNs with a ValidationException naming streamARN', () => {
    const malformed = [
      'orders',
      'arn:aws:kinesis:eu-west-1:123456789012:stream/',
      'arn:aws:kinesis:eu-west-1:123456789012:stream/a b',
      'arn:aws:kinesis:eu-west-1:123456789012:stream/a/b',
      'arn:aws:kinesis:eu-west-1:123456789012:streams/orders',
      'arn:aws:kinesis:eu-west-1:123456789012:orders',
      'arn:aws:kinesis:eu-west-1:12345678901:stream/orders',
      'arn:aws:kinesis:eu-west-1:1234567890123:stream/orders',
      'arn:aws:kinesis:eu-west-1:12345678901x:stream/orders',
      'arn:aws:kinesis::123456789012:stream/orders',
      'arn:aws:sqs:eu-west-1:123456789012:stream/orders',
      'arn:azure:kinesis:eu-west-1:123456789012:stream/orders',
      ' arn:aws:kinesis:eu-west-1:123456789012:stream/orders',
      'arn:aws:kinesis:eu-west-1:123456789012:stream/orders ',
      'arn:aws:kinesis:eu-west-1:123456789012:stream/orders\n',
    ];
    for (const arn of malformed) {
      const error = thrownBy(() => resolveStreamName({ streamName: '', streamArn: arn }, id));
      expect(error, JSON.stringify(arn)).toBeInstanceOf(ValidationError);
      expect(error.name).toBe('ValidationException');
      expect(error.message).toBe(
        `1 validation error detected: Value '${arn}' at 'streamARN' failed to satisfy ` +
          'constraint: Member must satisfy regular expression pattern: ' +
          'arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+',
      );
    }
  });

  it('a malformed ARN is a ValidationException even when a name is given too', () => {
    expect(() =>
      resolveStreamName({ streamName: 'orders', streamArn: 'arn:nonsense' }, id),
    ).toThrow(ValidationError);
  });

  it('an ARN in another region is ResourceNotFound', () => {
    const arn = arnOf('orders', { ...id, region: 'us-west-2' });
    const error = thrownBy(() => resolveStreamName({ streamName: '', streamArn: arn }, id));
    expect(error).toBeInstanceOf(ResourceNotFoundError);
    expect(error.name).toBe('ResourceNotFoundException');
    expect(error.message).toContain('us-west-2');
    expect(error.message).toContain('orders');
  });

  it('an ARN of another account is ResourceNotFound', () => {
    const arn = arnOf('orders', { ...id, accountId: '210987654321' });
    const error = thrownBy(() => resolveStreamName({ streamName: 'orders', streamArn: arn }, id));
    expect(error).toBeInstanceOf(ResourceNotFoundError);
    expect(error.message).toContain('210987654321');
  });

  it('resolves against the identity it is given', () => {
    const arn = arnOf('orders', DEFAULT_IDENTITY);
    expect(resolveStreamName({ streamName: '', streamArn: arn }, DEFAULT_IDENTITY)).toBe('orders');
    expect(() => resolveStreamName({ streamName: '', streamArn: arn }, id)).toThrow(
      ResourceNotFoundError,
    );
  });
});
