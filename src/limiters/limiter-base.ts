// What every limiter shares, written once: its name and policies, the closed state and what closing
// does (waiters rejected, listeners told), the check of a call's per-policy limits (tiers), and
// acquire() with its waiting lines, woken when room is given back. A limiter writes only its
// decisions and what it releases.
import type { Decision } from '../common/decision.js';
import { closedError, invalidArgument } from '../common/errors.js';
import { policyParams, type Policy } from '../common/policies.js';
import { checkInteger, splitLimits } from '../common/validate.js';
import { isPromise, type AcquireOptions, type CallOptions, type MaybePromise, type RateLimiter, type RateLimiterStats } from './rate-limiter.js';
import { WaitingLines } from './waiting-lines.js';

/** A limiter's name: a non-empty string of at most 256 characters; `fallback` when none is given (undefined: required). */
export function checkLimiterName(value: unknown, fallback: string | undefined, why = ''): string {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) throw invalidArgument('name', `a string of 1 to 256 characters${why}`, value);
  return value;
}

export abstract class LimiterBase implements RateLimiter {
  /** How metrics, logs and headers label this limiter. */
  readonly name: string;
  /** The policies decided, all-or-nothing, in order. */
  readonly policies: readonly Policy[];
  /** Per policy, the largest per-call limit that keeps its arithmetic exact. */
  readonly #maxLimits: readonly number[];
  #closed = false;
  #lines: WaitingLines | undefined;
  #closeListeners: Set<() => void> | undefined;
  #roomListeners: Set<(key: string) => void> | undefined;

  protected constructor(name: string, policies: readonly Policy[]) {
    this.name = name;
    this.policies = Object.freeze([...policies]);
    this.#maxLimits = policies.map((p) => policyParams(p).maxLimit);
  }

  abstract consume(key: string, cost?: number, options?: CallOptions): MaybePromise<Decision>;
  abstract peek(key: string, cost?: number, options?: CallOptions): MaybePromise<Decision>;
  abstract refund(key: string, amount?: number, options?: CallOptions): MaybePromise<void>;
  abstract block(key: string, durationMs: number): MaybePromise<boolean>;
  abstract reset(key: string): MaybePromise<boolean>;
  abstract stats(): RateLimiterStats;

  /** Frees what this limiter holds (a table, a deny cache, pending calls); called once, by close(). */
  protected abstract release(): void;

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Throws TOLLGATE_CLOSED once closed. */
  protected live(): void {
    if (this.#closed) throw closedError();
  }

  /**
   * The call's limit for each policy (undefined: that policy's own), each checked against its
   * policy; undefined when the call asks for none. A number is the first policy's.
   */
  protected callLimits(options: CallOptions | undefined): (number | undefined)[] | undefined {
    const limits = splitLimits(options, this.#maxLimits.length);
    if (limits === undefined) return undefined;
    const array = limits.length > 1 || Array.isArray((options as CallOptions).limit);
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i];
      if (limit !== undefined) checkInteger(limit, array ? `limit[${i}]` : 'limit', 1, this.#maxLimits[i] as number);
    }
    return limits;
  }

  /**
   * Waits until `cost` can be spent for `key`, then spends it: resolves with the allowing
   * Decision. Waiters on one key are served first come, first served, the first waiting exactly
   * the time the limiter names (one timer per key, no polling), or until room is given back for
   * the key in this process (see givingBack). Rejects with code TOLLGATE_ACQUIRE_TIMEOUT or
   * TOLLGATE_ACQUIRE_ABORTED, having spent nothing, with a RangeError when the cost can never fit,
   * and with TOLLGATE_CLOSED at once when the limiter closes.
   */
  acquire(key: string, options?: AcquireOptions): Promise<Decision> {
    if (this.#lines === undefined) {
      this.#lines = new WaitingLines(this, (o) => this.callLimits(o), this.waitRecheckMs);
      this.waitingStarted();
    }
    return this.#lines.acquire(key, options);
  }

  /** Called when the first acquire() makes the waiting lines (a composite watches its parts from then on). */
  protected waitingStarted(): void {}

  /** The longest a waiter sleeps before asking again (for state other processes change too); Infinity: as long as the decision says. */
  protected get waitRecheckMs(): number {
    return Infinity;
  }

  /**
   * Runs `giveBack`, a call that gives room back for `key` (a refund, a reset, units handed back to
   * the store), then wakes the key's waiters here and tells onRoomBack() listeners: when it returns,
   * or when the promise it returns settles (the store has answered). Every method that gives room
   * back goes through here, so no waiter sleeps past room this process gave back.
   * NOTE: it wakes on a failure too. A give-back that failed part way (one limit of several) or
   * timed out may have taken effect, and a waiter woken for nothing costs one more ask, which
   * spends nothing when denied, or meets the error now rather than after its sleep.
   */
  protected givingBack<T>(key: string, giveBack: () => T): T {
    let result: T;
    try {
      result = giveBack();
    } catch (error) {
      this.wakeWaiters(key);
      throw error;
    }
    if (!isPromise(result as MaybePromise<unknown>)) {
      this.wakeWaiters(key);
      return result;
    }
    return (result as Promise<unknown>).finally(() => this.wakeWaiters(key)) as T;
  }

  /**
   * Room may have come back for `key`: its waiters' head asks again now, and onRoomBack() listeners
   * are told. Through givingBack() for this limiter's own give-backs; directly only for room given
   * back elsewhere (a limiter this one is made of). Nothing once closed.
   */
  protected wakeWaiters(key: string): void {
    this.#lines?.wake(key);
    for (const listener of this.#roomListeners ?? []) listener(key);
  }

  /** @internal Runs `listener` with the key each time room may have come back for it here, until closed; returns the removal. */
  onRoomBack(listener: (key: string) => void): () => void {
    if (this.#closed) return () => {};
    this.#roomListeners ??= new Set();
    const listeners = this.#roomListeners;
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /**
   * Stops deciding: release(), then every waiter in acquire() rejects at once with code
   * TOLLGATE_CLOSED and close listeners run; close() again is a no-op.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.release();
    this.#lines?.close(closedError());
    this.#roomListeners = undefined;
    const listeners = this.#closeListeners;
    this.#closeListeners = undefined;
    for (const listener of listeners ?? []) listener();
  }

  /** @internal Runs `listener` once when this limiter closes (at once if it has); returns the removal. */
  onClose(listener: () => void): () => void {
    if (this.#closed) {
      listener();
      return () => {};
    }
    this.#closeListeners ??= new Set();
    const listeners = this.#closeListeners;
    listeners.add(listener);
    return () => listeners.delete(listener);
  }
}
