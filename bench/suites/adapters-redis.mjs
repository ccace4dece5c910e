// The adapter stores on Redis against the libraries' own Redis stores, side by side on one
// loopback redis-server, in the same key format: rate-limit-redis' RedisStore vs
// ExpressRateLimitStore({ redis }), @fastify/rate-limit's RedisStore vs
// FastifyRateLimitStore.with({ redis }), rate-limiter-flexible's RateLimiterRedis vs
// RateLimiterTollgate({ storeClient }); and the floor, one INCR round trip on the same client.
// Each contender keeps IN_FLIGHT calls going on 10,000 keys at random for ROUND_MS, contenders
// alternating over ROUNDS rounds; figures are calls/s (median of rounds) and latency percentiles.
//   node bench/suites/adapters-redis.mjs [rounds] [roundMs]
import { Redis } from 'ioredis';
import { RedisStore as RateLimitRedisStore } from 'rate-limit-redis';
import FastifyRedisStore from '@fastify/rate-limit/store/RedisStore.js';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { ExpressRateLimitStore, FastifyRateLimitStore, RateLimiterTollgate } from '../../dist/adapters-entry.js';
import { startRedis } from '../../scripts/local-redis.mjs';
import { makeKeys, progress, randomOrder, report } from '../common.mjs';

const ROUNDS = Number(process.argv[2] ?? 5);
const ROUND_MS = Number(process.argv[3] ?? 1000);
const IN_FLIGHT = 64;
const KEYS = 10_000;
const LIMIT = 1e9;
const WINDOW_MS = 600_000;

const server = await startRedis();
const redis = new Redis({ host: server.host, port: server.port });
redis.on('error', () => undefined);
const keys = makeKeys(KEYS);
const order = randomOrder(1 << 16, KEYS);

const erlTheirs = new RateLimitRedisStore({ sendCommand: (...args) => redis.call(...args), prefix: 'rl:' });
erlTheirs.init({ windowMs: WINDOW_MS });
const erlOurs = new ExpressRateLimitStore({ redis, prefix: 'rl:' });
erlOurs.init({ windowMs: WINDOW_MS, limit: LIMIT });
const fastifyTheirs = new FastifyRedisStore(false, false, redis);
const FastifyOurs = FastifyRateLimitStore.with({ redis });
const fastifyOurs = new FastifyOurs({});
const fastifyIncr = (store, key) => new Promise((resolve, reject) => store.incr(key, (e, r) => (e ? reject(e) : resolve(r)), WINDOW_MS, LIMIT));
const rlfTheirs = new RateLimiterRedis({ storeClient: redis, points: LIMIT, duration: WINDOW_MS / 1000 });
const rlfOurs = new RateLimiterTollgate({ storeClient: redis, points: LIMIT, duration: WINDOW_MS / 1000 });

const contenders = {
  'floor: one INCR round trip': (key) => redis.incr(`floor:${key}`),
  'rate-limit-redis RedisStore increment': (key) => erlTheirs.increment(key),
  'ExpressRateLimitStore({ redis }) increment': (key) => erlOurs.increment(key),
  '@fastify/rate-limit RedisStore incr': (key) => fastifyIncr(fastifyTheirs, key),
  'FastifyRateLimitStore.with({ redis }) incr': (key) => fastifyIncr(fastifyOurs, key),
  'rate-limiter-flexible RateLimiterRedis consume': (key) => rlfTheirs.consume(key),
  'RateLimiterTollgate({ storeClient }) consume': (key) => rlfOurs.consume(key),
};

/** Keeps IN_FLIGHT calls going for ROUND_MS; returns calls/s and every call's latency (ms). */
async function round(call) {
  let cursor = 0;
  let count = 0;
  const latencies = [];
  const end = performance.now() + ROUND_MS;
  const lane = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await call(keys[order[cursor++ & 0xffff]]);
      latencies.push(performance.now() - t);
      count++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  return { rate: count / (ROUND_MS / 1000), latencies };
}

const results = Object.fromEntries(Object.keys(contenders).map((name) => [name, { rates: [], latencies: [] }]));
for (const call of Object.values(contenders)) await round(call); // warm: scripts loaded, clocks known
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, call] of Object.entries(contenders)) {
    const { rate, latencies } = await round(call);
    results[name].rates.push(rate);
    for (const l of latencies) results[name].latencies.push(l);
  }
  progress(`round ${r + 1}/${ROUNDS}`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const figures = { inFlight: IN_FLIGHT, keys: KEYS, rounds: ROUNDS, roundMs: ROUND_MS };
for (const [name, r] of Object.entries(results)) {
  const sorted = r.latencies.sort((a, b) => a - b);
  figures[name] = { callsPerSecond: median(r.rates), p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), p999Ms: percentile(sorted, 0.999) };
  progress(
    `${name.padEnd(48)} ${Math.round(figures[name].callsPerSecond).toLocaleString('en').padStart(9)} calls/s  p50 ${figures[name].p50Ms.toFixed(2)} ms  p99 ${figures[name].p99Ms.toFixed(2)} ms  p99.9 ${figures[name].p999Ms.toFixed(2)} ms`,
  );
}
report('adapters-redis', figures);
redis.disconnect();
erlOurs.shutdown();
fastifyOurs.close?.();
await server.stop();
process.exit(0);
