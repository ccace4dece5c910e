// What upstreams write in their rate headers, read as limitedFetch reads them: absent values,
// several IETF items, epoch resets in seconds or milliseconds, refused and oversized values.
import { describe, expect, it } from 'vitest';
import { parseDuration, parseRetryAfter, parseUpstreamLimits } from '../src/index.js';

const now = Date.parse('2026-11-22T12:00:00Z');

describe('absent values', () => {
  it('parseRetryAfter(null), what Headers.get() returns for a missing header, is no value', () => {
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter(new Headers().get('retry-after'))).toBeUndefined();
    expect(parseDuration(null)).toBeUndefined();
    expect(() => parseRetryAfter(7 as unknown as string)).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/for value/) }));
  });
});
