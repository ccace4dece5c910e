// node bench/experiments/hot-loop.mjs <addon path> <n> [try|consume|floor|shared]: n calls on one key through the raw
// addon (floor: through build/Release/tollgate_floor.node; shared: tryConsume on a shared-memory table, which takes
// its shard lock),
// for counting instructions per call: run under callgrind at two n and divide the difference.
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
const [path, n, mode = 'try'] = process.argv.slice(2);
const addon = createRequire(import.meta.url)(resolve(path));
const { self } = addon.createTable({
  kind: 1,
  limit: 2 ** 40,
  windowMs: 1000,
  rateTokens: 0,
  rateIntervalMs: 0,
  capacity: 1000,
  shards: 0,
  evict: true,
  preallocate: true,
  detail: new Float64Array(5),
  shared: mode === 'shared' ? { name: `hot-loop-${process.pid}`, mode: 0o600, lockTimeoutMs: -1, onLockTimeout: false } : undefined,
});
const key = 'user:12345';
let x = 0;
const N = Number(n);
if (mode === 'floor') {
  const floor = createRequire(import.meta.url)(resolve(path, '..', 'tollgate_floor.node'));
  for (let i = 0; i < N; i++) x += floor.readKeyOnly(key) ? 1 : 0;
} else if (mode === 'consume') for (let i = 0; i < N; i++) x += addon.tableFunctions.consume(self, key) ? 1 : 0;
else for (let i = 0; i < N; i++) x += addon.tableFunctions.tryConsume(self, key) ? 1 : 0;
if (mode === 'shared') addon.destroySharedMemory(`hot-loop-${process.pid}`);
console.log(x);
