// RedisPlaces, an upstream account's places on Redis: it decides as PlaceBook does (one random
// sequence on both, every reply compared, on a single server and on a Cluster), its leases lapse
// on Redis' own clock, its changes reach other stores' watchers (by subscription or by polling),
// other terms under one name are refused, and close() ends it.
import { Redis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/common/clock.js';
import { MAX_CLOCK_MS } from '../src/common/constants.js';
import type { PlaceStore, PlaceTerms } from '../src/common/places.js';
import type { RedisCommandSender } from '../src/redis/redis-client.js';
import { RedisPlaces } from '../src/redis/redis-places.js';
import { comparePlaceSequence } from './helpers/place-sequence.js';
import { hasRedis, useRedisCluster, useRedisServer } from './helpers/redis.js';

const A = '0123456789abcdef';
const B = 'fedcba9876543210';
const CONCURRENCY_1: PlaceTerms = { limit: 0, windowMs: 0, concurrency: 1, leaseMs: 60_000 };

let names = 0;
/** A name no other test of this file uses: each test its own account. */
const freshName = (what: string) => `${what}-${process.pid}-${++names}`;

/** Waits for `condition` (a liveness bound for a loaded machine, not a timing check). */
async function eventually(condition: () => boolean | Promise<boolean>, what: string, boundMs = 30_000): Promise<void> {
  const giveUpAt = Date.now() + boundMs;
  while (!(await condition())) {
    if (Date.now() > giveUpAt) throw new Error(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A listener that counts its calls. */
function counter(): { readonly listener: () => void; readonly calls: () => number } {
  let calls = 0;
  return { listener: () => void calls++, calls: () => calls };
}

const redisMs = async (redis: Redis): Promise<number> => {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
};

/** Runs `f` with `store`, closing it after, whatever `f` does. */
async function using<S extends PlaceStore, T>(store: S, f: (store: S) => Promise<T>): Promise<T> {
  try {
    return await f(store);
  } finally {
    store.close();
  }
}

describe.runIf(hasRedis)('RedisPlaces on one redis-server', () => {
  const s = useRedisServer();

  describe('decides as PlaceBook does, call for call', () => {
    const cases: [string, PlaceTerms, number, number][] = [
      ['a window: 3 per second', { limit: 3, windowMs: 1000, concurrency: 0, leaseMs: 500 }, 1_000_000, 0x91ace1],
      ['concurrency alone, from time 0', { limit: 0, windowMs: 0, concurrency: 2, leaseMs: 300 }, 0, 0x91ace2],
      ['a window and concurrency, near the largest clock (16 digits)', { limit: 5, windowMs: 700, concurrency: 2, leaseMs: 400 }, MAX_CLOCK_MS - 2 ** 40, 0x91ace3],
      ['one place, a long lease', { limit: 1, windowMs: 250, concurrency: 1, leaseMs: 1000 }, 1_700_000_000_000, 0x91ace4],
      ['twelve per 3 s', { limit: 12, windowMs: 3000, concurrency: 0, leaseMs: 600 }, 5_000, 0x91ace5],
    ];
    it.each(cases)('%s', async (_, terms, start, seed) => {
      const name = freshName('differential');
      const base = `tollgate:places:{${name}}`;
      // Every call whose book's version grew must publish once, and no other.
      const listener = s.redis.duplicate();
      listener.on('error', () => undefined);
      let published = 0;
      let ended = false;
      listener.on('message', (_channel: string, message: string) => {
        if (message === 'end') ended = true;
        else published++;
      });
      await listener.subscribe(`${base}:changed`);
      const clock = new ManualClock(start);
      const tally = await using(new RedisPlaces({ redis: s.redis, name }, terms, clock), (store) => comparePlaceSequence(store, terms, clock, seed, 700));
      // The sequence reached what it is for: grants, queueing, releases and changes.
      expect(Math.min(tally.granted, tally.queued, tally.released, tally.changes)).toBeGreaterThan(0);
      await s.redis.publish(`${base}:changed`, 'end');
      await eventually(() => ended, 'the end marker');
      listener.disconnect();
      expect(published).toBe(tally.changes);
      // Every key of the account ends by itself.
      const keys = await s.redis.keys(`${base}*`);
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) expect(await s.redis.pttl(key), key).toBeGreaterThan(0);
    });
  });

  it("a holder's lease lapses on Redis' clock: once Redis' clock is past it, another holder is granted", async () => {
    const terms = { limit: 0, windowMs: 0, concurrency: 1, leaseMs: 200 };
    // A stall of the machine between the two first calls may let A's lease lapse before B asks:
    // then the account starts again under a new name, until B has been refused once.
    for (let attempt = 0; ; attempt++) {
      const name = freshName('expiry');
      const a = new RedisPlaces({ redis: s.redis, name }, terms);
      const b = new RedisPlaces({ redis: s.redis, name }, terms);
      try {
        const first = await a.acquire(A, a.now());
        expect(first.granted).toBe(true);
        const leaseUntil = Number(await s.redis.zscore(`tollgate:places:{${name}}:holders`, A));
        const since = b.now();
        const refused = await b.acquire(B, since);
        if (refused.granted) {
          // B was granted only because A's lease had lapsed by Redis' clock.
          expect(await redisMs(s.redis)).toBeGreaterThanOrEqual(leaseUntil);
          expect(attempt).toBeLessThan(20);
          continue;
        }
        // Told when the book changes by itself: A's lease ends.
        expect(refused.wakeAt).toBe(leaseUntil);
        // The store's estimate of Redis' clock is never ahead of it.
        const estimate = b.now();
        expect(estimate).toBeLessThanOrEqual(await redisMs(s.redis));
        await eventually(async () => (await redisMs(s.redis)) > leaseUntil, "Redis' clock past the lease");
        const granted = await b.acquire(B, since);
        expect(granted.granted).toBe(true);
        // A lost its place and its lease: neither comes back.
        expect(await a.renew(A)).toBe(false);
        expect(await a.release(A, first.granted ? first.place : '')).toBe(false);
        return;
      } finally {
        a.close();
        b.close();
      }
    }
  });

  describe('watch()', () => {
    /**
     * A holds the one place; the watcher's listener is on; A's release reaches it. `subscribers`:
     * how many subscriptions the account's channel has meanwhile (0 for a store that polls).
     */
    async function releaseReaches(watcher: RedisPlaces, releaser: RedisPlaces, name: string, subscribers: number): Promise<void> {
      const seen = counter();
      const stop = watcher.watch(seen.listener);
      try {
        // The listener is called once the subscription (or the first poll) takes effect.
        await eventually(() => seen.calls() > 0, 'the watch to start');
        // (eventually: an earlier store's subscription may still be closing)
        const channel = `tollgate:places:{${name}}:changed`;
        await eventually(async () => (await s.redis.pubsub('NUMSUB', channel))[1] === subscribers, `${subscribers} subscriptions`);
        const held = await releaser.acquire(A, releaser.now());
        if (!held.granted) throw new Error('A was not granted');
        const before = seen.calls();
        expect(await releaser.release(A, held.place)).toBe(true);
        await eventually(() => seen.calls() > before, 'the release to reach the watcher');
      } finally {
        stop();
      }
    }

    it('ioredis: a release by one store calls the listener of another; the subscription ends with the last listener', async () => {
      const name = freshName('watch-ioredis');
      const channel = `tollgate:places:{${name}}:changed`;
      const other = new Redis({ host: s.server.host, port: s.server.port });
      other.on('error', () => undefined);
      try {
        const watcher = new RedisPlaces({ redis: other, name }, CONCURRENCY_1);
        const releaser = new RedisPlaces({ redis: s.redis, name }, CONCURRENCY_1);
        await releaseReaches(watcher, releaser, name, 1);
        await eventually(async () => (await s.redis.pubsub('NUMSUB', channel))[1] === 0, 'the subscription to end');
        // Two listeners share one subscription, which outlives the first to stop.
        const one = counter();
        const two = counter();
        const stopOne = watcher.watch(one.listener);
        const stopTwo = watcher.watch(two.listener);
        await eventually(() => one.calls() > 0 && two.calls() > 0, 'both listeners to start');
        expect((await s.redis.pubsub('NUMSUB', channel))[1]).toBe(1);
        stopOne();
        const held = await releaser.acquire(B, releaser.now());
        if (!held.granted) throw new Error('B was not granted');
        const before = two.calls();
        await releaser.release(B, held.place);
        await eventually(() => two.calls() > before, 'the release to reach the listener still on');
        // A killed subscriber connection is ioredis' to reconnect: the process goes on, and the
        // listener is called again once it is back (what was published meanwhile is lost).
        const afterKill = two.calls();
        await s.redis.client('KILL', 'TYPE', 'pubsub');
        await eventually(() => two.calls() > afterKill, 'the listener to be called after the reconnection');
        await eventually(async () => (await s.redis.pubsub('NUMSUB', channel))[1] === 1, 'the subscription to be back');
        stopTwo();
        // close() ends a subscription still on.
        watcher.watch(() => undefined);
        await eventually(async () => (await s.redis.pubsub('NUMSUB', channel))[1] === 1, 'the subscription');
        watcher.close();
        releaser.close();
        await eventually(async () => (await s.redis.pubsub('NUMSUB', channel))[1] === 0, 'close() to end the subscription');
      } finally {
        other.disconnect();
      }
    });

    it('node-redis: a release by one store calls the listener of another', async () => {
      const name = freshName('watch-node-redis');
      const client = createClient({ socket: { host: s.server.host, port: s.server.port } });
      client.on('error', () => undefined);
      await client.connect();
      try {
        await using(new RedisPlaces({ redis: client, name }, CONCURRENCY_1), (watcher) =>
          using(new RedisPlaces({ redis: s.redis, name }, CONCURRENCY_1), (releaser) => releaseReaches(watcher, releaser, name, 1)),
        );
        // Both directions: node-redis' store releases, ioredis' listens.
        await using(new RedisPlaces({ redis: s.redis, name }, CONCURRENCY_1), (watcher) =>
          using(new RedisPlaces({ redis: client, name }, CONCURRENCY_1), (releaser) => releaseReaches(watcher, releaser, name, 1)),
        );
        const channel = `tollgate:places:{${name}}:changed`;
        await eventually(async () => (await s.redis.pubsub('NUMSUB', channel))[1] === 0, 'the subscription to end');
      } finally {
        client.destroy();
      }
    });

    it('a RedisCommandSender, which cannot subscribe, is polled every pollMs while a listener is on', async () => {
      const name = freshName('watch-sender');
      const sender: RedisCommandSender = { sendCommand: (command) => s.redis.call(command[0] as string, ...command.slice(1)) };
      await using(new RedisPlaces({ redis: sender, name, pollMs: 10 }, CONCURRENCY_1), async (watcher) => {
        const seen = counter();
        const stop = watcher.watch(seen.listener);
        await eventually(() => seen.calls() >= 3, 'three polls');
        stop();
        // The sender's store decides too.
        await using(new RedisPlaces({ redis: s.redis, name }, CONCURRENCY_1), (releaser) => releaseReaches(watcher, releaser, name, 0));
        expect((await watcher.acquire(B, watcher.now())).granted).toBe(true);
      });
    });
  });

  it('other terms under one name are refused (TOLLGATE_STORE_MISMATCH, naming what differs), and so is a key of another shape', async () => {
    const name = freshName('terms');
    await using(new RedisPlaces({ redis: s.redis, name }, { limit: 10, windowMs: 1000, concurrency: 0, leaseMs: 60_000 }), async (first) => {
      expect((await first.acquire(A, first.now())).granted).toBe(true);
      await using(new RedisPlaces({ redis: s.redis, name }, { limit: 20, windowMs: 1000, concurrency: 0, leaseMs: 60_000 }), async (other) => {
        const error = await other.acquire(B, other.now()).catch((e: unknown) => e as Error & { code?: string });
        expect(error).toMatchObject({ code: 'TOLLGATE_STORE_MISMATCH' });
        expect((error as Error).message).toContain('limit 10');
        expect((error as Error).message).not.toContain('windowMs');
      });
      // Nothing was changed by the refused call.
      expect(await first.counts()).toEqual({ inFlight: 1, cooling: 0, waiting: 0, holders: 1 });
    });
    const foreign = freshName('foreign');
    await s.redis.hset(`tollgate:places:{${foreign}}`, 'field', 'value');
    await using(new RedisPlaces({ redis: s.redis, name: foreign }, CONCURRENCY_1), async (store) => {
      await expect(store.counts()).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_STATE_MISMATCH' });
    });
  });

  it('close() rejects the calls still out and every later one with TOLLGATE_CLOSED', async () => {
    const store = new RedisPlaces({ redis: s.redis, name: freshName('close') }, CONCURRENCY_1);
    const pending = store.acquire(A, store.now());
    store.close();
    await expect(pending).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
    await expect(store.acquire(A, 0)).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
    await expect(store.release(A, '1')).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
    await expect(store.renew(A)).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
    await expect(store.leave(A)).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
    await expect(store.counts()).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
    expect(() => store.watch(() => undefined)).toThrow(expect.objectContaining({ code: 'TOLLGATE_CLOSED' }));
    store.close(); // twice is fine
  });

  it('refuses options, terms and arguments it cannot use, by name', async () => {
    const make =
      (options: Record<string, unknown>, terms: unknown = CONCURRENCY_1) =>
      () =>
        new RedisPlaces({ redis: s.redis, name: 'x', ...options } as never, terms as PlaceTerms);
    expect(make({ prefx: 'a' })).toThrow(/options\.prefx \(did you mean prefix\?\)/);
    expect(make({ prefix: 'a{b}' })).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringContaining('prefix') }));
    expect(make({ name: '' })).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE', message: expect.stringContaining('name') }));
    expect(make({ timeoutMs: 0 })).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE', message: expect.stringContaining('timeoutMs') }));
    expect(make({ pollMs: 'fast' })).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringContaining('pollMs') }));
    expect(make({ redis: {} })).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringContaining('redis') }));
    expect(make({}, { limit: 0, concurrency: 0, leaseMs: 100 })).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE' }));
    expect(make({}, { leaseMs: 100 })).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT' }));
    expect(make({}, { limit: 5, concurrency: 0, leaseMs: 100 })).toThrow(expect.objectContaining({ message: expect.stringContaining('terms.windowMs') }));
    expect(make({}, { limit: 0, windowMs: 100, concurrency: 1, leaseMs: 100 })).toThrow(expect.objectContaining({ message: expect.stringContaining('terms.windowMs') }));
    expect(make({}, { limit: 1, windowMs: 100, concurrency: 0, leaseMs: 0 })).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE', message: expect.stringContaining('terms.leaseMs') }));
    expect(make({}, { limit: 1, windowMs: 100, concurrency: 0, leaseMs: 10, max: 3 })).toThrow(/terms\.max/);
    expect(make({}, CONCURRENCY_1)).not.toThrow();
    await using(make({}, CONCURRENCY_1)(), async (store) => {
      await expect(store.acquire('ABCDEF0123456789', 0)).rejects.toMatchObject({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringContaining('holder') });
      await expect(store.acquire(A, Number.NaN)).rejects.toMatchObject({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringContaining('waitingSince') });
      await expect(store.release(A, 7 as never)).rejects.toMatchObject({ code: 'TOLLGATE_INVALID_ARGUMENT', message: expect.stringContaining('place') });
      expect(() => store.watch('no' as never)).toThrow(expect.objectContaining({ code: 'TOLLGATE_INVALID_ARGUMENT' }));
    });
  });
});

describe.runIf(hasRedis)('RedisPlaces on a 3-master Redis Cluster', () => {
  const c = useRedisCluster();

  it('decides as PlaceBook does, and a release reaches another store’s watcher', async () => {
    const name = freshName('cluster');
    const terms = { limit: 4, windowMs: 800, concurrency: 3, leaseMs: 500 };
    const clock = new ManualClock(1_000_000);
    const tally = await using(new RedisPlaces({ redis: c.client, name }, terms, clock), (store) => comparePlaceSequence(store, terms, clock, 0xc1a5, 300));
    expect(Math.min(tally.granted, tally.queued, tally.released)).toBeGreaterThan(0);
    // Redis' clock, and pub/sub across the nodes (the watcher's subscription may sit on any node).
    const watched = freshName('cluster-watch');
    // A poll a minute apart would not call the listener within the wait: the subscription does.
    await using(new RedisPlaces({ redis: c.client, name: watched, pollMs: 60_000 }, CONCURRENCY_1), async (watcher) => {
      await using(new RedisPlaces({ redis: c.client, name: watched }, CONCURRENCY_1), async (releaser) => {
        const seen = counter();
        const stop = watcher.watch(seen.listener);
        await eventually(() => seen.calls() > 0, 'the watch to start');
        const held = await releaser.acquire(A, releaser.now());
        if (!held.granted) throw new Error('A was not granted');
        const before = seen.calls();
        expect(await releaser.release(A, held.place)).toBe(true);
        await eventually(() => seen.calls() > before, 'the release to reach the watcher');
        stop();
      });
    });
  });

  it('node-redis cluster: a release through ioredis reaches a watcher on node-redis', async () => {
    const client = createCluster({ rootNodes: c.cluster.nodes.map((n) => ({ socket: { host: n.host, port: n.port } })) });
    client.on('error', () => undefined);
    await client.connect();
    const name = freshName('cluster-node-redis');
    try {
      // A poll a minute apart would not call the listener within the wait: the subscription does.
      await using(new RedisPlaces({ redis: client, name, pollMs: 60_000 }, CONCURRENCY_1), async (watcher) => {
        await using(new RedisPlaces({ redis: c.client, name }, CONCURRENCY_1), async (releaser) => {
          const seen = counter();
          const stop = watcher.watch(seen.listener);
          await eventually(() => seen.calls() > 0, 'the watch to start');
          // Held through node-redis, released through ioredis: both clients meet on one account.
          const held = await watcher.acquire(A, watcher.now());
          if (!held.granted) throw new Error('A was not granted');
          const before = seen.calls();
          expect(await releaser.release(A, held.place)).toBe(true);
          await eventually(() => seen.calls() > before, 'the release to reach the watcher');
          stop();
        });
      });
    } finally {
      client.destroy();
    }
  });
});
