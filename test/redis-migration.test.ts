// A live resharding (issue 31, item 4): one slot group of a limiter, populated with 20k keys, moved
// to another master with MIGRATE while traffic over all groups runs. Clients meanwhile get ASK and
// TRYAGAIN for that slot only: no node's breaker may open, and only the migrating group's requests
// may be decided by onError. Afterwards its keys are Redis' again, exactly.
import { Cluster, type Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedWindow, Limiter, RedisLimiter, type RedisLimiterEvent } from '../src/index.js';
import { keySlot } from '../src/redis/key-slot.js';
import { groupedKeyBase } from '../src/redis/redis-keys.js';
import { migrateSlot, ownerOf } from '../scripts/migrate-slot.mjs';
import { hasRedis, startCluster, type LocalCluster } from './helpers/redis.js';

const PREFIX = 'tollgate:';
const NAME = 'reshard';
const GROUPS = 16;
const LANES = 16;

/** The slot of a limiter key (its group's slot: every key of one group shares it). */
const slotOf = (key: string) => keySlot(groupedKeyBase(PREFIX, NAME, key, GROUPS));

/** The first `count` keys named `<stem><i>` that fall in `slot`. */
function keysIn(slot: number, stem: string, count: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) if (slotOf(`${stem}${i}`) === slot) keys.push(`${stem}${i}`);
  return keys;
}

describe.runIf(hasRedis)('RedisLimiter through a live slot migration', () => {
  let cluster: LocalCluster;
  let client: Cluster;
  beforeAll(async () => {
    cluster = await startCluster();
    client = new Cluster([...cluster.nodes]);
    client.on('error', () => undefined);
    if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
  });
  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  it('moving a populated group slot opens no breaker, and only that group falls back to onError', async () => {
    const policy = fixedWindow({ limit: 1_000_000_000, windowMs: 600_000 });
    // onError: a local limiter that notes the key of every call it decides.
    const fallback = new Limiter({ policy, engine: 'js' });
    const fellBack: string[] = [];
    const decideLocally = fallback.consume.bind(fallback);
    fallback.consume = (key, cost, options) => {
      fellBack.push(key);
      return decideLocally(key, cost, options);
    };
    const events: RedisLimiterEvent[] = [];
    const limiter = new RedisLimiter({ redis: client, name: NAME, prefix: PREFIX, policy, onError: fallback, onEvent: (e) => events.push(e) });

    // The traffic: 32 keys in each group, so the migrating group is 1/16 of it.
    const trafficKeys = Array.from({ length: GROUPS * 32 }, (_, i) => `user:${i}`);
    const slot = slotOf(trafficKeys[0] as string);
    const inGroup = new Set(trafficKeys.filter((k) => slotOf(k) === slot));
    expect(inGroup.size).toBeGreaterThan(0);
    // 20k keys in that slot, as a limiter with many users holds them: what MIGRATE has to move.
    const populated = keysIn(slot, 'pop:', 20_000);
    for (let i = 0; i < populated.length; i += 2000) await Promise.all(populated.slice(i, i + 2000).map((k) => limiter.consume(k)));
    const from = await ownerOf(client.nodes('master')[0] as Redis, slot);
    const to = (cluster.nodes.find((n) => n.port !== from) as { port: number }).port;

    const before = limiter.stats();
    let stop = false;
    let decisions = 0;
    let groupDecisions = 0;
    let next = 0;
    const lane = async () => {
      while (!stop) {
        const key = trafficKeys[next++ % trafficKeys.length] as string;
        await limiter.consume(key);
        decisions++;
        if (inGroup.has(key)) groupDecisions++;
      }
    };
    const lanes = Array.from({ length: LANES }, lane);
    let migration;
    try {
      await new Promise((r) => setTimeout(r, 300));
      migration = await migrateSlot(cluster.nodes, slot, to);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      stop = true;
      await Promise.all(lanes);
    }
    const s = limiter.stats();
    expect(migration.moved).toBeGreaterThanOrEqual(20_000);
    expect(decisions).toBeGreaterThan(1000);

    const opened = events.filter((e) => e.type === 'breaker' && e.state === 'open');
    const codes = [...new Set(events.filter((e) => e.type === 'error').map((e) => (e.type === 'error' ? e.error.code : '')))];
    expect(opened, `breaker events: ${JSON.stringify(opened)}; error codes seen: ${codes.join(', ')}`).toHaveLength(0);
    expect(s.breakerOpened - before.breakerOpened).toBe(0);
    // Only the migrating group's requests went to onError: at most its share of the traffic.
    const others = fellBack.filter((k) => !inGroup.has(k) && !k.startsWith('pop:'));
    expect(others, `${others.length} decisions of other groups went to onError (codes seen: ${codes.join(', ')})`).toHaveLength(0);
    const fallbackShare = (s.fallbackDecisions - before.fallbackDecisions) / decisions;
    expect(fallbackShare).toBeLessThanOrEqual(groupDecisions / decisions);

    // The slot is the target's now, and a fresh key of the group is counted there exactly.
    expect(await ownerOf(client.nodes('master')[0] as Redis, slot)).toBe(to);
    const fresh = keysIn(slot, 'fresh:', 1)[0] as string;
    const fallbacksBefore = limiter.stats().fallbackDecisions;
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await limiter.consume(fresh, 1, { limit: 5 }));
    expect(answers.filter((d) => d.allowed)).toHaveLength(5);
    expect(limiter.stats().fallbackDecisions).toBe(fallbacksBefore);
    expect(Number(await client.get(`${groupedKeyBase(PREFIX, NAME, fresh, GROUPS)}:fw600000`))).toBe(5);
    limiter.close();
  }, 120_000);
});
