// Small files with one job each: a file of src/ past this many lines is a sign it does two jobs.
// Lua text is the exception (src/redis/*lua.ts): a script is read as one piece, as Redis runs it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../src/', import.meta.url));
const MAX_LINES = 450;
const holdsLua = (file: string) => file.endsWith('lua.ts');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? sourceFiles(path.join(dir, entry.name)) : entry.name.endsWith('.ts') ? [path.join(dir, entry.name)] : []));
}

describe('source files', () => {
  const files = sourceFiles(src);

  it(`none but the Lua text runs past ${MAX_LINES} lines`, () => {
    const long = files
      .filter((file) => !holdsLua(file))
      .map((file) => ({ file: path.relative(src, file), lines: readFileSync(file, 'utf8').split('\n').length - 1 }))
      .filter(({ lines }) => lines > MAX_LINES);
    expect(long).toEqual([]);
  });

  it('sees the files it checks: the exempt ones hold Redis Lua, and the rest are many', () => {
    const lua = files.filter(holdsLua);
    expect(lua.map((file) => path.relative(src, file))).toContain(path.join('redis', 'lua.ts'));
    for (const file of lua) expect(readFileSync(file, 'utf8'), path.relative(src, file)).toContain('redis.call');
    expect(files.length - lua.length).toBeGreaterThan(90);
  });
});
