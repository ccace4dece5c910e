// Finds and loads the native addon, collecting every failure into one actionable message.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { NativeAddon } from './table-engine.js';

const EXPECTED_ABI = 3;

export interface NativeLoadResult {
  readonly addon: NativeAddon | undefined;
  /** Why each place failed, in the order tried; empty when the addon loaded. */
  readonly failures: readonly string[];
}

let cached: NativeLoadResult | undefined;

/**
 * Tries TOLLGATE_NATIVE_PATH alone when it is set, else build/Release then build/Debug. The result is cached: the
 * addon is loaded once per process (and once per worker thread, each with its own instance).
 */
export function loadNative(): NativeLoadResult {
  if (cached !== undefined) return cached;
  const require = createRequire(import.meta.url);
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const override = process.env.TOLLGATE_NATIVE_PATH;
  const candidates =
    override !== undefined && override.length > 0
      ? [override]
      : [path.join(root, 'build', 'Release', 'tollgate.node'), path.join(root, 'build', 'Debug', 'tollgate.node')];
  const failures: string[] = [];
  for (const candidate of candidates) {
    try {
      const addon = require(candidate) as NativeAddon;
      if (addon.abiVersion !== EXPECTED_ABI) {
        failures.push(`${candidate}: built for ABI ${addon.abiVersion}, this code expects ${EXPECTED_ABI} (run npm run build:native)`);
        continue;
      }
      cached = { addon, failures: [] };
      return cached;
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      failures.push(`${candidate}: ${message}`);
    }
  }
  failures.push('Build it with `npm run build:native` (needs cmake and a C++17 compiler).');
  cached = { addon: undefined, failures };
  return cached;
}
