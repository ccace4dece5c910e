// The source tree is read as layers from its folders (docs/internals.md): every import runs from a
// folder to its own or a lower layer, never up and never sideways to a peer.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../src/', import.meta.url));

/** Each folder of src/ and its layer: lower layers know nothing of higher ones. */
const LAYERS: Readonly<Record<string, number>> = {
  common: 0, // values, errors, checks, policies, the clock: what everything uses
  engine: 1, // the tables: the native addon or the TypeScript engine, and shared-memory segments
  redis: 1, // Redis' side: Lua, key names, clients, breaker, server clock
  limiters: 2, // the RateLimiter contract, its base, Limiter, allOf, RedisLimiter
  http: 3, // middleware for node/express, fastify, koa, hono
  client: 3, // queues, retries, limitedFetch
  metrics: 3, // Prometheus, denial logs
  adapters: 4, // stores and classes for other libraries
  '.': 5, // the entry points: index.ts (the core, 'tollgate') and <folder>-entry.ts ('tollgate/<folder>')
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? sourceFiles(path.join(dir, entry.name)) : entry.name.endsWith('.ts') ? [path.join(dir, entry.name)] : []));
}

/** The top folder of src/ a file is in ('.' for src/ itself). */
const folderOf = (file: string) => path.relative(src, file).split(path.sep).slice(0, -1)[0] ?? '.';

describe('source layers', () => {
  const files = sourceFiles(src);

  it('every folder of src/ has a layer', () => {
    for (const file of files) expect(LAYERS[folderOf(file)], path.relative(src, file)).toBeTypeOf('number');
  });

  it('no import runs up a layer or sideways to a peer folder', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = folderOf(file);
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = path.resolve(path.dirname(file), match[1] as string);
        const to = folderOf(target);
        if (to === from) continue;
        if ((LAYERS[to] as number) >= (LAYERS[from] as number)) wrong.push(`${path.relative(src, file)} imports ${match[1]} (${from} → ${to})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('src/ itself holds the entry points and nothing else, each published in package.json exports', () => {
    const manifest = JSON.parse(readFileSync(path.join(src, '..', 'package.json'), 'utf8')) as { exports: Record<string, { import?: string }> };
    const published = Object.values(manifest.exports).flatMap((conditions) => (typeof conditions === 'string' || conditions.import === undefined ? [] : [conditions.import]));
    const entries = files.filter((file) => folderOf(file) === '.').map((file) => `./dist/${path.basename(file, '.ts')}.js`);
    expect(entries.sort()).toEqual(published.sort());
  });

  it('the check sees real imports: a file known to import a lower layer is read as doing so', () => {
    const text = readFileSync(path.join(src, 'limiters', 'limiter.ts'), 'utf8');
    const targets = [...text.matchAll(/from '(\.{1,2}\/[^']+)'/g)].map((m) => folderOf(path.resolve(path.join(src, 'limiters'), m[1] as string)));
    expect(targets).toContain('engine');
    expect(targets).toContain('common');
  });
});
