// Defects an attack on the landed build found, one test each, named after what broke.
import { describe, expect, it, vi } from 'vitest';
import { engines } from './helpers/engines.js';
import { fixedWindow, leakyBucket, Limiter, tokenBucket, ManualClock } from '../src/index.js';
import { createQueue, type DeadLetter } from '../src/client-entry.js';
import { ExpressRateLimitStore, FastifyRateLimitStore, NestThrottlerStorage, RateLimiterTollgate } from '../src/adapters-entry.js';

describe('a user callback that throws', () => {
  it('onDeadLetter throwing is reported as a warning; the job still rejects and the process lives', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const queue = createQueue({
        retry: false,
        onDeadLetter: () => {
          throw new Error('logger broke');
        },
      });
      const failure = new Error('upstream said no');
      await expect(queue.add(() => Promise.reject(failure))).rejects.toBe(failure);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('logger broke'), expect.objectContaining({ code: 'TOLLGATE_CALLBACK_ERROR' }));
      queue.close();
    } finally {
      warn.mockRestore();
    }
  });

  it('onDeadLetter throwing inside close(): close() returns and every waiting job settles', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const letters: DeadLetter[] = [];
      const queue = createQueue({
        concurrency: 1,
        onDeadLetter: (letter) => {
          letters.push(letter);
          throw new Error(`refused ${letter.job.id}`);
        },
      });
      let release = () => {};
      const running = queue.add(() => new Promise<void>((resolve) => (release = resolve)));
      const waiting = Array.from({ length: 5 }, () => queue.add(() => Promise.resolve('never')));
      expect(() => queue.close()).not.toThrow();
      const settled = await Promise.allSettled(waiting);
      expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected', 'rejected']);
      expect(settled.every((s) => s.status === 'rejected' && (s.reason as { code?: string }).code === 'TOLLGATE_CLOSED')).toBe(true);
      expect(letters).toHaveLength(5);
      expect(warn).toHaveBeenCalledTimes(5);
      release();
      await running;
    } finally {
      warn.mockRestore();
    }
  });
});

describe("keys the adapters' libraries accept", () => {
  const long = (c: string) => c.repeat(3000);

  it('express-rate-limit: a 3,000-character key is counted (distinct long keys apart), and an absent key (req.ip undefined) too', () => {
    const store = new ExpressRateLimitStore();
    store.init({ windowMs: 60_000 });
    expect(store.increment(long('a')).totalHits).toBe(1);
    expect(store.increment(long('a')).totalHits).toBe(2);
    expect(store.increment(long('a') + 'b').totalHits).toBe(1);
    expect(store.get(long('a'))?.totalHits).toBe(2);
    // express gives undefined for req.ip on a unix socket: one count for all of them, as MemoryStore keeps.
    const absent = undefined as unknown as string;
    expect(store.increment(absent).totalHits).toBe(1);
    expect(store.increment(absent).totalHits).toBe(2);
    expect(store.increment('undefined').totalHits).toBe(1);
    store.decrement(absent);
    expect(store.get(absent)?.totalHits).toBe(1);
    store.resetKey(long('a'));
    expect(store.increment(long('a')).totalHits).toBe(1);
  });

  it('@fastify/rate-limit: a 3,000-character key is counted', async () => {
    const store = new FastifyRateLimitStore({ timeWindow: 60_000, max: 5 });
    const incr = (key: string) => new Promise<number>((resolve, reject) => store.incr(key, (error, result) => (error ? reject(error) : resolve(result!.current)), 60_000));
    expect(await incr(long('x'))).toBe(1);
    expect(await incr(long('x'))).toBe(2);
    expect(await incr(long('y'))).toBe(1);
    store.close();
  });

  it('@nestjs/throttler: a 3,000-character key is counted', async () => {
    const storage = new NestThrottlerStorage();
    expect((await storage.increment(long('k'), 60_000, 2, 0, 'default')).totalHits).toBe(1);
    expect((await storage.increment(long('k'), 60_000, 2, 0, 'default')).totalHits).toBe(2);
    expect((await storage.increment(long('k'), 60_000, 2, 0, 'default')).isBlocked).toBe(true);
    expect((await storage.increment(long('j'), 60_000, 2, 0, 'default')).totalHits).toBe(1);
    storage.onApplicationShutdown();
  });

  it('rate-limiter-flexible: a 3,000-character key is counted, as RateLimiterMemory counts it', async () => {
    const limiter = new RateLimiterTollgate({ points: 2, duration: 60 });
    expect((await limiter.consume(long('r'))).consumedPoints).toBe(1);
    expect((await limiter.consume(long('r'))).consumedPoints).toBe(2);
    await expect(limiter.consume(long('r'))).rejects.toMatchObject({ consumedPoints: 3 });
    expect((await limiter.consume(long('s'))).consumedPoints).toBe(1);
  });
});

describe('NestThrottlerStorage with many ttls', () => {
  it('20,000 distinct ttls: tables of ttls whose windows are over are closed, and the count stays bounded', async () => {
    const clock = new ManualClock(0);
    const storage = new NestThrottlerStorage({ clock });
    let most = 0;
    for (let ttl = 1000; ttl < 21_000; ttl++) {
      expect((await storage.increment('client', ttl, 10, 0, 'default')).totalHits).toBe(1);
      most = Math.max(most, storage.tables);
      clock.advance(1);
    }
    expect(most).toBeLessThanOrEqual(256);
    // A ttl still in use keeps its table and its counts across the sweeps.
    const ttl = 5000;
    expect((await storage.increment('steady', ttl, 10, 0, 'default')).totalHits).toBe(1);
    clock.advance(2000);
    expect((await storage.increment('steady', ttl, 10, 0, 'default')).totalHits).toBe(2);
    // Once every window is over, a sweep closes their tables.
    clock.advance(60_000);
    await storage.increment('late', 1000, 10, 0, 'default');
    expect(storage.tables).toBe(1);
    storage.onApplicationShutdown();
  });
});

describe.runIf(engines().includes('native'))('a growing native table with explicit shards', () => {
  it('remembers every key far below its capacity (regression: 150 of 5,000 forgotten)', () => {
    const limiter = new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 60_000 }), capacity: 100_000, shards: 256, engine: 'native' });
    for (let i = 0; i < 5000; i++) expect(limiter.tryConsume(`u${i}`)).toBe(true);
    let again = 0;
    for (let i = 0; i < 5000; i++) again += limiter.tryConsume(`u${i}`) ? 1 : 0;
    expect(again).toBe(0);
    expect(limiter.stats().evictions).toBe(0);
    limiter.close();
  });

  it('reaches the shards asked for when it grows to its capacity, and reports the shards it has as it grows', () => {
    const limiter = new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 60_000 }), capacity: 20_000, shards: 64, engine: 'native' });
    expect(limiter.stats().shards).toBe(1);
    // Past 16,384 keys the table takes its last generation: the full capacity, with the 64 shards asked for.
    for (let i = 0; i < 17_000; i++) limiter.tryConsume(`k${i}`);
    expect(limiter.stats().shards).toBe(64);
    let again = 0;
    for (let i = 0; i < 17_000; i++) again += limiter.tryConsume(`k${i}`) ? 1 : 0;
    expect(again).toBe(0);
    expect(limiter.stats().evictions).toBe(0);
    limiter.close();
  });
});

describe('policies and clocks the engines cannot decide alike', () => {
  it('a token bucket whose tokens times interval passes 2^50 is refused by the factory, on every engine (regression)', () => {
    expect(() => tokenBucket({ capacity: 2, tokens: 3, intervalMs: 2 ** 49 - 1 })).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE', message: expect.stringMatching(/for tokens/) }));
    expect(() => leakyBucket({ burst: 1, tokens: 2 ** 30 + 1, intervalMs: 2 ** 21 - 1 })).toThrow(RangeError);
    expect(() => tokenBucket({ capacity: 1, refillPerSecond: 2 ** 62 })).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE', message: expect.stringMatching(/for refillPerSecond/) }));
    // At the bound itself both engines take it.
    const policy = tokenBucket({ capacity: 2, tokens: 1, intervalMs: 2 ** 49 });
    for (const engine of engines()) new Limiter({ policy, engine }).close();
  });

  it('a ManualClock refuses times past 2^52 ms, where the engines would disagree (regression)', () => {
    expect(() => new ManualClock(2 ** 53 - 2 ** 50 + 1)).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE', message: expect.stringMatching(/for startMs/) }));
    const clock = new ManualClock(2 ** 52 - 10);
    expect(() => clock.advance(11)).toThrow(RangeError);
    expect(() => clock.set(2 ** 52 + 1)).toThrow(RangeError);
    clock.set(2 ** 52);
    expect(clock.now()).toBe(2 ** 52);
  });

  it('at the latest time a clock may show, the engines decide alike', () => {
    const clock = new ManualClock(2 ** 52 - 2 ** 49);
    const policies = [leakyBucket({ burst: 4, tokens: 1, intervalMs: 2 ** 48 }), tokenBucket({ capacity: 3, tokens: 1, intervalMs: 2 ** 47 }), fixedWindow({ limit: 3, windowMs: 2 ** 40 })];
    for (const policy of policies) {
      const limiters = engines().map((engine) => new Limiter({ policy, engine, clock }));
      const seen: unknown[][] = limiters.map(() => []);
      for (let step = 0; step < 40; step++) {
        limiters.forEach((l, i) => seen[i]!.push(l.consume('k')));
        if (clock.now() + 2 ** 45 <= 2 ** 52) clock.advance(2 ** 45);
      }
      for (const s of seen) expect(s).toEqual(seen[0]);
      limiters.forEach((l) => l.close());
      clock.set(clock.now());
    }
  });
});
