// A fastify plugin: app.register(fastifyRateLimit, { limiter, ... }), with per-route
// `config: { rateLimit: { ... } | false }`. Fastify itself is not imported: the types below are
// the little of it this plugin touches.
import type { IncomingMessage } from 'node:http';
import type { Decision } from '../decision.js';
import { MISSING_KEY_BODY, problemBody, type HeaderSink } from './headers.js';
import { RateLimitRule, type RateLimitOptions, type Verdict } from './rule.js';

interface FastifyRequestLike {
  readonly raw: IncomingMessage;
  readonly url: string;
}
interface FastifyReplyLike {
  header(name: string, value: string): unknown;
  code(status: number): FastifyReplyLike;
  send(payload?: unknown): unknown;
}
type Done = (error?: Error) => void;
type Hook = (request: FastifyRequestLike, reply: FastifyReplyLike, done: Done) => void;
interface RouteOptionsLike {
  config?: { rateLimit?: Partial<FastifyRateLimitOptions> | false };
  onRequest?: Hook | Hook[];
}
interface FastifyInstanceLike {
  addHook(name: 'onRoute', hook: (route: RouteOptionsLike) => void): unknown;
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
  const apply = (verdict: Verdict, request: FastifyRequestLike, reply: FastifyReplyLike, done: Done) => {
    const response = rule.respond(verdict, reply, writeHeader);
    if (response === 'pass') return done();
    if (response === 'missing-key') {
      reply.code(400).header('content-type', 'application/problem+json');
      reply.send(MISSING_KEY_BODY);
      return;
    }
    if (options.handler !== undefined) {
      const result = options.handler(request, reply, response.refused);
      if (typeof (result as { then?: unknown } | undefined)?.then === 'function') (result as Promise<unknown>).then(undefined, (e: unknown) => done(e as Error));
      return;
    }
    reply.code(429).header('content-type', 'application/problem+json');
    reply.send(problemBody(response.refused, request.url));
  };
  return function tollgateRateLimit(request, reply, done) {
    // Every error (an option function, the limiter, a custom handler) goes to fastify's error
    // handling through done(), never left as an unhandled rejection.
    const finish = (v: Verdict) => {
      try {
        apply(v, request, reply, done);
      } catch (error) {
        done(error as Error);
      }
    };
    let verdict: Verdict | Promise<Verdict>;
    try {
      verdict = rule.run(request.raw, request);
    } catch (error) {
      return done(error as Error);
    }
    if (verdict instanceof Promise) verdict.then(finish, (error: unknown) => done(error as Error));
    else finish(verdict);
  };
}

// `instance` is typed unknown so that fastify's own (overloaded) instance type is accepted as is.
async function plugin(instance: unknown, options: FastifyRateLimitOptions): Promise<void> {
  const fastify = instance as FastifyInstanceLike;
  const global = options.limiter === undefined ? undefined : new RateLimitRule<FastifyRequestLike>(options as RateLimitOptions<FastifyRequestLike>);
  fastify.addHook('onRoute', (route) => {
    const config = route.config?.rateLimit;
    if (config === false) return;
    const rule = config === undefined ? global : new RateLimitRule<FastifyRequestLike>({ ...options, ...config } as RateLimitOptions<FastifyRequestLike>);
    if (rule === undefined) return;
    const hook = hookFor(rule, { ...options, ...(config ?? {}) });
    const existing = route.onRequest;
    route.onRequest = existing === undefined ? [hook] : Array.isArray(existing) ? [hook, ...existing] : [hook, existing];
  });
}

/**
 * The fastify plugin. Register it before the routes it should limit; it is not encapsulated
 * (like fastify-plugin), so it sees routes declared anywhere after it.
 */
export const fastifyRateLimit = Object.assign(plugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'tollgate',
});
