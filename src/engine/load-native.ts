// Finds and loads the native addon, collecting every failure into one actionable message.
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ABI_VERSION } from '../common/constants.js';
import type { NativeAddon } from './table-engine.js';

/** What every tollgate addon exports (an object with only the ABI number is refused). */
const ADDON_FUNCTIONS = ['createTable', 'destroySharedMemory', 'inspectSharedMemory', 'openPlaces'] as const;

/** Where the addon that loaded came from. */
export type NativeSource = 'prebuilt' | 'built from source' | 'TOLLGATE_NATIVE_PATH';

export interface NativeLoadResult {
  readonly addon: NativeAddon | undefined;
  /** The file that loaded, and what it is. */
  readonly path: string | undefined;
  readonly source: NativeSource | undefined;
  /** Why each place failed, in the order tried; empty when the first one loaded. */
  readonly failures: readonly string[];
}

let cached: NativeLoadResult | undefined;

/** 'glibc' or 'musl' on Linux (undefined elsewhere): which prebuilt binary can load here. */
export function linuxLibc(): 'glibc' | 'musl' | undefined {
  if (process.platform !== 'linux') return undefined;
  // Node (and runtimes that copy its report) name the glibc it runs on; musl has none to name.
  try {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    if (header !== undefined) return header.glibcVersionRuntime === undefined ? 'musl' : 'glibc';
  } catch {
    // no report in this runtime: look at the dynamic loader instead
  }
  try {
    return readdirSync('/lib').some((f) => f.startsWith('ld-musl-')) && !readdirSync('/lib').some((f) => f.startsWith('ld-linux')) ? 'musl' : 'glibc';
  } catch {
    return 'glibc';
  }
}

/** The command that builds the addon in a user's project (the CLI runs cmake-js in the package). */
export const BUILD_COMMAND = 'npx tollgate build-native';

/**
 * Tries, in order: TOLLGATE_NATIVE_PATH alone when it is set; else the prebuilt binary for this
 * platform, architecture and libc (prebuilds/<platform>-<arch>/tollgate.<libc>.node), then a
 * local build (build/Release, build/Debug). TOLLGATE_BUILD_FROM_SOURCE=1 skips the prebuilt
 * binary. The result is cached: the addon is loaded once per process (and once per worker thread).
 */
export function loadNative(): NativeLoadResult {
  if (cached !== undefined) return cached;
  const require = createRequire(import.meta.url);
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const override = process.env.TOLLGATE_NATIVE_PATH;
  const candidates: [string, NativeSource][] = [];
  // Asked once: the process report behind it takes milliseconds to make.
  const libc = linuxLibc();
  const overridden = override !== undefined && override.length > 0;
  if (overridden) {
    // Relative to the working directory, as a user typing it in a shell means it.
    candidates.push([path.resolve(process.cwd(), override), 'TOLLGATE_NATIVE_PATH']);
  } else {
    if (process.env.TOLLGATE_BUILD_FROM_SOURCE !== '1' && libc !== undefined) {
      candidates.push([path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, `tollgate.${libc}.node`), 'prebuilt']);
    } else if (process.env.TOLLGATE_BUILD_FROM_SOURCE !== '1') {
      candidates.push([path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'tollgate.node'), 'prebuilt']);
    }
    candidates.push([path.join(root, 'build', 'Release', 'tollgate.node'), 'built from source']);
    candidates.push([path.join(root, 'build', 'Debug', 'tollgate.node'), 'built from source']);
  }
  const failures: string[] = [];
  for (const [candidate, source] of candidates) {
    try {
      const addon = require(candidate) as NativeAddon;
      if (addon?.abiVersion !== ABI_VERSION) {
        failures.push(`${candidate}: built for ABI ${addon?.abiVersion}, this code expects ${ABI_VERSION} (rebuild it: ${BUILD_COMMAND})`);
        continue;
      }
      const missing = ADDON_FUNCTIONS.filter((name) => typeof (addon as unknown as Record<string, unknown>)[name] !== 'function');
      if (missing.length > 0) {
        failures.push(`${candidate}: not a tollgate addon (it lacks ${missing.join(', ')})`);
        continue;
      }
      cached = { addon, path: candidate, source, failures };
      return cached;
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      failures.push(`${candidate}: ${message}`);
    }
  }
  if (overridden) {
    failures.push(`TOLLGATE_NATIVE_PATH is set, so only that file was tried (not the prebuilt binary or a local build): ` + `point it at a tollgate.node built for this tollgate, or unset it.`);
  } else {
    failures.push(
      `No prebuilt binary fits ${process.platform}-${process.arch}${libc === undefined ? '' : ` (${libc})`} and there is no local build. ` +
        `Build it in your project with \`${BUILD_COMMAND}\` (needs cmake and a C++17 compiler), or see "Troubleshooting the native addon" in the README.`,
    );
  }
  cached = { addon: undefined, path: undefined, source: undefined, failures };
  return cached;
}
