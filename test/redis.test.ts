// The Redis tier against real servers: same decisions as the local engine, exactness across
// processes, NOSCRIPT recovery, Redis dying and coming back, the deny cache, and Redis Cluster.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroySharedMemory, sharedMemory, allOf, fixedWindow, leakyBucket, Limiter, ManualClock, RedisLimiter, slidingWindow, tokenBucket, type Decision, type Policy } from '../src/index.js';
import { edgeKeys, engines, seededRandom } from './helpers/engines.js';
import { hasRedis, startCluster, startRedis, useRedisServer } from './helpers/redis.js';
import { groupedKeyBase } from '../src/redis/redis-keys.js';
import { DECIDE_LUA, FIXED_WINDOW_LUA, GIVE_BACK_LUA } from '../src/redis/lua.js';
import { script } from '../src/redis/script.js';

let prefixCounter = 0;
const prefix = () => `t${++prefixCounter}:`;
/** Comparisons that must be exact take no fallback decision: no call may time out, however loaded the machine. */
const EXACT_TIMEOUT_MS = 60_000;
const DECIDE_SHA = script(DECIDE_LUA).sha;
const FIXED_WINDOW_SHA = script(FIXED_WINDOW_LUA).sha;
/** Whether each of DECIDE and FIXED_WINDOW is loaded on a server. */
const loaded = async (redis: Redis) => {
  const [decide, fixed] = (await redis.script('EXISTS', DECIDE_SHA, FIXED_WINDOW_SHA)) as number[];
  return { decide: decide === 1, fixed: fixed === 1 };
};

describe.runIf(hasRedis)('RedisLimiter on a redis-server', () => {
  const shared = useRedisServer();

  // Redis expires a key on its own clock (its TTL is the state's reset in the test clock's ms, plus
  // slack), so every time here is scaled by T: windows, intervals and clock steps are whole
  // multiples of T, which makes every state the Lua keeps live at least ceil(T / 7) ms (71 s) of
  // Redis' time however slowly the test runs. T is prime to 7, so the leaky bucket's division by
  // its 7 tokens still rounds.
  const T = 500_000;
  const timedPolicies: [string, Policy][] = [
    ['sliding window', slidingWindow({ limit: 20, windowMs: 997 * T })],
    ['token bucket', tokenBucket({ capacity: 20, tokens: 10, intervalMs: 1300 * T })],
    ['leaky bucket', leakyBucket({ burst: 20, tokens: 7, intervalMs: 300 * T })],
  ];

  it.each(timedPolicies)('%s: 3,000 random operations decide exactly as the local engine', async (_label, policy) => {
    const clock = new ManualClock(1_000_000 * T);
    const remote = new RedisLimiter({ name: 't', redis: shared.redis, timeoutMs: EXACT_TIMEOUT_MS, policy, clock, prefix: prefix(), denyCache: false });
    const local = new Limiter({ policy, clock, engine: 'js' });
    const random = seededRandom(42 + policy.kind.length);
    const keys = ['a', 'b', 'c', 'user:é'];
    for (let op = 0; op < 3000; op++) {
      const key = keys[Math.floor(random() * keys.length)] as string;
      const cost = random() < 0.8 ? 1 : 1 + Math.floor(random() * 25);
      const r = random();
      const where = `op ${op} on ${key} cost ${cost} at ${clock.now()}`;
      if (r < 0.5) {
        expect(await remote.consume(key, cost), where).toEqual(local.consume(key, cost));
      } else if (r < 0.6) {
        expect(await remote.peek(key, cost), where).toEqual(local.peek(key, cost));
      } else if (r < 0.67) {
        await remote.refund(key, cost);
        local.refund(key, cost);
      } else {
        clock.advance(Math.floor(random() * (random() < 0.9 ? 60 : 3000)) * T);
      }
    }
    // Concurrent calls share round trips and still decide like one at a time.
    const batch = await Promise.all(keys.flatMap((k) => [remote.consume(k, 2), remote.consume(k, 3)]));
    expect(batch).toEqual(keys.flatMap((k) => [local.consume(k, 2), local.consume(k, 3)]));
    remote.close();
  });

  // Regression: a token-bucket key that changed tier was forgotten by both local engines once it
  // had refilled to its old capacity (an upgraded key then had the new capacity, 100), while Redis
  // kept its state past that, up to its TTL's slack (10, refilling towards 100). One rule now, in
  // all three: a key keeps its state until that state is a fresh key's under the limit it was last
  // decided with (for a token bucket: refilled to that capacity); then it is a fresh key under
  // whatever limit comes next.
  it('token bucket: a key that changes tier after refilling to its old capacity is a fresh key, in every engine and on Redis', async () => {
    const policy = tokenBucket({ capacity: 10, tokens: 1, intervalMs: T });
    const clock = new ManualClock(1_000_000 * T);
    // A long timeout: these compare decisions, and a loaded machine must not make one fail open.
    const remote = new RedisLimiter({ name: 't', redis: shared.redis, policy, clock, prefix: prefix(), denyCache: false, timeoutMs: 10_000 });
    const locals = engines().map((engine) => new Limiter({ policy, clock, engine }));
    const all = async (call: (l: Limiter | RedisLimiter) => Decision | Promise<Decision>): Promise<Decision> => {
      const decisions = [await call(remote), ...locals.map((l) => call(l) as Decision)];
      for (const d of decisions.slice(1)) expect(d).toEqual(decisions[0]);
      return decisions[0] as Decision;
    };
    expect(await all((l) => l.consume('upgraded', 5))).toMatchObject({ allowed: true, remaining: 5 });
    clock.advance(4 * T);
    // Not yet full under 10: the state is read under the new capacity.
    expect(await all((l) => l.consume('upgraded', 1, { limit: 100 }))).toMatchObject({ allowed: true, limit: 100, remaining: 8 });
    expect(await all((l) => l.consume('again', 5))).toMatchObject({ remaining: 5 });
    clock.advance(5 * T);
    // 'again' refilled to 10 (its old capacity): a fresh key, full at 100.
    expect(await all((l) => l.consume('again', 1, { limit: 100 }))).toMatchObject({ allowed: true, limit: 100, remaining: 99 });
    expect(await all((l) => l.peek('upgraded', 1, { limit: 100 }))).toMatchObject({ remaining: 13 });
    // A downgrade reads the state under the smaller capacity.
    expect(await all((l) => l.consume('upgraded', 1, { limit: 5 }))).toMatchObject({ allowed: true, limit: 5, remaining: 4 });
    remote.close();
    for (const l of locals) l.close();
  });

  it.each(timedPolicies)('%s: random operations under changing per-call limits decide alike in both engines and on Redis', async (_label, policy) => {
    const clock = new ManualClock(1_000_000 * T);
    // A long timeout: these compare decisions, and a loaded machine must not make one fail open.
    const remote = new RedisLimiter({ name: 't', redis: shared.redis, policy, clock, prefix: prefix(), denyCache: false, timeoutMs: 10_000 });
    const locals = engines().map((engine) => new Limiter({ policy, clock, engine }));
    const random = seededRandom(7 + policy.kind.length);
    const keys = ['a', 'b', 'c'];
    const tiers = [undefined, 5, 20, 60];
    for (let op = 0; op < 1500; op++) {
      const key = keys[Math.floor(random() * keys.length)] as string;
      const cost = random() < 0.8 ? 1 : 1 + Math.floor(random() * 8);
      const tier = tiers[Math.floor(random() * tiers.length)];
      const options = tier === undefined ? undefined : { limit: tier };
      const r = random();
      const where = `op ${op} on ${key} cost ${cost} limit ${tier} at ${clock.now()}`;
      if (r < 0.5) {
        const expected = await remote.consume(key, cost, options);
        for (const l of locals) expect(l.consume(key, cost, options), `${where} (${l.engine})`).toEqual(expected);
      } else if (r < 0.6) {
        const expected = await remote.peek(key, cost, options);
        for (const l of locals) expect(l.peek(key, cost, options), `${where} (${l.engine})`).toEqual(expected);
      } else if (r < 0.67) {
        await remote.refund(key, cost, options);
        for (const l of locals) l.refund(key, cost, options);
      } else {
        clock.advance(Math.floor(random() * (random() < 0.9 ? 60 : 3000)) * T);
      }
    }
    remote.close();
    for (const l of locals) l.close();
  });

  it('fixed window: INCRBY under a TTL that is never extended; counts like the local engine', async () => {
    const policy = fixedWindow({ limit: 10, windowMs: 60_000 });
    const p = prefix();
    const remote = new RedisLimiter({ name: 't', redis: shared.redis, policy, prefix: p, denyCache: false });
    const local = new Limiter({ policy, engine: 'js', clock: new ManualClock(0) });
    const random = seededRandom(7);
    for (let i = 0; i < 200; i++) {
      const key = `k${i % 3}`;
      const cost = 1 + Math.floor(random() * 4);
      const [a, b] = [await remote.consume(key, cost), local.consume(key, cost)];
      expect({ ...a, resetMs: 0, retryAfterMs: a.retryAfterMs === Infinity ? -1 : a.retryAfterMs > 0 ? 1 : 0 }).toEqual({
        ...b,
        resetMs: 0,
        retryAfterMs: b.retryAfterMs === Infinity ? -1 : b.retryAfterMs > 0 ? 1 : 0,
      });
    }
    expect(await shared.redis.get(`${p}t{k0}:fw60000`)).toBe('10');
    const ttl = await shared.redis.pttl(`${p}t{k0}:fw60000`);
    const d = await remote.peek('k0');
    expect(ttl).toBeGreaterThan(50_000);
    expect(d.resetMs).toBeLessThanOrEqual(ttl);
    expect(d.resetMs).toBeGreaterThan(ttl - 1000);
    // The window ends when Redis expires the key; the next request starts a fresh one.
    await shared.redis.pexpire(`${p}t{k0}:fw60000`, 1);
    while ((await shared.redis.exists(`${p}t{k0}:fw60000`)) === 1) await new Promise((r) => setTimeout(r, 2));
    expect(await remote.consume('k0')).toMatchObject({ allowed: true, remaining: 9, resetMs: 60_000 });
    remote.close();
  });

  it('fixed window: a window end the process has seen is not read again, and still answers the TTL Redis keeps', async () => {
    const policy = fixedWindow({ limit: 10, windowMs: 60_000 });
    const p = prefix();
    const key = `${p}t{k}:fw60000`;
    const a = new RedisLimiter({ name: 't', redis: shared.redis, policy, prefix: p, denyCache: false });
    const b = new RedisLimiter({ name: 't', redis: shared.redis, policy, prefix: p, denyCache: false });
    expect(await a.consume('k')).toMatchObject({ allowed: true, remaining: 9, resetMs: 60_000 });
    const pttlCalls = async () => Number(/cmdstat_pttl:calls=(\d+)/.exec(await shared.redis.info('commandstats'))?.[1] ?? 0);
    const pttlBefore = await pttlCalls();
    for (let i = 0; i < 3; i++) {
      const before = await shared.redis.pttl(key);
      const d = await a.consume('k');
      const after = await shared.redis.pttl(key);
      // Between the TTLs read before and after it (a millisecond either way for rounding).
      expect(d.resetMs).toBeLessThanOrEqual(before + 1);
      expect(d.resetMs).toBeGreaterThanOrEqual(after - 2);
      expect(d.remaining).toBe(8 - i);
    }
    // Only the test's own six PTTLs ran: the script read no TTL for these consumes.
    expect((await pttlCalls()) - pttlBefore).toBe(6);
    // Another process resets the key: the next consume here starts a new window and learns it.
    expect(await b.reset('k')).toBe(true);
    expect(await a.consume('k')).toMatchObject({ allowed: true, remaining: 9, resetMs: 60_000 });
    // Denials answer the known end too, as resetMs and retryAfterMs.
    await b.consume('k', 9);
    const denied = await a.consume('k');
    expect(denied).toMatchObject({ allowed: false, remaining: 0 });
    expect(denied.retryAfterMs).toBe(denied.resetMs);
    expect(denied.resetMs).toBeLessThanOrEqual(60_000);
    expect(denied.resetMs).toBeGreaterThanOrEqual((await shared.redis.pttl(key)) - 2);
    expect(await shared.redis.get(key)).toBe('10');
    a.close();
    b.close();
  });

  it("fixed window: a block's end is never taken for the window's (regression)", async () => {
    const policy = fixedWindow({ limit: 10, windowMs: 60_000 });
    const p = prefix();
    const a = new RedisLimiter({ name: 't', redis: shared.redis, policy, prefix: p, denyCache: false });
    const b = new RedisLimiter({ name: 't', redis: shared.redis, policy, prefix: p, denyCache: false });
    await a.consume('k');
    await b.block('k', 120_000);
    // Denied for the block: the reset shown is the block's, past the window's end.
    expect((await a.consume('k')).resetMs).toBeGreaterThan(60_000);
    await b.reset('k');
    await b.consume('k');
    const d = await a.consume('k');
    expect(d).toMatchObject({ allowed: true, remaining: 8 });
    expect(d.resetMs).toBeLessThanOrEqual(60_000);
    a.close();
    b.close();
  });

  it("sliding window: the state outlives the next window on Redis' clock, so its count weighs into it", async () => {
    const p = prefix();
    const w = 600_000;
    const limiter = new RedisLimiter({ name: 't', redis: shared.redis, policy: slidingWindow({ limit: 10, windowMs: w }), prefix: p, denyCache: false });
    const [seconds, micros] = await shared.redis.time();
    const t0 = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    // A plain consume (the written-out path) and one of cost 2 (through decide()).
    await limiter.consume('plain');
    await limiter.consume('costly', 2);
    for (const key of ['plain', 'costly']) {
      // Read at or after t0, so the key expires at t0 + ttl or later: at least at the end of the
      // window after the one counted (windows are aligned to Redis' clock).
      const ttl = await shared.redis.pttl(`${p}t{${key}}:sw${w}`);
      expect(t0 + ttl).toBeGreaterThanOrEqual(t0 - (t0 % w) + 2 * w);
    }
    limiter.close();
  });

  it('several policies are all-or-nothing, exactly like allOf() locally', async () => {
    // Times in minutes (T ms each), so the states outlive the test on Redis' clock (see above).
    const T = 60_000;
    const clock = new ManualClock(5_000_000 * T);
    const policies = [tokenBucket({ capacity: 5, tokens: 1, intervalMs: 100 * T }), leakyBucket({ burst: 20, tokens: 1, intervalMs: 40 * T })];
    const remote = new RedisLimiter({ name: 't', redis: shared.redis, timeoutMs: EXACT_TIMEOUT_MS, policy: policies, clock, prefix: prefix(), denyCache: false });
    const local = allOf(...policies.map((policy) => new Limiter({ policy, clock, engine: 'js' })));
    const random = seededRandom(99);
    let denied = 0;
    for (let i = 0; i < 1500; i++) {
      const cost = 1 + Math.floor(random() * 3);
      const a = await remote.consume('k', cost);
      expect(a, `request ${i}`).toEqual(local.consume('k', cost));
      if (!a.allowed) denied++;
      clock.advance(Math.floor(random() * 30) * T);
    }
    expect(denied).toBeGreaterThan(100);
    remote.close();
  });

  it('exactness: 4 processes × 500 concurrent consumes on one key allow exactly the limit', async () => {
    const p = prefix();
    const child = fileURLToPath(new URL('./fixtures/redis-child.mjs', import.meta.url));
    const run = () =>
      new Promise<number>((resolve, reject) => {
        const proc = spawn(process.execPath, [child, String(shared.server.port), p, '500'], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        proc.stdout.on('data', (d) => (out += d));
        proc.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`child exited ${code}`))));
      });
    const counts = await Promise.all([run(), run(), run(), run()]);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(700);
  });

  it('recovers from SCRIPT FLUSH (NOSCRIPT) without failing a request', async () => {
    const remote = new RedisLimiter({ name: 't', redis: shared.redis, policy: fixedWindow({ limit: 100, windowMs: 60_000 }), prefix: prefix(), onError: 'deny' });
    expect((await remote.consume('k')).allowed).toBe(true);
    await shared.redis.script('FLUSH');
    const before = remote.stats().redisCalls;
    expect(await remote.consume('k')).toMatchObject({ allowed: true, remaining: 98 });
    expect(remote.stats()).toMatchObject({ errors: 0, failedClosed: 0, redisCalls: before + 2 });
    expect((await remote.consume('k')).remaining).toBe(97);
    expect(remote.stats().redisCalls).toBe(before + 3);
    remote.close();
  });

  // Plain consumes under one fixed window go to a small script; DECIDE is loaded only
  // when a batch needs it, here a blocked key, which the small script sends back uncounted.
  it('a fixed-window batch with a blocked key: the small script decides the rest, DECIDE (loaded only then) the blocked key, each once', async () => {
    await shared.redis.script('FLUSH');
    const p = prefix();
    const policy = fixedWindow({ limit: 3, windowMs: 60_000 });
    const limiter = new RedisLimiter({ name: 'sb', redis: shared.redis, policy, prefix: p, denyCache: false, timeoutMs: EXACT_TIMEOUT_MS });
    const keys = Array.from({ length: 10 }, (_, i) => `user:${i}`);
    expect((await Promise.all(keys.map((k) => limiter.consume(k)))).every((d) => d.allowed)).toBe(true);
    expect(await loaded(shared.redis)).toEqual({ decide: false, fixed: true });
    await limiter.block('user:4', 30_000);
    const calls = limiter.stats().redisCalls;
    // The blocked key twice, between others: neither is counted, both denied with the block's end.
    const batch = ['user:3', 'user:4', 'user:5', 'user:4', 'user:3', 'user:3'];
    const decided = await Promise.all(batch.map((k) => limiter.consume(k)));
    expect(decided.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 1],
      [false, 0],
      [true, 1],
      [false, 0],
      [true, 0],
      [false, 0],
    ]);
    for (const i of [1, 3]) {
      expect(decided[i]?.retryAfterMs).toBeGreaterThan(29_000);
      expect(decided[i]?.retryAfterMs).toBeLessThanOrEqual(30_000);
      // As DECIDE answers a block: the window's end when later (its reset), the block's (its retry).
      expect(decided[i]?.resetMs).toBeGreaterThan(59_000);
    }
    // One call for the batch, one for the request it sent back.
    expect(limiter.stats().redisCalls).toBe(calls + 2);
    expect(await shared.redis.get(`${p}sb{user:4}:fw60000`)).toBe('1');
    expect(await shared.redis.get(`${p}sb{user:3}:fw60000`)).toBe('3');
    expect(await loaded(shared.redis)).toEqual({ decide: true, fixed: true });
    expect(limiter.stats()).toMatchObject({ errors: 0, allowed: 13, denied: 3 });
    limiter.close();
  });

  it('a fixed-window batch with a foreign value: that request is a state mismatch with the value left as it was, the others decided, DECIDE never loaded', async () => {
    await shared.redis.script('FLUSH');
    const p = prefix();
    const limiter = new RedisLimiter({
      name: 'sf',
      redis: shared.redis,
      policy: fixedWindow({ limit: 2, windowMs: 60_000 }),
      prefix: p,
      denyCache: false,
      timeoutMs: EXACT_TIMEOUT_MS,
    });
    await shared.redis.hset(`${p}sf{hash}:fw60000`, 'f', '1');
    await shared.redis.set(`${p}sf{text}:fw60000`, 'abc');
    const batch = ['a', 'hash', 'a', 'text', 'a'];
    const settled = await Promise.allSettled(batch.map((k) => limiter.consume(k)));
    expect(settled.map((r) => (r.status === 'fulfilled' ? r.value.allowed : (r.reason as { code: string }).code))).toEqual([
      true,
      'TOLLGATE_REDIS_STATE_MISMATCH',
      true,
      'TOLLGATE_REDIS_STATE_MISMATCH',
      false,
    ]);
    expect(await shared.redis.hgetall(`${p}sf{hash}:fw60000`)).toEqual({ f: '1' });
    expect(await shared.redis.get(`${p}sf{text}:fw60000`)).toBe('abc');
    expect(await shared.redis.get(`${p}sf{a}:fw60000`)).toBe('2');
    expect(limiter.stats()).toMatchObject({ stateMismatches: 2, allowed: 2, denied: 1 });
    expect(await loaded(shared.redis)).toEqual({ decide: false, fixed: true });
    limiter.close();
  });

  it('first use and NOSCRIPT: each script is sent whole on its first call to a node and after SCRIPT FLUSH, the resend path included', async () => {
    await shared.redis.script('FLUSH');
    const p = prefix();
    const limiter = new RedisLimiter({
      name: 'sn',
      redis: shared.redis,
      policy: fixedWindow({ limit: 5, windowMs: 60_000 }),
      prefix: p,
      denyCache: false,
      timeoutMs: EXACT_TIMEOUT_MS,
    });
    // First contact: the probe, then FIXED_WINDOW as EVAL (no NOSCRIPT round trip).
    expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 4 });
    let calls = limiter.stats().redisCalls;
    expect(await loaded(shared.redis)).toEqual({ decide: false, fixed: true });
    await limiter.block('held', 30_000);
    calls += 1;
    // DECIDE's first use on this node: EVAL at once, after FIXED_WINDOW's EVALSHA.
    expect(await limiter.consume('held')).toMatchObject({ allowed: false, remaining: 0 });
    expect(limiter.stats().redisCalls).toBe(calls + 2);
    expect(await loaded(shared.redis)).toEqual({ decide: true, fixed: true });
    // Both known to the node now, then flushed: each meets NOSCRIPT once and is sent again.
    await shared.redis.script('FLUSH');
    calls = limiter.stats().redisCalls;
    const [plain, held] = await Promise.all([limiter.consume('k'), limiter.consume('held')]);
    expect(plain).toMatchObject({ allowed: true, remaining: 3 });
    expect(held).toMatchObject({ allowed: false, remaining: 0 });
    expect(limiter.stats().redisCalls).toBe(calls + 4);
    expect(limiter.stats()).toMatchObject({ errors: 0, failedOpen: 0, failedClosed: 0 });
    expect(await shared.redis.get(`${p}sn{held}:fw60000`)).toBe(null);
    limiter.close();
  });

  it('the deny cache answers a denied key locally until its retry time', async () => {
    const clock = new ManualClock(9_000_000);
    // A token a minute: the emptied bucket lives minutes on Redis' clock, however slow the test.
    const remote = new RedisLimiter({
      name: 't',
      redis: shared.redis,
      timeoutMs: EXACT_TIMEOUT_MS,
      policy: tokenBucket({ capacity: 2, tokens: 1, intervalMs: 60_000 }),
      clock,
      prefix: prefix(),
    });
    await remote.consume('abuser', 2);
    const denied = await remote.consume('abuser');
    expect(denied).toMatchObject({ allowed: false, retryAfterMs: 60_000 });
    const calls = remote.stats().redisCalls;
    for (let i = 0; i < 100; i++) expect(await remote.consume('abuser')).toMatchObject({ allowed: false, retryAfterMs: 60_000 });
    clock.advance(24_000);
    expect(await remote.consume('abuser')).toMatchObject({ allowed: false, retryAfterMs: 36_000 });
    expect(remote.stats()).toMatchObject({ redisCalls: calls, denyCacheHits: 101 });
    clock.advance(36_000);
    expect((await remote.consume('abuser')).allowed).toBe(true);
    expect(remote.stats().redisCalls).toBe(calls + 1);
    remote.close();
  });

  it('the deny cache never answers a call with another per-call limit (regression)', async () => {
    const clock = new ManualClock(1_000_000);
    const remote = new RedisLimiter({ name: 't', redis: shared.redis, timeoutMs: EXACT_TIMEOUT_MS, policy: fixedWindow({ limit: 5, windowMs: 60_000 }), clock, prefix: prefix() });
    for (let i = 0; i < 5; i++) expect((await remote.consume('tiered')).allowed).toBe(true);
    expect((await remote.consume('tiered')).allowed).toBe(false);
    const calls = remote.stats().redisCalls;
    // Denied at the policy's 5, cached; a paid-tier call at 100 must ask Redis, and is allowed.
    expect(await remote.consume('tiered', 1, { limit: 100 })).toMatchObject({ allowed: true, limit: 100 });
    expect(remote.stats().redisCalls).toBe(calls + 1);
    // The tier's spend dropped the cached denial (its times may have moved): Redis answers, then the cache again.
    expect((await remote.consume('tiered')).allowed).toBe(false);
    expect(remote.stats()).toMatchObject({ redisCalls: calls + 2, denyCacheHits: 0 });
    expect((await remote.consume('tiered')).allowed).toBe(false);
    expect(remote.stats()).toMatchObject({ redisCalls: calls + 2, denyCacheHits: 1 });
    remote.close();
  });

  it('several policies: per-policy tiers, the binding limit reported, and the deny cache answering with Redis’ own fields', async () => {
    const clock = new ManualClock(1_000_000);
    // Windows long in Redis' time too: the state must not expire on Redis' clock mid-test.
    const policies = [slidingWindow({ limit: 2, windowMs: 100_000 }), slidingWindow({ limit: 1000, windowMs: 3_600_000 })];
    const remote = new RedisLimiter({ name: 't', redis: shared.redis, timeoutMs: EXACT_TIMEOUT_MS, policy: policies, clock, prefix: prefix() });
    const local = allOf(new Limiter({ policy: policies[0]!, clock, engine: 'js' }), new Limiter({ policy: policies[1]!, clock, engine: 'js' }));
    for (let i = 0; i < 2; i++) expect(await remote.consume('multi')).toEqual(local.consume('multi'));
    const denied = await remote.consume('multi');
    expect(denied).toEqual(local.consume('multi'));
    expect(denied).toMatchObject({ allowed: false, limit: 2, policyIndex: 0 });
    expect(remote.stats().denyCacheHits).toBe(0);
    clock.advance(100);
    // Answered by the deny cache: the same fields Redis gave, counted down.
    const cached = await remote.consume('multi');
    expect(remote.stats().denyCacheHits).toBe(1);
    expect(cached).toEqual({ ...denied, resetMs: denied.resetMs - 100, retryAfterMs: denied.retryAfterMs - 100 });
    // Tiers per policy reach Redis (and bypass the cache): a number replaces the first limit.
    expect(await remote.consume('multi', 1, { limit: 10 })).toEqual(local.consume('multi', 1, { limit: 10 }));
    expect(await remote.consume('multi', 1, { limit: [undefined, 3] })).toEqual(local.consume('multi', 1, { limit: [undefined, 3] }));
    await expect(remote.consume('multi', 1, { limit: [1, 2, 3] })).rejects.toMatchObject({ code: 'TOLLGATE_INVALID_ARGUMENT' });
    remote.close();
  });

  it('keys that UTF-8 would fold together stay distinct on Redis, as in both engines (regression)', async () => {
    const remote = new RedisLimiter({ name: 't', redis: shared.redis, policy: fixedWindow({ limit: 1, windowMs: 60_000 }), prefix: prefix(), denyCache: false });
    const local = new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 60_000 }), engine: 'js' });
    const keys = [...new Set(edgeKeys())];
    const first = await Promise.all(keys.map((k) => remote.consume(k)));
    expect(first.map((d) => d.allowed)).toEqual(keys.map((k) => local.consume(k).allowed));
    expect(first.every((d) => d.allowed)).toBe(true);
    const second = await Promise.all(keys.map((k) => remote.consume(k)));
    expect(second.every((d) => !d.allowed)).toBe(true);
    remote.close();
  });

  it("a shared-memory deny cache answers one limiter with another's denial, with no round trip", async () => {
    const p = prefix();
    const name = `deny-${process.pid}-${prefixCounter}`;
    const policy = fixedWindow({ limit: 2, windowMs: 60_000 });
    const a = new RedisLimiter({ name: 'dc', redis: shared.redis, policy, prefix: p, denyCache: { store: sharedMemory({ name, capacity: 1000 }) } });
    const b = new RedisLimiter({ name: 'dc', redis: shared.redis, policy, prefix: p, denyCache: { store: sharedMemory({ name, capacity: 1000 }) } });
    try {
      await a.consume('k');
      await a.consume('k');
      const denied = await a.consume('k');
      expect(denied).toMatchObject({ allowed: false, limit: 2, remaining: 0 });
      const calls = b.stats().redisCalls;
      const fromCache = await b.consume('k');
      expect(fromCache.allowed).toBe(false);
      expect(fromCache.retryAfterMs).toBeGreaterThan(50_000);
      expect(b.stats()).toMatchObject({ redisCalls: calls, denyCacheHits: 1 });
      // Its own key is still Redis' to decide.
      expect(await b.consume('other')).toMatchObject({ allowed: true });
    } finally {
      a.close();
      b.close();
      destroySharedMemory(name);
    }
  });

  it('a block made by one process is seen by another in its batches, and only its key is denied', async () => {
    const p = prefix();
    const policy = fixedWindow({ limit: 100, windowMs: 60_000 });
    const a = new RedisLimiter({ name: 'blk', redis: shared.redis, policy, prefix: p, denyCache: false });
    const b = new RedisLimiter({ name: 'blk', redis: shared.redis, policy, prefix: p, denyCache: false });
    const keys = Array.from({ length: 40 }, (_, i) => `user:${i}`);
    expect((await Promise.all(keys.map((k) => b.consume(k)))).every((d) => d.allowed)).toBe(true);
    // Before any block there is no marker, and decisions look up nothing; the block makes it: a
    // hash of the blocked keys' bases to their blocks' ends, living at least as long as the block.
    expect(await shared.redis.exists(`${p}blk:blocked`)).toBe(0);
    await a.block('user:5', 30_000);
    expect(await shared.redis.pttl(`${p}blk:blocked`)).toBeGreaterThan(29_000);
    expect(await shared.redis.hkeys(`${p}blk:blocked`)).toEqual([`${p}blk{user:5}`]);
    const after = await Promise.all(keys.map((k) => b.consume(k)));
    expect(after.map((d, i) => (d.allowed ? -1 : i)).filter((i) => i >= 0)).toEqual([5]);
    expect(after[5]?.retryAfterMs).toBeGreaterThan(29_000);
    a.close();
    b.close();
  });

  it('an ended block is forgotten: by the decision that finds it, and a few at random by each block()', async () => {
    const p = prefix();
    const limiter = new RedisLimiter({ name: 'end', redis: shared.redis, policy: fixedWindow({ limit: 5, windowMs: 60_000 }), prefix: p, denyCache: false });
    const marker = `${p}end:blocked`;
    await limiter.block('live', 60_000);
    // Blocks that ended a second ago by Redis' clock, as block() would have left them.
    const [seconds] = await shared.redis.time();
    const ended = Number(seconds) * 1000 - 1000;
    for (let i = 0; i < 20; i++) await shared.redis.hset(marker, `${p}end{old:${i}}`, ended);
    expect(await limiter.consume('old:0')).toMatchObject({ allowed: true, remaining: 4 });
    expect(await shared.redis.hexists(marker, `${p}end{old:0}`)).toBe(0);
    // Each block() drops the ended blocks among 8 distinct fields it samples: 19 are gone in 3.
    for (let i = 0; i < 3; i++) await limiter.block('live', 60_000);
    expect(await shared.redis.hkeys(marker)).toEqual([`${p}end{live}`]);
    expect(await limiter.consume('live')).toMatchObject({ allowed: false });
    // reset() lifts the block with the counters, and says the key was held.
    expect(await limiter.reset('live')).toBe(true);
    expect(await limiter.consume('live')).toMatchObject({ allowed: true });
    expect(await limiter.reset('never-seen')).toBe(false);
    limiter.close();
  });

  it('block and reset reach Redis; refund gives back', async () => {
    const remote = new RedisLimiter({ name: 't', redis: shared.redis, policy: fixedWindow({ limit: 3, windowMs: 60_000 }), prefix: prefix(), denyCache: false });
    await remote.block('k', 30_000);
    const d = await remote.consume('k');
    expect(d.allowed).toBe(false);
    expect(d.retryAfterMs).toBeGreaterThan(29_000);
    expect(await remote.reset('k')).toBe(true);
    await remote.consume('k', 3);
    await remote.refund('k', 2);
    expect(await remote.consume('k')).toMatchObject({ allowed: true, remaining: 1 });
    remote.close();
  });

  it('rejects bad input with the argument named', async () => {
    expect(() => new RedisLimiter({ name: 't', redis: {} as never, policy: fixedWindow({ limit: 1, windowMs: 10 }) })).toThrow(/for redis/);
    expect(() => new RedisLimiter({ name: 't', redis: shared.redis, policy: fixedWindow({ limit: 1, windowMs: 10 }), prefix: 'a{b' })).toThrow(/for prefix/);
    expect(() => new RedisLimiter({ name: 't', redis: shared.redis, policy: [], prefix: 'x' })).toThrow(RangeError);
    const remote = new RedisLimiter({ name: 't', redis: shared.redis, policy: fixedWindow({ limit: 1, windowMs: 10 }) });
    await expect(remote.consume('')).rejects.toThrow(RangeError);
    await expect(remote.consume('k', 0)).rejects.toThrow(/for cost/);
    remote.close();
    await expect(remote.consume('k')).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
  });
});

describe.runIf(hasRedis)('RedisLimiter leases (hot keys decided in process)', () => {
  const shared = useRedisServer();

  it('4 processes on one hot key: exactly the limit is allowed, some of it decided in process', async () => {
    const p = prefix();
    const child = fileURLToPath(new URL('./fixtures/redis-lease-child.mjs', import.meta.url));
    const run = () =>
      new Promise<{ allowed: number; leased: number; leaseCalls: number }>((resolve, reject) => {
        const proc = spawn(process.execPath, [child, String(shared.server.port), p, '3000'], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        proc.stdout.on('data', (d) => (out += d));
        proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}`))));
      });
    const results = await Promise.all([run(), run(), run(), run()]);
    // Every process ran until Redis denied it, so no leased unit was left unspent: the total is the limit.
    expect(results.reduce((sum, r) => sum + r.allowed, 0)).toBe(3000);
    expect(Number(await shared.redis.get(`${p}lease{hot}:fw60000`))).toBe(3000);
    // How much is local depends on how the processes overlap (the benchmark measures it); that some is, does not.
    expect(results.reduce((sum, r) => sum + r.leased, 0)).toBeGreaterThan(0);
  });

  it('a hot key spends its leases in process; the global count stays within the limit; reset and block let them go', async () => {
    const clock = new ManualClock(1_000);
    const p = prefix();
    const limiter = new RedisLimiter({
      name: 'l',
      redis: shared.redis,
      prefix: p,
      policy: fixedWindow({ limit: 100_000, windowMs: 60_000 }),
      clock,
      leases: { share: 0.01 },
      denyCache: false,
    });
    let allowed = 0;
    for (let i = 0; i < 2000; i++) if ((await limiter.consume('hot')).allowed) allowed++;
    const stats = limiter.stats();
    expect(allowed).toBe(2000);
    // All but the first few calls (the key growing hot) and one call per lease are local.
    expect(stats.leasedDecisions + stats.leaseCalls + 3).toBe(2000);
    expect(stats.leasedDecisions / allowed).toBeGreaterThan(0.9);
    // Redis counted every spent unit and what the current lease holds: never less than was allowed.
    const counted = Number(await shared.redis.get(`${p}l{hot}:fw60000`));
    expect(counted).toBeGreaterThanOrEqual(2000);
    expect(counted).toBeLessThanOrEqual(100_000);
    // A per-call limit (a tier) and peek go to Redis.
    const before = limiter.stats().redisCalls;
    await limiter.consume('hot', 1, { limit: 200_000 });
    await limiter.peek('hot');
    expect(limiter.stats().redisCalls).toBe(before + 2);
    // reset() forgets the key everywhere, and the local lease with it.
    await limiter.reset('hot');
    expect(await shared.redis.exists(`${p}l{hot}:fw60000`)).toBe(0);
    const after = await limiter.consume('hot');
    expect(after.allowed).toBe(true);
    // block() denies at once, lease or not.
    for (let i = 0; i < 20; i++) await limiter.consume('hot');
    await limiter.block('hot', 5_000);
    const blocked = await limiter.consume('hot');
    expect(blocked).toMatchObject({ allowed: false, remaining: 0 });
    expect(blocked.retryAfterMs).toBeGreaterThan(4_000);
    limiter.close();
  });

  it('a small limit shared by leases is never passed, and a lease ends with its window', async () => {
    const clock = new ManualClock(1_000);
    const p = prefix();
    const limiter = new RedisLimiter({
      name: 's',
      redis: shared.redis,
      prefix: p,
      policy: fixedWindow({ limit: 50, windowMs: 60_000 }),
      clock,
      leases: { hotAfter: 1, share: 1 },
      denyCache: false,
    });
    const decisions = await Promise.all(Array.from({ length: 120 }, () => limiter.consume('k')));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(50);
    const denied = decisions.find((d) => !d.allowed);
    expect(denied).toMatchObject({ limit: 50, remaining: 0 });
    expect(denied?.retryAfterMs).toBeGreaterThan(50_000);
    // Past the window's end on this clock, units still held are not spent: the call asks Redis.
    const other = new RedisLimiter({
      name: 's2',
      redis: shared.redis,
      prefix: p,
      policy: fixedWindow({ limit: 1000, windowMs: 60_000 }),
      clock,
      leases: { hotAfter: 1, share: 1 },
      denyCache: false,
    });
    await other.consume('k');
    const calls = other.stats().leaseCalls;
    await other.consume('k');
    expect(other.stats().leaseCalls).toBe(calls);
    clock.advance(61_000);
    await other.consume('k');
    expect(other.stats().leaseCalls).toBe(calls + 1);
    limiter.close();
    other.close();
  });

  it('a closing process hands its unspent lease back to the same window, never to a later one', async () => {
    const p = prefix();
    const policy = fixedWindow({ limit: 100, windowMs: 60_000 });
    const key = `${p}g{k}:fw60000`;
    const counted = async () => Number(await shared.redis.get(key));
    // A clock that stands still: every consume falls in one heat period, so the leases grow alike on any machine.
    const leasing = () => new RedisLimiter({ name: 'g', redis: shared.redis, prefix: p, policy, leases: { hotAfter: 1, share: 0.5 }, denyCache: false, clock: new ManualClock(1_000) });
    // Loaded before, so a give-back is one EVALSHA: a PING behind it on the connection answers after it ran.
    await shared.redis.script('LOAD', GIVE_BACK_LUA);
    const a = leasing();
    for (let i = 0; i < 10; i++) expect((await a.consume('k')).allowed).toBe(true);
    const held = (await counted()) - 10;
    expect(held).toBeGreaterThan(0);
    a.close();
    await shared.redis.ping();
    expect(await counted()).toBe(10);
    // Everything else of the limit is there for the others, and no more.
    const b = new RedisLimiter({ name: 'g', redis: shared.redis, prefix: p, policy, denyCache: false });
    const rest = await Promise.all(Array.from({ length: 150 }, () => b.consume('k')));
    expect(rest.filter((d) => d.allowed)).toHaveLength(90);

    // A lease taken in a window that was reset since is not given to the new window, even one
    // that started in the same millisecond (so expires at the same one): made so here, as Redis'
    // clock cannot be held still.
    const c = leasing();
    await b.reset('k');
    for (let i = 0; i < 10; i++) await c.consume('k');
    expect((await counted()) - 10).toBeGreaterThan(0);
    const leasedWindowEnds = Number(await shared.redis.call('PEXPIRETIME', key));
    await b.reset('k');
    for (let i = 0; i < 3; i++) await b.consume('k');
    await shared.redis.pexpireat(key, leasedWindowEnds);
    c.close();
    await shared.redis.ping();
    expect(await counted()).toBe(3);
    b.close();
  });

  it('leases are refused where a lease cannot split the state, with the reason', () => {
    expect(() => new RedisLimiter({ name: 'x', redis: shared.redis, policy: tokenBucket({ capacity: 10, tokens: 1, intervalMs: 100 }), leases: true })).toThrow(/one fixedWindow policy/);
    expect(() => new RedisLimiter({ name: 'x', redis: shared.redis, policy: [fixedWindow({ limit: 1, windowMs: 10 }), fixedWindow({ limit: 5, windowMs: 100 })], leases: true })).toThrow(
      expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT' }),
    );
    expect(() => new RedisLimiter({ name: 'x', redis: shared.redis, policy: fixedWindow({ limit: 1, windowMs: 10 }), leases: { share: 0 } })).toThrow(
      expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE' }),
    );
  });
});

describe.runIf(hasRedis)('RedisLimiter when Redis fails', () => {
  it('Redis killed mid-load: every call resolves within the timeout through the fallback; then it recovers', async () => {
    const own = await startRedis();
    const client = new Redis({ host: own.host, port: own.port, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    // Connection errors are expected here: the limiter's onError is what must handle them.
    client.on('error', () => undefined);
    const fallback = new Limiter({ policy: fixedWindow({ limit: 1_000_000, windowMs: 60_000 }) });
    const remote = new RedisLimiter({ name: 't', redis: client, policy: fixedWindow({ limit: 1_000_000, windowMs: 60_000 }), timeoutMs: 100, onError: fallback });
    const timed = async () => {
      const started = performance.now();
      const d: Decision = await remote.consume('k');
      return { d, ms: performance.now() - started };
    };
    try {
      expect((await timed()).d.allowed).toBe(true);
      const load = Array.from({ length: 200 }, () => timed());
      own.process.kill('SIGKILL');
      const during = [...(await Promise.all(load)), ...(await Promise.all(Array.from({ length: 200 }, () => timed())))];
      expect(during.every((r) => r.d.allowed)).toBe(true);
      // Bounded by timeoutMs, not by a TCP or reconnect timeout (seconds to minutes); the slack is
      // the event loop's own delay on a loaded machine.
      expect(Math.max(...during.map((r) => r.ms))).toBeLessThan(100 + 2000);
      expect(remote.stats().fallbackDecisions).toBeGreaterThan(0);
      expect(fallback.peek('k').remaining).toBeLessThan(1_000_000);

      const again = await startRedis([], own.port);
      try {
        const deadline = Date.now() + 10_000;
        let fallbackBefore = remote.stats().fallbackDecisions;
        for (;;) {
          await timed();
          const now = remote.stats().fallbackDecisions;
          if (now === fallbackBefore) break;
          fallbackBefore = now;
          if (Date.now() > deadline) throw new Error('did not recover');
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(Number(await client.get('tollgate:t{k}:fw60000'))).toBeGreaterThan(0);
      } finally {
        await again.stop();
      }
    } finally {
      remote.close();
      client.disconnect();
      await own.stop();
    }
  });

  it.each([
    ['allow', true],
    ['deny', false],
  ] as const)("onError '%s' with no server at all: decides at once, no unhandled rejection", async (onError, allowed) => {
    const client = new Redis({ host: '127.0.0.1', port: 1, maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
    client.on('error', () => undefined);
    const remote = new RedisLimiter({ name: 't', redis: client, policy: fixedWindow({ limit: 5, windowMs: 1000 }), timeoutMs: 50, onError });
    const decisions = await Promise.all(Array.from({ length: 20 }, () => remote.consume('k')));
    expect(decisions.every((d) => d.allowed === allowed)).toBe(true);
    expect(remote.stats()).toMatchObject(onError === 'allow' ? { failedOpen: 20 } : { failedClosed: 20 });
    await expect(remote.reset('k')).rejects.toMatchObject({ code: expect.stringMatching(/TOLLGATE_REDIS_/) });
    remote.close();
    client.disconnect();
  });
});

describe.runIf(hasRedis)('RedisLimiter on a 3-master Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  let client: Cluster;
  beforeAll(async () => {
    cluster = await startCluster();
    client = new Cluster([...cluster.nodes], { redisOptions: { maxRetriesPerRequest: 1 } });
    client.on('error', () => undefined);
  });
  afterAll(async () => {
    await client?.quit().catch(() => undefined);
    await cluster?.stop();
  });

  it('keeps each request in one slot (no CROSSSLOT) and batches across slots', async () => {
    const policies = [fixedWindow({ limit: 3, windowMs: 60_000 }), tokenBucket({ capacity: 5, refillPerSecond: 1 })];
    const remote = new RedisLimiter({ name: 't', redis: client, policy: policies, timeoutMs: 2000, onError: 'deny', denyCache: false });
    const keys = Array.from({ length: 50 }, (_, i) => `user:${i}`);
    const first = await Promise.all(keys.map((k) => remote.consume(k)));
    expect(first.every((d) => d.allowed)).toBe(true);
    const more = await Promise.all(keys.flatMap((k) => [remote.consume(k), remote.consume(k), remote.consume(k)]));
    // Per key: 2 more pass (fixed window of 3), the third is denied by the window.
    expect(more.filter((d) => d.allowed)).toHaveLength(100);
    expect(remote.stats()).toMatchObject({ errors: 0, failedClosed: 0 });
    // A key's names, as written: one slot for all of them, and there on the cluster.
    const base = groupedKeyBase('tollgate:', 't', 'user:7', 16);
    expect(await client.get(`${base}:fw60000`)).toBe('3');
    const slots = await Promise.all([`${base}:b`, `${base}:fw60000`, `${base}:tb1/1000`].map((k) => client.cluster('KEYSLOT', k)));
    expect(new Set(slots).size).toBe(1);
    // Keys spread over the masters: the batches really crossed nodes.
    const owners = new Set(await Promise.all(keys.map((k) => client.cluster('KEYSLOT', `${groupedKeyBase('tollgate:', 't', k, 16)}:fw60000`).then((s) => Math.floor(Number(s) / 5462)))));
    expect(owners.size).toBe(3);
    // 50 keys in at most 16 groups: far fewer calls than keys.
    expect(remote.stats().redisCalls).toBeLessThan(4 * 17 + 3);
    remote.close();
  });

  it("a fixed-window batch across slots with a blocked key and a foreign value: DECIDE loaded only on the blocked key's master", async () => {
    const masters = client.nodes('master');
    await Promise.all(masters.map((m) => m.script('FLUSH')));
    const limiter = new RedisLimiter({ name: 'cb', redis: client, policy: fixedWindow({ limit: 2, windowMs: 60_000 }), timeoutMs: 5000, onError: 'deny', denyCache: false });
    const keys = Array.from({ length: 30 }, (_, i) => `user:${i}`);
    expect((await Promise.all(keys.map((k) => limiter.consume(k)))).every((d) => d.allowed)).toBe(true);
    await limiter.block('user:5', 30_000);
    const foreign = `${groupedKeyBase('tollgate:', 'cb', 'user:9', 16)}:fw60000`;
    await client.del(foreign);
    await client.hset(foreign, 'f', '1');
    const settled = await Promise.allSettled(keys.flatMap((k) => [limiter.consume(k), limiter.consume(k)]));
    const outcome = (r: PromiseSettledResult<Decision>) => (r.status === 'fulfilled' ? r.value.allowed : (r.reason as { code: string }).code);
    keys.forEach((k, i) => {
      const pair = [outcome(settled[2 * i] as PromiseSettledResult<Decision>), outcome(settled[2 * i + 1] as PromiseSettledResult<Decision>)];
      if (k === 'user:5') expect(pair, k).toEqual([false, false]);
      else if (k === 'user:9') expect(pair, k).toEqual(['TOLLGATE_REDIS_STATE_MISMATCH', 'TOLLGATE_REDIS_STATE_MISMATCH']);
      else expect(pair, k).toEqual([true, false]);
    });
    expect((settled[10] as PromiseFulfilledResult<Decision>).value.retryAfterMs).toBeGreaterThan(29_000);
    expect(await client.get(`${groupedKeyBase('tollgate:', 'cb', 'user:5', 16)}:fw60000`)).toBe('1');
    expect(await client.hgetall(foreign)).toEqual({ f: '1' });
    const scripts = await Promise.all(masters.map((m) => loaded(m)));
    expect(scripts.filter((s) => s.fixed)).toHaveLength(3);
    expect(scripts.filter((s) => s.decide)).toHaveLength(1);
    expect(limiter.stats()).toMatchObject({ stateMismatches: 2, errors: 0, failedOpen: 0, failedClosed: 0 });
    limiter.close();
  });

  it('a block made by one process is seen by another in its batches', async () => {
    const policy = fixedWindow({ limit: 100, windowMs: 60_000 });
    const a = new RedisLimiter({ name: 'blk', redis: client, policy, timeoutMs: 2000, onError: 'deny', denyCache: false });
    const b = new RedisLimiter({ name: 'blk', redis: client, policy, timeoutMs: 2000, onError: 'deny', denyCache: false });
    const keys = Array.from({ length: 40 }, (_, i) => `user:${i}`);
    expect((await Promise.all(keys.map((k) => b.consume(k)))).every((d) => d.allowed)).toBe(true);
    await a.block('user:5', 30_000);
    const after = await Promise.all(keys.map((k) => b.consume(k)));
    expect(after.filter((d) => !d.allowed).map((d) => d.retryAfterMs > 29_000)).toEqual([true]);
    expect(after[5]?.allowed).toBe(false);
    a.close();
    b.close();
  });
});
