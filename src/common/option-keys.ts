// Unknown option keys refused by name: a typo (`capcity`) or another library's option
// (`max`, `keyGenerator`) silently ignored is a limit that does not do what its author meant.

/** Names other rate limiters use, and what tollgate calls them. */
const OTHER_LIBRARIES: Readonly<Record<string, string>> = {
  max: "the policy's limit, e.g. policy: fixedWindow({ limit: 100, windowMs: 60_000 }) (express-rate-limit's max)",
  limit: "the policy's limit, e.g. fixedWindow({ limit, windowMs }), or a per-request limit: (req) => number",
  points: "the policy's limit (rate-limiter-flexible's points), e.g. fixedWindow({ limit, windowMs })",
  duration: 'windowMs in the policy (rate-limiter-flexible counts seconds, tollgate milliseconds)',
  windowMS: 'windowMs',
  windowms: 'windowMs',
  timeWindow: 'windowMs in the policy (@fastify/rate-limit)',
  keyGenerator: "key: (req) => string (express-rate-limit's keyGenerator)",
  keyPrefix: 'prefix (RedisLimiter) or a distinct name',
  standardHeaders: "headers: 'draft-7' or 'draft-8' (express-rate-limit's standardHeaders)",
  legacyHeaders: "headers: 'legacy' (express-rate-limit's legacyHeaders)",
  statusCode: "statusCode in the middleware's options (rateLimit(), koaRateLimit()...), not the limiter's",
  message: "message in the middleware's options (rateLimit(), koaRateLimit()...), not the limiter's",
  skipFailedRequests: "skipFailedRequests in the middleware's options, or refund(key) after a failed response",
  skipSuccessfulRequests: "skipSuccessfulRequests in the middleware's options, or refund(key) after a successful response",
  requestPropertyName: "req.rateLimit, which the middleware always sets (Koa: ctx.state.rateLimit; fastify: request.rateLimit; Hono: c.get('rateLimit'))",
  requestWasSuccessful: 'skipSuccessfulRequests / skipFailedRequests, which count a status of 400 or above, or no response, as failed (for another rule, limiter.refund(key) yourself)',
  store: "the limiter's store: limiter: new Limiter({ policy, store: sharedMemory({ name, capacity }) }), or a RedisLimiter for Redis",
  passOnStoreError: "RedisLimiter's onError: 'allow' (the middleware then sends no quota headers)",
  identifier: 'name (the policy name in the draft-8 headers)',
  errorResponseBuilder: 'handler, or statusCode and message (@fastify/rate-limit)',
  trustProxy: 'trustProxy',
  storeClient: 'redis (RedisLimiter)',
  sendCommand: "redis: your Redis client itself (ioredis, node-redis, iovalkey), in place of rate-limit-redis' sendCommand",
  ttl: 'windowMs in the policy (milliseconds)',
};

/** Edit distance of a and b, stopping early past 2 (only near misses are suggested). */
function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, previous + (a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}

/**
 * Throws a TypeError with code TOLLGATE_INVALID_ARGUMENT for the first key of `o` that is not in
 * `known`, naming it (as `<where>.<key>`), with what to write instead when it is another
 * library's name or a near miss of a known one.
 */
export function checkKnownKeys(o: object, known: readonly string[], where: string): void {
  for (const key of Object.keys(o)) {
    if (known.includes(key)) continue;
    const near = known.find((k) => distance(key, k) <= 2);
    const other = OTHER_LIBRARIES[key];
    const instead = near !== undefined ? ` (did you mean ${near}?)` : other !== undefined ? `; write ${other}` : '';
    throw Object.assign(new TypeError(`Unknown option ${where}.${key}${instead}. ${where} takes: ${known.join(', ')}`), {
      code: 'TOLLGATE_INVALID_ARGUMENT' as const,
    });
  }
}
