#!/usr/bin/env node
// Removes from dist/ what no source in src/ produces any more (a module renamed or deleted), so
// a packed tarball never ships a stale module. Only such files go: the build in place stays
// usable by anything running beside it (the tests build dist/ while others read it).
import { readdirSync, rmSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = path.join(root, 'dist');
const src = path.join(root, 'src');
const OUTPUTS = /\.(d\.ts\.map|d\.ts|js\.map|js)$/;

function prune(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      prune(file);
      if (readdirSync(file).length === 0) rmSync(file, { recursive: true });
      continue;
    }
    const source = path.join(src, path.relative(dist, file)).replace(OUTPUTS, '.ts');
    if (!OUTPUTS.test(entry.name) || !existsSync(source)) {
      rmSync(file);
      console.error(`prune-dist: removed ${path.relative(root, file)} (no ${path.relative(root, source)})`);
    }
  }
}

if (existsSync(dist)) prune(dist);
