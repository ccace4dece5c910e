// Switching from another limiter without surprises: the app's own proxy setting,
// fastify registration awaited or not.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { describe, expect, it, vi } from 'vitest';
import { fixedWindow, Limiter, sharedMemory, tokenBucket } from '../src/index.js';
import { fastifyRateLimit, honoRateLimit, koaRateLimit, rateLimit } from '../src/http-entry.js';
import { createQueue, limitedFetch } from '../src/client-entry.js';
import { ExpressRateLimitStore, RateLimiterTollgate } from '../src/adapters-entry.js';
import { jitteryFetch, StrictUpstream } from '../scripts/mock-upstream.mjs';
import { closeAfter, listen } from './helpers/listen.js';

const limiterOf = (limit: number) => new Limiter({ policy: fixedWindow({ limit, windowMs: 60_000 }), capacity: 1000 });

/** Status codes of requests sent through a "proxy" on loopback for each client address, in order. */
async function through(url: string, clients: string[]): Promise<number[]> {
  const statuses: number[] = [];
  for (const client of clients) {
    const response = await fetch(url, { headers: { 'x-forwarded-for': client } });
    await response.arrayBuffer();
    statuses.push(response.status);
  }
  return statuses;
}

const threeClients = ['1.1.1.1', '1.1.1.1', '2.2.2.2', '2.2.2.2', '3.3.3.3', '3.3.3.3', '3.3.3.3'];

describe("the app's own proxy setting", () => {
  it("express with app.set('trust proxy', 'loopback'): each client behind the proxy has its own limit (regression: all shared one)", async () => {
    const app = express();
    app.set('trust proxy', 'loopback');
    app.use(rateLimit({ limiter: limiterOf(2) }));
    app.get('/', (_req, res) => void res.send('ok'));
    const url = await listen(createServer(app));
    expect(await through(url, threeClients)).toEqual([200, 200, 200, 200, 200, 200, 429]);
  });

  it('express without a proxy setting: the peer is the client, and the ignored header is warned about once', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const app = express();
      app.use(rateLimit({ limiter: limiterOf(2) }));
      app.get('/', (_req, res) => void res.send('ok'));
      const url = await listen(createServer(app));
      expect(await through(url, ['1.1.1.1', '2.2.2.2', '3.3.3.3'])).toEqual([200, 200, 429]);
      const warnings = warn.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === 'TOLLGATE_UNTRUSTED_FORWARDED_HEADER');
      expect(warnings).toHaveLength(1);
      expect(String(warnings[0]?.[0])).toContain("app.set('trust proxy'");
    } finally {
      warn.mockRestore();
    }
  });

  it("trustProxy, when given, wins over express's setting", async () => {
    const app = express();
    app.set('trust proxy', 'loopback');
    // Only 10.0.0.0/8 is a proxy to this middleware: the loopback peer is the client.
    app.use(rateLimit({ limiter: limiterOf(2), trustProxy: ['10.0.0.0/8'] }));
    app.get('/', (_req, res) => void res.send('ok'));
    const url = await listen(createServer(app));
    expect(await through(url, ['1.1.1.1', '2.2.2.2', '3.3.3.3'])).toEqual([200, 200, 429]);
  });

  it('Koa with app.proxy = true and app.maxIpsCount = 1: each client behind the proxy has its own limit', async () => {
    const app = new Koa();
    app.proxy = true;
    app.maxIpsCount = 1;
    app.use(koaRateLimit({ limiter: limiterOf(2) }));
    app.use((ctx) => {
      ctx.body = 'ok';
    });
    const url = await listen(createServer(app.callback()));
    expect(await through(url, threeClients)).toEqual([200, 200, 200, 200, 200, 200, 429]);
  });

  it('fastify with its trustProxy option: each client behind the proxy has its own limit', async () => {
    const app = Fastify({ trustProxy: '127.0.0.1' });
    await app.register(fastifyRateLimit, { limiter: limiterOf(2) });
    app.get('/', async () => 'ok');
    await app.listen({ port: 0, host: '127.0.0.1' });
    closeAfter(() => app.close());
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    expect(await through(url, threeClients)).toEqual([200, 200, 200, 200, 200, 200, 429]);
  });
});

describe('fastify registration', () => {
  it.each([
    ['not awaited, routes after it', false, 'after'],
    ['awaited, routes after it', true, 'after'],
    ['not awaited, routes before it', false, 'before'],
  ] as const)('%s: limits (regression: an unawaited registration limited nothing)', async (_label, awaited, order) => {
    const app = Fastify();
    const route = () => app.get('/', async () => 'ok');
    if (order === 'before') route();
    const registered = app.register(fastifyRateLimit, { limiter: limiterOf(3) });
    if (awaited) await registered;
    if (order === 'after') route();
    closeAfter(() => app.close());
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await app.inject('/')).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect((await app.inject('/')).headers['x-ratelimit-limit']).toBe('3');
  });
});

describe('unknown options are refused by name', () => {
  const limiter = limiterOf(5);
  const refused = (make: () => unknown, ...fragments: string[]) => {
    let error: (Error & { code?: string }) | undefined;
    try {
      make();
    } catch (e) {
      error = e as Error & { code?: string };
    }
    expect(error, 'it threw').toBeInstanceOf(TypeError);
    expect(error?.code).toBe('TOLLGATE_INVALID_ARGUMENT');
    for (const fragment of fragments) expect(error?.message).toContain(fragment);
  };

  it("another library's name says what to write instead", () => {
    refused(() => rateLimit({ limiter, keyGenerator: () => 'k' } as never), 'keyGenerator', 'key: (req) => string');
    refused(() => rateLimit({ limiter, max: 5 } as never), 'max', 'limiter: new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 60_000 }) })');
    refused(() => rateLimit({ limiter, standardHeaders: true } as never), 'standardHeaders', "headers: 'draft-7'");
    refused(() => koaRateLimit({ limiter, windowMs: 1000 } as never), 'windowMs');
    refused(() => new RateLimiterTollgate({ points: 5, storeType: 'redis' } as never), 'storeType');
    refused(() => new RateLimiterTollgate({ points: 5, storeClient: {} } as never), 'redis');
  });

  it("express-rate-limit's first attempt, rateLimit({ windowMs, limit }), gets the limiter line made from its values", () => {
    const line = 'limiter: new Limiter({ policy: fixedWindow({ limit: 100, windowMs: 900_000 }) })';
    refused(() => rateLimit({ windowMs: 15 * 60 * 1000, limit: 100 } as never), 'rate limit options.windowMs', line, "import { Limiter, fixedWindow } from 'tollgate'");
    refused(() => rateLimit({ limit: 100, windowMs: 15 * 60 * 1000 } as never), 'rate limit options.windowMs', line);
    refused(() => rateLimit({ windowMs: 60_000, max: 10 } as never), 'windowMs', 'fixedWindow({ limit: 10, windowMs: 60_000 })');
    refused(() => rateLimit({ limiter, limit: 100 } as never), 'for limit', 'a per-request limit', 'fixedWindow({ limit: 100, windowMs: 60_000 })');
    refused(() => koaRateLimit({ windowMs: 1000, limit: 3 } as never), 'windowMs', 'fixedWindow({ limit: 3, windowMs: 1000 })');
    refused(() => honoRateLimit({ windowMs: 1000 } as never), 'windowMs', 'fixedWindow({ limit: 5, windowMs: 1000 })');
  });

  it("express-rate-limit's other options name tollgate's way", () => {
    refused(() => rateLimit({ limiter, legacyHeaders: false } as never), 'legacyHeaders', "headers: 'legacy'");
    refused(() => rateLimit({ limiter, store: {} } as never), 'store', 'sharedMemory({ name, capacity })', 'RedisLimiter');
    refused(() => rateLimit({ limiter, requestPropertyName: 'quota' } as never), 'requestPropertyName', 'req.rateLimit', "c.get('rateLimit')");
    refused(() => rateLimit({ limiter, passOnStoreError: true } as never), 'passOnStoreError', "onError: 'allow'");
    refused(() => rateLimit({ limiter, requestWasSuccessful: () => true } as never), 'requestWasSuccessful', 'skipFailedRequests');
    refused(() => rateLimit({ limiter, identifier: 'api' } as never), 'identifier', 'name');
    // Its handler takes (req, res, next, options): tollgate's third argument is the Decision.
    refused(() => rateLimit({ limiter, handler: (_req: unknown, _res: unknown, _next: unknown, _options: unknown) => {} } as never), 'handler', 'statusCode and message');
    refused(() => koaRateLimit({ limiter, handler: (_ctx: unknown, _decision: unknown, _next: unknown) => {} } as never), 'handler');
  });

  it('TypeScript points at those options too', () => {
    // Compiled by `tsc -p tsconfig.test.json`, never called: each line must be a type error.
    const typed = () => {
      // @ts-expect-error windowMs is the policy's
      rateLimit({ limiter, windowMs: 60_000 });
      // @ts-expect-error max is the policy's limit
      rateLimit({ limiter, max: 100 });
      // @ts-expect-error keyGenerator is key
      rateLimit({ limiter, keyGenerator: () => 'k' });
      // @ts-expect-error standardHeaders is headers
      rateLimit({ limiter, standardHeaders: 'draft-7' });
    };
    expect(typeof typed).toBe('function');
  });

  it('@fastify/rate-limit options get the limiter line too', async () => {
    const app = Fastify();
    app.register(fastifyRateLimit, { max: 100, timeWindow: 60_000 } as never);
    await expect(app.ready()).rejects.toMatchObject({
      code: 'TOLLGATE_INVALID_ARGUMENT',
      message: expect.stringContaining('fixedWindow({ limit: 100, windowMs: 60_000 })'),
    });
  });

  it('a near miss of a known option is named', () => {
    refused(() => new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 1000 }), capcity: 10 } as never), 'Limiter options.capcity', 'did you mean capacity?');
    refused(() => fixedWindow({ limit: 1, windowMS: 1000 } as never), 'windowMS', 'did you mean windowMs?');
    refused(() => sharedMemory({ name: 'x', capacity: 10, lockTimeout: 5 } as never), 'lockTimeout', 'did you mean lockTimeoutMs?');
    refused(() => createQueue({ concurency: 2 } as never), 'concurency', 'did you mean concurrency?');
    refused(() => limitedFetch({ request: limiter } as never), 'request', 'did you mean requests?');
    refused(() => new ExpressRateLimitStore({ capacityy: 5 } as never), 'capacityy');
    refused(() => tokenBucket({ capacity: 1, refillPerSec: 1 } as never), 'refillPerSec');
  });

  it('fastify: a misspelt option fails the registration', async () => {
    const app = Fastify();
    app.register(fastifyRateLimit, { limiter, keyGenerator: () => 'k' } as never);
    await expect(app.ready()).rejects.toMatchObject({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringContaining('keyGenerator') });
  });
});

describe("a client held to an upstream's published limit", () => {
  /** An upstream that allows `limit` requests in any `windowMs`, counted on arrival; closed after the test. */
  async function strictUpstream(limit: number, windowMs: number) {
    const upstream = new StrictUpstream({ limit, windowMs });
    const url = await upstream.listen();
    closeAfter(() => upstream.close());
    return { url, upstream };
  }

  it('upstream: { limit: 5, windowMs: 1000 }: no 429 at an upstream that counts arrivals, whatever the jitter (regression: 6-7 of 40)', async () => {
    const { url, upstream } = await strictUpstream(5, 1000);
    const upstreamFetch = limitedFetch({ upstream: { limit: 5, windowMs: 1000 }, fetch: jitteryFetch(7), retry: false });
    const statuses = await Promise.all(Array.from({ length: 25 }, () => upstreamFetch(url).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(upstream.tooMany).toBe(0);
    upstreamFetch.close();
  }, 60_000);

  it('close() rejects the calls still waiting for a place, at once', async () => {
    const { url } = await strictUpstream(100, 60_000);
    const upstreamFetch = limitedFetch({ upstream: { limit: 1, windowMs: 60_000 }, retry: false });
    expect((await upstreamFetch(url)).status).toBe(200);
    const waiting = upstreamFetch(url);
    upstreamFetch.close();
    await expect(waiting).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
  });
});
