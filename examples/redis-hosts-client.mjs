// One upstream account, several hosts: two processes (standing in for two machines) share an API
// that allows 5 requests in any second and 2 in flight, through Redis. Each process renews a lease
// while it holds or waits for a place; a host that dies gives its places back when its lease
// lapses (leaseMs, by Redis' clock). Needs a Redis server; no native addon.
// Run: REDIS_URL=redis://127.0.0.1:6379 node examples/redis-hosts-client.mjs
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { limitedFetch } from 'tollgate/client';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REQUESTS = Number(process.env.REQUESTS ?? 10);

if (process.argv[2] !== 'host') {
  // The upstream (a mock of the API), counting each request as it arrives.
  const arrivals = [];
  let inFlight = 0;
  let tooMany = 0;
  const upstream = createServer((_req, res) => {
    const now = performance.now();
    while (arrivals.length > 0 && arrivals[0] <= now - 1000) arrivals.shift();
    if (arrivals.length >= 5 || inFlight >= 2) {
      tooMany++;
      res.writeHead(429, { 'retry-after': '1' }).end();
      return;
    }
    arrivals.push(now);
    inFlight++;
    setTimeout(() => {
      inFlight--;
      res.end('{}');
    }, 50);
  });
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${upstream.address().port}/v1/chat`;
  const account = `example-${process.pid}`;
  const started = performance.now();
  const hosts = ['a', 'b'].map(
    () =>
      new Promise((resolve, reject) => {
        const child = fork(new URL(import.meta.url).pathname, ['host', url, account]);
        child.once('message', resolve);
        child.once('exit', (code) => code !== 0 && reject(new Error(`host exited ${code}`)));
      }),
  );
  const ok = (await Promise.all(hosts)).reduce((a, b) => a + b, 0);
  const seconds = (performance.now() - started) / 1000;
  console.log(`${ok} of ${2 * REQUESTS} succeeded in ${seconds.toFixed(1)} s from 2 hosts (quota 5/s), upstream 429s: ${tooMany}`);
  upstream.close();
} else {
  const [, , , url, account] = process.argv;
  const redis = new Redis(REDIS_URL);
  const upstreamFetch = limitedFetch({
    upstream: { limit: 5, windowMs: 1000, concurrency: 2, leaseMs: 5000, store: { redis, name: account } },
  });
  const statuses = await Promise.all(Array.from({ length: REQUESTS }, () => upstreamFetch(url).then((r) => r.status)));
  upstreamFetch.close();
  redis.disconnect();
  process.send(statuses.filter((s) => s === 200).length, () => process.exit(0));
}
