// Room given back wakes this process' waiters: a refund or reset through any limiter (Limiter,
// allOf(...) and its limiters, RedisLimiter, a lease's units handed back) grants an acquire()
// waiting on the key at once, not when its window ends; after close() a wake does nothing.
import { describe, expect, it, vi } from 'vitest';
import { settledNow } from './helpers/settled-now.js';
import { allOf, fixedWindow, Limiter, ManualClock, RedisLimiter, type Decision, type RedisCommandSender } from '../src/index.js';
import { WaitingLines } from '../src/limiters/waiting-lines.js';
import { engines } from './helpers/engines.js';
import { hasRedis, useRedisServer } from './helpers/redis.js';

const closed = expect.objectContaining({ code: 'TOLLGATE_CLOSED' });
const granted = expect.objectContaining({ allowed: true });
const HOUR = 3_600_000;

/**
 * `promise`, or 'still waiting' if it has not settled after a few seconds of real time. The clocks
 * here never move, so a waiter the wake missed sleeps an hour: this only turns that into a failure.
 */
function soon<T>(promise: Promise<T>): Promise<T | 'still waiting'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'still waiting'>((resolve) => (timer = setTimeout(() => resolve('still waiting'), 10_000)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

describe.each(engines())('%s engine: in-process limiters', (engine) => {
  /** A limit of `limit` per hour on a clock that never moves: only a wake can serve a waiter. */
  const hourly = (limit: number) => new Limiter({ policy: fixedWindow({ limit, windowMs: HOUR }), engine, clock: new ManualClock(0) });

  it.each(['refund', 'reset'] as const)('Limiter: a %s grants the waiter at once', async (op) => {
    const limiter = hourly(1);
    limiter.consume('k');
    const waiter = limiter.acquire('k');
    expect(await settledNow(waiter)).toBe('pending');
    limiter[op]('k');
    expect(await settledNow(waiter)).toEqual({ status: 'fulfilled', value: granted });
    limiter.close();
  });

  it.each([
    ['refund', 'the composite'],
    ['reset', 'the composite'],
    ['refund', 'the limit that denied, called on that limiter,'],
    ['reset', 'the limit that denied, called on that limiter,'],
  ] as const)('allOf: a %s of %s grants the composite’s waiter at once', async (op, target) => {
    const a = hourly(1);
    const b = hourly(5);
    const both = allOf(a, b);
    both.consume('k');
    const waiter = both.acquire('k');
    expect(await settledNow(waiter)).toBe('pending');
    (target === 'the composite' ? both : a)[op]('k');
    expect(await settledNow(waiter)).toEqual({ status: 'fulfilled', value: granted });
    for (const l of [both, a, b]) l.close();
  });

  it('allOf: a denied consume undoes its spend without waking the composite’s waiter (no ask per denial)', async () => {
    // The second limit denies, so the first one's spend is refunded: that wakes nobody.
    const a = hourly(5);
    const b = hourly(1);
    const both = allOf(a, b);
    both.consume('k');
    const consume = vi.spyOn(both, 'consume');
    const waiter = both.acquire('k');
    expect(await settledNow(waiter)).toBe('pending');
    expect(consume).toHaveBeenCalledTimes(1);
    expect(both.consume('k').allowed).toBe(false);
    expect(await settledNow(waiter)).toBe('pending');
    expect(consume).toHaveBeenCalledTimes(2);
    for (const l of [both, a, b]) l.close();
  });

  it('after close() the waiter rejects with TOLLGATE_CLOSED and room given back asks nothing', async () => {
    const a = hourly(1);
    const both = allOf(a);
    both.consume('k');
    const consume = vi.spyOn(both, 'consume');
    const waiter = both.acquire('k');
    expect(await settledNow(waiter)).toBe('pending');
    both.close();
    expect(await settledNow(waiter)).toEqual({ status: 'rejected', reason: closed });
    // Its limiter stays open: a refund there reaches the closed composite's waiting no more.
    a.refund('k');
    a.reset('k');
    expect(consume).toHaveBeenCalledTimes(1);
    expect(() => both.refund('k')).toThrow(closed);
    a.close();
    expect(() => a.refund('k')).toThrow(closed);
  });
});

describe('a waiting line', () => {
  it('woken while its head’s ask is in flight, asks again at once when that ask is denied', async () => {
    // A store that decided the ask before the room came back: its denial names an hour.
    const denied: Decision = { allowed: false, limit: 1, remaining: 0, resetMs: HOUR, retryAfterMs: HOUR };
    const answers: ((d: Decision) => void)[] = [];
    const spender = {
      closed: false,
      consume: vi.fn(() => new Promise<Decision>((resolve) => answers.push(resolve))),
      peek: () => Promise.resolve(denied),
      refund: () => Promise.resolve(),
    };
    const lines = new WaitingLines(spender, () => undefined);
    const waiter = lines.acquire('k');
    expect(spender.consume).toHaveBeenCalledTimes(1);
    lines.wake('k');
    answers[0]?.(denied);
    expect(await settledNow(waiter)).toBe('pending');
    expect(spender.consume).toHaveBeenCalledTimes(2);
    answers[1]?.({ allowed: true, limit: 1, remaining: 0, resetMs: HOUR, retryAfterMs: 0 });
    expect(await settledNow(waiter)).toEqual({ status: 'fulfilled', value: granted });
    lines.close(new Error('done'));
  });
});

describe.runIf(hasRedis)('RedisLimiter', () => {
  const shared = useRedisServer();
  let n = 0;
  const hourly = (limit: number, more: Partial<ConstructorParameters<typeof RedisLimiter>[0]> = {}) =>
    new RedisLimiter({ name: 'w', redis: shared.redis, prefix: `wake${++n}:`, policy: fixedWindow({ limit, windowMs: HOUR }), clock: new ManualClock(1_000_000), timeoutMs: 30_000, ...more });
  /** Resolves once `limiter` has decided `waiter`'s first ask and it sleeps (a later call's reply comes after it, on one connection). */
  const asleep = async (limiter: RedisLimiter, waiter: Promise<Decision>) => {
    await limiter.peek('probe');
    await new Promise((r) => setImmediate(r));
    expect(await settledNow(waiter)).toBe('pending');
  };

  it.each(['refund', 'reset'] as const)('a %s grants the waiter once Redis has it, not when the hour ends', async (op) => {
    const limiter = hourly(1);
    await limiter.consume('k');
    const waiter = limiter.acquire('k');
    await asleep(limiter, waiter);
    await limiter[op]('k');
    expect(await soon(waiter)).toEqual(granted);
    limiter.close();
  });

  it('a refund made while the waiter’s ask is in flight (decided before it) still grants the waiter', async () => {
    const limiter = hourly(1);
    await limiter.consume('k');
    // The ask is queued first and reaches Redis before the refund: it is denied, then asks again.
    const waiter = limiter.acquire('k');
    await limiter.refund('k');
    expect(await soon(waiter)).toEqual(granted);
    limiter.close();
  });

  it('a refund that fails still wakes the waiter: it asks again and meets onError now', async () => {
    let down = false;
    const redis: RedisCommandSender = {
      sendCommand: (command) => (down ? Promise.reject(new Error('down')) : (shared.redis.call(command[0] as string, ...command.slice(1)) as Promise<unknown>)),
    };
    const limiter = hourly(1, { redis, onError: 'allow' });
    await limiter.consume('k');
    const waiter = limiter.acquire('k');
    await asleep(limiter, waiter);
    down = true;
    await expect(limiter.refund('k')).rejects.toMatchObject({ code: expect.stringMatching(/^TOLLGATE_REDIS_/) });
    expect(await soon(waiter)).toEqual(granted);
    expect(limiter.stats().failedOpen).toBe(1);
    limiter.close();
  });

  it('a lease’s unspent units handed back grant a waiter they were keeping out', async () => {
    // One lease at a time: a lease on another key pushes this key's out, and its unit goes back.
    const limiter = hourly(10, { leases: { hotAfter: 1, share: 1, keys: 1 }, denyCache: false });
    expect(await limiter.consume('k')).toMatchObject({ allowed: true }); // a lease of 2: 1 spent, 1 kept
    // A tier is decided by Redis, never from the lease: 2 counted + 11 > 12.
    const waiter = limiter.acquire('k', { cost: 11, limit: 12 });
    await asleep(limiter, waiter);
    expect(limiter.stats().leaseCalls).toBe(1);
    await limiter.consume('x');
    expect(limiter.stats().leaseCalls).toBe(2);
    expect(await soon(waiter)).toEqual(granted);
    limiter.close();
  });

  it('close() with a refund in flight: both reject with TOLLGATE_CLOSED and the late wake asks nothing', async () => {
    const limiter = hourly(1);
    await limiter.consume('k');
    const waiter = limiter.acquire('k');
    await asleep(limiter, waiter);
    const consume = vi.spyOn(limiter, 'consume');
    const refund = limiter.refund('k');
    limiter.close();
    expect(await settledNow(refund)).toEqual({ status: 'rejected', reason: closed });
    expect(await settledNow(waiter)).toEqual({ status: 'rejected', reason: closed });
    // Let Redis answer the refund: nothing may ask, throw or reject unhandled.
    await shared.redis.ping();
    await new Promise((r) => setImmediate(r));
    expect(consume).not.toHaveBeenCalled();
  });
});
