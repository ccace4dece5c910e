// Bad input is rejected with a TypeError or RangeError naming the argument; nothing else is disturbed.
import { describe, expect, it } from 'vitest';
import { allOf, fixedWindow, leakyBucket, Limiter, ManualClock, RedisLimiter, slidingWindow, tokenBucket } from '../src/index.js';
import { loadNative } from '../src/engine/load-native.js';
import { describePolicy } from '../src/common/policies.js';
import { backoffDelay, retryPolicy } from '../src/client-entry.js';
import { metricsHandler, registerPrometheus, toPrometheus } from '../src/metrics-entry.js';
import { NativeTable } from '../src/engine/native-table.js';
import { engines } from './helpers/engines.js';

const policy = fixedWindow({ limit: 5, windowMs: 1000 });

function expectError(fn: () => unknown, type: typeof TypeError | typeof RangeError, name: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected a ${type.name} naming ${name}`).toBeInstanceOf(type);
  expect((caught as Error).message).toContain(` for ${name} `);
}

describe('policy factories', () => {
  it.each([
    ['limit 0', () => fixedWindow({ limit: 0, windowMs: 1000 }), RangeError, 'limit'],
    ['fractional limit', () => slidingWindow({ limit: 1.5, windowMs: 1000 }), RangeError, 'limit'],
    ['string window', () => fixedWindow({ limit: 1, windowMs: '1000' as unknown as number }), TypeError, 'windowMs'],
    ['negative window', () => fixedWindow({ limit: 1, windowMs: -1 }), RangeError, 'windowMs'],
    ['NaN window', () => slidingWindow({ limit: 1, windowMs: Number.NaN }), RangeError, 'windowMs'],
    ['overflowing product', () => fixedWindow({ limit: 2 ** 40, windowMs: 2 ** 20 }), RangeError, 'limit'],
    ['zero capacity', () => tokenBucket({ capacity: 0, refillPerSecond: 1 }), RangeError, 'capacity'],
    ['zero rate', () => tokenBucket({ capacity: 1, refillPerSecond: 0 }), RangeError, 'refillPerSecond'],
    ['Infinity rate', () => tokenBucket({ capacity: 1, refillPerSecond: Infinity }), RangeError, 'refillPerSecond'],
    ['too slow a rate for a per-second figure', () => tokenBucket({ capacity: 1, refillPerSecond: 1e-7 }), RangeError, 'refillPerSecond'],
    ['negative rate', () => leakyBucket({ burst: 1, ratePerSecond: -1 }), RangeError, 'ratePerSecond'],
    ['NaN rate', () => leakyBucket({ burst: 1, ratePerSecond: Number.NaN }), RangeError, 'ratePerSecond'],
    ['zero interval', () => tokenBucket({ capacity: 1, tokens: 1, intervalMs: 0 }), RangeError, 'intervalMs'],
    ['zero burst', () => leakyBucket({ burst: 0, ratePerSecond: 1 }), RangeError, 'burst'],
    ['no options', () => fixedWindow(undefined as unknown as { limit: number; windowMs: number }), TypeError, 'fixedWindow options'],
  ] as const)('%s', (_label, fn, type, name) => expectError(fn, type, name));
});

describe('a rate given twice', () => {
  // Regression: tokenBucket({ capacity, refillPerSecond: 5, intervalMs: 60_000 }) refilled per
  // second, the intervalMs silently ignored (60 times too fast).
  it.each([
    ['refillPerSecond with intervalMs', () => tokenBucket({ capacity: 10, refillPerSecond: 5, intervalMs: 60_000 } as never), /refillPerSecond.*intervalMs/],
    ['refillPerSecond with tokens', () => tokenBucket({ capacity: 10, refillPerSecond: 5, tokens: 1 } as never), /refillPerSecond.*tokens/],
    ['ratePerSecond with intervalMs', () => leakyBucket({ burst: 10, ratePerSecond: 5, intervalMs: 60_000 } as never), /ratePerSecond.*intervalMs/],
    ['ratePerSecond with tokens and intervalMs', () => leakyBucket({ burst: 10, ratePerSecond: 5, tokens: 1, intervalMs: 60_000 } as never), /ratePerSecond.*tokens/],
  ])('%s is refused with a coded TypeError naming both', (_label, make, names) => {
    expect(make).toThrow(expect.objectContaining({ name: 'TypeError', code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(names) }));
  });

  it('the types refuse both forms at once too', () => {
    // @ts-expect-error refillPerSecond and intervalMs are two ways of giving the rate
    expect(() => tokenBucket({ capacity: 10, refillPerSecond: 5, intervalMs: 60_000 })).toThrow(TypeError);
    // @ts-expect-error ratePerSecond and tokens are two ways of giving the rate
    expect(() => leakyBucket({ burst: 10, ratePerSecond: 5, tokens: 1, intervalMs: 1000 })).toThrow(TypeError);
    // Either form alone is fine.
    expect(tokenBucket({ capacity: 10, tokens: 5, intervalMs: 60_000 })).toMatchObject({ refillTokens: 1, refillIntervalMs: 12_000 });
    expect(leakyBucket({ burst: 10, ratePerSecond: 5 })).toMatchObject({ rateTokens: 1, rateIntervalMs: 200 });
  });
});

describe.each(engines())('%s engine', (engine) => {
  const make = () => new Limiter({ policy, engine, clock: new ManualClock(0), capacity: 1000 });

  it('rejects bad limiter options', () => {
    expectError(() => new Limiter(undefined as never), TypeError, 'options');
    expectError(() => new Limiter({ policy: { kind: 'fixedWindow', limit: 5 } as never, engine }), TypeError, 'windowMs');
    expectError(() => new Limiter({ policy: { kind: 'nope' } as never, engine }), TypeError, 'policy');
    expectError(() => new Limiter({ policy, engine, capacity: 0 }), RangeError, 'capacity');
    expectError(() => new Limiter({ policy, engine, capacity: 1e12 }), RangeError, 'capacity');
    expectError(() => new Limiter({ policy, engine, capacity: 10.5 }), RangeError, 'capacity');
    expectError(() => new Limiter({ policy, engine, onFull: 'drop' as never }), TypeError, 'onFull');
    expectError(() => new Limiter({ policy, engine: 'rust' as never }), TypeError, 'engine');
    expectError(() => new Limiter({ policy, engine, clock: {} as never }), TypeError, 'clock');
  });

  it.each([
    ['empty key', (l: Limiter) => l.consume(''), RangeError, 'key'],
    ['number key', (l: Limiter) => l.consume(42 as unknown as string), TypeError, 'key'],
    ['undefined key', (l: Limiter) => l.tryConsume(undefined as unknown as string), TypeError, 'key'],
    ['too long key', (l: Limiter) => l.tryConsume('k'.repeat(1025)), RangeError, 'key'],
    ['cost 0', (l: Limiter) => l.consume('k', 0), RangeError, 'cost'],
    ['negative cost', (l: Limiter) => l.tryConsume('k', -1), RangeError, 'cost'],
    ['fractional cost', (l: Limiter) => l.consume('k', 1.5), RangeError, 'cost'],
    ['NaN cost', (l: Limiter) => l.consume('k', Number.NaN), RangeError, 'cost'],
    ['Infinity cost', (l: Limiter) => l.peek('k', Infinity), RangeError, 'cost'],
    ['string cost', (l: Limiter) => l.consume('k', '2' as unknown as number), TypeError, 'cost'],
    ['zero limit override', (l: Limiter) => l.consume('k', 1, { limit: 0 }), RangeError, 'limit'],
    ['overflowing limit override', (l: Limiter) => l.consume('k', 1, { limit: 2 ** 45 }), RangeError, 'limit'],
    ['zero refund', (l: Limiter) => l.refund('k', 0), RangeError, 'amount'],
    ['zero block', (l: Limiter) => l.block('k', 0), RangeError, 'durationMs'],
    ['non-array batch', (l: Limiter) => l.consumeMany('k' as unknown as string[]), TypeError, 'keys'],
    ['bad batch key', (l: Limiter) => l.consumeMany(['a', 7 as unknown as string]), TypeError, 'keys[1]'],
    ['short batch output', (l: Limiter) => l.consumeMany(['a', 'b'], 1, new Uint8Array(1)), TypeError, 'out'],
  ] as const)('%s is rejected and no state changes', (_label, call, type, name) => {
    const limiter = make();
    limiter.consume('k', 2);
    limiter.consume('a', 1);
    expectError(() => call(limiter), type, name);
    expect(limiter.peek('k').remaining).toBe(3);
    expect(limiter.peek('a').remaining).toBe(4);
    expect(limiter.stats().entries).toBe(2);
  });

  it('a cost above the limit is a denial, not an error', () => {
    expect(make().consume('k', 6)).toMatchObject({ allowed: false, remaining: 5, retryAfterMs: Infinity });
  });

  it('every call after close() throws TOLLGATE_CLOSED; close() twice is harmless', () => {
    const limiter = make();
    limiter.close();
    limiter.close();
    expect(limiter.closed).toBe(true);
    for (const call of [
      () => limiter.consume('k'),
      () => limiter.tryConsume('k'),
      () => limiter.peek('k'),
      () => limiter.refund('k'),
      () => limiter.reset('k'),
      () => limiter.block('k', 10),
      () => limiter.consumeMany(['k']),
      () => limiter.sweep(),
      () => limiter.stats(),
    ]) {
      expect(call).toThrow(expect.objectContaining({ name: 'TypeError', code: 'TOLLGATE_CLOSED' }));
    }
  });
});

describe.each(engines())('%s engine: regressions from the attack on the landed build', (engine) => {
  const make = () => new Limiter({ policy, engine, clock: new ManualClock(0), capacity: 1000 });
  const coded = (name: 'TypeError' | 'RangeError', code: string) => expect.objectContaining({ name, code });

  it('per-call options of the wrong type are refused with a coded TypeError, never ignored', () => {
    const l = make();
    for (const options of [null, 5, 'x', [1]]) {
      expect(() => l.consume('k', 2, options as never)).toThrow(coded('TypeError', 'TOLLGATE_INVALID_ARGUMENT'));
      expect(() => l.tryConsume('k', 1, options as never)).toThrow(coded('TypeError', 'TOLLGATE_INVALID_ARGUMENT'));
      expect(() => l.peek('k', 1, options as never)).toThrow(coded('TypeError', 'TOLLGATE_INVALID_ARGUMENT'));
      expect(() => l.refund('k', 1, options as never)).toThrow(coded('TypeError', 'TOLLGATE_INVALID_ARGUMENT'));
    }
    expect(l.peek('k').remaining).toBe(5);
  });

  it("an unknown per-call option (a misspelt `limits`) is refused by name, never read as the policy's own limit", async () => {
    const l = make();
    const misspelt = { limits: 50 } as never;
    const unknown = expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringMatching(/options\.limits \(did you mean limit\?\)/) });
    expect(() => l.consume('k', 1, misspelt)).toThrow(unknown);
    expect(() => l.tryConsume('k', 1, misspelt)).toThrow(unknown);
    expect(() => l.peek('k', 1, misspelt)).toThrow(unknown);
    expect(() => l.refund('k', 1, misspelt)).toThrow(unknown);
    expect(() => allOf(l, make()).consume('k', 1, misspelt)).toThrow(unknown);
    expect(l.peek('k').remaining).toBe(5);
    // The same on Redis (a rejection; nothing is sent).
    const redis = new RedisLimiter({ name: 'v', redis: { sendCommand: () => Promise.reject(new Error('not sent')) }, policy });
    await expect(redis.consume('k', 1, misspelt)).rejects.toEqual(unknown);
    redis.close();
  });

  it('consumeMany validates every key before deciding any: a bad key spends nothing', () => {
    const l = make();
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    keys[17] = '' as string;
    expect(() => l.consumeMany(keys)).toThrow(coded('RangeError', 'TOLLGATE_OUT_OF_RANGE'));
    for (let i = 0; i < 40; i++) if (i !== 17) expect(l.peek(`k${i}`).remaining).toBe(5);
  });

  it('consumeMany reads each key once; a getter that closes the limiter is a clean TOLLGATE_CLOSED', () => {
    const l = make();
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    let reads = 0;
    Object.defineProperty(keys, 20, {
      get() {
        reads++;
        l.close();
        return 'k20';
      },
    });
    expect(() => l.consumeMany(keys)).toThrow(coded('TypeError', 'TOLLGATE_CLOSED'));
    expect(reads).toBe(1);
  });

  it('consumeMany: a getter that detaches `out` is refused before anything is written', () => {
    const l = make();
    const out = new Uint8Array(40);
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    Object.defineProperty(keys, 3, {
      get() {
        structuredClone(out.buffer, { transfer: [out.buffer] });
        return 'k3';
      },
    });
    expect(() => l.consumeMany(keys, 1, out)).toThrow(coded('TypeError', 'TOLLGATE_INVALID_ARGUMENT'));
    expect(l.peek('k0').remaining).toBe(5);
  });

  it('consumeMany takes a Proxy array like any array, and a throwing getter spends nothing', () => {
    const l = make();
    const keys = new Proxy(['a', 'b', 'a'], {});
    expect([...l.consumeMany(keys)]).toEqual([1, 1, 1]);
    expect(l.peek('a').remaining).toBe(3);
    const throwing = ['x', 'y'];
    Object.defineProperty(throwing, 1, {
      get() {
        throw new Error('getter');
      },
    });
    expect(() => l.consumeMany(throwing)).toThrow('getter');
    expect(l.peek('x').remaining).toBe(5);
  });

  it('refuses a forged clock and hand-made stores', () => {
    const forged = { buffer: new Float64Array([Number.NaN]), now: () => Number.NaN };
    expect(() => new Limiter({ policy, engine, clock: forged as never })).toThrow(coded('TypeError', 'TOLLGATE_INVALID_ARGUMENT'));
    const store = { kind: 'sharedMemory', name: '../x', capacity: 10, mode: 0o600, shards: undefined };
    expect(() => new Limiter({ policy, store: store as never })).toThrow(coded('TypeError', 'TOLLGATE_INVALID_ARGUMENT'));
  });

  it('block() for the longest duration decides the same on both engines', () => {
    const l = make();
    expect(l.block('k', Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(l.peek('k')).toEqual({ allowed: false, limit: 5, remaining: 0, resetMs: 2 ** 50, retryAfterMs: 2 ** 50 });
  });
});

describe.runIf(engines().includes('native'))('the raw addon', () => {
  // The Limiter validates first; the addon must still never crash on what reaches it directly.
  const addon = loadNative().addon;
  const detail = new Float64Array(5);
  const base = { kind: 1, limit: 5, windowMs: 1000, rateTokens: 0, rateIntervalMs: 0, capacity: 100, shards: 0, evict: true, preallocate: false, detail };

  it('refuses bad configurations with errors', () => {
    expect(() => addon?.createTable(undefined as never)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'TOLLGATE_INVALID_ARGUMENT' }));
    expect(() => addon?.createTable({ ...base, kind: 9 })).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE' }));
    expect(() => addon?.createTable({ ...base, kind: 9 })).toThrow(RangeError);
    expect(() => addon?.createTable({ ...base, kind: 3 })).toThrow(RangeError);
    expect(() => addon?.createTable({ ...base, windowMs: 0 })).toThrow(RangeError);
    expect(() => addon?.createTable({ ...base, capacity: 0 })).toThrow(RangeError);
    expect(() => addon?.createTable({ ...base, detail: new Float64Array(2) })).toThrow(TypeError);
    // Every refusal carries a code and names the field.
    const refusals: [Record<string, unknown>, string, RegExp][] = [
      [{ capacity: 2 ** 40 }, 'TOLLGATE_OUT_OF_RANGE', /for capacity/],
      [{ shards: -1 }, 'TOLLGATE_OUT_OF_RANGE', /for shards/],
      [{ limit: 'five' }, 'TOLLGATE_INVALID_ARGUMENT', /for limit/],
      [{ initialCapacity: 101 }, 'TOLLGATE_OUT_OF_RANGE', /for initialCapacity/],
      [{ topKeys: true, topKeysPeriodMs: 0 }, 'TOLLGATE_OUT_OF_RANGE', /for topKeysPeriodMs/],
      [{ clock: [0] }, 'TOLLGATE_INVALID_ARGUMENT', /for clock/],
      [{ shared: { name: '../x', mode: 0o600, lockTimeoutMs: 1, onLockTimeout: true } }, 'TOLLGATE_OUT_OF_RANGE', /for shared\.name/],
      [{ shared: { name: 'ok', mode: 0o400, lockTimeoutMs: 1, onLockTimeout: true } }, 'TOLLGATE_OUT_OF_RANGE', /for shared\.mode/],
    ];
    for (const [change, code, message] of refusals) {
      expect(() => addon?.createTable({ ...base, ...change } as never)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
    }
  });

  it('refuses a call without a table handle, whatever stands in its place', () => {
    const f = addon!.tableFunctions;
    for (const notHandle of [undefined, null, {}, 'k', 7, new Float64Array(5)]) {
      expect(() => f.consume(notHandle as never, 'k')).toThrow(expect.objectContaining({ name: 'TypeError', code: 'TOLLGATE_INVALID_ARGUMENT' }));
      expect(() => f.close(notHandle as never)).toThrow(TypeError);
    }
    expect(() => (f.tryConsume as unknown as () => boolean)()).toThrow(TypeError);
    // holdShardLock is for tables made with test hooks only.
    const table = addon!.createTable(base);
    expect(() => f.holdShardLock(table.self, 'k')).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT' }));
    f.close(table.self);
  });

  it('refuses bad call arguments, and closed tables', () => {
    const table = new NativeTable(addon!, base);
    expect(() => table.consume('k', 0, 5)).toThrow(RangeError);
    expect(() => table.consume('k', 1, 0)).toThrow(RangeError);
    expect(() => table.consume('k', Number.NaN, 5)).toThrow(RangeError);
    expect(() => table.consume(7 as never, 1, 5)).toThrow(TypeError);
    expect(() => table.block('k', 2 ** 60)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'TOLLGATE_OUT_OF_RANGE' }));
    expect(() => table.consume('k', 0, 5)).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE' }));
    expect(() => table.consumeMany('k' as never, 1, 5, new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT' }));
    expect(() => table.consumeMany([1] as never, 1, 5, new Uint8Array(1))).toThrow(TypeError);
    expect(table.consume('k', 1, 5)).toBe(true);
    table.close();
    expect(() => table.consume('k', 1, 5)).toThrow(TypeError);
    expect(() => table.close()).not.toThrow();
  });
});

describe('helpers that take what another call made (found by an outside attack)', () => {
  const coded = (code: string, name: RegExp) => expect.objectContaining({ code, message: expect.stringMatching(name) });

  it('allOf refuses a limiter given twice (it would spend twice on one table) and names what is not a limiter', () => {
    const l = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 60_000 }) });
    const other = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 1000 }) });
    expect(() => allOf(l, other, l)).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /limiters\[0\].*limiters\[2\]/));
    expect(l.peek('a').remaining).toBe(5);
    expect(() => allOf(5 as never)).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /a Limiter for limiters\[0\] but received 5/));
    expect(() => allOf(l, {} as never)).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /limiters\[1\]/));
    expect(() => allOf()).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /limiters/));
    l.close();
    other.close();
  });

  it('describePolicy refuses what is not a policy', () => {
    expect(() => describePolicy({} as never)).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT' }));
    expect(() => describePolicy({ kind: 'fixedWindow', limit: -1, windowMs: 10 } as never)).toThrow(coded('TOLLGATE_OUT_OF_RANGE', /limit/));
    expect(describePolicy(fixedWindow({ limit: 5, windowMs: 1000 }))).toBe('fixedWindow 5 per 1000 ms');
  });

  it('backoffDelay checks its policy, attempt and floor', () => {
    const policy = retryPolicy({ random: () => 0.5 });
    expect(backoffDelay(policy, 2)).toBe(100);
    expect(backoffDelay(policy, 2, 250)).toBe(250);
    expect(() => backoffDelay({} as never, 1)).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /policy/));
    expect(() => backoffDelay(policy, 'x' as never)).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /attempt/));
    expect(() => backoffDelay(policy, -1)).toThrow(coded('TOLLGATE_OUT_OF_RANGE', /attempt/));
    expect(() => backoffDelay(policy, 2, Number.NaN)).toThrow(coded('TOLLGATE_OUT_OF_RANGE', /floorMs/));
    expect(() => backoffDelay(policy, 2, Infinity)).toThrow(coded('TOLLGATE_OUT_OF_RANGE', /floorMs/));
    expect(() => backoffDelay({ ...policy, random: () => Number.NaN }, 2)).toThrow(coded('TOLLGATE_OUT_OF_RANGE', /policy\.random/));
    expect(() => backoffDelay({ ...policy, baseDelayMs: Number.NaN }, 2)).toThrow(coded('TOLLGATE_OUT_OF_RANGE', /policy\.baseDelayMs/));
  });

  it('metricsHandler and registerPrometheus check their limiters at once, not at the first scrape', () => {
    expect(() => metricsHandler({} as never)).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /limiters\[0\]/));
    expect(() => registerPrometheus({ Gauge: class {} as never }, { registerMetric() {} } as never, 5 as never)).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /limiters\[0\]/));
  });

  it('registerPrometheus checks its client and registry, and refuses a second registration on one registry', async () => {
    const promClient = await import('prom-client');
    const a = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 1000 }), name: 'a' });
    const b = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 1000 }), name: 'b' });
    const registry = new promClient.Registry();
    expect(() => registerPrometheus(null as never, registry, a)).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /client/));
    expect(() => registerPrometheus(promClient, {} as never, a)).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /registry/));
    expect(() => registerPrometheus(promClient, registry)).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /limiters/));
    registerPrometheus(promClient, registry, a);
    expect(() => registerPrometheus(promClient, registry, b)).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /one call/));
    a.close();
    b.close();
  });

  it('two limiters of one name would share one series: refused, naming both', () => {
    const a = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 1000 }), name: 'same' });
    const b = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 1000 }), name: 'same' });
    expect(() => toPrometheus(a, b)).toThrow(coded('TOLLGATE_INVALID_ARGUMENT', /limiters\[0\].*limiters\[1\]/));
    a.close();
    b.close();
  });
});
