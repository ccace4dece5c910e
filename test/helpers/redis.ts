// Real redis-server processes for the tests. Under CI a missing server fails the run; elsewhere
// the Redis suites are skipped with the reason printed.
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { redisAvailable, startCluster, startRedis } from '../../scripts/local-redis.mjs';

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

/**
 * A local 3-master Redis Cluster and an ioredis Cluster client for the enclosing describe block
 * (`redisOptions` for the client's connections). Read `.client` and `.cluster` inside tests.
 */
export function useRedisCluster(redisOptions: Record<string, unknown> = {}): {
  readonly client: Cluster;
  readonly cluster: Awaited<ReturnType<typeof startCluster>>;
} {
  const state = {} as { client: Cluster; cluster: Awaited<ReturnType<typeof startCluster>> };
  beforeAll(async () => {
    state.cluster = await startCluster();
    state.client = new Cluster([...state.cluster.nodes], { redisOptions });
    state.client.on('error', () => undefined);
  });
  afterAll(async () => {
    state.client?.disconnect();
    await state.cluster?.stop();
  });
  return state;
}
