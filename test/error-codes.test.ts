// Every code src/ and the addon can raise or warn with is in the catalogue (src/common/codes.ts)
// and explained in docs/errors.md under its group, and the catalogue holds nothing else.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { CODES, type AcquireErrorCode, type CodeGroup, type CodeKind, type RedisErrorCode, type TollgateCode, type TollgateErrorCode, type TollgateWarningCode } from '../src/common/codes.js';
import { isRedisFailure } from '../src/common/errors.js';
import type * as Public from '../src/index.js';
import type * as PublicClient from '../src/client-entry.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const CATALOGUE_FILE = path.join('src', 'common', 'codes.ts');

/** The files codes are raised from: src/**\/*.ts (the catalogue aside) and the addon's binding layer. */
function sources(): { file: string; text: string }[] {
  const ts = readdirSync(path.join(root, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join('src', f))
    .filter((f) => f !== CATALOGUE_FILE);
  const native = readdirSync(path.join(root, 'native', 'binding'))
    .filter((f) => f.endsWith('.cc') || f.endsWith('.h'))
    .map((f) => path.join('native', 'binding', f));
  return [...ts, ...native].map((file) => ({ file, text: readFileSync(path.join(root, file), 'utf8') }));
}

/** Each group's section of docs/errors.md, by its heading. */
const SECTIONS: Readonly<Record<CodeGroup, string>> = {
  arguments: 'Arguments and options',
  lifecycle: 'Lifecycle: loading and closing',
  'shared memory': 'Shared memory and shared stores',
  redis: 'Redis',
  client: 'Waiting, queues and upstream APIs',
  warnings: 'Warnings',
};

const files = sources();
const catalogued = Object.keys(CODES) as TollgateCode[];
const kindsOf = (code: TollgateCode): readonly CodeKind[] => CODES[code].kinds;

/** Environment variables share the prefix: read as process.env.NAME, they are not codes. */
const envVars = new Set(files.flatMap(({ text }) => [...text.matchAll(/process\.env\.(TOLLGATE_[A-Z_]+)/g)].map((m) => m[1] as string)));

/** Every TOLLGATE_ name in the sources, comments included, but a bare prefix (`TOLLGATE_REDIS_`). */
const named = new Set(files.flatMap(({ text }) => [...text.matchAll(/TOLLGATE_[A-Z_]+/g)].map((m) => m[0])).filter((name) => !name.endsWith('_') && !envVars.has(name)));

/** How each code is used, as far as reading the text tells: inside an emitWarning call, or as a quoted literal elsewhere. */
function uses(): { warned: Set<string>; raised: Set<string>; calls: number; read: number } {
  const warned = new Set<string>();
  const raised = new Set<string>();
  let calls = 0;
  let read = 0;
  for (const { file, text } of files) {
    calls += text.split('emitWarning(').length - 1;
    // A warning's code is the first `code: '…'` after emitWarning( (every call passes { code }).
    const rest = text.replace(/emitWarning\([\s\S]*?code:\s*'(TOLLGATE_[A-Z_]+)'/g, (_call, code: string) => {
      warned.add(code);
      read++;
      return '';
    });
    const literal = file.endsWith('.ts') ? /'(TOLLGATE_[A-Z_]+)'/g : /"(TOLLGATE_[A-Z_]+)"/g;
    for (const m of rest.matchAll(literal)) if (!envVars.has(m[1] as string)) raised.add(m[1] as string);
  }
  return { warned, raised, calls, read };
}

describe('the catalogue of codes', () => {
  it('the scan sees the sources: known codes, environment variables and every emitWarning call', () => {
    expect([...named]).toContain('TOLLGATE_CLOSED');
    expect([...named]).toContain('TOLLGATE_OUT_OF_MEMORY'); // raised only by the addon
    expect([...envVars]).toContain('TOLLGATE_ENGINE');
    expect([...named]).not.toContain('TOLLGATE_ENGINE');
    const { calls, read } = uses();
    expect(calls).toBeGreaterThan(5);
    expect(read, 'an emitWarning call without { code: ... }').toBe(calls);
  });

  it('holds every code src/ and native/binding/ name, and only those', () => {
    expect([...named].filter((code) => !(code in CODES)).sort(), 'raised but not catalogued').toEqual([]);
    expect(
      catalogued.filter((code) => !named.has(code)),
      'catalogued but never raised',
    ).toEqual([]);
    expect(
      catalogued.filter((code) => envVars.has(code)),
      'a code spelt like an environment variable',
    ).toEqual([]);
  });

  it('gives each code the kinds it is used as: warnings in emitWarning, errors everywhere else', () => {
    const { warned, raised } = uses();
    const wrong = catalogued.flatMap((code) => {
      const kinds = kindsOf(code);
      const found = [...(raised.has(code) ? ['error'] : []), ...(warned.has(code) ? ['warning'] : [])];
      return [...kinds].sort().join() === found.join() ? [] : [`${code}: catalogued as ${kinds.join(' and ')}, used as ${found.join(' and ') || 'nothing'}`];
    });
    expect(wrong).toEqual([]);
  });

  it('says what each code means and what to do, in one line each', () => {
    for (const code of catalogued) {
      const { meaning, action } = CODES[code];
      const kinds = kindsOf(code);
      expect(kinds.length, code).toBeGreaterThan(0);
      for (const line of [meaning, action]) {
        expect(line, code).toMatch(/^\S.*\.$/);
        expect(line, code).not.toContain('\n');
      }
      expect(CODES[code].group === 'warnings', `${code}: only warnings are grouped as such`).toBe(kinds.length === 1 && kinds[0] === 'warning');
    }
    expect(Object.isFrozen(CODES)).toBe(true);
    expect(Object.isFrozen(CODES.TOLLGATE_CLOSED)).toBe(true);
  });

  it('isRedisFailure tells the Redis error codes from the others', () => {
    for (const code of catalogued.filter((c) => kindsOf(c).includes('error'))) expect(isRedisFailure(code), code).toBe(code.startsWith('TOLLGATE_REDIS_'));
    expect(isRedisFailure('TOLLGATE_REDIS_TIMEOUT')).toBe(true);
    expect(isRedisFailure(undefined)).toBe(false);
    expect(isRedisFailure(42)).toBe(false);
  });

  it('derives the public unions from it, as they were', () => {
    expectTypeOf<RedisErrorCode>().toEqualTypeOf<
      | 'TOLLGATE_REDIS_TIMEOUT'
      | 'TOLLGATE_REDIS_ERROR'
      | 'TOLLGATE_REDIS_UNAVAILABLE'
      | 'TOLLGATE_REDIS_LATE'
      | 'TOLLGATE_REDIS_STATE_MISMATCH'
      | 'TOLLGATE_REDIS_OUT_OF_MEMORY'
      | 'TOLLGATE_REDIS_READONLY'
      | 'TOLLGATE_REDIS_NO_PERMISSION'
      | 'TOLLGATE_REDIS_MOVING'
      | 'TOLLGATE_REDIS_UNSUPPORTED'
    >();
    expectTypeOf<AcquireErrorCode>().toEqualTypeOf<'TOLLGATE_ACQUIRE_TIMEOUT' | 'TOLLGATE_ACQUIRE_ABORTED' | 'TOLLGATE_ACQUIRE_NEVER'>();
    expectTypeOf<'TOLLGATE_INVALID_ARGUMENT' | 'TOLLGATE_CLOSED' | 'TOLLGATE_NATIVE_UNAVAILABLE' | RedisErrorCode | AcquireErrorCode>().toExtend<TollgateErrorCode>();
    expectTypeOf<'TOLLGATE_NATIVE_UNAVAILABLE' | 'TOLLGATE_REDIS_EVICTION' | 'TOLLGATE_CALLBACK_ERROR'>().toExtend<TollgateWarningCode>();
    expectTypeOf<'TOLLGATE_REDIS_EVICTION'>().not.toExtend<TollgateErrorCode>();
    // What the package exports is the catalogue's.
    expectTypeOf<Public.TollgateErrorCode>().toEqualTypeOf<TollgateErrorCode>();
    expectTypeOf<Public.TollgateWarningCode>().toEqualTypeOf<TollgateWarningCode>();
    expectTypeOf<Public.AcquireErrorCode>().toEqualTypeOf<AcquireErrorCode>();
    expectTypeOf<PublicClient.QueueFullError['code']>().toExtend<TollgateErrorCode>();
  });
});

describe('docs/errors.md', () => {
  const text = readFileSync(path.join(root, 'docs', 'errors.md'), 'utf8');
  /** Each `### \`CODE\`` heading with the `## ` section it is under, in order. */
  const headings: [code: string, section: string][] = [];
  let section = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('## ')) section = line.slice(3);
    const code = /^### `(TOLLGATE_[A-Z_]+)`$/.exec(line)?.[1];
    if (code !== undefined) headings.push([code, section]);
  }
  const sectionOf = new Map(headings);

  it('explains every code under its group, and no other', () => {
    for (const code of named) expect(text, code).toContain(code);
    expect(catalogued.filter((code) => sectionOf.get(code) !== SECTIONS[CODES[code].group]).map((code) => `${code} under ${sectionOf.get(code) ?? 'no heading'}`)).toEqual([]);
    expect(
      headings.map(([code]) => code).filter((code) => !(code in CODES)),
      'a heading for no code',
    ).toEqual([]);
    expect(headings.length, 'a code explained twice').toBe(sectionOf.size);
  });

  it('names no TOLLGATE_ code that does not exist, environment variables aside', () => {
    const mentioned = new Set([...text.matchAll(/TOLLGATE_[A-Z_]+/g)].map((m) => m[0]).filter((name) => !name.endsWith('_')));
    expect([...mentioned].filter((name) => !(name in CODES) && !envVars.has(name))).toEqual([]);
  });
});
