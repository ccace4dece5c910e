// Two processes hammering 10,000 keys at random for a fixed time: aggregate decisions per second
// for tollgate's shared-memory table, tollgate's in-process table (each process its own: the
// per-process ceiling), rate-limiter-flexible's RateLimiterCluster (IPC to the primary) and
// RateLimiterRedis on a loopback redis-server.
//   node bench/suites/multi-process.mjs [durationMs]
import cluster from 'node:cluster';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { progress, randomOrder, report } from '../common.mjs';

const KEYS = 10_000;
const PROCESSES = 2;
const IN_FLIGHT = 64; // concurrent awaited calls per process for the asynchronous limiters
const LIMIT = 1e9;
const self = fileURLToPath(import.meta.url);
const keys = Array.from({ length: KEYS }, (_, i) => `user:${100_000 + i}`);

async function hammerSync(decide, durationMs, seed) {
  const order = randomOrder(1 << 16, KEYS, seed);
  let count = 0;
  const end = performance.now() + durationMs;
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) decide(keys[order[(count + i) & 0xffff]]);
    count += 1000;
  }
  return count;
}

async function hammerAsync(decide, durationMs, seed) {
  const order = randomOrder(1 << 16, KEYS, seed);
  let count = 0;
  const end = performance.now() + durationMs;
  const lane = async () => {
    while (performance.now() < end) {
      await decide(keys[order[count++ & 0xffff]]);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  return count;
}

/** Runs in each hammering process; returns decisions made. */
async function hammer(contender, durationMs, seed, extra) {
  if (contender.startsWith('tollgate-')) {
    const { Limiter, fixedWindow, sharedMemory } = await import('../../dist/index.js');
    const policy = fixedWindow({ limit: LIMIT, windowMs: 600_000 });
    // A small shared table (capacity 20,000: 4 lock shards by default) against the same with 64:
    // what docs/shared-memory.md's "when to raise shards" rests on.
    const store = {
      'tollgate-shared': { capacity: 100_000 },
      'tollgate-shared-small': { capacity: 20_000 },
      'tollgate-shared-small-64': { capacity: 20_000, shards: 64 },
    }[contender];
    const limiter = store !== undefined ? new Limiter({ policy, store: sharedMemory({ name: extra, ...store }) }) : new Limiter({ policy, capacity: 100_000 });
    const count = await hammerSync((key) => limiter.tryConsume(key), durationMs, seed);
    // Lock acquisitions that waited for the other process: the contention, counted in process,
    // which the wall-clock rate on this shared machine is too noisy to show.
    return { count, contended: store === undefined ? 0 : limiter.stats().lockContended };
  }
  if (contender === 'rlf-cluster') {
    const { RateLimiterCluster } = await import('rate-limiter-flexible');
    const limiter = new RateLimiterCluster({ keyPrefix: 'bench', points: LIMIT, duration: 600, timeoutMs: 10_000 });
    return hammerAsync((key) => limiter.consume(key), durationMs, seed);
  }
  if (contender === 'rlf-redis') {
    const { RateLimiterRedis } = await import('rate-limiter-flexible');
    const { Redis } = await import('ioredis');
    const redis = new Redis({ host: '127.0.0.1', port: Number(extra), enableOfflineQueue: true });
    const limiter = new RateLimiterRedis({ storeClient: redis, keyPrefix: 'bench', points: LIMIT, duration: 600 });
    const count = await hammerAsync((key) => limiter.consume(key), durationMs, seed);
    redis.disconnect();
    return count;
  }
  throw new Error(`unknown contender ${contender}`);
}

const waitUntil = (t) => new Promise((resolve) => setTimeout(resolve, Math.max(0, t - Date.now())));

function runPair(contender, durationMs, extra = '') {
  const startAt = Date.now() + 1500;
  return Promise.all(
    Array.from(
      { length: PROCESSES },
      (_, i) =>
        new Promise((resolve, reject) => {
          const proc = spawn(process.execPath, [self, 'worker', contender, String(durationMs), String(startAt), String(i + 1), extra], {
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          proc.stdout.on('data', (d) => (out += d));
          proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim())) : reject(new Error(`${contender} worker exited ${code}`))));
        }),
    ),
  ).then((results) => {
    const total = results.reduce((a, r) => a + (typeof r === 'number' ? r : r.count), 0);
    const contended = results.reduce((a, r) => a + (typeof r === 'number' ? 0 : r.contended), 0);
    lastContention = contended / total;
    return total / (durationMs / 1000);
  });
}

/** Of the last pair's decisions, the share whose lock acquisition waited (tollgate's shared tables). */
let lastContention = 0;

const [role, ...args] = process.argv.slice(2);
if (role === 'worker') {
  const [contender, durationMs, startAt, seed, extra] = args;
  await waitUntil(Number(startAt));
  process.stdout.write(`${JSON.stringify(await hammer(contender, Number(durationMs), Number(seed), extra))}\n`);
  process.exit(0);
} else if (role === 'cluster-primary' || cluster.isWorker) {
  // rate-limiter-flexible's cluster limiter: the primary holds the counts, workers ask over IPC.
  if (cluster.isPrimary) {
    const { RateLimiterClusterMaster } = await import('rate-limiter-flexible');
    new RateLimiterClusterMaster();
    const [durationMs] = args;
    const startAt = Date.now() + 1500;
    let total = 0;
    let done = 0;
    for (let i = 0; i < PROCESSES; i++) {
      const worker = cluster.fork({ BENCH_DURATION: durationMs, BENCH_START: String(startAt), BENCH_SEED: String(i + 1) });
      worker.on('message', (m) => {
        if (typeof m?.benchCount !== 'number') return;
        total += m.benchCount;
        worker.kill();
        if (++done === PROCESSES) {
          process.stdout.write(`${total / (Number(durationMs) / 1000)}\n`);
          process.exit(0);
        }
      });
    }
  } else {
    await waitUntil(Number(process.env.BENCH_START));
    const count = await hammer('rlf-cluster', Number(process.env.BENCH_DURATION), Number(process.env.BENCH_SEED));
    process.send({ benchCount: count });
  }
} else {
  const durationMs = Number(role ?? 3000);
  const figures = {};
  const { Limiter, destroySharedMemory, fixedWindow } = await import('../../dist/index.js');
  void Limiter;
  void fixedWindow;
  const name = `bench-${process.pid}`;
  destroySharedMemory(name);
  figures['tollgate shared memory'] = await runPair('tollgate-shared', durationMs, name);
  figures['tollgate shared memory: decisions that waited for a lock'] = lastContention;
  destroySharedMemory(name);
  progress(`tollgate shared memory, 2 processes        ${Math.round(figures['tollgate shared memory']).toLocaleString('en').padStart(12)} decisions/s`);
  for (const [contender, label] of [
    ['tollgate-shared-small', 'tollgate shared memory, capacity 20,000 (4 shards)'],
    ['tollgate-shared-small-64', 'tollgate shared memory, capacity 20,000, shards: 64'],
  ]) {
    figures[label] = await runPair(contender, durationMs, name);
    figures[`${label}: decisions that waited for a lock`] = lastContention;
    destroySharedMemory(name);
    progress(`${label.padEnd(52)} ${Math.round(figures[label]).toLocaleString('en').padStart(12)} decisions/s; ${(100 * lastContention).toFixed(2)}% waited for a lock`);
  }
  figures['tollgate in-process (each its own table)'] = await runPair('tollgate-local', durationMs);
  progress(`tollgate in-process, 2 processes            ${Math.round(figures['tollgate in-process (each its own table)']).toLocaleString('en').padStart(12)} decisions/s`);
  figures['rate-limiter-flexible cluster (IPC)'] = await new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [self, 'cluster-primary', String(durationMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`cluster primary exited ${code}`))));
  });
  progress(`rate-limiter-flexible cluster (IPC)         ${Math.round(figures['rate-limiter-flexible cluster (IPC)']).toLocaleString('en').padStart(12)} decisions/s`);
  const { redisAvailable, startRedis } = await import('../../scripts/local-redis.mjs');
  const probe = redisAvailable();
  if (probe.available) {
    const server = await startRedis();
    try {
      figures['rate-limiter-flexible Redis (loopback)'] = await runPair('rlf-redis', durationMs, String(server.port));
    } finally {
      await server.stop();
    }
    progress(`rate-limiter-flexible Redis (loopback)      ${Math.round(figures['rate-limiter-flexible Redis (loopback)']).toLocaleString('en').padStart(12)} decisions/s`);
  } else {
    figures.redisSkipped = probe.reason;
    progress(`rate-limiter-flexible Redis: SKIPPED (${probe.reason})`);
  }
  report('multi-process', figures);
}
