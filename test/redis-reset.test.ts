// RedisLimiter's reset() against a real redis-server: it says whether the key was live, as the
// local engines' reset() does, though Redis keeps a state's key a while past its time (TTL slack);
// and a block, timed on Redis' own clock even under a test clock.
import { afterEach, describe, expect, it } from 'vitest';
import { fixedWindow, leakyBucket, Limiter, ManualClock, RedisLimiter, slidingWindow, tokenBucket, type Policy } from '../src/index.js';
import { engines } from './helpers/engines.js';
import { hasRedis, useRedisServer } from './helpers/redis.js';

let names = 0;

describe.runIf(hasRedis)('reset() on Redis', () => {
  const shared = useRedisServer();
  const open: { close(): void }[] = [];
  afterEach(() => {
    for (const l of open.splice(0)) l.close();
  });

  // States live hours of Redis' real time at this scale (see redis-deny-cache.test.ts).
  const T = 100_000;
  const timed: [string, Policy][] = [
    ['sliding window', slidingWindow({ limit: 5, windowMs: 100 * T })],
    ['token bucket', tokenBucket({ capacity: 5, tokens: 1, intervalMs: 100 * T })],
    ['leaky bucket', leakyBucket({ burst: 5, tokens: 1, intervalMs: 100 * T })],
  ];

  it.each(timed)('%s: a key whose state is already a fresh key’s was not live, as in the local engines (regression)', async (_label, policy) => {
    const clock = new ManualClock(1_000_000 * 100 * T);
    const remote = new RedisLimiter({ redis: shared.redis, name: `reset${++names}`, policy, clock, timeoutMs: 60_000, onError: 'deny' });
    const locals = engines().map((engine) => new Limiter({ policy, clock, engine }));
    open.push(remote, ...locals);
    const all = async (call: (l: Limiter | RedisLimiter) => unknown) => {
      const expected = await call(remote);
      for (const l of locals) expect(call(l), l.engine).toEqual(expected);
      return expected;
    };
    await all((l) => l.consume('refilled', 2));
    await all((l) => l.consume('spent', 2));
    clock.advance(1000 * T);
    await all((l) => l.consume('spent', 2));
    // 'refilled' is a fresh key's state now (full, drained, out of its windows); Redis still holds its key.
    expect(await shared.redis.exists(`tollgate:reset${names}{refilled}:${remoteSuffix(policy)}`)).toBe(1);
    expect(await all((l) => l.reset('refilled'))).toBe(false);
    expect(await all((l) => l.reset('spent'))).toBe(true);
    expect(await all((l) => l.reset('spent'))).toBe(false);
    expect(await all((l) => l.reset('never-seen'))).toBe(false);
  });

  it('under a test clock a block lasts real time: still denied, and reported live, after the test clock passes its end', async () => {
    const clock = new ManualClock(1_000_000 * T);
    for (const denyCache of [true, false]) {
      const remote = new RedisLimiter({ redis: shared.redis, name: `reset${++names}`, policy: timed[1]![1], clock, denyCache, timeoutMs: 60_000, onError: 'deny' });
      open.push(remote);
      await remote.block('b', 60_000);
      expect(await remote.consume('b')).toMatchObject({ allowed: false });
      clock.advance(180_000);
      expect(await remote.consume('b')).toMatchObject({ allowed: false });
      expect(await remote.reset('b')).toBe(true);
      expect(await remote.consume('b')).toMatchObject({ allowed: true });
    }
  });

  it('fixed window: a window refunded to 0 is live until it ends; a block is live', async () => {
    const policy = fixedWindow({ limit: 5, windowMs: 3_600_000 });
    const remote = new RedisLimiter({ redis: shared.redis, name: `reset${++names}`, policy, timeoutMs: 60_000, onError: 'deny' });
    open.push(remote);
    await remote.consume('k', 2);
    await remote.refund('k', 2);
    expect(await remote.reset('k')).toBe(true);
    expect(await remote.reset('k')).toBe(false);
    await remote.block('b', 3_600_000);
    expect(await remote.reset('b')).toBe(true);
    expect(await remote.reset('b')).toBe(false);
  });
});

/** The suffix of a policy's state key (see "How keys are named" in docs/redis.md). */
function remoteSuffix(policy: Policy): string {
  if (policy.kind === 'slidingWindow') return `sw${policy.windowMs}`;
  if (policy.kind === 'tokenBucket') return `tb${policy.refillTokens}/${policy.refillIntervalMs}`;
  if (policy.kind === 'leakyBucket') return `lb${policy.rateTokens}/${policy.rateIntervalMs}`;
  return `fw${policy.windowMs}`;
}
