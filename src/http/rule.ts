// One rate-limit rule for HTTP requests, framework-free: which key, what cost, which limiter,
// and what the response must carry. The express/node and fastify adapters apply its outcome.
import type { IncomingMessage } from 'node:http';
import { isUncounted, type Decision, type LimitOverride } from '../common/decision.js';
import { storedKey } from '../common/keys.js';
import { isPromise, type MaybePromise, type RateLimiter } from '../limiters/rate-limiter.js';
import { RateLimitHeaders, RETRY_AFTER, type HeaderSink } from './headers.js';
import { rateLimitInfo, type RateLimitInfo } from './rate-limit-info.js';
import { refusalAnswer, type RefusalAnswer, type RefusalConfig } from './refusal.js';
import { requestKeys, type RequestKeys } from './request-key.js';
import { parseRateLimitOptions, type FrameworkAddress, type RateLimitEvent, type RateLimitOptions, type RuleConfig } from './rule-options.js';

export type { RateLimitInfo } from './rate-limit-info.js';
export { RULE_OPTIONS, type FrameworkAddress, type RateLimitEvent, type RateLimitOptions } from './rule-options.js';

/** A request the rule does not limit (skip, allowList, or no key with onMissingKey 'allow'). */
export const SKIPPED = Object.freeze({ skipped: true as const });
/** A request with no usable key and onMissingKey 'reject': answer 400. */
export const MISSING_KEY = Object.freeze({ missingKey: true as const });

/** A request the limiter decided on: the decision, and what giving its cost back would need. */
export class Counted {
  constructor(
    readonly decision: Decision,
    /** The key as the limiter holds it (hashed past 256 characters). */
    readonly key: string,
    readonly cost: number,
    /** The request's per-policy limits (its tier), as given to the limiter; undefined for the policies' own. */
    readonly limit: LimitOverride | undefined,
    /** The per-policy limits the headers list (the tier cut to the policies), or undefined. */
    readonly tiers: readonly (number | undefined)[] | undefined,
  ) {}
}

/** What a rule concluded for one request: Counted, SKIPPED or MISSING_KEY. */
export type RuleOutcome = Counted | typeof SKIPPED | typeof MISSING_KEY;

/** What is left for a framework to do once the rule has answered: let the request go on, answer 400, or refuse it (429 or the handler). */
export type RuleResponse = 'pass' | 'missing-key' | Refusal;
/** A refused request: its headers, Retry-After included, are written; answer 429 or call the handler. */
export interface Refusal {
  readonly refused: Decision;
}

/** A compiled rule: options validated once, then `run` per request, then `respond`. */
export class RateLimitRule<Req> {
  readonly #limiter: RateLimiter;
  readonly #policyCount: number;
  readonly #key: RequestKeys<Req>['key'];
  readonly #address: RequestKeys<Req>['address'];
  readonly #onMissing: 'reject' | 'allow' | 'ip';
  readonly #cost: number | ((req: Req) => MaybePromise<number>);
  readonly #limit: ((req: Req) => LimitOverride | undefined) | undefined;
  readonly #skip: ((req: Req) => MaybePromise<boolean>) | undefined;
  readonly #allowList: RuleConfig<Req>['allowList'];
  readonly #dryRun: boolean;
  /** The response headers of this rule; empty when `headers: false`. */
  readonly headers: RateLimitHeaders;
  /** The request headers (lower-case) this rule reads from `raw.headers` (see RequestKeys). */
  readonly requestHeaders: readonly string[];
  readonly #onAllow: ((event: RateLimitEvent<Req>) => void) | undefined;
  readonly #onDeny: ((event: RateLimitEvent<Req>) => void) | undefined;
  readonly #skipSuccessful: boolean;
  readonly #skipFailed: boolean;
  readonly #refusal: RefusalConfig;

  /**
   * `frameworkAddress`: the client's address as the app's proxy setting names it; `frameworkKeys`:
   * the options a framework's middleware takes besides the rule's own (its `handler`...).
   */
  constructor(options: RateLimitOptions<Req>, frameworkAddress?: FrameworkAddress<Req>, frameworkKeys: readonly string[] = ['handler']) {
    const c = parseRateLimitOptions<Req>(options, frameworkKeys);
    this.#limiter = c.limiter;
    this.#policyCount = c.limiter.policies.length;
    const keys = requestKeys(c, frameworkAddress);
    this.#key = keys.key;
    this.#address = keys.address;
    this.requestHeaders = keys.requestHeaders;
    this.#onMissing = c.onMissingKey;
    this.#cost = c.cost;
    this.#limit = c.limit;
    this.#skip = c.skip;
    this.#allowList = c.allowList;
    this.#dryRun = c.dryRun;
    this.headers = new RateLimitHeaders(c.headers, c.limiter.policies, c.names);
    this.#onAllow = c.onAllow;
    this.#onDeny = c.onDeny;
    this.#skipSuccessful = c.skipSuccessfulRequests;
    this.#skipFailed = c.skipFailedRequests;
    this.#refusal = c.refusal;
  }

  /** The verdict for one request; synchronous unless the limiter or an option function is asynchronous. */
  run(raw: IncomingMessage, req: Req): MaybePromise<RuleOutcome> {
    if (this.#allowList !== undefined) {
      const address = this.#address(raw, req);
      if (address !== undefined && this.#allowList.check(address, address.includes(':') ? 'ipv6' : 'ipv4')) return SKIPPED;
    }
    if (this.#skip !== undefined) {
      const skip = this.#skip(req);
      if (isPromise(skip)) return skip.then((s) => (s ? SKIPPED : this.#keyed(raw, req)));
      if (skip) return SKIPPED;
    }
    return this.#keyed(raw, req);
  }

  /**
   * The steps every framework takes with a verdict, through its own way of setting a header: the
   * rate-limit headers for a counted decision, Retry-After for a refused one. Says what is left.
   */
  respond<T>(verdict: RuleOutcome, target: T, sink: HeaderSink<T>): RuleResponse {
    const decision = decisionOf(verdict);
    if (decision === undefined) return verdict === MISSING_KEY ? 'missing-key' : 'pass';
    // A decision onError made (the store down) counted nothing: no quota to describe. Only those
    // have resetMs 0 with a limit to reset, so the WeakSet is asked only then.
    if (decision.resetMs !== 0 || !isUncounted(decision)) this.headers.write(target, sink, decision, (verdict as Counted).tiers);
    if (decision.allowed || this.#dryRun) return 'pass';
    if (Number.isFinite(decision.retryAfterMs)) sink(target, RETRY_AFTER[0], RETRY_AFTER[1], String(Math.ceil(decision.retryAfterMs / 1000)));
    return { refused: decision };
  }

  /** The answer to a refused request at `url`, unless a handler answers: statusCode and message, or 429 and the problem details. */
  refusal(decision: Decision, url: string | undefined): RefusalAnswer {
    return refusalAnswer(this.#refusal, decision, url);
  }

  /**
   * What the request's framework exposes as its `rateLimit` (express's req.rateLimit...):
   * undefined when nothing was counted (skipped, no key, or a store failure decided by onError).
   */
  info(verdict: RuleOutcome): RateLimitInfo | undefined {
    if (!(verdict instanceof Counted) || isUncounted(verdict.decision)) return undefined;
    return rateLimitInfo(verdict.decision, verdict.key);
  }

  /**
   * The request whose cost may be given back once its response is known (skipSuccessfulRequests,
   * skipFailedRequests): the framework then calls settle() with the status. Undefined when neither
   * option is set or nothing was spent (refused, skipped, decided by onError).
   */
  refundable(verdict: RuleOutcome): Counted | undefined {
    if (!(this.#skipSuccessful || this.#skipFailed) || !(verdict instanceof Counted)) return undefined;
    return verdict.decision.allowed && !isUncounted(verdict.decision) ? verdict : undefined;
  }

  /**
   * Gives the request's cost back if its outcome says so: `status` the response's, or undefined
   * when it was never sent (the connection closed first, the handler threw), which is a failure.
   * Called once per request. A refund that fails is reported as a warning, never thrown: the
   * response is already gone.
   */
  settle(counted: Counted, status: number | undefined): void {
    const failed = status === undefined || status >= 400;
    if (!(failed ? this.#skipFailed : this.#skipSuccessful)) return;
    const report = (error: unknown) =>
      process.emitWarning(`tollgate rateLimit: giving a request's cost back (${failed ? 'skipFailedRequests' : 'skipSuccessfulRequests'}) failed: ${(error as Error)?.message ?? String(error)}`, {
        code: 'TOLLGATE_MIDDLEWARE_ERROR',
      });
    try {
      const done = this.#limiter.refund(counted.key, counted.cost, counted.limit === undefined ? undefined : { limit: counted.limit });
      if (isPromise(done)) done.then(undefined, report);
    } catch (error) {
      report(error);
    }
  }

  #keyed(raw: IncomingMessage, req: Req): MaybePromise<RuleOutcome> {
    const key = this.#key(raw, req);
    if (isPromise(key)) return key.then((k) => this.#costed(k, req));
    return this.#costed(key, req);
  }

  #costed(key: string | undefined, req: Req): MaybePromise<RuleOutcome> {
    if (key === undefined || key.length === 0) return this.#onMissing === 'allow' ? SKIPPED : MISSING_KEY;
    // Keys longer than 256 characters (MAX_RAW_KEY: a long API key, a JWT) are hashed, never truncated into each other.
    const k = storedKey(key);
    const cost = typeof this.#cost === 'number' ? this.#cost : this.#cost(req);
    if (isPromise(cost)) return cost.then((c) => this.#decided(k, c, req));
    return this.#decided(k, cost, req);
  }

  #decided(key: string, cost: number, req: Req): MaybePromise<RuleOutcome> {
    const limit = this.#limit?.(req);
    const decision = this.#limiter.consume(key, cost, limit === undefined ? undefined : { limit });
    if (isPromise(decision)) return decision.then((d) => this.#verdict(key, cost, d, req, limit));
    return this.#verdict(key, cost, decision, req, limit);
  }

  #verdict(key: string, cost: number, decision: Decision, req: Req, limit: LimitOverride | undefined): RuleOutcome {
    if (decision.allowed) this.#onAllow?.({ req, key, decision, dryRun: false });
    else this.#onDeny?.({ req, key, decision, dryRun: this.#dryRun });
    const tiers = limit === undefined ? undefined : typeof limit === 'number' ? [limit] : limit.slice(0, this.#policyCount);
    return new Counted(decision, key, cost, limit, tiers);
  }
}

/** The decision of a verdict, or undefined for SKIPPED and MISSING_KEY. */
function decisionOf(verdict: RuleOutcome): Decision | undefined {
  return verdict instanceof Counted ? verdict.decision : undefined;
}
