#!/usr/bin/env node
// npm run bench: runs every suite in a fresh process, prints progress as it goes, then the
// comparison against the peers as ratios from this one run. `--write` records it in RESULTS.md.
//   node bench/run.mjs [--quick] [--write] [--only=hot-key,random-keys,memory,multi-process,redis,redis-scale,redis-failure,redis-operations,http,client,adapters,adapters-redis]
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { machine } from './common.mjs';
import { CONTENDER } from './labels.mjs';

const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const only = [...args]
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',');
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const MEMORY_KEYS = quick ? 1_000_000 : 5_000_000;

function runSuite(file, suiteArgs = [], nodeArgs = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, here(file), ...suiteArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${file} ${suiteArgs.join(' ')} exited with ${code}`));
      const line = out.trim().split('\n').at(-1);
      resolve(JSON.parse(line).figures);
    });
  });
}

// Benchmarks measure the addon built from these sources (npm run bench builds it first), not a
// prebuilt binary left in prebuilds/.
process.env.TOLLGATE_BUILD_FROM_SOURCE ??= '1';
const wanted = (name) => only === undefined || only.includes(name);
const results = {};
const started = Date.now();
if (wanted('hot-key')) {
  console.error('\n[1/10] one hot key (ns per operation, median of batches of 1,000)');
  results.hot = await runSuite('./suites/hot-key.mjs');
}
if (wanted('random-keys')) {
  console.error('\n[2/10] 1,000,000 keys at random (ns per operation)');
  results.random = await runSuite('./suites/random-keys.mjs');
}
if (wanted('memory')) {
  console.error(`\n[3/10] inserting ${MEMORY_KEYS.toLocaleString('en')} keys: resident bytes per key, worst single call`);
  results.memory = {};
  for (const contender of ['none', 'retain-keys', 'tollgate', 'tollgate-preallocated', 'tollgate-js', 'map', 'fast-ratelimit', 'rate-limiter-flexible']) {
    results.memory[contender] = await runSuite('./suites/memory.mjs', [contender, String(MEMORY_KEYS)], ['--expose-gc']);
  }
  // The machine's own pauses over as long as the grown table took: the do-nothing loop, repeated.
  results.memory['none-timed'] = await runSuite('./suites/memory.mjs', ['none', String(MEMORY_KEYS), String(Math.ceil(results.memory.tollgate.insertSeconds))], ['--expose-gc']);
}
if (wanted('multi-process')) {
  console.error('\n[4/10] two processes, 10,000 keys at random (decisions per second, all processes together)');
  results.multi = await runSuite('./suites/multi-process.mjs', [String(quick ? 1500 : 3000)]);
}
if (wanted('redis')) {
  console.error('\n[5/10] Redis on loopback, 256 decisions in flight (decisions per second, commands per decision)');
  results.redis = await runSuite('./suites/redis.mjs', [String(quick ? 1500 : 3000)]);
}
if (wanted('redis-scale')) {
  console.error('\n[5b/10] Redis at 10k, 100k and 1M keys (1,024 in flight; a 3-master Cluster at 1M), and latency: one call at a time, and at offered loads');
  results.redisScale = await runSuite('./suites/redis-scale.mjs', quick ? ['1000', '2', '20000'] : ['1500', '3', '40000']);
}
if (wanted('redis-failure')) {
  console.error(`\n[9/10] Redis failing: a dead server (each call's wait, breaker on and off), a Cluster master killed under load (timeline)`);
  results.redisFailure = await runSuite('./suites/redis-failure.mjs', [String(quick ? 1000 : 2000)]);
}
if (wanted('redis-operations')) {
  console.error('\n[10/10] Redis as operated: a populated slot group migrated under traffic, leases behind replies 150 ms late, a hot key behind 10 ms');
  results.redisOperations = await runSuite('./suites/redis-operations.mjs', [String(quick ? 20_000 : 60_000)]);
}
if (wanted('http')) {
  console.error("\n[6/10] the middleware's own cost, in process (ns per request over a bare middleware/hook)");
  results.httpCost = await runSuite('./suites/http-cost.mjs', quick ? ['15', '1000'] : ['60', '1000']);
  console.error('\n[6/10] HTTP hello-world under autocannon (requests per second, median of rounds)');
  results.http = await runSuite('./suites/http.mjs', quick ? ['2', '2'] : ['3', '4']);
}
if (wanted('client')) {
  console.error('\n[7/10] calling a rate-limited upstream (share of its quota, 429s, scheduling overhead)');
  results.client = await runSuite('./suites/client.mjs', [quick ? '800' : '1600']);
}
if (wanted('adapters')) {
  console.error("\n[8/10] the adapters against the libraries' own stores, in process (ns per awaited call, 10,000 keys)");
  results.adapters = await runSuite('./suites/adapters.mjs');
}
if (wanted('adapters-redis')) {
  console.error("\n[8b/10] the adapter stores on Redis against the libraries' own Redis stores, in their formats, on one loopback redis-server");
  results.adaptersRedis = await runSuite('./suites/adapters-redis.mjs', quick ? ['3', '700'] : ['5', '1000']);
}

const x = (n) => `${n.toFixed(2)}x`;
const ns = (n) => `${n.toFixed(0)} ns`;
const verdict = (ok) => (ok ? 'met' : '**missed**');
const rows = [];
if (results.hot) {
  const h = results.hot;
  const floor = h[CONTENDER.floor];
  const tc = h[CONTENDER.nativeTryConsume];
  const c = h[CONTENDER.nativeConsume];
  rows.push(['hot key: N-API floor', ns(floor), '1.00x', '', '']);
  rows.push(['hot key: native tryConsume', ns(tc), `${x(tc / floor)} the floor`, '≤ 2x the floor', verdict(tc / floor <= 2)]);
  rows.push(['hot key: native consume', ns(c), `${x(c / floor)} the floor`, '≤ 3x the floor', verdict(c / floor <= 3)]);
  const top = h[CONTENDER.nativeTopKeys];
  rows.push(['hot key: native tryConsume with topKeys on', ns(top), `+${(top - tc).toFixed(0)} ns over tryConsume (counters are always on)`, '', '']);
  // The TypeScript engine (the fallback) against the pure-JS limiters.
  const tsC = h[CONTENDER.tsConsume];
  const tsT = h[CONTENDER.tsTryConsume];
  const hm = h[CONTENDER.map];
  const hf = h[CONTENDER.fastRatelimit];
  rows.push(['hot key: TS engine consume', ns(tsC), `${x(tsC / hm)} the Map limiter`, '≤ 1.2x the Map limiter', verdict(tsC / hm <= 1.2)]);
  rows.push([
    'hot key: TS engine tryConsume',
    ns(tsT),
    `${x(tsT / hm)} the Map limiter; ${x(tsT / hf)} fast-ratelimit`,
    '≤ 1.0x Map, ≤ 1.2x fast-ratelimit',
    verdict(tsT / hm <= 1 && tsT / hf <= 1.2),
  ]);
  for (const peer of [CONTENDER.map, CONTENDER.fastRatelimit, CONTENDER.rlfMemory, CONTENDER.limiterBucket]) {
    rows.push([`hot key: ${peer}`, ns(h[peer]), `${x(h[peer] / floor)} the floor`, '', '']);
  }
}
if (results.random) {
  const r = results.random;
  const c = r[CONTENDER.nativeConsume];
  const map = r[CONTENDER.map];
  const fast = r[CONTENDER.fastRatelimit];
  const rlf = r[CONTENDER.rlfMemory];
  const many = r[CONTENDER.nativeConsumeMany];
  const floor = r[CONTENDER.floorRandomMiss];
  rows.push(['1M random keys: N-API floor, random key', ns(r[CONTENDER.floorRandom]), '', '', '']);
  rows.push(['1M random keys: floor + one random 64-byte read of a table-sized block', ns(floor), '1.00x (the physical floor)', '', '']);
  rows.push(['1M random keys: native consume', ns(c), `${x(c / floor)} the floor`, 'within 1.5x of the floor', verdict(c / floor <= 1.5)]);
  rows.push(['1M random keys: Map fixed window', ns(map), `native ${x(map / c)} faster`, '≥ 2x', verdict(map / c >= 2)]);
  rows.push(['1M random keys: fast-ratelimit consumeSync', ns(fast), `native ${x(fast / c)} faster`, '≥ 2x', verdict(fast / c >= 2)]);
  rows.push(['1M random keys: rate-limiter-flexible', ns(rlf), `native ${x(rlf / c)} faster`, '', '']);
  rows.push([
    '1M random keys: native consumeMany, per key',
    ns(many),
    `${x(c / many)} single calls; ${x(map / many)} Map; ${x(fast / many)} fast-ratelimit`,
    '≥ 4x Map and fast-ratelimit',
    verdict(map / many >= 4 && fast / many >= 4),
  ]);
  const oldSingle = r[CONTENDER.rawTryConsumeBaseline];
  if (oldSingle !== undefined) {
    // Set when TOLLGATE_BENCH_BASELINE_ADDON named an earlier build: the same raw calls on both.
    const newSingle = r[CONTENDER.rawTryConsume];
    const oldMany = r[CONTENDER.rawConsumeManyBaseline];
    const newMany = r[CONTENDER.rawConsumeMany];
    rows.push(['1M random keys: raw tryConsume, this build vs the baseline build', `${ns(newSingle)} vs ${ns(oldSingle)}`, `${x(oldSingle / newSingle)} faster`, '', '']);
    rows.push(['1M random keys: raw consumeMany per key, this build vs the baseline build', `${ns(newMany)} vs ${ns(oldMany)}`, `${x(oldMany / newMany)} faster`, '', '']);
  }
  const tsR = r[CONTENDER.tsConsume];
  rows.push(['1M random keys: TS engine consume', ns(tsR), `${x(tsR / map)} the Map limiter; ${x(tsR / fast)} fast-ratelimit`, '≤ 1.1x both', verdict(tsR / map <= 1.1 && tsR / fast <= 1.1)]);
  for (const peer of [CONTENDER.nativeTryConsume, CONTENDER.nativeTopKeys, CONTENDER.tsTryConsume, CONTENDER.limiterBucketPerKey, CONTENDER.keySelection]) {
    rows.push([`1M random keys: ${peer}`, ns(r[peer]), '', '', '']);
  }
}
if (results.memory) {
  const m = results.memory;
  const K = `${MEMORY_KEYS / 1e6}M keys`;
  // Net of the floor: what making the keys costs any contender (V8's heap grows under the garbage).
  const net = (c) => m[c].bytesPerKey - m.none.bytesPerKey;
  const others = (fmt) => ['map', 'fast-ratelimit', 'rate-limiter-flexible'].map((c) => `${c} ${fmt(c)}`).join(', ');
  rows.push([
    `${K}: JS floor (every key kept alive in an array, nothing else): RSS per key, worst call`,
    `${net('retain-keys').toFixed(1)} B, ${m['retain-keys'].worstCallMs.toFixed(2)} ms (${m['retain-keys'].callsOver1ms} calls > 1 ms)`,
    'V8 promoting retained strings: what any JS limiter pays',
    '',
    '',
  ]);
  rows.push([
    `${K}: floor (a call that does nothing): RSS per key, worst call`,
    `${m.none.bytesPerKey.toFixed(1)} B, ${m.none.worstCallMs.toFixed(2)} ms (${m.none.callsOver1ms} calls > 1 ms)`,
    'the machine and the key making; subtracted below',
    '',
    '',
  ]);
  for (const [label, c] of [
    ['tollgate, grown from the default', 'tollgate'],
    ['tollgate, preallocated', 'tollgate-preallocated'],
    ['tollgate TS engine', 'tollgate-js'],
  ]) {
    const t = m[c];
    rows.push([
      `${K}: ${label}: RSS per key`,
      `${net(c).toFixed(1)} B (${t.bytesPerKey.toFixed(1)} B gross)`,
      c === 'tollgate' ? others((o) => `${net(o).toFixed(0)} B`) : '',
      c === 'tollgate-js' ? '≤ the Map limiter' : '≤ 40 B',
      verdict(c === 'tollgate-js' ? net(c) <= net('map') : net(c) <= 40),
    ]);
    rows.push([
      `${K}: ${label}: worst single call`,
      `${t.worstCallMs.toFixed(2)} ms (${t.callsOver1ms} calls > 1 ms)`,
      c === 'tollgate' ? others((o) => `${m[o].worstCallMs.toFixed(0)} ms`) : '',
      c === 'tollgate-js' ? '≤ 5 ms' : '≤ 1 ms',
      verdict(t.worstCallMs <= (c === 'tollgate-js' ? 5 : 1)),
    ]);
    if (c !== 'tollgate-js') {
      const floor = m['none-timed'];
      rows.push([
        `${K}: ${label}: calls > 1 ms that no V8 collection overlapped`,
        `${t.callsOver1msOutsideGc} (worst ${t.worstCallOutsideGcMs.toFixed(2)} ms)`,
        `the do-nothing loop over ${floor.insertSeconds.toFixed(1)} s: ${floor.callsOver1ms} calls > 1 ms, ${floor.callsOver1msOutsideGc} outside GC (worst ${floor.worstCallMs.toFixed(2)} ms)`,
        '≤ 2, none > 3 ms',
        verdict(t.callsOver1msOutsideGc <= 2 && t.worstCallMs <= 3),
      ]);
    }
    rows.push([`${K}: ${label}: insert time`, `${t.insertSeconds.toFixed(1)} s`, c === 'tollgate' ? others((o) => `${m[o].insertSeconds.toFixed(1)} s`) : '', '', '']);
  }
}

const shmRows = [];
if (results.multi) {
  const f = results.multi;
  const shm = f['tollgate shared memory'];
  const local = f['tollgate in-process (each its own table)'];
  const ipc = f['rate-limiter-flexible cluster (IPC)'];
  const redis = f['rate-limiter-flexible Redis (loopback)'];
  const rate = (n) => `${Math.round(n).toLocaleString('en')}/s`;
  shmRows.push(['tollgate shared memory', rate(shm), '', '', '']);
  shmRows.push(['tollgate in-process, each process its own table', rate(local), `shared memory at ${x(local / shm)} slower`, 'within 1.5x', verdict(local / shm <= 1.5)]);
  shmRows.push(['rate-limiter-flexible RateLimiterCluster (IPC)', rate(ipc), `shared memory ${x(shm / ipc)} faster`, '≥ 100x', verdict(shm / ipc >= 100)]);
  if (redis !== undefined) {
    shmRows.push(['rate-limiter-flexible RateLimiterRedis (loopback)', rate(redis), `shared memory ${x(shm / redis)} faster`, '≥ 20x', verdict(shm / redis >= 20)]);
  } else {
    shmRows.push(['rate-limiter-flexible RateLimiterRedis', `skipped: ${f.redisSkipped}`, '', '≥ 20x', 'not measured']);
  }
}

const redisRows = [];
if (results.redis?.skipped) {
  redisRows.push(['Redis suite', `skipped: ${results.redis.skipped}`, '', '', 'not measured']);
} else if (results.redis) {
  const r = results.redis;
  const rate = (n) => `${Math.round(n).toLocaleString('en')}/s`;
  const cmds = (f) => `${f.commandsPerDecision.toFixed(3)} commands/decision`;
  const cpu = (f) => `${f.nodeCpuUs.toFixed(1)} µs Node CPU/decision`;
  const c = r.ceilings;
  // Each round's own ratio (rounds alternate the contenders with the ceilings), when measured so.
  const spread = (ratios) => (ratios === undefined ? '' : ` (rounds: ${ratios.map((v) => v.toFixed(2)).join(', ')})`);
  const median = r.roundRatios === undefined ? '' : `, median of ${r.roundRatios.incr.length} rounds`;
  redisRows.push(['server ceiling: pipelined INCR (redis-benchmark -P 16)', `${rate(c.incr)}${median}`, '1.00x', '', '']);
  redisRows.push(['server ceiling: EVALSHA of a one-INCR script (-P 16)', rate(c.evalsha), `${x(c.evalsha / c.incr)} INCR`, '', '']);
  redisRows.push([
    'tollgate RedisLimiter, fixed window',
    `${rate(r.tollgate.perSecond)}, ${cmds(r.tollgate)}, ${cpu(r.tollgate)}`,
    `${x(r.tollgate.perSecond / c.incr)} the INCR ceiling${spread(r.roundRatios?.incr)}; ${x(r.tollgate.perSecond / r.rlf.perSecond)} rate-limiter-flexible${spread(r.roundRatios?.rlf)}`,
    '≥ 0.5x INCR; ≥ 2x rlf',
    verdict(r.tollgate.perSecond / c.incr >= 0.5 && r.tollgate.perSecond / r.rlf.perSecond >= 2),
  ]);
  const redisCpu = (f) => (f.redisCpuUs === undefined ? '' : `, ${f.redisCpuUs.toFixed(1)} µs Redis CPU/decision`);
  if (r.loopFloor !== undefined) {
    // Issue 27 was filed at 9.8-10.7 µs of Node CPU per fixed-window decision, this loop included.
    redisRows.push([
      'Node CPU per decision, fixed window (the loop alone beside it)',
      `${cpu(r.tollgate)}${redisCpu(r.tollgate)}; the loop alone ${r.loopFloor.nodeCpuUs.toFixed(1)} µs`,
      `${x(10.7 / r.tollgate.nodeCpuUs)} less than at issue 27 (10.7 µs)`,
      '≤ 5.4 µs (halved)',
      verdict(r.tollgate.nodeCpuUs <= 5.35),
    ]);
  }
  redisRows.push([
    'tollgate RedisLimiter, token bucket',
    `${rate(r.tollgateTokenBucket.perSecond)}, ${cpu(r.tollgateTokenBucket)}${redisCpu(r.tollgateTokenBucket)}`,
    `${x(r.tollgateTokenBucket.perSecond / c.evalsha)} the EVALSHA ceiling${spread(r.roundRatios?.evalsha)}`,
    '≥ 0.8x',
    verdict(r.tollgateTokenBucket.perSecond / c.evalsha >= 0.8),
  ]);
  for (const [label, f, ratios] of [
    ['sliding window', r.tollgateSlidingWindow, r.roundRatios?.evalshaSliding],
    ['leaky bucket (GCRA)', r.tollgateGcra, r.roundRatios?.evalshaGcra],
  ]) {
    if (f !== undefined)
      redisRows.push([
        `tollgate RedisLimiter, ${label}`,
        `${rate(f.perSecond)}, ${cpu(f)}${redisCpu(f)}`,
        `${x(f.perSecond / c.evalsha)} the EVALSHA ceiling${spread(ratios)}`,
        '≥ 0.8x',
        verdict(f.perSecond / c.evalsha >= 0.8),
      ]);
  }
  redisRows.push(['tollgate: round trips per allowed decision', cmds(r.tollgate), 'decisions share calls', '≤ 1', verdict(r.tollgate.commandsPerDecision <= 1)]);
  redisRows.push([
    'rate-limiter-flexible RateLimiterRedis',
    `${rate(r.rlf.perSecond)}, ${cmds(r.rlf)}, ${cpu(r.rlf)}${redisCpu(r.rlf)}`,
    `tollgate's Node CPU per decision ${x(r.rlf.nodeCpuUs / r.tollgate.nodeCpuUs)} less`,
    '',
    '',
  ]);
  redisRows.push([
    'express-rate-limit + rate-limit-redis',
    `${rate(r.rateLimitRedis.perSecond)}, ${cmds(r.rateLimitRedis)}`,
    `tollgate ${x(r.tollgate.perSecond / r.rateLimitRedis.perSecond)} faster`,
    '',
    '',
  ]);
  redisRows.push([
    'tollgate, 90% of traffic over its limit',
    `${rate(r.abusive.perSecond)}, ${cmds(r.abusive)}`,
    `${((100 * r.abusive.denyCacheHits) / (r.abusive.perSecond * (quick ? 1.5 : 3))).toFixed(0)}% answered by the deny cache`,
    '≤ 0.15 commands/decision',
    verdict(r.abusive.commandsPerDecision <= 0.15),
  ]);
  redisRows.push(['tollgate, one hot key: without leases', `${rate(r.hot.perSecond)}, ${cpu(r.hot)}`, '', '', '']);
  redisRows.push([
    'tollgate, one hot key: leases',
    `${rate(r.hotLeased.perSecond)}, ${cpu(r.hotLeased)}`,
    `${x(r.hotLeased.perSecond / r.hot.perSecond)} without; ${(100 * r.hotLeased.leasedShare).toFixed(1)}% decided in process`,
    '',
    '',
  ]);
  const l4 = r.leases4;
  redisRows.push([
    '4 processes, one hot key, leases, limit 200,000',
    `${l4.allowed.toLocaleString('en')} allowed, ${rate(l4.perSecond)}`,
    `${(100 * l4.leasedShare).toFixed(1)}% decided in process`,
    'exact total; ≥ 90% local',
    verdict(l4.allowed === l4.limit && l4.leasedShare >= 0.9),
  ]);
  redisRows.push([
    '3-master Cluster: tollgate RedisLimiter',
    `${rate(r.clusterTollgate.perSecond)}, ${cmds(r.clusterTollgate)}, ${cpu(r.clusterTollgate)}`,
    `${x(r.clusterTollgate.perSecond / r.clusterRlf.perSecond)} rate-limiter-flexible`,
    '≥ 2x',
    verdict(r.clusterTollgate.perSecond / r.clusterRlf.perSecond >= 2),
  ]);
  redisRows.push(['3-master Cluster: rate-limiter-flexible', `${rate(r.clusterRlf.perSecond)}, ${cmds(r.clusterRlf)}, ${cpu(r.clusterRlf)}`, '', '', '']);
}

const scaleRows = [];
if (results.redisScale?.skipped) {
  scaleRows.push(['Redis scale suite', `skipped: ${results.redisScale.skipped}`, '', '', 'not measured']);
} else if (results.redisScale) {
  const s = results.redisScale;
  const rate = (n) => `${Math.round(n).toLocaleString('en')}/s`;
  const us = (v) => `${v.toFixed(1)} µs`;
  const share = (v) => `${Math.max(0, 100 * v).toFixed(0)}%`;
  const mid = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const spread = (values) => ` (rounds: ${values.map((v) => (v === null ? '∞' : v.toFixed(2))).join(', ')})`;
  // A figure some of whose calls went to onError (or failed) is not the limiter's: it never meets a target.
  const clean = (...fs) => fs.every((f) => f.fallbacks === 0 && f.failed === 0);
  const fellBack = (f) => (clean(f) ? '' : `; ${f.fallbacks} to onError, ${f.failed} failed`);
  const cost = (f) => `${rate(f.perSecond)}; ${us(f.nodeCpuUs)} Node + ${us(f.redisCpuUs)} Redis CPU/decision; ${share(f.newKeyShare)} made their key${fellBack(f)}`;
  const short = { 10000: '10k', 100000: '100k', 1000000: '1M' };
  for (const [keys, k] of Object.entries(s.scale)) {
    const at = `${short[keys] ?? keys} keys`;
    const targeted = Number(keys) >= 100_000;
    const r = k.roundRatios;
    const ceilingCell = (f) => `${rate(f.perSecond)}; ${us(f.redisCpuUs)} Redis CPU/request; ${share(f.newKeyShare)} made their key`;
    scaleRows.push([`${at}: server ceiling, pipelined INCR (redis-benchmark -P 16 -r ${Number(keys).toLocaleString('en')})`, ceilingCell(k.incr), '1.00x', '', '']);
    scaleRows.push([`${at}: server ceiling, one-INCR EVALSHA (-P 16)`, ceilingCell(k.evalsha), `${x(k.evalsha.perSecond / k.incr.perSecond)} INCR`, '', '']);
    const fwIncr = mid(r.fixedWindowIncr);
    const fwRlf = mid(r.fixedWindowRlf);
    scaleRows.push([
      `${at}: tollgate RedisLimiter, fixed window`,
      cost(k.fixedWindow),
      `${x(fwIncr)} the INCR ceiling${spread(r.fixedWindowIncr)}; ${x(fwRlf)} rate-limiter-flexible${spread(r.fixedWindowRlf)}`,
      targeted ? '≥ 0.5x INCR; ≥ 2.5x rlf' : '',
      targeted ? verdict(fwIncr >= 0.5 && fwRlf >= 2.5 && clean(k.fixedWindow, k.rlf)) : '',
    ]);
    for (const [kind, label, ratios] of [
      ['tokenBucket', 'token bucket', r.tokenBucketEvalsha],
      ['slidingWindow', 'sliding window', r.slidingWindowEvalsha],
      ['gcra', 'leaky bucket (GCRA)', r.gcraEvalsha],
    ]) {
      scaleRows.push([
        `${at}: tollgate RedisLimiter, ${label}`,
        cost(k[kind]),
        `${x(mid(ratios))} the EVALSHA ceiling${spread(ratios)}`,
        targeted ? '≥ 0.8x EVALSHA' : '',
        targeted ? verdict(mid(ratios) >= 0.8 && clean(k[kind])) : '',
      ]);
    }
    scaleRows.push([`${at}: rate-limiter-flexible RateLimiterRedis`, cost(k.rlf), `${x(k.rlf.perSecond / k.incr.perSecond)} the INCR ceiling`, '', '']);
  }
  if (s.cluster) {
    const c = s.cluster;
    const ratios = c.roundRatios.fixedWindowRlf;
    scaleRows.push([
      `3-master Cluster, ${short[c.keys] ?? c.keys} keys: tollgate RedisLimiter, fixed window`,
      cost(c.fixedWindow),
      `${x(mid(ratios))} rate-limiter-flexible${spread(ratios)}`,
      '≥ 2x rlf',
      verdict(mid(ratios) >= 2 && clean(c.fixedWindow, c.rlf)),
    ]);
    scaleRows.push([`3-master Cluster, ${short[c.keys] ?? c.keys} keys: rate-limiter-flexible RateLimiterRedis`, cost(c.rlf), '', '', '']);
  }
  // JSON has no Infinity: a call never answered (the contender fell behind) arrives as null.
  const ms = (v) => (v === null ? 'never answered' : `${v.toFixed(3)} ms`);
  const pcts = (p) => `p50 ${ms(p.p50Ms)}, p99 ${ms(p.p99Ms)}, p99.9 ${ms(p.p999Ms)}`;
  const times = (a, b) => (a === null ? '∞' : x(a / b));
  /** `f`'s p99 against `other`'s, unless `other` could not keep up with the load. */
  const against = (f, other, name) => (other.fellBehind || other.p99Ms === null ? `${name} fell behind` : `${times(f.p99Ms, other.p99Ms)} ${name}'s`);
  const lone = s.latency.lone;
  if (lone) {
    const n = `${lone.incr.calls.toLocaleString('en')} calls each, one at a time, 100k keys`;
    scaleRows.push([`latency, ${n}: raw INCR round trip (same ioredis client)`, pcts(lone.incr), '1.00x', '', '']);
    scaleRows.push([
      `latency, ${n}: tollgate fixed window`,
      pcts(lone.tollgate),
      `p99 ${times(lone.tollgate.p99Ms, lone.incr.p99Ms)} raw INCR's; ${times(lone.tollgate.p99Ms, lone.rlf.p99Ms)} rate-limiter-flexible's`,
      "p99 ≤ 2x raw INCR's, ≤ rlf's",
      verdict(lone.tollgate.p99Ms <= 2 * lone.incr.p99Ms && lone.tollgate.p99Ms <= lone.rlf.p99Ms),
    ]);
    scaleRows.push([`latency, ${n}: rate-limiter-flexible`, pcts(lone.rlf), `p99 ${times(lone.rlf.p99Ms, lone.incr.p99Ms)} raw INCR's`, '', '']);
  }
  for (const load of s.latency.open ?? []) {
    const at = `offered ${rate(load.rate)}${load.share === null ? '' : ` (${100 * load.share}% of tollgate's maximum at 100k keys, ${rate(s.latency.max)})`}`;
    const cell = (f) =>
      `${pcts(f)}; ${rate(f.achieved)} answered${f.fellBehind ? `, fell behind: ${f.notStarted.toLocaleString('en')} calls not offered` : ''}${f.unanswered > f.notStarted ? `, ${f.unanswered - f.notStarted} unanswered` : ''}${fellBack(f)}`;
    scaleRows.push([`${at}: the schedule alone (a call that does nothing)`, cell(load.noop), "the method's floor: 1 ms timer ticks", '', '']);
    scaleRows.push([`${at}: raw INCR`, cell(load.incr), `p99 from its own start ${ms(load.incr.serviceP99Ms)}`, '', '']);
    const fixed = load.share === null;
    scaleRows.push([
      `${at}: tollgate fixed window`,
      cell(load.tollgate),
      `p99 ${against(load.tollgate, load.rlf, 'rate-limiter-flexible')}, ${against(load.tollgate, load.incr, 'raw INCR')}${spread(load.tollgate.p99Rounds)}; from its own start ${ms(load.tollgate.serviceP99Ms)}`,
      fixed ? "p99 ≤ rlf's" : '',
      fixed ? verdict(load.tollgate.p99Ms !== null && (load.rlf.p99Ms === null || load.tollgate.p99Ms <= load.rlf.p99Ms) && clean(load.tollgate)) : '',
    ]);
    scaleRows.push([
      `${at}: rate-limiter-flexible`,
      cell(load.rlf),
      `p99 from its own start ${ms(load.rlf.serviceP99Ms)}${load.rlf.p99Rounds.length > 1 ? `; p99 by round ${load.rlf.p99Rounds.map((v) => (v === null ? '∞' : v.toFixed(2))).join(', ')}` : ''}`,
      '',
      '',
    ]);
  }
}

const failureRows = [];
let failureTimeline = '';
if (results.redisFailure?.skipped) {
  failureRows.push(['Redis failure suite', `skipped: ${results.redisFailure.skipped}`, '', '', 'not measured']);
} else if (results.redisFailure) {
  const f = results.redisFailure;
  const ms = (v) => `${v < 1 ? v.toFixed(3) : v.toFixed(1)} ms`;
  const dead = (d) => `p50 ${ms(d.p50Ms)}, p99 ${ms(d.p99Ms)}, max ${ms(d.maxMs)}; ${d.redisCallsPerSecond.toFixed(1)} Redis calls/s`;
  failureRows.push([
    'dead redis-server, breaker on (default): wait per call',
    dead(f.deadWithBreaker),
    `p99 ${x(f.deadWithoutBreaker.p99Ms / f.deadWithBreaker.p99Ms)} shorter than without`,
    'p99 < 1 ms',
    verdict(f.deadWithBreaker.p99Ms < 1),
  ]);
  failureRows.push(['dead redis-server, breaker: false: wait per call', dead(f.deadWithoutBreaker), `every call waits timeoutMs (${f.timeoutMs} ms)`, '', '']);
  const o = f.failover;
  failureRows.push([
    'Cluster master killed: back to Redis after',
    o.recoveredAfterMs === null ? 'not within 40 s' : `${o.recoveredAfterMs} ms`,
    `${o.timeouts} timeouts, ${o.shortCircuited.toLocaleString('en')} short-circuited, ${o.lateRefused} refused late, ${o.lateExecuted} executed late`,
    '',
    '',
  ]);
  failureTimeline = [
    `Cluster failover timeline (ioredis Cluster, cluster-node-timeout 1000 ms, ${f.timeoutMs} ms timeout, 16 calls in flight; t = 0 at the kill):`,
    '',
    '| t (ms) | decisions/s | decided by Redis | slowest call | open nodes |',
    '|---|---|---|---|---|',
    ...o.timeline.map((t) => `| ${t.atMs} | ${Math.round(t.decisionsPerSecond).toLocaleString('en')} | ${(100 * t.redisShare).toFixed(0)}% | ${ms(t.slowestMs)} | ${t.openNodes} |`),
  ].join('\n');
}

const operationsRows = [];
if (results.redisOperations?.skipped) {
  operationsRows.push(['Redis operations suite', `skipped: ${results.redisOperations.skipped}`, '', '', 'not measured']);
} else if (results.redisOperations) {
  const o = results.redisOperations;
  const pct = (v) => `${(100 * v).toFixed(2)}%`;
  // JSON has no Infinity: a call still pending when the suite gave up on it arrives as null.
  const ms = (v) => (v === null ? 'pending' : `${v < 1 ? v.toFixed(3) : v.toFixed(1)} ms`);
  const m = o.migration;
  operationsRows.push([
    `migrating a group slot of ${m.keysMoved.toLocaleString('en')} keys under traffic: decisions to onError`,
    `${pct(m.fallbackShare)} of ${m.decisions.toLocaleString('en')}; the migrating group was ${pct(m.groupShare)} of the traffic`,
    `breaker opened ${m.breakerOpened} times; ${m.migrateCalls.toLocaleString('en')} MIGRATE calls in ${(m.migrationMs / 1000).toFixed(2)} s; ${m.timeouts} timeouts`,
    "≤ the group's share; no breaker opened",
    verdict(m.fallbackShare <= m.groupShare && m.breakerOpened === 0),
  ]);
  const on = o.windowLeasesOn;
  const off = o.windowLeasesOff;
  operationsRows.push([
    `replies 150 ms late, leases on: most admitted in one Redis window (limit ${on.limit.toLocaleString('en')})`,
    `${on.maxAdmitted.toLocaleString('en')} (per window: ${on.perWindow.join(', ')}); ${on.outside} between windows`,
    `leases off: ${off.maxAdmitted.toLocaleString('en')} (${off.perWindow.join(', ')}); counted by Redis' clock, ${on.ambiguous} and ${off.ambiguous} too near an edge to place`,
    '≤ the limit',
    verdict(on.maxAdmitted <= on.limit && on.outside === 0),
  ]);
  operationsRows.push([
    "replies 150 ms late, leases on: decisions whose resetMs passes their window's end",
    `${on.resetOver} of ${on.resetChecked} lease decisions`,
    `leases off (decided by Redis, the reset it read): ${off.resetOver} of ${off.resetChecked}`,
    '0',
    verdict(on.resetOver === 0),
  ]);
  const hOn = o.hotLeasesOn;
  const hOff = o.hotLeasesOff;
  const wait = (h) =>
    `p50 ${ms(h.p50Ms)}, p99 ${ms(h.p99Ms)}, max ${ms(h.maxMs)}; ${h.beyondTimeout} of ${h.calls.toLocaleString('en')} settled past ${o.timeoutMs} ms, ${h.pendingAfter1s} pending 1 s after`;
  const ratio = hOn.p99Ms === null || hOff.p99Ms === null ? 'p99 pending' : `p99 ${x(hOn.p99Ms / hOff.p99Ms)} leases off's; ${(100 * hOn.leasedShare).toFixed(0)}% decided from leases`;
  operationsRows.push([
    'hot key at ~4,600 calls/s, replies 10 ms late, leases on: wait per call',
    wait(hOn),
    ratio,
    `every call within timeoutMs (${o.timeoutMs} ms); p99 ≤ 2x leases off`,
    verdict(hOn.beyondTimeout === 0 && hOn.pendingAfter1s === 0 && hOn.p99Ms !== null && hOff.p99Ms !== null && hOn.p99Ms <= 2 * hOff.p99Ms),
  ]);
  operationsRows.push(['hot key at ~4,600 calls/s, replies 10 ms late, leases off: wait per call', wait(hOff), '', '', '']);
}

const httpRows = [];
if (results.http) {
  const pct = (a, b) => `${((100 * a) / b).toFixed(1)}%`;
  for (const framework of ['express', 'fastify']) {
    const f = results.http[framework];
    const peer = framework === 'express' ? 'express-rate-limit' : '@fastify/rate-limit';
    const rps = (n) => `${Math.round(n).toLocaleString('en')} req/s`;
    httpRows.push([`${framework}, no limiter`, rps(f.none), '100%', '', '']);
    httpRows.push([`${framework}, an empty ${framework === 'express' ? 'middleware' : 'onRequest hook'} (the floor)`, rps(f.empty), pct(f.empty, f.none), '', '']);
    httpRows.push([
      `${framework} + tollgate (default headers: legacy and draft-8)`,
      rps(f.tollgate),
      `${pct(f.tollgate, f.none)} (${pct(f.tollgate, f.empty)} of the floor)`,
      '≥ 97%',
      verdict(f.tollgate / f.none >= 0.97),
    ]);
    httpRows.push([
      `${framework} + tollgate (legacy headers, as the peer sends)`,
      rps(f['tollgate-legacy']),
      `${pct(f['tollgate-legacy'], f.none)} (${pct(f['tollgate-legacy'], f.empty)} of the floor)`,
      '≥ 97%',
      verdict(f['tollgate-legacy'] / f.none >= 0.97),
    ]);
    httpRows.push([`${framework} + ${peer}`, rps(f.peer), pct(f.peer, f.none), '', '']);
    // Server CPU per request: what the server could sustain if it, not the load generator, were the bottleneck.
    const us = (v) => `${f.cpu[v].toFixed(2)} µs`;
    httpRows.push([
      `${framework}: server CPU per request`,
      `none ${us('none')}, tollgate ${us('tollgate')} (legacy ${us('tollgate-legacy')}), ${peer} ${us('peer')}`,
      `capacity kept: tollgate ${pct(f.cpu.none, f.cpu.tollgate)}, legacy ${pct(f.cpu.none, f.cpu['tollgate-legacy'])}, ${peer} ${pct(f.cpu.none, f.cpu.peer)}`,
      '≥ 97%',
      verdict(f.cpu.none / f.cpu.tollgate >= 0.97),
    ]);
  }
}

const httpCostRows = [];
if (results.httpCost) {
  const c = results.httpCost;
  const us = (f) => `${(f.overBareNs / 1000).toFixed(2)} µs`;
  const e = c.express;
  const erl = e['express-rate-limit (defaults)'].overBareNs;
  const hit = e['hitlimit (defaults)'].overBareNs;
  const dflt = e['tollgate (default: legacy + draft-8)'].overBareNs;
  const legacy = e['tollgate (legacy)'].overBareNs;
  httpCostRows.push([
    'express/node: tollgate, default headers (legacy + draft-8)',
    us(e['tollgate (default: legacy + draft-8)']),
    `${x(erl / dflt)} less than express-rate-limit; ${x(hit / dflt)} less than hitlimit`,
    '≤ 1.0 µs; ≤ 1/4 express-rate-limit; below hitlimit',
    verdict(dflt <= 1000 && dflt * 4 <= erl && dflt < hit),
  ]);
  httpCostRows.push(['express/node: tollgate, legacy headers', us(e['tollgate (legacy)']), '', '≤ 0.7 µs', verdict(legacy <= 700)]);
  const erlStore = e['express-rate-limit + ExpressRateLimitStore'].overBareNs;
  httpCostRows.push(["express-rate-limit with tollgate's store", us(e['express-rate-limit + ExpressRateLimitStore']), `${x(erlStore / erl)} its MemoryStore's cost`, '', '']);
  for (const v of ['tollgate (draft-8)', 'tollgate (no headers)', 'express-rate-limit (defaults)', 'hitlimit (defaults)']) {
    httpCostRows.push([`express/node: ${v}`, us(e[v]), '', '', '']);
  }
  const f = c.fastify;
  const peer = f['@fastify/rate-limit (defaults)'].overBareNs;
  const fd = f['tollgate (default: legacy + draft-8)'].overBareNs;
  httpCostRows.push([
    'fastify: tollgate, default headers (legacy + draft-8)',
    us(f['tollgate (default: legacy + draft-8)']),
    `${x(fd / peer)} @fastify/rate-limit's cost`,
    '≤ 1.0 µs; below @fastify/rate-limit',
    verdict(fd <= 1000 && fd < peer),
  ]);
  const frlStore = f['@fastify/rate-limit + FastifyRateLimitStore'].overBareNs;
  httpCostRows.push(["@fastify/rate-limit with tollgate's store", us(f['@fastify/rate-limit + FastifyRateLimitStore']), `${x(frlStore / peer)} its own store's cost`, '', '']);
  for (const v of ['tollgate (legacy)', 'tollgate (draft-8)', 'tollgate (no headers)', '@fastify/rate-limit (defaults)', 'hitlimit (defaults)']) {
    httpCostRows.push([`fastify: ${v}`, us(f[v]), '', '', '']);
  }
  // Koa and Hono: the middleware against the framework's usual limiter, with the floor beside it
  // (the same five headers set by a middleware that limits nothing: what the framework charges).
  const FLOOR = 'floor: the same five headers set, no limiter';
  for (const [framework, ours, theirs] of [
    ['koa', 'tollgate koaRateLimit (default: legacy + draft-8)', 'koa-ratelimit (memory driver)'],
    ['hono', 'tollgate honoRateLimit (default: legacy + draft-8)', 'hono-rate-limiter (defaults)'],
  ]) {
    const v = c[framework];
    if (v === undefined) continue;
    httpCostRows.push([`${framework}: ${ours}`, us(v[ours]), `${x(v[ours].overBareNs / v[theirs].overBareNs)} ${theirs}'s cost; setting the same headers alone costs ${us(v[FLOOR])}`, '', '']);
    httpCostRows.push([`${framework}: ${theirs}`, us(v[theirs]), '', '', '']);
  }
  httpCostRows.push([
    'the bare request itself (subtracted)',
    `express/node ${(e.bare.ns / 1000).toFixed(2)} µs (making the request objects), fastify ${(f.bare.ns / 1000).toFixed(2)} µs (its whole request path)` +
      (c.koa && c.hono ? `, koa ${(c.koa.bare.ns / 1000).toFixed(2)} µs, hono ${(c.hono.bare.ns / 1000).toFixed(2)} µs (their whole request paths)` : ''),
    '',
    '',
    '',
  ]);
}

const clientRows = [];
if (results.client) {
  const c = results.client;
  for (const [name, a] of Object.entries(c.achieved)) {
    const target = name.startsWith('tollgate');
    clientRows.push([
      `${name}: ${c.jobs} requests to an upstream of ${c.quota}/s`,
      `${(100 * a.shareOfQuota).toFixed(1)}% of the quota, ${a.tooMany} 429s, ${a.completed} succeeded`,
      `${Math.round(c.overheadNs[name === 'tollgate limitedFetch' ? 'tollgate queue + acquire' : name]).toLocaleString('en')} ns scheduling overhead per job`,
      target ? '≥ 97%, zero 429s' : '',
      target ? verdict(a.shareOfQuota >= 0.97 && a.tooMany === 0) : '',
    ]);
  }
  for (const [name, a] of Object.entries(c.jitter ?? {})) {
    const target = name.includes('upstream:');
    clientRows.push([
      `${name}: ${a.calls} calls to an upstream of 5 per 1,000 ms (counted on arrival), 0-40 ms of delay each way`,
      `${(100 * a.shareOfQuota).toFixed(1)}% of the quota, ${a.tooMany} 429s, ${a.completed} succeeded`,
      '',
      target ? '≥ 85%, zero 429s' : '',
      target ? verdict(a.shareOfQuota >= 0.85 && a.tooMany === 0) : '',
    ]);
  }
  for (const [name, a] of Object.entries(c.account ?? {})) {
    const target = name.startsWith('tollgate');
    clientRows.push([
      `${name}: 4 processes × 10 calls on one account, 5 per 1,000 ms (counted on arrival) and 2 in flight, 0-40 ms of delay each way`,
      `${(100 * a.shareOfQuota).toFixed(1)}% of the quota, ${a.tooMany} 429s, ${a.completed} of ${a.calls} succeeded, at most ${a.mostInFlight} in flight at the upstream`,
      '',
      target ? '≥ 80%, zero 429s' : '',
      target ? verdict(a.shareOfQuota >= 0.8 && a.tooMany === 0) : '',
    ]);
  }
}

const adapterRows = [];
if (results.adapters) {
  const a = results.adapters;
  const pairs = [
    ['rate-limiter-flexible', 'RateLimiterTollgate consume', 'rate-limiter-flexible RateLimiterMemory consume'],
    ['@nestjs/throttler', 'NestThrottlerStorage increment', '@nestjs/throttler ThrottlerStorageService increment'],
  ];
  for (const [library, ours, theirs] of pairs) {
    adapterRows.push([`${library}: ${ours}`, ns(a[ours]), `${x(a[theirs] / a[ours])} faster than its own store (${ns(a[theirs])})`, '', '']);
  }
}

const adapterRedisRows = [];
if (results.adaptersRedis) {
  const a = results.adaptersRedis;
  const floor = a['floor: one INCR round trip'];
  const cell = (f) => `${Math.round(f.callsPerSecond).toLocaleString('en')} calls/s; p50 ${f.p50Ms.toFixed(2)} ms, p99 ${f.p99Ms.toFixed(2)} ms, p99.9 ${f.p999Ms.toFixed(2)} ms`;
  adapterRedisRows.push(['Redis floor: one INCR round trip', cell(floor), '1.00x', '', '']);
  const pairs = [
    ['ExpressRateLimitStore({ redis }) increment', 'rate-limit-redis RedisStore increment'],
    ['FastifyRateLimitStore.with({ redis }) incr', '@fastify/rate-limit RedisStore incr'],
    ['RateLimiterTollgate({ storeClient }) consume', 'rate-limiter-flexible RateLimiterRedis consume'],
  ];
  for (const [ours, theirs] of pairs) {
    adapterRedisRows.push([
      ours,
      cell(a[ours]),
      `${x(a[ours].callsPerSecond / a[theirs].callsPerSecond)} the calls/s of its peer; ${x(a[ours].callsPerSecond / floor.callsPerSecond)} the floor's`,
      '',
      '',
    ]);
    adapterRedisRows.push([theirs, cell(a[theirs]), `${x(a[theirs].callsPerSecond / floor.callsPerSecond)} the floor's`, '', '']);
  }
}

const m = machine();
const measured = (setting) => `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run bench${quick ? ' -- --quick' : ''}\` on ${m.cpu}, ${m.platform}, Node ${m.node}; ${setting}.`;
/** A caption and its rows as a markdown table; '' when there are no rows. */
const markdown = (caption, tableRows) =>
  tableRows.length === 0 ? '' : [caption, '', '| figure | value | ratio | target | |', '|---|---|---|---|---|', ...tableRows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

// The in-process suites share one caption; each suite keeps its own section in RESULTS.md.
const coreCaption = measured(`${((Date.now() - started) / 1000).toFixed(0)} s`);
const sections = {
  hot: markdown(
    coreCaption,
    rows.filter((r) => r[0].includes('hot key')),
  ),
  random: markdown(
    coreCaption,
    rows.filter((r) => r[0].includes('1M random keys')),
  ),
  memory: markdown(
    coreCaption,
    rows.filter((r) => r[0].includes('M keys:')),
  ),
  shared: markdown(measured('two processes'), shmRows),
  redis: markdown(measured('redis-server 7 on loopback'), redisRows),
  redisScale: markdown(
    measured(
      `redis-server 7 on loopback and a 3-master Cluster, ${results.redisScale?.inFlight} calls in flight, ${results.redisScale?.rounds} alternating rounds of ${results.redisScale?.durationMs} ms; open loop ${results.redisScale?.openLoopMs} ms per load; ${results.redisScale?.seconds?.toFixed(0)} s`,
    ),
    scaleRows,
  ),
  redisFailure: failureRows.length === 0 ? '' : `${markdown(measured('redis-server 7 on loopback, in process'), failureRows)}\n\n${failureTimeline}`,
  redisOperations: markdown(measured('redis-server 7 on loopback (a 3-master Cluster for the migration; a delay proxy on the reply path), in process'), operationsRows),
  httpCost: markdown(measured(`in process, median of ${results.httpCost?.rounds} alternating rounds of ${results.httpCost?.perRound} requests, paired against a bare middleware/hook`), httpCostRows),
  http: markdown(measured('autocannon, 20 connections, loopback'), httpRows),
  client: markdown(measured('mock upstream in its own process on loopback'), clientRows),
  adapters: markdown(measured('in process'), adapterRows),
  adaptersRedis: markdown(
    measured(`redis-server 7 on loopback, ${results.adaptersRedis?.inFlight} calls in flight, ${results.adaptersRedis?.keys} keys at random, ${results.adaptersRedis?.rounds} alternating rounds`),
    adapterRedisRows,
  ),
};
for (const body of Object.values(sections)) if (body !== '') console.log(`\n${body}\n`);

if (args.has('--write')) {
  const file = here('./RESULTS.md');
  let text = readFileSync(file, 'utf8');
  const record = (section, body) => {
    const start = `<!-- ${section}:start -->`;
    const end = `<!-- ${section}:end -->`;
    const at = text.indexOf(start);
    const until = text.indexOf(end);
    if (at < 0 || until < 0) throw new Error(`RESULTS.md lacks the ${start} … ${end} markers`);
    text = `${text.slice(0, at + start.length)}\n${body}\n${text.slice(until)}`;
  };
  for (const [section, body] of Object.entries(sections)) if (body !== '') record(section, body);
  writeFileSync(file, text);
  console.error(`recorded in ${file}`);
}
