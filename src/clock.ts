// Time for the limiter: the host's monotonic clock, or a manual clock that tests set.
import { outOfRange } from './errors.js';
import { checkInteger } from './validate.js';

/**
 * A clock that moves only when told to. Both engines read its one Float64Array slot directly, so
 * setting it costs no boundary crossing and an unused manual clock costs nothing.
 * NOTE: time never goes backwards; `set` to an earlier time throws a RangeError.
 */
export class ManualClock {
  /** Read by the engines; change it only through set/advance. */
  readonly buffer = new Float64Array(1);

  constructor(startMs = 0) {
    this.buffer[0] = checkInteger(startMs, 'startMs', 0, Number.MAX_SAFE_INTEGER);
  }

  now(): number {
    return this.buffer[0] as number;
  }

  set(ms: number): void {
    checkInteger(ms, 'ms', 0, Number.MAX_SAFE_INTEGER);
    if (ms < this.now()) throw outOfRange('ms', `a time at or after ${this.now()}`, ms);
    this.buffer[0] = ms;
  }

  advance(ms: number): void {
    checkInteger(ms, 'ms', 0, Number.MAX_SAFE_INTEGER - this.now());
    this.buffer[0] = this.now() + ms;
  }
}

const hrtimeOriginMs = Number(process.hrtime.bigint() / 1_000_000n) - performance.now();

/** Monotonic milliseconds on the same origin as the native engine (CLOCK_MONOTONIC). */
export function monotonicMs(): number {
  return Math.floor(hrtimeOriginMs + performance.now());
}
