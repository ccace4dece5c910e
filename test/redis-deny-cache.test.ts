// RedisLimiter's deny cache against a real redis-server: a request it answers gets exactly the
// Decision Redis would give, whatever its cost, op or time, and any other request goes to Redis.
// Each sequence runs on a limiter with the cache and one without, in lockstep on one test clock.
import { afterEach, describe, expect, it } from 'vitest';
import {
  allOf,
  destroySharedMemory,
  fixedWindow,
  leakyBucket,
  Limiter,
  ManualClock,
  RedisLimiter,
  sharedMemory,
  slidingWindow,
  tokenBucket,
  type Decision,
  type Policy,
  type RedisLimiterOptions,
} from '../src/index.js';
import { seededRandom } from './helpers/engines.js';
import { hasRedis, useRedisServer } from './helpers/redis.js';

let names = 0;
/** Comparisons that must be exact take no fallback decision: no call may time out, however loaded the machine. */
const EXACT = { timeoutMs: 60_000, onError: 'deny' } as const;

describe.runIf(hasRedis)('the deny cache answers only what Redis would', () => {
  const shared = useRedisServer();
  const open: { close(): void }[] = [];
  afterEach(() => {
    for (const l of open.splice(0)) l.close();
  });

  /** A RedisLimiter under its own name (so its keys are its own), closed after the test. */
  const redisLimiter = (policy: Policy | Policy[], clock: ManualClock | undefined, denyCache: boolean) => {
    const limiter = new RedisLimiter({ redis: shared.redis, name: `dc${++names}`, policy, ...(clock === undefined ? {} : { clock }), denyCache, ...EXACT });
    open.push(limiter);
    return limiter;
  };

  // Redis expires a key on its own clock, its state's reset in the test clock's ms (plus slack)
  // after its last write: at this scale every state lives hours of real time, however slowly the
  // test runs, so Redis forgets nothing the test clock still holds.
  const T = 100_000;
  const timed: [string, Policy][] = [
    ['sliding window', slidingWindow({ limit: 5, windowMs: 600 * T })],
    ['token bucket', tokenBucket({ capacity: 5, tokens: 1, intervalMs: 100 * T })],
    ['leaky bucket', leakyBucket({ burst: 5, tokens: 1, intervalMs: 100 * T })],
  ];

  /**
   * The policy on Redis with the cache and without, and in process, on one clock; `all` makes a
   * call on each, expects the three Decisions equal and returns it.
   */
  const alike = (policy: Policy, clock: ManualClock) => {
    const cached = redisLimiter(policy, clock, true);
    const uncached = redisLimiter(policy, clock, false);
    const local = new Limiter({ policy, clock, engine: 'js' });
    open.push(local);
    const all = async (call: (l: Limiter | RedisLimiter) => Decision | Promise<Decision>): Promise<Decision> => {
      const expected = await call(local);
      expect(await call(uncached)).toEqual(expected);
      expect(await call(cached)).toEqual(expected);
      return expected;
    };
    return { cached, local, all };
  };

  it.each(timed)('%s: after a cost-1 denial, larger costs get their own wait and a cost above the limit Infinity (regression)', async (_label, policy) => {
    const clock = new ManualClock(1_000_000 * T);
    const { cached, local, all } = alike(policy, clock);
    expect(await all((l) => l.consume('k', 5))).toMatchObject({ allowed: true, remaining: 0 });
    expect(await all((l) => l.consume('k', 1))).toMatchObject({ allowed: false });
    clock.advance(T);
    const three = await all((l) => l.consume('k', 3));
    expect(three.retryAfterMs).toBeGreaterThan((await local.peek('k', 1)).retryAfterMs);
    expect(await all((l) => l.consume('k', 9))).toMatchObject({ allowed: false, retryAfterMs: Infinity });
    expect(await all((l) => l.peek('k', 7))).toMatchObject({ allowed: false, retryAfterMs: Infinity });
    expect(await all((l) => l.peek('k', 1))).toMatchObject({ allowed: false });
    // The cache answered what it could (cost 1, and the costs above the limit).
    expect(cached.stats().denyCacheHits).toBe(3);
  });

  // (A token bucket's larger per-call limit adds no tokens to an empty bucket: nothing to spend there.)
  it.each(timed.filter(([label]) => label !== 'token bucket'))('%s: a spend allowed under a per-call limit drops the cached denial it made stale (regression)', async (_label, policy) => {
    const { all } = alike(policy, new ManualClock(1_000_000 * T));
    expect(await all((l) => l.consume('k', 5))).toMatchObject({ allowed: true });
    const before = await all((l) => l.consume('k', 1));
    expect(before.allowed).toBe(false);
    // A tier with a larger limit spends on the key the cache holds a denial for.
    expect(await all((l) => l.consume('k', 2, { limit: 8 }))).toMatchObject({ allowed: true });
    const after = await all((l) => l.consume('k', 1));
    expect(after.allowed).toBe(false);
    expect(after.retryAfterMs).toBeGreaterThan(before.retryAfterMs);
  });

  it('fixed window: a cost above the limit never passes, and a cached window end follows Redis’ clock, not the test clock (regression)', async () => {
    const policy = fixedWindow({ limit: 5, windowMs: 3_600_000 });
    const clock = new ManualClock(1_000_000);
    const cached = redisLimiter(policy, clock, true);
    const uncached = redisLimiter(policy, clock, false);
    for (const l of [cached, uncached]) await l.consume('k', 5);
    const denied = await cached.consume('k');
    expect(denied).toMatchObject({ allowed: false, remaining: 0 });
    expect(await cached.consume('k', 9)).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: Infinity });
    expect(await cached.peek('k', 7)).toMatchObject({ allowed: false, retryAfterMs: Infinity });
    expect(cached.stats().denyCacheHits).toBe(2);
    // The window is the key's TTL on Redis: ten test minutes end none of it.
    clock.advance(600_000);
    const later = await cached.consume('k');
    expect(cached.stats().denyCacheHits).toBe(3);
    expect(later.retryAfterMs).toBeGreaterThan(denied.retryAfterMs - 60_000);
    expect(later.retryAfterMs).toBeLessThanOrEqual(denied.retryAfterMs);
    expect(later.resetMs).toBe(later.retryAfterMs);
  });

  it('sliding window: a denial whose wait runs into the next window is answered with that window’s reset once there (regression)', async () => {
    const w = 600 * T;
    const policy = slidingWindow({ limit: 5, windowMs: w });
    // Late in a window: five spent, the sixth waits until well into the next window.
    const clock = new ManualClock(1_000_000 * w + w - T);
    const cached = redisLimiter(policy, clock, true);
    const uncached = redisLimiter(policy, clock, false);
    for (const l of [cached, uncached]) await l.consume('k', 5);
    const denied = await cached.consume('k');
    expect(await uncached.consume('k')).toEqual(denied);
    expect(denied.retryAfterMs).toBeGreaterThan(denied.resetMs);
    clock.advance(T / 2);
    expect(await cached.consume('k')).toEqual(await uncached.consume('k'));
    expect(cached.stats().denyCacheHits).toBe(1);
    // Past the window's end: the reset is the new window's, which only Redis knows.
    clock.advance(T);
    const next = await uncached.consume('k');
    expect(next).toMatchObject({ allowed: false });
    expect(next.resetMs).toBeGreaterThan(w - 2 * T);
    expect(await cached.consume('k')).toEqual(next);
  });

  it('a block() is answered as Redis answers it: with the key’s own longer wait when it has one (regression)', async () => {
    const policy = tokenBucket({ capacity: 5, tokens: 1, intervalMs: 100 * T });
    const clock = new ManualClock(1_000_000 * T);
    const cached = redisLimiter(policy, clock, true);
    const uncached = redisLimiter(policy, clock, false);
    for (const l of [cached, uncached]) {
      await l.consume('k', 5);
      await l.block('k', 60_000);
    }
    // The bucket's wait (a token) is far longer than the block: Redis answers with it.
    const expected = await uncached.consume('k');
    expect(expected).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 100 * T, resetMs: 500 * T });
    expect(await cached.consume('k')).toEqual(expected);
    // A denial cached before a block is not answered after it.
    for (const l of [cached, uncached]) await l.block('k', 1000 * T);
    const blocked = await uncached.consume('k');
    expect(blocked.retryAfterMs).toBeGreaterThan(100 * T);
    const answered = await cached.consume('k');
    expect(answered.retryAfterMs).toBeGreaterThan(100 * T);
  });

  it('a denial another process cached in a shared-memory table is answered only when its fields are known', async () => {
    const policy = tokenBucket({ capacity: 2, tokens: 1, intervalMs: 100 * T });
    const clock = new ManualClock(1_000_000 * T);
    const store = `dc-${process.pid}-${++names}`;
    const name = `dc${++names}`;
    const make = (denyCache: NonNullable<RedisLimiterOptions['denyCache']>) => {
      const l = new RedisLimiter({ redis: shared.redis, name, policy, clock, denyCache, ...EXACT });
      open.push(l);
      return l;
    };
    try {
      const a = make({ store: sharedMemory({ name: store, capacity: 1000 }) });
      const b = make({ store: sharedMemory({ name: store, capacity: 1000 }) });
      const plain = make(false);
      await a.consume('k', 2);
      expect(await a.consume('k')).toMatchObject({ allowed: false });
      // b never asked about the key: the table knows only when the denial ends, not the bucket's
      // reset (until full), so b asks Redis.
      const fromB = await b.consume('k');
      expect(fromB).toEqual(await plain.peek('k'));
      expect(fromB.resetMs).toBe(200 * T);
      expect(b.stats().denyCacheHits).toBe(0);
      // Now its own: answered.
      expect(await b.consume('k')).toEqual(fromB);
      expect(b.stats().denyCacheHits).toBe(1);
    } finally {
      for (const l of open.splice(0)) l.close();
      destroySharedMemory(store);
    }
  });

  /**
   * One seeded sequence of consumes, peeks (costs 1 to limit + 2, some under a per-call limit),
   * refunds and clock steps, on a limiter with the cache and one without (and, when given, a local
   * limiter: the same decisions again); returns how many the cache answered.
   */
  const differential = async (
    policy: Policy | Policy[],
    seed: number,
    clock: ManualClock,
    step: number,
    same: (cached: Decision, uncached: Decision, where: string) => void,
    local?: Limiter | ReturnType<typeof allOf>,
  ) => {
    const cached = redisLimiter(policy, clock, true);
    const uncached = redisLimiter(policy, clock, false);
    const limit = Math.max(...(Array.isArray(policy) ? policy : [policy]).map((p) => ('limit' in p ? p.limit : 'capacity' in p ? p.capacity : p.burst)));
    const random = seededRandom(seed);
    const keys = ['a', 'b'];
    for (let op = 0; op < 400; op++) {
      const key = keys[Math.floor(random() * keys.length)] as string;
      const cost = random() < 0.6 ? 1 : 1 + Math.floor(random() * (limit + 2));
      const options = random() < 0.1 ? { limit: 3 } : undefined;
      const r = random();
      const where = `op ${op} on ${key} cost ${cost} limit ${options?.limit} at ${clock.now()}`;
      if (r < 0.75) {
        const call = r < 0.55 ? 'consume' : 'peek';
        const expected = await uncached[call](key, cost, options);
        same(await cached[call](key, cost, options), expected, `${call} ${where}`);
        if (local !== undefined) expect(local[call](key, cost, options), `${call} ${where} (local)`).toEqual(expected);
      } else if (r < 0.8) {
        await cached.refund(key, cost, options);
        await uncached.refund(key, cost, options);
        local?.refund(key, cost, options);
      } else {
        clock.advance(Math.floor(random() * (random() < 0.8 ? 8 : 40)) * step);
      }
    }
    return cached.stats().denyCacheHits;
  };

  it.each(timed)('%s: random sequences decide alike with the cache on and off, and as the local engine', async (_label, policy) => {
    const clock = new ManualClock(1_000_000 * 600 * T);
    const local = new Limiter({ policy, clock, engine: 'js' });
    open.push(local);
    const hits = await differential(policy, 11, clock, 5 * T, (a, b, where) => expect(a, where).toEqual(b), local);
    expect(hits).toBeGreaterThan(50);
  });

  it('several policies: random sequences decide alike with the cache on and off, and as allOf', async () => {
    const policies = [slidingWindow({ limit: 5, windowMs: 600 * T }), tokenBucket({ capacity: 3, tokens: 1, intervalMs: 70 * T }), leakyBucket({ burst: 4, tokens: 1, intervalMs: 90 * T })];
    const clock = new ManualClock(1_000_000 * 600 * T);
    const local = allOf(...policies.map((policy) => new Limiter({ policy, clock, engine: 'js' })));
    open.push(local);
    const hits = await differential(policies, 12, clock, 5 * T, (a, b, where) => expect(a, where).toEqual(b), local);
    expect(hits).toBeGreaterThan(50);
  });

  it('fixed window: random sequences decide alike with the cache on and off (times on Redis’ clock, within the test’s run)', async () => {
    const policy = fixedWindow({ limit: 5, windowMs: 3_600_000 });
    const clock = new ManualClock(1_000_000);
    // Each limiter's window started when its first call reached Redis, so their times differ by
    // how long the test took between them, never by the test clock's steps (up to minutes each).
    const close = (a: number, b: number) => (Number.isFinite(a) ? Math.abs(a - b) < 30_000 : a === b);
    const hits = await differential(policy, 13, clock, 15_000, (a, b, where) => {
      expect({ ...a, resetMs: 0, retryAfterMs: 0 }, where).toEqual({ ...b, resetMs: 0, retryAfterMs: 0 });
      expect(close(a.resetMs, b.resetMs) && close(a.retryAfterMs, b.retryAfterMs), `${where}: ${JSON.stringify([a, b])}`).toBe(true);
    });
    expect(hits).toBeGreaterThan(50);
  });
});
