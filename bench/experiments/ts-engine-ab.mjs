// node bench/experiments/ts-engine-ab.mjs <distA> <distB> [rounds]  (or <dist> '' 0 <algorithm> for one child): the TypeScript engine's hot-key
// tryConsume per algorithm for two builds, each round a fresh process per build (alternating which
// goes first), so neither build's classes make the other's call sites polymorphic. Medians in ns.
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [a, b, roundsArg = '7', only] = process.argv.slice(2);
const policies = {
  fixedWindow: (m) => m.fixedWindow({ limit: 2 ** 40, windowMs: 1000 }),
  slidingWindow: (m) => m.slidingWindow({ limit: 2 ** 40, windowMs: 1000 }),
  tokenBucket: (m) => m.tokenBucket({ capacity: 2 ** 40, refillPerSecond: 1000 }),
  leakyBucket: (m) => m.leakyBucket({ burst: 2 ** 40, ratePerSecond: 1000 }),
};
// N_CALLS and PASSES set, one child is run under callgrind at two N (instructions per call = the
// difference over the difference in N), which this VM's load cannot move.
const N = Number(process.env.N_CALLS ?? 3_000_000);
const PASSES = Number(process.env.PASSES ?? 3);

if (only !== undefined) {
  // Child: one build, one algorithm; prints ns per call of the best of three passes.
  const m = await import(pathToFileURL(resolve(a, 'index.js')).href);
  const limiter = new m.Limiter({ policy: policies[only](m), engine: 'js', capacity: 1000 });
  let best = Infinity;
  for (let pass = 0; pass < PASSES; pass++) {
    let allowed = 0;
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) if (limiter.tryConsume('user:12345')) allowed++;
    if (allowed !== N) throw new Error(`only ${allowed} of ${N} allowed`);
    best = Math.min(best, Number(process.hrtime.bigint() - t) / N);
  }
  console.log(best);
} else {
  const self = fileURLToPath(import.meta.url);
  const run = (dir, name) => Number(execFileSync(process.execPath, [self, dir, '', '0', name], { encoding: 'utf8' }));
  const median = (xs) => xs.toSorted((x, y) => x - y)[xs.length >> 1];
  for (const name of Object.keys(policies)) {
    const samples = [[], []];
    for (let r = 0; r < Number(roundsArg); r++) for (const i of r % 2 ? [1, 0] : [0, 1]) samples[i].push(run([a, b][i], name));
    console.log(`${name}: ${median(samples[0]).toFixed(1)} ns → ${median(samples[1]).toFixed(1)} ns`);
  }
}
