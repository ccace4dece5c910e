// The benchmarks' floor addon (native/bench/floor_addon.cc, built beside the real one by
// `npm run build`, never shipped): readKeyOnly(key), the cheapest call that reads a key as every
// table call does, and createMissFloor(bytes), that call plus one random cache-line read.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export function loadFloor() {
  const file = fileURLToPath(new URL('../build/Release/tollgate_floor.node', import.meta.url));
  try {
    return createRequire(import.meta.url)(file);
  } catch (error) {
    throw new Error(`the benchmarks' floor addon is not built (${file}): npm run build:native`, { cause: error });
  }
}
