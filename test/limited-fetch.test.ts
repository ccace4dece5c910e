// limitedFetch after the upstream has answered: what it does with the answer's rate headers, and
// what it never does (wait for years, send a request again because of a local failure).
import { createServer } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { fixedWindow, Limiter } from '../src/index.js';
import { limitedFetch, type LimitedFetchEvent } from '../src/client-entry.js';
import { listen } from './helpers/listen.js';

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

  it('a long reset of a quota with room left imposes no wait, so nothing is capped or counted', async () => {
    const requests = limiter();
    const block = vi.spyOn(requests, 'block');
    const { fetch } = fakeFetch(200, { 'x-ratelimit-remaining': '90', 'x-ratelimit-reset': String(10 * 3600) });
    const call = limitedFetch({ requests, fetch });
    await call('http://upstream.test/');
    expect(block).not.toHaveBeenCalled();
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

/** A loopback upstream that counts the requests it received, per method, and answers `status` with `headers`. */
async function countingUpstream(status: number, headers: Record<string, string>) {
  const received: Record<string, number> = {};
  const server = createServer((req, res) => {
    received[req.method ?? '?'] = (received[req.method ?? '?'] ?? 0) + 1;
    res.writeHead(status, headers);
    res.end('done');
  });
  const url = await listen(server);
  return { url, received };
}

describe('a received response is never sent again because adapting to it failed', () => {
  it('X-RateLimit-Remaining: 41.5 is rounded down: one POST, the 200 returned, 41 left locally', async () => {
    const upstream = await countingUpstream(200, { 'x-ratelimit-remaining': '41.5' });
    const requests = limiter();
    const call = limitedFetch({ requests, retry: { methods: ['POST'] } });
    const response = await call(upstream.url, { method: 'POST', body: 'x' });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('done');
    expect(upstream.received).toEqual({ POST: 1 });
    expect(requests.peek('default').remaining).toBe(41);
    call.close();
    requests.close();
  });

  it('a limiter rejecting block() (a RedisLimiter whose breaker is open): one POST, the 200 returned, the failure reported once', async () => {
    const upstream = await countingUpstream(200, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '30' });
    const requests = limiter();
    const unavailable = Object.assign(new Error('breaker open'), { code: 'TOLLGATE_REDIS_UNAVAILABLE' });
    vi.spyOn(requests, 'block').mockRejectedValue(unavailable);
    const events: LimitedFetchEvent[] = [];
    const call = limitedFetch({ requests, retry: { methods: ['POST'] }, onEvent: (e) => events.push(e) });
    const response = await call(upstream.url, { method: 'POST', body: 'x' });
    expect(response.status).toBe(200);
    expect(upstream.received).toEqual({ POST: 1 });
    expect(events).toEqual([{ type: 'adapt-failed', status: 200, error: unavailable }]);
    expect(call.stats().adaptFailures).toBe(1);
    call.close();
    requests.close();
  });

  it('without onEvent, adaptation failures are one process warning (TOLLGATE_UPSTREAM_ADAPT_FAILED), however many', async () => {
    const upstream = await countingUpstream(200, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '30' });
    const requests = limiter();
    vi.spyOn(requests, 'block').mockRejectedValue(new Error('breaker open'));
    const warnings: (Error & { code?: string })[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const call = limitedFetch({ requests });
    await call(upstream.url);
    await call(upstream.url);
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    expect(upstream.received).toEqual({ GET: 2 });
    expect(warnings.map((w) => w.code)).toEqual(['TOLLGATE_UPSTREAM_ADAPT_FAILED']);
    expect(call.stats().adaptFailures).toBe(2);
    call.close();
    requests.close();
  });
});

describe('methods that are not idempotent are sent again only where retry.methods allows', () => {
  it('a POST answered 503 is sent once by default, and as often as allowed when listed', async () => {
    const upstream = await countingUpstream(503, {});
    const once = limitedFetch({ retry: { maxAttempts: 3, baseDelayMs: 1 } });
    await expect(once(upstream.url, { method: 'POST', body: 'x' })).rejects.toMatchObject({ status: 503 });
    expect(upstream.received).toEqual({ POST: 1 });
    await expect(once(upstream.url, { method: 'PATCH', body: 'x' })).rejects.toMatchObject({ status: 503 });
    expect(upstream.received).toEqual({ POST: 1, PATCH: 1 });
    await expect(once(upstream.url)).rejects.toMatchObject({ status: 503 });
    await expect(once(upstream.url, { method: 'put', body: 'x' })).rejects.toMatchObject({ status: 503 });
    expect(upstream.received).toEqual({ POST: 1, PATCH: 1, GET: 3, PUT: 3 });
    const allowed = limitedFetch({ retry: { maxAttempts: 3, baseDelayMs: 1, methods: ['post'] } });
    await expect(allowed(new Request(upstream.url, { method: 'POST', body: 'x' }))).rejects.toMatchObject({ status: 503 });
    expect(upstream.received.POST).toBe(4);
    // Listing methods replaces the default: GET is then sent once.
    await expect(allowed(upstream.url)).rejects.toMatchObject({ status: 503 });
    expect(upstream.received.GET).toBe(4);
    once.close();
    allowed.close();
  });

  it('a POST whose connection failed is not sent again by default', async () => {
    let attempts = 0;
    const failing = (async () => {
      attempts++;
      throw new TypeError('fetch failed');
    }) as unknown as typeof fetch;
    const call = limitedFetch({ fetch: failing, retry: { maxAttempts: 3, baseDelayMs: 1 } });
    await expect(call('http://upstream.test/', { method: 'POST' })).rejects.toThrow('fetch failed');
    expect(attempts).toBe(1);
    await expect(call('http://upstream.test/')).rejects.toThrow('fetch failed');
    expect(attempts).toBe(4);
    call.close();
  });

  it('retry.methods must be an array of method names', () => {
    expect(() => limitedFetch({ retry: { methods: 'POST' as unknown as string[] } })).toThrow(
      expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/for retry.methods/) }),
    );
    expect(() => limitedFetch({ retry: { method: ['POST'] } as never })).toThrow(/Unknown option retry.method \(did you mean methods\?\)/);
  });
});
