// Chooses the engine a limiter runs on: native when it loads, else the TypeScript one with one warning.
import { nativeUnavailable } from '../common/errors.js';
import { JsTable } from './js/js-table.js';
import { loadNative, type NativeSource } from './load-native.js';
import { NativeTable } from './native-table.js';
import type { TableConfig, TableEngine } from './table-engine.js';

export type EngineChoice = 'native' | 'js' | 'auto';
export type EngineName = 'native' | 'js';

let warned = false;
let warnedEnv = false;

/** The engine TOLLGATE_ENGINE forces `auto` to, if it names one; never warns. */
function forcedEngine(): EngineName | undefined {
  const forced = process.env.TOLLGATE_ENGINE;
  return forced === 'js' || forced === 'native' ? forced : undefined;
}

/** The engine `auto` resolves to here, honouring TOLLGATE_ENGINE=js|native (any other value is ignored, with one warning). */
export function resolveEngine(choice: EngineChoice): EngineName {
  const forced = process.env.TOLLGATE_ENGINE;
  if (forced !== undefined && forced !== '' && forced !== 'js' && forced !== 'native' && forced !== 'auto' && !warnedEnv) {
    warnedEnv = true;
    process.emitWarning(`TOLLGATE_ENGINE=${JSON.stringify(forced)} is not one of js, native or auto; it is ignored`, { code: 'TOLLGATE_INVALID_ENV' });
  }
  const wanted = choice !== 'auto' ? choice : (forcedEngine() ?? 'auto');
  if (wanted === 'js') return 'js';
  const { addon, failures } = loadNative();
  if (addon !== undefined) return 'native';
  if (wanted === 'native') throw nativeUnavailable(failures.join('\n'));
  if (!warned) {
    warned = true;
    process.emitWarning(`tollgate is using its TypeScript engine because the native addon did not load:\n${failures.join('\n')}`, { code: 'TOLLGATE_NATIVE_UNAVAILABLE' });
  }
  return 'js';
}

export function createTable(engine: EngineName, config: TableConfig): TableEngine {
  if (engine === 'js') return new JsTable(config);
  const { addon } = loadNative();
  if (addon === undefined) throw nativeUnavailable('loadNative() failed after it had succeeded');
  return new NativeTable(addon, config);
}

/** Which native binary loads in this process, from where, or why none does; never warns. */
export interface NativeInfo {
  readonly loaded: boolean;
  /** The file that loaded. */
  readonly path?: string;
  /** 'prebuilt' (shipped in the package), 'built from source', or 'TOLLGATE_NATIVE_PATH'. */
  readonly source?: NativeSource;
  /** Every place tried that failed, and how to fix it. */
  readonly failures: readonly string[];
  /**
   * The engine a limiter with `engine: 'auto'` (the default) runs on here: 'native' when the addon
   * loads, 'js' when it does not or when TOLLGATE_ENGINE=js forces it; undefined when
   * TOLLGATE_ENGINE=native insists on an addon that does not load (such a limiter throws).
   */
  readonly engine: EngineName | undefined;
  /** TOLLGATE_ENGINE's engine when it names one ('js' or 'native'), which `auto` then runs on. */
  readonly forced?: EngineName;
}

export function nativeInfo(): NativeInfo {
  const r = loadNative();
  const forced = forcedEngine();
  const engine = forced === 'js' ? 'js' : r.addon !== undefined ? 'native' : forced === 'native' ? undefined : 'js';
  const env = forced === undefined ? {} : { forced };
  return r.addon === undefined
    ? { loaded: false, failures: r.failures, engine, ...env }
    : { loaded: true, path: r.path as string, source: r.source as NativeSource, failures: r.failures, engine, ...env };
}

/** Whether the native addon loads in this process; never warns. */
export function isNativeAvailable(): boolean {
  return loadNative().addon !== undefined;
}
