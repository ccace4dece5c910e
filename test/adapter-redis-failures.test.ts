// The adapter stores on Redis when Redis fails: every call settles within its timeout,
// onError answers ('allow', 'deny', or a function of the coded error), the libraries answer their
// 200 or 429 without crashing; a store shut down ends its calls still out with TOLLGATE_CLOSED;
// and the options refuse what cannot go with `redis`, saying why.
import { createServer as createTcpServer, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasRedis, startRedis } from './helpers/redis.js';
import { sharedMemory, type RedisCommandSender } from '../src/index.js';
import { ExpressRateLimitStore, FastifyRateLimitStore, NestThrottlerStorage } from '../src/adapters-entry.js';

/** A "Redis" that accepts connections and never answers: every call must end by its timeout. */
let silentPort = 0;
const sockets: Socket[] = [];
const silent = createTcpServer((socket) => {
  sockets.push(socket);
  socket.on('error', () => undefined);
});
let silentClient: Redis;
beforeAll(async () => {
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentPort = (silent.address() as { port: number }).port;
  silentClient = new Redis({ host: '127.0.0.1', port: silentPort, lazyConnect: false, enableReadyCheck: false, maxRetriesPerRequest: null });
  silentClient.on('error', () => undefined);
});
afterAll(async () => {
  silentClient.disconnect();
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
});

const incr = (store: FastifyRateLimitStore, key: string, max: number) => new Promise((resolve, reject) => store.incr(key, (e, r) => (e ? reject(e) : resolve(r)), 60_000, max));

describe('onError when Redis does not answer', () => {
  it('express: allow answers a first hit, deny one past the limit; a function sees the coded error', async () => {
    const allow = new ExpressRateLimitStore({ redis: silentClient, timeoutMs: 50, breaker: false });
    allow.init({ windowMs: 60_000, limit: 5 });
    expect(await allow.increment('k')).toMatchObject({ totalHits: 1 });

    const deny = new ExpressRateLimitStore({ redis: silentClient, timeoutMs: 50, onError: 'deny' });
    deny.init({ windowMs: 60_000, limit: 5 });
    expect(await deny.increment('k')).toMatchObject({ totalHits: 6 });

    const seen: string[] = [];
    const chooser = new ExpressRateLimitStore({
      redis: silentClient,
      timeoutMs: 50,
      onError: (error, key) => {
        seen.push(`${error.code} ${key}`);
        return 'deny';
      },
    });
    chooser.init({ windowMs: 60_000, limit: 5 });
    expect(await chooser.increment('who')).toMatchObject({ totalHits: 6 });
    expect(seen).toEqual(['TOLLGATE_REDIS_TIMEOUT who']);
    // Calls no decision rests on reject with the coded error.
    await expect(chooser.get('who')).rejects.toMatchObject({ code: expect.stringMatching(/^TOLLGATE_REDIS_/) });
    // The hit onError answered was not counted: giving it back (skipFailedRequests) sends nothing
    // (a call sent here would time out); one more give-back has nothing of this process's to take.
    await expect(chooser.decrement('who')).resolves.toBeUndefined();
    await expect(chooser.decrement('who')).rejects.toMatchObject({ code: expect.stringMatching(/^TOLLGATE_REDIS_/) });

    const throwing = new ExpressRateLimitStore({
      redis: silentClient,
      timeoutMs: 50,
      onError: () => {
        throw new Error('mine');
      },
    });
    await expect(throwing.increment('k')).rejects.toThrow('mine');
  });

  it('the breaker: once a call failed, the next goes to onError without waiting for Redis', async () => {
    const seen: string[] = [];
    const store = new ExpressRateLimitStore({ redis: silentClient, timeoutMs: 100, breaker: { retryMs: 60_000 }, onError: (e) => (seen.push(e.code), 'allow') });
    await store.increment('a');
    await store.increment('b');
    expect(seen).toEqual(['TOLLGATE_REDIS_TIMEOUT', 'TOLLGATE_REDIS_UNAVAILABLE']);
  });

  it('fastify: deny answers max + 1, allow a first hit; the callback is called once, with no error', async () => {
    const Deny = FastifyRateLimitStore.with({ redis: silentClient, timeoutMs: 50, onError: 'deny' });
    expect(await incr(new Deny({}), 'k', 3)).toEqual({ current: 4, ttl: 1000 });
    const Allow = FastifyRateLimitStore.with({ redis: silentClient, timeoutMs: 50 });
    expect(await incr(new Allow({}), 'k', 3)).toEqual({ current: 1, ttl: 60_000 });
  });

  it('nest: deny refuses (blocked for a second), allow lets through', async () => {
    const deny = new NestThrottlerStorage({ redis: silentClient, timeoutMs: 50, onError: 'deny' });
    expect(await deny.increment('k', 60_000, 3, 10_000, 'default')).toMatchObject({ isBlocked: true, timeToBlockExpire: 1 });
    const allow = new NestThrottlerStorage({ redis: silentClient, timeoutMs: 50 });
    expect(await allow.increment('k', 60_000, 3, 0, 'default')).toMatchObject({ isBlocked: false });
    deny.onApplicationShutdown();
    allow.onApplicationShutdown();
  });
});

describe.runIf(hasRedis)('onError when Redis goes away', () => {
  let server: Awaited<ReturnType<typeof startRedis>>;
  let client: Redis;
  beforeAll(async () => {
    server = await startRedis();
    // No offline queue: once the server is gone, commands fail at once instead of waiting for it.
    client = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0, enableOfflineQueue: false });
    client.on('error', () => undefined);
    await new Promise((resolve) => client.once('ready', resolve));
  });
  afterAll(() => client.disconnect());

  it('counts while Redis is up, then onError decides once it stopped, and no call is left pending', async () => {
    const store = new ExpressRateLimitStore({ redis: client, onError: 'deny', breaker: false });
    store.init({ windowMs: 60_000, limit: 2 });
    expect(await store.increment('k')).toMatchObject({ totalHits: 1 });
    const Fastify = FastifyRateLimitStore.with({ redis: client, onError: 'deny', breaker: false });
    const fastify = new Fastify({});
    expect(await incr(fastify, 'k', 2)).toMatchObject({ current: 1 });
    await server.stop();
    const settled = await Promise.allSettled([store.increment('k'), incr(fastify, 'k', 2), store.get('k'), store.resetKey('k')]);
    expect(settled[0]).toMatchObject({ status: 'fulfilled', value: { totalHits: 3 } });
    expect(settled[1]).toMatchObject({ status: 'fulfilled', value: { current: 3 } });
    expect(settled[2]).toMatchObject({ status: 'rejected' });
    expect(settled[3]).toMatchObject({ status: 'rejected' });
  });
});

describe.runIf(hasRedis)('a give-back after a hit onError answered (skipFailedRequests during an outage)', () => {
  it('takes nothing off the count on Redis: three counted, two answered by onError and given back, still three', async () => {
    const server = await startRedis();
    const client = new Redis({ host: server.host, port: server.port });
    const admin = new Redis({ host: server.host, port: server.port });
    client.on('error', () => undefined);
    admin.on('error', () => undefined);
    try {
      const store = new ExpressRateLimitStore({ redis: client, timeoutMs: 100, breaker: false });
      store.init({ windowMs: 60_000, limit: 10 });
      for (let i = 0; i < 3; i++) await store.increment('k');
      // Writes held by the server until after both increments timed out (no timing assumption:
      // the pause outlasts the timeout by far, and the give-backs run once both have answered).
      await admin.call('CLIENT', 'PAUSE', '2000', 'WRITE');
      const answered = await Promise.all([store.increment('k'), store.increment('k')]);
      expect(answered).toEqual([expect.objectContaining({ totalHits: 1 }), expect.objectContaining({ totalHits: 1 })]);
      await store.decrement('k');
      await store.decrement('k');
      await admin.call('CLIENT', 'UNPAUSE');
      expect(await admin.get('rl:k')).toBe('3');
    } finally {
      client.disconnect();
      admin.disconnect();
      await server.stop();
    }
  });
});

describe.runIf(hasRedis)('a Redis user not allowed the commands a store runs', () => {
  it('rejects every call with TOLLGATE_REDIS_NO_PERMISSION, never lets it through by onError', async () => {
    const server = await startRedis();
    const admin = new Redis({ host: server.host, port: server.port });
    admin.on('error', () => undefined);
    await admin.call('ACL', 'SETUSER', 'limited', 'on', '>secret', '~*', '&*', '+@all', '-eval', '-evalsha');
    const client = new Redis({ host: server.host, port: server.port, username: 'limited', password: 'secret' });
    client.on('error', () => undefined);
    const asked: string[] = [];
    try {
      const store = new ExpressRateLimitStore({ redis: client, onError: (e) => (asked.push(e.code), 'allow') });
      store.init({ windowMs: 60_000, limit: 5 });
      await expect(store.increment('k')).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_NO_PERMISSION' });
      await expect(store.increment('k')).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_NO_PERMISSION' });
      const Fastify = FastifyRateLimitStore.with({ redis: client, onError: (e) => (asked.push(e.code), 'allow') });
      await expect(incr(new Fastify({}), 'k', 5)).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_NO_PERMISSION' });
      expect(asked).toEqual([]);
    } finally {
      client.disconnect();
      admin.disconnect();
      await server.stop();
    }
  });
});

describe('a Nest throttler whose limit is 0 (a tier switched off)', () => {
  it("refuses every request, blocked for blockDuration (else ttl), as Nest's own storage does", async () => {
    const storage = new NestThrottlerStorage();
    expect(await storage.increment('k', 60_000, 0, 0, 'default')).toEqual({ totalHits: 1, timeToExpire: 60, isBlocked: true, timeToBlockExpire: 60 });
    expect(await storage.increment('k', 60_000, 0, 5_000, 'default')).toEqual({ totalHits: 1, timeToExpire: 60, isBlocked: true, timeToBlockExpire: 5 });
    // Another throttler on the same key is untouched.
    expect(await storage.increment('k', 60_000, 2, 0, 'other')).toMatchObject({ totalHits: 1, isBlocked: false });
    storage.onApplicationShutdown();
  });
});

describe.runIf(hasRedis)('closing a store on Redis while its calls wait for Redis', () => {
  it('express shutdown() and fastify close() reject the calls still out at once, and later ones, with TOLLGATE_CLOSED (onError is not asked)', async () => {
    const server = await startRedis();
    const client = new Redis({ host: server.host, port: server.port });
    const admin = new Redis({ host: server.host, port: server.port });
    client.on('error', () => undefined);
    admin.on('error', () => undefined);
    const asked: string[] = [];
    const onError = (e: { code: string }) => (asked.push(e.code), 'allow' as const);
    // A timeout far beyond the test's: only close() can end the calls the paused server holds.
    const store = new ExpressRateLimitStore({ redis: client, timeoutMs: 60_000, onError });
    store.init({ windowMs: 60_000, limit: 5 });
    const Fastify = FastifyRateLimitStore.with({ redis: client, timeoutMs: 60_000, onError });
    const fastify = new Fastify({});
    const route = fastify.child({});
    try {
      // Warm: each node's clock is known and its scripts loaded, as in a running server.
      expect(await store.increment('k')).toMatchObject({ totalHits: 1 });
      expect(await incr(fastify, 'k', 5)).toMatchObject({ current: 1 });
      await admin.call('CLIENT', 'PAUSE', '10000', 'ALL');
      const express = store.increment('k');
      const fromRoute = incr(route, 'k', 5);
      store.shutdown();
      fastify.close();
      await expect(express).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
      await expect(fromRoute).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
      await expect(store.increment('k')).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
      await expect(store.get('k')).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
      await expect(incr(new Fastify({}), 'k', 5)).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
      expect(asked).toEqual([]);
    } finally {
      client.disconnect();
      admin.disconnect();
      await server.stop();
    }
  });
});

describe('a node whose clock is not known yet', () => {
  it('is asked for its clock first: no script is sent without a deadline (regression: a call that timed out still counted on Redis)', async () => {
    const sent: string[][] = [];
    const redis: RedisCommandSender = {
      sendCommand: async (command) => {
        sent.push(command);
        // [EVAL|EVALSHA, script or sha, numkeys, key, deadline, ...]
        if (command[1]?.includes('return { 1, clock }')) return [1, Date.now()];
        return [1, Date.now(), 1, 1, 60_000];
      },
    };
    const store = new ExpressRateLimitStore({ redis, timeoutMs: 1000 });
    store.init({ windowMs: 60_000, limit: 5 });
    expect(await Promise.all([store.increment('a'), store.increment('b')])).toEqual([expect.objectContaining({ totalHits: 1 }), expect.objectContaining({ totalHits: 1 })]);
    // One clock read, shared; then the calls, each with a deadline by Redis' clock.
    expect(sent.filter((c) => c[1]?.includes('return { 1, clock }'))).toHaveLength(1);
    const calls = sent.filter((c) => !c[1]?.includes('return { 1, clock }'));
    expect(calls).toHaveLength(2);
    for (const c of calls) expect(Number(c[4])).toBeGreaterThan(0);
    store.shutdown();
  });
});

describe('options', () => {
  const redis = { sendCommand: async () => [1, 0] };

  it('redis with store, capacity, engine or clock is refused, saying why', () => {
    const store = sharedMemory({ name: `tg-${process.pid}-opts`, capacity: 16 });
    expect(() => new ExpressRateLimitStore({ redis, store } as never)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/store cannot be given with redis: .*give one of them/) }),
    );
    expect(() => FastifyRateLimitStore.with({ redis, capacity: 10 } as never)).toThrow(
      expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/capacity cannot be given with redis: .*Redis/) }),
    );
    expect(() => new NestThrottlerStorage({ redis, engine: 'js' } as never)).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/engine/) }));
  });

  it('Redis-only options without redis are refused as such; unknown ones by name', () => {
    expect(() => new ExpressRateLimitStore({ prefix: 'rl:' } as never)).toThrow(
      expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/prefix applies to counting on Redis: give redis/) }),
    );
    expect(() => new NestThrottlerStorage({ onError: 'deny' } as never)).toThrow(
      expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/onError applies to counting on Redis/) }),
    );
    expect(() => FastifyRateLimitStore.with({ redis, nameSpace: 'x' } as never)).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/nameSpace/) }));
    expect(() => new ExpressRateLimitStore({ redis, onError: 'open' } as never)).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/onError/) }));
    expect(() => new ExpressRateLimitStore({ redis: {} } as never)).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/redis/) }));
    expect(() => new NestThrottlerStorage({ redis, timeoutMs: 0 })).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE' }));
    // rate-limit-redis' sendCommand: the hint says to give the client itself.
    expect(() => new ExpressRateLimitStore({ sendCommand: () => undefined } as never)).toThrow(
      expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/redis: your Redis client itself/) }),
    );
  });
});
