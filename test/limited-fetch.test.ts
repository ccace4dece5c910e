// limitedFetch after the upstream has answered: what it does with the answer's rate headers, and
// what it never does (wait for years, send a request again because of a local failure).
import { describe, expect, it, vi } from 'vitest';
import { fixedWindow, Limiter, limitedFetch, type LimitedFetchEvent } from '../src/index.js';

/** A fetch that answers every call with `status` and `headers`, counting the calls. */
function fakeFetch(status: number, headers: Record<string, string>) {
  const calls = { count: 0 };
  const fetch = async () => {
    calls.count++;
    return new Response(status === 204 ? null : 'body', { status, headers });
  };
  return { fetch: fetch as unknown as typeof globalThis.fetch, calls };
}

function limiter() {
  return new Limiter({ policy: fixedWindow({ limit: 100, windowMs: 60_000 }), engine: 'js' });
}

describe('upstream-announced waits are capped and counted', () => {
  it('a reset in epoch milliseconds 10 days away blocks for maxUpstreamWaitMs (default: the retry deadline), once counted', async () => {
    const requests = limiter();
    const block = vi.spyOn(requests, 'block');
    const events: LimitedFetchEvent[] = [];
    const { fetch } = fakeFetch(200, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Date.now() + 10 * 86_400_000) });
    const call = limitedFetch({ requests, fetch, onEvent: (e) => events.push(e) });
    expect((await call('http://upstream.test/')).status).toBe(200);
    expect(block).toHaveBeenCalledExactlyOnceWith('default', 120_000);
    expect(call.stats().waitsCapped).toBe(1);
    expect(events).toEqual([{ type: 'wait-capped', announcedMs: expect.any(Number), cappedMs: 120_000 }]);
    expect((events[0] as { announcedMs: number }).announcedMs).toBeGreaterThan(9 * 86_400_000);
    call.close();
    requests.close();
  });

  it('an all-digit Retry-After too long for a number: a 429 that blocks for the cap, not a RangeError', async () => {
    const requests = limiter();
    const block = vi.spyOn(requests, 'block');
    const { fetch, calls } = fakeFetch(429, { 'retry-after': '9'.repeat(400) });
    const call = limitedFetch({ requests, fetch, retry: false, maxUpstreamWaitMs: 5000 });
    await expect(call('http://upstream.test/')).rejects.toMatchObject({ name: 'UpstreamError', status: 429, retryAfterMs: 5000 });
    expect(block).toHaveBeenCalledExactlyOnceWith('default', 5000);
    expect(calls.count).toBe(1);
    expect(call.stats().waitsCapped).toBe(1);
    call.close();
    requests.close();
  });

  it('a wait within the cap is taken as announced, and not counted', async () => {
    const requests = limiter();
    const block = vi.spyOn(requests, 'block');
    const { fetch } = fakeFetch(200, { ratelimit: '"default";r=0;t=30' });
    const call = limitedFetch({ requests, fetch });
    await call('http://upstream.test/');
    expect(block).toHaveBeenCalledExactlyOnceWith('default', 30_000);
    expect(call.stats().waitsCapped).toBe(0);
    call.close();
    requests.close();
  });

  it('bad options are refused, naming them', () => {
    expect(() => limitedFetch({ maxUpstreamWaitMs: -1 })).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE', message: expect.stringMatching(/for maxUpstreamWaitMs/) }));
    expect(() => limitedFetch({ onEvent: 1 as unknown as () => void })).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/for onEvent/) }));
    expect(() => limitedFetch({ maxWaitMs: 1 } as never)).toThrow(/Unknown option limitedFetch.maxWaitMs/);
  });
});
