// The TypeScript engine is the oracle: random operation sequences must get identical decisions from both engines.
import { describe, expect, it } from 'vitest';
import { MAX_CLOCK_MS } from '../src/common/constants.js';
import { fixedWindow, leakyBucket, Limiter, ManualClock, slidingWindow, tokenBucket, type Decision, type Policy } from '../src/index.js';
import { edgeKeys, engines, seededRandom } from './helpers/engines.js';

// Per policy: four million in all.
const OPERATIONS = 1_000_000;
const KEYS = 2_000;

const policies: [string, Policy][] = [
  ['fixed window', fixedWindow({ limit: 20, windowMs: 1000 })],
  ['sliding window', slidingWindow({ limit: 20, windowMs: 997 })],
  ['token bucket', tokenBucket({ capacity: 20, tokens: 10, intervalMs: 1300 })],
  ['leaky bucket', leakyBucket({ burst: 20, tokens: 7, intervalMs: 300 })],
];

// Policies at the bounds the packed native entries rely on (limit × window or interval near
// 2^50), with costs, per-call limits and time steps scaled to match: sliding-window counts past
// 2^41 and token-bucket credit past 2^31 take the entries' alternative field layouts.
interface Scale {
  cost: number;
  time: number;
  limit: number;
}
const atTheBounds: [string, Policy, Scale][] = [
  ['fixed window, limit 2^49', fixedWindow({ limit: 2 ** 49, windowMs: 2 }), { cost: 2 ** 44, time: 1, limit: 2 ** 48 }],
  ['sliding window, limit 2^46', slidingWindow({ limit: 2 ** 46, windowMs: 7 }), { cost: 2 ** 41, time: 1, limit: 2 ** 45 }],
  ['token bucket, interval 2^40 ms', tokenBucket({ capacity: 50, tokens: 3, intervalMs: 2 ** 40 }), { cost: 1, time: 2 ** 31, limit: 60 }],
  ['leaky bucket, burst 2^20', leakyBucket({ burst: 2 ** 20, tokens: 3, intervalMs: 2 ** 29 }), { cost: 2 ** 15, time: 2 ** 20, limit: 2 ** 19 }],
];

function same(a: Decision, b: Decision): boolean {
  return a.allowed === b.allowed && a.limit === b.limit && a.remaining === b.remaining && a.resetMs === b.resetMs && a.retryAfterMs === b.retryAfterMs;
}

describe.runIf(engines().includes('native'))('native engine against the TypeScript oracle', () => {
  const run = (policy: Policy, operations: number, scale: Scale) => {
    const random = seededRandom(0x7011 + policy.kind.length);
    const clock = new ManualClock(1_000_000);
    // Time steps stop at the latest time a clock may show (2^52 ms; the engines agree up to it).
    const advance = (ms: number) => clock.advance(Math.max(0, Math.min(ms * scale.time, MAX_CLOCK_MS - clock.now())));
    // Capacity far above the key count: eviction choices differ by design, decisions must not.
    const native = new Limiter({ policy, engine: 'native', clock, capacity: 200_000 });
    const js = new Limiter({ policy, engine: 'js', clock, capacity: 200_000 });
    const keys = Array.from({ length: KEYS }, (_, i) => `user:${(i * 7919) % 1_000_003}`);
    // Keys at the limits of the key space: maximum length in multi-byte, astral and one-byte
    // characters, lone surrogates of both kinds, and near-twins that differ in one code unit.
    keys.splice(16, 0, ...edgeKeys());
    const batch = ['', '', '', ''];
    let allowed = 0;
    for (let op = 0; op < operations; op++) {
      const r = random();
      // Hot keys get most traffic, as in production; the rest spread over all keys.
      const key = keys[random() < 0.5 ? Math.floor(random() * 16) : Math.floor(random() * KEYS)] as string;
      const cost = (random() < 0.8 ? 1 : 1 + Math.floor(random() * 25)) * scale.cost;
      const options = random() < 0.1 ? { limit: scale.limit } : undefined;
      const where = () => `op ${op} (${r.toFixed(4)}) on ${key}, cost ${cost}, t=${clock.now()}`;
      if (r < 0.4) {
        const a = native.consume(key, cost, options);
        const b = js.consume(key, cost, options);
        if (!same(a, b)) expect(a, where()).toEqual(b);
        if (a.allowed) allowed++;
      } else if (r < 0.55) {
        const a = native.tryConsume(key, cost, options);
        const b = js.tryConsume(key, cost, options);
        if (a !== b) expect(a, where()).toBe(b);
      } else if (r < 0.65) {
        const a = native.peek(key, cost, options);
        const b = js.peek(key, cost, options);
        if (!same(a, b)) expect(a, where()).toEqual(b);
      } else if (r < 0.72) {
        native.refund(key, cost, options);
        js.refund(key, cost, options);
      } else if (r < 0.74) {
        const ms = (1 + Math.floor(random() * 3000)) * scale.time;
        expect(native.block(key, ms)).toBe(js.block(key, ms));
      } else if (r < 0.76) {
        const a = native.reset(key);
        const b = js.reset(key);
        if (a !== b) expect(a, where()).toBe(b);
      } else if (r < 0.78) {
        for (let i = 0; i < batch.length; i++) batch[i] = keys[Math.floor(random() * 32)] as string;
        const a = [...native.consumeMany(batch, cost)];
        const b = [...js.consumeMany(batch, cost)];
        expect(a, where()).toEqual(b);
      } else if (r < 0.97) {
        advance(Math.floor(random() * 40));
      } else if (r < 0.995) {
        advance(Math.floor(random() * 2500));
      } else {
        // Long idle spells: every key expires and is reborn fresh.
        advance(Math.floor(random() * 100_000));
      }
    }
    // The sequence exercised both outcomes.
    expect(allowed).toBeGreaterThan(operations / 20);
    expect(native.stats().evictions).toBe(0);
    native.close();
    js.close();
  };

  it.each(policies)(`%s: ${OPERATIONS.toLocaleString('en')} random operations decide identically`, (_name, policy) => {
    run(policy, OPERATIONS, { cost: 1, time: 1, limit: 40 });
  });

  it.each(atTheBounds)('%s: 200,000 random operations decide identically', (_name, policy, scale) => {
    run(policy, 200_000, scale);
  });
});
