// A seeded fuzz run of the public API over both engines: every call either throws a coded
// TypeError/RangeError (identically on both) or decides identically on both; a rejected call
// changes no state; nothing crashes; after close() every call throws TOLLGATE_CLOSED.
import { describe, expect, it } from 'vitest';
import { fixedWindow, leakyBucket, Limiter, ManualClock, slidingWindow, tokenBucket, type Policy } from '../src/index.js';
import { engines, seededRandom } from './helpers/engines.js';

const CALLS = 120_000;

class UserError extends Error {}
const hostile = {
  valueOf() {
    throw new UserError('valueOf');
  },
  toString() {
    throw new UserError('toString');
  },
};
const keys: unknown[] = [
  'a',
  'b',
  'c',
  'user:1',
  'é',
  '\ud800',
  '\udfff',
  '\ufffd',
  '😀',
  'x'.repeat(1024),
  '€'.repeat(1024),
  '\u0000u:61',
  '',
  'x'.repeat(1025),
  '€'.repeat(1025),
  42,
  null,
  undefined,
  {},
  ['a'],
  hostile,
  Symbol('k'),
  1n,
  new String('a'),
];
const goodKeys = keys.filter((k): k is string => typeof k === 'string' && k.length > 0 && k.length <= 1024);
const numbers: unknown[] = [1, 1, 1, 2, 3, 7, 50, 0, -1, -0, 0.5, 1.5, Number.NaN, Infinity, -Infinity, 2 ** 53, 2 ** 53 - 1, 2 ** 31, '2', null, hostile, 10n, []];
const options: unknown[] = [
  undefined,
  undefined,
  undefined,
  { limit: 3 },
  { limit: 10 },
  { limit: 1 },
  {},
  { limit: 0 },
  { limit: Number.NaN },
  { limit: 2 ** 53 },
  { limit: '3' },
  null,
  5,
  'x',
  [],
  new Proxy({ limit: 4 }, {}),
  {
    get limit() {
      throw new UserError('limit getter');
    },
  },
];

type Outcome = { threw: false; value: unknown } | { threw: true; name: string; code: unknown; message: string };
function attempt(call: () => unknown): Outcome {
  try {
    const value = call();
    return { threw: false, value: value instanceof Uint8Array ? [...value] : value };
  } catch (error) {
    const e = error as Error & { code?: unknown };
    return { threw: true, name: e.name, code: e.code, message: e.message };
  }
}

describe.runIf(engines().length === 2)('fuzzing the public API on both engines', () => {
  const policies: [string, Policy][] = [
    ['fixed window', fixedWindow({ limit: 5, windowMs: 1000 })],
    ['sliding window', slidingWindow({ limit: 5, windowMs: 1000 })],
    ['token bucket', tokenBucket({ capacity: 5, refillPerSecond: 3 })],
    ['leaky bucket', leakyBucket({ burst: 5, ratePerSecond: 3 })],
  ];

  it.each(policies)(`%s: ${(CALLS / 4).toLocaleString('en')} random calls, each on both engines`, (_label, policy) => {
    const random = seededRandom(0xf022 + policy.kind.length);
    const pick = <T>(pool: readonly T[]): T => pool[Math.floor(random() * pool.length)] as T;
    const clock = new ManualClock(5_000);
    const make = (engine: 'native' | 'js') => new Limiter({ policy, engine, clock, capacity: 1000 });
    let native = make('native');
    let js = make('js');
    const snapshot = (l: Limiter) => goodKeys.map((k) => l.peek(k));
    let rejected = 0;
    for (let i = 0; i < CALLS / 4; i++) {
      if (random() < 0.05) clock.advance(Math.floor(random() * 700));
      const which = Math.floor(random() * 8);
      const args = [pick(keys), pick(numbers), pick(options)] as const;
      const batch = Array.from({ length: 1 + Math.floor(random() * 5) }, () => (random() < 0.9 ? pick(goodKeys) : pick(keys)));
      const keyList = random() < 0.2 ? new Proxy(batch, {}) : random() < 0.05 ? 'not an array' : batch;
      const out = random() < 0.9 ? undefined : pick([new Uint8Array(1), new Uint8Array(10), [0, 0], 'x']);
      const run = (l: Limiter) => () => {
        switch (which) {
          case 0:
            return l.consume(args[0] as string, args[1] as number, args[2] as never);
          case 1:
            return l.tryConsume(args[0] as string, args[1] as number, args[2] as never);
          case 2:
            return l.peek(args[0] as string, args[1] as number, args[2] as never);
          case 3:
            return l.refund(args[0] as string, args[1] as number, args[2] as never);
          case 4:
            return l.reset(args[0] as string);
          case 5:
            return l.block(args[0] as string, args[1] as number);
          case 6:
            return l.consumeMany(keyList as string[], args[1] as number, out as Uint8Array);
          default:
            return l.consume(args[0] as string);
        }
      };
      const before = random() < 0.2 ? snapshot(native) : undefined;
      const a = attempt(run(native));
      const b = attempt(run(js));
      expect(a, `call ${i} (${which})`).toEqual(b);
      if (a.threw) {
        rejected++;
        const userError = a.message === 'valueOf' || a.message === 'toString' || a.message === 'limit getter';
        if (!userError) {
          expect(['TypeError', 'RangeError'], `call ${i}: ${a.message}`).toContain(a.name);
          expect(a.code, `call ${i}: ${a.message}`).toMatch(/^TOLLGATE_/);
        }
        if (before !== undefined) expect(snapshot(native), `call ${i} changed state`).toEqual(before);
        expect(snapshot(native)).toEqual(snapshot(js));
      }
      if (i % 10_000 === 9_999) {
        // After close, every call is a TOLLGATE_CLOSED TypeError, on both engines; then start over.
        native.close();
        js.close();
        const c = attempt(run(native));
        expect(c).toEqual(attempt(run(js)));
        if (c.threw && which !== 6) expect(c.code).toBe(c.message === 'valueOf' ? undefined : 'TOLLGATE_CLOSED');
        native = make('native');
        js = make('js');
      }
    }
    expect(rejected).toBeGreaterThan(CALLS / 40);
    expect(snapshot(native)).toEqual(snapshot(js));
  });
});
