// A design question, measured: a fixed window decided with plain commands
// (INCRBY, PEXPIRE NX, PTTL per decision, pipelined by ioredis) beside tollgate's batched script,
// on one redis-server, with the loop of bench/suites/redis.mjs (256 decisions in flight over
// 10,000 keys). Not part of `npm run bench`: it answers one design question (see FINDINGS.md,
// "Redis at the server's speed").
//   npm run build && node bench/experiments/redis-scriptless.mjs [durationMs]
import { Redis } from 'ioredis';
import { RedisLimiter, fixedWindow } from '../../dist/index.js';
import { startRedis } from '../../scripts/local-redis.mjs';

const durationMs = Number(process.argv[2] ?? 3000);
const LIMIT = 1e9;
const WINDOW_MS = 600_000;
const keys = Array.from({ length: 10_000 }, (_, i) => `user:${100_000 + i}`);

async function redisCpuSeconds(client) {
  const info = await client.info('cpu');
  const field = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user_main_thread') + field('used_cpu_sys_main_thread');
}

async function measure(label, client, decide) {
  await decide('warmup');
  let count = 0;
  const end = performance.now() + durationMs;
  const redisBefore = await redisCpuSeconds(client);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (performance.now() < end) await decide(keys[(count++ * 7919) % keys.length]);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const redisUs = ((await redisCpuSeconds(client)) - redisBefore) * 1e6;
  console.log(
    `${label.padEnd(48)} ${Math.round(count / seconds)
      .toLocaleString('en')
      .padStart(9)} decisions/s, ${((cpu.user + cpu.system) / count).toFixed(1)} µs Node CPU, ${(redisUs / count).toFixed(1)} µs Redis CPU per decision`,
  );
}

const server = await startRedis();
try {
  {
    const client = new Redis({ host: '127.0.0.1', port: server.port });
    const limiter = new RedisLimiter({ name: 'script', redis: client, policy: fixedWindow({ limit: LIMIT, windowMs: WINDOW_MS }) });
    await measure('tollgate RedisLimiter (one script per batch)', client, async (k) => (await limiter.consume(k)).allowed);
    limiter.close();
    client.disconnect();
  }
  for (const autoPipelining of [false, true]) {
    const client = new Redis({ host: '127.0.0.1', port: server.port, enableAutoPipelining: autoPipelining });
    // The three commands one decision needs without a script: count, start a new window's TTL,
    // read what is left of it (the reset a caller is told).
    const decide = async (k) => {
      const key = `plain{${k}}:fw${WINDOW_MS}`;
      const replies = await client.pipeline().incrby(key, 1).pexpire(key, WINDOW_MS, 'NX').pttl(key).exec();
      return Number(replies?.[0]?.[1]) <= LIMIT;
    };
    await measure(`INCRBY + PEXPIRE NX + PTTL${autoPipelining ? ', auto-pipelining' : ''}`, client, decide);
    client.disconnect();
  }
  {
    // The same commands batched as tollgate batches its script: 32 decisions per pipeline.
    const client = new Redis({ host: '127.0.0.1', port: server.port });
    let waiting = [];
    const flush = () => {
      const batch = waiting;
      waiting = [];
      const pipeline = client.pipeline();
      for (const { key } of batch) pipeline.incrby(key, 1).pexpire(key, WINDOW_MS, 'NX').pttl(key);
      pipeline.exec().then((replies) => batch.forEach(({ resolve }, i) => resolve(Number(replies?.[3 * i]?.[1]) <= LIMIT)));
    };
    const decide = (k) =>
      new Promise((resolve) => {
        waiting.push({ key: `batched{${k}}:fw${WINDOW_MS}`, resolve });
        if (waiting.length === 32) flush();
        else if (waiting.length === 1) setImmediate(() => waiting.length > 0 && flush());
      });
    await measure('INCRBY + PEXPIRE NX + PTTL, 32 decisions/pipeline', client, decide);
    client.disconnect();
  }
} finally {
  await server.stop();
}
