import { backoffDelayMs, sleep, type BackoffOptions } from '../common/backoff.js';
import { NotLeaderError, RheosError, ServiceUnavailableError } from '../common/errors.js';
import { ChannelPool, FORWARDED_HEADER, unaryCall, type UnaryMethod } from '../common/grpc-call.js';
import { isDeadlineExceeded } from '../common/grpc-errors.js';

/**
 * Calls to the coordinator quorum from a broker, a coordinator forwarding to its leader, or the
 * CLI. Any coordinator may be asked; a NOT_LEADER answer with a hint is followed at once, one
 * without (an election is on) after a backoff, and an unreachable coordinator makes the call move
 * to the next one, but only when it surely did not act on the call or the call is idempotent.
 * Every other error is the caller's. Attempts are bounded, so a quorum that is gone fails the call
 * (ServiceUnavailable, retriable) instead of hanging it.
 */

export interface CoordinatorLinkOptions {
  readonly endpoints: readonly string[];
  readonly deadlineMs?: number;
  /** Attempts per call across coordinators (an election takes a few). */
  readonly maxAttempts?: number;
  readonly backoff?: BackoffOptions;
}

const MAX_ENDPOINTS = 16;

export class CoordinatorLink {
  private readonly channels = new ChannelPool();
  private readonly endpoints: string[];
  private preferred = 0;
  private closed = false;

  constructor(private readonly options: CoordinatorLinkOptions) {
    if (options.endpoints.length === 0) throw new Error('no coordinator endpoints');
    this.endpoints = [...options.endpoints];
  }

  /** The coordinator that answered last (where the next call goes first). */
  get current(): string {
    return this.endpoints[this.preferred] as string;
  }

  /**
   * `forwarded`: a coordinator passing a call on to its leader (which must not pass it on);
   * `endpoint`: where to try first (the leader it knows of).
   */
  async call<Req, Res>(
    method: UnaryMethod<Req, Res>,
    request: Req,
    idempotent: boolean,
    options: {
      readonly forwarded?: boolean;
      readonly endpoint?: string;
      /** Overrides of the link's per-attempt deadline and attempts, for this call. */
      readonly deadlineMs?: number;
      readonly maxAttempts?: number;
    } = {},
  ): Promise<Res> {
    const headers: Record<string, string> =
      options.forwarded === true ? { [FORWARDED_HEADER]: '1' } : {};
    const maxAttempts = options.maxAttempts ?? this.options.maxAttempts ?? 24;
    let endpoint = options.endpoint ?? this.current;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new ServiceUnavailableError('The coordinator link is closed.');
      try {
        const response = await unaryCall(
          this.channels.get(endpoint),
          method,
          request,
          options.deadlineMs ?? this.options.deadlineMs ?? 10_000,
          headers,
        );
        this.prefer(endpoint);
        return response;
      } catch (error) {
        if (!(error instanceof RheosError)) throw error;
        // A coordinator that never answered (a host that drops packets) is as good as gone for a
        // call that may be repeated.
        const unreachable =
          error.name === 'ServiceUnavailableException' || (idempotent && isDeadlineExceeded(error));
        const retry =
          error instanceof NotLeaderError || (unreachable && (idempotent || !error.indeterminate));
        if (retry && attempt + 1 >= maxAttempts && error instanceof NotLeaderError) {
          // A coordinator's hint names a coordinator, which means nothing to the caller's caller.
          throw new ServiceUnavailableError('No coordinator leader could be reached; retry.', {
            cause: error,
          });
        }
        if (!retry || attempt + 1 >= maxAttempts) throw error;
        if (error instanceof NotLeaderError && error.leader !== undefined) {
          endpoint = error.leader.endpoint;
          // A hint is followed at once; a second hop waits (the hint may be stale).
          if (attempt > 0) await sleep(backoffDelayMs(attempt, this.backoff()));
          continue;
        }
        endpoint = this.next(endpoint);
        // The next call starts there too, not at the coordinator that just failed.
        if (unreachable) this.prefer(endpoint);
        await sleep(backoffDelayMs(attempt, this.backoff()));
      }
    }
  }

  close(): void {
    this.closed = true;
    this.channels.close();
  }

  private backoff(): BackoffOptions {
    return this.options.backoff ?? { initialMs: 25, maxMs: 500 };
  }

  /** The next call goes first where this one was answered (a leader a hint led to, say). */
  private prefer(endpoint: string): void {
    let i = this.endpoints.indexOf(endpoint);
    // A leader learned from a hint joins the list (coordinators are few; the list stays small).
    if (i < 0 && this.endpoints.length < MAX_ENDPOINTS) i = this.endpoints.push(endpoint) - 1;
    if (i >= 0) this.preferred = i;
  }

  private next(endpoint: string): string {
    const i = this.endpoints.indexOf(endpoint);
    return this.endpoints[(i + 1) % this.endpoints.length] as string;
  }
}
