// Pauses while a table grows, against a do-nothing floor in the same run.
//
//   node --expose-gc bench/suites/growth-pauses.mjs [default|sized] [keys]
//
// One process inserts `keys` distinct keys twice over, alternating call by call: a do-nothing
// call and a default Limiter's tryConsume(), each timed with the key string built inside the timed
// region (`user:${n}`, as a user's code builds a key per request). Both sides see the same V8 heap,
// the same collections and the same machine, so what the table adds is the difference. The side
// that goes first swaps every 1,000 keys. Each call over 1 ms is attributed to a V8 collection
// (perf_hooks 'gc' entries overlapping it) or not, and located against the table's generation
// changes (memoryBytes, polled every 1,000 keys outside the timed calls).
//
// 'default': `new Limiter({ policy })`, capacity 1,000,000 (grows from 1,024, then evicts).
// 'sized': `new Limiter({ policy, capacity: keys })` (grows from 1,024 to `keys`).
import { readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { Limiter, fixedWindow } from '../../dist/index.js';
import { progress, report } from '../common.mjs';

const variant = process.argv[2] ?? 'default';
const KEYS = Number(process.argv[3] ?? 5_000_000);
const policy = fixedWindow({ limit: 1e9, windowMs: 600_000 });
const limiter = new Limiter(variant === 'sized' ? { policy, capacity: KEYS } : { policy });
const noop = (key) => key;

const gc = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gc.push([e.startTime, e.startTime + e.duration, e.detail?.kind ?? e.kind]);
}).observe({ entryTypes: ['gc'] });

// Every call's time, kept off the JS heap (Float32: 0.1 µs resolution is plenty at 1 ms).
const sides = {
  floor: { times: new Float32Array(KEYS), slow: [] },
  table: { times: new Float32Array(KEYS), slow: [] },
};
const events = []; // [key index, memoryBytes] whenever the table's mapping changes
let lastBytes = limiter.stats().memoryBytes;
const CHUNK = 1000;

// The JS thread's scheduler counters (Linux): ns on a CPU and ns runnable but waiting for one.
// Read around every half-chunk (outside the timed calls), so a slow call is split into the time
// its chunk waited for a CPU (the machine's: another process or thread had it), spent on a CPU
// (work, page faults) and asleep (blocked, e.g. on the process's memory-map lock).
const hasSchedstat = (() => {
  try {
    readFileSync('/proc/thread-self/schedstat', 'latin1');
    return true;
  } catch {
    return false;
  }
})();
function sched() {
  if (!hasSchedstat) return [0, 0];
  const [cpu, wait] = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ');
  return [Number(cpu) / 1e6, Number(wait) / 1e6];
}
function timedHalf(side, run, base) {
  const slowBefore = side.slow.length;
  const [cpu0, wait0] = sched();
  const w0 = performance.now();
  run(base);
  const wall = performance.now() - w0;
  const [cpu1, wait1] = sched();
  for (let k = slowBefore; k < side.slow.length; k++) {
    // The whole half-chunk's figures (about 1,000 calls): the slow call is most of it.
    side.slow[k].push({ wall, cpu: cpu1 - cpu0, runqueue: wait1 - wait0, asleep: Math.max(0, wall - (cpu1 - cpu0) - (wait1 - wait0)) });
  }
}

function floorChunk(base) {
  const times = sides.floor.times;
  for (let i = base; i < base + CHUNK; i++) {
    const t0 = performance.now();
    noop(`user:${1_000_000 + i}`);
    const t1 = performance.now();
    times[i] = t1 - t0;
    if (t1 - t0 > 1) sides.floor.slow.push([t0, t1, i]);
  }
}

function tableChunk(base) {
  const times = sides.table.times;
  for (let i = base; i < base + CHUNK; i++) {
    const t0 = performance.now();
    limiter.tryConsume(`user:${1_000_000 + i}`);
    const t1 = performance.now();
    times[i] = t1 - t0;
    if (t1 - t0 > 1) sides.table.slow.push([t0, t1, i]);
  }
}

const started = performance.now();
for (let base = 0; base < KEYS; base += CHUNK) {
  if ((base / CHUNK) % 2 === 0) {
    timedHalf(sides.floor, floorChunk, base);
    timedHalf(sides.table, tableChunk, base);
  } else {
    timedHalf(sides.table, tableChunk, base);
    timedHalf(sides.floor, floorChunk, base);
  }
  const bytes = limiter.stats().memoryBytes;
  if (bytes !== lastBytes) {
    events.push([base + CHUNK, bytes]);
    lastBytes = bytes;
  }
  if ((base + CHUNK) % 1_000_000 === 0) progress(`${variant}: ${(base + CHUNK).toLocaleString('en')} keys`);
}
const seconds = (performance.now() - started) / 1000;
await new Promise((resolve) => setTimeout(resolve, 50)); // the last GC entries

function summarise(name) {
  const { times, slow } = sides[name];
  const sorted = Float32Array.from(times).sort();
  const q = (p) => sorted[Math.min(KEYS - 1, Math.floor(p * KEYS))];
  const calls = slow.map(([from, to, at, chunk]) => {
    const overlapping = gc.filter(([a, b]) => a < to && b > from);
    // The nearest generation change at or before the call (within 1,000 keys after: polled per chunk).
    const near = events.filter(([k]) => k >= at - 50_000 && k <= at + CHUNK).map(([k]) => k);
    return {
      at,
      ms: Number((to - from).toFixed(3)),
      gc: overlapping.length > 0 ? overlapping.map(([a, b, kind]) => `kind ${kind} ${(b - a).toFixed(2)} ms`).join(', ') : null,
      nearGrowth: near.length > 0 ? near : null,
      chunk,
      // Not a collection, and its half-chunk waited for a CPU at least as long as the call's
      // excess over 1 ms would need: descheduled, which lands in a call by the time it takes.
      descheduled: hasSchedstat && chunk.runqueue >= to - from - 1,
    };
  });
  const outside = calls.filter((c) => c.gc === null);
  const own = outside.filter((c) => !c.descheduled);
  let inCallMs = 0;
  for (let i = 0; i < KEYS; i++) inCallMs += times[i];
  return {
    // Time spent inside the timed calls: a descheduling (a 4 ms tick on a busy machine) lands in
    // a call in proportion to it, so slow calls outside GC are compared per second inside calls.
    inCallSeconds: Number((inCallMs / 1000).toFixed(3)),
    over1msOutsideGcPerInCallSecond: Number((outside.length / (inCallMs / 1000)).toFixed(2)),
    callsOver1ms: calls.length,
    worstMs: Number(sorted[KEYS - 1].toFixed(3)),
    p999Ms: Number(q(0.999).toFixed(4)),
    p9999Ms: Number(q(0.9999).toFixed(4)),
    medianMs: Number(q(0.5).toFixed(5)),
    over1msOutsideGc: outside.length,
    worstOutsideGcMs: Math.max(0, ...outside.map((c) => c.ms)),
    // Neither a collection nor explained by waiting for a CPU: on the thread's own account.
    over1msNeitherGcNorDescheduled: own.length,
    worstNeitherGcNorDescheduledMs: Math.max(0, ...own.map((c) => c.ms)),
    slowCalls: calls,
  };
}

const floor = summarise('floor');
const table = summarise('table');
if (process.env.BENCH_TRACE) {
  for (const [name, s] of [
    ['floor', floor],
    ['table', table],
  ]) {
    for (const c of s.slowCalls)
      progress(
        `${name} slow call ${c.at}: ${c.ms} ms; ${c.gc ? 'gc' : c.descheduled ? 'descheduled' : 'OWN'}; gc: ${c.gc ?? 'none'}; half-chunk wall ${c.chunk.wall.toFixed(2)} cpu ${c.chunk.cpu.toFixed(2)} runqueue ${c.chunk.runqueue.toFixed(2)} asleep ${c.chunk.asleep.toFixed(2)} ms; growth near: ${c.nearGrowth ?? 'none'}`,
      );
  }
  progress(`generation changes (key, bytes): ${events.map(([k, b]) => `${k}:${(b / 2 ** 20).toFixed(1)}MiB`).join(' ')}`);
}
const gcOver1ms = gc.filter(([a, b]) => b - a > 1).length;
const strip = ({ slowCalls, ...rest }) => rest;
report(`growth-pauses:${variant}`, {
  keys: KEYS,
  node: process.version,
  seconds,
  gcPauses: gc.length,
  gcPausesOver1ms: gcOver1ms,
  worstGcMs: Math.max(0, ...gc.map(([a, b]) => b - a)),
  floor: strip(floor),
  table: strip(table),
  tableEntries: limiter.stats().entries,
  // Whole process (every thread): how often the machine took the CPU away during the run.
  involuntaryContextSwitches: process.resourceUsage().involuntaryContextSwitches,
  loadAverage: (await import('node:os')).loadavg().map((l) => Number(l.toFixed(2))),
});
process.exit(0);
