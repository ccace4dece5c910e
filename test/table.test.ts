// Capacity, eviction, refusal, expiry, sweep and stats of the table behind a Limiter.
import { describe, expect, it } from 'vitest';
import { fixedWindow, Limiter, ManualClock, tokenBucket } from '../src/index.js';
import { engines, seededRandom } from './helpers/engines.js';

const policy = fixedWindow({ limit: 5, windowMs: 1000 });

describe.each(engines())('%s engine', (engine) => {
  // 56 keys plus an eighth of headroom make one shard of 64 entries (16 buckets of 4).
  const small = (onFull: 'evict' | 'refuse', clock: ManualClock) => {
    const limiter = new Limiter({ policy, engine, clock, capacity: 56, shards: 1, onFull });
    expect(limiter.stats()).toMatchObject({ capacity: 56, slots: 64, shards: 1 });
    return limiter;
  };

  // Its capacity of keys at times 100-155, then new keys at time 200 until the first that finds
  // no room (the native table places keys past its capacity as long as moves make room).
  const fill = (limiter: Limiter, clock: ManualClock) => {
    for (let i = 0; i < 56; i++) {
      clock.set(100 + i);
      expect(limiter.tryConsume(`k${i}`)).toBe(true);
    }
    expect(limiter.stats()).toMatchObject({ entries: 56, refused: 0, evictions: 0 });
    clock.set(200);
    for (let extra = 0; extra <= 8; extra++) {
      const decision = limiter.consume(`x${extra}`);
      const { refused, evictions } = limiter.stats();
      if (refused + evictions > 0) return { extra, decision };
      expect(decision.allowed).toBe(true);
    }
    throw new Error('64 entries held 65 keys');
  };

  it('refuses a new key when full, until the earliest entry expires; old keys keep their state', () => {
    const clock = new ManualClock(0);
    const limiter = small('refuse', clock);
    const { extra, decision } = fill(limiter, clock);
    expect(decision.allowed).toBe(false);
    // Until the earliest of the candidates for its place expires: a k (1100-1155) or an x (1200).
    expect(decision.retryAfterMs).toBeGreaterThanOrEqual(900);
    expect(decision.retryAfterMs).toBeLessThanOrEqual(1000);
    expect(limiter.stats()).toMatchObject({ entries: 56 + extra, refused: 1, evictions: 0 });
    for (let i = 0; i < 56; i++) expect(limiter.peek(`k${i}`).remaining).toBe(4);
    clock.set(1200);
    expect(limiter.tryConsume(`x${extra}`)).toBe(true);
    expect(limiter.stats().evictions).toBe(0);
    expect(limiter.stats().swept).toBeGreaterThanOrEqual(1);
  });

  it("a key decided again and again (a hot key) starts afresh after reset(), expiry or eviction, never with a released slot's state", () => {
    const clock = new ManualClock(0);
    const limiter = small('evict', clock);
    for (let i = 0; i < 5; i++) limiter.tryConsume('hot');
    expect(limiter.tryConsume('hot')).toBe(false);
    // Reset: the same key at once, and another key that may reuse its slot, both fresh.
    expect(limiter.reset('hot')).toBe(true);
    expect(limiter.consume('hot').remaining).toBe(4);
    expect(limiter.reset('hot')).toBe(true);
    expect(limiter.consume('other').remaining).toBe(4);
    expect(limiter.consume('hot').remaining).toBe(4);
    // Expiry: the window over, the hot key counts afresh.
    for (let i = 0; i < 3; i++) limiter.tryConsume('hot');
    clock.advance(1000);
    expect(limiter.consume('hot').remaining).toBe(4);
    // Eviction: the hot key pushed out by a full table of newer keys comes back fresh.
    clock.set(5000);
    for (let i = 0; i < 4; i++) limiter.tryConsume('hot');
    for (let i = 0; i < 80; i++) {
      clock.set(5001 + i);
      limiter.tryConsume(`n${i}`);
    }
    expect(limiter.stats().evictions).toBeGreaterThan(0);
    const back = limiter.consume('hot').remaining;
    expect(back === 4 || back === 0).toBe(true);
    if (back === 4) expect(limiter.stats().evictions).toBeGreaterThan(0);
  });

  it('evicts the entry nearest to expiry when full, and counts it', () => {
    const clock = new ManualClock(0);
    const limiter = small('evict', clock);
    const { extra, decision } = fill(limiter, clock);
    expect(decision.allowed).toBe(true);
    expect(limiter.stats()).toMatchObject({ entries: 56 + extra, evictions: 1, refused: 0 });
    // The victim was one of the k (nearest to expiry): it alone comes back fresh.
    const fresh = Array.from({ length: 56 }, (_, i) => limiter.peek(`k${i}`).remaining).filter((r) => r === 5);
    expect(fresh).toHaveLength(1);
    for (let i = 0; i <= extra; i++) expect(limiter.peek(`x${i}`).remaining).toBe(4);
  });

  it('reclaims expired entries on sweep and reports accurate stats', () => {
    const clock = new ManualClock(0);
    const limiter = new Limiter({ policy, engine, clock, capacity: 10_000 });
    for (let i = 0; i < 1000; i++) limiter.consume(`user:${i}`);
    expect(limiter.stats()).toMatchObject({ engine, entries: 1000, evictions: 0, refused: 0, swept: 0 });
    clock.set(999);
    expect(limiter.sweep()).toBe(0);
    clock.set(1000);
    expect(limiter.sweep()).toBe(1000);
    expect(limiter.stats()).toMatchObject({ entries: 0, swept: 1000 });
    expect(limiter.stats().capacity).toBe(10_000);
  });

  it('reports capacity in keys, as given, and slots (the entries it has room for) beside it', () => {
    const made = [new Limiter({ policy, engine }), new Limiter({ policy, engine, capacity: 1000 }), new Limiter({ policy, engine, capacity: 1000, preallocate: true })];
    expect(made.map((l) => l.stats().capacity)).toEqual([1_000_000, 1000, 1000]);
    // 1,000 keys plus an eighth (1,125), in whole buckets of 4: both engines plan the same slots.
    expect(made[2]?.stats().slots).toBe(1128);
    for (const l of made) {
      const s = l.stats();
      expect(s.slots, `capacity ${s.capacity}`).toBeGreaterThan(0);
      // At most an eighth more, plus rounding to whole buckets in each of up to 256 shards.
      expect(s.slots).toBeLessThanOrEqual(Math.ceil(s.capacity * 1.125) + 4 * 256);
      l.close();
    }
  });

  it('estimates its memory, growing with the keys it holds', () => {
    const limiter = new Limiter({ policy, engine, clock: new ManualClock(0), capacity: 100_000 });
    const empty = limiter.stats().memoryBytes;
    for (let i = 0; i < 50_000; i++) limiter.consume(`user:${i}`);
    const full = limiter.stats().memoryBytes;
    // At least the 32 bytes of a native entry per key; the TS engine spends more (its Maps).
    expect(full - empty).toBeGreaterThanOrEqual(50_000 * 32);
    expect(full).toBeLessThan(50_000 * 400);
    limiter.close();
  });

  it('keeps an entry for exactly as long as its state matters', () => {
    const clock = new ManualClock(0);
    const limiter = new Limiter({ policy: tokenBucket({ capacity: 4, refillPerSecond: 2 }), engine, clock, capacity: 1000 });
    limiter.consume('k', 3);
    clock.set(1499);
    expect(limiter.sweep()).toBe(0);
    clock.set(1500);
    // Full again: forgetting it now changes no decision.
    expect(limiter.sweep()).toBe(1);
  });

  it('holds its capacity of a million distinct live keys', () => {
    const limiter = new Limiter({ policy, engine, clock: new ManualClock(0) });
    const out = new Uint8Array(1000);
    const keys = new Array<string>(1000);
    for (let base = 0; base < 1_000_000; base += 1000) {
      for (let i = 0; i < 1000; i++) keys[i] = `user:${base + i}`;
      limiter.consumeMany(keys, 1, out);
    }
    const stats = limiter.stats();
    expect(stats.entries + stats.evictions).toBe(1_000_000);
    // Two-choice windows and an eighth of headroom: under 1 in 10,000 inserts evicts (the TS
    // engine's Map never does). Typical native figure: fewer than 10.
    expect(stats.evictions).toBeLessThan(100);
    expect(stats.refused).toBe(0);
    limiter.close();
  });
});

describe.runIf(engines().includes('native'))('native table', () => {
  it('preallocated: reports its shards and its whole memory from the start', () => {
    const limiter = new Limiter({ policy, engine: 'native', capacity: 1_000_000, preallocate: true });
    const stats = limiter.stats();
    expect(stats.shards).toBeGreaterThan(1);
    expect(stats.capacity).toBe(1_000_000);
    expect(stats.slots).toBeGreaterThanOrEqual(1_000_000);
    // 32-byte entries (fingerprint included), plus shard headers.
    expect(stats.memoryBytes).toBeGreaterThanOrEqual(stats.slots * 32);
    expect(stats.memoryBytes).toBeLessThan(stats.slots * 32 + 1_000_000);
    limiter.close();
  });

  it('by default starts with room for 1,024 keys and grows to hold its capacity, keeping every key', () => {
    const clock = new ManualClock(0);
    const limiter = new Limiter({ policy: fixedWindow({ limit: 3, windowMs: 60_000 }), engine: 'native', capacity: 200_000, clock, topKeys: true });
    const fresh = limiter.stats();
    expect(fresh.memoryBytes).toBeLessThan(200_000);
    expect(fresh.shards).toBe(1);
    for (let i = 0; i < 200_000; i++) expect(limiter.tryConsume(`k${i}`)).toBe(true);
    // A key consumed again while its generation is being moved keeps its count.
    for (let i = 0; i < 200_000; i += 7) limiter.consume(`k${i}`);
    const grown = limiter.stats();
    // Holding exactly its capacity, a shard is ~89% full on average and a few percent fuller at
    // most; the displacement search nearly always finds room, but its bound (64 moves) and the
    // random hash seed leave a rare eviction (about one run in fifteen evicts one key, measured
    // over 300 runs). Every key not evicted keeps its exact count.
    expect(grown).toMatchObject({ refused: 0, allowed: 200_000 + Math.ceil(200_000 / 7) });
    expect(grown.entries + grown.evictions).toBe(200_000);
    expect(grown.evictions).toBeLessThanOrEqual(5);
    expect(grown.shards).toBeGreaterThan(1);
    let wrong = 0;
    for (let i = 0; i < 200_000; i++) if (limiter.peek(`k${i}`).remaining !== (i % 7 === 0 ? 1 : 2)) wrong++;
    expect(wrong).toBeLessThanOrEqual(grown.evictions);
    // Heavy hitters survive the growth: the summary is kept across generations.
    for (let n = 0; n < 500; n++) limiter.consume('hot');
    const [top] = limiter.topKeys(1);
    expect(top?.key).toBe('hot');
    expect(top!.count).toBeGreaterThanOrEqual(500);
    expect(top!.count - top!.error).toBeLessThanOrEqual(500);
    // reset, block and refund reach keys wherever they are.
    expect(limiter.reset('k1')).toBe(true);
    expect(limiter.peek('k1').remaining).toBe(3);
    limiter.close();
  });
});

describe('the TypeScript engine', () => {
  it('reuses the slots of expired keys: turnover of keys does not grow its memory', () => {
    const clock = new ManualClock(0);
    const limiter = new Limiter({ policy, engine: 'js', clock, capacity: 300_000 });
    for (let i = 0; i < 100_000; i++) limiter.tryConsume(`a:${i}`);
    const first = limiter.stats();
    expect(first.entries).toBe(100_000);
    expect(first.memoryBytes).toBeGreaterThan(100_000 * 32);
    clock.set(1000);
    for (let i = 0; i < 100_000; i++) limiter.tryConsume(`b:${i}`);
    const second = limiter.stats();
    // Two expired slots are looked at per insert: every a-key's slot went back and was reused.
    expect(second.entries).toBe(100_000);
    expect(second.swept).toBe(100_000);
    expect(second.memoryBytes).toBe(first.memoryBytes);
    // The b-keys kept their counts, the a-keys come back fresh.
    expect(limiter.peek('b:77').remaining).toBe(4);
    expect(limiter.peek('a:77').remaining).toBe(5);
    limiter.close();
  });
});

// At capacity the engines may give up different keys (capacity 4, one sequence:
// 10001111 native, 10101111 TypeScript). Which entry a full table evicts depends on where the key
// sits (the native table: its two buckets, placed by a hash with a random seed per table; the
// TypeScript one: a rotating cursor), so one order for both is not to be had; the difference is
// bounded instead, and documented (docs/api.md, onFull). These tests hold the bound.
describe.runIf(engines().length === 2)('both engines at capacity', () => {
  const policies = [
    ['fixed window', fixedWindow({ limit: 2, windowMs: 1000 })],
    ['token bucket', tokenBucket({ capacity: 2, tokens: 1, intervalMs: 500 })],
  ] as const;

  // The same random sequence of consumes (7 keys, 4 places) and clock steps, 300 times.
  const run = (
    policy: (typeof policies)[number][1],
    onFull: 'evict' | 'refuse',
    seed: number,
    each: (step: { key: string; native: boolean; js: boolean; reference: boolean; evicted: { native: boolean; js: boolean } }) => void,
  ) => {
    const clock = new ManualClock(0);
    const native = new Limiter({ policy, engine: 'native', clock, capacity: 4, shards: 1, onFull });
    const js = new Limiter({ policy, engine: 'js', clock, capacity: 4, shards: 1, onFull });
    // A table with room for every key: what a table that never forgets would decide.
    const reference = new Limiter({ policy, engine: 'js', clock, capacity: 1000 });
    const random = seededRandom(seed);
    for (let i = 0; i < 40; i++) {
      if (random() < 0.2) {
        clock.advance(Math.floor(random() * 700));
        continue;
      }
      const key = `k${Math.floor(random() * 7)}`;
      const before = { native: native.stats().evictions, js: js.stats().evictions };
      each({
        key,
        native: native.tryConsume(key),
        js: js.tryConsume(key),
        reference: reference.tryConsume(key),
        evicted: { native: native.stats().evictions > before.native, js: js.stats().evictions > before.js },
      });
    }
  };

  it.each(policies)('%s, onFull refuse: the same decisions, step by step', (_label, policy) => {
    for (let seed = 0; seed < 300; seed++) {
      run(policy, 'refuse', seed, (s) => expect(s.native, `seed ${seed} ${s.key}`).toBe(s.js));
    }
  });

  it.each(policies)('%s, onFull evict: each engine decides as a table with room would, except for keys it evicted', (_label, policy) => {
    let differing = 0;
    for (let seed = 0; seed < 300; seed++) {
      // Keys whose state an engine may have lost: every key it held when it evicted. (A key
      // evicted is a fresh key to that engine: its counting starts again at its next request.)
      const held: Record<'native' | 'js', Set<string>> = { native: new Set(), js: new Set() };
      const lost: Record<'native' | 'js', Set<string>> = { native: new Set(), js: new Set() };
      run(policy, 'evict', seed, (s) => {
        for (const engine of ['native', 'js'] as const) {
          if (s.evicted[engine]) for (const k of held[engine]) lost[engine].add(k);
          if (s[engine]) held[engine].add(s.key);
          if (!lost[engine].has(s.key)) expect(s[engine], `seed ${seed} ${engine} ${s.key}`).toBe(s.reference);
        }
        if (s.native !== s.js) differing++;
      });
    }
    // The difference exists (this is what the docs describe), and is confined as above.
    expect(differing).toBeGreaterThan(0);
  });
});
