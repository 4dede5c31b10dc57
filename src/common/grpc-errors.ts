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

/** What a server handler sends for an error. Non-Rheos errors become InternalFailure. */
export function toServiceError(error: unknown): Partial<ServiceError> {
  const rheos =
    error instanceof RheosError
      ? error
      : new InternalFailureError('Internal service failure.', { cause: error });
  const metadata = new Metadata();
  metadata.set(NAME_KEY, rheos.name);
  metadata.set(RETRIABLE_KEY, String(rheos.retriable));
  metadata.set(INDETERMINATE_KEY, String(rheos.indeterminate));
  if (rheos instanceof NotLeaderError && rheos.leader !== undefined) {
    metadata.set(LEADER_ID_KEY, String(rheos.leader.brokerId));
    metadata.set(LEADER_ENDPOINT_KEY, rheos.leader.endpoint);
  }
  return { code: STATUS_BY_NAME[rheos.name], details: rheos.message, metadata };
}

/** Rebuilds the typed error a client sees from a failed call. */
export function fromServiceError(error: ServiceError): RheosError {
  const name = error.metadata?.get(NAME_KEY)[0];
  if (name === 'NotLeaderException') {
    const id = Number(error.metadata.get(LEADER_ID_KEY)[0]);
    const endpoint = error.metadata.get(LEADER_ENDPOINT_KEY)[0];
    const leader =
      Number.isSafeInteger(id) && id > 0 && typeof endpoint === 'string' && endpoint !== ''
        ? { brokerId: id, endpoint }
        : undefined;
    return new NotLeaderError(error.details, {
      retriable: error.metadata.get(RETRIABLE_KEY)[0] === 'true',
      indeterminate: error.metadata.get(INDETERMINATE_KEY)[0] === 'true',
      cause: error,
      ...(leader ? { leader } : {}),
    });
  }
  if (typeof name === 'string' && isKinesisErrorName(name)) {
    return errorFromName(name, error.details, {
      retriable: error.metadata.get(RETRIABLE_KEY)[0] === 'true',
      indeterminate: error.metadata.get(INDETERMINATE_KEY)[0] === 'true',
      cause: error,
    });
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
