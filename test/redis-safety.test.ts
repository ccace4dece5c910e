// The Redis tier safe by default, on a real redis-server: limiters never share counters by
// accident, foreign state is an error and never a silent pass, a call that timed out never counts
// later, a dead Redis is known (a breaker) instead of costing a timeout per call, and the fallback
// decides the call the caller made.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fixedWindow, leakyBucket, Limiter, ManualClock, RedisLimiter, slidingWindow, tokenBucket, type RedisCommandSender, type RedisLimiterEvent } from '../src/index.js';
import { toPrometheus } from '../src/metrics-entry.js';
import { hasRedis, startRedis, useRedisServer, type LocalRedis } from './helpers/redis.js';

let names = 0;
const unique = (label: string) => `${label}${++names}`;
const waitFor = async (what: string, done: () => boolean | Promise<boolean>, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/**
 * Calls until Redis itself has answered one (the first call probes the node, its clock among the
 * rest, and on a loaded machine may outlive a short timeoutMs and be decided by onError): the
 * counts a test then asserts start from what this returns.
 */
async function warmUp(limiter: RedisLimiter): Promise<{ failedOpen: number; timeouts: number }> {
  let answered = false;
  for (let i = 0; i < 100 && !answered; i++) {
    const before = limiter.stats().failedOpen;
    expect((await limiter.consume('warm')).allowed).toBe(true);
    answered = limiter.stats().failedOpen === before;
  }
  expect(answered).toBe(true);
  const { failedOpen, timeouts } = limiter.stats();
  return { failedOpen, timeouts };
}

describe.runIf(hasRedis)('RedisLimiter keeps limiters apart', () => {
  let server: LocalRedis;
  let redis: Redis;
  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis({ host: server.host, port: server.port });
    redis.on('error', () => undefined);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('a login limiter and an API limiter on one IP each keep their own limit', async () => {
    const prefix = unique('apart') + ':';
    const login = new RedisLimiter({ redis, name: 'login', prefix, policy: fixedWindow({ limit: 5, windowMs: 60_000 }) });
    const api = new RedisLimiter({ redis, name: 'api', prefix, policy: fixedWindow({ limit: 100, windowMs: 60_000 }) });
    for (let i = 0; i < 10; i++) expect((await api.consume('10.0.0.1')).allowed).toBe(true);
    const logins = [];
    for (let i = 0; i < 6; i++) logins.push((await login.consume('10.0.0.1')).allowed);
    expect(logins).toEqual([true, true, true, true, true, false]);
    expect(await api.peek('10.0.0.1')).toMatchObject({ allowed: true, remaining: 90 });
    expect(await redis.get(`${prefix}login{10.0.0.1}:fw60000`)).toBe('5');
    expect(await redis.get(`${prefix}api{10.0.0.1}:fw60000`)).toBe('10');
    login.close();
    api.close();
  });

  it('limiters of different kinds under one name and key count apart, and never fail', async () => {
    const prefix = unique('kinds') + ':';
    const events: RedisLimiterEvent[] = [];
    const window = new RedisLimiter({ redis, name: 'same', prefix, policy: fixedWindow({ limit: 3, windowMs: 60_000 }), onEvent: (e) => events.push(e) });
    const bucket = new RedisLimiter({ redis, name: 'same', prefix, policy: tokenBucket({ capacity: 2, refillPerSecond: 0.001 }), onEvent: (e) => events.push(e) });
    const allowed = { window: 0, bucket: 0 };
    for (let i = 0; i < 5; i++) {
      if ((await window.consume('k')).allowed) allowed.window++;
      if ((await bucket.consume('k')).allowed) allowed.bucket++;
    }
    expect(allowed).toEqual({ window: 3, bucket: 2 });
    expect(events).toEqual([]);
    expect(window.stats()).toMatchObject({ errors: 0, failedOpen: 0, stateMismatches: 0 });
    window.close();
    bucket.close();
  });

  it('a changed limit and a per-call tier keep the counter (the key names the shape, not the limit)', async () => {
    const prefix = unique('limit') + ':';
    const before = new RedisLimiter({ redis, name: 'api', prefix, policy: fixedWindow({ limit: 5, windowMs: 60_000 }) });
    await before.consume('k', 4);
    const after = new RedisLimiter({ redis, name: 'api', prefix, policy: fixedWindow({ limit: 10, windowMs: 60_000 }) });
    expect(await after.consume('k')).toMatchObject({ allowed: true, remaining: 5 });
    expect(await after.consume('k', 1, { limit: 6 })).toMatchObject({ allowed: true, remaining: 0 });
    before.close();
    after.close();
  });

  it.each([
    ['a string', (k: string) => redis.set(k, 'not a counter')],
    ['a hash', (k: string) => redis.hset(k, 'f', '1')],
    ['a list', (k: string) => redis.rpush(k, 'x')],
  ])('state of another shape (%s) rejects the call, counted and reported, never failing open, and changes nothing', async (_label, plant) => {
    const prefix = unique('foreign') + ':';
    const events: RedisLimiterEvent[] = [];
    const policies = [fixedWindow({ limit: 5, windowMs: 60_000 }), tokenBucket({ capacity: 5, refillPerSecond: 1 })];
    for (const [i, suffix] of [':fw60000', ':tb1/1000'].entries()) {
      const limiter = new RedisLimiter({ redis, name: 'x', prefix, policy: policies, onError: 'allow', onEvent: (e) => events.push(e), denyCache: false });
      const key = `key${i}`;
      await plant(`${prefix}x{${key}}${suffix}`);
      await expect(limiter.consume(key)).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_STATE_MISMATCH', message: expect.stringContaining(`${prefix}x{${key}}${suffix}`) });
      await expect(limiter.refund(key)).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_STATE_MISMATCH' });
      expect(limiter.stats()).toMatchObject({ stateMismatches: 2, failedOpen: 0, allowed: 0 });
      // The other policy's key was not written: the request stopped before any write.
      const other = `${prefix}x{${key}}${i === 0 ? ':tb1/1000' : ':fw60000'}`;
      expect(await redis.exists(other)).toBe(0);
      // Other keys of the same limiter decide as usual in the same batch.
      const [bad, good] = await Promise.allSettled([limiter.consume(key), limiter.consume('fine')]);
      expect(bad.status).toBe('rejected');
      expect(good).toMatchObject({ status: 'fulfilled', value: { allowed: true } });
      limiter.close();
    }
    expect(events.filter((e) => e.type === 'error' && e.error.code === 'TOLLGATE_REDIS_STATE_MISMATCH')).toHaveLength(6);
  });

  it.each([
    ['fixed window', fixedWindow({ limit: 5, windowMs: 60_000 }), ':fw60000'],
    ['sliding window', slidingWindow({ limit: 5, windowMs: 60_000 }), ':sw60000'],
    ['token bucket', tokenBucket({ capacity: 5, refillPerSecond: 1 }), ':tb1/1000'],
    ['leaky bucket', leakyBucket({ burst: 5, tokens: 1, intervalMs: 1000 }), ':lb1/1000'],
  ])('%s: a foreign key inside a batch of plain consumes fails alone; the requests around it are decided', async (_label, policy, suffix) => {
    const prefix = unique('batch') + ':';
    const limiter = new RedisLimiter({ redis, name: 'x', prefix, policy, onError: 'allow', denyCache: false });
    await redis.set(`${prefix}x{c}${suffix}`, 'not a state');
    const keys = ['a', 'b', 'c', 'd', 'e', 'c', 'a'];
    const settled = await Promise.allSettled(keys.map((k) => limiter.consume(k)));
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const remaining = settled.map((r) => (r.status === 'fulfilled' ? r.value.remaining : null));
    expect(remaining).toEqual([4, 4, null, 4, 4, null, 3]);
    expect(await redis.get(`${prefix}x{c}${suffix}`)).toBe('not a state');
    expect(limiter.stats()).toMatchObject({ stateMismatches: 2, failedOpen: 0, redisCalls: 2 });
    limiter.close();
  });

  it('state written by tollgate 0.1 (T1: three doubles, no expiry) still decides, and is rewritten in the current form', async () => {
    const prefix = unique('t1') + ':';
    const clock = new ManualClock(1_000_000);
    // A token a minute: the state rewritten lives minutes on Redis' clock, however slow the test.
    const limiter = new RedisLimiter({ redis, name: 'x', prefix, policy: tokenBucket({ capacity: 5, tokens: 1, intervalMs: 60_000 }), clock, denyCache: false });
    const key = `${prefix}x{k}:tb1/60000`;
    // 3 tokens counted at the clock's time, no credit.
    const t1 = Buffer.alloc(26);
    t1.write('T1', 0, 'latin1');
    t1.writeDoubleLE(3, 2);
    t1.writeDoubleLE(1_000_000, 10);
    t1.writeDoubleLE(0, 18);
    await redis.set(key, t1, 'PX', 60_000);
    expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 2 });
    const stored = await redis.getBuffer(key);
    expect(stored?.subarray(0, 2).toString('latin1')).toBe('T3');
    expect(stored?.readDoubleLE(2)).toBe(2);
    expect(await limiter.consume('k', 3)).toMatchObject({ allowed: false, remaining: 2 });
    limiter.close();
  });

  it('state in the T2 form (no time it becomes fresh) still decides, and is rewritten as T3', async () => {
    const prefix = unique('t2') + ':';
    const clock = new ManualClock(1_000_000);
    const limiter = new RedisLimiter({ redis, name: 'x', prefix, policy: tokenBucket({ capacity: 5, tokens: 1, intervalMs: 60_000 }), clock, denyCache: false });
    const key = `${prefix}x{k}:tb1/60000`;
    const t2 = Buffer.alloc(34);
    t2.write('T2', 0, 'latin1');
    t2.writeDoubleLE(3, 2);
    t2.writeDoubleLE(1_000_000, 10);
    t2.writeDoubleLE(0, 18);
    t2.writeDoubleLE(0, 26);
    await redis.set(key, t2, 'PX', 60_000);
    expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 2 });
    const stored = await redis.getBuffer(key);
    expect(stored?.length).toBe(42);
    expect(stored?.subarray(0, 2).toString('latin1')).toBe('T3');
    // Fresh (by the decisions' clock) when 3 more tokens have come: 1,000,000 + 3 minutes.
    expect(stored?.readDoubleLE(34)).toBe(1_000_000 + 3 * 60_000);
    limiter.close();
  });

  it('a name is required, and unknown options are refused by name', () => {
    const policy = fixedWindow({ limit: 1, windowMs: 1000 });
    expect(() => new RedisLimiter({ redis, policy } as never)).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/for name/) }));
    expect(() => new RedisLimiter({ redis, name: '', policy })).toThrow(/for name/);
    expect(() => new RedisLimiter({ redis, name: 'a', policy, keyPrefix: 'x' } as never)).toThrow(/options\.keyPrefix/);
    expect(() => new RedisLimiter({ redis, name: 'a', policy, breaker: { retries: 3 } } as never)).toThrow(/breaker\.retries/);
    expect(() => new RedisLimiter({ redis, name: 'a', policy, breaker: { retryMs: 500, maxRetryMs: 100 } })).toThrow(RangeError);
    expect(() => new RedisLimiter({ redis, name: 'a', policy, cluster: 'yes' } as never)).toThrow(/for cluster/);
    expect(() => new RedisLimiter({ redis, name: 'a', policy, onEvent: 'log' } as never)).toThrow(/for onEvent/);
  });
});

describe.runIf(hasRedis)('RedisLimiter never counts a call after it timed out', () => {
  it('calls held by CLIENT PAUSE fail open at their timeout, and Redis refuses them when it resumes', async () => {
    const server = await startRedis();
    const redis = new Redis({ host: server.host, port: server.port });
    const admin = new Redis({ host: server.host, port: server.port });
    // 32 per call: the 100 requests below make four batches.
    const limiter = new RedisLimiter({
      redis,
      name: 'paused',
      policy: fixedWindow({ limit: 1000, windowMs: 60_000 }),
      timeoutMs: 100,
      breaker: false,
      denyCache: false,
      maxBatch: 32,
    });
    try {
      // The first call reads Redis' clock; later calls carry deadlines in it.
      const before = await warmUp(limiter);
      await admin.client('PAUSE', 1500, 'ALL');
      const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
      const decisions = await Promise.all(keys.map((k) => limiter.consume(k)));
      expect(decisions.every((d) => d.allowed)).toBe(true);
      expect(limiter.stats()).toMatchObject({ timeouts: before.timeouts + 4, failedOpen: before.failedOpen + 100 });
      // When the pause ends the four batches run, see that they are late, and do nothing.
      await waitFor('the paused batches to be refused', () => limiter.stats().lateRefused === 4);
      expect(await redis.keys('tollgate:paused{k*')).toEqual([]);
      expect(limiter.stats().lateExecuted).toBe(0);
      expect(await limiter.consume('k1')).toMatchObject({ allowed: true, remaining: 999 });
    } finally {
      limiter.close();
      redis.disconnect();
      admin.disconnect();
      await server.stop();
    }
  });

  it('calls queued by ioredis while Redis was down, replayed after it restarts, never count', async () => {
    const server = await startRedis();
    // ioredis' defaults: the offline queue holds commands while disconnected and sends them on reconnect.
    const redis = new Redis({ host: server.host, port: server.port, retryStrategy: () => 20 });
    redis.on('error', () => undefined);
    // 32 per call: the 50 requests below make two batches.
    const limiter = new RedisLimiter({
      redis,
      name: 'replayed',
      policy: fixedWindow({ limit: 1000, windowMs: 60_000 }),
      timeoutMs: 100,
      breaker: false,
      denyCache: false,
      maxBatch: 32,
    });
    let again: LocalRedis | undefined;
    try {
      const before = await warmUp(limiter);
      server.process.kill('SIGKILL');
      await waitFor('ioredis to see the server gone', () => redis.status !== 'ready');
      const decisions = await Promise.all(Array.from({ length: 50 }, (_, i) => limiter.consume(`k${i}`)));
      expect(decisions.every((d) => d.allowed)).toBe(true);
      expect(limiter.stats().failedOpen).toBe(before.failedOpen + 50);
      again = await startRedis([], server.port);
      // The replayed script meets NOSCRIPT on the new server, is sent again in full, and is refused as late.
      await waitFor('the replayed batches to be refused', () => limiter.stats().lateRefused === 2);
      expect(await redis.keys('tollgate:replayed{k*')).toEqual([]);
      expect(limiter.stats().lateExecuted).toBe(0);
    } finally {
      limiter.close();
      redis.disconnect();
      await again?.stop();
      await server.stop();
    }
  });
});

describe.runIf(hasRedis)('RedisLimiter knows when Redis is down', () => {
  it('after the first failure calls go to onError without a round trip; one trial at a time finds Redis back', async () => {
    const server = await startRedis();
    const redis = new Redis({ host: server.host, port: server.port, retryStrategy: () => 20 });
    redis.on('error', () => undefined);
    const fallback = new Limiter({ policy: fixedWindow({ limit: 1_000_000, windowMs: 60_000 }), engine: 'js' });
    const events: RedisLimiterEvent[] = [];
    const limiter = new RedisLimiter({
      redis,
      name: 'breaker',
      policy: fixedWindow({ limit: 1_000_000, windowMs: 60_000 }),
      timeoutMs: 100,
      onError: fallback,
      breaker: { retryMs: 50, maxRetryMs: 200 },
      onEvent: (e) => events.push(e),
    });
    let again: LocalRedis | undefined;
    try {
      expect((await limiter.consume('k')).allowed).toBe(true);
      server.process.kill('SIGKILL');
      await waitFor('ioredis to see the server gone', () => redis.status !== 'ready');
      const callsBefore = limiter.stats().redisCalls;
      let decided = 0;
      const until = Date.now() + 1000;
      while (Date.now() < until) {
        const batch = await Promise.all(Array.from({ length: 20 }, () => limiter.consume('k')));
        decided += batch.filter((d) => d.allowed).length;
      }
      const s = limiter.stats();
      expect(s.breakerOpened).toBeGreaterThanOrEqual(1);
      expect(s.shortCircuited).toBeGreaterThan(0);
      // Every call sent during the outage was the first batch or a trial (one call each).
      expect(s.redisCalls - callsBefore).toBeLessThanOrEqual(1 + s.breakerHalfOpened);
      expect(s.fallbackDecisions).toBe(decided);
      expect(fallback.peek('k').remaining).toBe(1_000_000 - decided);
      // Refund, block and reset are refused at once while the node is known down.
      await expect(limiter.block('k', 1000)).rejects.toMatchObject({ code: expect.stringMatching(/TOLLGATE_REDIS_(UNAVAILABLE|TIMEOUT|ERROR)/) });

      again = await startRedis([], server.port);
      await waitFor('decisions to come back from Redis', async () => {
        await limiter.consume('after');
        return (await redis.get('tollgate:breaker{after}:fw60000').catch(() => null)) !== null;
      });
      expect(limiter.stats().breakerClosed).toBeGreaterThanOrEqual(1);
      expect(limiter.stats().openNodes).toBe(0);
      const metrics = toPrometheus(limiter);
      expect(metrics).toMatch(/tollgate_redis_breaker_transitions_total\{limiter="breaker",state="open"\} [1-9]/);
      expect(metrics).toMatch(/tollgate_redis_errors_total\{limiter="breaker",kind="breaker_open"\} [1-9]/);
      expect(metrics).toContain('tollgate_redis_open_nodes{limiter="breaker"} 0');
      const states = events.filter((e) => e.type === 'breaker').map((e) => (e.type === 'breaker' ? e.state : ''));
      expect(states[0]).toBe('open');
      expect(states.at(-1)).toBe('closed');
    } finally {
      limiter.close();
      redis.disconnect();
      await again?.stop();
      await server.stop();
    }
  });

  it('the fallback limiter decides the call the caller made: its per-call limit included', async () => {
    const broken: RedisCommandSender = { sendCommand: () => Promise.reject(new Error('connection refused')) };
    const fallback = new Limiter({ policy: fixedWindow({ limit: 100, windowMs: 60_000 }), engine: 'js' });
    const limiter = new RedisLimiter({ redis: broken, name: 'tiers', policy: fixedWindow({ limit: 100, windowMs: 60_000 }), onError: fallback });
    const decisions = [];
    for (let i = 0; i < 3; i++) decisions.push(await limiter.consume('free-user', 1, { limit: 2 }));
    expect(decisions.map((d) => [d.allowed, d.limit])).toEqual([
      [true, 2],
      [true, 2],
      [false, 2],
    ]);
    expect(await limiter.peek('free-user', 1, { limit: 3 })).toMatchObject({ allowed: true, limit: 3, remaining: 1 });
    limiter.close();
  });

  it('a batch refused by an open breaker is reported to onEvent as TOLLGATE_REDIS_UNAVAILABLE (regression: the error was built and dropped)', async () => {
    const broken: RedisCommandSender = { sendCommand: () => Promise.reject(new Error('down')) };
    const events: RedisLimiterEvent[] = [];
    const limiter = new RedisLimiter({ redis: broken, name: 'refused', policy: fixedWindow({ limit: 5, windowMs: 1000 }), onError: 'allow', onEvent: (e) => events.push(e) });
    expect(await limiter.consume('k')).toMatchObject({ allowed: true });
    expect(await limiter.consume('k')).toMatchObject({ allowed: true });
    expect(limiter.stats()).toMatchObject({ errors: 1, shortCircuited: 1 });
    expect(events.map((e) => (e.type === 'error' ? e.error.code : e.state))).toEqual(['TOLLGATE_REDIS_ERROR', 'open', 'TOLLGATE_REDIS_UNAVAILABLE']);
    limiter.close();
  });

  it('an onEvent that throws is reported as a warning and changes nothing', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const broken: RedisCommandSender = { sendCommand: () => Promise.reject(new Error('down')) };
      const limiter = new RedisLimiter({
        redis: broken,
        name: 'throws',
        policy: fixedWindow({ limit: 1, windowMs: 1000 }),
        onError: 'deny',
        onEvent: () => {
          throw new Error('logger broke');
        },
      });
      expect(await limiter.consume('k')).toMatchObject({ allowed: false });
      expect(await limiter.consume('k')).toMatchObject({ allowed: false });
      expect(limiter.stats()).toMatchObject({ failedClosed: 2, errors: 1, shortCircuited: 1 });
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('logger broke'), expect.objectContaining({ code: 'TOLLGATE_CALLBACK_ERROR' }));
      limiter.close();
    } finally {
      warn.mockRestore();
    }
  });
});

describe.runIf(hasRedis)('RedisLimiter against races and foreign numbers (found by an outside attack)', () => {
  const state = useRedisServer();

  it('a denial decided before a reset() or refund() is not cached after it: the key has room at once', async () => {
    const policies = { fixedWindow: fixedWindow({ limit: 3, windowMs: 60_000 }), tokenBucket: tokenBucket({ capacity: 3, tokens: 1, intervalMs: 60_000 }) };
    for (const [kind, policy] of Object.entries(policies)) {
      const limiter = new RedisLimiter({ redis: state.redis, name: `race-${kind}`, policy });
      try {
        for (let i = 0; i < 3; i++) expect((await limiter.consume('k')).allowed).toBe(true);
        // Sent before the reset (a lone call goes at once), denied by Redis, answered after it.
        const inFlight = limiter.consume('k');
        const wasLive = limiter.reset('k');
        expect((await inFlight).allowed).toBe(false);
        expect(await wasLive).toBe(true);
        expect((await limiter.consume('k')).allowed).toBe(true);
        expect(limiter.stats().denyCacheHits).toBe(0);
        // The same with a refund of a full key.
        expect((await limiter.consume('k')).allowed).toBe(true);
        expect((await limiter.consume('k')).allowed).toBe(true);
        const denied = limiter.consume('k');
        const refunded = limiter.refund('k', 2);
        expect((await denied).allowed).toBe(false);
        await refunded;
        expect((await limiter.consume('k')).allowed).toBe(true);
        expect(limiter.stats().denyCacheHits).toBe(0);
      } finally {
        limiter.close();
      }
    }
  });

  it('calls reach Redis in the order they were made: consumes made before block() or reset() in the same turn count before it', async () => {
    const limiter = new RedisLimiter({ redis: state.redis, name: 'order', policy: fixedWindow({ limit: 5, windowMs: 60_000 }), denyCache: false });
    try {
      await limiter.consume('warm');
      // A call in flight, so the next consumes wait for their batch.
      const held = limiter.consume('other');
      const before = [limiter.consume('k'), limiter.consume('k'), limiter.consume('k')];
      const blocked = limiter.block('k', 60_000);
      await Promise.all([held, blocked]);
      expect((await Promise.all(before)).map((d) => d.allowed)).toEqual([true, true, true]);
      expect((await limiter.consume('k')).allowed).toBe(false);
      // On a full key, consumes made before reset() are denied in the old window; the new one is whole.
      for (let i = 0; i < 5; i++) await limiter.consume('r');
      const held2 = limiter.consume('other');
      const full = [limiter.consume('r'), limiter.consume('r')];
      const reset = limiter.reset('r');
      await Promise.all([held2, reset]);
      expect((await Promise.all(full)).map((d) => d.allowed)).toEqual([false, false]);
      expect((await limiter.consume('r')).remaining).toBe(4);
    } finally {
      limiter.close();
    }
  });

  it("a negative number under a fixed window's key is state of another shape: refused, left as it was, never counted", async () => {
    const limiter = new RedisLimiter({ redis: state.redis, name: 'negative', policy: fixedWindow({ limit: 5, windowMs: 60_000 }) });
    try {
      await state.redis.set('tollgate:negative{k}:fw60000', '-50');
      for (let i = 0; i < 3; i++) await expect(limiter.consume('k')).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_STATE_MISMATCH' });
      await expect(limiter.peek('k')).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_STATE_MISMATCH' });
      expect(await state.redis.get('tollgate:negative{k}:fw60000')).toBe('-50');
      // Other keys of the same batch are decided as usual.
      const [other, bad] = await Promise.allSettled([limiter.consume('fine'), limiter.consume('k')]);
      expect(other).toMatchObject({ status: 'fulfilled', value: { allowed: true } });
      expect(bad).toMatchObject({ status: 'rejected' });
    } finally {
      limiter.close();
    }
  });
});
