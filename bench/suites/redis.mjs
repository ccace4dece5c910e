// Redis on loopback, 256 decisions in flight from one process: decisions per second, Redis
// commands sent and Node CPU per decision, for tollgate's RedisLimiter (fixed window and token
// bucket), rate-limiter-flexible's RateLimiterRedis and express-rate-limit's rate-limit-redis store;
// tollgate with 90% of the traffic from over-limit keys (the deny cache's case); the server's own
// ceilings measured by redis-benchmark in the same run (pipelined INCR, and EVALSHA of a one-INCR
// script); then tollgate and rate-limiter-flexible on a local 3-master Cluster. Skipped, saying
// why, without redis-server.
//   node bench/suites/redis.mjs [durationMs]
import { spawn, spawnSync } from 'node:child_process';
import { Cluster, Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { RedisStore } from 'rate-limit-redis';
import { RedisLimiter, fixedWindow, leakyBucket, slidingWindow, tokenBucket } from '../../dist/index.js';
import { redisAvailable, startCluster, startRedis } from '../../scripts/local-redis.mjs';
import { progress, randomOrder, report } from '../common.mjs';

const durationMs = Number(process.argv[2] ?? 3000);
const IN_FLIGHT = 256;
/** Rounds of the figures compared with the server's ceilings. */
const ROUNDS = 3;
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
  return counting(new Redis({ host: '127.0.0.1', port }));
}

function counting(client) {
  client.sent = 0;
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command, stream) => {
    client.sent++;
    return send(command, stream);
  };
  return client;
}

/** CPU seconds redis-server's main thread has used (INFO cpu), read through `client`. */
async function redisCpuSeconds(client) {
  const info = await client.info('cpu');
  const field = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user_main_thread') + field('used_cpu_sys_main_thread');
}

async function run(name, decide, client, { redisCpu = false, ms = durationMs } = {}) {
  let count = 0;
  let allowed = 0;
  const end = performance.now() + ms;
  const lane = async () => {
    while (performance.now() < end) {
      if (await decide(keys[order[count++ & 0xffff]])) allowed++;
    }
  };
  // Warm up: connect and load scripts.
  await decide('warmup');
  const redisBefore = redisCpu ? await redisCpuSeconds(client) : 0;
  const sentBefore = client.sent;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const perSecond = count / seconds;
  const perDecision = (client.sent - sentBefore) / count;
  const nodeCpuUs = (cpu.user + cpu.system) / count;
  const redisCpuUs = redisCpu ? (((await redisCpuSeconds(client)) - redisBefore) * 1e6) / count : undefined;
  const redisPart = redisCpuUs === undefined ? '' : `, ${redisCpuUs.toFixed(1)} µs Redis CPU/decision`;
  progress(
    `${name.padEnd(44)} ${Math.round(perSecond).toLocaleString('en').padStart(10)} decisions/s, ${perDecision.toFixed(3)} commands/decision, ${nodeCpuUs.toFixed(1)} µs Node CPU/decision${redisPart}`,
  );
  return { perSecond, commandsPerDecision: perDecision, nodeCpuUs, redisCpuUs, allowedShare: allowed / count };
}

const server = await startRedis();
const figures = {};
try {
  const LIMIT = 1e9;
  // The floor of Node CPU per decision: this loop with a decision that costs nothing.
  figures.loopFloor = await run('the benchmark loop alone (no limiter)', async (k) => k.length > 0, { sent: 0 });
  // The figures compared with the server's ceilings, in rounds that alternate them (this VM's
  // speed drifts over minutes): per contender, the round with the median rate. A first, shorter
  // round that is not counted warms every contender alike (JIT, the keys' first writes).
  const contenders = [
    [
      'tollgate',
      'tollgate RedisLimiter',
      (client) => {
        const limiter = new RedisLimiter({ name: 't', redis: client, policy: fixedWindow({ limit: LIMIT, windowMs: 600_000 }), prefix: 'tg:' });
        return { decide: async (k) => (await limiter.consume(k)).allowed, close: () => limiter.close() };
      },
    ],
    [
      'tollgateTokenBucket',
      'tollgate RedisLimiter, token bucket',
      (client) => {
        const limiter = new RedisLimiter({ name: 'tb', redis: client, policy: tokenBucket({ capacity: LIMIT, refillPerSecond: 1000 }), prefix: 'tg:' });
        return { decide: async (k) => (await limiter.consume(k)).allowed, close: () => limiter.close() };
      },
    ],
    [
      'tollgateSlidingWindow',
      'tollgate RedisLimiter, sliding window',
      (client) => {
        const limiter = new RedisLimiter({ name: 'sw', redis: client, policy: slidingWindow({ limit: LIMIT, windowMs: 600_000 }), prefix: 'tg:' });
        return { decide: async (k) => (await limiter.consume(k)).allowed, close: () => limiter.close() };
      },
    ],
    [
      'tollgateGcra',
      'tollgate RedisLimiter, leaky bucket (GCRA)',
      (client) => {
        const limiter = new RedisLimiter({ name: 'lb', redis: client, policy: leakyBucket({ burst: LIMIT, tokens: 1000, intervalMs: 1000 }), prefix: 'tg:' });
        return { decide: async (k) => (await limiter.consume(k)).allowed, close: () => limiter.close() };
      },
    ],
    [
      'rlf',
      'rate-limiter-flexible RateLimiterRedis',
      (client) => {
        const limiter = new RateLimiterRedis({ storeClient: client, keyPrefix: 'rlf', points: LIMIT, duration: 600 });
        return {
          decide: async (k) => {
            await limiter.consume(k);
            return true;
          },
          close: () => undefined,
        };
      },
    ],
  ];
  const rounds = { tollgate: [], tollgateTokenBucket: [], tollgateSlidingWindow: [], tollgateGcra: [], rlf: [], incr: [], evalsha: [] };
  for (let round = 0; round <= ROUNDS; round++) {
    const counted = round > 0;
    progress(counted ? `round ${round} of ${ROUNDS}` : 'warm-up round (not counted)');
    const c = ceilings(server.port, counted ? 400_000 : 100_000);
    if (counted) {
      rounds.incr.push(c.incr);
      rounds.evalsha.push(c.evalsha);
      progress(`server ceilings (redis-benchmark -P 16, random keys): INCR ${Math.round(c.incr).toLocaleString('en')}/s, EVALSHA of a one-INCR script ${Math.round(c.evalsha).toLocaleString('en')}/s`);
    }
    for (const [field, label, make] of contenders) {
      const client = countingClient(server.port);
      const contender = make(client);
      const figure = await run(label, contender.decide, client, { redisCpu: true, ms: counted ? durationMs : durationMs / 3 });
      if (counted) rounds[field].push(figure);
      contender.close();
      client.disconnect();
    }
  }
  figures.tollgate = medianRun(rounds.tollgate);
  figures.tollgateTokenBucket = medianRun(rounds.tollgateTokenBucket);
  figures.tollgateSlidingWindow = medianRun(rounds.tollgateSlidingWindow);
  figures.tollgateGcra = medianRun(rounds.tollgateGcra);
  figures.rlf = medianRun(rounds.rlf);
  figures.ceilings = { incr: median(rounds.incr), evalsha: median(rounds.evalsha) };
  // Each round's own ratios, for the spread beside the medians.
  figures.roundRatios = {
    incr: rounds.tollgate.map((t, i) => t.perSecond / rounds.incr[i]),
    evalsha: rounds.tollgateTokenBucket.map((t, i) => t.perSecond / rounds.evalsha[i]),
    evalshaSliding: rounds.tollgateSlidingWindow.map((t, i) => t.perSecond / rounds.evalsha[i]),
    evalshaGcra: rounds.tollgateGcra.map((t, i) => t.perSecond / rounds.evalsha[i]),
    rlf: rounds.tollgate.map((t, i) => t.perSecond / rounds.rlf[i].perSecond),
  };
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
    const limiter = new RedisLimiter({ name: 't', redis: client, policy: fixedWindow({ limit: 5, windowMs: 600_000 }), prefix: 'abuse:' });
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
  {
    // One hot key, without and with leases (one process, 256 in flight).
    for (const leases of [false, true]) {
      const client = countingClient(server.port);
      const limiter = new RedisLimiter({
        name: leases ? 'hot-leased' : 'hot',
        redis: client,
        policy: fixedWindow({ limit: LIMIT, windowMs: 600_000 }),
        prefix: 'tg:',
        denyCache: false,
        leases,
      });
      const f = await run(`tollgate, one hot key${leases ? ', leases' : ''}`, async () => (await limiter.consume('hot')).allowed, client);
      f.leasedShare = limiter.stats().leasedDecisions / Math.max(1, limiter.stats().allowed);
      figures[leases ? 'hotLeased' : 'hot'] = f;
      limiter.close();
      client.disconnect();
    }
    // 4 processes on one hot key with leases until its limit of 200,000 is spent: the total allowed, and how much was local.
    const worker = new URL('./redis-lease-worker.mjs', import.meta.url).pathname;
    const runs = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise((resolve, reject) => {
            const proc = spawn(process.execPath, [worker, String(server.port), 'lease4:', '200000'], { stdio: ['ignore', 'pipe', 'inherit'] });
            let out = '';
            proc.stdout.on('data', (d) => (out += d));
            proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`lease worker exited ${code}`))));
          }),
      ),
    );
    const allowed = runs.reduce((sum, r) => sum + r.allowed, 0);
    const leased = runs.reduce((sum, r) => sum + r.leased, 0);
    const decisions = runs.reduce((sum, r) => sum + r.decisions, 0);
    const seconds = Math.max(...runs.map((r) => r.seconds));
    figures.leases4 = { allowed, limit: 200_000, leasedShare: leased / allowed, perSecond: decisions / seconds, redisCalls: runs.reduce((sum, r) => sum + r.redisCalls, 0) };
    progress(
      `4 processes, one hot key, leases: ${allowed.toLocaleString('en')} allowed of a 200,000 limit, ${((100 * leased) / allowed).toFixed(1)}% decided in process, ${Math.round(decisions / seconds).toLocaleString('en')} decisions/s`,
    );
  }
} finally {
  await server.stop();
}

// The same two libraries on a local 3-master Cluster (ioredis Cluster clients).
const cluster = await startCluster();
try {
  const LIMIT = 1e9;
  const clusterClient = async () => {
    const client = counting(new Cluster([...cluster.nodes]));
    await new Promise((resolve) => client.once('ready', resolve));
    return client;
  };
  {
    const client = await clusterClient();
    const limiter = new RedisLimiter({ name: 't', redis: client, policy: fixedWindow({ limit: LIMIT, windowMs: 600_000 }), prefix: 'tg:' });
    figures.clusterTollgate = await run('Cluster: tollgate RedisLimiter', async (k) => (await limiter.consume(k)).allowed, client);
    limiter.close();
    client.disconnect();
  }
  {
    const client = await clusterClient();
    const limiter = new RateLimiterRedis({ storeClient: client, keyPrefix: 'rlf', points: LIMIT, duration: 600 });
    figures.clusterRlf = await run(
      'Cluster: rate-limiter-flexible RateLimiterRedis',
      async (k) => {
        await limiter.consume(k);
        return true;
      },
      client,
    );
    client.disconnect();
  }
} finally {
  await cluster.stop();
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The run whose rate is the median of the rounds' (its other figures with it). */
function medianRun(runs) {
  return [...runs].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(runs.length / 2)];
}

/** What the server does alone: redis-benchmark, pipelined 16 deep, over 100,000 random keys. */
function ceilings(port, requests) {
  const bench = (...command) => {
    const r = spawnSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-P', '16', '-n', String(requests), '-r', '100000', '-c', '32', '--csv', ...command], {
      encoding: 'utf8',
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    return Number(line.split(',')[1]?.replaceAll('"', ''));
  };
  const load = spawnSync('redis-cli', ['-p', String(port), 'SCRIPT', 'LOAD', "return redis.call('INCR', KEYS[1])"], { encoding: 'utf8' });
  return { incr: bench('INCR', 'ceil:__rand_int__'), evalsha: bench('EVALSHA', load.stdout.trim(), '1', 'ceil:__rand_int__') };
}
report('redis', figures);
