// The adapters inside the real libraries: express-rate-limit with tollgate's store, on loopback.
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import Fastify, { type FastifyPluginCallback } from 'fastify';
import { rateLimit, type Options } from 'express-rate-limit';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAfter, listen } from './helpers/listen.js';
import { destroySharedMemory, fixedWindow, Limiter, ManualClock, sharedMemory } from '../src/index.js';
import { honoRateLimit, koaRateLimit } from '../src/http-entry.js';
import { ExpressRateLimitStore, FastifyRateLimitStore, NestThrottlerStorage, RateLimiterTollgate } from '../src/adapters-entry.js';

const children: ChildProcess[] = [];
const segments: string[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) child.kill();
  for (const name of segments.splice(0)) destroySharedMemory(name);
});

async function serve(options: Partial<Options>, status = 200): Promise<{ url: string; limiter: ReturnType<typeof rateLimit> }> {
  const app = express();
  const limiter = rateLimit({ windowMs: 60_000, limit: 5, standardHeaders: 'draft-6', legacyHeaders: false, ...options });
  app.use(limiter);
  app.get('/', (_req, res) => {
    res.status(status).send('ok');
  });
  return { url: `${await listen(createServer(app))}/`, limiter };
}

async function startChild(fixture: string, args: string[]): Promise<string> {
  const child = fork(fileURLToPath(new URL(`./fixtures/${fixture}`, import.meta.url)), args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  children.push(child);
  return new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${fixture} exited with ${code}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      const match = /listening on (\S+)/.exec(chunk.toString());
      if (match) resolve(`${match[1]}/`);
    });
  });
}

const statuses = async (url: string, n: number) => (await Promise.all(Array.from({ length: n }, () => fetch(url)))).map((r) => r.status).sort();

describe('express-rate-limit with ExpressRateLimitStore', () => {
  it('lets exactly `limit` of concurrent requests through, with express-rate-limit’s own headers and 429', async () => {
    const { url } = await serve({ store: new ExpressRateLimitStore() });
    expect(await statuses(url, 8)).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    const refused = await fetch(url);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('ratelimit-limit')).toBe('5');
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    const reset = Number(refused.headers.get('ratelimit-reset'));
    expect(reset).toBeGreaterThan(0);
    expect(reset).toBeLessThanOrEqual(60);
  });

  it('counts every hit, the refused ones too, as express-rate-limit’s MemoryStore does', async () => {
    const store = new ExpressRateLimitStore();
    const { url } = await serve({ store });
    await statuses(url, 7);
    const key = (await store.get('127.0.0.1')) ?? (await store.get('::ffff:127.0.0.1'));
    expect(key?.totalHits).toBe(7);
    expect(key?.resetTime).toBeInstanceOf(Date);
    expect(store.get('somebody else')).toBeUndefined();
  });

  it('gives a failed request back (skipFailedRequests decrements) and forgets a client on resetKey', async () => {
    const failing = await serve({ store: new ExpressRateLimitStore(), skipFailedRequests: true }, 500);
    // Every request fails and is given back: the sixth and later still pass the limiter.
    for (let i = 0; i < 8; i++) expect((await fetch(failing.url)).status).toBe(500);

    const { url, limiter } = await serve({ store: new ExpressRateLimitStore() });
    expect(await statuses(url, 6)).toEqual([200, 200, 200, 200, 200, 429]);
    await limiter.resetKey('127.0.0.1');
    await limiter.resetKey('::ffff:127.0.0.1');
    expect((await fetch(url)).status).toBe(200);
  });

  it('starts a new window after windowMs (on the store’s clock)', async () => {
    const clock = new ManualClock(1_000_000);
    const { url } = await serve({ store: new ExpressRateLimitStore({ clock }), limit: 2 });
    expect(await statuses(url, 3)).toEqual([200, 200, 429]);
    clock.advance(59_999);
    expect((await fetch(url)).status).toBe(429);
    clock.advance(1);
    expect(await statuses(url, 3)).toEqual([200, 200, 429]);
  });

  it('with sharedMemory, two processes’ servers enforce one limit together', async () => {
    const name = `erl-${process.pid}-${Date.now()}`;
    segments.push(name);
    const childUrl = await startChild('erl-server.mjs', [name, '5']);
    const { url } = await serve({ windowMs: 3_600_000, store: new ExpressRateLimitStore({ store: sharedMemory({ name, capacity: 1000 }) }) });
    const all = [...(await statuses(url, 6)), ...(await statuses(childUrl, 6))];
    expect(all.filter((s) => s === 200)).toHaveLength(5);
    expect(all.filter((s) => s === 429)).toHaveLength(7);
  });

  it('refuses resetAll on a shared table with a coded error; clears an in-process one', async () => {
    const name = `erl-all-${process.pid}`;
    segments.push(name);
    const shared = new ExpressRateLimitStore({ store: sharedMemory({ name, capacity: 100 }) });
    shared.init({ windowMs: 1000 });
    expect(shared.localKeys).toBe(false);
    expect(() => shared.resetAll()).toThrow(expect.objectContaining({ code: 'TOLLGATE_SHARED_MEMORY' }));
    shared.shutdown();
    const local = new ExpressRateLimitStore();
    local.init({ windowMs: 1000 });
    local.increment('a');
    local.resetAll();
    expect(local.get('a')).toBeUndefined();
    expect(local.localKeys).toBe(true);
  });
});

// Loaded by a name the type checker does not follow: the plugin's types augment fastify's route
// config with its own `rateLimit`, which would clash with tollgate's in test/http.test.ts.
const pluginName: string = '@fastify/rate-limit';
const fastifyRateLimitPlugin = ((await import(pluginName)) as { default: FastifyPluginCallback<Record<string, unknown>> }).default;

describe('@fastify/rate-limit with FastifyRateLimitStore', () => {
  const apps: { close(): Promise<unknown> }[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  async function fastifyServer(store: typeof FastifyRateLimitStore): Promise<string> {
    const app = Fastify();
    apps.push(app);
    await app.register(fastifyRateLimitPlugin, { max: 5, timeWindow: 60_000, store });
    app.get('/', async () => 'ok');
    app.get('/strict', { config: { rateLimit: { max: 2, timeWindow: 60_000 } } }, async () => 'ok');
    return `${await app.listen({ port: 0, host: '127.0.0.1' })}/`;
  }

  it('lets exactly `max` of concurrent requests through, with the plugin’s headers and 429', async () => {
    const url = await fastifyServer(FastifyRateLimitStore);
    expect(await statuses(url, 8)).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    const refused = await fetch(url);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-ratelimit-limit')).toBe('5');
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
  });

  it('counts a route with its own config apart, as the plugin’s own store does', async () => {
    const url = await fastifyServer(FastifyRateLimitStore.with({}));
    expect(await statuses(`${url}strict`, 4)).toEqual([200, 200, 429, 429]);
    expect(await statuses(url, 6)).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it('with sharedMemory, two processes’ servers enforce one limit together', async () => {
    const name = `frl-${process.pid}-${Date.now()}`;
    segments.push(name);
    const childUrl = await startChild('fastify-rl-server.mjs', [name, '5']);
    const app = Fastify();
    apps.push(app);
    await app.register(fastifyRateLimitPlugin, { max: 5, timeWindow: 3_600_000, store: FastifyRateLimitStore.with({ store: sharedMemory({ name, capacity: 1000 }) }) });
    app.get('/', async () => 'ok');
    const url = `${await app.listen({ port: 0, host: '127.0.0.1' })}/`;
    const all = [...(await statuses(url, 6)), ...(await statuses(childUrl, 6))];
    expect(all.filter((s) => s === 200)).toHaveLength(5);
  });

  it('refuses the plugin options it cannot honour, with a coded error', () => {
    expect(() => new FastifyRateLimitStore({ continueExceeding: true })).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/continueExceeding/) }));
    expect(() => new FastifyRateLimitStore({ exponentialBackoff: true })).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT' }));
  });
});

describe('RateLimiterTollgate against rate-limiter-flexible’s RateLimiterMemory', () => {
  type Res = { remainingPoints: number; consumedPoints: number; isFirstInDuration: boolean; msBeforeNext: number };
  const outcome = async (p: Promise<Res | null>) => {
    try {
      const r = await p;
      return { rejected: false, r };
    } catch (e) {
      if (e instanceof Error) throw e;
      return { rejected: true, r: e as Res };
    }
  };
  const fields = (o: { rejected: boolean; r: Res | null }) =>
    o.r === null ? { rejected: o.rejected, r: null } : { rejected: o.rejected, remaining: o.r.remainingPoints, consumed: o.r.consumedPoints, first: o.r.isFirstInDuration };

  it('resolves and rejects as it does, with the same points, over a random sequence', async () => {
    const { RateLimiterMemory } = await import('rate-limiter-flexible');
    const theirs = new RateLimiterMemory({ points: 7, duration: 600 });
    const ours = new RateLimiterTollgate({ points: 7, duration: 600 });
    let seed = 12345;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const consumed = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const key = `k${Math.floor(random() * 20)}`;
      const n = 1 + Math.floor(random() * 3);
      const r = random();
      let a: Awaited<ReturnType<typeof outcome>>;
      let b: Awaited<ReturnType<typeof outcome>>;
      if (r < 0.6) {
        [a, b] = [await outcome(theirs.consume(key, n)), await outcome(ours.consume(key, n))];
        consumed.set(key, (consumed.get(key) ?? 0) + n);
      } else if (r < 0.75) {
        [a, b] = [await outcome(theirs.penalty(key, n)), await outcome(ours.penalty(key, n))];
        consumed.set(key, (consumed.get(key) ?? 0) + n);
      } else if (r < 0.85) {
        // Only within what was consumed, and never all of it: at zero and below the two differ by
        // design (see the README).
        const back = Math.min(n, (consumed.get(key) ?? 0) - 1);
        if (back <= 0) continue;
        [a, b] = [await outcome(theirs.reward(key, back)), await outcome(ours.reward(key, back))];
        consumed.set(key, (consumed.get(key) ?? 0) - back);
        // rate-limiter-flexible reports isFirstInDuration only from consume/penalty creating a key.
        expect(b.r?.isFirstInDuration).toBe(false);
        a = {
          ...a,
          r: a.r === null ? null : { remainingPoints: a.r.remainingPoints, consumedPoints: a.r.consumedPoints, msBeforeNext: a.r.msBeforeNext, isFirstInDuration: false },
        };
      } else if (r < 0.95) {
        [a, b] = [await outcome(theirs.get(key)), await outcome(ours.get(key))];
        if (a.r !== null && a.r.consumedPoints === 0) a = { rejected: false, r: null };
      } else {
        const [x, y] = [await theirs.delete(key), await ours.delete(key)];
        expect(y).toBe(x);
        consumed.delete(key);
        continue;
      }
      expect(fields(b), `op ${i} on ${key}`).toEqual(fields(a));
      // Both count down the same 600 s window (started a moment apart, on different clocks).
      if (b.r !== null) expect(Math.abs(b.r.msBeforeNext - (a.r as Res).msBeforeNext)).toBeLessThan(60_000);
    }
    ours.close();
  });

  it('exactly `points` of many concurrent consumes resolve', async () => {
    const ours = new RateLimiterTollgate({ points: 10, duration: 60 });
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => ours.consume('ip')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).not.toBeInstanceOf(Error);
    expect(rejected.reason).toMatchObject({ remainingPoints: 0 });
    ours.close();
  });

  it('blocks for blockDuration once over, then starts afresh; block() and delete() do as documented', async () => {
    const clock = new ManualClock(0);
    const ours = new RateLimiterTollgate({ points: 2, duration: 10, blockDuration: 60, clock });
    await ours.consume('u', 2);
    await expect(ours.consume('u')).rejects.toMatchObject({ remainingPoints: 0, msBeforeNext: 60_000, consumedPoints: 3 });
    clock.advance(30_000);
    await expect(ours.consume('u')).rejects.toMatchObject({ remainingPoints: 0, msBeforeNext: 30_000 });
    clock.advance(30_000);
    await expect(ours.consume('u')).resolves.toMatchObject({ remainingPoints: 1, consumedPoints: 1, isFirstInDuration: true });
    await expect(ours.block('v', 5)).resolves.toMatchObject({ remainingPoints: 0, msBeforeNext: 5000, consumedPoints: 3 });
    await expect(ours.consume('v')).rejects.toMatchObject({ msBeforeNext: 5000 });
    await expect(ours.delete('v')).resolves.toBe(true);
    await expect(ours.delete('v')).resolves.toBe(false);
    await expect(ours.consume('v')).resolves.toMatchObject({ remainingPoints: 1 });
    await expect(ours.set('w', 2)).resolves.toMatchObject({ consumedPoints: 2, remainingPoints: 0 });
    await expect(ours.consume('w')).rejects.toMatchObject({ consumedPoints: 3 });
    // set() takes any duration, as rate-limiter-flexible's does.
    await expect(ours.set('w', 1, 99)).resolves.toMatchObject({ consumedPoints: 1, msBeforeNext: 99_000 });
    await expect(ours.get('w')).resolves.toMatchObject({ consumedPoints: 1, msBeforeNext: 99_000 });
    // An empty key is a key to rate-limiter-flexible ('rlflx:'), and so it is here.
    expect(await ours.consume('')).toMatchObject({ consumedPoints: 1 });
    expect(() => new RateLimiterTollgate({ execEvenly: 'yes' } as never)).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT' }));
    ours.close();
    await expect(ours.consume('u')).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
  });

  it('with sharedMemory, two limiters on one name count together; keyPrefix keeps limiters apart', async () => {
    const name = `rlf-${process.pid}`;
    segments.push(name);
    const a = new RateLimiterTollgate({ points: 5, duration: 60, store: sharedMemory({ name, capacity: 1000 }) });
    const b = new RateLimiterTollgate({ points: 5, duration: 60, store: sharedMemory({ name, capacity: 1000 }) });
    const other = new RateLimiterTollgate({ points: 5, duration: 60, keyPrefix: 'other', store: sharedMemory({ name, capacity: 1000 }) });
    const settled = await Promise.allSettled([...Array.from({ length: 6 }, () => a.consume('ip')), ...Array.from({ length: 6 }, () => b.consume('ip'))]);
    expect(settled.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    await expect(other.consume('ip')).resolves.toMatchObject({ remainingPoints: 4 });
    for (const l of [a, b, other]) l.close();
  });
});

describe('Koa and Hono middleware', () => {
  async function koaServer(options: Parameters<typeof koaRateLimit>[0]): Promise<string> {
    const { default: Koa } = await import('koa');
    const app = new Koa();
    app.silent = true;
    app.use(koaRateLimit(options));
    app.use((ctx) => {
      ctx.body = 'ok';
    });
    return `${await listen(createServer(app.callback()))}/`;
  }

  async function honoServer(options: Parameters<typeof honoRateLimit>[0]): Promise<string> {
    const { Hono } = await import('hono');
    const { serve } = await import('@hono/node-server');
    const app = new Hono();
    app.use(honoRateLimit(options) as never);
    app.get('/', (c) => c.text('ok'));
    app.onError((_error, c) => c.text('failed', 500));
    return new Promise((resolve) => {
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve(`http://127.0.0.1:${info.port}/`));
      closeAfter(() => new Promise((done) => server.close(done)));
    });
  }

  for (const [name, start] of [
    ['koa', koaServer],
    ['hono', honoServer],
  ] as const) {
    it(`${name}: exactly the limit of concurrent requests pass; refused ones get 429, Retry-After and the problem body`, async () => {
      const url = await start({ limiter: new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 60_000 }) }) });
      expect(await statuses(url, 8)).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
      const refused = await fetch(url);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.headers.get('ratelimit-policy')).toContain('5');
      expect(await refused.json()).toMatchObject({ status: 429 });
    });

    it(`${name}: a header key counts per header value; a request without it is refused with 400`, async () => {
      const url = await start({ limiter: new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 60_000 }) }), key: { header: 'x-api-key' } });
      expect((await fetch(url, { headers: { 'x-api-key': 'a' } })).status).toBe(200);
      expect((await fetch(url, { headers: { 'x-api-key': 'a' } })).status).toBe(429);
      expect((await fetch(url, { headers: { 'x-api-key': 'b' } })).status).toBe(200);
      expect((await fetch(url)).status).toBe(400);
    });

    it(`${name}: behind a trusted proxy, each forwarded client has its own limit; an untrusted header is ignored`, async () => {
      const policy = fixedWindow({ limit: 1, windowMs: 60_000 });
      const trusting = await start({ limiter: new Limiter({ policy }), trustProxy: ['loopback'] });
      const from = (address: string) => ({ headers: { 'x-forwarded-for': address } });
      expect((await fetch(trusting, from('198.51.100.1'))).status).toBe(200);
      expect((await fetch(trusting, from('198.51.100.1'))).status).toBe(429);
      expect((await fetch(trusting, from('198.51.100.2'))).status).toBe(200);
      const untrusting = await start({ limiter: new Limiter({ policy }) });
      expect((await fetch(untrusting, from('198.51.100.1'))).status).toBe(200);
      expect((await fetch(untrusting, from('198.51.100.2'))).status).toBe(429);
    });

    it(`${name}: a limiter that fails goes to the framework's error handling (500), never unhandled`, async () => {
      const limiter = new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 60_000 }) });
      const url = await start({ limiter });
      limiter.close();
      expect((await fetch(url)).status).toBe(500);
    });
  }
});

describe('@nestjs/throttler with NestThrottlerStorage', () => {
  const nest = async (storage: NestThrottlerStorage, throttlers: Record<string, unknown>[]) => {
    const { createNestServer } = (await import('./fixtures/nest-app.mjs' as string)) as {
      createNestServer: (s: unknown, t: unknown) => Promise<{ url: string; close: () => Promise<unknown> }>;
    };
    const server = await createNestServer(storage, throttlers);
    closeAfter(server.close);
    return server.url;
  };

  it('lets exactly `limit` of concurrent requests through, with the guard’s headers and 429', async () => {
    const url = await nest(new NestThrottlerStorage(), [{ ttl: 60_000, limit: 5 }]);
    expect(await statuses(url, 8)).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    const refused = await fetch(url);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('blocks a key over its limit for blockDuration, then counts it afresh', async () => {
    const clock = new ManualClock(0);
    const url = await nest(new NestThrottlerStorage({ clock }), [{ ttl: 10_000, limit: 2, blockDuration: 30_000 }]);
    expect(await statuses(url, 3)).toEqual([200, 200, 429]);
    const blocked = await fetch(url);
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get('retry-after')).toBe('30');
    clock.advance(20_000); // the window is over, the block is not
    expect((await fetch(url)).status).toBe(429);
    clock.advance(10_000);
    expect(await statuses(url, 3)).toEqual([200, 200, 429]);
  });

  it('with sharedMemory, two storages on one name count together', async () => {
    const name = `nest-${process.pid}`;
    segments.push(name);
    const a = new NestThrottlerStorage({ store: sharedMemory({ name, capacity: 1000 }) });
    const b = new NestThrottlerStorage({ store: sharedMemory({ name, capacity: 1000 }) });
    const records = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).increment('k', 60_000, 4, 0, 'default')));
    expect(records.filter((r) => !r.isBlocked)).toHaveLength(4);
    a.onApplicationShutdown();
    b.onApplicationShutdown();
  });
});
