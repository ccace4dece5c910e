// Exact decisions of each algorithm at window edges, refills, costs, refunds and blocks, on both engines.
import { describe, expect, it } from 'vitest';
import { fixedWindow, leakyBucket, Limiter, ManualClock, slidingWindow, tokenBucket, type Policy } from '../src/index.js';
import { engines } from './helpers/engines.js';

const make = (engine: 'native' | 'js', policy: Policy, clock = new ManualClock(0)) => ({
  clock,
  limiter: new Limiter({ policy, engine, clock, capacity: 10_000 }),
});

describe.each(engines())('%s engine', (engine) => {
  describe('fixed window', () => {
    const policy = fixedWindow({ limit: 3, windowMs: 1000 });

    it('allows the limit per window, starting at the first request, and reports the edge exactly', () => {
      const { clock, limiter } = make(engine, policy, new ManualClock(250));
      expect(limiter.consume('k')).toEqual({ allowed: true, limit: 3, remaining: 2, resetMs: 1000, retryAfterMs: 0 });
      clock.advance(100);
      expect(limiter.consume('k')).toEqual({ allowed: true, limit: 3, remaining: 1, resetMs: 900, retryAfterMs: 0 });
      expect(limiter.consume('k').remaining).toBe(0);
      expect(limiter.consume('k')).toEqual({ allowed: false, limit: 3, remaining: 0, resetMs: 900, retryAfterMs: 900 });
      clock.set(1249);
      expect(limiter.consume('k')).toEqual({ allowed: false, limit: 3, remaining: 0, resetMs: 1, retryAfterMs: 1 });
      clock.set(1250);
      expect(limiter.consume('k')).toEqual({ allowed: true, limit: 3, remaining: 2, resetMs: 1000, retryAfterMs: 0 });
    });

    it('charges weighted costs; a denial writes nothing; a cost above the limit can never pass', () => {
      const { limiter } = make(engine, policy);
      expect(limiter.consume('k', 2).remaining).toBe(1);
      expect(limiter.consume('k', 2)).toMatchObject({ allowed: false, remaining: 1, retryAfterMs: 1000 });
      expect(limiter.consume('k', 1)).toMatchObject({ allowed: true, remaining: 0 });
      expect(limiter.consume('other', 4)).toEqual({ allowed: false, limit: 3, remaining: 3, resetMs: 1000, retryAfterMs: Infinity });
      expect(limiter.consume('other', 3).allowed).toBe(true);
    });

    it('peek decides without spending; refund gives back within the window, never below zero', () => {
      const { clock, limiter } = make(engine, policy);
      expect(limiter.peek('k')).toEqual({ allowed: true, limit: 3, remaining: 3, resetMs: 1000, retryAfterMs: 0 });
      limiter.consume('k', 3);
      expect(limiter.peek('k')).toMatchObject({ allowed: false, remaining: 0 });
      limiter.refund('k', 2);
      expect(limiter.peek('k')).toMatchObject({ allowed: true, remaining: 2, resetMs: 1000 });
      limiter.refund('k', 50);
      expect(limiter.consume('k', 3).allowed).toBe(true);
      limiter.refund('never-seen');
      expect(limiter.stats().entries).toBe(1);
      clock.advance(1000);
      limiter.refund('k');
      expect(limiter.consume('k')).toMatchObject({ remaining: 2, resetMs: 1000 });
    });
  });

  describe('sliding window', () => {
    const policy = slidingWindow({ limit: 10, windowMs: 1000 });

    it('weighs the previous aligned window by the share still covered, rounding the count up', () => {
      const { clock, limiter } = make(engine, policy, new ManualClock(500));
      for (let i = 0; i < 10; i++) expect(limiter.consume('k').allowed).toBe(true);
      // Window [0,1000) ends with 10; the next one starts empty. The reset shown is this window's end.
      expect(limiter.consume('k')).toEqual({ allowed: false, limit: 10, remaining: 0, resetMs: 500, retryAfterMs: 600 });
      clock.set(1000);
      // The whole previous window still counts: 10 used; 1 fits once 100 ms of it has slid out.
      expect(limiter.consume('k')).toEqual({ allowed: false, limit: 10, remaining: 0, resetMs: 1000, retryAfterMs: 100 });
      clock.set(1099);
      expect(limiter.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 1 });
      clock.set(1100);
      // ceil(10 * 900/1000) = 9 carried + 1 now.
      expect(limiter.consume('k')).toEqual({ allowed: true, limit: 10, remaining: 0, resetMs: 900, retryAfterMs: 0 });
      expect(limiter.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 100 });
      clock.set(1150);
      // ceil(10 * 850/1000) = 9 carried + 1: still full.
      expect(limiter.consume('k').allowed).toBe(false);
      clock.set(1200);
      expect(limiter.consume('k')).toMatchObject({ allowed: true, remaining: 0 });
    });

    it('forgets windows older than the previous one', () => {
      const { clock, limiter } = make(engine, policy);
      limiter.consume('k', 10);
      clock.set(2000);
      expect(limiter.consume('k')).toEqual({ allowed: true, limit: 10, remaining: 9, resetMs: 1000, retryAfterMs: 0 });
    });

    it('reports a reset no later than one window away, while its count still weighs on the next window (regression: 80 s and 110 s for a 60 s window)', () => {
      const { clock, limiter } = make(engine, slidingWindow({ limit: 100, windowMs: 60_000 }), new ManualClock(40_000));
      expect(limiter.consume('k').resetMs).toBe(20_000);
      for (let i = 0; i < 99; i++) expect(limiter.consume('k').resetMs).toBeLessThanOrEqual(60_000);
      const denied = limiter.consume('k');
      expect(denied).toMatchObject({ allowed: false, resetMs: 20_000 });
      // Past the reset the window's 100 requests roll off gradually: the state was kept.
      clock.set(60_000);
      expect(limiter.peek('k')).toMatchObject({ allowed: false, remaining: 0, resetMs: 60_000 });
      clock.set(90_000);
      expect(limiter.peek('k')).toMatchObject({ allowed: true, remaining: 50, resetMs: 30_000 });
      clock.set(120_000);
      expect(limiter.peek('k')).toMatchObject({ allowed: true, remaining: 100, resetMs: 0 });
    });

    it('a cost above the limit is denied forever; costs count in full', () => {
      const { limiter } = make(engine, policy);
      expect(limiter.consume('k', 11)).toMatchObject({ allowed: false, remaining: 10, retryAfterMs: Infinity });
      expect(limiter.consume('k', 7)).toMatchObject({ allowed: true, remaining: 3 });
      expect(limiter.consume('k', 4)).toMatchObject({ allowed: false, remaining: 3 });
    });
  });

  describe('token bucket', () => {
    it('starts full, refills one token per interval, and says when the next token lands', () => {
      const policy = tokenBucket({ capacity: 5, tokens: 1, intervalMs: 1000 });
      const { clock, limiter } = make(engine, policy);
      for (let i = 4; i >= 0; i--) expect(limiter.consume('k')).toMatchObject({ allowed: true, remaining: i });
      expect(limiter.consume('k')).toEqual({ allowed: false, limit: 5, remaining: 0, resetMs: 5000, retryAfterMs: 1000 });
      clock.set(999);
      expect(limiter.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 1 });
      clock.set(1000);
      expect(limiter.consume('k')).toEqual({ allowed: true, limit: 5, remaining: 0, resetMs: 5000, retryAfterMs: 0 });
      expect(limiter.consume('k', 3)).toMatchObject({ allowed: false, retryAfterMs: 3000 });
      expect(limiter.consume('k', 6)).toMatchObject({ allowed: false, retryAfterMs: Infinity });
      clock.set(100_000);
      expect(limiter.peek('k')).toMatchObject({ allowed: true, remaining: 5, resetMs: 0 });
    });

    it('keeps fractional credit exactly: 10 tokens per 13 s', () => {
      const policy = tokenBucket({ capacity: 10, tokens: 10, intervalMs: 13_000 });
      const { clock, limiter } = make(engine, policy);
      limiter.consume('k', 10);
      clock.set(1299);
      expect(limiter.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 1 });
      clock.set(1300);
      expect(limiter.consume('k').allowed).toBe(true);
      clock.set(2000);
      // 2000 ms bring 20000/13000 tokens: 1 whole, already spent; the next lands at 2600.
      expect(limiter.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 600 });
    });

    it('does not drift over a simulated year (10 per 13 s, drained every minute)', () => {
      // 60 s bring at most 47 tokens, below the capacity, so nothing is lost to the cap.
      const policy = tokenBucket({ capacity: 50, tokens: 10, intervalMs: 13_000 });
      const { clock, limiter } = make(engine, policy);
      const year = 365 * 24 * 3600 * 1000;
      let allowed = 0;
      for (let now = 0; now <= year; now += 60_000) {
        clock.set(now);
        while (limiter.tryConsume('k')) allowed++;
      }
      expect(allowed).toBe(50 + Math.floor((year * 10) / 13_000));
    });

    it('refunds up to the capacity', () => {
      const policy = tokenBucket({ capacity: 5, refillPerSecond: 1 });
      const { limiter } = make(engine, policy);
      limiter.consume('k', 5);
      limiter.refund('k', 2);
      expect(limiter.peek('k').remaining).toBe(2);
      limiter.refund('k', 10);
      expect(limiter.peek('k')).toMatchObject({ remaining: 5, resetMs: 0 });
    });
  });

  describe('leaky bucket (GCRA)', () => {
    const policy = leakyBucket({ burst: 3, tokens: 1, intervalMs: 100 });

    it('admits a burst, then exactly one per interval', () => {
      const { clock, limiter } = make(engine, policy);
      expect(limiter.consume('k')).toEqual({ allowed: true, limit: 3, remaining: 2, resetMs: 100, retryAfterMs: 0 });
      expect(limiter.consume('k').remaining).toBe(1);
      expect(limiter.consume('k')).toEqual({ allowed: true, limit: 3, remaining: 0, resetMs: 300, retryAfterMs: 0 });
      expect(limiter.consume('k')).toEqual({ allowed: false, limit: 3, remaining: 0, resetMs: 300, retryAfterMs: 100 });
      clock.set(99);
      expect(limiter.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 1 });
      clock.set(100);
      expect(limiter.consume('k')).toMatchObject({ allowed: true, remaining: 0, resetMs: 300 });
      expect(limiter.consume('k', 2)).toMatchObject({ allowed: false, retryAfterMs: 200 });
      expect(limiter.consume('k', 4)).toMatchObject({ allowed: false, retryAfterMs: Infinity });
    });

    it('handles rates that do not divide a millisecond: 3 per 7 ms', () => {
      const { clock, limiter } = make(engine, leakyBucket({ burst: 3, tokens: 3, intervalMs: 7 }));
      let allowed = 0;
      for (let now = 0; now <= 70_000; now++) {
        clock.set(now);
        while (limiter.tryConsume('k')) allowed++;
      }
      // The burst, then 3 per 7 ms: floor(70000 * 3 / 7) more.
      expect(allowed).toBe(3 + 30_000);
    });

    it('with a burst of 1, spaces requests by the whole interval (no credit below 1 token)', () => {
      const { clock, limiter } = make(engine, leakyBucket({ burst: 1, tokens: 3, intervalMs: 7 }));
      const times: number[] = [];
      for (let now = 0; now <= 20; now++) {
        clock.set(now);
        if (limiter.tryConsume('k')) times.push(now);
      }
      // 7/3 ms apart at least; on a millisecond clock that is every 3 ms.
      expect(times).toEqual([0, 3, 6, 9, 12, 15, 18]);
    });

    it('refunds shorten the backlog', () => {
      const { limiter } = make(engine, policy);
      limiter.consume('k', 3);
      limiter.refund('k', 1);
      expect(limiter.consume('k')).toMatchObject({ allowed: true, remaining: 0 });
    });
  });

  describe('block, reset and per-call limits', () => {
    const policy = fixedWindow({ limit: 3, windowMs: 1000 });

    it('block denies until it ends; a shorter block never cuts a longer one; reset lifts it', () => {
      const { clock, limiter } = make(engine, policy);
      expect(limiter.block('k', 5000)).toBe(true);
      expect(limiter.consume('k')).toEqual({ allowed: false, limit: 3, remaining: 0, resetMs: 5000, retryAfterMs: 5000 });
      limiter.block('k', 1000);
      clock.set(4999);
      expect(limiter.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 1 });
      clock.set(5000);
      expect(limiter.consume('k')).toMatchObject({ allowed: true, remaining: 2 });
      limiter.block('k', 60_000);
      expect(limiter.tryConsume('k')).toBe(false);
      expect(limiter.reset('k')).toBe(true);
      expect(limiter.consume('k')).toMatchObject({ allowed: true, remaining: 2 });
      expect(limiter.reset('absent')).toBe(false);
    });

    it('a per-call limit serves another tier from the same limiter', () => {
      const { limiter } = make(engine, policy);
      expect(limiter.consume('paid', 1, { limit: 10 })).toMatchObject({ allowed: true, limit: 10, remaining: 9 });
      for (let i = 0; i < 9; i++) limiter.consume('paid', 1, { limit: 10 });
      expect(limiter.tryConsume('paid', 1, { limit: 10 })).toBe(false);
      expect(limiter.consume('free')).toMatchObject({ limit: 3, remaining: 2 });
    });

    it('consumeMany decides each key like consume', () => {
      const { limiter } = make(engine, policy);
      const out = limiter.consumeMany(['a', 'b', 'a', 'a', 'a', 'c']);
      expect([...out]).toEqual([1, 1, 1, 1, 0, 1]);
      expect(limiter.peek('a').remaining).toBe(0);
      expect(limiter.peek('b').remaining).toBe(2);
      const mine = new Uint8Array(3);
      expect(limiter.consumeMany(['b', 'b', 'b'], 1, mine)).toBe(mine);
      expect([...mine]).toEqual([1, 1, 0]);
    });

    it('keys are exact strings: unicode, case and whitespace distinguish them', () => {
      const { limiter } = make(engine, fixedWindow({ limit: 1, windowMs: 1000 }));
      for (const key of ['user:é', 'user:e\u0301', 'USER:é', 'user:é ', '🔑', 'x'.repeat(1024)]) {
        expect(limiter.tryConsume(key)).toBe(true);
      }
      expect(limiter.tryConsume('🔑')).toBe(false);
    });
  });
});
