// Every kind's state on Redis' own clock (no test clock): after a consume on a fresh key, the key
// lives as long as the algorithm says its state matters, plus the Lua's slack and no more, and the
// decision's resetMs is what that TTL says. A fixed window is a counter whose TTL is its window; the
// other kinds keep a state written by store() (src/redis/lua.ts) with a TTL of reset + slack,
// slack = min(max(reset, 1000), 60000): ms of Redis' time, so a state outlives its reset however
// Redis' clock and the client's differ.
import { describe, expect, it } from 'vitest';
import { fixedWindow, leakyBucket, RedisLimiter, slidingWindow, tokenBucket, type Policy } from '../src/index.js';
import { policyParams } from '../src/common/policies.js';
import { keyBase, limiterNamespace, policySuffixes } from '../src/redis/redis-keys.js';
import { hasRedis, useRedisServer } from './helpers/redis.js';

const slackOf = (reset: number) => Math.min(Math.max(reset, 1000), 60_000);

interface Case {
  readonly label: string;
  readonly policy: Policy;
  readonly cost: number;
  /** The decision's resetMs on a fresh key, by hand (independent of the time for these kinds). */
  readonly resetMs: number;
  /** How long the key must live from the call, by hand: the window, or the state's reset + its slack. */
  readonly ttl: number;
}

const cases: Case[] = [
  // A counter: its TTL is its window, set when the window starts; no slack.
  { label: 'fixed window 10 per 60 s, cost 1', policy: fixedWindow({ limit: 10, windowMs: 60_000 }), cost: 1, resetMs: 60_000, ttl: 60_000 },
  { label: 'fixed window 10 per 60 s, cost 3', policy: fixedWindow({ limit: 10, windowMs: 60_000 }), cost: 3, resetMs: 60_000, ttl: 60_000 },
  // 1 token at 1 per s is back in 1 000 ms; the slack's floor, 1 000 ms: TTL 2 000.
  { label: 'token bucket 10, 1/s, cost 1', policy: tokenBucket({ capacity: 10, refillPerSecond: 1 }), cost: 1, resetMs: 1000, ttl: 1000 + 1000 },
  // 4 tokens: 4 000 ms; slack = reset between 1 s and 60 s: TTL 8 000.
  { label: 'token bucket 10, 1/s, cost 4', policy: tokenBucket({ capacity: 10, refillPerSecond: 1 }), cost: 4, resetMs: 4000, ttl: 4000 + 4000 },
  // 1 token at 1 per 100 s: 100 000 ms; the slack's cap, 60 000: TTL 160 000.
  { label: 'token bucket 10, 1 per 100 s, cost 1', policy: tokenBucket({ capacity: 10, tokens: 1, intervalMs: 100_000 }), cost: 1, resetMs: 100_000, ttl: 100_000 + 60_000 },
  // A request adds 500 ms of backlog at 2 per s; under the slack's floor: TTL 500 + 1 000.
  { label: 'leaky bucket 5, 2/s, cost 1', policy: leakyBucket({ burst: 5, ratePerSecond: 2 }), cost: 1, resetMs: 500, ttl: 500 + 1000 },
  // 2 requests at 1 per 5 s: 10 000 ms of backlog; slack = reset: TTL 20 000.
  { label: 'leaky bucket 5, 1 per 5 s, cost 2', policy: leakyBucket({ burst: 5, tokens: 1, intervalMs: 5000 }), cost: 2, resetMs: 10_000, ttl: 10_000 + 10_000 },
];

let names = 0;

describe.runIf(hasRedis)("state TTLs on Redis' own clock", () => {
  const shared = useRedisServer();

  const keyOf = (name: string, policy: Policy) => keyBase(limiterNamespace('tollgate:', name), 'k') + (policySuffixes([policyParams(policy)])[0] as string);

  /** Redis' clock, in ms. */
  const redisNow = async () => {
    const [seconds, micros] = await shared.redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  };

  /** A consume on a fresh key, then the key's PTTL, and the real ms both took (+1 for Redis' rounding). */
  async function consumeAndRead(policy: Policy, cost: number) {
    const name = `expiry${++names}`;
    // No timeout a loaded machine could reach; a failure denies, and is counted (checked below).
    const limiter = new RedisLimiter({ redis: shared.redis, name, policy, denyCache: false, timeoutMs: 60_000, onError: 'deny' });
    // The first call probes the server: do it first, so that the call measured is the consume alone.
    await limiter.peek('other');
    const started = performance.now();
    const decision = await limiter.consume('k', cost);
    const pttl = await shared.redis.pttl(keyOf(name, policy));
    const realMs = Math.ceil(performance.now() - started) + 1;
    expect(limiter.stats()).toMatchObject({ errors: 0, timeouts: 0, failedOpen: 0, failedClosed: 0 });
    return { limiter, name, decision, pttl, realMs };
  }

  it.each(cases)('$label: the key lives the reset the algorithm implies plus the slack, and resetMs says so', async ({ policy, cost, resetMs, ttl }) => {
    const { limiter, decision, pttl, realMs } = await consumeAndRead(policy, cost);
    expect(decision).toMatchObject({ allowed: true, resetMs });
    // Set to `ttl` when the script ran, read at most realMs later: within [reset, reset + slack]
    // (a state lost before its reset would decide as a fresh key), and exactly at its top.
    expect(pttl).toBeLessThanOrEqual(ttl);
    expect(pttl).toBeGreaterThanOrEqual(ttl - realMs);
    // The decision's resetMs and the TTL agree: what Redis keeps, less the slack, is what it said.
    const kept = policy.kind === 'fixedWindow' ? pttl : pttl - slackOf(decision.resetMs);
    expect(kept).toBeLessThanOrEqual(decision.resetMs);
    expect(kept).toBeGreaterThanOrEqual(decision.resetMs - realMs);
    limiter.close();
  });

  it.each([1, 2])("sliding window 10 per 60 s, cost %i: the state lives to the end of the next window on Redis' clock, plus a minute", async (cost) => {
    const w = 60_000;
    const before = await redisNow();
    const { limiter, decision, pttl, realMs } = await consumeAndRead(slidingWindow({ limit: 10, windowMs: w }), cost);
    const after = await redisNow();
    expect(decision.allowed).toBe(true);
    // resetMs is the rest of the current window, aligned on Redis' clock, at some time the call ran.
    const ranAt = [before - (before % w), after - (after % w)].map((start) => start + w - decision.resetMs);
    expect(
      ranAt.some((t) => t >= before && t <= after),
      `resetMs ${decision.resetMs} between Redis times ${before} and ${after}`,
    ).toBe(true);
    expect(decision.resetMs).toBeGreaterThan(0);
    expect(decision.resetMs).toBeLessThanOrEqual(w);
    // This window's count weighs into the next: the state matters resetMs + w, and its slack is
    // then the cap, 60 000 (resetMs + w > 60 000).
    const keep = decision.resetMs + w;
    expect(slackOf(keep)).toBe(60_000);
    expect(pttl).toBeLessThanOrEqual(keep + 60_000);
    expect(pttl).toBeGreaterThanOrEqual(keep + 60_000 - realMs);
    limiter.close();
  });

  it.each([
    ['token bucket 10, 1/s', tokenBucket({ capacity: 10, refillPerSecond: 1 })],
    ['leaky bucket 5, 1 per 5 s', leakyBucket({ burst: 5, tokens: 1, intervalMs: 5000 })],
    ['sliding window 10 per 60 s', slidingWindow({ limit: 10, windowMs: 60_000 })],
  ] as const)('%s: a later consume on the key leaves it living at least its new reset', async (_label, policy) => {
    const { limiter, name, pttl: first } = await consumeAndRead(policy, 1);
    expect(first).toBeGreaterThan(0);
    const started = performance.now();
    const decision = await limiter.consume('k', 3);
    const pttl = await shared.redis.pttl(keyOf(name, policy));
    const realMs = Math.ceil(performance.now() - started) + 1;
    expect(limiter.stats()).toMatchObject({ errors: 0, timeouts: 0, failedOpen: 0, failedClosed: 0 });
    expect(decision.allowed).toBe(true);
    // The TTL is kept only while it covers the new reset, else set again: never short of it, and
    // never more than the new reset's own TTL or the one the key had.
    const needed = policy.kind === 'slidingWindow' ? decision.resetMs + 60_000 : decision.resetMs;
    expect(pttl).toBeGreaterThanOrEqual(needed - realMs);
    expect(pttl).toBeLessThanOrEqual(Math.max(needed + slackOf(needed), first));
    limiter.close();
  });
});
