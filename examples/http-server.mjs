// A node:http server that sheds load per client IP: 5 requests per 10 s, answered with 429 and
// the standard headers beyond that. Run: node examples/http-server.mjs, then
//   for i in $(seq 7); do curl -s -o /dev/null -w '%{http_code}\n' localhost:3000; done
import { createServer } from 'node:http';
import { Limiter, tokenBucket } from 'tollgate';

const limiter = new Limiter({
  // Bursts of 5, then one request every 2 seconds.
  policy: tokenBucket({ capacity: 5, tokens: 1, intervalMs: 2000 }),
  capacity: 100_000,
});

const server = createServer((req, res) => {
  const d = limiter.consume(`ip:${req.socket.remoteAddress}`);
  res.setHeader('X-RateLimit-Limit', d.limit);
  res.setHeader('X-RateLimit-Remaining', d.remaining);
  // Unix time in seconds, as GitHub and the rateLimit() middleware send it.
  res.setHeader('X-RateLimit-Reset', Math.ceil((Date.now() + d.resetMs) / 1000));
  if (!d.allowed) {
    res.statusCode = 429;
    res.setHeader('Content-Type', 'application/json');
    if (Number.isFinite(d.retryAfterMs)) res.setHeader('Retry-After', Math.ceil(d.retryAfterMs / 1000));
    res.end(JSON.stringify({ title: 'Too Many Requests', retryAfterMs: d.retryAfterMs }));
    return;
  }
  res.end('hello\n');
});

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
