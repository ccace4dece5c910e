// Calling a rate-limited API politely: a local mock upstream allows 100 requests per second;
// 300 requests go through limitedFetch, which waits for capacity, adapts to the upstream's
// headers and retries 429s. Run: node examples/upstream-client.mjs
import { createServer } from 'node:http';
import { Limiter, tokenBucket } from 'tollgate';
import { limitedFetch } from 'tollgate/client';

// The upstream: its own token bucket, answering 429 with Retry-After and x-ratelimit-* headers.
// Its burst of 20 covers what the client can have in flight (16) plus the client's own burst (2):
// however late requests arrive or however they bunch up on a busy machine, the upstream then
// never sees more than 18 + 98/s, within its 20 + 100/s.
const quota = new Limiter({ policy: tokenBucket({ capacity: 20, refillPerSecond: 100 }), capacity: 16 });
let tooMany = 0;
const upstream = createServer((_req, res) => {
  const d = quota.consume('account');
  res.setHeader('x-ratelimit-remaining-requests', String(d.remaining));
  res.setHeader('x-ratelimit-reset-requests', `${d.resetMs}ms`);
  if (!d.allowed) {
    tooMany++;
    res.statusCode = 429;
    res.setHeader('retry-after', String(Math.ceil(d.retryAfterMs / 1000)));
  }
  res.end();
});
await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${upstream.address().port}/v1/things`;

// The client: 98% of the upstream's rate, with a burst of 2 so a timer that fires late loses
// nothing, and room left for requests that leave in one order and arrive in another.
const requests = new Limiter({ policy: tokenBucket({ capacity: 2, refillPerSecond: 98 }), capacity: 16 });
const upstreamFetch = limitedFetch({ requests, concurrency: 16, onDeadLetter: ({ reason }) => console.error('gave up:', reason) });

const started = performance.now();
const statuses = await Promise.all(Array.from({ length: 300 }, () => upstreamFetch(url).then((r) => r.status)));
const seconds = (performance.now() - started) / 1000;
console.log(`${statuses.filter((s) => s === 200).length} of 300 succeeded in ${seconds.toFixed(2)} s ` + `(${(300 / seconds).toFixed(0)}/s against a quota of 100/s), upstream 429s: ${tooMany}`);
upstream.close();
