// Each class's options parser on its own: the configuration it builds (defaults filled in), and the
// coded error, naming the option, for what it refuses — before any table, socket or timer exists.
import { describe, expect, it } from 'vitest';
import { parseLimiterOptions, DEFAULT_CAPACITY, INITIAL_CAPACITY } from '../src/limiters/limiter-options.js';
import { parseRedisLimiterOptions } from '../src/limiters/redis-limiter-options.js';
import { parseRateLimitOptions } from '../src/http/rule-options.js';
import { fixedWindow, Limiter, ManualClock, sharedMemory, slidingWindow, tokenBucket } from '../src/index.js';
import type { RedisCommandSender } from '../src/index.js';

const policy = fixedWindow({ limit: 5, windowMs: 1000 });

/** A client that is never called: the parsers only look at it. */
const sender: RedisCommandSender = { sendCommand: async () => null };

describe('parseLimiterOptions', () => {
  it('fills in the defaults', () => {
    const c = parseLimiterOptions({ policy });
    expect(c).toMatchObject({
      name: 'default',
      policy,
      store: undefined,
      capacity: DEFAULT_CAPACITY,
      shards: 0,
      evict: true,
      engine: 'auto',
      preallocate: false,
      initialCapacity: INITIAL_CAPACITY,
      clock: undefined,
      topKeys: { on: false, periodMs: 60_000 },
      quietPolicyMismatch: false,
    });
    expect(c.params).toMatchObject({ limit: 5, windowMs: 1000 });
  });

  it('reads every option', () => {
    const clock = new ManualClock(0);
    const c = parseLimiterOptions({ policy, name: 'api', capacity: 500, shards: 4, onFull: 'refuse', engine: 'js', preallocate: true, clock, topKeys: { periodMs: 5000 } });
    expect(c).toMatchObject({
      name: 'api',
      capacity: 500,
      shards: 4,
      evict: false,
      engine: 'js',
      preallocate: true,
      initialCapacity: 500,
      clock,
      topKeys: { on: true, periodMs: 5000 },
    });
  });

  it('a shared-memory store: its capacity and shards, committed, the native engine', () => {
    const store = sharedMemory({ name: 'parse-only', capacity: 2000, shards: 2 });
    expect(parseLimiterOptions({ policy, store })).toMatchObject({ store, capacity: 2000, shards: 2, preallocate: true, engine: 'native', initialCapacity: 2000 });
    expect(parseLimiterOptions({ policy, store, preallocate: false }).preallocate).toBe(false);
    expect(() => parseLimiterOptions({ policy, store, capacity: 10 })).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/for capacity/) }));
    expect(() => parseLimiterOptions({ policy, store, engine: 'js' })).toThrow(/for engine/);
  });

  it.each([
    [{ policy, capcity: 5 }, /Limiter options\.capcity \(did you mean capacity\?\)/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ policy, max: 5 }, /express-rate-limit's max/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ policy: {} }, /for policy/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ policy, name: '' }, /for name/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ policy, capacity: 0 }, /for capacity/, 'TOLLGATE_OUT_OF_RANGE'],
    [{ policy, shards: 5000 }, /for shards/, 'TOLLGATE_OUT_OF_RANGE'],
    [{ policy, onFull: 'drop' }, /for onFull/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ policy, engine: 'wasm' }, /for engine/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ policy, preallocate: 1 }, /for preallocate/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ policy, topKeys: { period: 1 } }, /topKeys\.period/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ policy, topKeys: { periodMs: 0 } }, /for topKeys\.periodMs/, 'TOLLGATE_OUT_OF_RANGE'],
    [{ policy, store: { name: 'x', capacity: 1 } }, /for store/, 'TOLLGATE_INVALID_ARGUMENT'],
    // The crash tests' lock-holding switch is an internal NativeTable's, never a Limiter option.
    [{ policy, testHooks: true }, /Unknown option Limiter options\.testHooks/, 'TOLLGATE_INVALID_ARGUMENT'],
    [null, /for options/, 'TOLLGATE_INVALID_ARGUMENT'],
  ])('refuses %j', (options, message, code) => {
    expect(() => parseLimiterOptions(options)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
  });

  it('is what the Limiter constructor applies', () => {
    const limiter = new Limiter({ policy, name: 'api', capacity: 500, engine: 'js' });
    expect(limiter.stats()).toMatchObject({ name: 'api', capacity: 500, engine: 'js' });
    limiter.close();
    expect(() => new Limiter({ policy, capcity: 5 } as never)).toThrow(/did you mean capacity/);
  });
});

describe('parseRedisLimiterOptions', () => {
  it('fills in the defaults', () => {
    const c = parseRedisLimiterOptions({ redis: sender, name: 'login', policy });
    expect(c).toMatchObject({
      name: 'login',
      policies: [policy],
      prefix: 'tollgate:',
      timeoutMs: 250,
      onError: 'allow',
      onEvent: undefined,
      breaker: { afterFailures: 1, retryMs: 100, maxRetryMs: 2000 },
      denyCache: { capacity: 100_000 },
      maxBatch: 64,
      slotGroups: 16,
      leases: undefined,
      clock: undefined,
    });
    expect(c.redis.cluster).toBe(false);
    expect(parseRedisLimiterOptions({ redis: sender, name: 'a', policy, leases: true }).leases).toEqual({ hotAfter: 4, share: 0.2, keys: 10_000, maxAgeMs: 1000 });
    expect(parseRedisLimiterOptions({ redis: sender, name: 'a', policy, leases: { hotAfter: 1, share: 1, keys: 5, maxAgeMs: 250 }, slotGroups: 4 })).toMatchObject({
      leases: { hotAfter: 1, share: 1, keys: 5, maxAgeMs: 250 },
      slotGroups: 4,
    });
  });

  it('reads every option', () => {
    const fallback = new Limiter({ policy, engine: 'js' });
    const onEvent = () => {};
    const c = parseRedisLimiterOptions({
      redis: sender,
      name: 'api',
      policy: [policy, slidingWindow({ limit: 100, windowMs: 60_000 })],
      prefix: 'app:',
      cluster: true,
      timeoutMs: 50,
      onError: fallback,
      breaker: { afterFailures: 3, retryMs: 10 },
      onEvent,
      denyCache: false,
      maxBatch: 8,
    });
    expect(c).toMatchObject({ name: 'api', prefix: 'app:', timeoutMs: 50, onError: fallback, onEvent, denyCache: undefined, maxBatch: 8 });
    expect(c.params.map((p) => p.limit)).toEqual([5, 100]);
    expect(c.redis.cluster).toBe(true);
    // maxRetryMs defaults to 2,000, or to retryMs when that is larger.
    expect(c.breaker).toEqual({ afterFailures: 3, retryMs: 10, maxRetryMs: 2000 });
    expect(parseRedisLimiterOptions({ redis: sender, name: 'a', policy, breaker: { retryMs: 5000 } }).breaker).toEqual({ afterFailures: 1, retryMs: 5000, maxRetryMs: 5000 });
    expect(parseRedisLimiterOptions({ redis: sender, name: 'a', policy, breaker: false }).breaker).toBeUndefined();
    expect(parseRedisLimiterOptions({ redis: sender, name: 'a', policy, denyCache: { capacity: 10 } }).denyCache).toEqual({ capacity: 10 });
    fallback.close();
  });

  it.each([
    [{ redis: sender, policy }, /for name/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ redis: sender, name: 'x'.repeat(257), policy }, /for name/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ redis: {}, name: 'a', policy }, /for redis/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ redis: sender, name: 'a', policy: [] }, /for policy/, 'TOLLGATE_OUT_OF_RANGE'],
    [{ redis: sender, name: 'a', policy, prefix: 'a{b' }, /for prefix/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ redis: sender, name: 'a', policy, cluster: 'yes' }, /for cluster/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ redis: sender, name: 'a', policy, timeoutMs: 0 }, /for timeoutMs/, 'TOLLGATE_OUT_OF_RANGE'],
    [{ redis: sender, name: 'a', policy, onError: 'retry' }, /for onError/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ redis: sender, name: 'a', policy, onEvent: 'log' }, /for onEvent/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ redis: sender, name: 'a', policy, breaker: { after: 2 } }, /breaker\.after/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ redis: sender, name: 'a', policy, breaker: { retryMs: 100, maxRetryMs: 50 } }, /for breaker\.maxRetryMs/, 'TOLLGATE_OUT_OF_RANGE'],
    [{ redis: sender, name: 'a', policy, denyCache: { size: 1 } }, /denyCache\.size/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ redis: sender, name: 'a', policy, maxBatch: 0 }, /for maxBatch/, 'TOLLGATE_OUT_OF_RANGE'],
    [{ redis: sender, name: 'a', policy, keyPrefix: 'x' }, /write prefix/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ redis: sender, name: 'a', policy, slotGroups: 0 }, /for slotGroups/, 'TOLLGATE_OUT_OF_RANGE'],
    [{ redis: sender, name: 'a', policy, leases: { share: 1.5 } }, /for leases\.share/, 'TOLLGATE_OUT_OF_RANGE'],
    [{ redis: sender, name: 'a', policy, leases: { size: 1 } }, /leases\.size/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ redis: sender, name: 'a', policy, leases: { maxAgeMs: 0 } }, /for leases\.maxAgeMs/, 'TOLLGATE_OUT_OF_RANGE'],
    [{ redis: sender, name: 'a', policy: slidingWindow({ limit: 5, windowMs: 1000 }), leases: true }, /one fixedWindow policy/, 'TOLLGATE_INVALID_ARGUMENT'],
  ])('refuses %j', (options, message, code) => {
    expect(() => parseRedisLimiterOptions(options)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
  });
});

describe('parseRateLimitOptions', () => {
  const limiter = new Limiter({ policy, engine: 'js' });

  it('fills in the defaults', () => {
    const c = parseRateLimitOptions({ limiter });
    expect(c).toMatchObject({
      limiter,
      ipv6Subnet: 56,
      trustProxy: undefined,
      forwardedHeader: 'x-forwarded-for',
      key: 'ip',
      onMissingKey: 'reject',
      cost: 1,
      limit: undefined,
      skip: undefined,
      allowList: undefined,
      dryRun: false,
      headers: ['legacy', 'draft-8'],
      names: ['default'],
    });
  });

  it('an array of limiters becomes allOf(...); names are made per policy', () => {
    const other = new Limiter({ policy: tokenBucket({ capacity: 10, refillPerSecond: 1 }), engine: 'js' });
    const c = parseRateLimitOptions({ limiter: [limiter, other], name: 'api' });
    expect(c.limiter.policies).toHaveLength(2);
    expect(c.names).toEqual(['api-0', 'api-1']);
    expect(parseRateLimitOptions({ limiter: [limiter, other], name: ['s', 'h'] }).names).toEqual(['s', 'h']);
    other.close();
  });

  it('takes a framework’s own options only when told', () => {
    expect(() => parseRateLimitOptions({ limiter, logLevel: 'warn' })).toThrow(/rate limit options\.logLevel/);
    expect(parseRateLimitOptions({ limiter, logLevel: 'warn' }, ['logLevel']).limiter).toBe(limiter);
  });

  it.each([
    [{}, /for limiter/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ limiter, key: 'user' }, /for key/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ limiter, key: { header: '' } }, /for key/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ limiter, ipv6Subnet: 129 }, /for ipv6Subnet/, 'TOLLGATE_OUT_OF_RANGE'],
    [{ limiter, forwardedHeader: 'x-real-ip' }, /for forwardedHeader/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ limiter, onMissingKey: 'skip' }, /for onMissingKey/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ limiter, cost: 0 }, /for cost/, 'TOLLGATE_OUT_OF_RANGE'],
    [{ limiter, limit: 5 }, /for limit/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ limiter, skip: true }, /for skip/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ limiter, name: ['a', 'b'] }, /for name/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ limiter, onDeny: 'log' }, /for onDeny/, 'TOLLGATE_INVALID_ARGUMENT'],
    [{ limiter, windowMs: 1000 }, /windowMs/, 'TOLLGATE_INVALID_ARGUMENT'],
  ])('refuses %j', (options, message, code) => {
    expect(() => parseRateLimitOptions(options)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
  });
});
