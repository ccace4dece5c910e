// Waiting for capacity: one FIFO line per key, the head waiting exactly as long as the limiter
// says (a timer, never polling), the others behind it, so no request is starved or woken in a herd.
import type { Decision, LimitOverride } from '../common/decision.js';
import { closedError, invalidArgument, outOfRange, type AcquireErrorCode } from '../common/errors.js';
import type { AcquireOptions, CallOptions, RateLimiter } from './rate-limiter.js';
import { checkInteger, checkKey, checkOptions, checkPositiveInteger } from '../common/validate.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { setLongTimeout, type LongTimer } from '../common/long-timer.js';

export type { AcquireOptions, AcquireErrorCode };

export class AcquireError extends Error {
  readonly code: AcquireErrorCode;
  constructor(message: string, code: AcquireErrorCode, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'AcquireError';
    this.code = code;
  }
}

/**
 * Why a wait could never end: the limiter denied with no time to retry. A cost above the limit is
 * the caller's to fix (a RangeError naming it); a cost within it that the limiter still says can
 * never pass (a RateLimiter of the user's own may say so) is an AcquireError of its own, never a
 * cost error whose numbers contradict it.
 */
function neverError(key: string, cost: number, limit: number): Error {
  if (cost > limit) return outOfRange('cost', `at most the limit (${limit})`, cost);
  return new AcquireError(`No capacity for '${key}' will ever come: the limiter denied cost ${cost}, within its limit of ${limit}, with no time to retry`, 'TOLLGATE_ACQUIRE_NEVER');
}

/** What a waiting line needs of its limiter. */
type Spender = Pick<RateLimiter, 'consume' | 'peek' | 'refund' | 'closed'>;

interface Waiter {
  readonly cost: number;
  /** The call's options (its tier), passed to consume and refund as given. */
  readonly options: CallOptions | undefined;
  readonly resolve: (d: Decision) => void;
  readonly reject: (e: unknown) => void;
  settled: boolean;
  timeout: ReturnType<typeof setTimeout> | undefined;
  cleanup: (() => void) | undefined;
}

interface Line {
  readonly waiters: Waiter[];
  /** The head's wait for capacity: one timer, in steps when longer than setTimeout holds. */
  retry: LongTimer | undefined;
  /** The head's ask is in flight. */
  busy: boolean;
  /**
   * Woken while the head's ask was in flight: the store may have decided before the room came
   * back, so a denial asks again at once rather than sleeping. NOTE: so a consume must not wake
   * its own key as it decides (a denied head would ask without end): allOf's undo of a denied
   * consume wakes nobody.
   */
  woken: boolean;
}

/**
 * The waiting lines of one limiter. NOTE: fairness is per process; processes sharing a table each
 * keep their own line.
 */
export class WaitingLines {
  readonly #spender: Spender;
  readonly #checkLimits: (options: CallOptions) => unknown;
  readonly #lines = new Map<string, Line>();
  readonly #recheckMs: number;
  #closed: unknown;

  /**
   * `checkLimits` throws as the limiter would for a call's per-policy limits (checked before
   * waiting). `recheckMs`: the longest a line's head sleeps before asking again, for tables other
   * processes also change (room they give back wakes nobody here); Infinity for the others.
   */
  constructor(spender: Spender, checkLimits: (options: CallOptions) => unknown, recheckMs = Infinity) {
    this.#spender = spender;
    this.#checkLimits = checkLimits;
    this.#recheckMs = recheckMs;
  }

  /**
   * Room may have come back for `key` (a refund, a reset here): its line's head asks again now, or,
   * when its ask is in flight, once more if that ask is denied.
   */
  wake(key: string): void {
    const line = this.#lines.get(key);
    if (line === undefined) return;
    if (line.busy) line.woken = true;
    if (line.retry === undefined) return;
    line.retry.clear();
    line.retry = undefined;
    this.#pump(key, line);
  }

  /** Resolves with the allowing Decision once `cost` has been spent for `key`. */
  acquire(key: string, options?: AcquireOptions): Promise<Decision> {
    let cost: number;
    let timeoutMs: number | undefined;
    let callOptions: CallOptions | undefined;
    let signal: AbortSignal | undefined;
    try {
      if (this.#closed === undefined && this.#spender.closed) this.close(closedError());
      if (this.#closed !== undefined) throw this.#closed;
      checkKey(key);
      const o = checkOptions(options) ?? {};
      checkKnownKeys(o, ['cost', 'limit', 'timeoutMs', 'signal'], 'acquire options');
      cost = o.cost === undefined ? 1 : checkPositiveInteger(o.cost, 'cost');
      timeoutMs = o.timeoutMs === undefined ? undefined : checkInteger(o.timeoutMs, 'timeoutMs', 0, 2 ** 31 - 1);
      // A tier is checked against the limiter's policies now, before any wait.
      if (o.limit !== undefined) {
        callOptions = { limit: o.limit as LimitOverride };
        this.#checkLimits(callOptions);
      }
      if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidArgument('signal', 'an AbortSignal', o.signal);
      signal = o.signal as AbortSignal | undefined;
    } catch (error) {
      return Promise.reject(error);
    }
    if (signal?.aborted) return Promise.reject(new AcquireError('The wait was aborted', 'TOLLGATE_ACQUIRE_ABORTED', signal.reason));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { cost, options: callOptions, resolve, reject, settled: false, timeout: undefined, cleanup: undefined };
      const giveUp = (error: AcquireError) => {
        if (waiter.settled) return;
        this.#leave(key, waiter);
        reject(error);
      };
      if (timeoutMs !== undefined) {
        waiter.timeout = setTimeout(() => giveUp(new AcquireError(`No capacity for '${key}' within ${timeoutMs} ms`, 'TOLLGATE_ACQUIRE_TIMEOUT')), timeoutMs);
      }
      if (signal !== undefined) {
        const onAbort = () => giveUp(new AcquireError('The wait was aborted', 'TOLLGATE_ACQUIRE_ABORTED', signal.reason));
        signal.addEventListener('abort', onAbort, { once: true });
        waiter.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      let line = this.#lines.get(key);
      if (line === undefined) {
        line = { waiters: [], retry: undefined, busy: false, woken: false };
        this.#lines.set(key, line);
      }
      line.waiters.push(waiter);
      if (line.waiters.length === 1) this.#pump(key, line);
    });
  }

  /**
   * Rejects every waiter with `error` at once and every later acquire() too; timers are cleared.
   * A decision still in flight is ignored when it lands (its limiter is gone).
   */
  close(error: unknown): void {
    if (this.#closed !== undefined) return;
    this.#closed = error;
    for (const line of this.#lines.values()) {
      line.retry?.clear();
      line.retry = undefined;
      for (const waiter of line.waiters) {
        if (waiter.settled) continue;
        this.#settle(waiter);
        waiter.reject(error);
      }
      line.waiters.length = 0;
    }
    this.#lines.clear();
  }

  #settle(waiter: Waiter): void {
    waiter.settled = true;
    if (waiter.timeout !== undefined) clearTimeout(waiter.timeout);
    waiter.cleanup?.();
  }

  #leave(key: string, waiter: Waiter): void {
    this.#settle(waiter);
    const line = this.#lines.get(key);
    if (line === undefined) return;
    const at = line.waiters.indexOf(waiter);
    if (at === -1) return;
    line.waiters.splice(at, 1);
    if (at === 0 && !line.busy) {
      // The head left: its timer was for its cost; the next waiter asks afresh.
      line.retry?.clear();
      line.retry = undefined;
      this.#pump(key, line);
    }
  }

  #pump(key: string, line: Line): void {
    if (this.#closed !== undefined) return;
    const head = line.waiters[0];
    if (head === undefined) {
      this.#lines.delete(key);
      return;
    }
    if (line.busy || line.retry !== undefined) return;
    line.busy = true;
    line.woken = false;
    let decision: Decision | Promise<Decision>;
    try {
      decision = this.#spender.consume(key, head.cost, head.options);
    } catch (error) {
      line.busy = false;
      this.#fail(key, line, head, error);
      return;
    }
    if (decision instanceof Promise) {
      decision.then(
        (d) => this.#decided(key, line, head, d),
        (error: unknown) => {
          line.busy = false;
          this.#fail(key, line, head, error);
        },
      );
    } else {
      this.#decided(key, line, head, decision);
    }
  }

  /** A refund that can neither throw nor leave a rejected promise behind (the limiter may be failing). */
  #giveBack(key: string, head: Waiter): void {
    try {
      const done = this.#spender.refund(key, head.cost, head.options);
      if (done instanceof Promise) done.catch(() => {});
    } catch {
      // Nothing to give back to: the limiter closed or failed; the spend is lost with it.
    }
  }

  #fail(key: string, line: Line, head: Waiter, error: unknown): void {
    if (!head.settled) {
      this.#settle(head);
      head.reject(error);
    }
    if (line.waiters[0] === head) line.waiters.shift();
    this.#pump(key, line);
  }

  #decided(key: string, line: Line, head: Waiter, d: Decision): void {
    line.busy = false;
    if (this.#closed !== undefined) return;
    if (head.settled) {
      // Aborted while the decision was in flight: give back what was taken for nobody.
      if (d.allowed) this.#giveBack(key, head);
      if (line.waiters[0] === head) line.waiters.shift();
      this.#pump(key, line);
      return;
    }
    if (d.allowed || !Number.isFinite(d.retryAfterMs)) {
      line.waiters.shift();
      this.#settle(head);
      if (d.allowed) head.resolve(d);
      else head.reject(neverError(key, head.cost, d.limit));
      this.#pump(key, line);
      return;
    }
    if (line.woken) this.#pump(key, line);
    else this.#sleep(key, line, d.retryAfterMs);
  }

  /** The head sleeps until `retryAfterMs`, looking in every recheckMs meanwhile. */
  #sleep(key: string, line: Line, retryAfterMs: number): void {
    const ms = Math.max(1, Math.min(retryAfterMs, this.#recheckMs));
    line.retry = setLongTimeout(() => {
      line.retry = undefined;
      if (ms >= retryAfterMs) this.#pump(key, line);
      else this.#recheck(key, line);
    }, ms);
  }

  /**
   * A look before the time the decision named: a peek, which counts nothing (a consume denied
   * every recheckMs would fill stats().denied and the heavy hitters); the head consumes once it fits.
   */
  #recheck(key: string, line: Line): void {
    const head = line.waiters[0];
    let peeked: Decision | Promise<Decision> | undefined;
    if (head !== undefined && this.#closed === undefined) {
      try {
        peeked = this.#spender.peek(key, head.cost, head.options);
      } catch {
        peeked = undefined; // the consume reports whatever is wrong
      }
    }
    if (peeked === undefined || peeked instanceof Promise || peeked.allowed || !Number.isFinite(peeked.retryAfterMs)) this.#pump(key, line);
    else this.#sleep(key, line, peeked.retryAfterMs);
  }
}
