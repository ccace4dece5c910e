// The options of rateLimit() and every framework's middleware, read once into the configuration a
// RateLimitRule is built from: every check, default and unknown key in one place.
import type { IncomingMessage } from 'node:http';
import type { Decision, LimitOverride } from '../common/decision.js';
import { invalidArgument } from '../common/errors.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { checkInteger, checkObject } from '../common/validate.js';
import { CombinedLimiter } from '../limiters/combined-limiter.js';
import type { Limiter } from '../limiters/limiter.js';
import { isRateLimiter, type MaybePromise, type RateLimiter } from '../limiters/rate-limiter.js';
import type { BlockList } from 'node:net';
import { addressList, type ForwardedHeader, type TrustProxy } from './client-ip.js';
import { refuseForeignWindow } from './foreign-options.js';
import { checkFormats, type HeaderFormat } from './headers.js';
import { checkRefusal, type RefusalConfig } from './refusal.js';

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
   *
   * NOTE: not the limit itself, which is the policy's:
   * `limiter: new Limiter({ policy: fixedWindow({ limit: 100, windowMs: 60_000 }) })`.
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
  /**
   * Give a request's cost back once its response is known to have succeeded (status below 400):
   * only failures count, e.g. failed logins. Default false.
   */
  readonly skipSuccessfulRequests?: boolean;
  /**
   * Give a request's cost back once its response failed: status 400 or above, or the connection
   * closed before the response was sent. Default false.
   */
  readonly skipFailedRequests?: boolean;
  /** The status of a refused request's answer; default 429. Headers, Retry-After included, are sent as with 429. */
  readonly statusCode?: number;
  /**
   * A refused request's body instead of the problem details: a string (sent as text/plain) or an
   * object (sent as JSON). For an answer made per request, give `handler`.
   */
  readonly message?: string | { readonly [key: string]: unknown };

  // express-rate-limit's names, refused at run time with the tollgate line to write; typed `never`
  // so that TypeScript points at them, and documented so that an editor shows what to write instead.
  /** Not a tollgate option: the window is the policy's, `limiter: new Limiter({ policy: fixedWindow({ limit: 100, windowMs: 60_000 }) })`. */
  readonly windowMs?: never;
  /** Not a tollgate option: the limit is the policy's, `limiter: new Limiter({ policy: fixedWindow({ limit: 100, windowMs: 60_000 }) })`. */
  readonly max?: never;
  /** Not a tollgate option: write `key: (req) => string`. */
  readonly keyGenerator?: never;
  /** Not a tollgate option: write `headers: 'draft-7'` (or 'draft-6', 'draft-8', with 'legacy' in a list). */
  readonly standardHeaders?: never;
  /** Not a tollgate option: write `headers: 'legacy'` for the X-RateLimit-* headers; `headers` lists every format sent. */
  readonly legacyHeaders?: never;
  /** Not a tollgate option: the store is the limiter's, `new Limiter({ policy, store: sharedMemory({ name, capacity }) })` or a RedisLimiter. */
  readonly store?: never;
  /** Not a tollgate option: the request always gets `rateLimit` (Koa: ctx.state.rateLimit; Hono: c.get('rateLimit')). */
  readonly requestPropertyName?: never;
}

/**
 * How a framework names the client when the app told it to read proxy headers (express's
 * `trust proxy`, Koa's `app.proxy`, fastify's `trustProxy`): that address, or undefined when the
 * app did not (the socket's peer is the client then). Used when the rule has no `trustProxy`.
 */
export type FrameworkAddress<Req> = (raw: IncomingMessage, req: Req) => string | undefined;

/** The options every framework's middleware takes (each adds its own, such as handler). */
export const RULE_OPTIONS = [
  'limiter',
  'key',
  'ipv6Subnet',
  'trustProxy',
  'forwardedHeader',
  'onMissingKey',
  'cost',
  'limit',
  'skip',
  'allowList',
  'dryRun',
  'headers',
  'name',
  'onAllow',
  'onDeny',
  'skipSuccessfulRequests',
  'skipFailedRequests',
  'statusCode',
  'message',
];

/** What a RateLimitRule is built from. */
export interface RuleConfig<Req> {
  readonly limiter: RateLimiter;
  /** IPv6 prefix length clients are grouped by. */
  readonly ipv6Subnet: number;
  /** undefined: the framework's setting decides, else the socket's peer is the client. */
  readonly trustProxy: BlockList | undefined;
  readonly forwardedHeader: ForwardedHeader;
  readonly key: 'ip' | { readonly header: string } | ((req: Req) => MaybePromise<string | undefined>);
  readonly onMissingKey: 'reject' | 'allow' | 'ip';
  readonly cost: number | ((req: Req) => MaybePromise<number>);
  readonly limit: ((req: Req) => LimitOverride | undefined) | undefined;
  readonly skip: ((req: Req) => MaybePromise<boolean>) | undefined;
  readonly allowList: BlockList | undefined;
  readonly dryRun: boolean;
  readonly headers: readonly HeaderFormat[];
  /** One name per policy, for the draft-8 headers. */
  readonly names: readonly string[];
  readonly onAllow: ((event: RateLimitEvent<Req>) => void) | undefined;
  readonly onDeny: ((event: RateLimitEvent<Req>) => void) | undefined;
  /** Give the cost back when the response succeeded (status < 400) / failed (status >= 400 or never sent). */
  readonly skipSuccessfulRequests: boolean;
  readonly skipFailedRequests: boolean;
  /** What a refused request is answered with, unless a handler answers. */
  readonly refusal: RefusalConfig;
}

/**
 * Reads and checks a rule's options. `frameworkKeys`: the options a framework's middleware takes
 * besides the rule's own (its `handler`...); any other key is refused by name.
 */
export function parseRateLimitOptions<Req>(options: unknown, frameworkKeys: readonly string[] = ['handler']): RuleConfig<Req> {
  const o = checkObject(options, 'options') as RateLimitOptions<Req> & Record<string, unknown>;
  refuseForeignWindow(o, 'rate limit options');
  checkKnownKeys(o, [...RULE_OPTIONS, ...frameworkKeys], 'rate limit options');
  const limiter = Array.isArray(o.limiter) ? new CombinedLimiter(o.limiter as Limiter[]) : o.limiter;
  if (!isRateLimiter(limiter)) {
    throw invalidArgument('limiter', 'a Limiter, an array of Limiters, allOf(...) or a RedisLimiter', o.limiter);
  }
  const forwardedHeader = o.forwardedHeader ?? 'x-forwarded-for';
  if (forwardedHeader !== 'x-forwarded-for' && forwardedHeader !== 'forwarded') {
    throw invalidArgument('forwardedHeader', "'x-forwarded-for' or 'forwarded'", forwardedHeader);
  }
  const key = o.key ?? 'ip';
  if (key !== 'ip' && typeof key !== 'function' && !(typeof key === 'object' && key !== null && typeof key.header === 'string' && key.header.length > 0)) {
    throw invalidArgument('key', "'ip', { header } or a function of the request", key);
  }
  const onMissingKey = o.onMissingKey ?? 'reject';
  if (onMissingKey !== 'reject' && onMissingKey !== 'allow' && onMissingKey !== 'ip') {
    throw invalidArgument('onMissingKey', "'reject', 'allow' or 'ip'", onMissingKey);
  }
  const cost = o.cost ?? 1;
  if (typeof cost !== 'function') checkInteger(cost, 'cost', 1, Number.MAX_SAFE_INTEGER);
  if (o.limit !== undefined && typeof o.limit !== 'function') throw invalidArgument('limit', 'a function of the request', o.limit);
  if (o.skip !== undefined && typeof o.skip !== 'function') throw invalidArgument('skip', 'a function of the request', o.skip);
  const policies = limiter.policies;
  const name = o.name ?? 'default';
  const names = typeof name === 'string' && name.length > 0 ? (policies.length === 1 ? [name] : policies.map((_, i) => `${name}-${i}`)) : name;
  if (!Array.isArray(names) || names.length !== policies.length || !names.every((n) => typeof n === 'string' && n.length > 0)) {
    throw invalidArgument('name', `a non-empty string, or ${policies.length} of them (one per policy)`, name);
  }
  for (const hook of ['onAllow', 'onDeny'] as const) {
    if (o[hook] !== undefined && typeof o[hook] !== 'function') throw invalidArgument(hook, 'a function', o[hook]);
  }
  for (const flag of ['skipSuccessfulRequests', 'skipFailedRequests'] as const) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') throw invalidArgument(flag, 'a boolean', o[flag]);
  }
  return {
    limiter,
    ipv6Subnet: o.ipv6Subnet === undefined ? 56 : checkInteger(o.ipv6Subnet, 'ipv6Subnet', 1, 128),
    trustProxy: addressList(o.trustProxy, 'trustProxy'),
    forwardedHeader,
    key,
    onMissingKey,
    cost,
    limit: o.limit as ((req: Req) => LimitOverride | undefined) | undefined,
    skip: o.skip,
    allowList: addressList(o.allowList, 'allowList'),
    dryRun: o.dryRun === true,
    headers: checkFormats(o.headers),
    names: names as string[],
    onAllow: o.onAllow,
    onDeny: o.onDeny,
    skipSuccessfulRequests: o.skipSuccessfulRequests === true,
    skipFailedRequests: o.skipFailedRequests === true,
    refusal: checkRefusal(o.statusCode, o.message),
  };
}
