// A mock rate-limited API for the client benchmark: a token bucket of RATE per second with a
// burst of BURST, answering 429 with Retry-After and x-ratelimit-* headers. Prints its port;
// GET /stats returns { ok, tooMany } and resets them.
import { createServer } from 'node:http';
import { Limiter, tokenBucket } from '../../dist/index.js';

const [rate, burst] = process.argv.slice(2).map(Number);
const limiter = new Limiter({ policy: tokenBucket({ capacity: burst, refillPerSecond: rate }) });
let ok = 0;
let tooMany = 0;
const server = createServer((req, res) => {
  if (req.url === '/stats') {
    res.end(JSON.stringify({ ok, tooMany }));
    ok = 0;
    tooMany = 0;
    return;
  }
  const d = limiter.consume('all');
  res.setHeader('x-ratelimit-limit-requests', String(d.limit));
  res.setHeader('x-ratelimit-remaining-requests', String(d.remaining));
  res.setHeader('x-ratelimit-reset-requests', `${d.resetMs}ms`);
  if (!d.allowed) {
    tooMany++;
    res.statusCode = 429;
    res.setHeader('retry-after', String(Math.ceil(d.retryAfterMs / 1000)));
    res.end();
    return;
  }
  ok++;
  res.end('{}');
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
