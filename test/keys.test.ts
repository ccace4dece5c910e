// Keys are exact JS strings on every engine: the same length bound, no two strings merged.
import { describe, expect, it } from 'vitest';
import { fixedWindow, Limiter, MAX_KEY_LENGTH } from '../src/index.js';
import { loadNative } from '../src/engine/load-native.js';
import { NativeTable } from '../src/engine/native-table.js';
import { edgeKeys, engines } from './helpers/engines.js';

const policy = fixedWindow({ limit: 3, windowMs: 60_000 });

describe.each(engines())('%s engine', (engine) => {
  it('accepts every key of up to 1,024 UTF-16 units, multi-byte and astral included (regression)', () => {
    const limiter = new Limiter({ policy, engine, capacity: 1000 });
    for (const key of ['€'.repeat(MAX_KEY_LENGTH), '😀'.repeat(MAX_KEY_LENGTH / 2), 'x'.repeat(MAX_KEY_LENGTH)]) {
      expect(limiter.consume(key).remaining).toBe(2);
      expect(limiter.tryConsume(key)).toBe(true);
      expect(limiter.peek(key).remaining).toBe(1);
      expect(limiter.block(key, 1000)).toBe(true);
      expect(limiter.reset(key)).toBe(true);
    }
    for (const key of ['€'.repeat(MAX_KEY_LENGTH + 1), '😀'.repeat(MAX_KEY_LENGTH / 2) + 'x']) {
      expect(() => limiter.consume(key)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'TOLLGATE_OUT_OF_RANGE' }));
    }
  });

  it('keeps the 2,048 lone surrogates and U+FFFD apart: each its own key (regression)', () => {
    const limiter = new Limiter({ policy, engine, capacity: 10_000 });
    let allowed = 0;
    for (let unit = 0xd800; unit <= 0xdfff; unit++) allowed += limiter.tryConsume(String.fromCharCode(unit)) ? 1 : 0;
    allowed += limiter.tryConsume('\ufffd') ? 1 : 0;
    expect(allowed).toBe(2049);
    expect(limiter.peek('\ud800').remaining).toBe(2);
  });

  it('edge keys stay distinct in consumeMany too', () => {
    const limiter = new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 60_000 }), engine, capacity: 10_000 });
    const keys = [...new Set(edgeKeys())];
    expect([...limiter.consumeMany(keys)]).toEqual(keys.map(() => 1));
    expect([...limiter.consumeMany(keys)]).toEqual(keys.map(() => 0));
  });

  it('reports heavy hitters with their text and length in code units', () => {
    const limiter = new Limiter({ policy, engine, capacity: 1000, topKeys: true });
    const long = '€'.repeat(300);
    for (let i = 0; i < 5; i++) {
      limiter.consume(long);
      limiter.consume('\ud800x');
      limiter.consume('café');
    }
    const top = limiter.topKeys(3);
    const byStart = (prefix: string) => top.find((t) => t.key.startsWith(prefix));
    expect(byStart('€')).toMatchObject({ count: 5, truncated: engine === 'native' });
    expect(long.startsWith(byStart('€')!.key)).toBe(true);
    expect(byStart('\ud800')).toMatchObject({ key: '\ud800x', count: 5, truncated: false });
    expect(byStart('caf')).toMatchObject({ key: 'café', count: 5, truncated: false });
  });
});

describe.runIf(engines().includes('native'))('the raw addon', () => {
  it('refuses over-long keys with a coded TypeError, never a code-less one', () => {
    const { addon } = loadNative();
    const table = new NativeTable(addon!, {
      kind: 1,
      limit: 3,
      windowMs: 1000,
      rateTokens: 0,
      rateIntervalMs: 0,
      capacity: 100,
      shards: 0,
      evict: true,
      preallocate: false,
      detail: new Float64Array(5),
    });
    expect(table.consume('€'.repeat(1024))).toBe(true);
    for (const bad of ['', '€'.repeat(1025), 5, null, {}]) {
      expect(() => table.consume(bad as string)).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT' }));
    }
    table.close();
    expect(() => table.consume('a')).toThrow(expect.objectContaining({ code: 'TOLLGATE_CLOSED' }));
  });
});
