// The package as a user installs it: `npm pack`, then `npm install <tarball>` into a fresh
// project on a PATH with node and nothing else (no cmake, c++, g++ or make). The prebuilt binary
// must load, decide, and share a table across processes; without it the TypeScript engine runs
// with one warning that names the fix.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const npmCli = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');

let work: string;
let project: string;
let tarball: string;
let packed: { path: string }[];
let nodeOnly: string;
let installOutput: string;

/** The environment of a user's shell with node and nothing else on PATH. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { HOME: process.env.HOME, PATH: nodeOnly, npm_config_update_notifier: 'false' };
  return env;
}

function runInProject(source: string): { status: number | null; stdout: string; stderr: string } {
  const file = path.join(project, `check-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, source);
  const r = spawnSync(process.execPath, [file], { cwd: project, env: userEnv(), encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const CHECK = `
import { Limiter, fixedWindow, nativeInfo, sharedMemory } from 'tollgate';
import { ExpressRateLimitStore, FastifyRateLimitStore, RateLimiterTollgate } from 'tollgate/adapters';
const warnings = [];
// The adapters work without their libraries installed (none is, here): they import nothing of them.
const store = new ExpressRateLimitStore();
store.init({ windowMs: 1000 });
const adapters = [store.increment('a').totalHits, new FastifyRateLimitStore() instanceof FastifyRateLimitStore, (await new RateLimiterTollgate({ points: 1 }).consume('a')).remainingPoints];
process.on('warning', (w) => warnings.push({ code: w.code, message: w.message }));
const limiter = new Limiter({ policy: fixedWindow({ limit: 2, windowMs: 60_000 }) });
const decisions = [limiter.consume('k').allowed, limiter.consume('k').allowed, limiter.consume('k').allowed];
const again = new Limiter({ policy: fixedWindow({ limit: 2, windowMs: 60_000 }) });
again.consume('k');
await new Promise((r) => setImmediate(r));
console.log(JSON.stringify({ info: nativeInfo(), engine: limiter.engine, decisions, warnings, adapters }));
`;

describe.runIf(process.platform === 'linux' && process.arch === 'x64')('installing the packed package without a compiler', () => {
  beforeAll(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'tollgate-install-'));
    nodeOnly = path.join(work, 'bin');
    mkdirSync(nodeOnly);
    symlinkSync(process.execPath, path.join(nodeOnly, 'node'));
    // prepack compiles dist/ and the prebuilt binary from the sources under test: this host's alone
    // (the four-target zig cross build, minutes on a cold cache, is npm run test:matrix's).
    const out = execFileSync(process.execPath, [npmCli, 'pack', '--json', '--pack-destination', work], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      // With the host's g++ (as the tests' own addon build): zig's cold start is the matrix's.
      env: { ...process.env, TOLLGATE_PREBUILD_ONLY: 'linux-x64-glibc', TOLLGATE_PREBUILD_HOST_GXX: '1' },
    });
    const report = JSON.parse(out)[0] as { filename: string; files: { path: string }[] };
    tarball = path.join(work, report.filename);
    packed = report.files;
    project = path.join(work, 'app');
    mkdirSync(project);
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    const install = spawnSync(process.execPath, [npmCli, 'install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], { cwd: project, env: userEnv(), encoding: 'utf8' });
    if (install.status !== 0) throw new Error(`npm install failed:\n${install.stdout}\n${install.stderr}`);
    installOutput = install.stdout + install.stderr;
  }, 600_000);
  afterAll(() => {
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('the PATH really has no build tools', () => {
    for (const tool of ['cmake', 'c++', 'g++', 'make', 'cc']) {
      expect(spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { env: userEnv() }).status, tool).not.toBe(0);
    }
    // The same check finds node, so it would find the others if they were there.
    expect(spawnSync('/bin/sh', ['-c', 'command -v node'], { env: userEnv() }).status).toBe(0);
  });

  it('holds what it needs and nothing else', () => {
    const files = packed.map((f) => f.path);
    for (const needed of [
      'package.json',
      'README.md',
      'LICENSE',
      'docs/api.md',
      'bin/tollgate.mjs',
      'bin/build-native.mjs',
      'CMakeLists.txt',
      ...['index', 'http-entry', 'client-entry', 'metrics-entry', 'adapters-entry'].flatMap((entry) => [`dist/${entry}.js`, `dist/${entry}.d.ts`]),
      'prebuilds/linux-x64/tollgate.glibc.node',
      'native/core/table.cc',
      'native/binding/addon.cc',
    ]) {
      expect(files).toContain(needed);
    }
    // Only the binary built now: none left from an earlier build of other sources.
    expect(files.filter((f) => f.startsWith('prebuilds/'))).toEqual(['prebuilds/linux-x64/tollgate.glibc.node']);
    const allowed =
      /^(package\.json|README\.md|LICENSE|docs\/[A-Za-z-]+\.md|CMakeLists\.txt|bin\/(tollgate|build-native)\.mjs|dist\/.+\.(js|d\.ts|js\.map|d\.ts\.map)|prebuilds\/linux-(x64|arm64)\/tollgate\.(glibc|musl)\.node|native\/(core|binding)\/[a-z_]+\.(cc|h))$/;
    expect(files.filter((f) => !allowed.test(f))).toEqual([]);
    // Every compiled module comes from a source that exists: no stale module of a renamed one.
    const orphans = files.filter((f) => f.startsWith('dist/') && !existsSync(path.join(root, 'src', f.slice(5).replace(/\.(d\.ts\.map|d\.ts|js\.map|js)$/, '.ts'))));
    expect(orphans).toEqual([]);
  });

  it('installs no build tool and runs no script: tollgate, @types/node and undici-types, and no warning', () => {
    // What npm put in the project, from its own record of the tree.
    const tree = JSON.parse(readFileSync(path.join(project, 'node_modules', '.package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
    const installed = Object.keys(tree.packages)
      .map((p) => p.replace(/^.*node_modules\//, ''))
      .sort();
    expect(installed).toEqual(['@types/node', 'tollgate', 'undici-types']);
    // No lifecycle script a package manager would run or ask to allow at install time.
    const manifest = JSON.parse(readFileSync(path.join(project, 'node_modules', 'tollgate', 'package.json'), 'utf8')) as {
      scripts?: Record<string, string>;
      dependencies?: Record<string, string>;
    };
    for (const script of ['preinstall', 'install', 'postinstall', 'prepare', 'preprepare', 'postprepare']) expect(manifest.scripts?.[script], script).toBeUndefined();
    expect(Object.keys(manifest.dependencies ?? {})).toEqual(['@types/node']);
    expect(installOutput).not.toMatch(/install-scripts|allowScripts|prepare/i);
    expect(installOutput).toMatch(/added 3 packages/);
  });

  it('loads the prebuilt native binary and decides', () => {
    const r = runInProject(CHECK);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { info: { loaded: boolean; source: string; path: string }; engine: string; decisions: boolean[]; warnings: unknown[]; adapters: unknown[] };
    expect(readdirSync(path.join(project, 'node_modules')).filter((d) => /rate-limit|^@fastify$/.test(d))).toEqual([]);
    expect(out.adapters).toEqual([1, true, 0]);
    expect(out.info).toMatchObject({ loaded: true, source: 'prebuilt' });
    expect(out.info.path).toMatch(/node_modules\/tollgate\/prebuilds\/linux-x64\/tollgate\.glibc\.node$/);
    expect(out.engine).toBe('native');
    expect(out.decisions).toEqual([true, true, false]);
    expect(out.warnings).toEqual([]);
  });

  it('shares one table across two processes', () => {
    const name = `install-${process.pid}`;
    const source = (n: number) => `
      import { Limiter, fixedWindow, sharedMemory } from 'tollgate';
      const l = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 60_000 }), store: sharedMemory({ name: '${name}', capacity: 100 }) });
      let allowed = 0;
      for (let i = 0; i < ${n}; i++) allowed += l.tryConsume('shared') ? 1 : 0;
      console.log(allowed);
      ${n === 10 ? 'l.destroy();' : 'l.close();'}`;
    const first = runInProject(source(3));
    const second = runInProject(source(10));
    expect([first.stdout.trim(), second.stdout.trim()]).toEqual(['3', '2']);
  });

  it('every entry point loads by name, with import and with require', () => {
    const entries = {
      tollgate: 'Limiter',
      'tollgate/http': 'rateLimit',
      'tollgate/client': 'limitedFetch',
      'tollgate/metrics': 'toPrometheus',
      'tollgate/adapters': 'ExpressRateLimitStore',
    };
    const imported = runInProject(
      Object.entries(entries)
        .map(([entry, name]) => `console.log(typeof (await import('${entry}')).${name});`)
        .join('\n'),
    );
    expect(imported.stderr).toBe('');
    expect(imported.stdout.trim().split('\n')).toEqual(Object.keys(entries).map(() => 'function'));
    const required = spawnSync(
      process.execPath,
      [
        '-e',
        Object.entries(entries)
          .map(([entry, name]) => `console.log(typeof require('${entry}').${name});`)
          .join('\n'),
      ],
      { cwd: project, env: userEnv(), encoding: 'utf8' },
    );
    expect(required.stderr).toBe('');
    expect(required.stdout.trim().split('\n')).toEqual(Object.keys(entries).map(() => 'function'));
    // Deep imports stay closed: only the entry points are the package's surface.
    const deep = runInProject(`try { await import('tollgate/dist/engine/native-table.js'); console.log('opened'); } catch (e) { console.log(e.code); }`);
    expect(deep.stdout.trim()).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it('the CLI says which binary loads', () => {
    const r = spawnSync(process.execPath, [path.join(project, 'node_modules', 'tollgate', 'bin', 'tollgate.mjs'), 'native'], { cwd: project, env: userEnv(), encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/native addon: prebuilt, .*tollgate\.glibc\.node/);
  });

  it('its source maps carry their sources (src/ is not shipped)', () => {
    const dist = path.join(project, 'node_modules', 'tollgate', 'dist');
    const maps = packed.map((f) => f.path).filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(10);
    for (const file of maps) {
      const map = JSON.parse(readFileSync(path.join(project, 'node_modules', 'tollgate', file), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      expect(map.sourcesContent?.length, file).toBe(map.sources.length);
      expect(
        map.sourcesContent?.every((text) => typeof text === 'string' && text.length > 0),
        file,
      ).toBe(true);
    }
    expect(existsSync(path.join(dist, '..', 'src'))).toBe(false);
  });

  // A consumer's TypeScript project, strict and checking our declarations (skipLibCheck: false),
  // with TypeScript's defaults for `types` (none): the declarations must bring Node's types in
  // themselves. One file uses every public entry point's types.
  const CONSUMER = `
import { allOf, fixedWindow, Limiter, RedisLimiter, tokenBucket, type Decision, type RateLimiter, type RateLimiterStats } from 'tollgate';
import { fastifyRateLimit, honoRateLimit, koaRateLimit, rateLimit } from 'tollgate/http';
import { createQueue, limitedFetch, type LimitedFetchOptions } from 'tollgate/client';
import { toPrometheus, type DenialRecord } from 'tollgate/metrics';
import { ExpressRateLimitStore, FastifyRateLimitStore, NestThrottlerStorage, RateLimiterTollgate, type ExpressRateLimitStoreOptions } from 'tollgate/adapters';
const one = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 1000 }) });
const both = allOf(one, new Limiter({ policy: tokenBucket({ capacity: 10, refillPerSecond: 1 / 3600 }) }));
const limiters: RateLimiter[] = [one, both];
const decision: Decision = one.consume('k');
const stats: RateLimiterStats = both.stats();
const fetchOptions: LimitedFetchOptions = { requests: one };
const storeOptions: ExpressRateLimitStoreOptions = { capacity: 100 };
export type Denial = DenialRecord;
export const checks = [
  limiters, decision, stats, rateLimit({ limiter: one, key: { header: 'x-api-key' } }), fastifyRateLimit, koaRateLimit({ limiter: both }),
  honoRateLimit({ limiter: one }), createQueue({ limits: [{ limiter: one }] }), limitedFetch(fetchOptions), toPrometheus(one, both),
  new ExpressRateLimitStore(storeOptions), FastifyRateLimitStore, new RateLimiterTollgate({ points: 5 }), new NestThrottlerStorage(),
  typeof RedisLimiter,
];
`;
  const typescript = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

  function compile(dir: string, module: string, moduleResolution: string, source: string, packageType: 'module' | 'commonjs') {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: path.basename(dir), private: true, type: packageType }));
    writeFileSync(path.join(dir, 'index.ts'), source);
    const compilerOptions = { strict: true, skipLibCheck: false, types: [], module, moduleResolution, target: 'es2022', noEmit: true, rootDir: '.' };
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['index.ts'] }));
    return spawnSync(process.execPath, [typescript, '-p', dir], { cwd: dir, env: userEnv(), encoding: 'utf8' });
  }

  it.each([
    ['node16', 'node16'],
    ['nodenext', 'nodenext'],
    ['esnext', 'bundler'],
    ['preserve', 'bundler'],
  ])('types resolve for a strict ESM consumer (module %s, moduleResolution %s)', (module, resolution) => {
    const r = compile(path.join(project, `types-${module}-${resolution}`), module, resolution, CONSUMER, 'module');
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('a CommonJS consumer: import under nodenext; under node16, import() (as the README says)', () => {
    const required = compile(path.join(project, 'types-cjs-nodenext'), 'nodenext', 'nodenext', CONSUMER, 'commonjs');
    expect(required.stdout + required.stderr).toBe('');
    const dynamic = compile(
      path.join(project, 'types-cjs-node16'),
      'node16',
      'node16',
      `export async function make() {\n  const { Limiter, fixedWindow } = await import('tollgate');\n  const { rateLimit } = await import('tollgate/http');\n  const limiter = new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 1000 }) });\n  return [rateLimit({ limiter }), limiter.consume('k').allowed] as const;\n}\n`,
      'commonjs',
    );
    expect(dynamic.stdout + dynamic.stderr).toBe('');
    // What node16 says to a static import, which the README's TypeScript section explains.
    const refused = compile(path.join(project, 'types-cjs-node16-static'), 'node16', 'node16', CONSUMER, 'commonjs');
    expect(refused.stdout).toContain('TS1479');
  });

  it('without a binary that fits, the TypeScript engine runs with one warning naming the fix', () => {
    rmSync(path.join(project, 'node_modules', 'tollgate', 'prebuilds', 'linux-x64'), { recursive: true });
    expect(existsSync(path.join(project, 'node_modules', 'tollgate', 'build'))).toBe(false);
    const r = runInProject(CHECK);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { info: { loaded: boolean; failures: string[] }; engine: string; decisions: boolean[]; warnings: { code: string; message: string }[] };
    expect(out.info.loaded).toBe(false);
    expect(out.engine).toBe('js');
    expect(out.decisions).toEqual([true, true, false]);
    expect(out.warnings.map((w) => w.code)).toEqual(['TOLLGATE_NATIVE_UNAVAILABLE']);
    expect(out.warnings[0]?.message).toMatch(/npx tollgate build-native/);
    const cli = spawnSync(process.execPath, [path.join(project, 'node_modules', 'tollgate', 'bin', 'tollgate.mjs'), 'native'], { cwd: project, env: userEnv(), encoding: 'utf8' });
    expect(cli.status).toBe(1);
    // Shared memory needs the addon: a clear error, not a silent per-process table.
    const shm = runInProject(`
      import { Limiter, fixedWindow, sharedMemory } from 'tollgate';
      try { new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 1000 }), store: sharedMemory({ name: 'x', capacity: 10 }) }); console.log('opened'); }
      catch (e) { console.log(e.code); }`);
    expect(shm.stdout.trim()).toBe('TOLLGATE_NATIVE_UNAVAILABLE');
  });
  // Last: it runs after the prebuilt binary was removed above, so the one it builds is what loads.
  it('build-native installs its build tools on demand (saying the npm command), builds, and the binary it built loads', () => {
    const tollgate = path.join(project, 'node_modules', 'tollgate');
    const cli = path.join(tollgate, 'bin', 'tollgate.mjs');
    // With cmake and g++ on PATH; npm from its cache, as the tests' own install.
    const env = { ...process.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false', npm_execpath: npmCli };
    const refused = spawnSync(process.execPath, [cli, 'build-native', '--no-install'], { cwd: project, env, encoding: 'utf8' });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`npm install --prefix ${path.join(tollgate, 'build-tools')} --no-save`);
    expect(refused.stderr).toMatch(/'cmake-js@\^\d[^']*' 'node-addon-api@\^\d[^']*'/);
    expect(existsSync(path.join(tollgate, 'build-tools'))).toBe(false);

    const before = readdirSync(path.join(project, 'node_modules'), { recursive: true }).sort();
    const built = spawnSync(process.execPath, [cli, 'build-native'], { cwd: project, env, encoding: 'utf8' });
    expect(built.status, built.stdout + built.stderr).toBe(0);
    expect(built.stdout).toContain(`running:\n  npm install --prefix ${path.join(tollgate, 'build-tools')}`);
    expect(built.stdout).toContain(`built ${path.join(tollgate, 'build', 'Release', 'tollgate.node')}`);
    // The tools stayed inside tollgate's folder: the project's tree is what it was.
    const after = readdirSync(path.join(project, 'node_modules'), { recursive: true }).filter((f) => !/^tollgate\/(build|build-tools)(\/|$)/.test(String(f)));
    expect(after.sort()).toEqual(before);

    const r = runInProject(CHECK);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { info: { loaded: boolean; source: string; path: string }; engine: string; decisions: boolean[]; warnings: unknown[] };
    expect(out.info).toMatchObject({ loaded: true, source: 'built from source' });
    expect(out.info.path).toBe(path.join(tollgate, 'build', 'Release', 'tollgate.node'));
    expect(out.engine).toBe('native');
    expect(out.decisions).toEqual([true, true, false]);
    expect(out.warnings).toEqual([]);
  }, 300_000);
});
