import { RheosError } from '../common/errors.js';
import { SerializationError } from './json-shapes.js';

/**
 * Errors in the AWS JSON 1.1 shape: `{"__type": name, "message": text}` with the name also in the
 * x-amzn-ErrorType header. Client errors are HTTP 400; faults of the server 500, or 503 when it is
 * unavailable, which the AWS SDKs retry.
 */

export interface HttpError {
  readonly status: number;
  readonly type: string;
  readonly message: string;
}

export class GatewayRequestError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export function toHttpError(error: unknown): HttpError {
  if (error instanceof GatewayRequestError)
    return { status: error.status, type: error.type, message: error.message };
  if (error instanceof SerializationError)
    return { status: 400, type: error.name, message: error.message };
  if (error instanceof RheosError) {
    const status =
      error.name === 'InternalFailureException'
        ? 500
        : error.name === 'ServiceUnavailableException'
          ? 503
          : 400;
    // Routing is the gateway's job; should a NotLeader slip through, AWS SDKs retry a 503.
    if (error.name === 'NotLeaderException') {
      return { status: 503, type: 'ServiceUnavailableException', message: error.message };
    }
    return { status, type: error.name, message: error.message };
  }
  return { status: 500, type: 'InternalFailureException', message: 'Internal service failure.' };
}
