// The per-key algorithm state, named per policy kind as in native/core/counter_state.h (the terms
// and their invariants: docs/internals.md, "The algorithms' state"), and how a slot's three numbers
// hold it.
import { PolicyCode } from '../../common/policies.js';

// Each state reads itself from and writes itself into a slot's three numbers (from[at] to
// from[at + 2]), in the order of its fields; a fixed window's or GCRA's third is 0. A table holds one
// kind, so each of these small methods is what a call site sees, and is inlined there.

/** PolicyCode.FixedWindow (public fixedWindow). */
export class FixedWindowState {
  readonly kind = PolicyCode.FixedWindow;
  /** ms; the window ends at windowStart + windowMs. */
  windowStart = 0;
  /** Units allowed in the window, at most the limit. */
  count = 0;

  read(from: Float64Array, at: number): void {
    this.windowStart = from[at] as number;
    this.count = from[at + 1] as number;
  }

  write(to: Float64Array, at: number): void {
    to[at] = this.windowStart;
    to[at + 1] = this.count;
    to[at + 2] = 0;
  }
}

/** PolicyCode.SlidingWindow (public slidingWindow). */
export class SlidingWindowState {
  readonly kind = PolicyCode.SlidingWindow;
  /** ms, a multiple of windowMs: the window `count` belongs to. */
  windowStart = 0;
  /** Units allowed in that window. */
  count = 0;
  /** Units allowed in the window before it. */
  previousCount = 0;

  read(from: Float64Array, at: number): void {
    this.windowStart = from[at] as number;
    this.count = from[at + 1] as number;
    this.previousCount = from[at + 2] as number;
  }

  write(to: Float64Array, at: number): void {
    to[at] = this.windowStart;
    to[at + 1] = this.count;
    to[at + 2] = this.previousCount;
  }
}

/** PolicyCode.TokenBucket (public tokenBucket). */
export class TokenBucketState {
  readonly kind = PolicyCode.TokenBucket;
  /** Whole tokens as of refilledAt, at most the capacity. */
  tokens = 0;
  /** ms up to which refills are counted; never goes back. */
  refilledAt = 0;
  /** Toward the next token, in 1/rateIntervalMs of a token: below rateIntervalMs. */
  credit = 0;

  read(from: Float64Array, at: number): void {
    this.tokens = from[at] as number;
    this.refilledAt = from[at + 1] as number;
    this.credit = from[at + 2] as number;
  }

  write(to: Float64Array, at: number): void {
    to[at] = this.tokens;
    to[at + 1] = this.refilledAt;
    to[at + 2] = this.credit;
  }
}

/** PolicyCode.Gcra (public leakyBucket). */
export class GcraState {
  readonly kind = PolicyCode.Gcra;
  /** ms, whole part of the theoretical arrival time. */
  tat = 0;
  /** In 1/rateTokens ms: below rateTokens. */
  tatFraction = 0;

  read(from: Float64Array, at: number): void {
    this.tat = from[at] as number;
    this.tatFraction = from[at + 1] as number;
  }

  write(to: Float64Array, at: number): void {
    to[at] = this.tat;
    to[at + 1] = this.tatFraction;
    to[at + 2] = 0;
  }
}

/** One key's state; `kind` is its table's policy code, the same for every key of a table. */
export type CounterState = FixedWindowState | SlidingWindowState | TokenBucketState | GcraState;

/** A state object for a table of policy `code`, to be filled by freshState or read() and reused. */
export function newState(code: PolicyCode): CounterState {
  switch (code) {
    case PolicyCode.FixedWindow:
      return new FixedWindowState();
    case PolicyCode.SlidingWindow:
      return new SlidingWindowState();
    case PolicyCode.TokenBucket:
      return new TokenBucketState();
    case PolicyCode.Gcra:
      return new GcraState();
  }
}
