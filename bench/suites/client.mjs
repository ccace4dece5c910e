// Calling a rate-limited upstream: the rate each scheduler achieves against a mock upstream of
// QUOTA requests per second (as a share of the quota, and how many 429s it provoked), and the
// scheduling overhead per job with no upstream at all. Contenders: tollgate's limitedFetch,
// bottleneck, p-throttle and limiter's RateLimiter, each configured at the quota.
//   node bench/suites/client.mjs [jobs]
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Bottleneck from 'bottleneck';
import pThrottle from 'p-throttle';
import { RateLimiter } from 'limiter';
import { Limiter, leakyBucket, tokenBucket } from '../../dist/index.js';
import { createQueue, destroySharedPlaces, limitedFetch } from '../../dist/client-entry.js';
import { redisAvailable, startRedis } from '../../scripts/local-redis.mjs';
import { jitteryFetch, StrictUpstream } from '../../scripts/mock-upstream.mjs';
import { progress, report } from '../common.mjs';

const QUOTA = 400;
const JOBS = Number(process.argv[2] ?? 1600);
const upstreamScript = fileURLToPath(new URL('../servers/upstream.mjs', import.meta.url));

const proc = spawn(process.execPath, [upstreamScript, String(QUOTA), '10'], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve) => proc.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
const url = `http://127.0.0.1:${port}/`;
const stats = async () => (await fetch(`${url}stats`)).json();

/** Each contender gets a function that sends one request when its scheduler allows. */
const contenders = {
  'tollgate limitedFetch': () => {
    // A small burst lets a timer that fires late still use the tokens that came in meanwhile.
    const requests = new Limiter({ policy: tokenBucket({ capacity: 4, refillPerSecond: QUOTA }) });
    return limitedFetch({ requests, concurrency: 64, retry: { maxAttempts: 10, baseDelayMs: 10 } });
  },
  bottleneck: () => {
    const b = new Bottleneck({ minTime: 1000 / QUOTA, maxConcurrent: 64 });
    return (u) => b.schedule(() => fetch(u));
  },
  'p-throttle': () => pThrottle({ limit: QUOTA / 10, interval: 100 })((u) => fetch(u)),
  'limiter RateLimiter': () => {
    const r = new RateLimiter({ tokensPerInterval: QUOTA, interval: 'second' });
    return async (u) => {
      await r.removeTokens(1);
      return fetch(u);
    };
  },
};

const figures = { quota: QUOTA, jobs: JOBS, achieved: {}, overheadNs: {} };
try {
  await (await fetch(url)).arrayBuffer();
  for (const [name, make] of Object.entries(contenders)) {
    await new Promise((r) => setTimeout(r, 300)); // let the upstream's bucket refill
    await stats();
    const send = make();
    const started = performance.now();
    const responses = await Promise.all(
      Array.from({ length: JOBS }, () =>
        send(url).then(
          async (r) => (await r.arrayBuffer(), r.status),
          () => 'error',
        ),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    const s = await stats();
    const ok = responses.filter((r) => r === 200).length;
    figures.achieved[name] = { shareOfQuota: ok / seconds / QUOTA, tooMany: s.tooMany, completed: ok, seconds };
    progress(`${name.padEnd(24)} ${((100 * ok) / seconds / QUOTA).toFixed(1)}% of the quota, ${s.tooMany} 429s, ${ok}/${JOBS} done in ${seconds.toFixed(2)} s`);
  }

  // A strict upstream (5 requests in any 1,000 ms, counted on arrival) behind 0-40 ms of network
  // delay each way (seeded): a client that sends on time still has its arrivals bunched.
  figures.jitter = {};
  {
    const upstream = new StrictUpstream({ limit: 5, windowMs: 1000 });
    const jitterUrl = await upstream.listen();
    const jittery = jitteryFetch(12345);
    const CALLS = 60;
    const jitterContenders = {
      'tollgate limitedFetch, upstream: { limit: 5, windowMs: 1000 }': () => limitedFetch({ upstream: { limit: 5, windowMs: 1000 }, fetch: jittery }),
      'tollgate limitedFetch, leakyBucket({ burst: 1, ratePerSecond: 5 })': () => limitedFetch({ requests: new Limiter({ policy: leakyBucket({ burst: 1, ratePerSecond: 5 }) }), fetch: jittery }),
      'bottleneck, minTime 200 ms': () => {
        const b = new Bottleneck({ minTime: 200, maxConcurrent: 5 });
        return (u) => b.schedule(() => jittery(u));
      },
    };
    for (const [name, make] of Object.entries(jitterContenders)) {
      await new Promise((r) => setTimeout(r, 1100)); // the upstream's window empties
      upstream.resetCounts();
      const send = make();
      const started = performance.now();
      const responses = await Promise.all(
        Array.from({ length: CALLS }, () =>
          send(jitterUrl).then(
            (r) => r.status,
            () => 'error',
          ),
        ),
      );
      const seconds = (performance.now() - started) / 1000;
      const ok = responses.filter((r) => r === 200).length;
      figures.jitter[name] = { shareOfQuota: ok / seconds / 5, tooMany: upstream.tooMany, completed: ok, calls: CALLS, seconds };
      progress(`${name.padEnd(66)} ${((100 * ok) / seconds / 5).toFixed(1)}% of the quota, ${upstream.tooMany} 429s, ${ok}/${CALLS} in ${seconds.toFixed(1)} s`);
      send.close?.();
    }
    await upstream.close();
  }

  // One account, several processes: the strict upstream above (5 arriving in any 1,000 ms) and
  // now also 2 in flight, 0-40 ms of delay each way, 4 worker processes of 10 requests each.
  // tollgate's places in shared memory and in Redis, against bottleneck's clustered mode (its
  // state in the same Redis) at its two ways of stating the terms.
  figures.account = {};
  if (redisAvailable().available) {
    const redisServer = await startRedis();
    const upstream = new StrictUpstream({ limit: 5, windowMs: 1000, concurrency: 2, answerMs: 20 });
    const accountUrl = await upstream.listen();
    const workerScript = fileURLToPath(new URL('../servers/account-worker.mjs', import.meta.url));
    const WORKERS = 4;
    const EACH = 10;
    const names = {
      'tollgate-shm': 'tollgate limitedFetch upstream, sharedMemory store',
      'tollgate-redis': 'tollgate limitedFetch upstream, Redis store',
      'bottleneck-mintime': 'bottleneck clustered (Redis), minTime 200 ms, maxConcurrent 2',
      'bottleneck-reservoir': 'bottleneck clustered (Redis), reservoir 5 per 1,000 ms, maxConcurrent 2',
    };
    for (const [contender, label] of Object.entries(names)) {
      await new Promise((r) => setTimeout(r, 1100));
      upstream.resetCounts();
      const account = `bench-${contender}-${process.pid}`;
      const started = performance.now();
      const outputs = await Promise.all(
        Array.from(
          { length: WORKERS },
          (_, i) =>
            new Promise((resolve, reject) => {
              const proc = spawn(process.execPath, [workerScript, contender, accountUrl, String(redisServer.port), String(EACH), String(i + 1), account], {
                stdio: ['ignore', 'pipe', 'inherit'],
              });
              let out = '';
              proc.stdout.on('data', (d) => (out += d));
              proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${contender} worker exited ${code}`))));
            }),
        ),
      );
      const seconds = (performance.now() - started) / 1000;
      const ok = outputs.flat().filter((s) => s === 200).length;
      if (contender === 'tollgate-shm') destroySharedPlaces(account);
      const { tooMany, mostInFlight } = upstream;
      figures.account[label] = { shareOfQuota: ok / seconds / 5, tooMany, completed: ok, calls: WORKERS * EACH, seconds, mostInFlight };
      progress(`${label.padEnd(72)} ${((100 * ok) / seconds / 5).toFixed(1)}% of the quota, ${tooMany} 429s, ${ok}/${WORKERS * EACH} in ${seconds.toFixed(1)} s, most in flight ${mostInFlight}`);
    }
    await upstream.close();
    await redisServer.stop();
  } else progress('one account, several processes: skipped (no redis-server)');

  // Scheduling overhead: 20,000 no-op jobs, limits far above what they can reach.
  const N = 20_000;
  const noop = async () => 1;
  const overhead = {
    'tollgate queue + acquire': () => {
      const q = createQueue({ limits: [{ limiter: new Limiter({ policy: tokenBucket({ capacity: 1e9, refillPerSecond: 1e6 }) }) }] });
      return () => q.add(noop);
    },
    'tollgate acquire': () => {
      const l = new Limiter({ policy: tokenBucket({ capacity: 1e9, refillPerSecond: 1e6 }) });
      return () => l.acquire('k').then(noop);
    },
    bottleneck: () => {
      const b = new Bottleneck({ maxConcurrent: null });
      return () => b.schedule(noop);
    },
    'p-throttle': () => pThrottle({ limit: 1e9, interval: 1000 })(noop),
    'limiter RateLimiter': () => {
      const r = new RateLimiter({ tokensPerInterval: 1e9, interval: 'second' });
      return async () => {
        await r.removeTokens(1);
        return noop();
      };
    },
  };
  for (const [name, make] of Object.entries(overhead)) {
    const run = make();
    await Promise.all(Array.from({ length: 2000 }, run));
    const started = process.hrtime.bigint();
    await Promise.all(Array.from({ length: N }, run));
    const ns = Number(process.hrtime.bigint() - started) / N;
    figures.overheadNs[name] = ns;
    progress(`${name.padEnd(24)} ${ns.toFixed(0)} ns scheduling overhead per job`);
  }
} finally {
  proc.kill();
}
report('client', figures);
