#!/usr/bin/env node
// tollgate inspect <name> [--json] [--watch [seconds]] [--top N]: a live shared table's
// configuration, counters and heavy hitters.
// tollgate native: which native binary loads here (or why none does).
// tollgate build-native: builds the addon from source in this installed package (cmake-js).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { inspectSharedMemory, nativeInfo } from '../dist/index.js';

const KINDS = { 1: 'fixedWindow', 2: 'slidingWindow', 3: 'tokenBucket', 4: 'leakyBucket' };
const USAGE = [
  'usage: tollgate inspect <shared-table-name> [--json] [--watch [seconds]] [--top N]',
  '       tollgate native [--json]     which native binary loads here, or why none does',
  '       tollgate build-native        build the addon from source (needs cmake and a C++17 compiler)',
].join('\n');

const command = process.argv[2];
if (command === 'native') {
  const info = nativeInfo();
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(info)}\n`);
  else if (info.loaded) process.stdout.write(`native addon: ${info.source}, ${info.path}\n`);
  else process.stdout.write(`native addon: not loaded; the TypeScript engine runs.\n${info.failures.map((f) => `  ${f}`).join('\n')}\n`);
  process.exit(info.loaded ? 0 : 1);
}
if (command === 'build-native') {
  const root = fileURLToPath(new URL('..', import.meta.url));
  let cli;
  try {
    cli = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
  } catch {
    console.error('tollgate: cmake-js is not installed beside tollgate; reinstall tollgate');
    process.exit(1);
  }
  const result = spawnSync(process.execPath, [cli, 'compile'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error('tollgate: the native build failed (it needs cmake and a C++17 compiler: apt install cmake g++, apk add cmake g++ make)');
    process.exit(1);
  }
  console.log(`tollgate: built ${root}build/Release/tollgate.node; it is used where no prebuilt binary fits, or always with TOLLGATE_BUILD_FROM_SOURCE=1`);
  process.exit(0);
}

function parse(argv) {
  const [command, name, ...rest] = argv;
  if (command !== 'inspect' || name === undefined || name.startsWith('-')) return undefined;
  const options = { name, json: false, watch: 0, top: 10 };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === '--json') options.json = true;
    else if (arg === '--watch') {
      const next = Number(rest[i + 1]);
      options.watch = Number.isFinite(next) && next > 0 ? (i++, next) : 2;
    } else if (arg === '--top') options.top = Number(rest[++i]);
    else return undefined;
  }
  return Number.isInteger(options.top) && options.top > 0 ? options : undefined;
}

function describePolicy(p) {
  const kind = KINDS[p.kind] ?? `kind ${p.kind}`;
  if (p.kind === 1 || p.kind === 2) return `${kind} ${p.limit} per ${p.windowMs} ms`;
  return `${kind} ${p.kind === 3 ? 'capacity' : 'burst'} ${p.limit}, ${p.rateTokens} per ${p.rateIntervalMs} ms`;
}

function render(name, report, top) {
  const s = report.stats;
  const decisions = s.allowed + s.denied + s.deniedBlocked + s.refused;
  const pct = (n) => (decisions === 0 ? '0.0%' : `${((100 * n) / decisions).toFixed(1)}%`);
  const lines = [
    `tollgate table '${name}'  (${new Date().toISOString()})`,
    `  policy      ${describePolicy(report.policy)}  (of the creating process)`,
    `  capacity    ${report.capacity.toLocaleString('en')} keys, ${s.slots.toLocaleString('en')} slots in ${report.shards} shards, onFull ${report.evict ? 'evict' : 'refuse'}`,
    `  entries     ${s.entries.toLocaleString('en')} (load ${((100 * s.entries) / s.slots).toFixed(1)}%, fullest shard ${((100 * s.maxShardEntries) / (s.slots / report.shards)).toFixed(1)}%)`,
    `  decisions   ${decisions.toLocaleString('en')}: allowed ${pct(s.allowed)}, denied by limit ${pct(s.denied)}, by block ${pct(s.deniedBlocked)}, table full ${pct(s.refused)}`,
    `  near limit  ${s.nearLimit.toLocaleString('en')} allowed with a fifth or less left`,
    `  table       evictions ${s.evictions}, swept ${s.swept}, lock waits ${s.lockContended}, lock recoveries ${s.lockRecoveries}, ${(s.memoryBytes / 2 ** 20).toFixed(1)} MiB`,
  ];
  if (!report.topKeys) {
    lines.push('  top keys    off (create the table with the topKeys option)');
  } else {
    const byCount = [...report.top].sort((a, b) => b.count - a.count).slice(0, top);
    lines.push(`  top keys    (counts halve every ${report.topKeysPeriodMs / 1000} s; "±" is the most a count may be over)`);
    for (const t of byCount) {
      lines.push(`    ${String(t.count).padStart(10)} ±${String(t.error).padEnd(8)} denied ${String(t.denied).padStart(10)}  ${t.key}${t.length > t.key.length ? '…' : ''}`);
    }
  }
  return lines.join('\n');
}

const options = parse(process.argv.slice(2));
if (options === undefined) {
  console.error(USAGE);
  process.exit(2);
}
const show = () => {
  const report = inspectSharedMemory(options.name);
  if (options.json) process.stdout.write(`${JSON.stringify({ name: options.name, ...report })}\n`);
  else process.stdout.write(`${options.watch > 0 ? '\x1b[2J\x1b[H' : ''}${render(options.name, report, options.top)}\n`);
};
try {
  show();
  if (options.watch > 0) setInterval(show, options.watch * 1000);
} catch (error) {
  console.error(`tollgate: ${error.message}`);
  process.exit(1);
}
