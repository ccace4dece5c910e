// Real redis-server processes for the tests. Under CI a missing server fails the run; elsewhere
// the Redis suites are skipped with the reason printed.
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { redisAvailable, startRedis } from '../../scripts/local-redis.mjs';

export { startCluster, startRedis, freePort } from '../../scripts/local-redis.mjs';
export type { LocalCluster, LocalRedis } from '../../scripts/local-redis.mjs';

const probe = redisAvailable();
if (!probe.available) {
  if (process.env.CI) throw new Error(`CI requires redis-server: ${probe.reason}`);
  console.warn(`Skipping the Redis tests: ${probe.reason}`);
}

/** Whether redis-server runs here (always true under CI, which fails otherwise). */
export const hasRedis = probe.available;

/**
 * A redis-server and an ioredis client for the enclosing describe block: started before its
 * tests, stopped after. Read `.redis` and `.server` inside tests.
 */
export function useRedisServer(): { readonly redis: Redis; readonly server: Awaited<ReturnType<typeof startRedis>> } {
  const state = {} as { redis: Redis; server: Awaited<ReturnType<typeof startRedis>> };
  beforeAll(async () => {
    state.server = await startRedis();
    state.redis = new Redis({ host: state.server.host, port: state.server.port, maxRetriesPerRequest: 1 });
    state.redis.on('error', () => undefined);
  });
  afterAll(async () => {
    state.redis?.disconnect();
    await state.server?.stop();
  });
  return state;
}
