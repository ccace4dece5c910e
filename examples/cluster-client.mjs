// Many workers, one upstream account: every worker of a node:cluster app calls an API that allows
// 5 requests in any second and 2 in flight, and none of them sees a 429. The places the account
// allows live in shared memory, so the workers take turns first come, first served; a worker that
// dies gives its places back at once. Needs the native addon (shared memory).
// Run: node examples/cluster-client.mjs   (WORKERS=4 REQUESTS=10 by default)
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import { sharedMemory } from 'tollgate';
import { destroySharedPlaces, limitedFetch } from 'tollgate/client';

const WORKERS = Number(process.env.WORKERS ?? 4);
const REQUESTS = Number(process.env.REQUESTS ?? 10);
const ACCOUNT = `example-account-${process.env.ACCOUNT ?? process.pid}`;

if (cluster.isPrimary) {
  // The upstream (a mock of the API): counts each request as it arrives.
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
  const started = performance.now();
  let ok = 0;
  let done = 0;
  for (let i = 0; i < WORKERS; i++) {
    cluster.fork({ UPSTREAM_URL: url, ACCOUNT }).on('message', (count) => {
      ok += count;
      if (++done < WORKERS) return;
      const seconds = (performance.now() - started) / 1000;
      console.log(`${ok} of ${WORKERS * REQUESTS} succeeded in ${seconds.toFixed(1)} s from ${WORKERS} workers (quota 5/s), upstream 429s: ${tooMany}`);
      upstream.close();
      destroySharedPlaces(ACCOUNT);
    });
  }
} else {
  const upstreamFetch = limitedFetch({
    upstream: { limit: 5, windowMs: 1000, concurrency: 2, store: sharedMemory({ name: ACCOUNT }) },
  });
  const statuses = await Promise.all(Array.from({ length: REQUESTS }, () => upstreamFetch(process.env.UPSTREAM_URL).then((r) => r.status)));
  upstreamFetch.close();
  process.send(statuses.filter((s) => s === 200).length, () => process.exit(0));
}
