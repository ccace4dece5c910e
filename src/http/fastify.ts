// A fastify plugin: app.register(fastifyRateLimit, { limiter, ... }), with per-route
// `config: { rateLimit: { ... } | false }`. Fastify itself is not imported: the types below are
// the little of it this plugin touches.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision } from '../common/decision.js';
import { MISSING_KEY_BODY, type HeaderSink } from './headers.js';
import { RateLimitRule, RULE_OPTIONS, type FrameworkAddress, type RateLimitInfo, type RateLimitOptions, type RuleOutcome } from './rule.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { refuseForeignHandler, refuseForeignWindow } from './foreign-options.js';
import { warnTrustsEveryHop } from './request-key.js';
import { onResponseOutcome } from './response-outcome.js';
import { isPromise } from '../limiters/rate-limiter.js';

/**
 * fastify's own trustProxy: `request.ip` when it differs from the socket's peer (fastify took it
 * from the forwarding header), else undefined (the peer is the client). A trustProxy that believes
 * any peer (`true`, a catch-all range or function) is said once per registration, as a warning.
 */
function fastifyAddress(): FrameworkAddress<FastifyRequestLike> {
  let checked = false;
  return (raw, request) => {
    if (!checked) {
      checked = true;
      if (trustsAnyPeer(request)) {
        warnTrustsEveryHop(
          "fastify's trustProxy believes X-Forwarded-For from any peer (trustProxy: true), so request.ip is the leftmost entry",
          "give fastify's trustProxy your proxies' addresses or ranges (e.g. '127.0.0.1' or ['10.0.0.0/8']), or give fastifyRateLimit trustProxy",
        );
      }
    }
    const ip = request.ip;
    return ip !== undefined && ip !== raw.socket?.remoteAddress ? ip : undefined;
  };
}

/**
 * Asks fastify's own `ip` getter (its trustProxy compiled in) about a made-up request from a
 * documentation address with one forwarded hop: a setting that believes it believes any peer.
 * fastify keeps its trustProxy to itself, so this is the only way to know; any surprise is a no.
 */
function trustsAnyPeer(request: FastifyRequestLike): boolean {
  let proto: object | null = Object.getPrototypeOf(request) as object | null;
  while (proto !== null && !Object.hasOwn(proto, 'ip')) proto = Object.getPrototypeOf(proto) as object | null;
  const get = proto === null ? undefined : Object.getOwnPropertyDescriptor(proto, 'ip')?.get;
  if (get === undefined) return false;
  const headers = { 'x-forwarded-for': '198.51.100.1' };
  try {
    return get.call({ raw: { socket: { remoteAddress: '192.0.2.1' }, headers }, headers }) === '198.51.100.1';
  } catch {
    return false;
  }
}

interface FastifyRequestLike {
  readonly raw: IncomingMessage;
  readonly url: string;
  /** fastify's client address (from X-Forwarded-For when its trustProxy option is set). */
  readonly ip?: string;
  /** The route's options: its `config.rateLimit` says how this plugin treats it. */
  readonly routeOptions?: { readonly config?: { readonly rateLimit?: Partial<FastifyRateLimitOptions> | false } };
  /** Set by the plugin on every request it counted (a decorator, so fastify's request keeps one shape). */
  rateLimit?: RateLimitInfo | null;
}
interface FastifyReplyLike {
  /** node's response: its 'finish' says the status sent, for skipSuccessfulRequests / skipFailedRequests. */
  readonly raw?: ServerResponse;
  header(name: string, value: string): unknown;
  code(status: number): FastifyReplyLike;
  send(payload?: unknown): unknown;
}
type Done = (error?: Error) => void;
type Hook = (request: FastifyRequestLike, reply: FastifyReplyLike, done: Done) => void;
interface FastifyInstanceLike {
  addHook(name: 'onRequest', hook: Hook): unknown;
  decorateRequest?(name: string, value: unknown): unknown;
  hasRequestDecorator?(name: string): boolean;
}

export interface FastifyRateLimitOptions extends Omit<RateLimitOptions<FastifyRequestLike>, 'limiter'> {
  /** Limits every route unless its config says otherwise; may be left out to limit only configured routes. */
  readonly limiter?: RateLimitOptions<FastifyRequestLike>['limiter'];
  /** Replaces the 429 answer; headers (including Retry-After) are already set. */
  readonly handler?: (request: FastifyRequestLike, reply: FastifyReplyLike, decision: Decision) => unknown;
}

// Through fastify, not reply.raw.setHeader: headers already on the node response make fastify's
// writeHead merge them one by one, which measured several µs per request.
const writeHeader: HeaderSink<FastifyReplyLike> = (reply, _name, lower, value) => {
  reply.header(lower, value);
};

function hookFor(rule: RateLimitRule<FastifyRequestLike>, options: FastifyRateLimitOptions): Hook {
  const apply = (verdict: RuleOutcome, request: FastifyRequestLike, reply: FastifyReplyLike, done: Done) => {
    const info = rule.info(verdict);
    if (info !== undefined) request.rateLimit = info;
    const refundable = rule.refundable(verdict);
    if (refundable !== undefined && reply.raw !== undefined) onResponseOutcome(reply.raw, (status) => rule.settle(refundable, status));
    const response = rule.respond(verdict, reply, writeHeader);
    if (response === 'pass') return done();
    if (response === 'missing-key') {
      reply.code(400).header('content-type', 'application/problem+json');
      reply.send(MISSING_KEY_BODY);
      return;
    }
    if (options.handler !== undefined) {
      const result: unknown = options.handler(request, reply, response.refused);
      if (isPromise(result)) result.then(undefined, (e: unknown) => done(e as Error));
      return;
    }
    const answer = rule.refusal(response.refused, request.url);
    reply.code(answer.status).header('content-type', answer.contentType);
    reply.send(answer.body);
  };
  return function tollgateRateLimit(request, reply, done) {
    // Every error (an option function, the limiter, a custom handler) goes to fastify's error
    // handling through done(), never left as an unhandled rejection.
    const finish = (v: RuleOutcome) => {
      try {
        apply(v, request, reply, done);
      } catch (error) {
        done(error as Error);
      }
    };
    let verdict: RuleOutcome | Promise<RuleOutcome>;
    try {
      verdict = rule.run(request.raw, request);
    } catch (error) {
      return done(error as Error);
    }
    if (verdict instanceof Promise) verdict.then(finish, (error: unknown) => done(error as Error));
    else finish(verdict);
  };
}

/** Besides the rule's options: the handler, and what fastify's register() puts in every plugin's options. */
const FASTIFY_KEYS = ['handler', 'prefix', 'logLevel', 'logSerializers'];

// `instance` is typed unknown so that fastify's own (overloaded) instance type is accepted as is.
async function plugin(instance: unknown, options: FastifyRateLimitOptions): Promise<void> {
  const fastify = instance as FastifyInstanceLike;
  refuseForeignWindow((options ?? {}) as Record<string, unknown>, 'fastifyRateLimit options');
  checkKnownKeys(options ?? {}, [...RULE_OPTIONS, ...FASTIFY_KEYS], 'fastifyRateLimit options');
  refuseForeignHandler(options?.handler, 3);
  // Declared before any request has it, as fastify asks, so that every request keeps one shape.
  if (fastify.decorateRequest !== undefined && fastify.hasRequestDecorator?.('rateLimit') !== true) fastify.decorateRequest('rateLimit', null);
  // One address reader per registration: its trustProxy warning is said once for every rule here.
  const address = fastifyAddress();
  const global = options.limiter === undefined ? undefined : hookFor(new RateLimitRule<FastifyRequestLike>(options as RateLimitOptions<FastifyRequestLike>, address, FASTIFY_KEYS), options);
  // One rule per route config, made at its first request (a route's config object lives as long as the route).
  const byConfig = new WeakMap<object, Hook | null>();
  const routeHook = (config: Partial<FastifyRateLimitOptions>): Hook | null => {
    let hook = byConfig.get(config);
    if (hook === undefined) {
      const merged = { ...options, ...config };
      hook = merged.limiter === undefined ? null : hookFor(new RateLimitRule<FastifyRequestLike>(merged as RateLimitOptions<FastifyRequestLike>, address, FASTIFY_KEYS), merged);
      byConfig.set(config, hook);
    }
    return hook;
  };
  // A hook on every request, not on each route as it is declared: it limits routes declared
  // before this plugin ran too, so registration works whether or not the app awaits it.
  fastify.addHook('onRequest', function tollgateRateLimit(request, reply, done) {
    const config = request.routeOptions?.config?.rateLimit;
    const hook = config === undefined ? global : config === false ? null : routeHook(config);
    if (hook == null) return done();
    hook(request, reply, done);
  });
}

/**
 * The fastify plugin: `app.register(fastifyRateLimit, { limiter })`, awaited or not, before or
 * after the routes. It is not encapsulated (like fastify-plugin): every route of the app is
 * limited unless its `config.rateLimit` is false or gives options of its own.
 */
export const fastifyRateLimit = Object.assign(plugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'tollgate',
});
