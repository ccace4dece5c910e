// The middleware's own cost, in process: each variant runs on real http.IncomingMessage and
// ServerResponse objects (no sockets), so the figure is CPU spent per request, not what a load
// generator on a shared VM manages to push through.
//   express/node: the middleware function is called directly; cost over a bare `next()`.
//   fastify: the whole fastify request path (app.routing: routing, hooks, handler, reply, headers
//   written) with the limiter, over the same app with an empty onRequest hook.
//   koa, hono (through @hono/node-server): the whole app with the limiter, over the same app with
//   a pass-through middleware.
// Variants alternate within every round; the figure is the median over rounds of the paired
// difference (variant − bare in the same round), so slow phases of the machine cancel out.
//   node bench/suites/http-cost.mjs [rounds] [requestsPerRound]
import http from 'node:http';
import net from 'node:net';
import { progress, report } from '../common.mjs';

const rounds = Number(process.argv[2] ?? 40);
const perRound = Number(process.argv[3] ?? 2000);
const LIMIT = 1e9;
const ADDRESS = '203.0.113.7';

/** A request and response as node:http makes them, on a socket that never connects. */
function pair() {
  const socket = new net.Socket();
  Object.defineProperty(socket, 'remoteAddress', { value: ADDRESS });
  const req = new http.IncomingMessage(socket);
  req.method = 'GET';
  req.url = '/';
  req.headers = { host: 'localhost', 'user-agent': 'bench' };
  req.rawHeaders = ['Host', 'localhost', 'User-Agent', 'bench'];
  req.httpVersion = '1.1';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.ip = ADDRESS; // what express sets; express-rate-limit reads it
  const res = new http.ServerResponse(req);
  return { req, res };
}

async function tollgate() {
  const { Limiter, fixedWindow } = await import('../../dist/index.js');
  return new Limiter({ policy: fixedWindow({ limit: LIMIT, windowMs: 60_000 }), capacity: 100_000 });
}

/** Express/node middlewares: (req, res, next). */
async function nodeVariants() {
  const { rateLimit } = await import('../../dist/http-entry.js');
  const { rateLimit: erl } = await import('express-rate-limit');
  const { hitlimit } = await import('@joint-ops/hitlimit');
  return {
    bare: (_req, _res, next) => next(),
    'tollgate (default: legacy + draft-8)': rateLimit({ limiter: await tollgate() }),
    'tollgate (legacy)': rateLimit({ limiter: await tollgate(), headers: 'legacy' }),
    'tollgate (draft-8)': rateLimit({ limiter: await tollgate(), headers: 'draft-8' }),
    'tollgate (no headers)': rateLimit({ limiter: await tollgate(), headers: false }),
    'express-rate-limit (defaults)': erl({ windowMs: 60_000, limit: LIMIT, validate: false }),
    'express-rate-limit + ExpressRateLimitStore': erl({
      windowMs: 60_000,
      limit: LIMIT,
      validate: false,
      store: new (await import('../../dist/adapters-entry.js')).ExpressRateLimitStore(),
    }),
    'hitlimit (defaults)': hitlimit({ limit: LIMIT, window: '1m' }),
  };
}

/**
 * Runs `count` requests through `mw`; resolves when every one has reached next(). Each request's
 * objects are made just before it runs, as a server makes them: warm in cache, like the real thing
 * (a batch made up front measured cache misses, about 1 µs per header written).
 */
function runNode(mw, count) {
  let done = 0;
  const next = () => {
    done++;
  };
  return new Promise((resolve) => {
    for (let i = 0; i < count; i++) {
      const { req, res } = pair();
      mw(req, res, next);
    }
    const wait = () => (done === count ? resolve() : setImmediate(wait));
    wait();
  });
}

/** Fastify apps, one per variant, driven through app.routing(req, res). */
async function fastifyVariants() {
  const { default: Fastify } = await import('fastify');
  const { fastifyRateLimit } = await import('../../dist/http-entry.js');
  const { default: fastifyPeer } = await import('@fastify/rate-limit');
  const { hitlimit } = await import('@joint-ops/hitlimit/fastify');
  const make = async (setup) => {
    const app = Fastify();
    await setup(app);
    app.get('/', async () => 'hello');
    await app.ready();
    return app;
  };
  return {
    bare: await make(async (app) => app.addHook('onRequest', (_req, _reply, done) => done())),
    'tollgate (default: legacy + draft-8)': await make(async (app) => app.register(fastifyRateLimit, { limiter: await tollgate() })),
    'tollgate (legacy)': await make(async (app) => app.register(fastifyRateLimit, { limiter: await tollgate(), headers: 'legacy' })),
    'tollgate (draft-8)': await make(async (app) => app.register(fastifyRateLimit, { limiter: await tollgate(), headers: 'draft-8' })),
    'tollgate (no headers)': await make(async (app) => app.register(fastifyRateLimit, { limiter: await tollgate(), headers: false })),
    '@fastify/rate-limit (defaults)': await make(async (app) => app.register(fastifyPeer, { max: LIMIT, timeWindow: 60_000 })),
    '@fastify/rate-limit + FastifyRateLimitStore': await make(async (app) =>
      app.register(fastifyPeer, { max: LIMIT, timeWindow: 60_000, store: (await import('../../dist/adapters-entry.js')).FastifyRateLimitStore }),
    ),
    'hitlimit (defaults)': await make(async (app) => app.register(hitlimit, { limit: LIMIT, window: '1m' })),
  };
}

/** What tollgate's default headers look like: setting these alone is the framework's floor. */
const SAMPLE_HEADERS = [
  ['X-RateLimit-Limit', '1000000000'],
  ['X-RateLimit-Remaining', '999999999'],
  ['X-RateLimit-Reset', '60'],
  ['RateLimit-Policy', '"default";q=1000000000;w=60'],
  ['RateLimit', '"default";r=999999999;t=60'],
];

/** Koa apps, one per variant, driven through app.callback()(req, res). */
async function koaVariants() {
  const { default: Koa } = await import('koa');
  const { koaRateLimit } = await import('../../dist/http-entry.js');
  const { default: koaRatelimit } = await import('koa-ratelimit');
  const make = (middleware) => {
    const app = new Koa();
    app.use(middleware);
    app.use((ctx) => {
      ctx.body = 'hello';
    });
    return app.callback();
  };
  return {
    bare: make((_ctx, next) => next()),
    'floor: the same five headers set, no limiter': make((ctx, next) => {
      for (const [name, value] of SAMPLE_HEADERS) ctx.set(name, value);
      return next();
    }),
    'tollgate koaRateLimit (default: legacy + draft-8)': make(koaRateLimit({ limiter: await tollgate() })),
    'koa-ratelimit (memory driver)': make(koaRatelimit({ driver: 'memory', db: new Map(), duration: 60_000, max: LIMIT, id: (ctx) => ctx.ip })),
  };
}

/** Hono apps, one per variant, driven through @hono/node-server's request listener. */
async function honoVariants() {
  const { Hono } = await import('hono');
  const { getRequestListener } = await import('@hono/node-server');
  const { honoRateLimit } = await import('../../dist/http-entry.js');
  const { rateLimiter } = await import('hono-rate-limiter');
  const make = (middleware) => {
    const app = new Hono();
    app.use(middleware);
    app.get('/', (c) => c.text('hello'));
    return getRequestListener(app.fetch);
  };
  return {
    bare: make((_c, next) => next()),
    'floor: the same five headers set, no limiter': make((c, next) => {
      for (const [name, value] of SAMPLE_HEADERS) c.header(name, value);
      return next();
    }),
    'tollgate honoRateLimit (default: legacy + draft-8)': make(honoRateLimit({ limiter: await tollgate() })),
    'hono-rate-limiter (defaults)': make(rateLimiter({ windowMs: 60_000, limit: LIMIT, keyGenerator: (c) => c.env.incoming.socket.remoteAddress })),
  };
}

/** Runs `count` requests through a node (req, res) handler; resolves when every response has ended. */
function runHandler(handle, count) {
  let done = 0;
  return new Promise((resolve, reject) => {
    for (let i = 0; i < count; i++) {
      const { req, res } = pair();
      const end = res.end;
      res.end = function ended(...args) {
        if (this.statusCode !== 200) reject(new Error(`status ${this.statusCode}`));
        done++;
        // Let the framework finish its own bookkeeping (a socketless response writes nowhere).
        return end.apply(this, args);
      };
      handle(req, res);
    }
    const wait = () => (done === count ? resolve() : setImmediate(wait));
    wait();
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function compare(framework, variants, run) {
  const names = Object.keys(variants);
  const perRequest = Object.fromEntries(names.map((n) => [n, []]));
  // Warm-up: every variant optimised before anything is timed.
  for (let i = 0; i < 5; i++) for (const n of names) await run(variants[n], perRound);
  for (let round = 0; round < rounds; round++) {
    // Alternate the order each round so no variant always runs after the same one.
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const n of order) {
      const started = process.hrtime.bigint();
      await run(variants[n], perRound);
      perRequest[n].push(Number(process.hrtime.bigint() - started) / perRound);
    }
  }
  const figures = {};
  for (const n of names) {
    const overBare = perRequest[n].map((ns, i) => ns - perRequest.bare[i]);
    figures[n] = { ns: median(perRequest[n]), overBareNs: median(overBare) };
    progress(`${framework} ${n.padEnd(40)} ${median(perRequest[n]).toFixed(0).padStart(7)} ns/request, ${median(overBare).toFixed(0).padStart(6)} ns over bare`);
  }
  return figures;
}

const figures = {
  rounds,
  perRound,
  express: await compare('express/node', await nodeVariants(), runNode),
  fastify: await compare('fastify', Object.fromEntries(Object.entries(await fastifyVariants()).map(([n, app]) => [n, (req, res) => app.routing(req, res)])), runHandler),
  koa: await compare('koa', await koaVariants(), runHandler),
  hono: await compare('hono', await honoVariants(), runHandler),
};
report('http-cost', figures);
