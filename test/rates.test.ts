// Rates written as numbers per second become exact fractions of tokens per interval, never faster.
import { describe, expect, it } from 'vitest';
import { leakyBucket, tokenBucket } from '../src/index.js';
import { MAX_RATE_INTERVAL_MS, RATE_TOLERANCE, rateFraction } from '../src/common/rate-fraction.js';

describe('rates per second', () => {
  it.each([
    [1 / 3600, 1, 3_600_000],
    [5 / 3, 1, 600],
    [1e-6, 1, 1_000_000_000],
    [1e6, 1000, 1],
    [0.001, 1, 1_000_000],
    [2.5, 1, 400],
    [7 / 13, 7, 13_000],
    [1 / 86_400, 1, 86_400_000],
  ])('%s per second is exactly %s per %s ms', (perSecond, tokens, intervalMs) => {
    expect(tokenBucket({ capacity: 10, refillPerSecond: perSecond })).toMatchObject({ refillTokens: tokens, refillIntervalMs: intervalMs });
    expect(leakyBucket({ burst: 10, ratePerSecond: perSecond })).toMatchObject({ rateTokens: tokens, rateIntervalMs: intervalMs });
  });

  const irrational = [Math.PI, Math.E, Math.SQRT2, Math.PI * 1e6, Math.SQRT2 / 1000, Math.E * 1e4, 1 / 7e5, Math.PI / 1e5, Math.LN2 / 3600];

  it.each(irrational)('%s per second (no exact fraction) becomes the simplest fraction at most a billionth below it', (perSecond) => {
    const perMs = perSecond / 1000;
    const [tokens, intervalMs] = rateFraction(perMs);
    expect(intervalMs).toBeLessThanOrEqual(MAX_RATE_INTERVAL_MS);
    expect(Number.isInteger(tokens) && Number.isInteger(intervalMs)).toBe(true);
    // Never faster than asked (beyond the number's own rounding: 4e-16), and within RATE_TOLERANCE of it.
    expect(tokens / intervalMs).toBeLessThanOrEqual(perMs * (1 + 4e-16));
    expect(1 - tokens / intervalMs / perMs).toBeLessThanOrEqual(RATE_TOLERANCE);
    // Small terms: the engines' bound on tokens × interval (2^50) is far away, and so is a
    // capacity's (capacity × interval): a capacity of a million fits every rate here.
    expect(tokens * intervalMs).toBeLessThan(2 ** 40);
    expect(intervalMs).toBeLessThan(2 ** 30);
    // No fraction with a shorter interval is as close from below.
    for (let k = 1; k < Math.min(intervalMs, 20_000); k++) {
      expect(1 - Math.floor(perMs * k) / k / perMs, `interval ${k}`).toBeGreaterThan(RATE_TOLERANCE);
    }
  });

  // Regression: π and e were refused ("tokens times interval is at most 2^50") while the docs gave
  // π as an accepted rate.
  it.each([
    [Math.PI, 1e6],
    [Math.E, 1e6],
    [Math.PI * 1e6, 1e6],
  ])('tokenBucket and leakyBucket take %s per second, with a capacity of %s', (perSecond, capacity) => {
    const bucket = tokenBucket({ capacity, refillPerSecond: perSecond });
    const perMs = bucket.refillTokens / bucket.refillIntervalMs;
    expect(perMs).toBeLessThanOrEqual(perSecond / 1000);
    expect(1 - perMs / (perSecond / 1000)).toBeLessThanOrEqual(RATE_TOLERANCE);
    const leaky = leakyBucket({ burst: capacity, ratePerSecond: perSecond });
    expect([leaky.rateTokens, leaky.rateIntervalMs]).toEqual([bucket.refillTokens, bucket.refillIntervalMs]);
  });

  // Regression: 10^12 per second became 999,999,999 per ms (the simplest fraction within the
  // tolerance, not the exact one), and rates of 10^19 per second or more never returned.
  it.each([
    [1e12, 1e9],
    [1e16, 1e13],
    [1e18, 1e15],
    [2 ** 50 * 1000, 2 ** 50],
  ])('%s per second, a whole number per ms, is exactly %s per ms', (perSecond, perMs) => {
    expect(tokenBucket({ capacity: 1, refillPerSecond: perSecond })).toMatchObject({ refillTokens: perMs, refillIntervalMs: 1 });
  });

  it('refuses a rate past 2^50 per ms at once, as it cannot be kept', () => {
    for (const bad of [2 ** 50 * 1000 * 1.01, 1e19, 1e20, 1e300, Number.MAX_VALUE]) {
      expect(() => tokenBucket({ capacity: 1, refillPerSecond: bad })).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE', message: expect.stringMatching(/refillPerSecond/) }));
      expect(() => leakyBucket({ burst: 1, ratePerSecond: bad })).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE', message: expect.stringMatching(/ratePerSecond/) }));
    }
  });

  it('any rate from one a day to 2^50 per ms returns a fraction never faster than asked', () => {
    let seed = 0x5eed;
    const random = () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed / 2 ** 32;
    };
    for (let i = 0; i < 3000; i++) {
      const perSecond = 10 ** (-4.9 + random() * 22.9) * (1 + random());
      if (perSecond / 1000 > 2 ** 50) continue;
      const [tokens, intervalMs] = rateFraction(perSecond / 1000);
      expect(Number.isSafeInteger(tokens) && Number.isSafeInteger(intervalMs) && tokens >= 1, `${perSecond}`).toBe(true);
      expect(intervalMs, `${perSecond}`).toBeLessThanOrEqual(MAX_RATE_INTERVAL_MS);
      expect(tokens / intervalMs, `${perSecond}`).toBeLessThanOrEqual((perSecond / 1000) * (1 + 4e-16));
    }
  });

  it('refuses zero, negative, NaN, infinite and too-slow rates with a coded RangeError', () => {
    for (const bad of [0, -1, Number.NaN, Infinity, -Infinity, 1e-7]) {
      expect(() => tokenBucket({ capacity: 1, refillPerSecond: bad })).toThrow(
        expect.objectContaining({ name: 'RangeError', code: 'TOLLGATE_OUT_OF_RANGE', message: expect.stringMatching(/refillPerSecond/) }),
      );
    }
    expect(() => tokenBucket({ capacity: 1, refillPerSecond: '1' as never })).toThrow(expect.objectContaining({ name: 'TypeError', code: 'TOLLGATE_INVALID_ARGUMENT' }));
  });
});
