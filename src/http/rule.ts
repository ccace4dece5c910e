// One rate-limit rule for HTTP requests, framework-free: which key, what cost, which limiter,
// and what the response must carry. The express/node and fastify adapters apply its outcome.
import type { IncomingMessage } from 'node:http';
import { CombinedLimiter } from '../limiters/combined-limiter.js';
import type { Decision, LimitOverride } from '../common/decision.js';
import { invalidArgument } from '../common/errors.js';
import type { Limiter } from '../limiters/limiter.js';
import { isRateLimiter, type MaybePromise, type RateLimiter } from '../limiters/rate-limiter.js';
import { checkInteger, checkObject } from '../common/validate.js';
import { storedKey } from '../common/keys.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { addressKey, addressList, canonicalAddress, clientAddress, type ForwardedHeader, type TrustProxy } from './client-ip.js';
import { checkFormats, RateLimitHeaders, RETRY_AFTER, type HeaderFormat, type HeaderSink } from './headers.js';

export interface RateLimitEvent<Req> {
  readonly req: Req;
  readonly key: string;
  readonly decision: Decision;
  /** True when dryRun let a request through that the limit denied. */
  readonly dryRun: boolean;
}

export interface RateLimitOptions<Req = IncomingMessage> {
  /**
   * What decides: any RateLimiter — a Limiter (in-process or shared memory), allOf(...) (or an
   * array of Limiters: all must allow), or a RedisLimiter.
   */
  readonly limiter: RateLimiter | readonly Limiter[];
  /**
   * Whose limit a request counts against: 'ip' (the default: the client address, IPv6 grouped
   * by ipv6Subnet), { header: 'x-api-key' }, or a function of the request (say, the user id).
   */
  readonly key?: 'ip' | { readonly header: string } | ((req: Req) => MaybePromise<string | undefined>);
  /** IPv6 clients are grouped by this prefix length; default 56. */
  readonly ipv6Subnet?: number;
  /**
   * Proxies whose forwarding header is believed: addresses, CIDR ranges, or 'loopback' |
   * 'private' | 'linklocal'. Default false: the socket peer is the client.
   */
  readonly trustProxy?: TrustProxy;
  /**
   * The one header your trusted proxies append the client address to: 'x-forwarded-for' (the
   * default: nginx, HAProxy, cloud load balancers) or 'forwarded' (RFC 7239). The other header is
   * never read, since a client can send it itself.
   */
  readonly forwardedHeader?: ForwardedHeader;
  /**
   * A request with no usable key (no such header, the function returned nothing, no address):
   * 'reject' (the default) answers 400 with a problem body; 'allow' lets it through unlimited;
   * 'ip' falls back to the client address.
   */
  readonly onMissingKey?: 'reject' | 'allow' | 'ip';
  /** What a request costs: a number or a function (say, estimated LLM tokens); default 1. */
  readonly cost?: number | ((req: Req) => MaybePromise<number>);
  /**
   * The limit for this request (its tier, e.g. free vs paid key); undefined keeps the policy's.
   * With several policies a number replaces the first policy's limit; return an array for one
   * per policy (undefined entries keep that policy's).
   */
  readonly limit?: (req: Req) => LimitOverride | undefined;
  /** Requests for which this returns true are not limited at all. */
  readonly skip?: (req: Req) => MaybePromise<boolean>;
  /** Client addresses or CIDR ranges never limited (matched against the client address). */
  readonly allowList?: readonly string[];
  /** Count and report (headers, hooks) but never block. */
  readonly dryRun?: boolean;
  /** Header formats to send on every limited response; default ['legacy', 'draft-8']; false for none. */
  readonly headers?: HeaderFormat | readonly HeaderFormat[] | false;
  /**
   * The policy's name in draft-8 headers; default 'default'. With several policies, one name per
   * policy, or one string from which `<name>-0`, `<name>-1`... are made.
   */
  readonly name?: string | readonly string[];
  /** Called on allowed and on denied requests (also those let through by dryRun): for logs and metrics. */
  readonly onAllow?: (event: RateLimitEvent<Req>) => void;
  readonly onDeny?: (event: RateLimitEvent<Req>) => void;
}

/** A request the rule does not limit (skip, allowList, or no key with onMissingKey 'allow'). */
export const SKIPPED = Object.freeze({ skipped: true as const });
/** A request with no usable key and onMissingKey 'reject': answer 400. */
export const MISSING_KEY = Object.freeze({ missingKey: true as const });

/** A decision made under per-request limits (a tier): the headers list those limits. */
export class TieredDecision {
  constructor(
    readonly decision: Decision,
    readonly tiers: readonly (number | undefined)[],
  ) {}
}

/**
 * What a rule concluded for one request: a Decision (the common case, nothing else allocated), a
 * TieredDecision, SKIPPED or MISSING_KEY.
 */
export type Verdict = Decision | TieredDecision | typeof SKIPPED | typeof MISSING_KEY;

function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown })?.then === 'function';
}

/** What is left for a framework to do once the rule has answered: let the request go on, answer 400, or refuse it (429 or the handler). */
export type RuleResponse = 'pass' | 'missing-key' | Refusal;
/** A refused request: its headers, Retry-After included, are written; answer 429 or call the handler. */
export interface Refusal {
  readonly refused: Decision;
}

/**
 * How a framework names the client when the app told it to read proxy headers (express's
 * `trust proxy`, Koa's `app.proxy`, fastify's `trustProxy`): that address, or undefined when the
 * app did not (the socket's peer is the client then). Used when the rule has no `trustProxy`.
 */
export type FrameworkAddress<Req> = (raw: IncomingMessage, req: Req) => string | undefined;

/** The options every framework's middleware takes (each adds its own, such as handler). */
export const RULE_OPTIONS = [
  'limiter', 'key', 'ipv6Subnet', 'trustProxy', 'forwardedHeader', 'onMissingKey', 'cost', 'limit', 'skip', 'allowList', 'dryRun',
  'headers', 'name', 'onAllow', 'onDeny',
];

/** A compiled rule: options validated once, then `run` per request, then `respond`. */
export class RateLimitRule<Req> {
  readonly #limiter: RateLimiter;
  readonly #policyCount: number;
  readonly #key: (raw: IncomingMessage, req: Req) => MaybePromise<string | undefined>;
  readonly #address: (raw: IncomingMessage, req: Req) => string | undefined;
  #warnedForwarded = false;
  readonly #onMissing: 'reject' | 'allow' | 'ip';
  readonly #cost: number | ((req: Req) => MaybePromise<number>);
  readonly #limit: ((req: Req) => LimitOverride | undefined) | undefined;
  readonly #skip: ((req: Req) => MaybePromise<boolean>) | undefined;
  readonly #allowList: ReturnType<typeof addressList>;
  readonly #dryRun: boolean;
  /** The response headers of this rule; empty when `headers: false`. */
  readonly headers: RateLimitHeaders;
  /**
   * The request headers (lower-case) this rule reads from `raw.headers`: the forwarding header
   * when proxies are trusted, the key's header. A framework without node's headers object copies
   * just these.
   */
  readonly requestHeaders: readonly string[];
  readonly #onAllow: ((event: RateLimitEvent<Req>) => void) | undefined;
  readonly #onDeny: ((event: RateLimitEvent<Req>) => void) | undefined;

  /**
   * `frameworkKeys`: the options a framework's middleware takes besides the rule's own (its
   * `handler`...); any other key is refused by name.
   */
  constructor(options: RateLimitOptions<Req>, frameworkAddress?: FrameworkAddress<Req>, frameworkKeys: readonly string[] = ['handler']) {
    const o = checkObject(options, 'options') as RateLimitOptions<Req> & Record<string, unknown>;
    checkKnownKeys(o, [...RULE_OPTIONS, ...frameworkKeys], 'rate limit options');
    const limiter = Array.isArray(o.limiter) ? new CombinedLimiter(o.limiter as Limiter[]) : o.limiter;
    if (!isRateLimiter(limiter)) {
      throw invalidArgument('limiter', 'a Limiter, an array of Limiters, allOf(...) or a RedisLimiter', o.limiter);
    }
    this.#limiter = limiter;
    const policies = limiter.policies;
    this.#policyCount = policies.length;

    const subnet = o.ipv6Subnet === undefined ? 56 : checkInteger(o.ipv6Subnet, 'ipv6Subnet', 1, 128);
    const trusted = addressList(o.trustProxy, 'trustProxy');
    const forwardedHeader = o.forwardedHeader ?? 'x-forwarded-for';
    if (forwardedHeader !== 'x-forwarded-for' && forwardedHeader !== 'forwarded') {
      throw invalidArgument('forwardedHeader', "'x-forwarded-for' or 'forwarded'", forwardedHeader);
    }
    // trustProxy, when given, decides; else the framework's own setting, when the app made one.
    const fromFramework = trusted === undefined ? frameworkAddress : undefined;
    this.#address = (raw, req) => {
      const framed = fromFramework?.(raw, req);
      if (framed !== undefined) return canonicalAddress(framed);
      return clientAddress(raw.socket?.remoteAddress, raw.headers, trusted, forwardedHeader);
    };
    // Most requests come from addresses seen moments ago: remember their keys (bounded). Without
    // trusted proxies the socket's own address is the whole input, so it is the cache key.
    const keys = new Map<string, string>();
    const keyOf = (address: string) => {
      let k = keys.get(address);
      if (k === undefined) {
        if (keys.size >= 10_000) keys.clear();
        k = `ip:${addressKey(address, subnet)}`;
        keys.set(address, k);
      }
      return k;
    };
    // The key of an address as given (the socket's or the framework's), cached by that spelling.
    const keyOfText = (text: string) => {
      const known = keys.get(text);
      if (known !== undefined) return known;
      const address = canonicalAddress(text);
      if (address === undefined) return undefined;
      const k = keyOf(address);
      keys.set(text, k);
      return k;
    };
    const ipKey =
      trusted === undefined
        ? (raw: IncomingMessage, req: Req) => {
            const framed = fromFramework?.(raw, req);
            if (framed !== undefined) return keyOfText(framed);
            if (!this.#warnedForwarded) this.#checkForwarded(raw);
            const remote = raw.socket?.remoteAddress;
            return remote === undefined ? undefined : keyOfText(remote);
          }
        : (raw: IncomingMessage, req: Req) => {
            const address = this.#address(raw, req);
            return address === undefined ? undefined : keyOf(address);
          };
    const key = o.key ?? 'ip';
    if (key === 'ip') {
      this.#key = ipKey;
    } else if (typeof key === 'function') {
      this.#key = (_raw, req) => key(req);
    } else if (typeof key === 'object' && key !== null && typeof key.header === 'string' && key.header.length > 0) {
      const header = key.header.toLowerCase();
      this.#key = (raw) => {
        const value = raw.headers[header];
        const text = Array.isArray(value) ? value[0] : value;
        return text === undefined || text.length === 0 ? undefined : `key:${text}`;
      };
    } else {
      throw invalidArgument('key', "'ip', { header } or a function of the request", key);
    }
    const read = new Set<string>();
    if (trusted !== undefined) read.add(forwardedHeader);
    if (typeof key === 'object') read.add(key.header.toLowerCase());
    this.requestHeaders = Object.freeze([...read]);
    const onMissing = o.onMissingKey ?? 'reject';
    if (onMissing !== 'reject' && onMissing !== 'allow' && onMissing !== 'ip') {
      throw invalidArgument('onMissingKey', "'reject', 'allow' or 'ip'", onMissing);
    }
    this.#onMissing = onMissing;
    if (onMissing === 'ip' && key !== 'ip') {
      const primary = this.#key;
      this.#key = (raw, req) => {
        const k = primary(raw, req);
        return isPromise(k) ? k.then((v) => v ?? ipKey(raw, req)) : (k ?? ipKey(raw, req));
      };
    }

    const cost = o.cost ?? 1;
    if (typeof cost !== 'function') checkInteger(cost, 'cost', 1, Number.MAX_SAFE_INTEGER);
    this.#cost = cost;
    if (o.limit !== undefined && typeof o.limit !== 'function') throw invalidArgument('limit', 'a function of the request', o.limit);
    this.#limit = o.limit as ((req: Req) => LimitOverride | undefined) | undefined;
    if (o.skip !== undefined && typeof o.skip !== 'function') throw invalidArgument('skip', 'a function of the request', o.skip);
    this.#skip = o.skip;
    this.#allowList = addressList(o.allowList, 'allowList');
    this.#dryRun = o.dryRun === true;
    const name = o.name ?? 'default';
    const names =
      typeof name === 'string' && name.length > 0
        ? policies.length === 1
          ? [name]
          : policies.map((_, i) => `${name}-${i}`)
        : name;
    if (!Array.isArray(names) || names.length !== policies.length || !names.every((n) => typeof n === 'string' && n.length > 0)) {
      throw invalidArgument('name', `a non-empty string, or ${policies.length} of them (one per policy)`, name);
    }
    this.headers = new RateLimitHeaders(checkFormats(o.headers), policies, names as string[]);
    for (const hook of ['onAllow', 'onDeny'] as const) {
      if (o[hook] !== undefined && typeof o[hook] !== 'function') throw invalidArgument(hook, 'a function', o[hook]);
    }
    this.#onAllow = o.onAllow;
    this.#onDeny = o.onDeny;
  }

  /** The verdict for one request; synchronous unless the limiter or an option function is asynchronous. */
  run(raw: IncomingMessage, req: Req): MaybePromise<Verdict> {
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
   * rate-limit headers for a decided request, Retry-After for a refused one. Says what is left.
   */
  respond<T>(verdict: Verdict, target: T, sink: HeaderSink<T>): RuleResponse {
    const decision = decisionOf(verdict);
    if (decision === undefined) return verdict === MISSING_KEY ? 'missing-key' : 'pass';
    this.headers.write(target, sink, decision, tiersOf(verdict));
    if (decision.allowed || this.#dryRun) return 'pass';
    if (Number.isFinite(decision.retryAfterMs)) sink(target, RETRY_AFTER[0], RETRY_AFTER[1], String(Math.ceil(decision.retryAfterMs / 1000)));
    return { refused: decision };
  }

  /**
   * Once per rule: a request whose forwarding header is ignored (its peer is trusted neither by
   * trustProxy nor by the app's own proxy setting) means, when that peer is a proxy, that every
   * client behind it shares one limit. Said once, as a warning, with the fix.
   */
  #checkForwarded(raw: IncomingMessage): void {
    const headers = raw.headers;
    const name = headers['x-forwarded-for'] !== undefined ? 'X-Forwarded-For' : headers.forwarded !== undefined ? 'Forwarded' : undefined;
    if (name === undefined) return;
    this.#warnedForwarded = true;
    process.emitWarning(
      `tollgate rateLimit: a request from ${raw.socket?.remoteAddress} carried ${name}, which was ignored, so the peer itself is the client. ` +
        `If that peer is your proxy, every client behind it now shares one limit: trust it in your app (express: app.set('trust proxy', ...); ` +
        `Koa: app.proxy = true; fastify: the trustProxy option) or give rateLimit trustProxy (e.g. ['loopback']).`,
      { code: 'TOLLGATE_UNTRUSTED_FORWARDED_HEADER' },
    );
  }

  #keyed(raw: IncomingMessage, req: Req): MaybePromise<Verdict> {
    const key = this.#key(raw, req);
    if (isPromise(key)) return key.then((k) => this.#costed(k, req));
    return this.#costed(key, req);
  }

  #costed(key: string | undefined, req: Req): MaybePromise<Verdict> {
    if (key === undefined || key.length === 0) return this.#onMissing === 'allow' ? SKIPPED : MISSING_KEY;
    // Keys past MAX_RAW_KEY (a long API key) are hashed, never truncated into each other.
    const k = storedKey(key);
    const cost = typeof this.#cost === 'number' ? this.#cost : this.#cost(req);
    if (isPromise(cost)) return cost.then((c) => this.#decided(k, c, req));
    return this.#decided(k, cost, req);
  }

  #decided(key: string, cost: number, req: Req): MaybePromise<Verdict> {
    const limit = this.#limit?.(req);
    const decision = this.#limiter.consume(key, cost, limit === undefined ? undefined : { limit });
    if (isPromise(decision)) return decision.then((d) => this.#verdict(key, d, req, limit));
    return this.#verdict(key, decision, req, limit);
  }

  #verdict(key: string, decision: Decision, req: Req, limit: LimitOverride | undefined): Verdict {
    if (decision.allowed) this.#onAllow?.({ req, key, decision, dryRun: false });
    else this.#onDeny?.({ req, key, decision, dryRun: this.#dryRun });
    if (limit === undefined) return decision;
    return new TieredDecision(decision, typeof limit === 'number' ? [limit] : limit.slice(0, this.#policyCount));
  }
}

/**
 * Splits a verdict for an adapter: the decision and the per-request limits to write headers for,
 * or undefined for SKIPPED and MISSING_KEY.
 */
function decisionOf(verdict: Verdict): Decision | undefined {
  if (verdict === SKIPPED || verdict === MISSING_KEY) return undefined;
  return verdict instanceof TieredDecision ? verdict.decision : (verdict as Decision);
}

function tiersOf(verdict: Verdict): readonly (number | undefined)[] | undefined {
  return verdict instanceof TieredDecision ? verdict.tiers : undefined;
}
