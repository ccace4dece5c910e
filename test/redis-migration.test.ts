// A live resharding: one slot group of a limiter, populated with 20k keys, moved
// to another master with MIGRATE while traffic over all groups runs. Clients meanwhile get ASK and
// TRYAGAIN for that slot only: no node's breaker may open, and only the migrating group's requests
// may be decided by onError. Afterwards its keys are Redis' again, exactly.
import type { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixedWindow, Limiter, RedisLimiter } from '../src/index.js';
import { keySlot } from '../src/redis/key-slot.js';
import { groupedKeyBase } from '../src/redis/redis-keys.js';
import { ownerOf } from '../scripts/migrate-slot.mjs';
import { migrationUnderTraffic, reshardKeys } from '../scripts/redis-scenarios.mjs';
import { hasRedis, useRedisCluster } from './helpers/redis.js';

const tollgate = { RedisLimiter, Limiter, fixedWindow, keySlot, groupedKeyBase };
const keys = reshardKeys(tollgate);

describe.runIf(hasRedis)('RedisLimiter through a live slot migration', () => {
  const state = useRedisCluster();
  beforeAll(async () => {
    if (state.client.status !== 'ready') await new Promise((resolve) => state.client.once('ready', resolve));
  });

  it('moving a populated group slot opens no breaker, and only that group falls back to onError', async () => {
    const { cluster, client } = state;
    // The traffic: 32 keys in each group, so the migrating group is 1/16 of it; 20k keys in the
    // migrating slot, as a limiter with many users holds them: what MIGRATE has to move.
    const { limiter, slot, inGroup, migration, decisions, groupDecisions, before, after, fellBack, events } = await migrationUnderTraffic(tollgate, {
      cluster,
      client,
      populated: 20_000,
      keysPerGroup: 32,
    });
    expect(inGroup.size).toBeGreaterThan(0);
    expect(migration.moved).toBeGreaterThanOrEqual(20_000);
    expect(decisions).toBeGreaterThan(1000);

    const opened = events.filter((e) => e.type === 'breaker' && e.state === 'open');
    const codes = [...new Set(events.filter((e) => e.type === 'error').map((e) => (e.type === 'error' ? e.error.code : '')))];
    expect(opened, `breaker events: ${JSON.stringify(opened)}; error codes seen: ${codes.join(', ')}`).toHaveLength(0);
    expect(after.breakerOpened - before.breakerOpened).toBe(0);
    // Only the migrating group's requests went to onError: at most its share of the traffic.
    const others = fellBack.filter((k) => !inGroup.has(k) && !k.startsWith('pop:'));
    expect(others, `${others.length} decisions of other groups went to onError (codes seen: ${codes.join(', ')})`).toHaveLength(0);
    const fallbackShare = (after.fallbackDecisions - before.fallbackDecisions) / decisions;
    expect(fallbackShare).toBeLessThanOrEqual(groupDecisions / decisions);

    // The slot is the target's now, and a fresh key of the group is counted there exactly.
    expect(await ownerOf(client.nodes('master')[0] as Redis, slot)).toBe(migration.to);
    const fresh = keys.inSlot(slot, 'fresh:', 1)[0] as string;
    const fallbacksBefore = limiter.stats().fallbackDecisions;
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await limiter.consume(fresh, 1, { limit: 5 }));
    expect(answers.filter((d) => d.allowed)).toHaveLength(5);
    expect(limiter.stats().fallbackDecisions).toBe(fallbacksBefore);
    expect(Number(await client.get(`${keys.base(fresh)}:fw600000`))).toBe(5);
    limiter.close();
  }, 120_000);
});
