// Several limits on one request (say 10 per second and 1,000 per hour), decided all-or-nothing.
import { combineDecisions, type Decision } from '../common/decision.js';
import { invalidArgument } from '../common/errors.js';
import { LimiterBase } from './limiter-base.js';
import { Limiter } from './limiter.js';
import type { CallOptions, CombinedLimiterStats } from './rate-limiter.js';

/**
 * Limits checked together. A request denied by one limit spends nothing from the others: each
 * is consumed in turn and, on a denial, what was spent is refunded, exactly (in one JS thread
 * nothing can run in between). NOTE: on a shared-memory table another process may briefly see
 * the refunded amount as spent, so it may be denied where it would have passed; it is never
 * allowed where it should not be.
 */
export class CombinedLimiter extends LimiterBase {
  readonly limiters: readonly Limiter[];
  /**
   * True while a call of this composite runs on its limiters: what they give back meanwhile wakes
   * nobody here (refund and reset wake once, when every limit has it back; a denied consume only
   * undoes its own spend).
   */
  #ownCall = false;
  /** Removes what waitingStarted() hooked on the limiters (at close). */
  readonly #unwatch: (() => void)[] = [];

  /** Named after its limiters, joined with '+'. */
  constructor(limiters: readonly Limiter[]) {
    if (!Array.isArray(limiters) || limiters.length === 0) throw invalidArgument('limiters', 'at least one Limiter', limiters);
    const notLimiter = limiters.findIndex((l) => !(l instanceof Limiter));
    if (notLimiter >= 0) throw invalidArgument(`limiters[${notLimiter}]`, 'a Limiter', limiters[notLimiter]);
    // The same limiter twice would spend twice on one table.
    const again = limiters.findIndex((l, i) => limiters.indexOf(l) !== i);
    if (again >= 0) throw invalidArgument(`limiters[${again}]`, `a Limiter not already given (it is limiters[${limiters.indexOf(limiters[again] as Limiter)}])`, limiters[again]);
    super(
      limiters.map((l) => l.name).join('+'),
      limiters.map((l) => l.policy),
    );
    this.limiters = Object.freeze([...limiters]);
  }

  /** Closed by close(), or by closing any of its limiters (it cannot decide without them). */
  override get closed(): boolean {
    return super.closed || this.limiters.some((l) => l.closed);
  }

  /** Runs `call` as this composite's own (see #ownCall). */
  #own<T>(call: () => T): T {
    const outer = this.#ownCall;
    this.#ownCall = true;
    try {
      return call();
    } finally {
      this.#ownCall = outer;
    }
  }

  /** The call options of each limiter, validated before anything is spent. */
  #options(options: CallOptions | undefined): (CallOptions | undefined)[] | undefined {
    return this.callLimits(options)?.map((limit) => (limit === undefined ? undefined : { limit }));
  }

  /**
   * Spends `cost` from every limit if all allow it. `options.limit` serves a tier: a number
   * replaces the first limit's, an array gives one per limit.
   */
  consume(key: string, cost = 1, options?: CallOptions): Decision {
    this.live();
    const perLimit = this.#options(options);
    const decisions: Decision[] = [];
    for (let i = 0; i < this.limiters.length; i++) {
      const d = (this.limiters[i] as Limiter).consume(key, cost, perLimit?.[i]);
      decisions.push(d);
      if (!d.allowed) {
        // Undoing its own spend gives this composite's waiters no room: the only give-back a consume makes.
        this.#own(() => {
          for (let j = 0; j < i; j++) (this.limiters[j] as Limiter).refund(key, cost, perLimit?.[j]);
        });
        // Report the others as they stand now, nothing spent.
        for (let j = 0; j < this.limiters.length; j++) {
          if (j !== i) decisions[j] = (this.limiters[j] as Limiter).peek(key, cost, perLimit?.[j]);
        }
        return combineDecisions(decisions);
      }
    }
    return combineDecisions(decisions);
  }

  tryConsume(key: string, cost = 1, options?: CallOptions): boolean {
    return this.consume(key, cost, options).allowed;
  }

  peek(key: string, cost = 1, options?: CallOptions): Decision {
    this.live();
    const perLimit = this.#options(options);
    return combineDecisions(this.limiters.map((l, i) => l.peek(key, cost, perLimit?.[i])));
  }

  /** Gives `amount` back to every limit, then wakes the key's waiters here (see LimiterBase.givingBack). */
  refund(key: string, amount = 1, options?: CallOptions): void {
    this.live();
    const perLimit = this.#options(options);
    this.givingBack(key, () =>
      this.#own(() => {
        for (const [i, l] of this.limiters.entries()) l.refund(key, amount, perLimit?.[i]);
      }),
    );
  }

  /** Blocks the key in every limiter; false if any had no room (a full table in 'refuse' mode). */
  block(key: string, durationMs: number): boolean {
    this.live();
    let all = true;
    for (const l of this.limiters) all = l.block(key, durationMs) && all;
    return all;
  }

  /** Forgets the key in every limiter, waking its waiters here; whether any held it. */
  reset(key: string): boolean {
    this.live();
    return this.givingBack(key, () => this.#own(() => this.limiters.reduce((any, l) => l.reset(key) || any, false)));
  }

  /**
   * Once someone waits: closing any of the limiters closes this composite, rejecting its waiters
   * at once, and room one of them gives back (a refund or reset called on it directly) wakes this
   * composite's waiters on the key too.
   */
  protected override waitingStarted(): void {
    if (this.closed) {
      this.close();
      return;
    }
    for (const limiter of this.limiters) {
      this.#unwatch.push(
        limiter.onClose(() => this.close()),
        limiter.onRoomBack((key) => {
          if (!this.#ownCall) this.wakeWaiters(key);
        }),
      );
    }
  }

  stats(): CombinedLimiterStats {
    return { name: this.name, store: 'combined', limiters: this.limiters.map((l) => l.stats()) };
  }

  /** Lets go of its limiters' listeners; the limiters themselves stay open (they are yours to close). */
  protected release(): void {
    for (const remove of this.#unwatch.splice(0)) remove();
  }
}

/** All of these limits must allow a request; see CombinedLimiter. */
export function allOf(...limiters: Limiter[]): CombinedLimiter {
  return new CombinedLimiter(limiters);
}
