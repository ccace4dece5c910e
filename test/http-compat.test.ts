// What express-rate-limit users rely on, in tollgate's own middleware, in every framework: the
// request's rateLimit info, skipSuccessfulRequests / skipFailedRequests (the cost given back once the
// status is known), and statusCode / message for the refusal.
import { describe, expect, it, vi } from 'vitest';
import { fixedWindow, Limiter, ManualClock } from '../src/index.js';
import { frameworks, get, SEEN_HEADER } from './helpers/frameworks.js';

const KEY = 'client';
const limiterOf = (limit: number) => new Limiter({ policy: fixedWindow({ limit, windowMs: 60_000 }), clock: new ManualClock(0), capacity: 1000 });
/** One key for every request, whatever its query: what is counted is then what a test reads. */
const sameKey = () => KEY;

/** What the key has left once the response's outcome has been handled (a refund comes after the response is sent). */
async function settlesTo(limiter: Limiter, remaining: number): Promise<void> {
  await vi.waitFor(() => expect(limiter.peek(KEY).remaining).toBe(remaining), { timeout: 10_000, interval: 5 });
}

describe.each(frameworks)('%s', (name, start) => {
  it("the request carries rateLimit in express-rate-limit's shape: limit, used, remaining, resetTime, key", async () => {
    const limiter = limiterOf(3);
    const url = await start({ limiter, keyOfUrl: sameKey, allowList: ['10.9.9.9'] });
    const before = Date.now();
    const first = await get(url);
    const after = Date.now();
    const info = JSON.parse(first.headers.get(SEEN_HEADER) ?? 'null') as Record<string, unknown>;
    expect(info).toMatchObject({ limit: 3, used: 1, remaining: 2, key: KEY, decision: { allowed: true, limit: 3, remaining: 2 } });
    const resetAt = Date.parse(info.resetTime as string);
    expect(resetAt).toBeGreaterThanOrEqual(before + 60_000);
    expect(resetAt).toBeLessThanOrEqual(after + 60_000);
    const second = JSON.parse((await get(url)).headers.get(SEEN_HEADER) ?? 'null') as Record<string, unknown>;
    expect(second).toMatchObject({ limit: 3, used: 2, remaining: 1 });
  });

  it('a request the rule does not count carries no rateLimit', async () => {
    const url = await start({ limiter: limiterOf(3), allowList: ['127.0.0.1', '::1'] });
    const response = await get(url);
    expect(response.status).toBe(200);
    expect(response.headers.get(SEEN_HEADER)).toBeNull();
  });

  it('skipFailedRequests gives back requests answered 4xx/5xx or failed, never successes nor refusals', async () => {
    const limiter = limiterOf(2);
    const url = await start({ limiter, keyOfUrl: sameKey, skipFailedRequests: true });
    for (const failure of ['?status=500', '?status=404', '?status=500', '?throw']) {
      expect((await get(`${url}/${failure}`)).status).toBeGreaterThanOrEqual(400);
      await settlesTo(limiter, 2);
    }
    expect((await get(url)).status).toBe(200);
    expect((await get(url)).status).toBe(200);
    await settlesTo(limiter, 0);
    const refused = await get(url);
    expect(refused.status).toBe(429);
    // A refusal spent nothing, so nothing is given back: the key stays spent.
    expect((await get(url)).status).toBe(429);
    expect(limiter.peek(KEY).remaining).toBe(0);
  });

  it('skipSuccessfulRequests counts only failures (e.g. failed logins)', async () => {
    const limiter = limiterOf(2);
    const url = await start({ limiter, keyOfUrl: sameKey, skipSuccessfulRequests: true });
    for (let i = 0; i < 4; i++) {
      expect((await get(url)).status).toBe(200);
      await settlesTo(limiter, 2);
    }
    expect((await get(`${url}/?status=401`)).status).toBe(401);
    expect((await get(`${url}/?status=401`)).status).toBe(401);
    await settlesTo(limiter, 0);
    expect((await get(url)).status).toBe(429);
  });

  // Hono's handlers return before a client's leaving is known (its refund runs when they return):
  // it has no such case, so the test is defined for the node-response frameworks only (not skipped).
  if (name !== 'hono')
    it('skipFailedRequests gives back a request whose client left before the answer', async () => {
      const limiter = limiterOf(2);
      const url = await start({ limiter, keyOfUrl: sameKey, skipFailedRequests: true });
      const abort = new AbortController();
      const pending = fetch(`${url}/?hang`, { signal: abort.signal }).catch(() => 'aborted');
      await settlesTo(limiter, 1);
      abort.abort();
      expect(await pending).toBe('aborted');
      await settlesTo(limiter, 2);
    });

  it('statusCode answers a refusal with that status; the problem body and Retry-After follow it', async () => {
    const url = await start({ limiter: limiterOf(1), statusCode: 503 });
    expect((await get(url)).status).toBe(200);
    const refused = await get(url);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(refused.headers.get('retry-after')).toBe('60');
    expect(JSON.parse(refused.body)).toMatchObject({ status: 503, title: 'Service Unavailable', type: 'https://iana.org/assignments/http-problem-types#quota-exceeded' });
  });

  it('message answers a refusal with that text, or that object as JSON', async () => {
    const text = await start({ limiter: limiterOf(1), message: 'Too many requests, please try again later.' });
    await get(text);
    const refusedText = await get(text);
    expect(refusedText.status).toBe(429);
    expect(refusedText.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(refusedText.body).toBe('Too many requests, please try again later.');
    expect(refusedText.headers.get('retry-after')).toBe('60');

    const json = await start({ limiter: limiterOf(1), message: { error: 'slow down' }, statusCode: 420 });
    await get(json);
    const refusedJson = await get(json);
    expect(refusedJson.status).toBe(420);
    expect(refusedJson.headers.get('content-type')).toMatch(/^application\/json/);
    expect(JSON.parse(refusedJson.body)).toEqual({ error: 'slow down' });
  });
});

describe('a refund that fails', () => {
  it('is reported as a warning, never thrown: the response is already sent', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const limiter = limiterOf(2);
      const url = await frameworks[0][1]({ limiter, keyOfUrl: sameKey, skipFailedRequests: true });
      limiter.refund = () => {
        throw new Error('refund broke');
      };
      expect((await get(`${url}/?status=500`)).status).toBe(500);
      await vi.waitFor(() => expect(warn.mock.calls.some((c) => String(c[0]).includes('refund broke'))).toBe(true), { timeout: 10_000, interval: 5 });
      const call = warn.mock.calls.find((c) => String(c[0]).includes('refund broke'));
      expect(call?.[1]).toMatchObject({ code: 'TOLLGATE_MIDDLEWARE_ERROR' });
    } finally {
      warn.mockRestore();
    }
  });
});

describe('bad values are refused with the option named', () => {
  it.each([
    [{ statusCode: 200 }, 'statusCode', 'TOLLGATE_OUT_OF_RANGE'],
    [{ statusCode: '429' }, 'statusCode', 'TOLLGATE_INVALID_ARGUMENT'],
    [{ message: () => 'x' }, 'handler: (req, res, decision)', 'TOLLGATE_INVALID_ARGUMENT'],
    [{ skipFailedRequests: 'yes' }, 'skipFailedRequests', 'TOLLGATE_INVALID_ARGUMENT'],
    [{ skipSuccessfulRequests: 1 }, 'skipSuccessfulRequests', 'TOLLGATE_INVALID_ARGUMENT'],
  ])('%j', async (options, fragment, code) => {
    await expect(frameworks[0][1]({ limiter: limiterOf(1), ...(options as object) })).rejects.toMatchObject({ code, message: expect.stringContaining(fragment) });
  });
});
