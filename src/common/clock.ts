/**
 * Every read of time goes through a Clock so tests (and later the simulator) can control it.
 * `nowMs` is wall-clock time (arrival timestamps, iterator expiry); `monotonicMs` never goes
 * backwards and is used for rates and timeouts.
 */
export interface Clock {
  nowMs(): number;
  monotonicMs(): number;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
};

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  private wallMs: number;
  private monoMs = 0;

  constructor(startWallMs = 1_700_000_000_000) {
    this.wallMs = startWallMs;
  }

  nowMs(): number {
    return this.wallMs;
  }

  monotonicMs(): number {
    return this.monoMs;
  }

  advance(ms: number): void {
    if (ms < 0) throw new RangeError('a ManualClock cannot go backwards; use setWallMs');
    this.wallMs += ms;
    this.monoMs += ms;
  }

  /** Wall clocks can jump (NTP); monotonic time does not. */
  setWallMs(ms: number): void {
    this.wallMs = ms;
  }
}
