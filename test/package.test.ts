// The package as users load it: ESM import by name, and require() from CommonJS (Node >= 20.19).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('the tollgate package', () => {
  it('loads by name with import and with require', () => {
    const viaImport = execFileSync(process.execPath, ['--input-type=module', '-e', "import { Limiter } from 'tollgate'; console.log(typeof Limiter)"], { encoding: 'utf8' });
    const viaRequire = execFileSync(process.execPath, ['-e', "const { Limiter, rateLimit } = require('tollgate'); console.log(typeof Limiter, typeof rateLimit)"], { encoding: 'utf8' });
    expect(viaImport.trim()).toBe('function');
    expect(viaRequire.trim()).toBe('function function');
  });
});

describe('what child processes load (regression: fixtures imported a stale dist/)', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const files = (dir: string, ending: string): string[] =>
    readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith(ending))
      .map((f) => path.join(dir, f));

  it('dist/ was built from the sources under test, file for file', () => {
    for (const source of files('src', '.ts')) {
      const built = path.join(root, 'dist', source.slice('src/'.length).replace(/\.ts$/, '.js'));
      expect(existsSync(built), built).toBe(true);
      expect(statSync(built).mtimeMs, built).toBeGreaterThanOrEqual(statSync(path.join(root, source)).mtimeMs);
    }
  });

  it('the addon was built after every native source changed', () => {
    const addon = path.join(root, 'build', 'Release', 'tollgate.node');
    if (!existsSync(addon) && !process.env.CI) return;
    const builtAt = statSync(addon).mtimeMs;
    for (const source of [...files('native/core', '.cc'), ...files('native/core', '.h'), ...files('native/binding', '.cc'), ...files('native/binding', '.h')]) {
      expect(builtAt, source).toBeGreaterThanOrEqual(statSync(path.join(root, source)).mtimeMs);
    }
  });

  it('the constants C++, TypeScript and Lua share agree', async () => {
    const header = readFileSync(path.join(root, 'native/core/constants.h'), 'utf8');
    const cpp = (name: string) => {
      const m = new RegExp(`${name} = ([^;]+);`).exec(header);
      if (m === null) throw new Error(`${name} not in constants.h`);
      const text = (m[1] as string).replace(/int64_t\{1\} << (\d+)/, (_s, bits: string) => String(2 ** Number(bits)));
      return Number(text);
    };
    const ts = await import('../src/constants.js');
    expect(cpp('kMaxKeyUnits')).toBe(ts.MAX_KEY_LENGTH);
    expect(cpp('kMaxBlockMs')).toBe(ts.MAX_BLOCK_MS);
    expect(cpp('kMaxShards')).toBe(ts.MAX_SHARDS);
  });
});
