// One rate-limit rule for HTTP requests, framework-free: which key, what cost, which limiter,
// and what the response must carry. The express/node and fastify adapters apply its outcome.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { CombinedLimiter } from '../combine.js';
import type { Decision } from '../decision.js';
import { invalidArgument, outOfRange } from '../errors.js';
import { Limiter } from '../limiter.js';
import type { Policy } from '../policies.js';
import { RedisLimiter } from '../stores/redis/redis-limiter.js';
import { checkInteger, checkObject } from '../validate.js';
import { addressKey, addressList, clientAddress, type ForwardedHeader, type TrustProxy } from './client-ip.js';
import { HEADER_FORMATS, rateLimitHeaders, sfString, windowSeconds, type HeaderFormat } from './headers.js';

type MaybePromise<T> = T | Promise<T>;

export interface RateLimitEvent<Req> {
  readonly req: Req;
  readonly key: string;
  readonly decision: Decision;
  /** True when dryRun let a request through that the limit denied. */
  readonly dryRun: boolean;
}

export interface RateLimitOptions<Req = IncomingMessage> {
  /**
   * What decides: a Limiter (in-process or shared memory), several (all must allow: an array or
   * allOf(...)), or a RedisLimiter.
   */
  readonly limiter: Limiter | CombinedLimiter | RedisLimiter | readonly Limiter[];
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
  /** The limit for this request (its tier, e.g. free vs paid key); undefined keeps the policy's. */
  readonly limit?: (req: Req) => number | undefined;
  /** Requests for which this returns true are not limited at all. */
  readonly skip?: (req: Req) => MaybePromise<boolean>;
  /** Client addresses or CIDR ranges never limited (matched against the client address). */
  readonly allowList?: readonly string[];
  /** Count and report (headers, hooks) but never block. */
  readonly dryRun?: boolean;
  /** Header formats to send on every limited response; default ['legacy', 'draft-8']; false for none. */
  readonly headers?: HeaderFormat | readonly HeaderFormat[] | false;
  /** The policy's name in draft-8 headers; default 'default'. */
  readonly name?: string;
  /** Called on allowed and on denied requests (also those let through by dryRun): for logs and metrics. */
  readonly onAllow?: (event: RateLimitEvent<Req>) => void;
  readonly onDeny?: (event: RateLimitEvent<Req>) => void;
}

/** What a rule concluded for one request. */
export interface Outcome {
  /** 'pass': go on; 'block': answer 429; 'reject': answer 400 (no usable key). */
  readonly action: 'pass' | 'block' | 'reject';
  readonly decision: Decision | undefined;
  readonly headers: [string, string][];
}

const PASS: Outcome = Object.freeze({ action: 'pass', decision: undefined, headers: [] as [string, string][] });
const REJECT: Outcome = Object.freeze({ action: 'reject', decision: undefined, headers: [] as [string, string][] });
const MAX_RAW_KEY = 256;

function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown })?.then === 'function';
}

/** A compiled rule: options validated once, then `run` per request. */
export class RateLimitRule<Req> {
  readonly #decide: (key: string, cost: number, limit: number | undefined) => MaybePromise<Decision>;
  readonly #policies: readonly Policy[];
  readonly #key: (raw: IncomingMessage, req: Req) => MaybePromise<string | undefined>;
  readonly #address: (raw: IncomingMessage) => string | undefined;
  readonly #onMissing: 'reject' | 'allow' | 'ip';
  readonly #cost: number | ((req: Req) => MaybePromise<number>);
  readonly #limit: ((req: Req) => number | undefined) | undefined;
  readonly #skip: ((req: Req) => MaybePromise<boolean>) | undefined;
  readonly #allowList: ReturnType<typeof addressList>;
  readonly #dryRun: boolean;
  readonly #formats: readonly HeaderFormat[];
  readonly #name: string;
  readonly #onAllow: ((event: RateLimitEvent<Req>) => void) | undefined;
  readonly #onDeny: ((event: RateLimitEvent<Req>) => void) | undefined;

  constructor(options: RateLimitOptions<Req>) {
    const o = checkObject(options, 'options') as RateLimitOptions<Req> & Record<string, unknown>;
    const limiter = Array.isArray(o.limiter) ? new CombinedLimiter(o.limiter as Limiter[]) : o.limiter;
    if (limiter instanceof Limiter) {
      this.#decide = (key, cost, limit) => limiter.consume(key, cost, limit === undefined ? undefined : { limit });
      this.#policies = [limiter.policy];
    } else if (limiter instanceof CombinedLimiter) {
      this.#decide = (key, cost) => limiter.consume(key, cost);
      this.#policies = limiter.limiters.map((l) => l.policy);
    } else if (limiter instanceof RedisLimiter) {
      this.#decide = (key, cost, limit) => limiter.consume(key, cost, limit === undefined ? undefined : { limit });
      this.#policies = limiter.policies;
    } else {
      throw invalidArgument('limiter', 'a Limiter, an array of Limiters, allOf(...) or a RedisLimiter', o.limiter);
    }

    const subnet = o.ipv6Subnet === undefined ? 56 : checkInteger(o.ipv6Subnet, 'ipv6Subnet', 1, 128);
    const trusted = addressList(o.trustProxy, 'trustProxy');
    const forwardedHeader = o.forwardedHeader ?? 'x-forwarded-for';
    if (forwardedHeader !== 'x-forwarded-for' && forwardedHeader !== 'forwarded') {
      throw invalidArgument('forwardedHeader', "'x-forwarded-for' or 'forwarded'", forwardedHeader);
    }
    this.#address = (raw) => clientAddress(raw.socket?.remoteAddress, raw.headers, trusted, forwardedHeader);
    // Most requests come from addresses seen moments ago: remember their keys (bounded).
    const keys = new Map<string, string>();
    const ipKey = (raw: IncomingMessage) => {
      const address = this.#address(raw);
      if (address === undefined) return undefined;
      let k = keys.get(address);
      if (k === undefined) {
        if (keys.size >= 10_000) keys.clear();
        k = `ip:${addressKey(address, subnet)}`;
        keys.set(address, k);
      }
      return k;
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
    const onMissing = o.onMissingKey ?? 'reject';
    if (onMissing !== 'reject' && onMissing !== 'allow' && onMissing !== 'ip') {
      throw invalidArgument('onMissingKey', "'reject', 'allow' or 'ip'", onMissing);
    }
    this.#onMissing = onMissing;
    if (onMissing === 'ip' && key !== 'ip') {
      const primary = this.#key;
      this.#key = (raw, req) => {
        const k = primary(raw, req);
        return isPromise(k) ? k.then((v) => v ?? ipKey(raw)) : (k ?? ipKey(raw));
      };
    }

    const cost = o.cost ?? 1;
    if (typeof cost !== 'function') checkInteger(cost, 'cost', 1, Number.MAX_SAFE_INTEGER);
    this.#cost = cost;
    if (o.limit !== undefined && typeof o.limit !== 'function') throw invalidArgument('limit', 'a function of the request', o.limit);
    this.#limit = o.limit;
    if (o.skip !== undefined && typeof o.skip !== 'function') throw invalidArgument('skip', 'a function of the request', o.skip);
    this.#skip = o.skip;
    this.#allowList = addressList(o.allowList, 'allowList');
    this.#dryRun = o.dryRun === true;
    const formats = o.headers === undefined ? ['legacy', 'draft-8'] : o.headers === false ? [] : Array.isArray(o.headers) ? o.headers : [o.headers];
    for (const f of formats) {
      if (!HEADER_FORMATS.includes(f as HeaderFormat)) throw outOfRange('headers', `formats among ${HEADER_FORMATS.join(', ')}`, f);
    }
    this.#formats = formats as HeaderFormat[];
    const name = o.name ?? 'default';
    if (typeof name !== 'string' || name.length === 0) throw invalidArgument('name', 'a non-empty string', name);
    this.#name = sfString(name);
    for (const hook of ['onAllow', 'onDeny'] as const) {
      if (o[hook] !== undefined && typeof o[hook] !== 'function') throw invalidArgument(hook, 'a function', o[hook]);
    }
    this.#onAllow = o.onAllow;
    this.#onDeny = o.onDeny;
  }

  #windows = new Map<number, number>();

  /** Window seconds of the policy a decision's limit belongs to (per-call limits: the first policy's). */
  #windowOf(limit: number): number {
    let w = this.#windows.get(limit);
    if (w === undefined) {
      const policy = this.#policies.find((p) => policyLimit(p) === limit) ?? (this.#policies[0] as Policy);
      w = windowSeconds(policy);
      if (this.#windows.size < 1000) this.#windows.set(limit, w);
    }
    return w;
  }

  /** The outcome for one request; synchronous unless the limiter or an option function is asynchronous. */
  run(raw: IncomingMessage, req: Req): MaybePromise<Outcome> {
    if (this.#allowList !== undefined) {
      const address = this.#address(raw);
      if (address !== undefined && this.#allowList.check(address, address.includes(':') ? 'ipv6' : 'ipv4')) return PASS;
    }
    if (this.#skip !== undefined) {
      const skip = this.#skip(req);
      if (isPromise(skip)) return skip.then((s) => (s ? PASS : this.#keyed(raw, req)));
      if (skip) return PASS;
    }
    return this.#keyed(raw, req);
  }

  #keyed(raw: IncomingMessage, req: Req): MaybePromise<Outcome> {
    const key = this.#key(raw, req);
    if (isPromise(key)) return key.then((k) => this.#costed(k, req));
    return this.#costed(key, req);
  }

  #costed(key: string | undefined, req: Req): MaybePromise<Outcome> {
    if (key === undefined || key.length === 0) return this.#onMissing === 'allow' ? PASS : REJECT;
    // Keys past the table's maximum (a long API key) are hashed, never truncated into each other.
    const k = key.length > MAX_RAW_KEY ? `sha256:${createHash('sha256').update(key).digest('base64url')}` : key;
    const cost = typeof this.#cost === 'number' ? this.#cost : this.#cost(req);
    if (isPromise(cost)) return cost.then((c) => this.#decided(k, c, req));
    return this.#decided(k, cost, req);
  }

  #decided(key: string, cost: number, req: Req): MaybePromise<Outcome> {
    const limit = this.#limit?.(req);
    const decision = this.#decide(key, cost, limit);
    if (isPromise(decision)) return decision.then((d) => this.#outcome(key, d, req));
    return this.#outcome(key, decision, req);
  }

  #outcome(key: string, decision: Decision, req: Req): Outcome {
    const headers: [string, string][] = [];
    if (this.#formats.length > 0) rateLimitHeaders(headers, this.#formats, decision, this.#name, this.#windowOf(decision.limit), Date.now());
    if (decision.allowed) {
      this.#onAllow?.({ req, key, decision, dryRun: false });
      return { action: 'pass', decision, headers };
    }
    this.#onDeny?.({ req, key, decision, dryRun: this.#dryRun });
    if (this.#dryRun) return { action: 'pass', decision, headers };
    if (Number.isFinite(decision.retryAfterMs)) headers.push(['Retry-After', String(Math.ceil(decision.retryAfterMs / 1000))]);
    return { action: 'block', decision, headers };
  }
}

function policyLimit(policy: Policy): number {
  switch (policy.kind) {
    case 'fixedWindow':
    case 'slidingWindow':
      return policy.limit;
    case 'tokenBucket':
      return policy.capacity;
    case 'leakyBucket':
      return policy.burst;
  }
}
