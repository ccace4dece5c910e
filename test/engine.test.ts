// Engine selection, the fallback warning, and the addon's life in worker threads, in real child processes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ABI_VERSION } from '../src/common/constants.js';
import { describe, expect, it } from 'vitest';
import { engines } from './helpers/engines.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

function run(name: string, env: Record<string, string>): unknown {
  const clean = { ...process.env };
  delete clean.TOLLGATE_ENGINE;
  delete clean.TOLLGATE_NATIVE_PATH;
  // --no-warnings: the fixture collects every warning and reports it (asserted below); node's own
  // printing of them would only clutter the test output.
  return JSON.parse(execFileSync(process.execPath, ['--no-warnings', fixture(name)], { env: { ...clean, ...env }, encoding: 'utf8' }));
}

describe('engine selection', () => {
  it('falls back to the TypeScript engine with exactly one warning when the addon cannot load', () => {
    const report = run('engine-report.mjs', { TOLLGATE_NATIVE_PATH: '/nonexistent/tollgate.node' }) as {
      engines: string[];
      forced: string;
      decisions: boolean[];
      warnings: { code: string; message: string }[];
    };
    expect(report.engines).toEqual(['js', 'js']);
    expect(report.decisions).toEqual([true, true, false]);
    expect(report.forced).toBe('Error:TOLLGATE_NATIVE_UNAVAILABLE');
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings[0]?.code).toBe('TOLLGATE_NATIVE_UNAVAILABLE');
    expect(report.warnings[0]?.message).toContain('/nonexistent/tollgate.node');
  });

  it('TOLLGATE_ENGINE=js forces the TypeScript engine without a warning', () => {
    const report = run('engine-report.mjs', { TOLLGATE_ENGINE: 'js' }) as { engines: string[]; warnings: unknown[] };
    expect(report.engines).toEqual(['js', 'js']);
    expect(report.warnings).toEqual([]);
  });

  it.runIf(engines().includes('native'))('uses the native engine by default', () => {
    const report = run('engine-report.mjs', {}) as { engines: string[]; forced: string; warnings: unknown[] };
    expect(report.engines).toEqual(['native', 'native']);
    expect(report.forced).toBe('ok');
    expect(report.warnings).toEqual([]);
  });

  it.runIf(engines().includes('native'))('a relative TOLLGATE_NATIVE_PATH is read from the working directory (regression)', () => {
    const report = run('engine-report.mjs', { TOLLGATE_NATIVE_PATH: path.join('build', 'Release', 'tollgate.node') }) as { engines: string[]; warnings: unknown[] };
    expect(report.engines).toEqual(['native', 'native']);
    expect(report.warnings).toEqual([]);
  });

  it('a file with the right ABI number but no addon inside is refused, and the message names the override (regression)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-fake-'));
    const fake = path.join(dir, 'fake.cjs');
    writeFileSync(fake, `module.exports = { abiVersion: ${ABI_VERSION} };\n`);
    const report = run('engine-report.mjs', { TOLLGATE_NATIVE_PATH: fake }) as { engines: string[]; decisions: boolean[]; warnings: { code: string; message: string }[] };
    expect(report.engines).toEqual(['js', 'js']);
    expect(report.decisions).toEqual([true, true, false]);
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings[0]?.message).toContain('not a tollgate addon (it lacks createTable, destroySharedMemory, inspectSharedMemory, openPlaces)');
    expect(report.warnings[0]?.message).toContain('TOLLGATE_NATIVE_PATH is set');
    expect(report.warnings[0]?.message).not.toContain('No prebuilt binary fits');
  });

  it('an unknown TOLLGATE_ENGINE value is reported once, not ignored silently (regression)', () => {
    const report = run('engine-report.mjs', { TOLLGATE_ENGINE: 'jss' }) as { warnings: { code: string; message: string }[] };
    const invalid = report.warnings.filter((w) => w.code === 'TOLLGATE_INVALID_ENV');
    expect(invalid).toHaveLength(1);
    expect(invalid[0]?.message).toContain('"jss"');
  });

  it.runIf(engines().includes('native'))('loads in worker threads, each with its own tables', () => {
    const report = run('worker-limiters.mjs', {}) as { workers: number[]; main: number };
    expect(report).toEqual({ workers: [100, 100, 100], main: 100 });
  });
});
