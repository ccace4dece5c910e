// Mock upstream APIs on loopback, and a network to them, for the tests and the client bench: each
// enforces its own quota and answers 429 with Retry-After beyond it, counting what it refused.
// StrictUpstream counts arrivals (a sliding log) and requests in flight, as a strict API does;
// BucketUpstream runs a token bucket and publishes it in x-ratelimit-* headers, as OpenAI's does.
import { createServer } from 'node:http';

/** Answers an accepted request with the tokens its x-tokens header says it used (0 without). */
function answerUsage(req, res) {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ usage: { total_tokens: Number(req.headers['x-tokens'] ?? 0) } }));
}

/** Listens on 127.0.0.1 at a free port; resolves with the base URL (ending in '/'). */
async function listenOnLoopback(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${server.address().port}/`;
}

/** Closes the server and every connection still open (a hung request's too). */
function closeServer(server) {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * The strict upstream. Its terms: at most `limit` requests arriving in any `windowMs` (a sliding log of
 * arrivals), and at most `concurrency` in flight, counting every request from its arrival until its
 * connection's answer is done (a refused one too: the API still had to read it). An accepted
 * request is answered after `answerMs` (at once when 0) with `{ usage: { total_tokens } }`, the
 * tokens taken from its x-tokens header; one to `/hang` is never answered.
 */
export class StrictUpstream {
  /** Times (performance.now()) of the accepted arrivals still inside the window. */
  #arrivals = [];
  #server;
  /** Requests arrived and not yet answered or closed. */
  inFlight = 0;
  /** The most `inFlight` has been since the last resetCounts(). */
  mostInFlight = 0;
  /** Requests refused with a 429. */
  tooMany = 0;
  /** Requests answered 200. */
  ok = 0;
  /** Requests to /hang accepted (and never answered). */
  hung = 0;

  constructor({ limit, windowMs, concurrency = Number.POSITIVE_INFINITY, answerMs = 0 }) {
    this.#server = createServer((req, res) => {
      const now = performance.now();
      this.inFlight++;
      this.mostInFlight = Math.max(this.mostInFlight, this.inFlight);
      res.once('close', () => this.inFlight--);
      while (this.#arrivals.length > 0 && this.#arrivals[0] <= now - windowMs) this.#arrivals.shift();
      if (this.#arrivals.length >= limit || this.inFlight > concurrency) {
        this.tooMany++;
        res.writeHead(429, { 'retry-after': '1' }).end();
        return;
      }
      this.#arrivals.push(now);
      if (req.url === '/hang') {
        this.hung++;
        return; // its place is held until its client's connection closes
      }
      const answer = () => {
        this.ok++;
        answerUsage(req, res);
      };
      if (answerMs > 0) setTimeout(answer, answerMs);
      else answer();
    });
  }

  /** Listens on 127.0.0.1 at a free port; resolves with the base URL (ending in '/'). */
  listen() {
    return listenOnLoopback(this.#server);
  }

  /** Zeroes the counters (not the arrivals: the window empties only with time), between contenders. */
  resetCounts() {
    this.mostInFlight = this.inFlight;
    this.tooMany = 0;
    this.ok = 0;
    this.hung = 0;
  }

  /** Closes the server and every connection still open (a hung request's too). */
  close() {
    return closeServer(this.#server);
  }
}

/**
 * The upstream as a token bucket: each request takes one from `limiter` (a tollgate Limiter on a
 * tokenBucket policy, key 'all'); its limit, remaining and reset go back in the
 * x-ratelimit-*-requests headers, and a refusal is a 429 with Retry-After in whole seconds.
 * `limiter` may be replaced while it runs (the upstream changing its terms behind the client's
 * back). GET /stats answers `{ ok, tooMany }` and zeroes them, for a client in another process.
 */
export class BucketUpstream {
  #server;
  limiter;
  /** Requests answered 200. */
  ok = 0;
  /** Requests refused with a 429. */
  tooMany = 0;

  constructor(limiter) {
    this.limiter = limiter;
    this.#server = createServer((req, res) => {
      if (req.url === '/stats') {
        res.end(JSON.stringify({ ok: this.ok, tooMany: this.tooMany }));
        this.ok = 0;
        this.tooMany = 0;
        return;
      }
      const d = this.limiter.consume('all');
      res.setHeader('x-ratelimit-limit-requests', String(d.limit));
      res.setHeader('x-ratelimit-remaining-requests', String(d.remaining));
      res.setHeader('x-ratelimit-reset-requests', `${d.resetMs}ms`);
      if (!d.allowed) {
        this.tooMany++;
        res.writeHead(429, { 'retry-after': String(Math.ceil(d.retryAfterMs / 1000)) }).end();
        return;
      }
      this.ok++;
      answerUsage(req, res);
    });
  }

  /** Listens on 127.0.0.1 at a free port; resolves with the base URL (ending in '/'). */
  listen() {
    return listenOnLoopback(this.#server);
  }

  /** Closes the server and every connection still open. */
  close() {
    return closeServer(this.#server);
  }
}

/**
 * fetch over a network of 0 to `maxDelayMs` of delay each way (request, then the whole answer),
 * the delays drawn from a 32-bit LCG seeded with `seed`, so a run is repeatable: requests sent
 * evenly still arrive bunched. The answer is read in full and handed back as a new Response.
 */
export function jitteryFetch(seed, maxDelayMs = 40) {
  let x = Number(seed) >>> 0 || 1;
  const delay = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return new Promise((resolve) => setTimeout(resolve, (x / 2 ** 32) * maxDelayMs));
  };
  return async (input, init) => {
    await delay();
    const response = await fetch(input, init);
    const body = await response.arrayBuffer();
    await delay();
    return new Response(body, { status: response.status, headers: response.headers });
  };
}
