// Where a hot-key decision's time goes: each contender on one key, 1M calls per figure,
// medians of 9, three rounds alternating; with a test clock given (a Float64Array read) beside the
// real clock, and the clock read alone, so the clock's share and the engine's own work are told
// apart; the N-API floor for the native engine. Instruction counts: bench/experiments/hot-loop.mjs under callgrind.
//   node bench/experiments/hot-key-parts.mjs
import { Limiter, ManualClock, fixedWindow } from '../../dist/index.js';
import { MapFixedWindow } from '../peers/map-fixed-window.mjs';
import { loadFloor } from '../floor.mjs';
const policy = fixedWindow({ limit: 1e9, windowMs: 1000 });
const js = new Limiter({ policy, engine: 'js' });
const jsManual = new Limiter({ policy, engine: 'js', clock: new ManualClock(1) });
const nat = new Limiter({ policy, engine: 'native' });
const natManual = new Limiter({ policy, engine: 'native', clock: new ManualClock(1) });
const map = new MapFixedWindow(1e9, 1000);
const floor = loadFloor();
const key = 'user:123456';
function t(f) {
  for (let w = 0; w < 3; w++) f();
  const rs = [];
  for (let r = 0; r < 9; r++) {
    const s = process.hrtime.bigint();
    f();
    rs.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  rs.sort((a, b) => a - b);
  return rs[4];
}
let x = 0;
const N = 1e6;
const c = {
  'Date.now alone': () => {
    for (let i = 0; i < N; i++) x += Date.now();
  },
  'Map limiter': () => {
    for (let i = 0; i < N; i++) x += map.consume(key) ? 1 : 0;
  },
  'TS engine tryConsume': () => {
    for (let i = 0; i < N; i++) x += js.tryConsume(key) ? 1 : 0;
  },
  'TS engine tryConsume, clock given (no clock read)': () => {
    for (let i = 0; i < N; i++) x += jsManual.tryConsume(key) ? 1 : 0;
  },
  'N-API floor': () => {
    for (let i = 0; i < N; i++) x += floor.readKeyOnly(key) ? 1 : 0;
  },
  'native tryConsume': () => {
    for (let i = 0; i < N; i++) x += nat.tryConsume(key) ? 1 : 0;
  },
  'native tryConsume, clock given': () => {
    for (let i = 0; i < N; i++) x += natManual.tryConsume(key) ? 1 : 0;
  },
};
const res = Object.fromEntries(Object.keys(c).map((k) => [k, []]));
for (let round = 0; round < 3; round++) for (const [k, f] of Object.entries(c)) res[k].push(t(f));
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(50), v.map((n) => n.toFixed(1)).join(' / '), 'ns');
// The sink is read, so no loop's work can be dropped as unused.
if (x === -1) console.log(x);
