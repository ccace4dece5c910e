// Redis failing, measured in process: (1) a dead redis-server: how long a call waits for its
// answer (from onError) with the breaker and without it; (2) a 3-master/3-replica Redis Cluster
// whose master is killed under steady traffic: the timeline, per 250 ms, of decisions made, the
// share decided by Redis, and the slowest call. Skipped, saying why, without redis-server.
//   node bench/suites/redis-failure.mjs [outageMs]
import { Cluster, Redis } from 'ioredis';
import { Limiter, RedisLimiter, fixedWindow } from '../../dist/index.js';
import { redisAvailable, startCluster, startRedis } from '../../scripts/local-redis.mjs';
import { progress, report } from '../common.mjs';

const outageMs = Number(process.argv[2] ?? 2000);
const TIMEOUT_MS = 250;
const LANES = 16;
const policy = fixedWindow({ limit: 1e9, windowMs: 600_000 });

const probe = redisAvailable();
if (!probe.available) {
  progress(`SKIPPED: ${probe.reason}`);
  report('redis-failure', { skipped: probe.reason });
  process.exit(0);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

/** Calls during `ms` from LANES concurrent loops; returns each call's wait in ms. */
async function traffic(limiter, ms, keys) {
  const waits = [];
  let n = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: LANES }, async () => {
      while (performance.now() < end) {
        const started = performance.now();
        await limiter.consume(keys[n++ % keys.length]);
        waits.push(performance.now() - started);
      }
    }),
  );
  return waits.sort((a, b) => a - b);
}

/** A dead server: the wait per call once Redis is known down, with and without the breaker. */
async function deadServer(breaker) {
  const server = await startRedis();
  // ioredis' defaults: the offline queue holds commands while it reconnects.
  const redis = new Redis({ host: server.host, port: server.port });
  redis.on('error', () => undefined);
  const limiter = new RedisLimiter({ redis, name: 'dead', policy, timeoutMs: TIMEOUT_MS, onError: 'allow', ...(breaker ? {} : { breaker: false }) });
  const keys = Array.from({ length: 1000 }, (_, i) => `user:${i}`);
  await traffic(limiter, 300, keys);
  server.process.kill('SIGKILL');
  while (redis.status === 'ready') await sleep(5);
  // The first failures (one timeout per batch in flight) are the price of learning; measure after.
  await traffic(limiter, 400, keys);
  const calls = limiter.stats().redisCalls;
  const waits = await traffic(limiter, outageMs, keys);
  const s = limiter.stats();
  limiter.close();
  redis.disconnect();
  await server.stop();
  const figures = {
    calls: waits.length,
    p50Ms: quantile(waits, 0.5),
    p99Ms: quantile(waits, 0.99),
    maxMs: waits.at(-1) ?? 0,
    redisCallsPerSecond: ((s.redisCalls - calls) * 1000) / outageMs,
    shortCircuited: s.shortCircuited,
  };
  progress(
    `dead Redis, breaker ${breaker ? 'on ' : 'off'}: ${figures.calls} calls in ${outageMs} ms, wait p50 ${figures.p50Ms.toFixed(3)} ms, p99 ${figures.p99Ms.toFixed(3)} ms, max ${figures.maxMs.toFixed(1)} ms; ${figures.redisCallsPerSecond.toFixed(1)} Redis calls/s`,
  );
  return figures;
}

/** A master killed under traffic: per 250 ms, decisions, the share Redis decided, the slowest call. */
async function failover() {
  const cluster = await startCluster({ replicas: 1, nodeTimeoutMs: 1000 });
  const client = new Cluster([...cluster.nodes]);
  client.on('error', () => undefined);
  if (client.status !== 'ready') await new Promise((r) => client.once('ready', r));
  const fallback = new Limiter({ policy, engine: 'js' });
  const limiter = new RedisLimiter({ redis: client, name: 'failover', policy, timeoutMs: TIMEOUT_MS, onError: fallback });
  const keys = Array.from({ length: 3000 }, (_, i) => `user:${i}`);
  const BUCKET_MS = 250;
  const buckets = [];
  let current = { decisions: 0, fallback: 0, slowestMs: 0 };
  let stop = false;
  let n = 0;
  const lanes = Array.from({ length: LANES }, async () => {
    while (!stop) {
      const started = performance.now();
      await limiter.consume(keys[n++ % keys.length]);
      current.decisions++;
      current.slowestMs = Math.max(current.slowestMs, performance.now() - started);
    }
  });
  let fallbackBefore = 0;
  const tick = () => {
    const s = limiter.stats();
    current.fallback = s.fallbackDecisions - fallbackBefore;
    fallbackBefore = s.fallbackDecisions;
    current.openNodes = s.openNodes;
    buckets.push(current);
    current = { decisions: 0, fallback: 0, slowestMs: 0 };
  };
  let killedAt = -1;
  let clean = 0;
  const started = performance.now();
  for (let i = 0; ; i++) {
    // Absolute bucket edges: a timer that fires a little late never makes a second, empty bucket.
    await sleep(Math.max(0, started + (i + 1) * BUCKET_MS - performance.now()));
    tick();
    if (i === 3) {
      cluster.servers[0].process.kill('SIGKILL');
      killedAt = buckets.length;
    }
    const last = buckets.at(-1);
    // Recovered: two seconds of buckets in which every decision came from Redis.
    clean = killedAt >= 0 && buckets.length > killedAt + 1 && last.decisions > 0 && last.fallback === 0 ? clean + 1 : 0;
    if (clean >= 8 || buckets.length > 160) break;
  }
  const recoveredAt = clean >= 8 ? buckets.length - clean : -1;
  stop = true;
  await Promise.all(lanes);
  const s = limiter.stats();
  limiter.close();
  client.disconnect();
  await cluster.stop();
  const timeline = buckets.map((b, i) => ({
    atMs: (i + 1 - killedAt) * BUCKET_MS,
    decisionsPerSecond: (b.decisions * 1000) / BUCKET_MS,
    redisShare: b.decisions === 0 ? 0 : (b.decisions - b.fallback) / b.decisions,
    slowestMs: b.slowestMs,
    openNodes: b.openNodes,
  }));
  for (const t of timeline) {
    progress(
      `t=${String(t.atMs).padStart(6)} ms  ${Math.round(t.decisionsPerSecond).toLocaleString('en').padStart(8)}/s  Redis ${(100 * t.redisShare).toFixed(0).padStart(3)}%  slowest ${t.slowestMs.toFixed(1).padStart(6)} ms  open nodes ${t.openNodes}`,
    );
  }
  return {
    timeline,
    recoveredAfterMs: recoveredAt < 0 ? null : (recoveredAt - killedAt) * BUCKET_MS,
    bucketMs: BUCKET_MS,
    timeouts: s.timeouts,
    shortCircuited: s.shortCircuited,
    lateRefused: s.lateRefused,
    lateExecuted: s.lateExecuted,
    breakerOpened: s.breakerOpened,
  };
}

const figures = {
  timeoutMs: TIMEOUT_MS,
  deadWithBreaker: await deadServer(true),
  deadWithoutBreaker: await deadServer(false),
  failover: await failover(),
};
report('redis-failure', figures);
