// The client side: waiting for capacity (fake timers, exact), header parsing, backoff, the queue,
// and limitedFetch against a real mock upstream that enforces its own limit.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AcquireError, allOf, destroySharedMemory, fixedWindow, Limiter, ManualClock, tokenBucket } from '../src/index.js';
import { backoffDelay, createQueue, limitedFetch, parseDuration, parseRetryAfter, parseUpstreamLimits, QueueFullError, retryPolicy, throttle, type DeadLetter } from '../src/client-entry.js';
import { BucketUpstream } from '../scripts/mock-upstream.mjs';
import { engines } from './helpers/engines.js';

describe('acquire (fake timers, manual clock)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function setup(capacity = 2, intervalMs = 1000) {
    vi.useFakeTimers();
    const clock = new ManualClock(0);
    const limiter = new Limiter({ policy: tokenBucket({ capacity, tokens: 1, intervalMs }), clock, capacity: 1000 });
    const advance = async (ms: number) => {
      for (let i = 0; i < ms; i++) {
        clock.advance(1);
        await vi.advanceTimersByTimeAsync(1);
      }
    };
    return { clock, limiter, advance };
  }

  it('resolves exactly when the policy frees capacity, one timer per key, no polling', async () => {
    const { limiter, advance } = setup();
    const consume = vi.spyOn(limiter, 'consume');
    const order: string[] = [];
    const done = (name: string) => () => order.push(name);
    void limiter.acquire('k').then(done('a'));
    void limiter.acquire('k').then(done('b'));
    void limiter.acquire('k').then(done('c'));
    await advance(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(['a', 'b']);
    await advance(999);
    expect(order).toEqual(['a', 'b']);
    await advance(1);
    expect(order).toEqual(['a', 'b', 'c']);
    // a, b, c's first try, c's one retry at the exact moment: no polling in between.
    expect(consume).toHaveBeenCalledTimes(4);
  });

  it('is first come, first served: a small request does not overtake a large one', async () => {
    const { limiter, advance } = setup(3, 100);
    await limiter.acquire('k', { cost: 3 });
    const order: string[] = [];
    void limiter.acquire('k', { cost: 3 }).then(() => order.push('big'));
    void limiter.acquire('k', { cost: 1 }).then(() => order.push('small'));
    await advance(100);
    expect(order).toEqual([]);
    await advance(200);
    expect(order).toEqual(['big']);
    await advance(100);
    expect(order).toEqual(['big', 'small']);
  });

  it('times out or aborts having spent nothing, and the next waiter moves up', async () => {
    const { limiter, advance } = setup(1, 1000);
    await limiter.acquire('k');
    const timedOut = limiter.acquire('k', { timeoutMs: 300 });
    const controller = new AbortController();
    const aborted = limiter.acquire('k', { signal: controller.signal });
    const third = limiter.acquire('k');
    const results = Promise.allSettled([timedOut, aborted]);
    await advance(300);
    controller.abort(new Error('user went away'));
    const [t, a] = await results;
    expect(t).toMatchObject({ status: 'rejected', reason: { code: 'TOLLGATE_ACQUIRE_TIMEOUT' } });
    expect(a).toMatchObject({ status: 'rejected', reason: { code: 'TOLLGATE_ACQUIRE_ABORTED', cause: { message: 'user went away' } } });
    await advance(700);
    await expect(third).resolves.toMatchObject({ allowed: true, remaining: 0 });
    await expect(limiter.acquire('k', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'TOLLGATE_ACQUIRE_ABORTED' });
  });

  it('rejects a cost that can never fit, and bad options', async () => {
    const { limiter } = setup(2);
    await expect(limiter.acquire('k', { cost: 3 })).rejects.toThrow(RangeError);
    await expect(limiter.acquire('k', { cost: 0 })).rejects.toThrow(/for cost/);
    await expect(limiter.acquire('', {})).rejects.toThrow(/for key/);
    await expect(limiter.acquire('k', { timeoutMs: -1 })).rejects.toThrow(/for timeoutMs/);
    await expect(limiter.acquire('k', { signal: {} as AbortSignal })).rejects.toThrow(/for signal/);
    const both = allOf(limiter);
    await expect(both.acquire('k', { cost: 0 })).rejects.toThrow(/for cost/);
  });

  it.each(engines())('%s engine: a key a full table refuses waits until room frees, then is served (regression: the TypeScript engine rejected at once, as a cost above the limit)', async (engine) => {
    vi.useFakeTimers();
    const clock = new ManualClock(0);
    const limiter = new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 1 }), engine, clock, capacity: 4, onFull: 'refuse' });
    for (const key of ['a', 'b', 'f']) limiter.block(key, 2 ** 50);
    limiter.block('c', 60_000);
    const settled: unknown[] = [];
    limiter.acquire('d', { timeoutMs: 120_000 }).then(
      (d) => settled.push(d),
      (e: unknown) => settled.push(e),
    );
    clock.advance(59_999);
    await vi.advanceTimersByTimeAsync(59_999);
    expect(settled).toEqual([]);
    clock.advance(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toEqual([expect.objectContaining({ allowed: true })]);
    limiter.close();
  });

  it('a denial with no time to retry for a cost within the limit rejects with TOLLGATE_ACQUIRE_NEVER, not a cost error', async () => {
    const { limiter } = setup(2);
    vi.spyOn(limiter, 'consume').mockReturnValue({ allowed: false, limit: 2, remaining: 0, resetMs: 0, retryAfterMs: Infinity });
    const rejected = limiter.acquire('k', { cost: 1 });
    await expect(rejected).rejects.toBeInstanceOf(AcquireError);
    await expect(rejected).rejects.toMatchObject({ code: 'TOLLGATE_ACQUIRE_NEVER', message: expect.stringContaining("No capacity for 'k' will ever come") });
    // Above the limit it stays the caller's error.
    await expect(limiter.acquire('k', { cost: 3 })).rejects.toMatchObject({ code: 'TOLLGATE_OUT_OF_RANGE' });
  });

  it('a wait beyond 2^31-1 ms (a 40-day block) is one timer re-armed in steps, not a busy poll', async () => {
    const { clock, limiter } = setup(1, 1000);
    const day = 86_400_000;
    limiter.block('k', 40 * day);
    const consume = vi.spyOn(limiter, 'consume');
    const armed: number[] = [];
    const realSetTimeout = globalThis.setTimeout;
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      armed.push(ms ?? 0);
      return realSetTimeout(fn, ms);
    }) as typeof setTimeout);
    const served = limiter.acquire('k');
    // A simulated second, then a day, an hour at a time: the waiter asks the limiter once, then sleeps.
    clock.advance(1000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(consume.mock.calls.length).toBeLessThanOrEqual(2);
    for (let h = 0; h < 24; h++) {
      clock.advance(3_600_000);
      await vi.advanceTimersByTimeAsync(3_600_000);
    }
    expect(consume.mock.calls.length).toBeLessThanOrEqual(3);
    expect(armed.every((ms) => ms <= 2 ** 31 - 1)).toBe(true);
    // Still served when the block ends.
    for (let h = 24; h <= 40 * 24; h += 24) {
      clock.advance(day);
      await vi.advanceTimersByTimeAsync(day);
    }
    await expect(served).resolves.toMatchObject({ allowed: true });
    expect(consume.mock.calls.length).toBeLessThanOrEqual(4);
    spy.mockRestore();
  });

  it('a waiter on a 40-day block raises no TimeoutOverflowWarning and close() settles it at once', async () => {
    vi.useRealTimers();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const limiter = new Limiter({ policy: tokenBucket({ capacity: 1, tokens: 1, intervalMs: 1000 }), clock: new ManualClock(0), engine: 'js' });
    limiter.block('k', 40 * 86_400_000);
    const consume = vi.spyOn(limiter, 'consume');
    const waiting = limiter.acquire('k');
    // Some real time passes: a busy poll would ask again every millisecond.
    await new Promise((r) => setTimeout(r, 20));
    expect(consume.mock.calls.length).toBe(1);
    limiter.close();
    await expect(waiting).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    expect(warnings.map((w) => w.name)).toEqual([]);
  });

  it('throttle() wraps a function so calls keep the rate', async () => {
    const { limiter, advance } = setup(1, 50);
    const calls: number[] = [];
    const wrapped = throttle(
      async (n: number) => {
        calls.push(n);
        return n * 2;
      },
      { limiter },
    );
    const results = [wrapped(1), wrapped(2), wrapped(3)];
    await advance(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toEqual([1]);
    await advance(50);
    expect(calls).toEqual([1, 2]);
    await advance(50);
    await expect(Promise.all(results)).resolves.toEqual([2, 4, 6]);
    expect(calls).toEqual([1, 2, 3]);
  });
});

describe('upstream headers and backoff', () => {
  it('parses Retry-After, durations and every rate header family', () => {
    const now = Date.parse('2026-11-22T12:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Sun, 22 Nov 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseDuration('1s')).toBe(1000);
    expect(parseDuration('6m0s')).toBe(360_000);
    expect(parseDuration('20ms')).toBe(20);
    expect(parseDuration('1h2m3.5s')).toBe(3_723_500);
    expect(parseDuration('0.5')).toBe(500);
    expect(parseDuration('later')).toBeUndefined();
    expect(
      parseUpstreamLimits({
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-remaining-requests': '499',
        'x-ratelimit-reset-requests': '120ms',
        'x-ratelimit-remaining-tokens': '149000',
        'x-ratelimit-reset-tokens': '6m0s',
      }),
    ).toEqual({ requests: { limit: 500, remaining: 499, resetMs: 120 }, tokens: { remaining: 149_000, resetMs: 360_000 } });
    expect(parseUpstreamLimits(new Headers({ ratelimit: '"default";r=42;t=17', 'ratelimit-policy': '"default";q=100;w=60' }))).toEqual({
      requests: { limit: 100, remaining: 42, resetMs: 17_000 },
    });
    expect(parseUpstreamLimits({ ratelimit: 'limit=100, remaining=0, reset=3', 'retry-after': '3' })).toEqual({
      retryAfterMs: 3000,
      requests: { limit: 100, remaining: 0, resetMs: 3000 },
    });
    expect(parseUpstreamLimits({ 'ratelimit-remaining': '5', 'ratelimit-reset': '9' }, now)).toEqual({ requests: { remaining: 5, resetMs: 9000 } });
    expect(parseUpstreamLimits({ 'x-ratelimit-remaining': '5', 'x-ratelimit-reset': String(now / 1000 + 12) }, now)).toEqual({
      requests: { remaining: 5, resetMs: 12_000 },
    });
  });

  it('backs off with full jitter under a doubling ceiling, never below Retry-After', () => {
    const low = retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000, random: () => 0 });
    const high = retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.9999 });
    expect([2, 3, 4, 5, 9].map((a) => backoffDelay(high, a))).toEqual([99, 199, 399, 799, 999]);
    expect(backoffDelay(low, 3)).toBe(0);
    expect(backoffDelay(low, 3, 2500)).toBe(2500);
    expect(() => retryPolicy({ maxAttempts: 0 })).toThrow(/retry.maxAttempts/);
  });
});

describe('the queue', () => {
  it('runs higher priorities first, in order within a priority, up to the concurrency', async () => {
    const queue = createQueue({ concurrency: 1 });
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    void queue.add(async () => {
      await gate;
      order.push('first');
    });
    for (const [name, priority] of [
      ['low', 0],
      ['high', 5],
      ['low2', 0],
      ['mid', 1],
    ] as const) {
      void queue.add(async () => void order.push(name), { priority });
    }
    expect(queue.size).toBe(4);
    expect(queue.pending).toBe(1);
    release();
    await queue.onIdle();
    expect(order).toEqual(['first', 'high', 'mid', 'low', 'low2']);
  });

  it('refuses jobs past maxSize with a clear error', async () => {
    const queue = createQueue({ concurrency: 1, maxSize: 2 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const jobs = [queue.add(() => gate), queue.add(async () => 1), queue.add(async () => 2)];
    await expect(queue.add(async () => 3)).rejects.toBeInstanceOf(QueueFullError);
    await expect(queue.add(async () => 3)).rejects.toMatchObject({ code: 'TOLLGATE_QUEUE_FULL' });
    release();
    await Promise.all(jobs);
  });

  it('many jobs waiting on a limit raise no listener-leak warning, and close() rejects them all', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const limiter = new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 3_600_000 }), clock: new ManualClock(0) });
    const queue = createQueue({ limits: [{ limiter }], retry: false });
    const jobs = Array.from({ length: 30 }, (_, i) => queue.add(async () => i));
    await expect(jobs[0]).resolves.toBe(0);
    // The other 29 wait on the limit, each listening to the queue's abort signal.
    await new Promise((r) => setImmediate(r));
    queue.close();
    const settled = await Promise.allSettled(jobs.slice(1));
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    expect(warnings.map((w) => w.name)).toEqual([]);
    limiter.close();
  });

  it('retries failures, then sends them to the dead-letter callback with the reason', async () => {
    const letters: DeadLetter[] = [];
    const queue = createQueue({ retry: { maxAttempts: 3, baseDelayMs: 1 }, onDeadLetter: (l) => letters.push(l) });
    let attempts = 0;
    await expect(
      queue.add(async () => {
        attempts++;
        if (attempts < 3) throw new Error('flaky');
        return 'ok';
      }),
    ).resolves.toBe('ok');
    await expect(queue.add(async () => Promise.reject(new Error('always')))).rejects.toThrow('always');
    await expect(queue.add(async () => Promise.reject(Object.assign(new Error('bad request'), { retryable: false })))).rejects.toThrow('bad request');
    expect(letters.map((l) => [l.reason, l.job.attempt, (l.error as Error).message])).toEqual([
      ['attempts', 3, 'always'],
      ['not retryable', 1, 'bad request'],
    ]);
  });
  it('a job added with retryable: false runs once whatever the retry options', async () => {
    const letters: DeadLetter[] = [];
    const queue = createQueue({ retry: { maxAttempts: 3, baseDelayMs: 1 }, onDeadLetter: (l) => letters.push(l) });
    let attempts = 0;
    const once = async () => {
      attempts++;
      throw new Error('flaky');
    };
    await expect(queue.add(once, { retryable: false })).rejects.toThrow('flaky');
    expect(attempts).toBe(1);
    expect(letters.map((l) => l.reason)).toEqual(['not retryable']);
    await expect(queue.add(once, { retryable: 'no' as unknown as boolean })).rejects.toThrow(/for retryable/);
  });
});

/** A real upstream on loopback that enforces its own token bucket and says so in its headers. */
const bucketOf = (perSecond: number, burst: number) => new Limiter({ policy: tokenBucket({ capacity: burst, refillPerSecond: perSecond }), engine: 'js' });
const bucketUpstream = (perSecond: number, burst: number) => new BucketUpstream(bucketOf(perSecond, burst));

describe('limitedFetch against a mock upstream', () => {
  it('500 jobs at the configured rate finish with zero 429s', async () => {
    const upstream = bucketUpstream(400, 20);
    const url = await upstream.listen();
    try {
      // 97% of the upstream's rate and a burst of 1. The upstream's burst (20) covers what can be in
      // flight (16) plus that burst, so however requests bunch up on a loaded machine, it never
      // sees more than 17 + 388/s against its 20 + 400/s: zero 429s is a guarantee, not luck.
      const requests = new Limiter({ policy: tokenBucket({ capacity: 1, refillPerSecond: 388 }), engine: engines()[0] ?? 'js' });
      const fetchLimited = limitedFetch({ requests, concurrency: 16 });
      const responses = await Promise.all(Array.from({ length: 500 }, () => fetchLimited(url)));
      expect(responses.every((r) => r.status === 200)).toBe(true);
      expect(upstream.tooMany).toBe(0);
      expect(upstream.ok).toBe(500);
    } finally {
      await upstream.close();
    }
  });

  it('with the upstream limit halved behind its back, every job still finishes or is dead-lettered', async () => {
    const upstream = bucketUpstream(400, 20);
    const url = await upstream.listen();
    try {
      const requests = new Limiter({ policy: tokenBucket({ capacity: 10, refillPerSecond: 360 }), engine: engines()[0] ?? 'js' });
      const letters: DeadLetter[] = [];
      const blocked = vi.spyOn(requests, 'block');
      const fetchLimited = limitedFetch({ requests, retry: { maxAttempts: 8, baseDelayMs: 20 }, onDeadLetter: (l) => letters.push(l) });
      const jobs = Array.from({ length: 500 }, (_, i) => {
        if (i === 100) upstream.limiter = bucketOf(180, 10); // halved behind the client's back
        return fetchLimited(url).then(
          (r) => r.status,
          () => 'dead',
        );
      });
      const outcomes = await Promise.all(jobs);
      expect(outcomes.filter((o) => o === 200).length + letters.length).toBe(500);
      expect(outcomes.filter((o) => o === 'dead')).toHaveLength(letters.length);
      // The client noticed (429s came back) and adapted: it blocked its own limiter.
      expect(upstream.tooMany).toBeGreaterThan(0);
      expect(blocked).toHaveBeenCalled();
      expect(upstream.ok).toBe(outcomes.filter((o) => o === 200).length);
    } finally {
      await upstream.close();
    }
  });

  it('charges estimated tokens, then refunds down to the real usage', async () => {
    const upstream = bucketUpstream(1000, 100);
    const url = await upstream.listen();
    try {
      const tokens = new Limiter({ policy: fixedWindow({ limit: 1000, windowMs: 60_000 }) });
      const fetchLimited = limitedFetch({
        tokens: {
          limiter: tokens,
          estimate: () => 100,
          actual: async (r) => ((await r.json()) as { usage: { total_tokens: number } }).usage.total_tokens,
        },
      });
      await fetchLimited(url, { headers: { 'x-tokens': '30' } });
      expect(tokens.peek('default').remaining).toBe(970);
      await fetchLimited(url, { headers: { 'x-tokens': '250' } });
      expect(tokens.peek('default').remaining).toBe(720);
    } finally {
      await upstream.close();
    }
  });

  it.runIf(engines().includes('native'))('two processes sharing one shared-memory limiter stay under the upstream quota', async () => {
    const upstream = bucketUpstream(300, 10);
    const url = await upstream.listen();
    const name = `fetch-${process.pid}`;
    destroySharedMemory(name);
    const child = fileURLToPath(new URL('./fixtures/fetch-child.mjs', import.meta.url));
    const run = () =>
      new Promise<string>((resolve, reject) => {
        const proc = spawn(process.execPath, [child, url, name, '200'], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        proc.stdout.on('data', (d) => (out += d));
        proc.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`child exited ${code}`))));
      });
    try {
      const outputs = await Promise.all([run(), run()]);
      expect(outputs).toEqual(['200', '200']);
      expect(upstream.tooMany).toBe(0);
      expect(upstream.ok).toBe(400);
    } finally {
      destroySharedMemory(name);
      await upstream.close();
    }
  });
});
