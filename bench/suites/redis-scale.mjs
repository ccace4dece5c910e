// Redis at the key counts users bring, and latency as a figure of its own: on a
// redis-server the suite starts, throughput at 10k, 100k and 1M random keys (1,024 calls in flight)
// for tollgate's RedisLimiter (four algorithms) and rate-limiter-flexible against the server's own
// ceilings at the same key count; the same on a local 3-master Cluster at 1M keys; then latency,
// one call at a time and at offered loads, beside a raw INCR on the same client. Contenders
// alternate round by round; key strings are built per call, as `'ip:' + req.ip` is. Skipped,
// saying why, without redis-server.
//   node bench/suites/redis-scale.mjs [durationMs] [rounds] [loneCalls]
import { spawnSync } from 'node:child_process';
import { Cluster, Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { RedisLimiter, fixedWindow, leakyBucket, slidingWindow, tokenBucket } from '../../dist/index.js';
import { redisAvailable, startCluster, startRedis } from '../../scripts/local-redis.mjs';
import { keyNumbers, progress, report } from '../common.mjs';

/** Each throughput measurement's length; the warm-up round's are a quarter of it. */
const durationMs = Number(process.argv[2] ?? 1500);
/** Counted rounds of each comparison (after one warm-up round that is not counted). */
const ROUNDS = Number(process.argv[3] ?? 3);
/** Calls per contender, one at a time, for the lone-call percentiles (≥ 20,000: p99.9 from 20 calls). */
const LONE_CALLS = Number(process.argv[4] ?? 40_000);
const IN_FLIGHT = 1024;
const KEY_COUNTS = [10_000, 100_000, 1_000_000];
/** The key count of the latency figures and of the offered loads' base. */
const LATENCY_KEYS = 100_000;
const CLUSTER_KEYS = 1_000_000;
/** Offered loads: a fixed one, and shares of tollgate's fixed-window maximum at LATENCY_KEYS. */
const FIXED_LOAD = 20_000;
const LOAD_SHARES = [0.25, 0.5, 0.8];
const OPEN_LOOP_MS = Math.max(1000, Math.round(durationMs * 0.75));
/** How long an offered-load run waits for its calls after the last has been started. */
const DRAIN_MS = 5000;
/** An offered-load run stops offering calls to a contender this many seconds' worth of calls behind. */
const MAX_BACKLOG_S = 0.5;
/** Never reached: every decision is an allowed one that writes. */
const LIMIT = 1e9;
const startedAt = performance.now();

const probe = redisAvailable();
if (!probe.available) {
  progress(`SKIPPED: ${probe.reason}`);
  report('redis-scale', { skipped: probe.reason });
  process.exit(0);
}

/** The key redis-benchmark's `key:__rand_int__` makes of `n` (12 digits): raw INCRs touch the ceilings' keys. */
const benchmarkKey = (n) => `key:${String(n).padStart(12, '0')}`;

/** CPU seconds of redis-server's main thread (INFO cpu), through `admin`. */
async function redisCpuSeconds(admin) {
  const info = await admin.info('cpu');
  const field = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user_main_thread') + field('used_cpu_sys_main_thread');
}

/**
 * Keys Redis has made so far: those it holds plus those it has expired (INFO stats), so a key that
 * expired and was made again counts twice, and another contender's keys expiring count for nobody.
 */
async function keysMade(admin) {
  const info = await admin.info('stats');
  return (await admin.dbsize()) + Number(/expired_keys:(\d+)/.exec(info)?.[1] ?? NaN);
}

/** Sums over every admin client (one per master on a Cluster). */
async function sumOver(admins, read) {
  let sum = 0;
  for (const a of admins) sum += await read(a);
  return sum;
}

/** The tollgate and rate-limiter-flexible contenders on `client` (each kind its own namespace). */
function contenders(client) {
  const tollgate = (name, policy) => {
    const limiter = new RedisLimiter({ name, redis: client, policy, prefix: 'tg:', denyCache: false });
    return { decide: (k) => limiter.consume(k), fallbacks: () => limiter.stats().failedOpen + limiter.stats().failedClosed, close: () => limiter.close() };
  };
  const rlf = () => {
    const limiter = new RateLimiterRedis({ storeClient: client, keyPrefix: 'rlf', points: LIMIT, duration: 600 });
    return { decide: (k) => limiter.consume(k), fallbacks: () => 0, close: () => undefined };
  };
  return {
    fixedWindow: () => tollgate('fw', fixedWindow({ limit: LIMIT, windowMs: 600_000 })),
    tokenBucket: () => tollgate('tb', tokenBucket({ capacity: LIMIT, refillPerSecond: 1000 })),
    slidingWindow: () => tollgate('sw', slidingWindow({ limit: LIMIT, windowMs: 600_000 })),
    gcra: () => tollgate('lb', leakyBucket({ burst: LIMIT, tokens: 1000, intervalMs: 1000 })),
    rlf,
  };
}

/**
 * IN_FLIGHT lanes calling `contender.decide('ip:' + n)` for `ms`, n at random below `keys`:
 * decisions/s, Node and Redis CPU per decision, the share of decisions that made their Redis key
 * (a first touch, or a key that had expired: GCRA and token-bucket state lives only until full),
 * and how many went to onError (a figure with any is not the limiter's).
 */
async function closedLoop(contender, keys, admins, ms, seed) {
  const next = keyNumbers(keys, seed);
  let count = 0;
  let failed = 0;
  await contender.decide(`ip:${next()}`); // connect, load scripts
  const fallbacksBefore = contender.fallbacks();
  const redisBefore = await sumOver(admins, redisCpuSeconds);
  const keysBefore = await sumOver(admins, keysMade);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const end = started + ms;
  const lane = async () => {
    while (performance.now() < end) {
      try {
        await contender.decide('ip:' + next());
      } catch {
        failed++;
      }
      count++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const redisCpu = (await sumOver(admins, redisCpuSeconds)) - redisBefore;
  const newKeys = (await sumOver(admins, keysMade)) - keysBefore;
  return {
    perSecond: count / seconds,
    nodeCpuUs: (cpu.user + cpu.system) / count,
    redisCpuUs: (redisCpu * 1e6) / count,
    newKeyShare: newKeys / count,
    fallbacks: contender.fallbacks() - fallbacksBefore,
    failed,
  };
}

/** redis-benchmark -P 16 -c 32 -r `keys` over `requests`: requests/s and Redis CPU per request. */
async function ceiling(port, admin, keys, requests, command) {
  const before = await redisCpuSeconds(admin);
  const keysBefore = await keysMade(admin);
  const r = spawnSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-P', '16', '-c', '32', '-n', String(requests), '-r', String(keys), '--csv', ...command], {
    encoding: 'utf8',
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const perSecond = Number(line.split(',')[1]?.replaceAll('"', ''));
  if (!(perSecond > 0)) throw new Error(`redis-benchmark ${command.join(' ')}: ${r.stderr || r.stdout}`);
  return { perSecond, redisCpuUs: (((await redisCpuSeconds(admin)) - before) * 1e6) / requests, newKeyShare: ((await keysMade(admin)) - keysBefore) / requests };
}

/** The round whose rate is the median (its other figures with it). */
const medianRun = (runs) => [...runs].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(runs.length / 2)];

const line = (name, f) =>
  progress(
    `${name.padEnd(40)} ${Math.round(f.perSecond).toLocaleString('en').padStart(10)}/s` +
      (f.nodeCpuUs === undefined ? '' : `, ${f.nodeCpuUs.toFixed(1)} µs Node`) +
      `, ${f.redisCpuUs.toFixed(1)} µs Redis CPU` +
      (f.newKeyShare === undefined ? '' : `, ${(100 * f.newKeyShare).toFixed(0)}% new keys`) +
      (f.fallbacks || f.failed ? `, ${f.fallbacks} to onError, ${f.failed} failed` : ''),
  );

/** Percentiles of call latencies in ms (a call that never finished counts as Infinity). */
function percentiles(...latencies) {
  const sorted = Float64Array.from(latencies.flatMap((l) => Array.from(l))).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { calls: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), p999Ms: at(0.999), maxMs: sorted[sorted.length - 1] };
}

/** `calls` of `call(n)` one at a time, alternating the contenders in blocks of 1,000. */
async function loneCalls(calls, keys) {
  const next = keyNumbers(keys, 4242);
  const names = Object.keys(calls);
  const latencies = Object.fromEntries(names.map((n) => [n, []]));
  for (const name of names) for (let i = 0; i < 200; i++) await calls[name](next()); // warm
  for (let done = 0; done < LONE_CALLS; done += 1000) {
    for (const name of names) {
      const call = calls[name];
      const into = latencies[name];
      for (let i = 0; i < 1000; i++) {
        const n = next();
        const t = performance.now();
        await call(n);
        into.push(performance.now() - t);
      }
    }
  }
  return Object.fromEntries(names.map((n) => [n, percentiles(latencies[n])]));
}

/**
 * Open loop: calls started on a schedule of `rate` per second for OPEN_LOOP_MS, none awaited by the
 * next; each call's latency runs from its scheduled start, so a late start (a stalled event loop,
 * the 1 ms timer that starts them) counts against it. A contender that falls more than
 * MAX_BACKLOG_S behind is not offered the rest: those calls, and any unfinished DRAIN_MS after the
 * last start, count as never answered (Infinity), and the run waits for its calls before returning.
 */
async function openLoop(call, rate, seed, fallbacks = () => 0) {
  const next = keyNumbers(LATENCY_KEYS, seed);
  const total = Math.round((rate * OPEN_LOOP_MS) / 1000);
  const latencies = new Float64Array(total).fill(Infinity);
  /** From each call's actual start: the call alone, without the schedule's lag. */
  const service = new Float64Array(total).fill(Infinity);
  const interval = 1000 / rate;
  const maxBacklog = Math.max(64, rate * MAX_BACKLOG_S);
  const fallbacksBefore = fallbacks();
  let started = 0;
  let done = 0;
  let failed = 0;
  let lastDone = 0;
  let fellBehind = false;
  let allDone;
  const everyCall = new Promise((resolve) => (allDone = resolve));
  const t0 = performance.now() + 2;
  const settle = (i, scheduled, began, ok) => {
    lastDone = performance.now();
    latencies[i] = lastDone - scheduled;
    service[i] = lastDone - began;
    if (!ok) failed++;
    if (++done === started && (fellBehind || started === total)) allDone();
  };
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (started < total && t0 + started * interval <= now) {
        if (started - done > maxBacklog) {
          fellBehind = true;
          break;
        }
        const i = started++;
        const scheduled = t0 + i * interval;
        const began = performance.now();
        call(next()).then(
          () => settle(i, scheduled, began, true),
          () => settle(i, scheduled, began, false),
        );
      }
      if (started < total && !fellBehind) return void setTimeout(tick, t0 + started * interval - performance.now());
      if (done === started) allDone();
      Promise.race([everyCall, new Promise((r) => setTimeout(r, DRAIN_MS).unref())]).then(resolve);
    };
    setTimeout(tick, 2);
  });
  const snapshot = { latencies: latencies.slice(), service: service.slice() };
  const achieved = done / ((lastDone - t0) / 1000);
  const answered = done;
  await everyCall;
  return {
    offered: rate,
    achieved,
    fellBehind,
    notStarted: total - started,
    unanswered: total - answered,
    failed,
    fallbacks: fallbacks() - fallbacksBefore,
    ...snapshot,
  };
}

const figures = { durationMs, rounds: ROUNDS, inFlight: IN_FLIGHT, loneCalls: LONE_CALLS, openLoopMs: OPEN_LOOP_MS, scale: {}, latency: {} };
const KINDS = ['fixedWindow', 'tokenBucket', 'slidingWindow', 'gcra', 'rlf'];
const LABELS = {
  fixedWindow: 'tollgate fixed window',
  tokenBucket: 'tollgate token bucket',
  slidingWindow: 'tollgate sliding window',
  gcra: 'tollgate GCRA',
  rlf: 'rate-limiter-flexible',
};

const server = await startRedis();
const admin = new Redis({ host: server.host, port: server.port });
try {
  const evalsha = await admin.script('LOAD', "return redis.call('INCR', KEYS[1])");
  const requests = Math.round(200 * durationMs);
  for (const keys of KEY_COUNTS) {
    await admin.flushall('SYNC');
    progress(`${keys.toLocaleString('en')} keys at random, ${IN_FLIGHT} calls in flight`);
    // One client per contender for this key count, every round on it.
    const clients = Object.fromEntries(KINDS.map((k) => [k, new Redis({ host: server.host, port: server.port })]));
    const made = Object.fromEntries(KINDS.map((k) => [k, contenders(clients[k])[k]()]));
    // The two ceilings write keys of their own (the EVALSHA's are not the INCR's, made moments
    // before), so each makes its keys at about the rate the contenders make theirs.
    const rounds = Object.fromEntries([...KINDS, 'incr', 'evalsha'].map((k) => [k, []]));
    for (let round = 0; round <= ROUNDS; round++) {
      const counted = round > 0;
      const ms = counted ? durationMs : durationMs / 4;
      progress(counted ? ` round ${round} of ${ROUNDS}` : ' warm-up round (not counted)');
      // The order turns each round, so no contender always runs first or after the ceilings.
      const order = [...KINDS, 'incr', 'evalsha'];
      for (let i = 0; i < round; i++) order.push(order.shift());
      for (const kind of order) {
        let f;
        if (kind === 'incr') f = await ceiling(server.port, admin, keys, counted ? requests : requests / 4, ['INCR', 'key:__rand_int__']);
        else if (kind === 'evalsha') f = await ceiling(server.port, admin, keys, counted ? requests : requests / 4, ['EVALSHA', evalsha, '1', 'evalsha:__rand_int__']);
        else f = await closedLoop(made[kind], keys, [admin], ms, 1000 * round + KINDS.indexOf(kind) + 1);
        line(`  ${kind === 'incr' ? 'ceiling: pipelined INCR' : kind === 'evalsha' ? 'ceiling: one-INCR EVALSHA' : LABELS[kind]}`, f);
        if (counted) rounds[kind].push(f);
      }
    }
    const ratio = (kind, base) => rounds[kind].map((f, i) => f.perSecond / rounds[base][i].perSecond);
    figures.scale[keys] = {
      ...Object.fromEntries(Object.entries(rounds).map(([k, runs]) => [k, medianRun(runs)])),
      // Each round's own ratios (a contender against what ran beside it), and their median.
      roundRatios: {
        fixedWindowIncr: ratio('fixedWindow', 'incr'),
        fixedWindowRlf: ratio('fixedWindow', 'rlf'),
        tokenBucketEvalsha: ratio('tokenBucket', 'evalsha'),
        slidingWindowEvalsha: ratio('slidingWindow', 'evalsha'),
        gcraEvalsha: ratio('gcra', 'evalsha'),
      },
    };
    for (const k of KINDS) made[k].close();

    if (keys === LATENCY_KEYS) {
      // Latency at 100k keys, on the keys the rounds above made (the ceilings' keys for the raw INCR).
      const max = figures.scale[keys].fixedWindow.perSecond;
      const client = new Redis({ host: server.host, port: server.port });
      const c = contenders(client);
      const tollgate = c.fixedWindow();
      const rlf = c.rlf();
      const calls = {
        incr: (n) => client.incr(benchmarkKey(n)),
        tollgate: (n) => tollgate.decide('ip:' + n),
        rlf: (n) => rlf.decide('ip:' + n),
      };
      progress(`latency, one call at a time: ${LONE_CALLS.toLocaleString('en')} calls each, ${keys.toLocaleString('en')} keys, alternating blocks of 1,000`);
      figures.latency.lone = await loneCalls(calls, keys);
      for (const [name, p] of Object.entries(figures.latency.lone)) progress(`  ${name.padEnd(10)} p50 ${p.p50Ms.toFixed(3)} ms, p99 ${p.p99Ms.toFixed(3)} ms, p99.9 ${p.p999Ms.toFixed(3)} ms`);
      const loads = [FIXED_LOAD, ...LOAD_SHARES.map((s) => Math.round(s * max))];
      figures.latency.max = max;
      figures.latency.open = [];
      const openCalls = { noop: () => Promise.resolve(), ...calls };
      const fallbacksOf = { tollgate: () => tollgate.fallbacks() };
      for (const [l, rate] of loads.entries()) {
        progress(`latency at ${rate.toLocaleString('en')} calls/s offered (open loop, ${OPEN_LOOP_MS} ms)${l === 0 ? '' : `: ${LOAD_SHARES[l - 1] * 100}% of tollgate's maximum`}`);
        const runs = Object.fromEntries(Object.keys(openCalls).map((n) => [n, []]));
        // The no-op (the schedule's own lag: the floor of this method) once; the others alternate.
        for (let round = 0; round < Math.max(1, ROUNDS - 1); round++) {
          for (const name of Object.keys(openCalls)) {
            if (name === 'noop' && round > 0) continue;
            const run = await openLoop(openCalls[name], rate, 77 + 10 * round + l, fallbacksOf[name]);
            runs[name].push(run);
            const f = { ...percentiles(run.latencies), serviceP99Ms: percentiles(run.service).p99Ms, ...run };
            progress(
              `  ${name.padEnd(10)} p50 ${f.p50Ms.toFixed(3)} ms, p99 ${f.p99Ms.toFixed(3)} ms, p99.9 ${f.p999Ms.toFixed(3)} ms (p99 from its own start ${f.serviceP99Ms.toFixed(3)} ms); ${Math.round(f.achieved).toLocaleString('en')}/s achieved${f.fellBehind ? `, fell behind (${f.unanswered} of ${f.latencies.length} unanswered)` : f.unanswered ? `, ${f.unanswered} unanswered` : ''}${f.fallbacks ? `, ${f.fallbacks} to onError` : ''}${f.failed ? `, ${f.failed} failed` : ''}`,
            );
          }
        }
        // Each contender's rounds pooled: percentiles over all its calls, each round's p99 beside them.
        const pooled = (rs) => {
          const sum = (field) => rs.reduce((a, r) => a + r[field], 0);
          return {
            ...percentiles(...rs.map((r) => r.latencies)),
            serviceP99Ms: percentiles(...rs.map((r) => r.service)).p99Ms,
            achieved: rs.reduce((a, r) => a + r.achieved, 0) / rs.length,
            fellBehind: rs.some((r) => r.fellBehind),
            notStarted: sum('notStarted'),
            unanswered: sum('unanswered'),
            failed: sum('failed'),
            fallbacks: sum('fallbacks'),
            p99Rounds: rs.map((r) => percentiles(r.latencies).p99Ms),
          };
        };
        figures.latency.open.push({ rate, share: l === 0 ? null : LOAD_SHARES[l - 1], ...Object.fromEntries(Object.entries(runs).map(([n, rs]) => [n, pooled(rs)])) });
      }
      tollgate.close();
      client.disconnect();
    }
    for (const k of KINDS) clients[k].disconnect();
  }
} finally {
  admin.disconnect();
  await server.stop();
}

// A 3-master Cluster at 1M keys: tollgate's fixed window against rate-limiter-flexible.
{
  progress(`3-master Cluster, ${CLUSTER_KEYS.toLocaleString('en')} keys at random, ${IN_FLIGHT} calls in flight`);
  const cluster = await startCluster();
  const admins = cluster.nodes.map((n) => new Redis(n));
  try {
    const clusterClient = async () => {
      const client = new Cluster([...cluster.nodes]);
      await new Promise((resolve) => client.once('ready', resolve));
      return client;
    };
    const clients = { fixedWindow: await clusterClient(), rlf: await clusterClient() };
    const made = { fixedWindow: contenders(clients.fixedWindow).fixedWindow(), rlf: contenders(clients.rlf).rlf() };
    const rounds = { fixedWindow: [], rlf: [] };
    for (let round = 0; round <= ROUNDS; round++) {
      const counted = round > 0;
      progress(counted ? ` round ${round} of ${ROUNDS}` : ' warm-up round (not counted)');
      const order = round % 2 === 0 ? ['fixedWindow', 'rlf'] : ['rlf', 'fixedWindow'];
      for (const kind of order) {
        const f = await closedLoop(made[kind], CLUSTER_KEYS, admins, counted ? durationMs : durationMs / 4, 500 + 10 * round + order.indexOf(kind));
        line(`  ${LABELS[kind]}`, f);
        if (counted) rounds[kind].push(f);
      }
    }
    figures.cluster = {
      keys: CLUSTER_KEYS,
      fixedWindow: medianRun(rounds.fixedWindow),
      rlf: medianRun(rounds.rlf),
      roundRatios: { fixedWindowRlf: rounds.fixedWindow.map((f, i) => f.perSecond / rounds.rlf[i].perSecond) },
    };
    made.fixedWindow.close();
    for (const c of Object.values(clients)) c.disconnect();
  } finally {
    for (const a of admins) a.disconnect();
    await cluster.stop();
  }
}

figures.seconds = (performance.now() - startedAt) / 1000;
progress(`redis-scale: ${figures.seconds.toFixed(0)} s`);
report('redis-scale', figures);
process.exit(0);
