// node bench/experiments/full-table.mjs [capacity] [rounds]: the cost of a table past its capacity.
// Every call brings a key never seen (a counter turned into a string per call) into a table full of
// live keys (a window far longer than the run), so each one evicts (onFull 'evict') or is refused
// ('refuse'); beside it, the same calls on a table with room. Native and TypeScript engines
// alternate round by round in one process; medians of ns per call.
import { fixedWindow, Limiter } from '../../dist/index.js';

const capacity = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 5);
const CALLS = 200_000;
let next = 0;
const median = (xs) => xs.toSorted((a, b) => a - b)[xs.length >> 1];

function limiter(engine, onFull, room) {
  const l = new Limiter({ policy: fixedWindow({ limit: 10, windowMs: 3_600_000 }), engine, capacity: room ? CALLS * rounds * 2 + capacity : capacity, onFull });
  for (let i = 0; i < capacity; i++) l.tryConsume(`fill:${i}`);
  return l;
}

function time(l) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) l.tryConsume(`user:${next++}`);
  return Number(process.hrtime.bigint() - t) / CALLS;
}

const cases = [];
for (const engine of ['native', 'js'])
  for (const [label, onFull, room] of [
    ['with room', 'evict', true],
    ['full, evict', 'evict', false],
    ['full, refuse', 'refuse', false],
  ])
    cases.push({ name: `${engine} ${label}`, l: limiter(engine, onFull, room), samples: [] });
for (let r = 0; r < rounds; r++) for (const c of r % 2 ? cases.toReversed() : cases) c.samples.push(time(c.l));
for (const c of cases) {
  const s = c.l.stats();
  console.log(`${c.name}: ${median(c.samples).toFixed(0)} ns a call (evictions ${s.evictions}, refused ${s.refused})`);
  c.l.close();
}
