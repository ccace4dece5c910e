// The hand-computed known answers of test/known-answers.ts, step by step, on every engine alike:
// the native engine, the TypeScript engine, and Redis (the Lua, against a real redis-server).
import { describe, expect, it } from 'vitest';
import { Limiter, ManualClock, RedisLimiter, type Decision, type RateLimiter } from '../src/index.js';
import { policyParams } from '../src/common/policies.js';
import { keyBase, limiterNamespace, policySuffixes } from '../src/redis/redis-keys.js';
import { engines } from './helpers/engines.js';
import { hasRedis, useRedisServer } from './helpers/redis.js';
import { knownAnswers, ORIGIN, type KnownStep, type KnownTable } from './known-answers.js';

const KEY = 'known';

const answer = (d: Decision) => ({ allowed: d.allowed, remaining: d.remaining, resetMs: d.resetMs, retryAfterMs: d.retryAfterMs });
const where = (table: KnownTable, i: number, step: KnownStep) => `${table.name}, step ${i + 1} (${step.op} ${step.cost} at ${step.at}): ${step.why}`;

const call = (limiter: RateLimiter, step: KnownStep) => (step.op === 'consume' ? limiter.consume(KEY, step.cost) : limiter.peek(KEY, step.cost));

// Redis answers every step, however loaded the machine: no timeout a slow run could reach, and a
// failure denies (and is counted, checked after each table) rather than passing as an answer.
const onRedis = { timeoutMs: 60_000, onError: 'deny', denyCache: false } as const;
const noFailures = { errors: 0, timeouts: 0, failedOpen: 0, failedClosed: 0 };

describe.each(engines())('known answers: %s engine', (engine) => {
  it.each(knownAnswers)('$name', async (table) => {
    const clock = new ManualClock(ORIGIN);
    const limiter = new Limiter({ policy: table.policy, engine, clock });
    for (const [i, step] of table.steps.entries()) {
      clock.set(ORIGIN + step.at);
      expect(answer(await call(limiter, step)), where(table, i, step)).toEqual(step.expect);
    }
    limiter.close();
  });
});

describe.runIf(hasRedis)('known answers: Redis', () => {
  const shared = useRedisServer();
  let names = 0;

  it.each(knownAnswers.filter((t) => t.policy.kind !== 'fixedWindow'))('$name', async (table) => {
    // A fresh name per table: a fresh key. Sliding windows and buckets decide at the test clock's
    // time (its states live at least a minute of Redis' time: see known-answers.ts).
    const clock = new ManualClock(ORIGIN);
    const limiter = new RedisLimiter({ redis: shared.redis, name: `known${++names}`, policy: table.policy, clock, ...onRedis });
    for (const [i, step] of table.steps.entries()) {
      clock.set(ORIGIN + step.at);
      expect(answer(await call(limiter, step)), where(table, i, step)).toEqual(step.expect);
    }
    expect(limiter.stats()).toMatchObject(noFailures);
    limiter.close();
  });

  // A fixed window on Redis is a counter whose window is its TTL, on Redis' own clock, whatever
  // clock the limiter has. The test moves that clock for the key instead: before each step it
  // cuts the TTL by the test time that passed (deleting the key once its window is over), plus an
  // OFFSET so that a window ending 1 ms after a step cannot end in the real time the step takes,
  // and takes the OFFSET off what Redis answers. What Redis reads then is the test's time less the
  // real ms since the cut, so resetMs and a finite retry lie in [expected − those ms, expected];
  // a window the step itself starts answers exactly. A new limiter per step: one that saw a window's end would answer it
  // from memory, not knowing the test moved it.
  it.each(knownAnswers.filter((t) => t.policy.kind === 'fixedWindow'))('$name', async (table) => {
    const OFFSET = 600_000;
    const name = `known${++names}`;
    const key = keyBase(limiterNamespace('tollgate:', name), KEY) + (policySuffixes([policyParams(table.policy)])[0] as string);
    let windowEnd: number | undefined;
    for (const [i, step] of table.steps.entries()) {
      const cut = performance.now();
      const existed = windowEnd !== undefined && step.at < windowEnd;
      if (windowEnd !== undefined && !existed) await shared.redis.del(key);
      if (existed) await shared.redis.pexpire(key, (windowEnd as number) - step.at + OFFSET);
      const limiter = new RedisLimiter({ redis: shared.redis, name, policy: table.policy, ...onRedis });
      const got = answer(await call(limiter, step));
      const realMs = Math.ceil(performance.now() - cut) + 1;
      expect(limiter.stats()).toMatchObject(noFailures);
      limiter.close();
      const message = where(table, i, step);
      if (existed) {
        const e = step.expect;
        expect({ allowed: got.allowed, remaining: got.remaining }, message).toEqual({ allowed: e.allowed, remaining: e.remaining });
        for (const [field, value] of [
          ['resetMs', got.resetMs],
          ['retryAfterMs', got.retryAfterMs],
        ] as const) {
          const expected = e[field];
          if (expected === 0 || expected === Infinity) expect(value, `${message}: ${field}`).toBe(expected);
          else {
            expect(value - OFFSET, `${message}: ${field}`).toBeLessThanOrEqual(expected);
            expect(value - OFFSET, `${message}: ${field}`).toBeGreaterThanOrEqual(expected - realMs);
          }
        }
      } else {
        expect(got, message).toEqual(step.expect);
        windowEnd = undefined;
        if ((await shared.redis.exists(key)) === 1) windowEnd = step.at + (table.policy as { windowMs: number }).windowMs;
      }
    }
  });
});
