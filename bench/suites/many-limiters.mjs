// Per-tenant limiters made on demand: creates, uses once and closes N Limiters, or gives a
// NestThrottlerStorage N distinct ttls (one table each, at most 256 open), each scenario in a fresh
// process, and reports how far resident memory stayed above the warmed-up baseline after GC; and a
// floor: the nest loop with a Map in place of tollgate, for V8's own share.
//   node --expose-gc bench/suites/many-limiters.mjs [N] [native|js] [limiters|nest|floor]
// Memory that closed limiters leave behind shows up here as growth.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { Limiter, fixedWindow } from '../../dist/index.js';
import { NestThrottlerStorage } from '../../dist/adapters-entry.js';
import { machine, progress, report } from '../common.mjs';

const COUNT = Number(process.argv[2] ?? 20_000);
const engine = process.argv[3] ?? 'native';
const scenario = process.argv[4];
const MiB = 1024 * 1024;

if (scenario === undefined) {
  // The parent: each scenario in a process of its own, so neither inherits the other's heap.
  const figures = { count: COUNT, engine, ...machine() };
  for (const s of ['limiters', 'nest', 'floor']) {
    const child = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), String(COUNT), engine, s], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (child.status !== 0) throw new Error(`${s}: exit ${child.status}`);
    const result = JSON.parse(child.stdout);
    progress(`${s}: ${JSON.stringify(result)}`);
    for (const [k, v] of Object.entries(result)) figures[`${s}.${k}`] = v;
  }
  report(`many-limiters:${engine}`, figures);
  process.exit(0);
}

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');

const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;

async function settle() {
  // Let finalizers and any work handed to other threads run, and collect everything collectable.
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    globalThis.gc();
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  return process.memoryUsage.rss();
}

function limiters(count) {
  for (let i = 0; i < count; i++) {
    const limiter = new Limiter({ policy: fixedWindow({ limit: 10, windowMs: 60_000 }), engine });
    limiter.tryConsume(`tenant:${i}`);
    limiter.close();
  }
}

async function nest(count) {
  const storage = new NestThrottlerStorage({ engine });
  for (let i = 0; i < count; i++) await storage.increment(`client:${i}`, 1000 + i, 10, 0, 'default');
  const tables = storage.tables;
  storage.onApplicationShutdown();
  return tables;
}

// The floor of the nest scenario: the same loop, keys and awaits through a storage that keeps 256
// Maps and no limiter. What V8's young generation grows to under that loop alone.
async function floor(count) {
  const byTtl = new Map();
  for (let i = 0; i < count; i++) {
    const ttl = 1000 + i;
    if (!byTtl.has(ttl)) {
      if (byTtl.size >= 256) byTtl.delete(byTtl.keys().next().value);
      byTtl.set(ttl, new Map());
    }
    const hits = byTtl.get(ttl);
    const key = `default:client:${i}`;
    hits.set(key, (hits.get(key) ?? 0) + 1);
    await Promise.resolve({ totalHits: hits.get(key), timeToExpire: 1, isBlocked: false, timeToBlockExpire: 0 });
  }
}

// Warm-up: the code paths, the native addon and V8's own structures, so the baseline has them.
const run = scenario === 'nest' ? nest : scenario === 'floor' ? floor : limiters;
await run(200);
const baseline = await settle();
const newSpaceBefore = newSpace();
const tables = await run(COUNT);
const after = await settle();
process.stdout.write(
  `${JSON.stringify({
    baselineMiB: baseline / MiB,
    growthMiB: (after - baseline) / MiB,
    // V8's young generation grows (up to twice --max-semi-space-size) under any allocation-heavy
    // run and keeps its pages: part of the growth, though no limiter's.
    v8NewSpaceGrowthMiB: (newSpace() - newSpaceBefore) / MiB,
    ...(tables !== undefined && { tablesAtEnd: tables }),
  })}\n`,
);
