// The TypeScript engine is the oracle: random operation sequences must get identical decisions from both engines.
import { describe, expect, it } from 'vitest';
import { MAX_CLOCK_MS } from '../src/common/constants.js';
import { describePolicy, fixedWindow, leakyBucket, Limiter, ManualClock, slidingWindow, tokenBucket, type Decision, type EngineName, type Policy } from '../src/index.js';
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

// A full table in onFull 'refuse' mode. Native and TypeScript entries (a key's counters, and its
// block, an entry of its own) compete alike for room: in a table of at most 8 slots (capacity up
// to 7), the whole table is every new key's candidates in both engines, so they decide alike call
// for call; in a larger one each engine weighs other entries (the native table its two buckets,
// the TypeScript one the 8 slots the key's hash points at), and each is held to what 'refuse'
// promises on its own: nothing forgotten, and a refused key's wait is when room frees.
describe.runIf(engines().includes('native'))('full tables refusing new keys', () => {
  type Op =
    | readonly ['consume' | 'tryConsume' | 'peek' | 'refund', string, number, { limit: number } | undefined]
    | readonly ['reset', string]
    | readonly ['block', string, number]
    | readonly ['consumeMany', string[], number]
    | readonly ['advance', number];

  const policyOf = (random: () => number): Policy => {
    const pick = <T>(choices: readonly T[]): T => choices[Math.floor(random() * choices.length)] as T;
    const limit = pick([1, 2, 3, 7, 100]);
    const ms = pick([1, 10, 13, 1000, 3_600_000]);
    return pick([
      () => fixedWindow({ limit, windowMs: ms }),
      () => slidingWindow({ limit, windowMs: ms }),
      () => tokenBucket({ capacity: limit, tokens: pick([1, 3]), intervalMs: ms }),
      () => leakyBucket({ burst: limit, tokens: pick([1, 3]), intervalMs: ms }),
    ])();
  };

  /** One random sequence: keys enough to fill the table twice over, blocks short and endless, time steps tiny and huge. */
  const sequence = (random: () => number, keyCount: number, length: number): Op[] => {
    const pick = <T>(choices: readonly T[]): T => choices[Math.floor(random() * choices.length)] as T;
    const keys = Array.from({ length: keyCount }, (_, i) => `k${i}`);
    const ops: Op[] = [];
    for (let i = 0; i < length; i++) {
      const r = random();
      const key = pick(keys);
      const cost = pick([1, 1, 1, 2, 3, 101]);
      const options = random() < 0.15 ? { limit: pick([1, 5, 200]) } : undefined;
      if (r < 0.3) ops.push(['consume', key, cost, options]);
      else if (r < 0.4) ops.push(['tryConsume', key, cost, options]);
      else if (r < 0.47) ops.push(['peek', key, cost, options]);
      else if (r < 0.53) ops.push(['refund', key, cost, options]);
      else if (r < 0.56) ops.push(['reset', key]);
      else if (r < 0.64) ops.push(['block', key, pick([1, 10, 999, 60_000, 2 ** 50, 2 ** 52])]);
      else if (r < 0.68) ops.push(['consumeMany', keys.filter(() => random() < 0.4), cost]);
      else ops.push(['advance', pick([0, 1, 2, 9, 13, 100, 1000, 60_000, 3_600_000, 1e9, 2 ** 45])]);
    }
    return ops;
  };

  /** Applies `op` to `limiter` (its clock is `clock`) and returns what it answered. */
  const apply = (limiter: Limiter, clock: ManualClock, op: Op): unknown => {
    switch (op[0]) {
      case 'consume':
      case 'peek':
        return limiter[op[0]](op[1], op[2], op[3]);
      case 'tryConsume':
        return limiter.tryConsume(op[1], op[2], op[3]);
      case 'refund':
        return limiter.refund(op[1], op[2], op[3]);
      case 'reset':
        return limiter.reset(op[1]);
      case 'block':
        return limiter.block(op[1], op[2]);
      case 'consumeMany':
        return [...limiter.consumeMany(op[1], op[2])];
      case 'advance':
        clock.advance(Math.min(op[1], MAX_CLOCK_MS - clock.now()));
        return clock.now();
    }
  };

  /** The counters every decision moves (entries and swept differ by design: each engine reclaims in its own order). */
  const decisionCounts = (limiter: Limiter) => {
    const { allowed, denied, deniedBlocked, nearLimit, refused, evictions } = limiter.stats();
    return { allowed, denied, deniedBlocked, nearLimit, refused, evictions };
  };

  it('capacity 1 to 7 (at most 8 slots): 1,000 random sequences get the same answer to every call from both engines', () => {
    let refused = 0;
    for (let seed = 0; seed < 1000; seed++) {
      const random = seededRandom(0x5eed + seed);
      const capacity = 1 + (seed % 7);
      const policy = policyOf(random);
      const start = [0, 999, 2 ** 40][seed % 3] as number;
      const clocks = { native: new ManualClock(start), js: new ManualClock(start) };
      const native = new Limiter({ policy, engine: 'native', clock: clocks.native, capacity, onFull: 'refuse' });
      const js = new Limiter({ policy, engine: 'js', clock: clocks.js, capacity, onFull: 'refuse' });
      const slots = native.stats().slots;
      expect(js.stats().slots).toBe(slots);
      const ops = sequence(random, 2 + Math.floor(random() * 2 * slots), 300);
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i] as Op;
        const a = apply(native, clocks.native, op);
        const b = apply(js, clocks.js, op);
        if (!Object.is(a, b)) expect(a, `seed ${seed} (capacity ${capacity}, ${describePolicy(policy)}), op ${i}: ${JSON.stringify(op)}`).toEqual(b);
      }
      expect(decisionCounts(native), `seed ${seed}`).toEqual(decisionCounts(js));
      refused += native.stats().refused;
      native.close();
      js.close();
    }
    // The tables were full often: refusals were exercised, not just room.
    expect(refused).toBeGreaterThan(6000);
  });

  it.each(engines())('capacity 8 to 16, %s engine: a refused call writes nothing, every other one decides as in a table with room, and a refused key waiting its retryAfterMs finds room', (engine) => {
    let refusals = 0;
    for (let seed = 0; seed < 300; seed++) {
      const random = seededRandom(0xf011 + seed);
      const capacity = 8 + (seed % 9);
      const policy = policyOf(random);
      const clocks = { full: new ManualClock(0), room: new ManualClock(0) };
      const full = new Limiter({ policy, engine, clock: clocks.full, capacity, onFull: 'refuse' });
      const room = new Limiter({ policy, engine: 'js', clock: clocks.room, capacity: 1000 });
      const ops = sequence(random, 2 + Math.floor(random() * 2 * full.stats().slots), 300);
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i] as Op;
        const where = `seed ${seed} (capacity ${capacity}, ${describePolicy(policy)}), op ${i}: ${JSON.stringify(op)}`;
        const before = full.stats().refused;
        const answer = apply(full, clocks.full, op);
        const turnedAway = full.stats().refused - before;
        refusals += turnedAway;
        if (op[0] === 'consumeMany') {
          // Each key in order: a 0 where a table with room allows is a refusal, and writes nothing.
          let refusedHere = 0;
          (answer as number[]).forEach((got, k) => {
            const key = op[1][k] as string;
            const wouldAllow = room.peek(key, op[2]).allowed;
            if (got === 1 || !wouldAllow) expect(room.tryConsume(key, op[2]), `${where}, key ${key}`).toBe(got === 1);
            else refusedHere++;
          });
          expect(refusedHere, where).toBe(turnedAway);
          continue;
        }
        if (turnedAway === 0) {
          expect(apply(room, clocks.room, op), where).toEqual(answer);
          continue;
        }
        // A refusal: only of a call the policy allows, for a key with no room.
        expect(turnedAway, where).toBe(1);
        if (op[0] === 'block') {
          expect(answer, where).toBe(false);
          continue;
        }
        const [, key, cost, options] = op as readonly ['consume' | 'tryConsume', string, number, { limit: number } | undefined];
        expect(room.peek(key, cost, options).allowed, where).toBe(true);
        if (op[0] === 'tryConsume') {
          expect(answer, where).toBe(false);
          continue;
        }
        const d = answer as Decision;
        expect(d, where).toMatchObject({ allowed: false, remaining: 0, resetMs: 0 });
        expect(d.retryAfterMs, where).toBeGreaterThan(0);
        expect(d.retryAfterMs, where).toBeLessThan(Infinity);
        // Waiting exactly that long, with nothing else happening, finds room.
        if (clocks.full.now() + d.retryAfterMs > MAX_CLOCK_MS) continue;
        clocks.full.advance(d.retryAfterMs);
        clocks.room.advance(d.retryAfterMs);
        const again = full.consume(key, cost, options);
        expect(again, `${where}, again after ${d.retryAfterMs} ms`).toEqual(room.consume(key, cost, options));
        expect(again.allowed, where).toBe(true);
      }
      full.close();
      room.close();
    }
    expect(refusals).toBeGreaterThan(1000);
  });

  // Blocks hold room as counters do: a full table reuses the room of a block that ended, and a
  // refused key's wait counts when a block ends (regressions: the TypeScript table kept blocks
  // beside its slots, so it did neither, and said Infinity for a table full of blocks).
  const bothEngines = <T>(make: (engine: EngineName) => T): { native: T; js: T } => ({ native: make('native'), js: make('js') });

  it("the room of a block that ended is reused for a new key's block, on a key whose counters stay", () => {
    const answers = bothEngines((engine) => {
      const clock = new ManualClock(0);
      const limiter = new Limiter({ policy: fixedWindow({ limit: 100, windowMs: 3_600_000 }), engine, clock, capacity: 4, onFull: 'refuse' });
      limiter.consume('e');
      limiter.block('a', 1e12);
      limiter.block('e', 1);
      limiter.consume('c');
      clock.advance(1);
      return [limiter.block('b', 1e12), limiter.consume('b').retryAfterMs];
    });
    expect(answers).toEqual({ native: [true, 1e12], js: [true, 1e12] });
  });

  it('a new key refused by a table full of blocks waits until the first block ends, not for ever', () => {
    const answers = bothEngines((engine) => {
      const limiter = new Limiter({ policy: slidingWindow({ limit: 1, windowMs: 1 }), engine, clock: new ManualClock(0), capacity: 4, onFull: 'refuse' });
      for (const key of ['a', 'b', 'f']) limiter.block(key, 2 ** 50);
      limiter.block('c', 60_000);
      return limiter.consume('d').retryAfterMs;
    });
    expect(answers).toEqual({ native: 60_000, js: 60_000 });
  });

  it("a refused key's wait counts a block that ends before the counters beside it", () => {
    const sliding = bothEngines((engine) => {
      const limiter = new Limiter({ policy: slidingWindow({ limit: 7, windowMs: 13 }), engine, clock: new ManualClock(0), capacity: 4, onFull: 'refuse' });
      limiter.block('e', 10);
      limiter.consumeMany(['a', 'b', 'c', 'd', 'e']);
      return limiter.consume('d', 2).retryAfterMs;
    });
    expect(sliding).toEqual({ native: 10, js: 10 });
    const bucket = bothEngines((engine) => {
      const limiter = new Limiter({ policy: tokenBucket({ capacity: 7, tokens: 1, intervalMs: 100 }), engine, clock: new ManualClock(0), capacity: 4, onFull: 'refuse' });
      limiter.block('f', 1e12);
      limiter.block('c', 1e12);
      limiter.consume('e', 5);
      limiter.block('b', 10);
      return limiter.consume('a', 5).retryAfterMs;
    });
    expect(bucket).toEqual({ native: 10, js: 10 });
  });
});
