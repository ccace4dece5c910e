// What upstreams write in their rate headers, read as limitedFetch reads them: absent values,
// several IETF items, epoch resets in seconds or milliseconds, refused and oversized values.
import { describe, expect, it } from 'vitest';
import { parseDuration, parseRetryAfter, parseUpstreamLimits } from '../src/client-entry.js';

const now = Date.parse('2026-11-22T12:00:00Z');

describe('absent values', () => {
  it('parseRetryAfter(null), what Headers.get() returns for a missing header, is no value', () => {
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter(new Headers().get('retry-after'))).toBeUndefined();
    expect(parseDuration(null)).toBeUndefined();
    expect(() => parseRetryAfter(7 as unknown as string)).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/for value/) }));
  });
});

describe('the most restrictive of several IETF RateLimit items applies', () => {
  it('a spent daily quota after a minute quota with room: the daily one', () => {
    const headers = new Headers({ ratelimit: '"minute";r=50;t=30, "day";r=0;t=36000', 'ratelimit-policy': '"minute";q=100;w=60, "day";q=1000;w=86400' });
    expect(parseUpstreamLimits(headers)).toEqual({ requests: { limit: 1000, remaining: 0, resetMs: 36_000_000 } });
  });

  it('the least remaining wins, whatever the order; equal remaining: the longest wait', () => {
    expect(parseUpstreamLimits({ ratelimit: '"day";r=7;t=500, "minute";r=3;t=20' })).toEqual({ requests: { remaining: 3, resetMs: 20_000 } });
    expect(parseUpstreamLimits({ ratelimit: '"a";r=0;t=5, "b";r=0;t=90, "c";r=0;t=10' })).toEqual({ requests: { remaining: 0, resetMs: 90_000 } });
  });

  it('a negative Retry-After is refused, not read as 0', () => {
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('-0.5', now)).toBeUndefined();
    expect(parseUpstreamLimits({ 'retry-after': '-30' }, now)).toEqual({});
  });
});

describe('reset times: epochs told from delta seconds by magnitude', () => {
  const in12s = now + 12_000;
  it('X-RateLimit-Reset in epoch milliseconds, epoch seconds, or delta seconds', () => {
    for (const reset of [String(in12s), String(in12s / 1000), '12']) {
      expect(parseUpstreamLimits({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }, now)).toEqual({ requests: { remaining: 0, resetMs: 12_000 } });
    }
  });

  it("draft 7's reset and draft 8's t in epoch seconds or milliseconds", () => {
    for (const reset of [String(in12s / 1000), String(in12s), '12']) {
      expect(parseUpstreamLimits({ ratelimit: `limit=100, remaining=0, reset=${reset}` }, now)).toEqual({ requests: { limit: 100, remaining: 0, resetMs: 12_000 } });
      expect(parseUpstreamLimits({ ratelimit: `"default";r=0;t=${reset}` }, now)).toEqual({ requests: { remaining: 0, resetMs: 12_000 } });
    }
  });

  it('an epoch already past is a wait of 0', () => {
    expect(parseUpstreamLimits({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now - 5000) }, now)).toEqual({ requests: { remaining: 0, resetMs: 0 } });
  });

  it('an all-digit Retry-After too long for a number is a finite, safe wait, never Infinity', () => {
    const huge = parseRetryAfter('9'.repeat(400), now);
    expect(huge).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseUpstreamLimits({ 'retry-after': '1'.repeat(30) }, now).retryAfterMs).toBe(Number.MAX_SAFE_INTEGER);
  });
});
