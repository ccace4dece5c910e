// The adapters inside the real libraries: express-rate-limit with tollgate's store, on loopback.
import { fork, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import Fastify, { type FastifyPluginCallback } from 'fastify';
import { rateLimit, type Options } from 'express-rate-limit';
import { afterEach, describe, expect, it } from 'vitest';
import { destroySharedMemory, ExpressRateLimitStore, FastifyRateLimitStore, ManualClock, sharedMemory } from '../src/index.js';

const servers: Server[] = [];
const children: ChildProcess[] = [];
const segments: string[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
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
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { url: `http://127.0.0.1:${address.port}/`, limiter };
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
