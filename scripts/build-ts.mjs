#!/usr/bin/env node
// Compiles src/ into dist/ so that a process importing dist/ meanwhile never reads a module half
// written: tsc writes into a directory beside dist/, then each output that differs from dist/'s is
// put in place by a rename (atomic), and an unchanged one is not touched at all. `npm pack` (whose
// prepack builds) runs while other tests import dist/ (test/install.test.ts); tsc writing dist/ in
// place let one of them read a truncated module. Then removes what no source produces any more.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = path.join(root, 'dist');
// Beside dist/, at its depth, so the source maps' relative paths to src/ hold once moved.
const staging = mkdtempSync(path.join(root, '.dist-build-'));

/** Puts every file of `from` whose bytes differ into `to`, each by one rename. */
function sync(from, to) {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) {
      sync(source, target);
      continue;
    }
    const bytes = readFileSync(source);
    if (existsSync(target) && readFileSync(target).equals(bytes)) continue;
    const temporary = `${target}.${process.pid}.tmp`;
    writeFileSync(temporary, bytes);
    renameSync(temporary, target);
  }
}

try {
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json', '--outDir', staging], { cwd: root, stdio: 'inherit' });
  sync(staging, dist);
} finally {
  rmSync(staging, { recursive: true, force: true });
}
execFileSync(process.execPath, [path.join(root, 'scripts', 'prune-dist.mjs')], { cwd: root, stdio: 'inherit' });
