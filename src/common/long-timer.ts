// A timer for any wait, however long: Node's timers hold at most 2^31 - 1 ms (about 24.8 days) and
// fire after 1 ms (with a TimeoutOverflowWarning) beyond it, which turned a month's wait into a
// busy poll. Longer waits are one timer, re-armed in steps until the whole wait has passed.

/** The longest delay setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A pending long timeout; clear() cancels whichever step is armed. */
export interface LongTimer {
  clear(): void;
}

/**
 * Calls `fn` once, after `ms` (at least 1). NOTE: counts the steps' delays, not a clock: a step
 * that fires late makes the wait longer, never shorter, which is what a waiter needs.
 */
export function setLongTimeout(fn: () => void, ms: number): LongTimer {
  let handle: ReturnType<typeof setTimeout>;
  const arm = (left: number) => {
    const step = Math.min(Math.max(1, left), MAX_TIMER_MS);
    handle = setTimeout(() => (left > step ? arm(left - step) : fn()), step);
  };
  arm(ms);
  return { clear: () => clearTimeout(handle) };
}
