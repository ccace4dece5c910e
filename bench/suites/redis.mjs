// Redis on loopback, 256 decisions in flight from one process: decisions per second and Redis
// commands sent per decision, for tollgate's RedisLimiter, rate-limiter-flexible's
// RateLimiterRedis and express-rate-limit's rate-limit-redis store; then tollgate with 90% of
// the traffic from over-limit keys (the deny cache's case). Skipped, saying why, without redis-server.
//   node bench/suites/redis.mjs [durationMs]
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { RedisStore } from 'rate-limit-redis';
import { RedisLimiter, fixedWindow } from '../../dist/index.js';
import { redisAvailable, startRedis } from '../../scripts/local-redis.mjs';
import { progress, randomOrder, report } from '../common.mjs';

const durationMs = Number(process.argv[2] ?? 3000);
const IN_FLIGHT = 256;
const KEYS = 10_000;
const keys = Array.from({ length: KEYS }, (_, i) => `user:${100_000 + i}`);
const order = randomOrder(1 << 16, KEYS, 12345);

const probe = redisAvailable();
if (!probe.available) {
  progress(`SKIPPED: ${probe.reason}`);
  report('redis', { skipped: probe.reason });
  process.exit(0);
}

/** A client that counts every command it sends (the round-trip-level calls, not those inside scripts). */
function countingClient(port) {
  const client = new Redis({ host: '127.0.0.1', port });
  client.sent = 0;
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command, stream) => {
    client.sent++;
    return send(command, stream);
  };
  return client;
}

async function run(name, decide, client) {
  let count = 0;
  let allowed = 0;
  const end = performance.now() + durationMs;
  const lane = async () => {
    while (performance.now() < end) {
      if (await decide(keys[order[count++ & 0xffff]])) allowed++;
    }
  };
  // Warm up: connect and load scripts.
  await decide('warmup');
  const sentBefore = client.sent;
  const started = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const seconds = (performance.now() - started) / 1000;
  const perSecond = count / seconds;
  const perDecision = (client.sent - sentBefore) / count;
  progress(`${name.padEnd(44)} ${Math.round(perSecond).toLocaleString('en').padStart(10)} decisions/s, ${perDecision.toFixed(3)} commands/decision`);
  return { perSecond, commandsPerDecision: perDecision, allowedShare: allowed / count };
}

const server = await startRedis();
const figures = {};
try {
  const LIMIT = 1e9;
  {
    const client = countingClient(server.port);
    const limiter = new RedisLimiter({ name: "t", redis: client, policy: fixedWindow({ limit: LIMIT, windowMs: 600_000 }), prefix: 'tg:' });
    figures.tollgate = await run('tollgate RedisLimiter', async (k) => (await limiter.consume(k)).allowed, client);
    limiter.close();
    client.disconnect();
  }
  {
    const client = countingClient(server.port);
    const limiter = new RateLimiterRedis({ storeClient: client, keyPrefix: 'rlf', points: LIMIT, duration: 600 });
    figures.rlf = await run('rate-limiter-flexible RateLimiterRedis', async (k) => {
      await limiter.consume(k);
      return true;
    }, client);
    client.disconnect();
  }
  {
    const client = countingClient(server.port);
    const store = new RedisStore({ sendCommand: (command, ...args) => client.call(command, ...args), prefix: 'rlr:' });
    store.init({ windowMs: 600_000 });
    figures.rateLimitRedis = await run('express-rate-limit + rate-limit-redis', async (k) => (await store.increment(k)).totalHits <= LIMIT, client);
    client.disconnect();
  }
  {
    // 90% of requests from 1,000 abusive keys already over a limit of 5 per 10 minutes; 10% from
    // 9,000 ordinary keys that stay under it.
    const client = countingClient(server.port);
    const limiter = new RedisLimiter({ name: "t", redis: client, policy: fixedWindow({ limit: 5, windowMs: 600_000 }), prefix: 'abuse:' });
    for (let k = 0; k < 1000; k++) for (let i = 0; i < 5; i++) await limiter.consume(keys[k]);
    const mix = randomOrder(1 << 16, 1000, 777);
    const pick = randomOrder(1 << 16, 100, 778);
    let i = 0;
    const ordinary = (n) => keys[1000 + ((n * 7919) % 9000)];
    figures.abusive = await run(
      'tollgate, 90% of traffic over its limit',
      async () => {
        const n = i++;
        const key = pick[n & 0xffff] < 90 ? keys[mix[n & 0xffff]] : ordinary(n);
        return (await limiter.consume(key)).allowed;
      },
      client,
    );
    figures.abusive.denyCacheHits = limiter.stats().denyCacheHits;
    limiter.close();
    client.disconnect();
  }
} finally {
  await server.stop();
}
report('redis', figures);
