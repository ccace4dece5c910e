// The adapter stores on Redis in their libraries' own formats: a fleet half on
// express-rate-limit + rate-limit-redis and half on ExpressRateLimitStore({ redis }) (a rolling
// deploy, either way) keeps one count; the same for @fastify/rate-limit's RedisStore; and
// NestThrottlerStorage instances on one Redis share their counts and blocks.
import { createServer } from 'node:http';
import express from 'express';
import Fastify, { type FastifyPluginCallback } from 'fastify';
import { rateLimit, type Options } from 'express-rate-limit';
import { RedisStore } from 'rate-limit-redis';
import { createClient } from 'redis';
import { describe, expect, it } from 'vitest';
import { closeAfter, listen } from './helpers/listen.js';
import { hasRedis, useRedisServer } from './helpers/redis.js';
import { ExpressRateLimitStore, FastifyRateLimitStore, NestThrottlerStorage } from '../src/adapters-entry.js';

// Loaded by a name the type checker does not follow: the plugin's types augment fastify's route
// options, which the other tests' fastify apps do not expect.
const pluginName: string = '@fastify/rate-limit';
const fastifyRateLimitPlugin = ((await import(pluginName)) as { default: FastifyPluginCallback<Record<string, unknown>> }).default;

const WINDOW_MS = 60_000;

describe.runIf(hasRedis)('ExpressRateLimitStore({ redis }) and rate-limit-redis on one Redis', () => {
  const s = useRedisServer();
  const peerStore = (prefix?: string) => new RedisStore({ sendCommand: (command: string, ...args: string[]) => s.redis.call(command, ...args) as never, ...(prefix === undefined ? {} : { prefix }) });

  /** An express app limiting every request under `key`, with `store`. */
  async function app(store: Options['store'], key: string, extra: Partial<Options> = {}): Promise<string> {
    const a = express();
    a.use(rateLimit({ windowMs: WINDOW_MS, limit: 5, standardHeaders: 'draft-6', legacyHeaders: false, keyGenerator: () => key, store, ...extra }));
    a.get('/', (_req, res) => {
      res.send('ok');
    });
    return `${await listen(createServer(a))}/`;
  }
  const statuses = async (url: string, n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await fetch(url)).status);
    return out;
  };

  it('rate-limit-redis first, then tollgate: one count, one window (the rolling deploy onto tollgate)', async () => {
    const before = await app(peerStore(), 'roll-on');
    const after = await app(new ExpressRateLimitStore({ redis: s.redis }), 'roll-on');
    expect(await statuses(before, 3)).toEqual([200, 200, 200]);
    const ttlBefore = await s.redis.pttl('rl:roll-on');
    const refused = await statuses(after, 3);
    expect(refused).toEqual([200, 200, 429]);
    expect(await s.redis.get('rl:roll-on')).toBe('6');
    // tollgate kept the window rate-limit-redis started (it never set the expiry again).
    const ttlAfter = await s.redis.pttl('rl:roll-on');
    expect(ttlAfter).toBeGreaterThan(0);
    expect(ttlAfter).toBeLessThanOrEqual(ttlBefore);
    const res = await fetch(after);
    expect(res.headers.get('ratelimit-remaining')).toBe('0');
    expect(Number(res.headers.get('ratelimit-reset'))).toBeLessThanOrEqual(60);
  });

  it('tollgate first, then rate-limit-redis: one count (the roll back), with a custom prefix', async () => {
    const ours = await app(new ExpressRateLimitStore({ redis: s.redis, prefix: 'api:' }), 'roll-back');
    const theirs = await app(peerStore('api:'), 'roll-back');
    expect(await statuses(ours, 4)).toEqual([200, 200, 200, 200]);
    const ttl = await s.redis.pttl('api:roll-back');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(WINDOW_MS);
    expect(await statuses(theirs, 2)).toEqual([200, 429]);
    expect(await s.redis.get('api:roll-back')).toBe('6');
  });

  it('get, decrement and resetKey meet the other store’s counts (node-redis on tollgate’s side)', async () => {
    const client = createClient({ socket: { host: s.server.host, port: s.server.port } });
    client.on('error', () => undefined);
    await client.connect();
    closeAfter(async () => void client.destroy());
    const ours = new ExpressRateLimitStore({ redis: client });
    ours.init({ windowMs: WINDOW_MS, limit: 5 });
    const theirs = peerStore();
    await theirs.init({ windowMs: WINDOW_MS } as never);
    await theirs.increment('shared');
    await theirs.increment('shared');
    expect(await ours.increment('shared')).toMatchObject({ totalHits: 3 });
    expect((await ours.get('shared'))?.totalHits).toBe(3);
    await ours.decrement('shared');
    expect((await theirs.get('shared'))?.totalHits).toBe(2);
    await theirs.decrement('shared');
    expect((await ours.get('shared'))?.totalHits).toBe(1);
    await ours.resetKey('shared');
    expect(await s.redis.exists('rl:shared')).toBe(0);
    expect(await ours.get('shared')).toBeUndefined();
    // A decrement of a count that is gone makes nothing (rate-limit-redis' DECR would leave -1).
    await ours.decrement('shared');
    expect(await s.redis.exists('rl:shared')).toBe(0);
  });

  it('a count rate-limit-redis left without an expiry (its DECR of an expired key) starts a window, as rate-limit-redis 6 does', async () => {
    await s.redis.set('rl:orphan', '-1');
    const ours = new ExpressRateLimitStore({ redis: s.redis });
    ours.init({ windowMs: WINDOW_MS });
    expect(await ours.increment('orphan')).toMatchObject({ totalHits: 1 });
    const ttl = await s.redis.pttl('rl:orphan');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(WINDOW_MS);
  });

  it('resetExpiryOnChange: every hit starts the window again (rate-limit-redis 4-5)', async () => {
    const ours = new ExpressRateLimitStore({ redis: s.redis, resetExpiryOnChange: true });
    ours.init({ windowMs: WINDOW_MS });
    await ours.increment('sliding');
    await s.redis.pexpire('rl:sliding', 1000);
    await ours.increment('sliding');
    expect(await s.redis.pttl('rl:sliding')).toBeGreaterThan(1000);
  });

  it('a key holding another program’s value is an error (TOLLGATE_REDIS_STATE_MISMATCH), left as it was', async () => {
    await s.redis.hset('rl:foreign', 'a', '1');
    await s.redis.set('rl:text', 'hello', 'PX', 60_000);
    const ours = new ExpressRateLimitStore({ redis: s.redis, onError: 'allow' });
    await expect(ours.increment('foreign')).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_STATE_MISMATCH' });
    await expect(ours.increment('text')).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_STATE_MISMATCH' });
    expect(await s.redis.type('rl:foreign')).toBe('hash');
    expect(await s.redis.get('rl:text')).toBe('hello');
  });

  it('a script cache flushed on Redis (a restart, a failover, SCRIPT FLUSH) is refilled: the next call still counts', async () => {
    const ours = new ExpressRateLimitStore({ redis: s.redis, onError: 'deny' });
    ours.init({ windowMs: WINDOW_MS, limit: 5 });
    expect(await ours.increment('flushed')).toMatchObject({ totalHits: 1 });
    await s.redis.script('FLUSH');
    expect(await ours.increment('flushed')).toMatchObject({ totalHits: 2 });
    expect(await s.redis.get('rl:flushed')).toBe('2');
  });

  it('is not local: express-rate-limit sees localKeys false and the prefix', () => {
    const store = new ExpressRateLimitStore({ redis: s.redis, prefix: 'x:' });
    expect(store.localKeys).toBe(false);
    expect(store.prefix).toBe('x:');
    expect(() => store.resetAll()).toThrow(expect.objectContaining({ code: 'TOLLGATE_REDIS_UNSUPPORTED' }));
  });
});

describe.runIf(hasRedis)('FastifyRateLimitStore.with({ redis }) and @fastify/rate-limit’s RedisStore on one Redis', () => {
  const s = useRedisServer();

  /** A fastify app with the plugin: its own RedisStore (`store` undefined) or tollgate's. */
  async function app(store: typeof FastifyRateLimitStore | undefined, key: string, settings: Record<string, unknown> = {}): Promise<string> {
    const a = Fastify();
    closeAfter(() => a.close());
    await a.register(fastifyRateLimitPlugin, { max: 5, timeWindow: WINDOW_MS, keyGenerator: () => key, ...(store === undefined ? { redis: s.redis } : { store }), ...settings });
    a.get('/', async () => 'ok');
    a.get('/strict', { config: { rateLimit: { max: 2, timeWindow: WINDOW_MS } } }, async () => 'ok');
    return a.listen({ port: 0, host: '127.0.0.1' });
  }
  const statuses = async (url: string, n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await fetch(url)).status);
    return out;
  };

  it('the plugin’s RedisStore first, then tollgate, and back: one count', async () => {
    const theirs = await app(undefined, 'both');
    const ours = await app(FastifyRateLimitStore.with({ redis: s.redis }), 'both');
    expect(await statuses(theirs, 2)).toEqual([200, 200]);
    expect(await statuses(ours, 2)).toEqual([200, 200]);
    expect(await statuses(theirs, 2)).toEqual([200, 429]);
    expect(await statuses(ours, 1)).toEqual([429]);
    expect(await s.redis.get('fastify-rate-limit-both')).toBe('7');
    const ttl = await s.redis.pttl('fastify-rate-limit-both');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(WINDOW_MS);
  });

  it('a route with its own config counts under the plugin’s route key, on both', async () => {
    const theirs = await app(undefined, 'route', { nameSpace: 'ns-' });
    const ours = await app(FastifyRateLimitStore.with({ redis: s.redis, prefix: 'ns-' }), 'route');
    expect(await statuses(`${ours}/strict`, 1)).toEqual([200]);
    expect(await statuses(`${theirs}/strict`, 2)).toEqual([200, 429]);
    expect(await s.redis.get('ns-GET/strict-route')).toBe('3');
    expect(await s.redis.exists('ns-route')).toBe(0);
  });

  it('exponentialBackoff and continueExceeding shape the window as the plugin’s script does', async () => {
    const theirs = await app(undefined, 'backoff', { max: 1, timeWindow: 10_000, exponentialBackoff: true });
    const ours = await app(FastifyRateLimitStore.with({ redis: s.redis }), 'backoff', { max: 1, timeWindow: 10_000, exponentialBackoff: true });
    expect(await statuses(theirs, 2)).toEqual([200, 429]);
    // The third hit is two over max: its window is 2 * timeWindow.
    expect(await statuses(ours, 1)).toEqual([429]);
    const ttl = await s.redis.pttl('fastify-rate-limit-backoff');
    expect(ttl).toBeGreaterThan(10_000);
    expect(ttl).toBeLessThanOrEqual(20_000);

    const continuing = await app(FastifyRateLimitStore.with({ redis: s.redis }), 'continue', { max: 1, timeWindow: 10_000, continueExceeding: true });
    expect(await statuses(continuing, 1)).toEqual([200]);
    await s.redis.pexpire('fastify-rate-limit-continue', 500);
    // Over max: the window starts again with this hit.
    expect(await statuses(continuing, 1)).toEqual([429]);
    expect(await s.redis.pttl('fastify-rate-limit-continue')).toBeGreaterThan(500);
  });

  it('read (increment: false) sees the count without adding to it', async () => {
    const Store = FastifyRateLimitStore.with({ redis: s.redis });
    const store = new Store({});
    const read = () => new Promise((resolve, reject) => store.read('reader', (e, r) => (e ? reject(e) : resolve(r)), WINDOW_MS));
    const incr = () => new Promise((resolve, reject) => store.incr('reader', (e, r) => (e ? reject(e) : resolve(r)), WINDOW_MS, 5));
    expect(await read()).toEqual({ current: 0, ttl: 0 });
    expect(await incr()).toEqual({ current: 1, ttl: WINDOW_MS });
    expect(await read()).toMatchObject({ current: 1 });
    expect(await s.redis.get('fastify-rate-limit-reader')).toBe('1');
  });
});

describe.runIf(hasRedis)('NestThrottlerStorage({ redis }): storages on one Redis share counts and blocks', () => {
  const s = useRedisServer();

  it('two storages count one limit for a throttler, ttl and key', async () => {
    const a = new NestThrottlerStorage({ redis: s.redis, prefix: 'nest-a:' });
    const b = new NestThrottlerStorage({ redis: s.redis, prefix: 'nest-a:' });
    const hits = [];
    for (const storage of [a, b, a, b]) hits.push(await storage.increment('client', WINDOW_MS, 3, 0, 'default'));
    expect(hits.map((h) => [h.totalHits, h.isBlocked])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, true],
    ]);
    expect(hits[0]?.timeToExpire).toBeLessThanOrEqual(60);
    // Another throttler name or prefix counts apart.
    expect((await b.increment('client', WINDOW_MS, 3, 0, 'other')).totalHits).toBe(1);
    expect((await new NestThrottlerStorage({ redis: s.redis, prefix: 'nest-b:' }).increment('client', WINDOW_MS, 3, 0, 'default')).totalHits).toBe(1);
    a.onApplicationShutdown();
    b.onApplicationShutdown();
  });

  it('a block one storage sets holds on the other', async () => {
    const a = new NestThrottlerStorage({ redis: s.redis, prefix: 'nest-c:' });
    const b = new NestThrottlerStorage({ redis: s.redis, prefix: 'nest-c:' });
    await a.increment('k', WINDOW_MS, 1, 0, 'default');
    const blocked = await a.increment('k', WINDOW_MS, 1, 30_000, 'default');
    expect(blocked).toMatchObject({ isBlocked: true, timeToBlockExpire: 30 });
    const seen = await b.increment('k', WINDOW_MS, 1, 30_000, 'default');
    expect(seen.isBlocked).toBe(true);
    expect(seen.timeToBlockExpire).toBeGreaterThan(0);
    expect(seen.timeToBlockExpire).toBeLessThanOrEqual(30);
    a.onApplicationShutdown();
    b.onApplicationShutdown();
  });
});
