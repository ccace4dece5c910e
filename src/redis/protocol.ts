// RedisLimiter's wire format: the numbers and letters its scripts (lua.ts) and this process agree
// on, written once here and put into the Lua from these values (as PolicyCode is); the arguments
// of each call; and each reply read back, a batch's into Decisions.
import type { ManualClock } from '../common/clock.js';
import { combineDecisions, type Decision } from '../common/decision.js';
import { redisError, type RedisErrorCode } from '../common/errors.js';
import { PolicyCode, type PolicyParams } from '../common/policies.js';

/** The head of every script's reply, `{head, clock, ...}` (see DEADLINE_LUA). */
export const CallHead = {
  /** Redis found the call past its deadline and did nothing. */
  Late: 0,
  /** Redis ran the call; its results follow the clock. */
  Ran: 1,
} as const;

/** What a request of a detailed batch asks of DECIDE_LUA. */
export const Op = { Consume: 1, Peek: 2, Refund: 3 } as const;
export type Op = (typeof Op)[keyof typeof Op];

/** A request's status: the first number of its part of a decide reply. */
export const Status = {
  Denied: 0,
  Allowed: 1,
  /** A state key holds what no tollgate policy of this shape wrote: nothing was changed; the next number is that policy's 1-based index. */
  Foreign: 2,
  /** FIXED_WINDOW_LUA only: the key is blocked, nothing was counted; the request goes to DECIDE_LUA. */
  Blocked: 3,
} as const;

/** A batch's form, the argument after the policies. */
export const Form = {
  /** Every request is a plain consume (cost 1, the policies' own limits): nothing more is sent per request. */
  Plain: 'c',
  /** Each request follows: op, cost, and one limit override per policy (0 = the policy's own). */
  Detailed: 'x',
} as const;

/** A retryAfterMs that never comes: the cost is above the limit. */
export const NEVER = -1;

/** A resetMs (and retryAfterMs) FIXED_WINDOW_LUA leaves to the caller: the window end it said it knows. */
export const KNOWN_END = -2;

/** A character of FIXED_WINDOW_LUA's known-ends argument: this request's window end is known (any other: not). */
export const END_KNOWN = '1';
/** The character for a request whose window end is not known. */
export const END_UNKNOWN = '0';

/** In a lease reply: the granted units when the window key is foreign, the count when the key is blocked. */
export const LeaseReply = { Foreign: -1, Blocked: -1 } as const;

/** What a decide reply says about one request, and what its reading needs of the request. */
export interface DecideRequest {
  readonly op: Op;
  /** One per policy; 0 = the policy's own limit. */
  readonly overrides: readonly number[];
  /** Under one fixed window: the window end its batch told the script it knows, else 0. */
  knownEnd: number;
}

/** Where the decisions of a batch's reply go, request by request. */
export interface DecisionSink<R> {
  decided(request: R, decision: Decision): void;
  /** The request's state key of policy `index` (1-based) holds state of another shape. */
  foreign(request: R, index: number): void;
  /** Under one fixed window, a consume Redis allowed: its window ends at `end` by Redis' clock. */
  windowEnds(request: R, end: number): void;
}

/** What a lease call brought back (see LEASE_LUA). */
export interface LeaseGrant {
  /** Units granted (0: none); LeaseReply.Foreign when the window key holds something else. */
  readonly granted: number;
  /** The window's count after the grant; LeaseReply.Blocked when the key is blocked. */
  readonly count: number;
  /** Until the window ends (or the block, when blocked), by Redis when it ran. */
  readonly resetMs: number;
  /** The window's expiry (PEXPIRETIME), when units were granted. */
  readonly expiresAt: number;
}

/** The arguments and replies of one limiter's calls: its policies, and the clock its decisions are made at. */
/**
 * The error for a reply saying `stateKey` holds a value of another shape than the policy's (written
 * by another program, or another tool under this prefix): nothing was `what`.
 */
export function foreignStateError(stateKey: string, limiterName: string, what: 'counted' | 'refunded'): Error & { code: RedisErrorCode } {
  return redisError(
    `Redis key '${stateKey}' holds a value RedisLimiter '${limiterName}' did not write (another program's, or one from another tool under this prefix); nothing was ${what}. Delete the key, or give this limiter another name or prefix.`,
    'TOLLGATE_REDIS_STATE_MISMATCH',
  );
}

export class DecideProtocol {
  readonly #params: readonly PolicyParams[];
  /** What every script that decides is told after `now`: the policy count, the length of policy 1's suffix, the policies. */
  readonly #head: readonly string[];
  readonly #clock: ManualClock | undefined;
  /** A request's part of a reply: status, remaining, reset, retry with one policy; the status and 5 per policy with several. */
  readonly #width: number;
  readonly #firstLimit: number;
  /** One fixedWindow policy: plain batches go to FIXED_WINDOW_LUA, whose replies may say KNOWN_END. */
  readonly oneFixedWindow: boolean;

  constructor(params: readonly PolicyParams[], firstSuffixLength: number, clock: ManualClock | undefined) {
    this.#params = params;
    // The script finds a request's base (its field in the blocks marker) by cutting policy 1's suffix off its first key.
    const policies = params.flatMap((p) => [p.code, p.limit, p.windowMs, p.rateTokens, p.rateIntervalMs].map(String));
    this.#head = [String(params.length), String(firstSuffixLength), ...policies];
    this.#clock = clock;
    this.#width = params.length === 1 ? 4 : 1 + 5 * params.length;
    const first = params[0] as PolicyParams;
    this.#firstLimit = first.limit;
    this.oneFixedWindow = params.length === 1 && first.code === PolicyCode.FixedWindow;
  }

  /** The decision time the scripts are told: the test clock's, else '' (Redis' own clock). */
  #scriptNow(): string {
    return this.#clock === undefined ? '' : String(this.#clock.now());
  }

  /**
   * ARGV after the deadline for a batch of DECIDE_LUA (or FIXED_WINDOW_LUA): plain, or detailed
   * with each request appended by addRequest.
   */
  batchArgs(plain: boolean): string[] {
    return [this.#scriptNow(), ...this.#head, plain ? Form.Plain : Form.Detailed];
  }

  /** Appends one request to a detailed batch's arguments. */
  addRequest(args: string[], op: Op, cost: number, overrides: readonly number[]): void {
    args.push(String(op), String(cost));
    for (const limit of overrides) args.push(String(limit));
  }

  /** A refund of `amount` on every policy: a detailed batch of one. */
  refundArgs(amount: number, overrides: readonly number[]): string[] {
    const args = this.batchArgs(false);
    this.addRequest(args, Op.Refund, amount, overrides);
    return args;
  }

  /** RESET_LUA's arguments after the deadline: the key's base, and the time its states' freshness is read at. */
  resetArgs(base: string): string[] {
    return [base, this.#scriptNow()];
  }

  /** The request's 1-based policy index whose state is foreign (a refund's reply), else 0. */
  refundForeign(reply: readonly unknown[]): number {
    return Number(reply[2]) === Status.Foreign ? Number(reply[3]) : 0;
  }

  /** LEASE_LUA's arguments after the deadline (one fixed window). */
  leaseArgs(want: number, share: number, cost: number, base: string): string[] {
    const p = this.#params[0] as PolicyParams;
    return [String(want), String(p.limit), String(p.windowMs), String(share), String(cost), base];
  }

  readLease(reply: readonly unknown[]): LeaseGrant {
    return { granted: Number(reply[2]), count: Number(reply[3]), resetMs: Number(reply[4]), expiresAt: Number(reply[5]) };
  }

  /**
   * Reads a batch's reply (DECIDE_LUA's or FIXED_WINDOW_LUA's) request by request into `sink`;
   * returns the requests FIXED_WINDOW_LUA sent back (blocked: nothing was counted for them), if any.
   */
  readBatch<R extends DecideRequest>(reply: readonly unknown[], batch: readonly R[], sink: DecisionSink<R>): R[] | undefined {
    let resend: R[] | undefined;
    const width = this.#width;
    const single = width === 4;
    const clock = Number(reply[1]);
    for (let r = 0; r < batch.length; r++) {
      const p = batch[r] as R;
      const at = 2 + r * width;
      const status = Number(reply[at]);
      if (status === Status.Foreign) {
        sink.foreign(p, Number(reply[at + 1]));
        continue;
      }
      if (status === Status.Blocked) {
        resend ??= [];
        resend.push(p);
        continue;
      }
      if (single) {
        // status (allowed), remaining, reset, retry; the limit is the call's own or the policy's.
        let reset = Number(reply[at + 2]);
        let retry = Number(reply[at + 3]);
        if (this.oneFixedWindow) {
          // The window end this process said it knows. Else learn it from a consume Redis
          // allowed: the key then holds a window with that TTL (a peek or a denial may show a
          // window that does not exist, or a block's end).
          if (reset === KNOWN_END) {
            reset = p.knownEnd - clock;
            if (retry === KNOWN_END) retry = reset;
          } else if (reset > 0 && status === Status.Allowed && p.op === Op.Consume) sink.windowEnds(p, clock + reset);
        }
        sink.decided(p, {
          allowed: status === Status.Allowed,
          limit: p.overrides[0] || this.#firstLimit,
          remaining: Number(reply[at + 1]),
          resetMs: reset,
          // Negative: NEVER.
          retryAfterMs: retry < 0 ? Infinity : retry,
        });
        continue;
      }
      const decisions: Decision[] = [];
      for (let i = 0; i < this.#params.length; i++) {
        const from = at + 1 + i * 5;
        const retry = Number(reply[from + 4]);
        decisions.push({
          allowed: Number(reply[from]) === Status.Allowed,
          limit: Number(reply[from + 1]),
          remaining: Number(reply[from + 2]),
          resetMs: Number(reply[from + 3]),
          retryAfterMs: retry < 0 ? Infinity : retry,
        });
      }
      // The script decided all-or-nothing, so every policy's own verdict already agrees with it.
      sink.decided(p, combineDecisions(decisions));
    }
    return resend;
  }
}
