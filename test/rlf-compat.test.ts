// RateLimiterTollgate behaves as rate-limiter-flexible documents its limiters:
// its result class, custom and endless durations, zero points, execEvenly, in-memory blocks, and a
// Redis store with an insurance limiter. (rate-limiter-flexible's own RateLimiterMemory test file
// was run against this class outside this repository: its 22 public-API cases pass.)
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startDelayProxy, type DelayProxy } from '../scripts/delay-proxy.mjs';
import { destroySharedMemory, ManualClock, sharedMemory, type RedisCommandSender } from '../src/index.js';
import { RateLimiterRes, RateLimiterTollgate, type RateLimiterTollgateOptions } from '../src/adapters-entry.js';
import { hasRedis, startRedis, useRedisServer } from './helpers/redis.js';

const segments: string[] = [];

afterEach(() => {
  vi.useRealTimers();
  for (const name of segments.splice(0)) destroySharedMemory(name);
});

/** The tables RateLimiterTollgate counts in without storeClient: each test's limiters get a segment of their own. */
const tables: [string, () => Pick<RateLimiterTollgateOptions, 'store'>][] = [
  ['in process', () => ({})],
  [
    'sharedMemory',
    () => {
      const name = `rlf-compat-${process.pid}-${segments.length}`;
      segments.push(name);
      return { store: sharedMemory({ name, capacity: 1000 }) };
    },
  ],
];

describe('RateLimiterTollgate, as rate-limiter-flexible defines it', () => {
  it('rejections are RateLimiterRes instances, a cost above the points included (regression: a RangeError made apps answer 500)', async () => {
    const limiter = new RateLimiterTollgate({ points: 10, duration: 60 });
    const rejection = await limiter.consume('k', 25).catch((e: unknown) => e);
    expect(rejection).toBeInstanceOf(RateLimiterRes);
    expect(rejection).toMatchObject({ consumedPoints: 25, remainingPoints: 0 });
    expect(await limiter.consume('other')).toBeInstanceOf(RateLimiterRes);
    limiter.close();
  });

  it('points: 0 refuses every consume', async () => {
    const limiter = new RateLimiterTollgate({ points: 0, duration: 5 });
    const rejection = (await limiter.consume('k').catch((e: unknown) => e)) as RateLimiterRes;
    expect(rejection).toBeInstanceOf(RateLimiterRes);
    expect(rejection.msBeforeNext).toBeGreaterThanOrEqual(0);
    limiter.close();
  });

  it('customDuration starts a new key with its own duration (0: for ever); a live key keeps the one it has', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiterTollgate({ points: 5, duration: 60, clock });
    expect(await limiter.consume('short', 1, { customDuration: 2 })).toMatchObject({ msBeforeNext: 2000, isFirstInDuration: true });
    expect(await limiter.consume('short', 1, { customDuration: 30 })).toMatchObject({ consumedPoints: 2, msBeforeNext: 2000, isFirstInDuration: false });
    expect(await limiter.consume('endless', 1, { customDuration: 0 })).toMatchObject({ msBeforeNext: -1 });
    expect(await limiter.penalty('fined', 2, { customDuration: 10 })).toMatchObject({ consumedPoints: 2, msBeforeNext: 10_000 });
    clock.advance(2000);
    expect(await limiter.get('short')).toBeNull();
    expect(await limiter.get('endless')).toMatchObject({ consumedPoints: 1, msBeforeNext: -1 });
    expect(await limiter.get('fined')).toMatchObject({ consumedPoints: 2, msBeforeNext: 8000 });
    limiter.close();
  });

  it('duration 0, block(k, 0) and set(k, p, 0) last for ever', async () => {
    const clock = new ManualClock(0);
    const endless = new RateLimiterTollgate({ points: 2, duration: 0, clock });
    await endless.consume('k');
    clock.advance(365 * 24 * 3600_000);
    expect(await endless.consume('k')).toMatchObject({ consumedPoints: 2, msBeforeNext: -1 });
    const limiter = new RateLimiterTollgate({ points: 1, duration: 1, clock });
    expect(await limiter.block('blocked', 0)).toMatchObject({ consumedPoints: 2, msBeforeNext: -1 });
    expect(await limiter.set('set', 12, 0)).toMatchObject({ consumedPoints: 12, msBeforeNext: -1 });
    clock.advance(10 * 24 * 3600_000);
    expect(await limiter.get('blocked')).toMatchObject({ consumedPoints: 2, msBeforeNext: -1 });
    expect(await limiter.get('set')).toMatchObject({ consumedPoints: 12, remainingPoints: 0, msBeforeNext: -1 });
    await expect(limiter.consume('blocked')).rejects.toBeInstanceOf(RateLimiterRes);
    endless.close();
    limiter.close();
  });

  it("execEvenly spreads allowed consumes over the duration, by rate-limiter-flexible's formula", async () => {
    vi.useFakeTimers();
    const clock = new ManualClock(0);
    const limiter = new RateLimiterTollgate({ points: 2, duration: 5, execEvenly: true, execEvenlyMinDelayMs: 1, clock });
    expect(await limiter.consume('k')).toMatchObject({ msBeforeNext: 5000 });
    let settled: RateLimiterRes | undefined;
    void limiter.consume('k').then((r) => (settled = r));
    // 5,000 ms left, no point left: the delay is ceil(5000 / (0 + 2)) = 2,500 ms.
    await vi.advanceTimersByTimeAsync(2499);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toMatchObject({ consumedPoints: 2, msBeforeNext: 2500 });
    limiter.close();
  });

  it('inMemoryBlockOnConsumed refuses a key in this process once it reaches that many points, without counting', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiterTollgate({ points: 3, duration: 10, inMemoryBlockOnConsumed: 4, clock });
    for (let i = 0; i < 3; i++) await limiter.consume('k');
    await expect(limiter.consume('k')).rejects.toMatchObject({ consumedPoints: 4 });
    // Refused without asking the store: rate-limiter-flexible's RateLimiterRes(0, ms), consumedPoints 0.
    for (let i = 0; i < 5; i++) await expect(limiter.consume('k')).rejects.toMatchObject({ consumedPoints: 0, remainingPoints: 0, isFirstInDuration: false });
    expect(await limiter.get('k')).toMatchObject({ consumedPoints: 4 });
    clock.advance(10_000);
    expect(await limiter.consume('k')).toMatchObject({ consumedPoints: 1 });
    limiter.close();
  });

  it.each(tables)('inMemoryBlockDuration: the consume that starts the block reports its length, later ones consumedPoints 0, as rate-limiter-flexible (regression, %s)', async (_name, table) => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiterTollgate({ points: 2, duration: 5, inMemoryBlockOnConsumed: 3, inMemoryBlockDuration: 2, clock, ...table() });
    expect(await limiter.consume('k')).toMatchObject({ consumedPoints: 1, isFirstInDuration: true });
    expect(await limiter.consume('k')).toMatchObject({ consumedPoints: 2, remainingPoints: 0 });
    // 3 points: over `points` and at inMemoryBlockOnConsumed, so blocked for inMemoryBlockDuration (not the 5 s window).
    await expect(limiter.consume('k')).rejects.toEqual(new RateLimiterRes(0, 2000, 3, false));
    clock.advance(500);
    await expect(limiter.consume('k')).rejects.toEqual(new RateLimiterRes(0, 1500, 0, false));
    expect(await limiter.get('k')).toMatchObject({ consumedPoints: 3 });
    clock.advance(1500);
    // The in-memory block is over; the store still counts the key's window.
    await expect(limiter.consume('k')).rejects.toMatchObject({ consumedPoints: 4, msBeforeNext: 2000 });

    // inMemoryBlockOnConsumed equal to points, with a duration: rate-limiter-flexible blocks only
    // a consume over points, so reaching points is allowed and blocks nothing.
    const even = new RateLimiterTollgate({ points: 2, duration: 5, inMemoryBlockOnConsumed: 2, inMemoryBlockDuration: 1, clock, keyPrefix: 'even', ...table() });
    await even.consume('k');
    expect(await even.consume('k')).toMatchObject({ consumedPoints: 2, remainingPoints: 0 });
    await expect(even.consume('k')).rejects.toEqual(new RateLimiterRes(0, 1000, 3, false));
    await expect(even.consume('k')).rejects.toEqual(new RateLimiterRes(0, 1000, 0, false));
    limiter.close();
    even.close();
  });

  it.each(tables)('consume(key, 0) resolves with the key as it is and adds nothing, as RateLimiterRedis (regression, %s)', async (_name, table) => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiterTollgate({ points: 5, duration: 10, blockDuration: 30, clock, ...table() });
    // A key holding nothing: what a new record would answer.
    expect(await limiter.consume('k', 0)).toEqual(new RateLimiterRes(5, 10_000, 0, true));
    expect(await limiter.consume('k', 0, { customDuration: 3 })).toEqual(new RateLimiterRes(5, 3000, 0, true));
    await limiter.consume('k', 2);
    clock.advance(4000);
    expect(await limiter.consume('k', 0)).toEqual(new RateLimiterRes(3, 6000, 2, false));
    expect(await limiter.get('k')).toMatchObject({ consumedPoints: 2 });
    // Over the limit it rejects, and a peek is not the consume that crosses it: no block starts.
    await limiter.penalty('k', 4);
    await expect(limiter.consume('k', 0)).rejects.toEqual(new RateLimiterRes(0, 6000, 6, false));
    expect(await limiter.get('k')).toMatchObject({ consumedPoints: 6, msBeforeNext: 6000 });
    // A blocked key: rejected as during any block.
    await limiter.block('blocked', 30);
    await expect(limiter.consume('blocked', 0)).rejects.toEqual(new RateLimiterRes(0, 30_000, 6, false));
    limiter.close();
  });

  it('consume with negative or string points is refused with a coded error naming points (RateLimiterRedis resolves both; deliberate)', async () => {
    const limiter = new RateLimiterTollgate({ points: 5, duration: 10 });
    await limiter.consume('k', 3);
    await expect(limiter.consume('k', -1)).rejects.toThrow(
      expect.objectContaining({
        name: 'RangeError',
        code: 'TOLLGATE_OUT_OF_RANGE',
        message: expect.stringMatching(/to take points back, call reward\) for points but received -1$/),
      }),
    );
    await expect(limiter.consume('k', '2' as never)).rejects.toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/for points but received/) }),
    );
    await expect(limiter.consume('k', 1.5)).rejects.toMatchObject({ code: 'TOLLGATE_OUT_OF_RANGE' });
    // Nothing was taken back or added.
    expect(await limiter.get('k')).toMatchObject({ consumedPoints: 3 });
    limiter.close();
  });

  it('storeClient with store, capacity, engine or clock is refused, saying why (regression: they were ignored)', () => {
    const storeClient: RedisCommandSender = { sendCommand: () => Promise.reject(new Error('never called')) };
    const name = `rlf-compat-${process.pid}-refused`;
    segments.push(name);
    const refused = (key: string, why: RegExp) =>
      expect.objectContaining({
        name: 'TypeError',
        code: 'TOLLGATE_INVALID_ARGUMENT',
        message: expect.stringMatching(new RegExp(`^RateLimiterTollgate options: ${key} cannot be given with storeClient: .*${why.source}`)),
      });
    expect(() => new RateLimiterTollgate({ storeClient, store: sharedMemory({ name, capacity: 16 }) })).toThrow(refused('store', /give one of them/));
    expect(() => new RateLimiterTollgate({ storeClient, capacity: 100 })).toThrow(refused('capacity', /leave capacity out/));
    expect(() => new RateLimiterTollgate({ storeClient, engine: 'js' })).toThrow(refused('engine', /leave engine out/));
    expect(() => new RateLimiterTollgate({ storeClient, clock: new ManualClock(0) })).toThrow(refused('clock', /Redis' own clock/));
    // Without storeClient each is a table option, taken as before.
    new RateLimiterTollgate({ capacity: 100, engine: 'js', clock: new ManualClock(0) }).close();
  });

  it('inMemoryBlockDuration without inMemoryBlockOnConsumed is refused (it would do nothing), as rate-limiter-flexible refuses it', () => {
    expect(() => new RateLimiterTollgate({ points: 5, duration: 1, inMemoryBlockDuration: 10 })).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/inMemoryBlockOnConsumed set .*for inMemoryBlockDuration/) }),
    );
    new RateLimiterTollgate({ points: 5, duration: 1, inMemoryBlockOnConsumed: 5, inMemoryBlockDuration: 10 }).close?.();
  });

  it('insuranceLimiter answers when storeClient fails', async () => {
    const dead: RedisCommandSender = { sendCommand: () => Promise.reject(new Error('connection refused')) };
    const insurance = new RateLimiterTollgate({ points: 2, duration: 60 });
    const limiter = new RateLimiterTollgate({ points: 2, duration: 60, storeClient: dead, insuranceLimiter: insurance });
    expect(await limiter.consume('k')).toMatchObject({ consumedPoints: 1 });
    expect(await limiter.consume('k')).toMatchObject({ consumedPoints: 2 });
    await expect(limiter.consume('k')).rejects.toMatchObject({ consumedPoints: 3 });
    expect(await insurance.get('k')).toMatchObject({ consumedPoints: 3 });
    const uninsured = new RateLimiterTollgate({ points: 2, duration: 60, storeClient: dead });
    await expect(uninsured.consume('k')).rejects.toMatchObject({ code: expect.stringMatching(/^TOLLGATE_REDIS_/) });
    limiter.close();
    uninsured.close();
    insurance.close();
  });
});

describe.runIf(hasRedis)('RateLimiterTollgate with storeClient on a redis-server', () => {
  const state = useRedisServer();
  it('two limiters on one Redis count together; blocks and keyPrefix as in memory', async () => {
    const a = new RateLimiterTollgate({ points: 5, duration: 60, blockDuration: 30, keyPrefix: 'shared', storeClient: state.redis });
    const b = new RateLimiterTollgate({ points: 5, duration: 60, blockDuration: 30, keyPrefix: 'shared', storeClient: state.redis });
    const other = new RateLimiterTollgate({ points: 5, duration: 60, keyPrefix: 'other', storeClient: state.redis });
    const settled = await Promise.allSettled([...Array.from({ length: 4 }, () => a.consume('ip')), ...Array.from({ length: 4 }, () => b.consume('ip'))]);
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(5);
    await expect(a.consume('ip')).rejects.toMatchObject({ remainingPoints: 0 });
    expect(await other.consume('ip')).toMatchObject({ consumedPoints: 1 });
    expect(await b.delete('ip')).toBe(true);
    expect(await a.consume('ip')).toMatchObject({ consumedPoints: 1 });
    a.close();
    b.close();
    other.close();
  });
});

describe.runIf(hasRedis)('RateLimiterTollgate with storeClient: the first contact is the node’s setup, not a call’s budget', () => {
  let server: Awaited<ReturnType<typeof startRedis>>;
  let proxy: DelayProxy;
  beforeAll(async () => {
    server = await startRedis();
    proxy = await startDelayProxy({ port: server.port, toServer: 50, toClient: 50 });
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.stop();
  });

  it('a fresh client 100 ms away: connecting, reading the clock and loading the script outlast 250 ms, and every call still decides (regression: 0 of 8)', async () => {
    const redis = new Redis({ host: '127.0.0.1', port: proxy.port, maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    const limiter = new RateLimiterTollgate({ points: 5, duration: 60, keyPrefix: 'distant', storeClient: redis });
    const settled = await Promise.allSettled(Array.from({ length: 8 }, () => limiter.consume('ip')));
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(5);
    // The other three were refused by the count, not by a failure.
    for (const s of settled) if (s.status === 'rejected') expect(s.reason).toMatchObject({ remainingPoints: 0 });
    limiter.close();
    redis.disconnect();
  });
});
