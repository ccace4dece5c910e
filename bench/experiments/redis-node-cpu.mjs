// Node's CPU per Redis decision against the key count: tollgate's fixed window on a
// redis-server this starts, 1,024 calls in flight on `'ip:' + n` (n at random below the key count),
// a fixed number of decisions per run, Node CPU from process.cpuUsage() and Redis' main thread's
// from INFO cpu. Given two builds (dist directories), they alternate run by run in this process,
// so a before/after comparison shares the machine's noise.
//   node bench/experiments/redis-node-cpu.mjs [decisions] [rounds] [distDir...]
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { redisAvailable, startRedis } from '../../scripts/local-redis.mjs';
import { keyNumbers } from '../common.mjs';

const DECISIONS = Number(process.argv[2] ?? 300_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const dists = process.argv.length > 4 ? process.argv.slice(4) : ['dist'];
const KEY_COUNTS = (process.env.KEYS ?? '10000,100000,1000000').split(',').map(Number);
const IN_FLIGHT = 1024;

if (!redisAvailable().available) {
  console.log('SKIPPED: no redis-server');
  process.exit(0);
}

const builds = [];
for (const d of dists) builds.push({ name: d, lib: await import(pathToFileURL(path.resolve(d, 'index.js')).href) });

async function redisCpu(admin) {
  const info = await admin.info('cpu');
  const field = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user_main_thread') + field('used_cpu_sys_main_thread');
}

async function run(limiter, keys, admin, seed) {
  const next = keyNumbers(keys, seed);
  await limiter.consume('ip:' + next());
  let left = DECISIONS;
  const redisBefore = await redisCpu(admin);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const lane = async () => {
    while (left-- > 0) await limiter.consume('ip:' + next());
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const redis = (await redisCpu(admin)) - redisBefore;
  return { perSecond: DECISIONS / seconds, nodeUs: (cpu.user + cpu.system) / DECISIONS, redisUs: (redis * 1e6) / DECISIONS };
}

const server = await startRedis();
const admin = new Redis({ host: server.host, port: server.port });
try {
  for (const keys of KEY_COUNTS) {
    await admin.flushall('SYNC');
    const made = builds.map((b, i) => {
      const client = new Redis({ host: server.host, port: server.port });
      const limiter = new b.lib.RedisLimiter({ name: `fw${i}`, redis: client, policy: b.lib.fixedWindow({ limit: 1e9, windowMs: 600_000 }), prefix: 'tg:', denyCache: false });
      return { b, client, limiter, runs: [] };
    });
    // A warm-up run each (a quarter as many decisions are not counted apart: it is the whole run).
    for (const m of made) await run(m.limiter, keys, admin, 7);
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? made : [...made].reverse();
      for (const m of order) {
        const f = await run(m.limiter, keys, admin, 1000 * round + 13);
        m.runs.push(f);
        console.log(`${String(keys).padStart(8)} keys ${m.b.name.padEnd(24)} ${f.nodeUs.toFixed(2)} µs Node, ${f.redisUs.toFixed(2)} µs Redis, ${Math.round(f.perSecond).toLocaleString('en')}/s`);
      }
    }
    for (const m of made) {
      const med = (k) => [...m.runs.map((r) => r[k])].sort((a, b) => a - b)[Math.floor(m.runs.length / 2)];
      console.log(
        `${String(keys).padStart(8)} keys ${m.b.name.padEnd(24)} median: ${med('nodeUs').toFixed(2)} µs Node, ${med('redisUs').toFixed(2)} µs Redis, ${Math.round(med('perSecond')).toLocaleString('en')}/s`,
      );
      m.limiter.close();
      m.client.disconnect();
    }
  }
} finally {
  admin.disconnect();
  await server.stop();
}
