// Every shutdown order with calls in flight: each pending call and waiter settles at once with a
// coded error, and nothing throws (or rejects unhandled) afterwards.
import { describe, expect, it } from 'vitest';
import { settledNow } from './helpers/settled-now.js';
import { allOf, fixedWindow, Limiter, ManualClock, RedisLimiter, tokenBucket } from '../src/index.js';
import { createQueue, limitedFetch } from '../src/client-entry.js';
import { engines } from './helpers/engines.js';
import { hasRedis, useRedisServer } from './helpers/redis.js';

const closed = expect.objectContaining({ code: 'TOLLGATE_CLOSED' });
const spent = (limit: number, windowMs = 3_600_000, engine: 'native' | 'js' = 'js') => {
  const limiter = new Limiter({ policy: fixedWindow({ limit, windowMs }), engine, capacity: 100 });
  for (let i = 0; i < limit; i++) limiter.consume('k');
  return limiter;
};

describe.each(engines())('%s engine: closing with waiters', (engine) => {
  it('Limiter.close() rejects every acquire() waiter at once (regression: five waiters stayed pending)', async () => {
    const limiter = spent(1, 3_600_000, engine);
    const waiters = Array.from({ length: 5 }, () => limiter.acquire('k', { timeoutMs: 10_000 }));
    limiter.close();
    for (const w of waiters) expect(await settledNow(w)).toEqual({ status: 'rejected', reason: closed });
    await expect(limiter.acquire('k')).rejects.toEqual(closed);
  });

  it('allOf: closing any of its limiters, or the composite, rejects its waiters at once', async () => {
    const a = spent(1, 3_600_000, engine);
    const b = spent(1, 3_600_000, engine);
    const both = allOf(a, b);
    const waiting = [both.acquire('k', { timeoutMs: 10_000 }), both.acquire('k', { timeoutMs: 10_000, cost: 1 })];
    b.close();
    for (const w of waiting) expect((await settledNow(w)) as PromiseRejectedResult).toEqual({ status: 'rejected', reason: closed });
    const c = spent(1, 3_600_000, engine);
    const composite = allOf(a, c);
    const w = composite.acquire('k', { timeoutMs: 10_000 });
    composite.close();
    expect(await settledNow(w)).toEqual({ status: 'rejected', reason: closed });
    expect(() => composite.consume('k')).toThrow(closed);
    // The limiters a composite combines stay open: they are the caller's.
    expect(a.closed).toBe(false);
    a.close();
    c.close();
  });

  it('a queue waiting on a limiter that closes fails its jobs at once, without retrying them', async () => {
    const limiter = spent(1, 3_600_000, engine);
    const letters: string[] = [];
    const queue = createQueue({ limits: [{ limiter, key: 'k' }], retry: { maxAttempts: 5 }, onDeadLetter: (l) => letters.push(l.reason) });
    const jobs = [queue.add(async () => 'ran'), queue.add(async () => 'ran')];
    await Promise.resolve();
    limiter.close();
    for (const job of jobs) expect(await settledNow(job)).toEqual({ status: 'rejected', reason: closed });
    expect(letters).toEqual(['closed', 'closed']);
    await queue.onIdle();
  });

  it('queue.close() rejects jobs waiting to start, for a limit, or to retry; running ones finish', async () => {
    const limiter = spent(1, 3_600_000, engine);
    let release = () => {};
    const running = createQueue({ concurrency: 1 });
    let started = () => {};
    const firstStarted = new Promise<void>((r) => (started = r));
    const first = running.add(
      () =>
        new Promise<string>((r) => {
          release = () => r('done');
          started();
        }),
    );
    const second = running.add(async () => 'never');
    const limited = createQueue({ limits: [{ limiter, key: 'k' }] });
    const waitingForLimit = limited.add(async () => 'never');
    const retrying = createQueue({ retry: { maxAttempts: 3, baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 0.5 } });
    let attempted = () => {};
    const failedOnce = new Promise<void>((r) => (attempted = r));
    const failing = retrying.add(async () => {
      attempted();
      throw new Error('transient');
    });
    // The first job running and the failing one failed once; its retry (60 s out) is scheduled in
    // the microtasks after the failure, which have run by the next turn.
    await Promise.all([firstStarted, failedOnce]);
    await new Promise((r) => setImmediate(r));
    running.close();
    limited.close();
    retrying.close();
    expect(await settledNow(second)).toEqual({ status: 'rejected', reason: closed });
    expect(await settledNow(waitingForLimit)).toEqual({ status: 'rejected', reason: closed });
    expect(await settledNow(failing)).toEqual({ status: 'rejected', reason: closed });
    await expect(running.add(async () => 1)).rejects.toEqual(closed);
    release();
    expect(await first).toBe('done');
    limiter.close();
  });

  it('limitedFetch: close() rejects calls still waiting; a closed limiter fails them too', async () => {
    const requests = spent(1, 3_600_000, engine);
    const fetchStub = async () => new Response('ok');
    const call = limitedFetch({ fetch: fetchStub as typeof fetch, requests, key: 'k' });
    const pending = call('http://127.0.0.1:9/');
    call.close();
    expect(await settledNow(pending)).toEqual({ status: 'rejected', reason: closed });
    const other = limitedFetch({ fetch: fetchStub as typeof fetch, requests, key: 'k' });
    const waiting = other('http://127.0.0.1:9/');
    await Promise.resolve();
    requests.close();
    expect(await settledNow(waiting)).toEqual({ status: 'rejected', reason: closed });
  });
});

describe.runIf(hasRedis)('RedisLimiter: closing with calls in flight', () => {
  const local = useRedisServer();
  let n = 0;

  it('a denial in flight at close() rejects with TOLLGATE_CLOSED; the late answer crashes nothing (regression)', async () => {
    const limiter = new RedisLimiter({ name: 't', redis: local.redis, policy: fixedWindow({ limit: 1, windowMs: 60_000 }), prefix: `close${++n}:` });
    await limiter.consume('k');
    // Several denials in flight (their answers will try to fill the deny cache), then close.
    const inFlight = [limiter.consume('k'), limiter.consume('k'), limiter.peek('k')];
    await new Promise((r) => setImmediate(r));
    limiter.close();
    for (const call of inFlight) expect(await settledNow(call)).toEqual({ status: 'rejected', reason: closed });
    // Let Redis answer the abandoned batch: nothing may throw or reject unhandled.
    await new Promise((r) => setTimeout(r, 100));
    await expect(limiter.consume('k')).rejects.toEqual(closed);
  });

  it('queued (unsent) calls, refund/block/reset in flight and acquire() waiters all reject at once', async () => {
    const limiter = new RedisLimiter({ name: 't', redis: local.redis, policy: tokenBucket({ capacity: 1, refillPerSecond: 0.001 }), prefix: `close${++n}:` });
    await limiter.consume('w');
    const queued = limiter.consume('q');
    const maintenance = [limiter.refund('w'), limiter.block('b', 1000), limiter.reset('r')];
    const waiter = limiter.acquire('w', { timeoutMs: 10_000 });
    limiter.close();
    for (const call of [queued, ...maintenance, waiter] as Promise<unknown>[]) expect(await settledNow(call)).toEqual({ status: 'rejected', reason: closed });
    await new Promise((r) => setTimeout(r, 100));
  });

  it('a fallback limiter closed before Redis fails: the call rejects with its error, never throws later', async () => {
    const fallback = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 1000 }), clock: new ManualClock(0) });
    const dead = { evalsha: () => Promise.reject(new Error('down')), eval: () => Promise.reject(new Error('down')), del: () => Promise.resolve(0) };
    const limiter = new RedisLimiter({ name: 't', redis: dead, policy: fixedWindow({ limit: 5, windowMs: 1000 }), onError: fallback });
    fallback.close();
    await expect(limiter.consume('k')).rejects.toEqual(closed);
    limiter.close();
  });

  it('bad arguments reject (never throw synchronously), with a code', async () => {
    const limiter = new RedisLimiter({ name: 't', redis: local.redis, policy: fixedWindow({ limit: 5, windowMs: 1000 }), prefix: `close${++n}:` });
    const calls = [
      () => limiter.consume('' as string),
      () => limiter.consume('k', 1, null as never),
      () => limiter.consume('k', 1, 5 as never),
      () => limiter.acquire('k', null as never),
      () => limiter.acquire('' as string),
      () => limiter.refund('k', 0),
    ];
    for (const call of calls) {
      let promise: Promise<unknown> | undefined;
      expect(() => (promise = call())).not.toThrow();
      await expect(promise).rejects.toEqual(expect.objectContaining({ code: expect.stringMatching(/^TOLLGATE_/) }));
    }
    limiter.close();
  });
});
