import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  errorFromName,
  InternalFailureError,
  isKinesisErrorName,
  NotLeaderError,
  RheosError,
  ServiceUnavailableError,
  ValidationError,
  type KinesisErrorName,
} from './errors.js';

/**
 * The error model on gRPC: a status code for generic clients, plus metadata carrying the Kinesis
 * error name and the retriable/indeterminate flags for ours.
 */

const NAME_KEY = 'rheos-error-name';
const RETRIABLE_KEY = 'rheos-retriable';
const INDETERMINATE_KEY = 'rheos-indeterminate';

const STATUS_BY_NAME: Record<KinesisErrorName, status> = {
  ResourceNotFoundException: status.NOT_FOUND,
  ResourceInUseException: status.FAILED_PRECONDITION,
  ValidationException: status.INVALID_ARGUMENT,
  InvalidArgumentException: status.INVALID_ARGUMENT,
  ProvisionedThroughputExceededException: status.RESOURCE_EXHAUSTED,
  ExpiredIteratorException: status.FAILED_PRECONDITION,
  ExpiredNextTokenException: status.FAILED_PRECONDITION,
  LimitExceededException: status.RESOURCE_EXHAUSTED,
  AccessDeniedException: status.PERMISSION_DENIED,
  InternalFailureException: status.INTERNAL,
  ServiceUnavailableException: status.UNAVAILABLE,
  NotLeaderException: status.UNAVAILABLE,
  ShardSealedException: status.FAILED_PRECONDITION,
  ProducerFencedException: status.FAILED_PRECONDITION,
  OutOfOrderSequenceException: status.FAILED_PRECONDITION,
  LeaseLostException: status.FAILED_PRECONDITION,
};

const LEADER_ID_KEY = 'rheos-leader-id';
const LEADER_ENDPOINT_KEY = 'rheos-leader-endpoint';

/** The fields of the wire's CallError message (data.proto), which is this shape. */
export interface CallError {
  readonly name: string;
  readonly message: string;
  readonly retriable: boolean;
  readonly indeterminate: boolean;
  /** NotLeaderException: the leader's broker id and endpoint, or 0 and ''. */
  readonly leaderId: number;
  readonly leaderEndpoint: string;
}

/**
 * An error as the wire carries it: in a call's status metadata (toServiceError) or inside a
 * stream message (PutRecordsStream's CallError). Non-Rheos errors become InternalFailure.
 */
export function toCallError(error: unknown): CallError {
  const rheos =
    error instanceof RheosError
      ? error
      : new InternalFailureError('Internal service failure.', { cause: error });
  const leader = rheos instanceof NotLeaderError ? rheos.leader : undefined;
  return {
    name: rheos.name,
    message: rheos.message,
    retriable: rheos.retriable,
    indeterminate: rheos.indeterminate,
    leaderId: leader?.brokerId ?? 0,
    leaderEndpoint: leader?.endpoint ?? '',
  };
}

/** The typed error a client sees for a CallError; undefined for a name that is not Kinesis'. */
export function fromCallError(wire: CallError, cause?: unknown): RheosError | undefined {
  const options = {
    retriable: wire.retriable,
    indeterminate: wire.indeterminate,
    ...(cause === undefined ? {} : { cause }),
  };
  if (wire.name === 'NotLeaderException') {
    const leader =
      Number.isSafeInteger(wire.leaderId) && wire.leaderId > 0 && wire.leaderEndpoint !== ''
        ? { brokerId: wire.leaderId, endpoint: wire.leaderEndpoint }
        : undefined;
    return new NotLeaderError(wire.message, { ...options, ...(leader ? { leader } : {}) });
  }
  if (isKinesisErrorName(wire.name)) return errorFromName(wire.name, wire.message, options);
  return undefined;
}

/** What a server handler sends for an error. Non-Rheos errors become InternalFailure. */
export function toServiceError(error: unknown): Partial<ServiceError> {
  const wire = toCallError(error);
  const metadata = new Metadata();
  metadata.set(NAME_KEY, wire.name);
  metadata.set(RETRIABLE_KEY, String(wire.retriable));
  metadata.set(INDETERMINATE_KEY, String(wire.indeterminate));
  if (wire.leaderEndpoint !== '') {
    metadata.set(LEADER_ID_KEY, String(wire.leaderId));
    metadata.set(LEADER_ENDPOINT_KEY, wire.leaderEndpoint);
  }
  return { code: STATUS_BY_NAME[wire.name as KinesisErrorName], details: wire.message, metadata };
}

/** Rebuilds the typed error a client sees from a failed call. */
export function fromServiceError(error: ServiceError): RheosError {
  const name = error.metadata?.get(NAME_KEY)[0];
  if (typeof name === 'string') {
    const rebuilt = fromCallError(
      {
        name,
        message: error.details,
        retriable: error.metadata.get(RETRIABLE_KEY)[0] === 'true',
        indeterminate: error.metadata.get(INDETERMINATE_KEY)[0] === 'true',
        leaderId: Number(error.metadata.get(LEADER_ID_KEY)[0] ?? 0),
        leaderEndpoint: String(error.metadata.get(LEADER_ENDPOINT_KEY)[0] ?? ''),
      },
      error,
    );
    if (rebuilt !== undefined) return rebuilt;
  }
  // No Rheos metadata: the call failed in transport, so whether the server acted is unknown.
  switch (error.code) {
    case status.RESOURCE_EXHAUSTED:
    case status.INVALID_ARGUMENT:
      // grpc-js itself refuses oversized messages before any handler runs.
      return new ValidationError(error.details, { cause: error });
    case status.UNAVAILABLE:
      // grpc-js fails a call it could not send anywhere with "No connection established": then
      // the server never saw it (definite). Any other UNAVAILABLE may come after it was sent.
      return new ServiceUnavailableError(error.details, {
        indeterminate: !error.details.startsWith('No connection established'),
        cause: error,
      });
    default:
      return new InternalFailureError(error.details || error.message, { cause: error });
  }
}

/** The call ran out of time in transport (no answer from the server, which may have acted). */
export function isDeadlineExceeded(error: unknown): boolean {
  const cause = error instanceof Error ? error.cause : undefined;
  return (
    typeof cause === 'object' &&
    cause !== null &&
    'code' in cause &&
    cause.code === status.DEADLINE_EXCEEDED
  );
}
