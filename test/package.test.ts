// The package as users load it: ESM import by name, and require() from CommonJS (Node >= 20.19).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** Each entry point, and one value it exports (the core at the root, each integration at its subpath). */
const ENTRIES: Readonly<Record<string, string>> = {
  tollgate: 'Limiter',
  'tollgate/http': 'rateLimit',
  'tollgate/client': 'limitedFetch',
  'tollgate/metrics': 'toPrometheus',
  'tollgate/adapters': 'ExpressRateLimitStore',
};

describe('the tollgate package', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { exports: Record<string, string | Record<string, string>> };

  it('loads by name with import and with require, every entry point', () => {
    const names = Object.entries(ENTRIES);
    const imports = names.map(([entry, name], i) => `import { ${name} as v${i} } from '${entry}';`).join(' ');
    const viaImport = execFileSync(process.execPath, ['--input-type=module', '-e', `${imports} console.log(${names.map((_, i) => `typeof v${i}`).join(', ')})`], {
      encoding: 'utf8',
    });
    const viaRequire = execFileSync(process.execPath, ['-e', `console.log(${names.map(([entry, name]) => `typeof require('${entry}').${name}`).join(', ')})`], {
      encoding: 'utf8',
    });
    expect(viaImport.trim()).toBe(names.map(() => 'function').join(' '));
    expect(viaRequire.trim()).toBe(names.map(() => 'function').join(' '));
  });

  it('exports one entry per layer above the core, each with types, import and default, and nothing else', () => {
    const subpaths = Object.keys(ENTRIES).map((entry) => entry.replace(/^tollgate/, '.'));
    expect(Object.keys(manifest.exports).sort()).toEqual([...subpaths, './package.json'].sort());
    for (const subpath of subpaths) {
      const conditions = manifest.exports[subpath] as Record<string, string>;
      // "types" first: TypeScript takes the first condition it knows.
      expect(Object.keys(conditions), subpath).toEqual(['types', 'import', 'default']);
      expect(conditions.import, subpath).toBe(conditions.default);
      expect(conditions.types, subpath).toBe((conditions.import as string).replace(/\.js$/, '.d.ts'));
      expect(existsSync(path.join(root, conditions.import as string)), subpath).toBe(true);
      expect(existsSync(path.join(root, conditions.types as string)), subpath).toBe(true);
    }
  });

  it('each name is exported once: the root holds the core, no integration', async () => {
    const seen = new Map<string, string>();
    for (const entry of Object.keys(ENTRIES)) {
      const conditions = manifest.exports[entry.replace(/^tollgate/, '.')] as Record<string, string>;
      const loaded = (await import(path.join(root, conditions.import as string))) as Record<string, unknown>;
      for (const name of Object.keys(loaded)) {
        expect(seen.get(name), `${name} in ${entry}`).toBeUndefined();
        seen.set(name, entry);
      }
    }
    for (const [entry, name] of Object.entries(ENTRIES)) expect(seen.get(name)).toBe(entry);
  });

  it('its lockfile agrees with package.json, so `npm install` leaves it unchanged', () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
    const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
      name: string;
      version: string;
      lockfileVersion: number;
      packages: Record<string, Record<string, unknown>>;
    };
    expect(lock).toMatchObject({ name: manifest.name, version: manifest.version, lockfileVersion: 3 });
    const rootEntry = lock.packages[''] ?? {};
    for (const field of ['name', 'version', 'license', 'dependencies', 'devDependencies', 'peerDependencies', 'peerDependenciesMeta', 'engines', 'bin']) {
      expect(rootEntry[field], field).toEqual(manifest[field]);
    }
    // Every dependency the manifest names is locked at a version.
    for (const field of ['dependencies', 'devDependencies'] as const) {
      for (const name of Object.keys((manifest[field] ?? {}) as object)) {
        expect(lock.packages[`node_modules/${name}`]?.version, name).toBeTypeOf('string');
      }
    }
    expect(existsSync(path.join(root, 'LICENSE'))).toBe(true);
    expect(readFileSync(path.join(root, 'LICENSE'), 'utf8')).toMatch(/MIT License/);
    expect(manifest.license).toBe('MIT');
  });

  it('the published declarations carry no test-only option (testHooks) nor what only tests call', () => {
    // Every declaration file an entry point reaches, following its imports.
    const reached = new Set<string>();
    const visit = (file: string) => {
      if (reached.has(file)) return;
      reached.add(file);
      const text = readFileSync(file, 'utf8');
      for (const [, spec] of text.matchAll(/(?:from\s*|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)) {
        visit(path.resolve(path.dirname(file), (spec as string).replace(/\.js$/, '.d.ts')));
      }
    };
    for (const conditions of Object.values(manifest.exports)) if (typeof conditions !== 'string') visit(path.join(root, conditions.types as string));
    expect(reached.size).toBeGreaterThan(Object.keys(ENTRIES).length);
    expect([...reached].filter((file) => /testHooks|holdShardLock/.test(readFileSync(file, 'utf8')))).toEqual([]);
    // Nor any declaration in dist/, reachable or not: stripInternal leaves them out (tsconfig.json).
    const all = readdirSync(path.join(root, 'dist'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.d.ts'));
    expect(all.length).toBeGreaterThanOrEqual(reached.size);
    expect(all.filter((f) => /testHooks|holdShardLock/.test(readFileSync(path.join(root, 'dist', f), 'utf8')))).toEqual([]);
  });

  it('the README and the guides link only to files and headings that exist', () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const pages = [
      'README.md',
      ...readdirSync(path.join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    // GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
    const anchors = (file: string) =>
      new Set(
        readFileSync(path.join(root, file), 'utf8')
          .split('\n')
          .filter((l) => /^#{1,6} /.test(l))
          .map((l) =>
            l
              .replace(/^#+ /, '')
              .toLowerCase()
              .replace(/[^\p{L}\p{N} _-]/gu, '')
              .replace(/ /g, '-'),
          ),
      );
    const broken: string[] = [];
    for (const page of pages) {
      const text = readFileSync(path.join(root, page), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target as string)) continue;
        const [file, anchor] = (target as string).split('#') as [string, string | undefined];
        const resolved = file === '' ? page : path.join(path.dirname(page), file);
        if (!existsSync(path.join(root, resolved))) broken.push(`${page}: ${target}`);
        else if (anchor !== undefined && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) broken.push(`${page}: ${target} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
    expect(pages.length).toBeGreaterThan(5);
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

  it('the constants C++, TypeScript and Lua share agree, by value', async () => {
    const ts = await import('../src/common/constants.js');
    const places = await import('../src/common/places.js');
    const { PolicyCode } = await import('../src/common/policies.js');
    const { DECIDE_LUA } = await import('../src/redis/lua.js');
    const { loadNative } = await import('../src/engine/load-native.js');
    const { NativeTable } = await import('../src/engine/native-table.js');
    const addon = loadNative().addon;
    if (addon === undefined && !process.env.CI) return;
    // What the core compiled with (native/core/constants.h, policy.h), as the addon exports it.
    expect(addon?.constants).toEqual({
      maxKeyLength: ts.MAX_KEY_LENGTH,
      maxBlockMs: ts.MAX_BLOCK_MS,
      maxShards: ts.MAX_SHARDS,
      maxCapacity: ts.MAX_CAPACITY,
      bucketSlots: ts.BUCKET_SLOTS,
      headroomNum: ts.HEADROOM_NUM,
      headroomDen: ts.HEADROOM_DEN,
      keysPerAutoShard: ts.KEYS_PER_AUTO_SHARD,
      maxAutoShards: ts.MAX_AUTO_SHARDS,
      maxProduct: ts.MAX_PRODUCT,
      defaultTopKeysPeriodMs: ts.DEFAULT_TOP_KEYS_PERIOD_MS,
      abiVersion: ts.ABI_VERSION,
      closedMessage: ts.CLOSED_MESSAGE,
      maxPlaceHolders: places.MAX_PLACE_HOLDERS,
      maxPlaces: places.MAX_PLACES,
      detail: { ...ts.Detail },
      policyCodes: { FixedWindow: PolicyCode.FixedWindow, SlidingWindow: PolicyCode.SlidingWindow, TokenBucket: PolicyCode.TokenBucket, Gcra: PolicyCode.Gcra },
    });
    // The Lua scripts are written from the TypeScript values: no number of theirs is typed twice.
    for (const code of [PolicyCode.FixedWindow, PolicyCode.SlidingWindow, PolicyCode.TokenBucket]) expect(DECIDE_LUA).toContain(`p.kind == ${code} `);
    // The native layout plan and the TS engine's copy of it give the same slots, for many sizes.
    const { plannedCapacity } = await import('../src/engine/table-engine.js');
    if (addon !== undefined) {
      for (const capacity of [1, 56, 1000, 8191, 8192, 100_000, 1_000_000, 5_000_000]) {
        for (const shards of [0, 1, 3, 64]) {
          const t = new NativeTable(addon, {
            kind: 1,
            limit: 5,
            windowMs: 1000,
            rateTokens: 0,
            rateIntervalMs: 0,
            capacity,
            shards,
            evict: true,
            preallocate: false,
            detail: new Float64Array(5),
          });
          const st = t.stats();
          expect({ capacity: st.slots, shards: st.shards }, `${capacity}/${shards}`).toEqual(plannedCapacity(capacity, shards));
          t.close();
        }
      }
    }
  });
});
