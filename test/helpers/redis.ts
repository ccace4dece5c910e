// Real redis-server processes for the tests. Under CI a missing server fails the run; elsewhere
// the Redis suites are skipped with the reason printed.
import { redisAvailable } from '../../scripts/local-redis.mjs';

export { startCluster, startRedis, freePort } from '../../scripts/local-redis.mjs';

const probe = redisAvailable();
if (!probe.available) {
  if (process.env.CI) throw new Error(`CI requires redis-server: ${probe.reason}`);
  console.warn(`Skipping the Redis tests: ${probe.reason}`);
}

/** Whether redis-server runs here (always true under CI, which fails otherwise). */
export const hasRedis = probe.available;
