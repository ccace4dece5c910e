// One limiter interface: Limiter, allOf(...) and RedisLimiter behave the same through RateLimiter,
// and everything that takes a limiter (middleware, queue, metrics, Redis' fallback) takes any
// implementation of it, a user's own included.
import { createServer } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { allOf, fixedWindow, isRateLimiter, Limiter, ManualClock, RedisLimiter, type Decision, type RateLimiter, type RateLimiterStats } from '../src/index.js';
import { rateLimit } from '../src/http-entry.js';
import { createQueue } from '../src/client-entry.js';
import { toPrometheus } from '../src/metrics-entry.js';
import { hasRedis, useRedisServer } from './helpers/redis.js';
import { listen } from './helpers/listen.js';

const policy = fixedWindow({ limit: 3, windowMs: 60_000 });

/** The contract, exercised only through the interface: what any RateLimiter must do. */
async function exercise(limiter: RateLimiter): Promise<void> {
  expect(isRateLimiter(limiter)).toBe(true);
  expect(limiter.policies.length).toBeGreaterThan(0);
  expect(limiter.closed).toBe(false);
  const outcomes: boolean[] = [];
  for (let i = 0; i < 4; i++) outcomes.push((await limiter.consume('k')).allowed);
  expect(outcomes).toEqual([true, true, true, false]);
  expect((await limiter.peek('k')).allowed).toBe(false);
  await limiter.refund('k', 1);
  expect(await limiter.peek('k')).toMatchObject({ allowed: true, remaining: 1 });
  // A tier given as an array (one entry per policy) raises the first policy's limit.
  expect((await limiter.consume('k', 2, { limit: [10] })).allowed).toBe(true);
  expect(await limiter.reset('k')).toBe(true);
  expect(await limiter.reset('never-seen')).toBe(false);
  expect(await limiter.peek('k')).toMatchObject({ allowed: true, remaining: 3 });
  expect(await limiter.block('k', 5_000)).toBe(true);
  expect((await limiter.consume('k')).allowed).toBe(false);
  expect(await limiter.acquire('other', { cost: 2 })).toMatchObject({ allowed: true, remaining: 1 });
  const waiting = limiter.acquire('other', { cost: 2 });
  const stats: RateLimiterStats = limiter.stats();
  expect(stats.name).toBe(limiter.name);
  limiter.close();
  expect(limiter.closed).toBe(true);
  await expect(waiting).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
  await expect(limiter.acquire('other')).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
  await expect(Promise.resolve().then(() => limiter.consume('k'))).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
}

describe('RateLimiter', () => {
  it('Limiter keeps the contract', async () => {
    const limiter = new Limiter({ policy, clock: new ManualClock(0), name: 'one' });
    await exercise(limiter);
    expect(limiter.policies).toEqual([policy]);
  });

  it('allOf(...) keeps the contract; its name, policies and stats are its limiters’', async () => {
    const clock = new ManualClock(0);
    const a = new Limiter({ policy, clock, name: 'a' });
    const b = new Limiter({ policy: fixedWindow({ limit: 100, windowMs: 3_600_000 }), clock, name: 'b' });
    const both = allOf(a, b);
    expect(both.name).toBe('a+b');
    expect(both.policies).toEqual([a.policy, b.policy]);
    const stats = both.stats();
    expect(stats.store).toBe('combined');
    if (stats.store === 'combined') expect(stats.limiters.map((s) => s.name)).toEqual(['a', 'b']);
    await exercise(both);
    // The composite's close leaves its limiters open; closing one of them closes the composite.
    expect(a.closed).toBe(false);
    const again = allOf(a, b);
    b.close();
    expect(again.closed).toBe(true);
    a.close();
  });

  it('blocks and resets reach every limit of allOf(...)', () => {
    const clock = new ManualClock(0);
    const a = new Limiter({ policy, clock });
    const b = new Limiter({ policy, clock });
    const both = allOf(a, b);
    both.block('k', 1000);
    expect(a.peek('k').allowed).toBe(false);
    expect(b.peek('k').allowed).toBe(false);
    expect(both.reset('k')).toBe(true);
    expect(a.peek('k').allowed && b.peek('k').allowed).toBe(true);
    a.close();
    b.close();
  });

  it('a Limiter given a tier array uses its one entry, and refuses more entries than policies', () => {
    const limiter = new Limiter({ policy, clock: new ManualClock(0) });
    expect(limiter.consume('k', 5, { limit: [5] }).allowed).toBe(true);
    expect(limiter.consume('j', 1, { limit: [undefined] }).limit).toBe(3);
    expect(() => limiter.consume('k', 1, { limit: [5, 6] })).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT' }));
    limiter.close();
  });

  it('acquire refuses a malformed tier before waiting, naming the entry', async () => {
    const clock = new ManualClock(0);
    const limiter = new Limiter({ policy, clock });
    const both = allOf(limiter, new Limiter({ policy, clock }));
    await expect(both.acquire('k', { limit: [2, 0] })).rejects.toThrow(/limit\[1\]/);
    await expect(limiter.acquire('k', { limit: [0] })).rejects.toThrow(/limit\[0\]/);
    await expect(limiter.acquire('k', { limit: [2, 2] })).rejects.toThrow(/at most 1 limits/);
    await expect(limiter.acquire('k', { limit: -1 })).rejects.toMatchObject({ code: 'TOLLGATE_OUT_OF_RANGE' });
    // A tier above what the policy's arithmetic allows is refused before waiting too.
    await expect(limiter.acquire('k', { limit: 2 ** 52 })).rejects.toMatchObject({ code: 'TOLLGATE_OUT_OF_RANGE' });
    for (const l of both.limiters) l.close();
  });

  it('isRateLimiter tells a limiter from look-alikes', () => {
    expect(isRateLimiter({ consume() {} })).toBe(false);
    expect(isRateLimiter(null)).toBe(false);
    expect(isRateLimiter(new CountingLimiter(1))).toBe(true);
  });
});

/** A user's own limiter: a plain in-memory counter implementing the interface, asynchronously. */
class CountingLimiter implements RateLimiter {
  readonly name = 'counting';
  readonly policies = [fixedWindow({ limit: 1, windowMs: 1000 })];
  closed = false;
  readonly #spent = new Map<string, number>();
  constructor(readonly limit: number) {}
  #decision(key: string, cost: number, spend: boolean): Decision {
    const spent = this.#spent.get(key) ?? 0;
    const allowed = spent + cost <= this.limit;
    if (allowed && spend) this.#spent.set(key, spent + cost);
    const now = this.#spent.get(key) ?? 0;
    return { allowed, limit: this.limit, remaining: this.limit - now, resetMs: 1000, retryAfterMs: allowed ? 0 : 1000 };
  }
  async consume(key: string, cost = 1): Promise<Decision> {
    return this.#decision(key, cost, true);
  }
  async peek(key: string, cost = 1): Promise<Decision> {
    return this.#decision(key, cost, false);
  }
  async refund(key: string, amount = 1): Promise<void> {
    this.#spent.set(key, Math.max(0, (this.#spent.get(key) ?? 0) - amount));
  }
  async block(): Promise<boolean> {
    return true;
  }
  async reset(key: string): Promise<boolean> {
    return this.#spent.delete(key);
  }
  async acquire(key: string): Promise<Decision> {
    const d = await this.consume(key);
    if (!d.allowed) throw new Error('no capacity');
    return d;
  }
  stats(): RateLimiterStats {
    return {
      name: this.name,
      store: 'redis',
      decisions: 0,
      allowed: 0,
      denied: 0,
      denyCacheHits: 0,
      redisCalls: 0,
      errors: 0,
      timeouts: 0,
      failedOpen: 0,
      failedClosed: 0,
      fallbackDecisions: 0,
      shortCircuited: 0,
      stateMismatches: 0,
      lateRefused: 0,
      lateExecuted: 0,
      leasedDecisions: 0,
      leaseCalls: 0,
      breakerOpened: 0,
      breakerHalfOpened: 0,
      breakerClosed: 0,
      openNodes: 0,
    };
  }
  close(): void {
    this.closed = true;
  }
}

describe('anything that takes a limiter takes any RateLimiter', () => {
  it('the middleware answers from a user-written limiter: exactly its limit passes, then 429', async () => {
    const limiter = new CountingLimiter(4);
    const limit = rateLimit({ limiter, key: { header: 'x-user' } });
    const server = createServer((req, res) => limit(req, res, () => res.end('ok')));
    const url = `${await listen(server)}/`;
    const statuses = await Promise.all(Array.from({ length: 10 }, () => fetch(url, { headers: { 'x-user': 'u' } }).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(4);
    expect(statuses.filter((s) => s === 429)).toHaveLength(6);
  });

  it('the queue waits on a user-written limiter', async () => {
    const limiter = new CountingLimiter(2);
    const queue = createQueue({ limits: [{ limiter, key: 'q' }], retry: false });
    const ran: number[] = [];
    const results = await Promise.allSettled([1, 2, 3].map((n) => queue.add(async () => ran.push(n))));
    expect(ran.sort()).toEqual([1, 2]);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    queue.close();
  });

  it('metrics report allOf(...)’s limiters once each, even when they are also given alone', () => {
    const a = new Limiter({ policy, name: 'per-second', engine: 'js' });
    const b = new Limiter({ policy, name: 'per-hour', engine: 'js' });
    const both = allOf(a, b);
    both.consume('k');
    const text = toPrometheus(both, a);
    const allowedLines = text.split('\n').filter((l) => l.startsWith('tollgate_decisions_total') && l.includes('outcome="allowed"'));
    expect(allowedLines).toEqual([
      'tollgate_decisions_total{limiter="per-second",store="memory",outcome="allowed"} 1',
      'tollgate_decisions_total{limiter="per-hour",store="memory",outcome="allowed"} 1',
    ]);
    expect(() => toPrometheus({} as RateLimiter)).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT' }));
    a.close();
    b.close();
  });
});

describe('RedisLimiter with a limiter as its fallback', () => {
  const broken = { evalsha: () => Promise.reject(new Error('down')), eval: () => Promise.reject(new Error('down')), del: () => Promise.resolve(0) };

  it('a fallback that never answers does not outlive close(): the call rejects at once', async () => {
    const silent = new CountingLimiter(1);
    silent.consume = () => new Promise<Decision>(() => {});
    const limiter = new RedisLimiter({ name: 't', redis: broken, policy, onError: silent, denyCache: false });
    const pending = limiter.consume('k');
    // The batch goes out, fails, and reaches the fallback, which never answers.
    await vi.waitFor(() => expect(limiter.stats().fallbackDecisions).toBe(1), { timeout: 10_000 });
    limiter.close();
    await expect(pending).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
  });
});

describe.runIf(hasRedis)('RedisLimiter through the interface', () => {
  const state = useRedisServer();
  let prefixes = 0;

  it('keeps the contract', async () => {
    const limiter = new RedisLimiter({ name: 't', redis: state.redis, policy, prefix: `iface${++prefixes}:`, clock: new ManualClock(0) });
    await exercise(limiter);
    expect(limiter.stats().store).toBe('redis');
  });

  it('falls back to allOf(...) when Redis fails', async () => {
    const broken = { evalsha: () => Promise.reject(new Error('down')), eval: () => Promise.reject(new Error('down')), del: () => Promise.resolve(0) };
    const clock = new ManualClock(0);
    const fallback = allOf(new Limiter({ policy, clock }), new Limiter({ policy: fixedWindow({ limit: 2, windowMs: 1000 }), clock }));
    const limiter = new RedisLimiter({ name: 't', redis: broken, policy, onError: fallback, denyCache: false });
    const allowed = [];
    for (let i = 0; i < 3; i++) allowed.push((await limiter.consume('k')).allowed);
    expect(allowed).toEqual([true, true, false]);
    expect(limiter.stats().fallbackDecisions).toBe(3);
    limiter.close();
    fallback.limiters.forEach((l) => l.close());
  });
});
