// Several limits on one request (say 10 per second and 1,000 per hour), decided all-or-nothing.
import type { Decision } from './decision.js';
import { combineDecisions } from './decisions.js';
import { invalidArgument } from './errors.js';
import { Limiter } from './limiter.js';
import { WaitingLines, type AcquireOptions } from './client/acquire.js';

/** Anything that decides synchronously, as a Limiter or a CombinedLimiter does. */
export interface SyncLimiter {
  consume(key: string, cost?: number): Decision;
  peek(key: string, cost?: number): Decision;
  refund(key: string, amount?: number): void;
}

/**
 * Limits checked together. A request denied by one limit spends nothing from the others: each
 * is consumed in turn and, on a denial, what was spent is refunded, exactly (in one JS thread
 * nothing can run in between). NOTE: on a shared-memory table another process may briefly see
 * the refunded amount as spent, so it may be denied where it would have passed; it is never
 * allowed where it should not be.
 */
export class CombinedLimiter implements SyncLimiter {
  readonly limiters: readonly Limiter[];

  constructor(limiters: readonly Limiter[]) {
    if (!Array.isArray(limiters) || limiters.length === 0 || !limiters.every((l) => l instanceof Limiter)) {
      throw invalidArgument('limiters', 'a non-empty array of Limiter', limiters);
    }
    this.limiters = [...limiters];
  }

  consume(key: string, cost = 1): Decision {
    const decisions: Decision[] = [];
    for (let i = 0; i < this.limiters.length; i++) {
      const d = (this.limiters[i] as Limiter).consume(key, cost);
      decisions.push(d);
      if (!d.allowed) {
        for (let j = 0; j < i; j++) (this.limiters[j] as Limiter).refund(key, cost);
        // Report the others as they stand now, nothing spent.
        for (let j = 0; j < this.limiters.length; j++) {
          if (j !== i) decisions[j] = (this.limiters[j] as Limiter).peek(key, cost);
        }
        return combineDecisions(decisions);
      }
    }
    return combineDecisions(decisions);
  }

  peek(key: string, cost = 1): Decision {
    return combineDecisions(this.limiters.map((l) => l.peek(key, cost)));
  }

  refund(key: string, amount = 1): void {
    for (const l of this.limiters) l.refund(key, amount);
  }

  #lines: WaitingLines | undefined;

  /** Waits until every limit allows `cost` for `key`, then spends it; see Limiter.acquire. */
  acquire(key: string, options?: AcquireOptions): Promise<Decision> {
    this.#lines ??= new WaitingLines({ consume: (k, cost) => this.consume(k, cost), refund: (k, amount) => this.refund(k, amount) });
    return this.#lines.acquire(key, options);
  }

  tryConsume(key: string, cost = 1): boolean {
    return this.consume(key, cost).allowed;
  }
}

/** All of these limits must allow a request; see CombinedLimiter. */
export function allOf(...limiters: Limiter[]): CombinedLimiter {
  return new CombinedLimiter(limiters);
}
