// Redis as operators run it, each on a real redis-server on
// loopback: a full Redis (maxmemory with noeviction), a replica (READONLY), ACL users without a
// command tollgate needs, a command renamed away (PEXPIRETIME), eviction policies, and counters
// found without an expiry. A Redis failure goes to onError with its class in the event; only
// foreign state is a state mismatch; a missing capability is a coded rejection, never a fail-open
// or fail-closed loop; no key is left without a TTL. Assertions are on counts, codes and TTLs,
// never on timings; waits poll for an outcome.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fixedWindow, RedisLimiter, slidingWindow, type Decision, type Policy, type RedisLimiterEvent } from '../src/index.js';
import { hasRedis, startRedis, type LocalRedis } from './helpers/redis.js';

// The codes these scenarios expect, as strings: they need not be in the error types for these tests to compile.
const OUT_OF_MEMORY = 'TOLLGATE_REDIS_OUT_OF_MEMORY';
const READONLY = 'TOLLGATE_REDIS_READONLY';
const UNSUPPORTED = 'TOLLGATE_REDIS_UNSUPPORTED';
const NO_PERMISSION = 'TOLLGATE_REDIS_NO_PERMISSION';
const STATE_MISMATCH = 'TOLLGATE_REDIS_STATE_MISMATCH';
const LEASES_OFF = 'TOLLGATE_REDIS_LEASES_OFF';
const EVICTION = 'TOLLGATE_REDIS_EVICTION';

let names = 0;
const unique = (label: string) => `${label}${++names}`;

/** Small breaker settings: a node found failing is retried within tens of ms. */
const QUICK_BREAKER = { afterFailures: 1, retryMs: 20, maxRetryMs: 50 };
/** Generous: a loaded machine must never turn a decision into a timeout (and an onError decision). */
const TIMEOUT_MS = 2000;

interface CodedError {
  readonly code?: unknown;
  readonly reply?: unknown;
  readonly message?: unknown;
}
const codeOf = (error: unknown): string => String((error as CodedError | undefined)?.code);
const replyOf = (error: unknown): string => String((error as CodedError | undefined)?.reply);
const messageOf = (error: unknown): string => String((error as CodedError | undefined)?.message);

/** The errors reported to onEvent. */
const errorsOf = (events: readonly RedisLimiterEvent[]): CodedError[] => events.flatMap((e) => (e.type === 'error' ? [e.error as CodedError] : []));
const codesOf = (events: readonly RedisLimiterEvent[]): string[] => errorsOf(events).map(codeOf);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `attempt` until it returns a value (not undefined); fails after `ms`. */
async function until<T>(what: string, attempt: () => Promise<T | undefined> | T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function client(server: LocalRedis, auth?: { username: string; password: string }): Redis {
  const redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 1, ...auth });
  redis.on('error', () => undefined);
  return redis;
}

/** Process warnings emitted while it listens (process.on('warning')), by code. */
function listenForWarnings() {
  const seen: { code: string; message: string }[] = [];
  const on = (w: Error & { code?: string }) => seen.push({ code: String(w.code), message: w.message });
  process.on('warning', on);
  return {
    of: (code: string) => seen.filter((w) => w.code === code),
    stop: () => process.off('warning', on),
  };
}

/** Every key under `pattern` with its PTTL (-1: no expiry). */
async function ttls(admin: Redis, pattern: string): Promise<{ key: string; pttl: number }[]> {
  const out: { key: string; pttl: number }[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) out.push({ key, pttl: await admin.pttl(key) });
  } while (cursor !== '0');
  return out;
}

/** A consume Redis decided on a key it had never seen (onError answers remaining = limit, or a denial). */
const decidedByRedis = (d: Decision, limit: number) => d.allowed && d.remaining === limit - 1;

const KINDS: readonly [string, Policy][] = [
  ['fixed window', fixedWindow({ limit: 5, windowMs: 60_000 })],
  ['sliding window', slidingWindow({ limit: 5, windowMs: 60_000 })],
];
const ON_ERRORS = [
  ['allow', true],
  ['deny', false],
] as const;

describe.runIf(hasRedis)('a full Redis (maxmemory, noeviction): OOM is a Redis failure, decided by onError', () => {
  let server: LocalRedis;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedis(['--maxmemory-policy', 'noeviction']);
    admin = client(server);
  });
  afterEach(async () => {
    await admin.config('SET', 'maxmemory', '0');
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  for (const [kind, policy] of KINDS) {
    for (const [onError, allowed] of ON_ERRORS) {
      it(`${kind}, onError '${onError}': every consume decided by onError with OUT_OF_MEMORY reported, never a state mismatch; Redis decides again once memory is freed`, async () => {
        const prefix = unique('oom') + ':';
        const events: RedisLimiterEvent[] = [];
        // afterFailures 5: the first rounds below each reach Redis (the breaker counts OOM, and opens after).
        const options = { redis: admin, name: 'full', prefix, policy, onError, denyCache: false, timeoutMs: TIMEOUT_MS, breaker: { ...QUICK_BREAKER, afterFailures: 5 } } as const;
        const warm = new RedisLimiter({ ...options, onEvent: (e) => events.push(e) });
        try {
          // A running limiter, its clock and its checks of the node done, meets a full Redis.
          expect(await warm.consume('before')).toMatchObject({ allowed: true, remaining: 4 });
          await admin.config('SET', 'maxmemory', '1');

          // Plain consumes (one batch), then consumes of cost 2 (the general path).
          const plain = await Promise.allSettled(['a', 'b', 'c', 'before', 'a'].map((k) => warm.consume(k)));
          expect(plain.map((r) => r.status)).toEqual(Array(5).fill('fulfilled'));
          expect(plain.map((r) => (r.status === 'fulfilled' ? r.value.allowed : null))).toEqual(Array(5).fill(allowed));
          expect(codesOf(events).filter((c) => c === OUT_OF_MEMORY).length).toBeGreaterThanOrEqual(1);
          const afterPlain = codesOf(events).length;
          const general = await Promise.allSettled(['a', 'd'].map((k) => warm.consume(k, 2)));
          expect(general.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
          expect(general.map((r) => (r.status === 'fulfilled' ? r.value.allowed : null))).toEqual([allowed, allowed]);
          expect(codesOf(events).slice(afterPlain)).toContain(OUT_OF_MEMORY);

          // Each OOM event carries the server's text.
          for (const error of errorsOf(events).filter((e) => codeOf(e) === OUT_OF_MEMORY)) {
            expect(replyOf(error)).toContain('OOM');
            expect(messageOf(error)).toContain('OOM');
          }
          expect(codesOf(events)).not.toContain(STATE_MISMATCH);

          // A limiter created while Redis is full (first contact: clock and checks) decides the same way.
          const freshEvents: RedisLimiterEvent[] = [];
          const fresh = new RedisLimiter({ ...options, onEvent: (e) => freshEvents.push(e) });
          try {
            const decided = await Promise.allSettled(['x', 'y'].map((k) => fresh.consume(k)));
            expect(decided.map((r) => (r.status === 'fulfilled' ? r.value.allowed : messageOf(r.reason)))).toEqual([allowed, allowed]);
            expect(codesOf(freshEvents)).toContain(OUT_OF_MEMORY);
            expect(codesOf(freshEvents)).not.toContain(STATE_MISMATCH);
            expect(fresh.stats().stateMismatches).toBe(0);
          } finally {
            fresh.close();
          }

          // OOM counts toward the node's breaker: more failing rounds open it.
          for (let round = 0; round < 6 && warm.stats().breakerOpened === 0; round++) await warm.consume(`more${round}`);
          const s = warm.stats();
          expect(s.breakerOpened).toBeGreaterThanOrEqual(1);
          expect(s.stateMismatches).toBe(0);
          expect(onError === 'allow' ? s.failedOpen : s.failedClosed).toBe(s.decisions - 1);

          // Memory freed: the breaker's trial finds Redis answering, and Redis decides again, exactly.
          await admin.config('SET', 'maxmemory', '0');
          let probe = 0;
          await until('Redis to decide again', async () => {
            const d = await warm.consume(`probe${++probe}`);
            return decidedByRedis(d, 5) ? d : undefined;
          });
          const after = [];
          for (let i = 0; i < 7; i++) after.push(await warm.consume('after'));
          expect(after.map((d) => [d.allowed, d.remaining])).toEqual([
            [true, 4],
            [true, 3],
            [true, 2],
            [true, 1],
            [true, 0],
            [false, 0],
            [false, 0],
          ]);
          const suffix = kind === 'fixed window' ? ':fw60000' : ':sw60000';
          expect(await admin.pttl(`${prefix}full{after}${suffix}`)).toBeGreaterThan(0);
          if (kind === 'fixed window') expect(await admin.get(`${prefix}full{after}${suffix}`)).toBe('5');
        } finally {
          warm.close();
        }
      });
    }
  }

  it('a lease call under OOM goes to onError with OUT_OF_MEMORY reported', async () => {
    const prefix = unique('oomlease') + ':';
    const events: RedisLimiterEvent[] = [];
    const limiter = new RedisLimiter({
      redis: admin,
      name: 'full',
      prefix,
      policy: fixedWindow({ limit: 100, windowMs: 60_000 }),
      leases: { hotAfter: 1 },
      onError: 'deny',
      onEvent: (e) => events.push(e),
      denyCache: false,
      timeoutMs: TIMEOUT_MS,
      breaker: QUICK_BREAKER,
    });
    try {
      expect((await limiter.consume('warm')).allowed).toBe(true);
      await admin.config('SET', 'maxmemory', '1');
      const settled = await Promise.allSettled(Array.from({ length: 10 }, () => limiter.consume('hot')));
      expect(settled.map((r) => (r.status === 'fulfilled' ? r.value.allowed : messageOf(r.reason)))).toEqual(Array(10).fill(false));
      expect(codesOf(events)).toContain(OUT_OF_MEMORY);
      expect(codesOf(events)).not.toContain(STATE_MISMATCH);
      expect(limiter.stats().stateMismatches).toBe(0);
    } finally {
      limiter.close();
    }
  });
});

describe.runIf(hasRedis)('a replica (READONLY) is a Redis failure, decided by onError', () => {
  let master: LocalRedis;
  let replica: LocalRedis;
  let replicaClient: Redis;
  beforeAll(async () => {
    master = await startRedis();
    replica = await startRedis(['--replicaof', master.host, String(master.port)]);
    replicaClient = client(replica);
    // Past the first sync (LOADING while it loads the master's data): a replica serving reads.
    await until('the replica to be in sync', async () => ((await replicaClient.info('replication')).includes('master_link_status:up') ? true : undefined), 20_000);
  });
  afterAll(async () => {
    replicaClient?.disconnect();
    await replica?.stop();
    await master?.stop();
  });

  for (const [kind, policy] of KINDS) {
    for (const [onError, allowed] of ON_ERRORS) {
      it(`${kind}, onError '${onError}': consumes on a replica are decided by onError with READONLY reported`, async () => {
        const events: RedisLimiterEvent[] = [];
        const limiter = new RedisLimiter({
          redis: replicaClient,
          name: unique('replica'),
          policy,
          onError,
          onEvent: (e) => events.push(e),
          denyCache: false,
          timeoutMs: TIMEOUT_MS,
          breaker: { ...QUICK_BREAKER, afterFailures: 5 },
        });
        try {
          const plain = await Promise.allSettled(['a', 'b', 'a'].map((k) => limiter.consume(k)));
          const general = await Promise.allSettled(['a', 'c'].map((k) => limiter.consume(k, 2)));
          const all = [...plain, ...general];
          expect(all.map((r) => (r.status === 'fulfilled' ? r.value.allowed : `${codeOf(r.reason)}: ${messageOf(r.reason)}`))).toEqual(Array(5).fill(allowed));
          const readonly = errorsOf(events).filter((e) => codeOf(e) === READONLY);
          expect(readonly.length).toBeGreaterThanOrEqual(1);
          for (const error of readonly) expect(replyOf(error)).toContain('READONLY');
          expect(codesOf(events)).not.toContain(STATE_MISMATCH);
          expect(limiter.stats().stateMismatches).toBe(0);
          expect(onError === 'allow' ? limiter.stats().failedOpen : limiter.stats().failedClosed).toBe(5);
        } finally {
          limiter.close();
        }
      });
    }
  }

  // Last in this block: it promotes the replica.
  it('once promoted (REPLICAOF NO ONE), the same limiter is decided by Redis again, exactly', async () => {
    const events: RedisLimiterEvent[] = [];
    const name = unique('promoted');
    const limiter = new RedisLimiter({
      redis: replicaClient,
      name,
      policy: fixedWindow({ limit: 3, windowMs: 60_000 }),
      onError: 'deny',
      onEvent: (e) => events.push(e),
      denyCache: false,
      timeoutMs: TIMEOUT_MS,
      breaker: QUICK_BREAKER,
    });
    try {
      expect(await limiter.consume('k')).toMatchObject({ allowed: false });
      expect(codesOf(events)).toContain(READONLY);
      await replicaClient.call('REPLICAOF', 'NO', 'ONE');
      let probe = 0;
      await until('Redis to decide again', async () => {
        const d = await limiter.consume(`probe${++probe}`);
        return decidedByRedis(d, 3) ? d : undefined;
      });
      const decisions = [];
      for (let i = 0; i < 5; i++) decisions.push((await limiter.consume('after')).allowed);
      expect(decisions).toEqual([true, true, true, false, false]);
      expect(await replicaClient.get(`tollgate:${name}{after}:fw60000`)).toBe('3');
    } finally {
      limiter.close();
    }
  });
});

describe.runIf(hasRedis)('an ACL user without a command tollgate needs: a coded rejection, never onError', () => {
  let server: LocalRedis;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedis();
    admin = client(server);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it('without INCR: every call rejects with UNSUPPORTED naming INCR (onError allow admits nothing); granting INCR makes it work again without a restart', async () => {
    await admin.call('ACL', 'SETUSER', 'noincr', 'on', '>pw', '~*', '+@all', '-incr');
    const user = client(server, { username: 'noincr', password: 'pw' });
    const events: RedisLimiterEvent[] = [];
    const prefix = unique('noincr') + ':';
    const limiter = new RedisLimiter({
      redis: user,
      name: 'acl',
      prefix,
      policy: fixedWindow({ limit: 5, windowMs: 60_000 }),
      onError: 'allow',
      onEvent: (e) => events.push(e),
      denyCache: false,
      timeoutMs: TIMEOUT_MS,
      breaker: QUICK_BREAKER,
    });
    try {
      // The first calls (first contact: plain consumes, one batch), then general ones (INCRBY is
      // granted, still refused: the node lacks INCR), a peek, and more rounds.
      const settled = await Promise.allSettled([limiter.consume('a'), limiter.consume('b'), limiter.consume('a')]);
      settled.push(...(await Promise.allSettled([limiter.consume('a', 2), limiter.consume('c', 3)])));
      settled.push(...(await Promise.allSettled([limiter.peek('a')])));
      for (let i = 0; i < 5; i++) settled.push(...(await Promise.allSettled([limiter.consume('a'), limiter.consume('d')])));
      expect(settled).toHaveLength(16);
      for (const r of settled) {
        expect(r.status).toBe('rejected');
        if (r.status === 'rejected') {
          expect(codeOf(r.reason)).toBe(UNSUPPORTED);
          expect(messageOf(r.reason)).toMatch(/\bINCR\b/i);
        }
      }
      expect(limiter.stats()).toMatchObject({ allowed: 0, failedOpen: 0, failedClosed: 0 });
      expect(codesOf(events)).toContain(UNSUPPORTED);
      expect((await ttls(admin, `${prefix}*`)).filter((k) => k.pttl === -1)).toEqual([]);

      // The operator grants INCR: within the recheck period the same limiter decides on Redis.
      await admin.call('ACL', 'SETUSER', 'noincr', '+incr');
      let probe = 0;
      await until(
        'the limiter to work again',
        async () => {
          const d = await limiter.consume(`probe${++probe}`).catch(() => undefined);
          return d !== undefined && decidedByRedis(d, 5) ? d : undefined;
        },
        20_000,
      );
      const decisions = [];
      for (let i = 0; i < 7; i++) decisions.push((await limiter.consume('after')).allowed);
      expect(decisions).toEqual([true, true, true, true, true, false, false]);
      expect(await admin.get(`${prefix}acl{after}:fw60000`)).toBe('5');
      expect(limiter.stats().failedOpen).toBe(0);
    } finally {
      limiter.close();
      user.disconnect();
    }
  });

  it('without INCR: a sliding-window limiter on that user rejects with UNSUPPORTED too (the node lacks a core command)', async () => {
    await admin.call('ACL', 'SETUSER', 'noincr2', 'on', '>pw', '~*', '+@all', '-incr');
    const user = client(server, { username: 'noincr2', password: 'pw' });
    const limiter = new RedisLimiter({
      redis: user,
      name: unique('slide'),
      policy: slidingWindow({ limit: 5, windowMs: 60_000 }),
      onError: 'allow',
      denyCache: false,
      timeoutMs: TIMEOUT_MS,
      breaker: QUICK_BREAKER,
    });
    try {
      const settled = await Promise.allSettled([limiter.consume('a'), limiter.consume('b', 2)]);
      expect(settled.map((r) => (r.status === 'rejected' ? codeOf(r.reason) : 'decided'))).toEqual([UNSUPPORTED, UNSUPPORTED]);
      expect(limiter.stats()).toMatchObject({ allowed: 0, failedOpen: 0 });
    } finally {
      limiter.close();
      user.disconnect();
    }
  });

  it('without PEXPIRE: consumes, leases and block() reject with UNSUPPORTED naming PEXPIRE, and no tollgate key is left without a TTL', async () => {
    await admin.call('ACL', 'SETUSER', 'nopexpire', 'on', '>pw', '~*', '+@all', '-pexpire');
    const user = client(server, { username: 'nopexpire', password: 'pw' });
    const prefix = unique('nopexpire') + ':';
    const events: RedisLimiterEvent[] = [];
    const common = {
      redis: user,
      prefix,
      policy: fixedWindow({ limit: 50, windowMs: 60_000 }),
      onError: 'allow',
      denyCache: false,
      timeoutMs: TIMEOUT_MS,
      breaker: QUICK_BREAKER,
    } as const;
    const plain = new RedisLimiter({ ...common, name: 'plain', onEvent: (e) => events.push(e) });
    const leased = new RedisLimiter({ ...common, name: 'leased', leases: { hotAfter: 1 } });
    try {
      const settled = [];
      for (let round = 0; round < 3; round++) {
        settled.push(...(await Promise.allSettled([plain.consume('a'), plain.consume('b')])));
        settled.push(...(await Promise.allSettled([plain.consume('a', 2)])));
        settled.push(...(await Promise.allSettled(Array.from({ length: 5 }, () => leased.consume('hot')))));
      }
      settled.push(...(await Promise.allSettled([plain.block('blocked', 30_000)])));
      for (const r of settled) {
        expect(r.status).toBe('rejected');
        if (r.status === 'rejected') {
          expect(codeOf(r.reason)).toBe(UNSUPPORTED);
          expect(messageOf(r.reason)).toMatch(/\bPEXPIRE\b/i);
        }
      }
      expect(plain.stats()).toMatchObject({ allowed: 0, failedOpen: 0 });
      expect(leased.stats()).toMatchObject({ allowed: 0, failedOpen: 0 });
      expect(codesOf(events)).toContain(UNSUPPORTED);
      // Whatever ran before PEXPIRE was refused was undone, or given its TTL: no key lives for ever.
      const keys = await ttls(admin, `${prefix}*`);
      expect(keys.filter((k) => k.pttl === -1)).toEqual([]);
    } finally {
      plain.close();
      leased.close();
      user.disconnect();
    }
  });
  // Past the first-contact probe nothing stops a call before Redis: the scripts' own undo is what
  // keeps a counter (or a block) from living for ever when its PEXPIRE is refused.
  it('PEXPIRE revoked while running (after the probe): the call that meets it goes to onError with NO_PERMISSION and its increment (or block field) undone; the next calls reject with UNSUPPORTED; no key without a TTL', async () => {
    await admin.call('ACL', 'SETUSER', 'revoked', 'on', '>pw', '~*', '+@all');
    const user = client(server, { username: 'revoked', password: 'pw' });
    const prefix = unique('revoked') + ':';
    const events: RedisLimiterEvent[] = [];
    // No breaker: every call below reaches Redis.
    const common = {
      redis: user,
      prefix,
      policy: fixedWindow({ limit: 5, windowMs: 60_000 }),
      onError: 'deny',
      denyCache: false,
      timeoutMs: TIMEOUT_MS,
      breaker: false,
      onEvent: (e: RedisLimiterEvent) => events.push(e),
    } as const;
    // One limiter per path, each probed (a call made) before PEXPIRE goes: a limiter probes once.
    const batch = new RedisLimiter({ ...common, name: 'w' });
    const general = new RedisLimiter({ ...common, name: 'g' });
    const blocking = new RedisLimiter({ ...common, name: 'b' });
    const leased = new RedisLimiter({ ...common, name: 'l', leases: { hotAfter: 1 } });
    const all = [batch, general, blocking, leased];
    try {
      expect(await batch.consume('old')).toMatchObject({ allowed: true, remaining: 4 });
      for (const limiter of [general, blocking]) expect((await limiter.consume('warm')).allowed).toBe(true);
      expect((await leased.consume('warm')).allowed).toBe(true);
      await admin.call('ACL', 'SETUSER', 'revoked', '-pexpire');

      // A window that has its TTL needs no PEXPIRE.
      expect(await batch.consume('old')).toMatchObject({ allowed: true, remaining: 3 });
      // New windows: plain (one batch of two), general (cost 2), lease: refused, decided by onError.
      const decided = await Promise.all([batch.consume('a'), batch.consume('b')]);
      decided.push(await general.consume('c', 2));
      decided.push(await leased.consume('d'));
      expect(decided.map((d) => d.allowed)).toEqual([false, false, false, false]);
      expect(batch.stats().failedClosed).toBe(2);
      expect(general.stats().failedClosed).toBe(1);
      expect(leased.stats().failedClosed).toBe(1);
      const denied = errorsOf(events).filter((e) => codeOf(e) === NO_PERMISSION);
      expect(denied.length).toBeGreaterThanOrEqual(3);
      for (const error of denied) expect(replyOf(error)).toMatch(/NOPERM|can't run this command/);
      expect(codesOf(events)).not.toContain(STATE_MISMATCH);
      // Their increments undone.
      for (const key of [`${prefix}w{a}:fw60000`, `${prefix}w{b}:fw60000`, `${prefix}g{c}:fw60000`, `${prefix}l{d}:fw60000`]) expect(await admin.exists(key)).toBe(0);
      expect(await admin.get(`${prefix}w{old}:fw60000`)).toBe('2');

      // A block on a limiter with no blocks yet: its marker would be new, and cannot be given its TTL.
      await expect(blocking.block('blocked', 30_000)).rejects.toMatchObject({ code: NO_PERMISSION });
      expect(await admin.exists(`${prefix}b:blocked`)).toBe(0);

      // Each refusal made its limiter look again: from now on, a coded rejection naming PEXPIRE,
      // never another decision by onError.
      for (const limiter of all) {
        await expect(limiter.consume('later')).rejects.toMatchObject({ code: 'TOLLGATE_REDIS_UNSUPPORTED', message: expect.stringMatching(/PEXPIRE/) });
      }
      expect(batch.stats().failedClosed).toBe(2);

      expect((await ttls(admin, `${prefix}*`)).filter((k) => k.pttl === -1)).toEqual([]);
    } finally {
      for (const limiter of all) limiter.close();
      user.disconnect();
    }
  });

  it("a refusal the probe cannot name (keys outside the user's patterns): one call decided by onError, then UNSUPPORTED in the server's words", async () => {
    const prefix = unique('keys') + ':';
    // The user may touch the limiter's blocks marker (what the probe checks) but not its counters.
    await admin.call('ACL', 'SETUSER', 'narrow', 'on', '>pw', `~${prefix}w:blocked`, '+@all');
    const user = client(server, { username: 'narrow', password: 'pw' });
    const events: RedisLimiterEvent[] = [];
    const limiter = new RedisLimiter({
      redis: user,
      name: 'w',
      prefix,
      policy: fixedWindow({ limit: 5, windowMs: 60_000 }),
      onError: 'allow',
      denyCache: false,
      timeoutMs: TIMEOUT_MS,
      breaker: false,
      onEvent: (e) => events.push(e),
    });
    try {
      expect((await limiter.consume('a')).allowed).toBe(true);
      expect(limiter.stats().failedOpen).toBe(1);
      expect(codesOf(events)).toContain(NO_PERMISSION);
      for (let i = 0; i < 3; i++) {
        await expect(limiter.consume('a')).rejects.toMatchObject({ code: UNSUPPORTED, message: expect.stringMatching(/access|keys/) });
      }
      expect(limiter.stats().failedOpen).toBe(1);
    } finally {
      limiter.close();
      user.disconnect();
    }
  });

  it('without EVALSHA (the probe itself runs as EVAL): every call rejects with UNSUPPORTED naming EVALSHA, none decided by onError', async () => {
    await admin.call('ACL', 'SETUSER', 'nosha', 'on', '>pw', '~*', '+@all', '-evalsha');
    const user = client(server, { username: 'nosha', password: 'pw' });
    const limiter = new RedisLimiter({
      redis: user,
      name: 'w',
      prefix: unique('nosha') + ':',
      policy: fixedWindow({ limit: 5, windowMs: 60_000 }),
      onError: 'allow',
      denyCache: false,
      timeoutMs: TIMEOUT_MS,
    });
    try {
      for (let i = 0; i < 3; i++) await expect(limiter.consume('k')).rejects.toMatchObject({ code: UNSUPPORTED, message: expect.stringMatching(/EVALSHA/) });
      expect(limiter.stats()).toMatchObject({ failedOpen: 0, allowed: 0 });
    } finally {
      limiter.close();
      user.disconnect();
    }
  });

  it('INCR revoked while the breaker is open: its trial meets the refusal, the breaker closes (the node answered), calls reject with UNSUPPORTED, and work again once granted', async () => {
    await admin.call('ACL', 'SETUSER', 'flip', 'on', '>pw', '~*', '+@all');
    const user = client(server, { username: 'flip', password: 'pw' });
    const pauser = client(server);
    const prefix = unique('flip') + ':';
    const limiter = new RedisLimiter({
      redis: user,
      name: 'w',
      prefix,
      policy: fixedWindow({ limit: 1000, windowMs: 60_000 }),
      onError: 'allow',
      denyCache: false,
      timeoutMs: 300,
      breaker: QUICK_BREAKER,
    });
    try {
      await until('Redis to decide a first call', async () => ((await limiter.consume('k')) && (await admin.exists(`${prefix}w{k}:fw60000`)) === 1 ? true : undefined));
      await admin.call('ACL', 'SETUSER', 'flip', '-incr');
      // A call held past its timeout by a pause opens the breaker (a timeout counts).
      await pauser.client('PAUSE', 800, 'ALL');
      await limiter.consume('k');
      expect(limiter.stats().breakerOpened).toBeGreaterThanOrEqual(1);
      // After the pause a trial goes out, meets the refusal, and the node is probed again: a coded rejection, not onError for ever.
      const rejected = await until('a call rejected with UNSUPPORTED', async () => {
        try {
          await limiter.consume('k');
          await sleep(5);
          return undefined;
        } catch (error) {
          expect(codeOf(error)).toBe(UNSUPPORTED);
          return error;
        }
      });
      expect(messageOf(rejected)).toMatch(/INCR/);
      await admin.call('ACL', 'SETUSER', 'flip', '+incr');
      // Redis itself counts again (onError's decisions count nowhere).
      const counted = async () => Number(await admin.get(`${prefix}w{k}:fw60000`));
      const before = await counted();
      await until('Redis to decide again', async () => {
        await limiter.consume('k').catch(() => undefined);
        return (await counted()) > before ? true : undefined;
      });
    } finally {
      limiter.close();
      user.disconnect();
      pauser.disconnect();
    }
  });

  it('PEXPIRETIME revoked while leases run: leases switch off (one warning) and Redis decides every call, exactly; nothing rejects', async () => {
    await admin.call('ACL', 'SETUSER', 'lessee', 'on', '>pw', '~*', '+@all');
    const user = client(server, { username: 'lessee', password: 'pw' });
    const prefix = unique('lessee') + ':';
    const warnings = listenForWarnings();
    const limiter = new RedisLimiter({
      redis: user,
      name: 'w',
      prefix,
      policy: fixedWindow({ limit: 50, windowMs: 60_000 }),
      onError: 'allow',
      denyCache: false,
      timeoutMs: TIMEOUT_MS,
      breaker: false,
      leases: { hotAfter: 1 },
    });
    try {
      for (let i = 0; i < 5; i++) expect((await limiter.consume('k')).allowed).toBe(true);
      expect(limiter.stats().leaseCalls).toBeGreaterThan(0);
      await admin.call('ACL', 'SETUSER', 'lessee', '-pexpiretime');
      const decided = [];
      for (let i = 0; i < 100; i++) decided.push(await limiter.consume('k'));
      // The one lease call that met the refusal was decided by onError; every other by Redis (or a lease held before).
      expect(limiter.stats().failedOpen).toBeLessThanOrEqual(1);
      expect(await user.get(`${prefix}w{k}:fw60000`)).toBe('50');
      expect(decided.filter((d) => d.allowed).length + 5).toBeLessThanOrEqual(50 + limiter.stats().failedOpen);
      expect(warnings.of(LEASES_OFF)).toHaveLength(1);
    } finally {
      warnings.stop();
      limiter.close();
      user.disconnect();
    }
  });
});

describe.runIf(hasRedis)('a counter found without an expiry is repaired on its next consume', () => {
  let server: LocalRedis;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedis();
    admin = client(server);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it('below its limit: allowed, with resetMs within the window and the key given a TTL', async () => {
    const prefix = unique('repair') + ':';
    const key = `${prefix}w{k}:fw300`;
    await admin.set(key, '5');
    const limiter = new RedisLimiter({ redis: admin, name: 'w', prefix, policy: fixedWindow({ limit: 10, windowMs: 300 }), denyCache: false, timeoutMs: TIMEOUT_MS });
    try {
      const d = await limiter.consume('k');
      expect(d).toMatchObject({ allowed: true, remaining: 4, retryAfterMs: 0 });
      expect(d.resetMs).toBeGreaterThan(0);
      expect(d.resetMs).toBeLessThanOrEqual(300);
      const pttl = await admin.pttl(key);
      expect(pttl === -2 || (pttl > 0 && pttl <= 300)).toBe(true);
    } finally {
      limiter.close();
    }
  });

  it('at its limit: denied with a finite retry (not Infinity, not resetMs -1), and allowed again once the window passes', async () => {
    const prefix = unique('stuck') + ':';
    const key = `${prefix}w{k}:fw300`;
    await admin.set(key, '5');
    const limiter = new RedisLimiter({ redis: admin, name: 'w', prefix, policy: fixedWindow({ limit: 5, windowMs: 300 }), denyCache: false, timeoutMs: TIMEOUT_MS });
    try {
      const d = await limiter.consume('k');
      expect(d).toMatchObject({ allowed: false, remaining: 0 });
      expect(Number.isFinite(d.retryAfterMs)).toBe(true);
      expect(d.retryAfterMs).toBeGreaterThan(0);
      expect(d.retryAfterMs).toBeLessThanOrEqual(300);
      expect(d.resetMs).toBeGreaterThan(0);
      expect(d.resetMs).toBeLessThanOrEqual(300);
      const pttl = await admin.pttl(key);
      expect(pttl === -2 || (pttl > 0 && pttl <= 300)).toBe(true);
      // Once Redis has expired it, the key counts from 0 again.
      const again = await until('the key to be allowed again', async () => {
        const next = await limiter.consume('k');
        return next.allowed ? next : undefined;
      });
      expect(again.remaining).toBe(4);
    } finally {
      limiter.close();
    }
  });

  it('a general batch (cost 2) repairs it too', async () => {
    const prefix = unique('general') + ':';
    const key = `${prefix}w{k}:fw60000`;
    await admin.set(key, '5');
    const limiter = new RedisLimiter({ redis: admin, name: 'w', prefix, policy: fixedWindow({ limit: 10, windowMs: 60_000 }), denyCache: false, timeoutMs: TIMEOUT_MS });
    try {
      const d = await limiter.consume('k', 2);
      expect(d).toMatchObject({ allowed: true, remaining: 3 });
      expect(d.resetMs).toBeGreaterThan(0);
      expect(d.resetMs).toBeLessThanOrEqual(60_000);
      expect(await admin.pttl(key)).toBeGreaterThan(0);
      expect(await admin.get(key)).toBe('7');
    } finally {
      limiter.close();
    }
  });

  it('a lease taken on it repairs it too (the lease script): resetMs within the window, the key given a TTL', async () => {
    const prefix = unique('leased') + ':';
    const key = `${prefix}w{k}:fw60000`;
    await admin.set(key, '5');
    // hotAfter 1: the first consume already takes a lease, so the lease script meets the key first.
    const limiter = new RedisLimiter({
      redis: admin,
      name: 'w',
      prefix,
      policy: fixedWindow({ limit: 100, windowMs: 60_000 }),
      leases: { hotAfter: 1 },
      denyCache: false,
      timeoutMs: TIMEOUT_MS,
    });
    try {
      const d = await limiter.consume('k');
      expect(limiter.stats().leaseCalls).toBe(1);
      expect(d.allowed).toBe(true);
      expect(d.resetMs).toBeGreaterThan(0);
      expect(d.resetMs).toBeLessThanOrEqual(60_000);
      expect(await admin.pttl(key)).toBeGreaterThan(0);
      const more = await Promise.all(Array.from({ length: 20 }, () => limiter.consume('k')));
      for (const m of more) {
        expect(m.allowed).toBe(true);
        expect(m.resetMs).toBeGreaterThan(0);
        expect(m.resetMs).toBeLessThanOrEqual(60_000);
      }
      expect(await admin.pttl(key)).toBeGreaterThan(0);
    } finally {
      limiter.close();
    }
  });
});

describe.runIf(hasRedis)('PEXPIRETIME renamed away (as on Redis 6.x): leases switch off, everything else works', () => {
  let server: LocalRedis;
  let admin: Redis;
  beforeAll(async () => {
    // An empty new name removes the command.
    server = await startRedis(['--rename-command', 'PEXPIRETIME', '']);
    admin = client(server);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it('the server really has no PEXPIRETIME', async () => {
    await expect(admin.call('PEXPIRETIME', 'x')).rejects.toThrow(/unknown command/i);
  });

  it('without leases: exact counting, block and reset, no error and no leases warning', async () => {
    const warnings = listenForWarnings();
    const events: RedisLimiterEvent[] = [];
    const name = unique('plain');
    const limiter = new RedisLimiter({
      redis: admin,
      name,
      policy: fixedWindow({ limit: 50, windowMs: 60_000 }),
      onError: 'allow',
      onEvent: (e) => events.push(e),
      timeoutMs: TIMEOUT_MS,
    });
    try {
      const decisions = await Promise.all(Array.from({ length: 200 }, () => limiter.consume('hot')));
      expect(decisions.filter((d) => d.allowed)).toHaveLength(50);
      expect(await admin.get(`tollgate:${name}{hot}:fw60000`)).toBe('50');
      expect(await limiter.block('other', 30_000)).toBe(true);
      expect((await limiter.consume('other')).allowed).toBe(false);
      expect(await limiter.reset('other')).toBe(true);
      expect((await limiter.consume('other')).allowed).toBe(true);
      expect(events).toEqual([]);
      expect(limiter.stats()).toMatchObject({ failedOpen: 0, errors: 0, stateMismatches: 0 });
      await sleep(50);
      expect(warnings.of(LEASES_OFF)).toEqual([]);
    } finally {
      limiter.close();
      warnings.stop();
    }
  });

  it('with leases: three limiters sharing a hot key admit exactly the limit (50 of 200), with a LEASES_OFF warning', async () => {
    const warnings = listenForWarnings();
    const name = unique('leases');
    const limiters = Array.from(
      { length: 3 },
      () => new RedisLimiter({ redis: admin, name, policy: fixedWindow({ limit: 50, windowMs: 60_000 }), leases: true, onError: 'allow', denyCache: false, timeoutMs: TIMEOUT_MS }),
    );
    try {
      // Waves, so the key is hot in each limiter (leases would be taken where Redis allows them).
      let allowed = 0;
      for (let wave = 0; wave < 20; wave++) {
        const decisions = await Promise.all(Array.from({ length: 10 }, (_, i) => (limiters[i % 3] as RedisLimiter).consume('hot')));
        allowed += decisions.filter((d) => d.allowed).length;
      }
      expect(allowed).toBe(50);
      expect(await admin.get(`tollgate:${name}{hot}:fw60000`)).toBe('50');
      for (const limiter of limiters) expect(limiter.stats()).toMatchObject({ failedOpen: 0, stateMismatches: 0 });
      const off = await until('the LEASES_OFF warning', () => (warnings.of(LEASES_OFF).length > 0 ? warnings.of(LEASES_OFF) : undefined), 5000);
      // One per limiter at most, however many calls.
      expect(off.length).toBeLessThanOrEqual(3);
      expect(off[0]?.message).toMatch(/PEXPIRETIME/i);
      // The limiters keep working, and warn no more.
      for (let i = 0; i < 20; i++) await (limiters[i % 3] as RedisLimiter).consume(`cold${i}`);
      await sleep(50);
      expect(warnings.of(LEASES_OFF).length).toBe(off.length);
    } finally {
      for (const limiter of limiters) limiter.close();
      warnings.stop();
    }
  });
});

describe.runIf(hasRedis)('an eviction policy that can drop counters gets one coded warning', () => {
  // One server per setting: each limiter meets its node for the first time.
  async function withServer(config: readonly (readonly [string, string])[], body: (redis: Redis) => Promise<void>) {
    const server = await startRedis();
    const redis = client(server);
    try {
      for (const [name, value] of config) await redis.config('SET', name, value);
      await body(redis);
    } finally {
      redis.disconnect();
      await server.stop();
    }
  }

  /** Makes `calls` consumes (in a few rounds) on a new limiter; returns it for more. */
  async function use(redis: Redis, calls: number) {
    const limiter = new RedisLimiter({ redis, name: unique('evict'), policy: fixedWindow({ limit: 1000, windowMs: 60_000 }), timeoutMs: TIMEOUT_MS });
    for (let i = 0; i < calls; i += 10) {
      const decisions = await Promise.all(Array.from({ length: 10 }, (_, j) => limiter.consume(`k${i + j}`)));
      expect(decisions.every((d) => d.allowed && d.remaining === 999)).toBe(true);
    }
    return limiter;
  }

  const EVICTING = [
    ['maxmemory', '100mb'],
    ['maxmemory-policy', 'allkeys-lru'],
  ] as const;

  // A setting and the warnings it must get. calls: one new limiter per entry, each making that
  // many consumes, in order. warning: the policy the one EVICTION warning names (awaited after the
  // first limiter; no second may follow, however many calls and limiters), or none at all.
  it.each([
    ['maxmemory 0 (no limit): no warning', [['maxmemory-policy', 'allkeys-lru']], [50], undefined],
    [
      'maxmemory 100mb with noeviction: no warning',
      [
        ['maxmemory', '100mb'],
        ['maxmemory-policy', 'noeviction'],
      ],
      [50],
      undefined,
    ],
    ['maxmemory 100mb with allkeys-lru: one warning naming the policy, however many calls and limiters', EVICTING, [10, 100, 50], 'allkeys-lru'],
    ['another server with an evicting policy (allkeys-lru too) gets its own warning: one per node', EVICTING, [10], 'allkeys-lru'],
  ] as const)('%s', async (_label, config, calls, warning) => {
    const warnings = listenForWarnings();
    try {
      await withServer(config, async (redis) => {
        const limiters: RedisLimiter[] = [];
        try {
          for (const n of calls) {
            limiters.push(await use(redis, n));
            if (warning !== undefined && limiters.length === 1) {
              const seen = await until('the EVICTION warning', () => (warnings.of(EVICTION).length > 0 ? warnings.of(EVICTION) : undefined), 5000);
              expect(seen[0]?.message).toContain(warning);
            }
          }
          await sleep(100);
          expect(warnings.of(EVICTION)).toHaveLength(warning === undefined ? 0 : 1);
        } finally {
          for (const limiter of limiters) limiter.close();
        }
      });
    } finally {
      warnings.stop();
    }
  });
});

describe.runIf(hasRedis)('foreign state under a fixed-window key is still a state mismatch', () => {
  let server: LocalRedis;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedis();
    admin = client(server);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it.each([
    ['a hash', (redis: Redis, key: string) => redis.hset(key, 'f', '1').then(() => undefined), 'hash'],
    ['a non-integer string', (redis: Redis, key: string) => redis.set(key, 'abc').then(() => undefined), 'abc'],
    ['a decimal string', (redis: Redis, key: string) => redis.set(key, '1.5').then(() => undefined), '1.5'],
    // An integer no tollgate limit reaches, at which INCR fails ('would overflow'): another program's.
    ['a counter at the 64-bit maximum', (redis: Redis, key: string) => redis.set(key, '9223372036854775807').then(() => undefined), '9223372036854775807'],
  ])('%s: plain, general and lease consumes reject with STATE_MISMATCH (onError allow admits nothing), and the value is left alone', async (_label, plant, value) => {
    const prefix = unique('foreign') + ':';
    const events: RedisLimiterEvent[] = [];
    const common = { redis: admin, prefix, name: 'w', policy: fixedWindow({ limit: 5, windowMs: 60_000 }), onError: 'allow', denyCache: false, timeoutMs: TIMEOUT_MS } as const;
    const limiter = new RedisLimiter({ ...common, onEvent: (e) => events.push(e) });
    const leased = new RedisLimiter({ ...common, leases: { hotAfter: 1 } });
    const key = `${prefix}w{k}:fw60000`;
    await plant(admin, key);
    try {
      const settled = await Promise.allSettled([limiter.consume('k'), limiter.consume('fine')]);
      settled.push(...(await Promise.allSettled([limiter.consume('k', 2)])));
      settled.push(...(await Promise.allSettled([leased.consume('k')])));
      expect(settled.map((r) => (r.status === 'rejected' ? codeOf(r.reason) : r.value.allowed))).toEqual([STATE_MISMATCH, true, STATE_MISMATCH, STATE_MISMATCH]);
      expect(limiter.stats()).toMatchObject({ stateMismatches: 2, failedOpen: 0, breakerOpened: 0 });
      expect(leased.stats()).toMatchObject({ stateMismatches: 1, failedOpen: 0, allowed: 0 });
      expect(codesOf(events).filter((c) => c === STATE_MISMATCH)).toHaveLength(2);
      if (value === 'hash') expect(await admin.hgetall(key)).toEqual({ f: '1' });
      else expect(await admin.get(key)).toBe(value);
      expect(await admin.pttl(key)).toBe(-1);
    } finally {
      limiter.close();
      leased.close();
    }
  });
});
