/**
 * One error model for the whole product. Every error a client can see has a Kinesis error name and
 * two flags that drive a single retry policy:
 *  - `retriable`: trying the same request again may succeed;
 *  - `indeterminate`: the outcome is unknown (the write may or may not have happened), so a retry
 *    may duplicate. A definite error (indeterminate = false) guarantees nothing was written.
 * The same names travel as gRPC status + metadata and as the Kinesis JSON error shape.
 */

export interface RheosErrorOptions {
  retriable?: boolean;
  indeterminate?: boolean;
  cause?: unknown;
}

export type KinesisErrorName =
  | 'ResourceNotFoundException'
  | 'ResourceInUseException'
  | 'ValidationException'
  | 'InvalidArgumentException'
  | 'ProvisionedThroughputExceededException'
  | 'ExpiredIteratorException'
  | 'ExpiredNextTokenException'
  | 'LimitExceededException'
  | 'AccessDeniedException'
  | 'InternalFailureException'
  | 'ServiceUnavailableException'
  // Rheos' own: never shown to Kinesis clients (the gateway routes to the leader instead).
  | 'NotLeaderException'
  // Rheos' own: the shard was sealed by a split or merge; write to its children.
  | 'ShardSealedException'
  // Rheos' own (idempotent producers): a newer epoch of the producer id has written.
  | 'ProducerFencedException'
  // Rheos' own (idempotent producers): a batch is not the next in the producer's sequence.
  | 'OutOfOrderSequenceException'
  // Rheos' own (consumer groups): the worker no longer holds the lease it acted on.
  | 'LeaseLostException';

export class RheosError extends Error {
  override readonly name: KinesisErrorName;
  readonly retriable: boolean;
  readonly indeterminate: boolean;

  constructor(name: KinesisErrorName, message: string, options: RheosErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = name;
    this.retriable = options.retriable ?? false;
    this.indeterminate = options.indeterminate ?? false;
  }
}

/** The stream, shard or other resource does not exist (or is not ACTIVE for data-plane calls). */
export class ResourceNotFoundError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('ResourceNotFoundException', message, options);
  }
}

/** The resource exists but its state forbids the operation (for example, a stream being created). */
export class ResourceInUseError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('ResourceInUseException', message, options);
  }
}

/** A request field breaks a constraint of the API model (length, pattern, range). */
export class ValidationError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('ValidationException', message, options);
  }
}

/** The request is well-formed but its values make no sense for the resource it names. */
export class InvalidArgumentError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('InvalidArgumentException', message, options);
  }
}

/** A per-shard rate limit was hit, or the write pipeline is full. Nothing was written. */
export class ProvisionedThroughputExceededError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('ProvisionedThroughputExceededException', message, { retriable: true, ...options });
  }
}

/** The shard iterator is older than its lifetime (5 minutes): get a new one. */
export class ExpiredIteratorError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('ExpiredIteratorException', message, options);
  }
}

/** A pagination token is older than its lifetime. */
export class ExpiredNextTokenError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('ExpiredNextTokenException', message, options);
  }
}

/** An account or stream limit (shard count, tag count, on-demand streams) would be exceeded. */
export class LimitExceededError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('LimitExceededException', message, options);
  }
}

export class AccessDeniedError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('AccessDeniedException', message, options);
  }
}

/**
 * A fault inside the server. Retriable; indeterminate unless the caller knows the write never
 * reached the log.
 */
export class InternalFailureError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('InternalFailureException', message, {
      retriable: true,
      indeterminate: true,
      ...options,
    });
  }
}

/** The server is shutting down or cannot serve right now. */
export class ServiceUnavailableError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('ServiceUnavailableException', message, { retriable: true, ...options });
  }
}

/** Where a client should send a shard's writes instead: the leader as this broker knows it. */
export interface LeaderHint {
  readonly brokerId: number;
  /** host:port of the leader's native gRPC API. */
  readonly endpoint: string;
}

/**
 * This broker does not lead the shard (or does not host it). Definite (nothing was written) and
 * retriable: send the request to `leader` if known, else refresh the shard map.
 */
export class NotLeaderError extends RheosError {
  readonly leader: LeaderHint | undefined;

  constructor(message: string, options: RheosErrorOptions & { leader?: LeaderHint } = {}) {
    super('NotLeaderException', message, { retriable: true, ...options });
    this.leader = options.leader;
  }
}

/**
 * The shard was closed by a split or merge: nothing was written (definite), and the same records
 * sent to the children (after a fresh look at the shard map) will be taken.
 */
export class ShardSealedError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('ShardSealedException', message, { retriable: true, ...options });
  }

  static forChildren(children: readonly string[]): ShardSealedError {
    return new ShardSealedError(
      `The shard was closed by a split or merge; write to its children (${children.join(', ')}).`,
    );
  }
}

/**
 * An idempotent producer's batch was refused at apply because a newer epoch of the same producer
 * id has written to the shard: this producer is a zombie. Definite (the batch is not stored) and
 * not retriable: the application must stop this producer.
 */
export class ProducerFencedError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('ProducerFencedException', message, options);
  }
}

/**
 * An idempotent producer's batch was refused at apply because it does not continue the producer's
 * sequence on the shard (an earlier batch is missing, or it overlaps stored ones). Definite.
 */
export class OutOfOrderSequenceError extends RheosError {
  /**
   * The sequence number the shard expected next, where the server knows it (not carried over the
   * wire): a batch that starts below it and ends at or above it overlaps stored records.
   */
  readonly expectedSequence: number | undefined;

  constructor(
    message: string,
    options: RheosErrorOptions & { readonly expectedSequence?: number } = {},
  ) {
    super('OutOfOrderSequenceException', message, options);
    this.expectedSequence = options.expectedSequence;
  }
}

/**
 * A consumer-group worker acted on a lease it no longer holds (another worker took it, or the
 * lease counter moved on): as the KCL's leaseLost, the worker must stop processing the shard and
 * must not checkpoint it. Definite (nothing was changed) and not retriable.
 */
export class LeaseLostError extends RheosError {
  constructor(message: string, options: RheosErrorOptions = {}) {
    super('LeaseLostException', message, options);
  }
}

const constructors: Record<KinesisErrorName, new (m: string, o?: RheosErrorOptions) => RheosError> =
  {
    ResourceNotFoundException: ResourceNotFoundError,
    ResourceInUseException: ResourceInUseError,
    ValidationException: ValidationError,
    InvalidArgumentException: InvalidArgumentError,
    ProvisionedThroughputExceededException: ProvisionedThroughputExceededError,
    ExpiredIteratorException: ExpiredIteratorError,
    ExpiredNextTokenException: ExpiredNextTokenError,
    LimitExceededException: LimitExceededError,
    AccessDeniedException: AccessDeniedError,
    InternalFailureException: InternalFailureError,
    ServiceUnavailableException: ServiceUnavailableError,
    NotLeaderException: NotLeaderError,
    ShardSealedException: ShardSealedError,
    ProducerFencedException: ProducerFencedError,
    OutOfOrderSequenceException: OutOfOrderSequenceError,
    LeaseLostException: LeaseLostError,
  };

export function isKinesisErrorName(name: string): name is KinesisErrorName {
  return Object.hasOwn(constructors, name);
}

/** Rebuilds the error class for a name that crossed the wire. */
export function errorFromName(
  name: KinesisErrorName,
  message: string,
  options: RheosErrorOptions,
): RheosError {
  return new constructors[name](message, options);
}
