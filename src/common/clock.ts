// Time for the limiter: the host's monotonic clock, or a manual clock that tests set.
import { invalidArgument, outOfRange } from './errors.js';
import { checkInteger } from './validate.js';
import { MAX_CLOCK_MS } from './constants.js';

/** The engines' view of a ManualClock's time; not exported from the package. */
// eslint-disable-next-line prefer-const -- assigned once, by ManualClock's static block
export let clockBuffer: (clock: ManualClock) => Float64Array;

/**
 * A clock that moves only when told to. Both engines read its one Float64Array slot directly, so
 * setting it costs no boundary crossing and an unused manual clock costs nothing.
 * NOTE: time never goes backwards; `set` to an earlier time throws a RangeError, and so does a
 * time past MAX_CLOCK_MS (2^52 ms), where the engines could no longer agree exactly.
 */
export class ManualClock {
  // Private, so that only set/advance (which validate) ever change it: the engines read it as is.
  readonly #buffer = new Float64Array(1);

  constructor(startMs = 0) {
    this.#buffer[0] = checkInteger(startMs, 'startMs', 0, MAX_CLOCK_MS);
  }

  now(): number {
    return this.#buffer[0] as number;
  }

  set(ms: number): void {
    checkInteger(ms, 'ms', 0, MAX_CLOCK_MS);
    if (ms < this.now()) throw outOfRange('ms', `a time at or after ${this.now()}`, ms);
    this.#buffer[0] = ms;
  }

  advance(ms: number): void {
    checkInteger(ms, 'ms', 0, MAX_CLOCK_MS - this.now());
    this.#buffer[0] = this.now() + ms;
  }

  static {
    clockBuffer = (clock) => clock.#buffer;
  }
}

/** The option `name` as a ManualClock, or undefined; anything else is refused. */
export function checkClock(value: unknown, name = 'clock'): ManualClock | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof ManualClock)) throw invalidArgument(name, 'a ManualClock', value);
  return value;
}

/**
 * CLOCK_MONOTONIC's reading (process.hrtime) at performance.now()'s zero, in ms. Both read the
 * same clock, so the difference is constant; it is taken from the tightest of a few bracketed
 * samples. A single unbracketed pair was wrong by however long its second read took: the first
 * performance.now() of a process can take milliseconds (its module loads), and processes on one
 * shared table or place store then disagreed on the time by that much.
 */
function hrtimeOrigin(): number {
  performance.now();
  let tightest = Infinity;
  let origin = 0;
  for (let i = 0; i < 5; i++) {
    const before = performance.now();
    const hrMs = Number(process.hrtime.bigint()) / 1e6;
    const after = performance.now();
    if (after - before < tightest) {
      tightest = after - before;
      origin = hrMs - (before + after) / 2;
    }
  }
  return origin;
}

const hrtimeOriginMs = hrtimeOrigin();

/** Monotonic milliseconds on the same origin as the native engine (CLOCK_MONOTONIC). */
export function monotonicMs(): number {
  return Math.floor(hrtimeOriginMs + performance.now());
}
