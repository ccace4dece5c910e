// RateLimiterTollgate with storeClient keeps rate-limiter-flexible's own Redis keys and values:
// its RateLimiterRedis and RateLimiterTollgate, with the same options on one
// redis-server, share one count both ways (points, rewards, penalties, blocks, deletes), and the
// keys' TTLs are the ones RateLimiterRedis sets. Times are read from Redis (PTTL), never slept on.
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { RateLimiterRedis, type RateLimiterRes as RlfRes } from 'rate-limiter-flexible';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiterRes, RateLimiterTollgate } from '../src/adapters-entry.js';
import { hasRedis, startRedis, useRedisCluster, useRedisServer } from './helpers/redis.js';

interface Pair {
  readonly old: RateLimiterRedis;
  readonly next: RateLimiterTollgate;
}

interface Client {
  /** The client both limiters take. */
  readonly client: unknown;
  /** rate-limiter-flexible's switch for node-redis 4+. */
  readonly useRedisPackage: boolean;
  close(): void;
}

type Options = { points: number; duration: number; keyPrefix?: string; blockDuration?: number; inMemoryBlockOnConsumed?: number; inMemoryBlockDuration?: number };

const clients: [string, (host: string, port: number) => Promise<Client>][] = [
  [
    'ioredis',
    async (host, port) => {
      const c = new Redis({ host, port });
      c.on('error', () => undefined);
      return { client: c, useRedisPackage: false, close: () => c.disconnect() };
    },
  ],
  [
    'node-redis',
    async (host, port) => {
      const c = createClient({ socket: { host, port } });
      c.on('error', () => undefined);
      await c.connect();
      return { client: c, useRedisPackage: true, close: () => void c.destroy() };
    },
  ],
];

/** A RejectedRes or a resolved one, whichever the promise settled with. */
const settled = (p: Promise<unknown>): Promise<RlfRes | RateLimiterRes> =>
  p.then(
    (r) => r as RlfRes,
    (e: unknown) => e as RlfRes,
  );

describe.runIf(hasRedis).each(clients)('RateLimiterRedis and RateLimiterTollgate share one count (%s)', (_name, connect) => {
  const state = useRedisServer();
  let c: Client;
  const made: RateLimiterTollgate[] = [];
  let n = 0;

  beforeAll(async () => {
    c = await connect(state.server.host, state.server.port);
  });
  afterAll(() => {
    for (const limiter of made) limiter.close();
    c?.close();
  });

  /** Both limiters with the same options, and a key no other test uses. */
  function pair(options: Options): Pair & { key: string } {
    const old = new RateLimiterRedis({ storeClient: c.client, useRedisPackage: c.useRedisPackage, ...options });
    const next = new RateLimiterTollgate({ storeClient: c.client as never, ...options });
    made.push(next);
    return { old, next, key: `ip-${_name}-${++n}` };
  }

  /** PTTL of the Redis key, read before and after `call`: what a TTL read during the call lies between. */
  async function bracket<T>(key: string, call: () => Promise<T>): Promise<{ before: number; result: T; after: number }> {
    const before = await state.redis.pttl(key);
    const result = await call();
    const after = await state.redis.pttl(key);
    return { before, result, after };
  }

  it("writes rate-limiter-flexible's own key and value: `keyPrefix:key`, the points as an integer", async () => {
    const { old, next, key } = pair({ points: 5, duration: 60 });
    await next.consume(key, 2);
    expect(next.getKey(key)).toBe(`rlflx:${key}`);
    expect(await state.redis.get(`rlflx:${key}`)).toBe('2');
    expect(await state.redis.type(`rlflx:${key}`)).toBe('string');
    expect(await old.get(key)).toMatchObject({ consumedPoints: 2, remainingPoints: 3 });
    // keyPrefix '': the bare key, as rate-limiter-flexible's getKey().
    const bare = pair({ points: 5, duration: 60, keyPrefix: '' });
    await bare.old.consume(bare.key);
    expect(await state.redis.get(bare.key)).toBe('1');
    expect(await bare.next.consume(bare.key)).toMatchObject({ consumedPoints: 2, remainingPoints: 3 });
  });

  it('3 points spent by RateLimiterRedis leave exactly 2 to RateLimiterTollgate, and the reverse', async () => {
    const first = pair({ points: 5, duration: 60, keyPrefix: 'share' });
    await first.old.consume(first.key, 3);
    expect(await first.next.get(first.key)).toMatchObject({ consumedPoints: 3, remainingPoints: 2, isFirstInDuration: false });
    expect(await first.next.consume(first.key, 2)).toMatchObject({ consumedPoints: 5, remainingPoints: 0 });
    const over = await settled(first.next.consume(first.key));
    expect(over).toBeInstanceOf(RateLimiterRes);
    expect(over).toMatchObject({ consumedPoints: 6, remainingPoints: 0 });

    const second = pair({ points: 5, duration: 60, keyPrefix: 'share' });
    expect(await second.next.consume(second.key, 3)).toMatchObject({ consumedPoints: 3, remainingPoints: 2, isFirstInDuration: true });
    expect(await second.old.get(second.key)).toMatchObject({ consumedPoints: 3, remainingPoints: 2 });
    expect(await second.old.consume(second.key, 2)).toMatchObject({ consumedPoints: 5, remainingPoints: 0 });
    await expect(second.old.consume(second.key)).rejects.toMatchObject({ consumedPoints: 6 });
    await expect(second.next.consume(second.key)).rejects.toMatchObject({ consumedPoints: 7 });
  });

  it('a block set by either refuses on the other, msBeforeNext the TTL Redis holds', async () => {
    const a = pair({ points: 5, duration: 60 });
    await a.old.block(a.key, 30);
    const byOld = await bracket(`rlflx:${a.key}`, () => settled(a.next.consume(a.key)));
    expect(byOld.result).toBeInstanceOf(RateLimiterRes);
    expect(byOld.result.remainingPoints).toBe(0);
    expect(byOld.result.msBeforeNext).toBeLessThanOrEqual(byOld.before);
    expect(byOld.result.msBeforeNext).toBeGreaterThanOrEqual(byOld.after);
    expect(byOld.before).toBeLessThanOrEqual(30_000);

    const b = pair({ points: 5, duration: 60 });
    expect(await b.next.block(b.key, 30)).toMatchObject({ consumedPoints: 6, msBeforeNext: 30_000 });
    expect(await state.redis.get(`rlflx:${b.key}`)).toBe('6');
    const byNext = await bracket(`rlflx:${b.key}`, () => settled(b.old.consume(b.key)));
    expect(byNext.result).toMatchObject({ remainingPoints: 0, consumedPoints: 7 });
    expect(byNext.result.msBeforeNext).toBeLessThanOrEqual(byNext.before);
    expect(byNext.result.msBeforeNext).toBeGreaterThanOrEqual(byNext.after);

    // A block for ever (0 seconds) is a count without TTL; the next consume of a limiter with a
    // duration gives the key that duration (RateLimiterRedis' script does), whichever consumes.
    const c0 = pair({ points: 5, duration: 60 });
    expect(await c0.next.block(c0.key, 0)).toMatchObject({ msBeforeNext: -1 });
    expect(await state.redis.pttl(`rlflx:${c0.key}`)).toBe(-1);
    await expect(c0.old.consume(c0.key)).rejects.toMatchObject({ consumedPoints: 7, msBeforeNext: 60_000 });
    expect(await c0.old.block(c0.key, 0)).toMatchObject({ msBeforeNext: -1 });
    expect(await state.redis.pttl(`rlflx:${c0.key}`)).toBe(-1);
    await expect(c0.next.consume(c0.key)).rejects.toMatchObject({ consumedPoints: 7, msBeforeNext: 60_000 });
  });

  it('blockDuration: the consume that crosses the limit blocks the key for both, as RateLimiterRedis stores it', async () => {
    const options = { points: 2, duration: 60, blockDuration: 120 };
    const a = pair(options);
    await a.next.consume(a.key, 2);
    const rejected = await settled(a.next.consume(a.key));
    expect(rejected).toMatchObject({ consumedPoints: 3, msBeforeNext: 120_000 });
    // What RateLimiterRedis' own block leaves: the count, with blockDuration as its TTL.
    expect(await state.redis.get(`rlflx:${a.key}`)).toBe('3');
    const pttl = await state.redis.pttl(`rlflx:${a.key}`);
    expect(pttl).toBeGreaterThan(60_000);
    expect(pttl).toBeLessThanOrEqual(120_000);
    const seen = await bracket(`rlflx:${a.key}`, () => settled(a.old.consume(a.key)));
    expect(seen.result).toMatchObject({ consumedPoints: 4, remainingPoints: 0 });
    expect(seen.result.msBeforeNext).toBeLessThanOrEqual(seen.before);
    expect(seen.result.msBeforeNext).toBeGreaterThanOrEqual(seen.after);

    const b = pair(options);
    await b.old.consume(b.key, 2);
    await expect(b.old.consume(b.key)).rejects.toMatchObject({ msBeforeNext: 120_000 });
    const blocked = await bracket(`rlflx:${b.key}`, () => settled(b.next.consume(b.key)));
    expect(blocked.result).toBeInstanceOf(RateLimiterRes);
    expect(blocked.before).toBeGreaterThan(60_000);
    expect(blocked.result.msBeforeNext).toBeLessThanOrEqual(blocked.before);
    expect(blocked.result.msBeforeNext).toBeGreaterThanOrEqual(blocked.after);
  });

  it('delete by either clears the key for both', async () => {
    const a = pair({ points: 5, duration: 60 });
    await a.old.consume(a.key, 4);
    expect(await a.next.delete(a.key)).toBe(true);
    expect(await a.old.get(a.key)).toBeNull();
    expect(await a.next.delete(a.key)).toBe(false);
    await a.next.block(a.key, 30);
    expect(await a.old.delete(a.key)).toBe(true);
    expect(await a.next.get(a.key)).toBeNull();
    expect(await a.next.consume(a.key)).toMatchObject({ consumedPoints: 1, isFirstInDuration: true });
  });

  it('reward and penalty are seen both ways, a reward below zero as RateLimiterRedis keeps it', async () => {
    const a = pair({ points: 5, duration: 60 });
    await a.old.consume(a.key, 3);
    expect(await a.next.reward(a.key, 2)).toMatchObject({ consumedPoints: 1, remainingPoints: 4 });
    expect(await a.old.get(a.key)).toMatchObject({ consumedPoints: 1 });
    await a.old.penalty(a.key, 3);
    expect(await a.next.get(a.key)).toMatchObject({ consumedPoints: 4, remainingPoints: 1 });
    expect(await a.next.penalty(a.key, 2)).toMatchObject({ consumedPoints: 6, remainingPoints: 0 });
    await expect(a.old.consume(a.key)).rejects.toMatchObject({ consumedPoints: 7 });
    // Rewarded past zero: the same negative count on both, and the same remaining points.
    const b = pair({ points: 5, duration: 60 });
    const mine = await b.next.reward(b.key, 2);
    expect(await state.redis.get(`rlflx:${b.key}`)).toBe('-2');
    const theirs = await b.old.get(b.key);
    expect(mine).toMatchObject({ consumedPoints: -2, remainingPoints: theirs?.remainingPoints });
    expect(await b.old.reward(b.key, 1)).toMatchObject({ consumedPoints: -3 });
    expect(await b.next.consume(b.key)).toMatchObject({ consumedPoints: -2 });
  });

  it("TTLs on Redis are the ones RateLimiterRedis sets: duration, customDuration, set's seconds", async () => {
    const a = pair({ points: 5, duration: 60 });
    const startedAt = performance.now();
    await a.next.consume(a.key);
    const pttl = await state.redis.pttl(`rlflx:${a.key}`);
    const elapsed = performance.now() - startedAt;
    expect(pttl).toBeLessThanOrEqual(60_000);
    expect(pttl).toBeGreaterThanOrEqual(60_000 - Math.ceil(elapsed) - 1);
    // The duration does not restart with later points (from either side).
    const later = await bracket(`rlflx:${a.key}`, () => a.old.consume(a.key));
    expect(later.after).toBeLessThanOrEqual(later.before);
    expect(later.result.msBeforeNext).toBeLessThanOrEqual(later.before);

    const custom = pair({ points: 5, duration: 60 });
    await custom.old.consume(custom.key, 1, { customDuration: 7 });
    expect(await state.redis.pttl(`rlflx:${custom.key}`)).toBeLessThanOrEqual(7000);
    const mine = pair({ points: 5, duration: 60 });
    await mine.next.consume(mine.key, 1, { customDuration: 7 });
    const customTtl = await state.redis.pttl(`rlflx:${mine.key}`);
    expect(customTtl).toBeLessThanOrEqual(7000);
    expect(customTtl).toBeGreaterThan(0);

    const set = pair({ points: 5, duration: 60 });
    expect(await set.next.set(set.key, 4, 90)).toMatchObject({ consumedPoints: 4 });
    expect(await state.redis.get(`rlflx:${set.key}`)).toBe('4');
    const setTtl = await state.redis.pttl(`rlflx:${set.key}`);
    expect(setTtl).toBeGreaterThan(60_000);
    expect(setTtl).toBeLessThanOrEqual(90_000);
    expect(await set.old.get(set.key)).toMatchObject({ consumedPoints: 4, remainingPoints: 1 });
    await set.old.set(set.key, 1, 0);
    expect(await state.redis.pttl(`rlflx:${set.key}`)).toBe(-1);
    expect(await set.next.get(set.key)).toMatchObject({ consumedPoints: 1, msBeforeNext: -1 });
  });

  it('duration 0: points never expire, on both', async () => {
    const a = pair({ points: 3, duration: 0 });
    expect(await a.next.consume(a.key)).toMatchObject({ consumedPoints: 1, msBeforeNext: -1 });
    expect(await state.redis.pttl(`rlflx:${a.key}`)).toBe(-1);
    expect(await a.old.consume(a.key)).toMatchObject({ consumedPoints: 2, msBeforeNext: -1 });
    expect(await a.next.consume(a.key)).toMatchObject({ consumedPoints: 3, remainingPoints: 0 });
    await expect(a.old.consume(a.key)).rejects.toMatchObject({ consumedPoints: 4, msBeforeNext: -1 });
    await expect(a.next.consume(a.key)).rejects.toMatchObject({ consumedPoints: 5, msBeforeNext: -1 });
    expect(await state.redis.pttl(`rlflx:${a.key}`)).toBe(-1);
    // Past the table engines' bound for "for ever" records: Redis counts any number of points.
    const big = pair({ points: 1_000_000, duration: 0 });
    expect(await big.next.consume(big.key, 999_999)).toMatchObject({ remainingPoints: 1 });
  });

  it('consume(key, 0) answers as RateLimiterRedis: the key as it is, nothing added (regression: it was refused)', async () => {
    const options = { points: 5, duration: 60, blockDuration: 120 };
    const mine = pair(options);
    const theirs = pair(options);
    // A missing key: both start it at 0 for the duration (SET NX EX) and report that new record.
    for (const [limiter, key] of [
      [mine.next, mine.key],
      [theirs.old, theirs.key],
    ] as const) {
      const fresh = await bracket(`rlflx:${key}`, () => limiter.consume(key, 0));
      expect(fresh.result).toMatchObject({ consumedPoints: 0, remainingPoints: 5, isFirstInDuration: true });
      expect(fresh.result.msBeforeNext).toBeGreaterThanOrEqual(fresh.after);
      expect(fresh.result.msBeforeNext).toBeLessThanOrEqual(60_000);
      expect(await state.redis.get(`rlflx:${key}`)).toBe('0');
    }
    await mine.old.consume(mine.key, 2);
    await theirs.next.consume(theirs.key, 2);
    for (const limiter of [mine.next, theirs.old]) {
      for (const key of [mine.key, theirs.key]) expect(await limiter.consume(key, 0)).toMatchObject({ consumedPoints: 2, remainingPoints: 3, isFirstInDuration: false });
    }
    // Over the limit both reject; a peek is not the consume that crosses it, so neither blocks.
    await mine.next.penalty(mine.key, 4);
    for (const limiter of [mine.next, mine.old]) {
      const over = await settled(limiter.consume(mine.key, 0));
      expect(over).toMatchObject({ consumedPoints: 6, remainingPoints: 0 });
      expect(over.msBeforeNext).toBeLessThanOrEqual(60_000);
    }
    expect(await state.redis.get(`rlflx:${mine.key}`)).toBe('6');
    expect(await state.redis.pttl(`rlflx:${mine.key}`)).toBeLessThanOrEqual(60_000);
    // Negative and string points: RateLimiterRedis takes them (-1 as a reward); tollgate refuses
    // both, by choice (see checkConsumePoints), and writes nothing.
    await expect(mine.next.consume(mine.key, -1)).rejects.toMatchObject({ code: 'TOLLGATE_OUT_OF_RANGE' });
    await expect(mine.next.consume(mine.key, '2' as never)).rejects.toMatchObject({ code: 'TOLLGATE_INVALID_ARGUMENT' });
    expect(await state.redis.get(`rlflx:${mine.key}`)).toBe('6');
  });

  it.each<[string, { inMemoryBlockOnConsumed: number; inMemoryBlockDuration?: number }]>([
    ['with inMemoryBlockDuration', { inMemoryBlockOnConsumed: 3, inMemoryBlockDuration: 2 }],
    ['at inMemoryBlockOnConsumed = points, with inMemoryBlockDuration', { inMemoryBlockOnConsumed: 2, inMemoryBlockDuration: 2 }],
    ['without inMemoryBlockDuration', { inMemoryBlockOnConsumed: 3 }],
  ])('in-memory blocks (%s) answer as RateLimiterRedis: the same RateLimiterRes, call by call (regression)', async (_case, inMemory) => {
    const options = { points: 2, duration: 60, ...inMemory };
    const runs = [pair(options), pair(options)];
    const answers = await Promise.all(
      runs.map(async ({ old, next, key }, i) => {
        const limiter = i === 0 ? old : next;
        const out: { ok: boolean; res: RlfRes | RateLimiterRes; before: number }[] = [];
        for (let call = 0; call < 5; call++) {
          const before = await state.redis.pttl(`rlflx:${key}`);
          const res = await limiter.consume(key).then(
            (r) => ({ ok: true, res: r }),
            (e: unknown) => ({ ok: false, res: e as RlfRes }),
          );
          out.push({ ...res, before });
        }
        return out;
      }),
    );
    const [theirs, mine] = answers as [(typeof answers)[number], (typeof answers)[number]];
    for (let call = 0; call < 5; call++) {
      const [a, b] = [theirs[call]!, mine[call]!];
      expect(b.res).toBeInstanceOf(RateLimiterRes);
      expect({ ok: b.ok, remainingPoints: b.res.remainingPoints, consumedPoints: b.res.consumedPoints, isFirstInDuration: b.res.isFirstInDuration }).toEqual({
        ok: a.ok,
        remainingPoints: a.res.remainingPoints,
        consumedPoints: a.res.consumedPoints,
        isFirstInDuration: a.res.isFirstInDuration,
      });
      const blockMs = inMemory.inMemoryBlockDuration === undefined ? 60_000 : inMemory.inMemoryBlockDuration * 1000;
      if (!a.ok && a.res.consumedPoints === 0) {
        // Refused in memory: what is left of the block (of the key's duration, without inMemoryBlockDuration).
        for (const { res } of [a, b]) {
          expect(res.msBeforeNext).toBeGreaterThan(0);
          expect(res.msBeforeNext).toBeLessThanOrEqual(blockMs);
        }
      } else if (!a.ok && inMemory.inMemoryBlockDuration !== undefined) {
        // The consume that starts the block reports its length, not the key's TTL.
        expect([a.res.msBeforeNext, b.res.msBeforeNext]).toEqual([blockMs, blockMs]);
      } else {
        // The key's TTL, as Redis held it (a new key: the duration).
        for (const { res, before } of [a, b]) expect(res.msBeforeNext).toBeLessThanOrEqual(before < 0 ? 60_000 : before);
      }
    }
    // Refused in memory, the store was not asked: both keys hold what the block started at.
    expect(await state.redis.get(`rlflx:${runs[0]!.key}`)).toBe(await state.redis.get(`rlflx:${runs[1]!.key}`));
    expect(theirs.map((a) => a.ok)).toEqual([true, true, false, false, false]);
    expect(theirs.at(-1)!.res.consumedPoints).toBe(0);
  });

  it('a key holding something no counter is: TOLLGATE_REDIS_STATE_MISMATCH, and nothing written', async () => {
    const a = pair({ points: 5, duration: 60 });
    await state.redis.hset(`rlflx:${a.key}`, 'f', '1');
    await expect(a.next.consume(a.key)).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_STATE_MISMATCH' });
    await expect(a.next.get(a.key)).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_STATE_MISMATCH' });
    expect(await state.redis.type(`rlflx:${a.key}`)).toBe('hash');
    await state.redis.set(`rlflx:${a.key}`, 'text');
    await expect(a.next.consume(a.key)).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_STATE_MISMATCH' });
    expect(await state.redis.get(`rlflx:${a.key}`)).toBe('text');
    // The key served, so its node is up: the next key is counted.
    expect(await a.next.consume(`${a.key}-other`)).toMatchObject({ consumedPoints: 1 });
  });

  it('a state mismatch rejects even with an insurance limiter: it is never handed to it, so never fails open (regression)', async () => {
    const insurance = new RateLimiterTollgate({ points: 5, duration: 60 });
    const insured = new RateLimiterTollgate({ storeClient: c.client as never, points: 5, duration: 60, insuranceLimiter: insurance });
    made.push(insured, insurance);
    const key = `ip-${_name}-${++n}`;
    await state.redis.hset(`rlflx:${key}`, 'f', '1');
    const mismatch = { code: 'TOLLGATE_REDIS_STATE_MISMATCH' };
    await expect(insured.consume(key)).rejects.toMatchObject(mismatch);
    await expect(insured.consume(key, 0)).rejects.toMatchObject(mismatch);
    await expect(insured.penalty(key)).rejects.toMatchObject(mismatch);
    await expect(insured.reward(key)).rejects.toMatchObject(mismatch);
    await expect(insured.get(key)).rejects.toMatchObject(mismatch);
    expect(await insurance.get(key)).toBeNull();
    expect(await state.redis.type(`rlflx:${key}`)).toBe('hash');
  });

  it('set, block and delete replace or remove a value no counter is, as RateLimiterRedis does', async () => {
    for (const side of ['next', 'old'] as const) {
      const a = pair({ points: 5, duration: 60 });
      const stored = `rlflx:${a.key}`;
      await state.redis.hset(stored, 'f', '1');
      await a[side].set(a.key, 4, 30);
      expect(await state.redis.get(stored)).toBe('4');
      await state.redis.set(stored, 'text');
      await a[side].block(a.key, 30);
      expect(await state.redis.get(stored)).toBe('6');
      await state.redis.del(stored);
      await state.redis.rpush(stored, 'x');
      expect(await a[side].delete(a.key)).toBe(true);
      expect(await state.redis.exists(stored)).toBe(0);
    }
  });
});

describe.runIf(hasRedis)('on a Redis Cluster: keys without hash tag, each in its own slot', () => {
  const state = useRedisCluster();

  it('RateLimiterRedis and RateLimiterTollgate share each key, whichever node serves it', async () => {
    const client = state.client;
    const old = new RateLimiterRedis({ storeClient: client, points: 5, duration: 60 });
    const next = new RateLimiterTollgate({ storeClient: client, points: 5, duration: 60 });
    try {
      // Keys of many slots, so every node serves some (no CROSSSLOT: one key per call).
      const keys = Array.from({ length: 24 }, (_, i) => `client-${i}`);
      await Promise.all(keys.map((key) => old.consume(key, 3)));
      const seen = await Promise.all(keys.map((key) => next.consume(key)));
      for (const res of seen) expect(res).toMatchObject({ consumedPoints: 4, remainingPoints: 1 });
      for (const key of keys) expect(await client.get(`rlflx:${key}`)).toBe('4');
      await Promise.all(keys.map((key) => next.block(key, 30)));
      for (const key of keys) await expect(old.consume(key)).rejects.toMatchObject({ remainingPoints: 0, consumedPoints: 7 });
    } finally {
      next.close();
    }
  });
});

describe.runIf(hasRedis)('RateLimiterTollgate on Redis, when Redis fails', () => {
  it('the insurance limiter answers once the server is gone, and an uninsured limiter rejects with TOLLGATE_REDIS_*', async () => {
    const server = await startRedis();
    const redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    const insurance = new RateLimiterTollgate({ points: 2, duration: 60 });
    const insured = new RateLimiterTollgate({ points: 2, duration: 60, storeClient: redis, insuranceLimiter: insurance });
    const uninsured = new RateLimiterTollgate({ points: 2, duration: 60, storeClient: redis });
    try {
      expect(await insured.consume('k')).toMatchObject({ consumedPoints: 1 });
      expect(await redis.get('rlflx:k')).toBe('1');
      await server.stop();
      // Redis counted 1; the insurance limiter counts from 0, as rate-limiter-flexible's does.
      expect(await insured.consume('k')).toMatchObject({ consumedPoints: 1 });
      expect(await insured.consume('k')).toMatchObject({ consumedPoints: 2 });
      await expect(insured.consume('k')).rejects.toBeInstanceOf(RateLimiterRes);
      expect(await insured.delete('k')).toBe(true);
      expect(await insurance.get('k')).toBeNull();
      await expect(uninsured.consume('k')).rejects.toMatchObject({ code: expect.stringMatching(/^TOLLGATE_REDIS_/) });
      await expect(uninsured.get('k')).rejects.toMatchObject({ code: expect.stringMatching(/^TOLLGATE_REDIS_/) });
    } finally {
      insured.close();
      uninsured.close();
      insurance.close();
      redis.disconnect();
      await server.stop();
    }
  });

  it('a call still out when the limiter closes rejects with TOLLGATE_CLOSED', async () => {
    const server = await startRedis();
    const redis = new Redis({ host: server.host, port: server.port });
    redis.on('error', () => undefined);
    const limiter = new RateLimiterTollgate({ points: 2, duration: 60, storeClient: redis });
    try {
      await limiter.consume('warm');
      // A paused server: the call waits for its reply, and close() must not leave it waiting.
      await redis.call('CLIENT', 'PAUSE', '5000', 'ALL');
      const pending = limiter.consume('k');
      limiter.close();
      await expect(pending).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
      await expect(limiter.consume('k')).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
    } finally {
      redis.disconnect();
      await server.stop();
    }
  });
});
