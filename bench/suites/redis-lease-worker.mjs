// One process of the leases benchmark: consumes one hot key with leases on, 64 calls in flight,
// until Redis has denied it 200 times in a row; prints its counts as JSON.
//   node bench/suites/redis-lease-worker.mjs <port> <prefix> <limit>
import { Redis } from 'ioredis';
import { RedisLimiter, fixedWindow } from '../../dist/index.js';

const [port, prefix, limit] = process.argv.slice(2);
const redis = new Redis({ host: '127.0.0.1', port: Number(port) });
const limiter = new RedisLimiter({ name: 'hot', redis, prefix, policy: fixedWindow({ limit: Number(limit), windowMs: 600_000 }), timeoutMs: 5000, denyCache: false, leases: true });
await limiter.consume('warmup');
let allowed = 0;
let decisions = 0;
let deniedInARow = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: 64 }, async () => {
    while (deniedInARow < 200) {
      const d = await limiter.consume('hot');
      decisions++;
      if (d.allowed) {
        allowed++;
        deniedInARow = 0;
      } else deniedInARow++;
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
const s = limiter.stats();
process.stdout.write(`${JSON.stringify({ allowed, decisions, seconds, leased: s.leasedDecisions, leaseCalls: s.leaseCalls, redisCalls: s.redisCalls })}\n`);
limiter.close();
redis.disconnect();
