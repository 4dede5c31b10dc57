import { InvalidArgumentError, ResourceNotFoundError, ValidationError } from './errors.js';
import { STREAM_NAME_PATTERN } from './limits.js';

/** Where this cluster says it lives, for ARNs and error messages. */
export interface ServiceIdentity {
  readonly region: string;
  readonly accountId: string;
}

export const DEFAULT_IDENTITY: ServiceIdentity = { region: 'us-east-1', accountId: '000000000000' };

const STREAM_ARN_PATTERN =
  /^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):(\d{12}):stream\/([a-zA-Z0-9_.-]+)$/;

export function streamArn(identity: ServiceIdentity, streamName: string): string {
  return `arn:aws:kinesis:${identity.region}:${identity.accountId}:stream/${streamName}`;
}

const CONSUMER_ARN_PATTERN =
  /^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):(\d{12}):stream\/([a-zA-Z0-9_.-]+)\/consumer\/([a-zA-Z0-9_.-]+):(\d+)$/;

/** A consumer's ARN, as Kinesis writes it: the stream's, the consumer's name, its creation second. */
export function consumerArn(
  identity: ServiceIdentity,
  streamName: string,
  consumerName: string,
  createdMs: number,
): string {
  return `${streamArn(identity, streamName)}/consumer/${consumerName}:${Math.floor(createdMs / 1000)}`;
}

/** The parts of a consumer ARN, or undefined if it is not one (no identity check). */
export function parseConsumerArn(
  arn: string,
): { streamName: string; consumerName: string; createdS: number } | undefined {
  const match = CONSUMER_ARN_PATTERN.exec(arn);
  if (match === null) return undefined;
  return {
    streamName: match[3] as string,
    consumerName: match[4] as string,
    createdS: Number(match[5]),
  };
}

/** The stream name inside a stream ARN, or undefined if it is not one (no identity check). */
export function streamNameOfArn(arn: string): string | undefined {
  return STREAM_ARN_PATTERN.exec(arn)?.[3];
}

/**
 * Requests name a stream by StreamName or StreamARN (or both, if they agree). Returns the name;
 * the caller validates the name itself.
 */
export function resolveStreamName(
  ref: { readonly streamName: string; readonly streamArn: string },
  identity: ServiceIdentity,
): string {
  if (ref.streamArn === '') return ref.streamName;
  const match = STREAM_ARN_PATTERN.exec(ref.streamArn);
  if (match === null) {
    throw new ValidationError(
      `1 validation error detected: Value '${ref.streamArn}' at 'streamARN' failed to satisfy ` +
        `constraint: Member must satisfy regular expression pattern: ` +
        `arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+`,
    );
  }
  const [, region, accountId, name] = match as unknown as [string, string, string, string];
  if (region !== identity.region || accountId !== identity.accountId) {
    throw new ResourceNotFoundError(
      `Stream ${name} under account ${accountId} not found in region ${region}.`,
    );
  }
  if (ref.streamName !== '' && ref.streamName !== name) {
    throw new InvalidArgumentError(
      `StreamARN ${ref.streamArn} and StreamName ${ref.streamName} name different streams.`,
    );
  }
  if (!STREAM_NAME_PATTERN.test(name))
    throw new InvalidArgumentError(`Invalid StreamARN ${ref.streamArn}.`);
  return name;
}
