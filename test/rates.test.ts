// Rates written as numbers per second become exact fractions of tokens per interval, never faster.
import { describe, expect, it } from 'vitest';
import { leakyBucket, tokenBucket } from '../src/index.js';
import { MAX_RATE_INTERVAL_MS, rateFraction } from '../src/common/rate-fraction.js';

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

  it('an irrational rate becomes the closest fraction below it, within 2^31 ms', () => {
    for (const perSecond of [Math.PI, Math.SQRT2 / 1000, Math.E * 1e4, 1 / 7e5]) {
      const [tokens, intervalMs] = rateFraction(perSecond / 1000);
      expect(intervalMs).toBeLessThanOrEqual(MAX_RATE_INTERVAL_MS);
      expect(Number.isInteger(tokens) && Number.isInteger(intervalMs)).toBe(true);
      // Never faster than asked (beyond the number's own rounding: 4e-16), and within a billionth of it.
      expect(tokens / intervalMs).toBeLessThanOrEqual((perSecond / 1000) * (1 + 4e-16));
      expect(1 - (tokens / intervalMs) / (perSecond / 1000)).toBeLessThan(1e-9);
      // One more token per interval would be too fast: the fraction is the largest below.
      expect((tokens + 1) / intervalMs).toBeGreaterThan(perSecond / 1000);
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
