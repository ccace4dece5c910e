// Inserts N distinct keys into one contender (named on the command line) in a fresh process:
// resident memory per key, and the worst single call along the way (GC pauses, rehashes, faults).
import { PerformanceObserver } from 'node:perf_hooks';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { Limiter, fixedWindow } from '../../dist/index.js';
import { MapFixedWindow } from '../peers/map-fixed-window.mjs';
import { progress, report } from '../common.mjs';

const contender = process.argv[2];
const KEYS = Number(process.argv[3] ?? 5_000_000);
const LIMIT = 1e9;

function settle() {
  for (let i = 0; i < 3; i++) globalThis.gc?.();
  return process.memoryUsage.rss();
}

const before = settle();
let consume;
let keep;
if (contender === 'none') {
  // The floor: the same loop around a call that does nothing. Its memory is what making the keys
  // costs (V8's heap grows under the garbage), its worst call the machine's own pauses.
  keep = {};
  consume = () => {};
} else if (contender === 'retain-keys') {
  // The floor for a JS limiter: every key kept alive (in chunks, so nothing is ever copied) and
  // nothing else. Its pauses are V8 promoting the retained strings out of the young generation,
  // which any limiter that stores the caller's keys pays.
  const chunks = [];
  let current = [];
  keep = chunks;
  consume = (key) => {
    if (current.length === 4096) {
      chunks.push(current);
      current = [];
    }
    current.push(key);
  };
} else if (contender.startsWith('tollgate')) {
  // 'tollgate': the default table, grown from 1,024 keys; 'tollgate-preallocated': built at its
  // full capacity and committed; 'tollgate-js': the TypeScript engine.
  const limiter = new Limiter({
    policy: fixedWindow({ limit: LIMIT, windowMs: 600_000 }),
    engine: contender === 'tollgate-js' ? 'js' : 'native',
    capacity: KEYS,
    preallocate: contender === 'tollgate-preallocated',
  });
  keep = limiter;
  consume = (key) => limiter.tryConsume(key);
} else if (contender === 'fast-ratelimit') {
  const { FastRateLimit } = await import('fast-ratelimit');
  const fast = new FastRateLimit({ threshold: LIMIT, ttl: 600 });
  keep = fast;
  consume = (key) => fast.consumeSync(key);
} else if (contender === 'map') {
  const map = new MapFixedWindow(LIMIT, 600_000);
  keep = map;
  consume = (key) => map.consume(key);
} else if (contender === 'rate-limiter-flexible') {
  const rlf = new RateLimiterMemory({ points: LIMIT, duration: 600 });
  keep = rlf;
  consume = (key) => rlf.consume(key);
} else {
  throw new Error(`unknown contender ${contender}`);
}

// Keys are made in small chunks outside the timed calls (few survivors make young-generation GC
// cheap), and the timing loop allocates nothing itself, so a slow call is the contender's own
// doing: its allocations, GC of its own data, rehashing, page faults.
let worst = 0;
let worstAt = 0;
let over1ms = 0;
// Which slow calls a V8 collection overlapped (the benchmark's own key strings are garbage that
// any contender's loop makes): matched after the run against the GC pauses V8 reports.
const gcPauses = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcPauses.push([e.startTime, e.startTime + e.duration]);
}).observe({ entryTypes: ['gc'] });
const slowCalls = [];
const CHUNK = 1000;
const chunk = new Array(CHUNK);
const times = new Float64Array(CHUNK);

const starts = new Float64Array(CHUNK);

function timeSync(keys) {
  for (let j = 0; j < keys.length; j++) {
    const t0 = performance.now();
    consume(keys[j]);
    times[j] = performance.now() - t0;
    starts[j] = t0;
  }
}

async function timeAsync(keys) {
  for (let j = 0; j < keys.length; j++) {
    const t0 = performance.now();
    await consume(keys[j]);
    times[j] = performance.now() - t0;
    starts[j] = t0;
  }
}

const isAsync = contender === 'rate-limiter-flexible';
// 'none' with a third argument: the same loop for at least that many seconds (repeating the keys),
// so the machine's own pauses are counted over as long as a contender's run takes.
const floorSeconds = contender === 'none' ? Number(process.argv[4] ?? 0) : 0;
const started = performance.now();
let repeat = 0;
for (let base = 0; base < KEYS; base += CHUNK) {
  if (base + CHUNK >= KEYS && floorSeconds > 0 && performance.now() - started < floorSeconds * 1000) {
    base = -CHUNK;
    repeat++;
  }
  for (let j = 0; j < CHUNK; j++) chunk[j] = `user:${1_000_000 + base + j}`;
  if (isAsync) await timeAsync(chunk);
  else timeSync(chunk);
  for (let j = 0; j < CHUNK; j++) {
    const took = times[j];
    if (took > 1) {
      over1ms++;
      slowCalls.push([starts[j], starts[j] + took, base + j]);
    }
    if (took > worst) {
      worst = took;
      worstAt = base + j;
    }
    if (took > 1 && process.env.BENCH_TRACE) progress(`slow call ${base + j}: ${took.toFixed(3)} ms`);
  }
  if ((base + CHUNK) % 1_000_000 === 0) progress(`${contender}: ${(base + CHUNK).toLocaleString('en')} keys`);
}
const seconds = (performance.now() - started) / 1000;
// Let the observer deliver the last GC entries before they are matched.
await new Promise((resolve) => setTimeout(resolve, 50));
const outsideGc = slowCalls.filter(([from, to]) => !gcPauses.some(([a, b]) => a < to && b > from));
if (process.env.BENCH_TRACE) for (const [from, to, at] of outsideGc) progress(`slow call ${at} outside GC: ${(to - from).toFixed(3)} ms`);
const after = settle();
if (keep === undefined) throw new Error('unreachable');
report(`memory:${contender}`, {
  keys: KEYS,
  bytesPerKey: (after - before) / KEYS,
  worstCallMs: worst,
  worstCallAtKey: worstAt,
  callsOver1ms: over1ms,
  callsOver1msOutsideGc: outsideGc.length,
  worstCallOutsideGcMs: Math.max(0, ...outsideGc.map(([from, to]) => to - from)),
  insertSeconds: seconds,
  ...(floorSeconds > 0 && { loops: repeat + 1 }),
});
// fast-ratelimit keeps timers of its own: exit rather than wait for them.
process.exit(0);
