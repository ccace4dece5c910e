// Leases against a distant Redis: replies held back by a delay proxy, counts
// taken by Redis' own clock. A lease must end with its Redis window whatever the reply latency,
// every call (a wait for a lease included) settles within timeoutMs, and another process'
// block() or reset() reaches a lease holder within leases.maxAgeMs.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedWindow, RedisLimiter, type Decision } from '../src/index.js';
import { startDelayProxy, type DelayProxy } from '../scripts/delay-proxy.mjs';
import { hotKeyBehindSlowReplies, leasesBehindSlowReplies, type LeasesBehindSlowReplies } from '../scripts/redis-scenarios.mjs';
import { hasRedis, startRedis, type LocalRedis } from './helpers/redis.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let prefixCounter = 0;
const prefix = () => `lease${++prefixCounter}:`;

const tollgate = { RedisLimiter, fixedWindow };

describe.runIf(hasRedis)('RedisLimiter leases behind a distant Redis', () => {
  let server: LocalRedis;
  let proxy: DelayProxy;
  const clients: Redis[] = [];
  const client = (port: number) => {
    const redis = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    clients.push(redis);
    return redis;
  };
  beforeAll(async () => {
    server = await startRedis();
    proxy = await startDelayProxy({ port: server.port });
  });
  afterAll(async () => {
    for (const redis of clients) redis.disconnect();
    await proxy?.close();
    await server?.stop();
  });

  // Item 5: processes on one key, one of them with leases behind replies 150 ms late (the traffic:
  // scripts/redis-scenarios.mjs). The windows are Redis' (a key's life), so the audit polls the
  // key on a direct connection and places each admission by Redis' clock
  // (scripts/window-audit.mjs: an admission is counted in a window only when the whole span from
  // its call to its settling lies inside it).
  describe('replies 150 ms late: a lease never outlives its Redis window', () => {
    let run: Promise<LeasesBehindSlowReplies> | undefined;
    // One run of traffic for both tests below (6 s): memoized, started by whichever runs first.
    const scenario = () => (run ??= leasesBehindSlowReplies(tollgate, { proxy, serverPort: server.port, connect: client, prefix: prefix() }));

    it('no Redis window admits more than its limit (all processes together), and nothing is admitted between windows', async () => {
      const { limit, report, leased, deniedByRedis } = await scenario();
      const summary = report.windows.map((w) => `${w.admitted} ${JSON.stringify(w.byWho)}`).join(', ');
      // The case happened: leases were spent, and windows filled (Redis denied the direct process).
      expect(leased).toBeGreaterThan(0);
      expect(deniedByRedis).toBeGreaterThan(0);
      expect(report.windows.length).toBeGreaterThanOrEqual(4);
      expect(report.maxAdmitted, `admitted per window: ${summary}; ${report.ambiguous} too near an edge to place`).toBeLessThanOrEqual(limit);
      expect(report.outside).toBe(0);
    });

    it("a lease decision's resetMs never runs past the end of its Redis window", async () => {
      const { report } = await scenario();
      expect(report.resetChecked).toBeGreaterThanOrEqual(20);
      expect(report.resetOver, `${report.resetOver} of ${report.resetChecked} lease decisions state an end up to ${report.resetOverMaxMs.toFixed(0)} ms after their window's`).toBe(0);
    });
  });

  // Item 6: one hot key at ~4,500 calls/s behind replies 10 ms late. Calls that arrive while the
  // key's lease call is out wait for it; that wait is part of the call and bounded by timeoutMs.
  it('a hot key behind a 10 ms reply path: every call settles within timeoutMs (+ timer slack), none left pending', async () => {
    const timeoutMs = 250;
    // A guarantee, not a timing figure: the slack covers timers and a loaded machine, not a queue.
    const slackMs = 250;
    const { made, waits, rejected, pending, stats } = await hotKeyBehindSlowReplies(tollgate, {
      proxy,
      redis: client(proxy.port),
      prefix: prefix(),
      leases: true,
      perSecond: 4500,
      ms: 1500,
      timeoutMs,
    });
    const late = waits.filter((took) => took > timeoutMs + slackMs).length;
    const slowestMs = waits.reduce((most, took) => Math.max(most, took), 0);
    expect(made).toBeGreaterThan(4000);
    expect(stats.leaseCalls).toBeGreaterThan(0);
    expect(pending, `${pending} of ${made} calls pending 1 s after the traffic stopped`).toBe(0);
    expect(rejected).toBe(0);
    expect(late, `${late} of ${made} calls settled more than ${timeoutMs + slackMs} ms after they were made (slowest ${slowestMs.toFixed(0)} ms)`).toBe(0);
  });
});

// Item 7: another process' block() or reset() reaches a lease holder within leases.maxAgeMs: its
// lease is let go by then (unspent units handed back), so its next call asks Redis.
describe.runIf(hasRedis)('RedisLimiter leases and another process’ block() and reset()', () => {
  let server: LocalRedis;
  let redisA: Redis;
  let redisB: Redis;
  beforeAll(async () => {
    server = await startRedis();
    redisA = new Redis({ host: server.host, port: server.port });
    redisB = new Redis({ host: server.host, port: server.port });
  });
  afterAll(async () => {
    redisA?.disconnect();
    redisB?.disconnect();
    await server?.stop();
  });

  const MAX_AGE_MS = 200;
  /** Calls made this long after the other process' call settled must not be served by a lease older than it. */
  const BOUNDARY_MS = MAX_AGE_MS + 5;

  /**
   * A's calls, one at a time, every few ms, for `ms` after `since`: each with when it was made
   * (relative to `since`) and its decision.
   */
  async function poll(limiter: RedisLimiter, since: number, ms: number): Promise<{ at: number; d: Decision }[]> {
    const calls: { at: number; d: Decision }[] = [];
    while (performance.now() - since < ms) {
      const at = performance.now() - since;
      calls.push({ at, d: await limiter.consume('k') });
      await sleep(5);
    }
    return calls;
  }

  it("B's block(): A admits at most the units it held, none once its lease is older than maxAgeMs, then denies", async () => {
    const p = prefix();
    const policy = fixedWindow({ limit: 100_000, windowMs: 600_000 });
    const a = new RedisLimiter({ name: 'x', prefix: p, redis: redisA, policy, leases: { hotAfter: 1, maxAgeMs: MAX_AGE_MS } });
    const b = new RedisLimiter({ name: 'x', prefix: p, redis: redisB, policy });
    // One consume of 300 on a key this hot leases twice that: 300 spent, 300 held here.
    expect((await a.consume('k', 300)).allowed).toBe(true);
    const held = Number(await redisB.get(`${p}x{k}:fw600000`)) - 300;
    expect(held).toBeGreaterThanOrEqual(100);
    await b.block('k', 3_600_000);
    const blockedAt = performance.now();
    // At one call per ~5 ms the units held would last well past maxAgeMs.
    const calls = await poll(a, blockedAt, BOUNDARY_MS + 500);
    const admitted = calls.filter((c) => c.d.allowed);
    const lateAdmitted = admitted.filter((c) => c.at > BOUNDARY_MS);
    expect(admitted.length).toBeLessThanOrEqual(held);
    expect(lateAdmitted.length, `${lateAdmitted.length} of A's calls made more than ${BOUNDARY_MS} ms after the block were admitted`).toBe(0);
    // Denied as blocked: for the hour, not until a window's end.
    expect(calls.at(-1)?.d).toMatchObject({ allowed: false, remaining: 0 });
    expect(calls.at(-1)?.d.retryAfterMs).toBeGreaterThan(3_000_000);
    a.close();
    b.close();
  });

  it("B's reset(): once A's lease is older than maxAgeMs, what A admits is counted in the reset window", async () => {
    const p = prefix();
    const policy = fixedWindow({ limit: 1000, windowMs: 600_000 });
    const windowKey = `${p}x{k}:fw600000`;
    const a = new RedisLimiter({ name: 'x', prefix: p, redis: redisA, policy, leases: { hotAfter: 1, share: 1, maxAgeMs: MAX_AGE_MS } });
    const b = new RedisLimiter({ name: 'x', prefix: p, redis: redisB, policy, denyCache: false });
    expect((await a.consume('k', 300)).allowed).toBe(true);
    expect(Number(await redisB.get(windowKey))).toBe(600);
    // The window is full: all that is left of it is A's lease.
    expect((await b.consume('k', 400)).allowed).toBe(true);
    expect((await b.consume('k')).allowed).toBe(false);
    expect(await b.reset('k')).toBe(true);
    const resetAt = performance.now();
    const calls = await poll(a, resetAt, BOUNDARY_MS + 500);
    const lateAdmitted = calls.filter((c) => c.at > BOUNDARY_MS && c.d.allowed).length;
    // A closes: what its lease still holds goes back (to the window it came from; the give-back
    // is sent on redisA, so a PING behind it answers after it ran). The new window then counts
    // exactly what A admitted from it, which includes every call past the boundary.
    a.close();
    await redisA.ping();
    const counted = Number(await redisB.get(windowKey));
    expect(lateAdmitted).toBeGreaterThan(0);
    expect(counted, `A admitted ${lateAdmitted} calls made after its lease aged out; the reset window counts ${counted}`).toBeGreaterThanOrEqual(lateAdmitted);
    // And the new window's limit holds for everyone: B gets the rest of it, no more.
    const rest = await Promise.all(Array.from({ length: 1100 }, () => b.consume('k')));
    expect(rest.filter((d) => d.allowed).length).toBe(1000 - counted);
    b.close();
  });
});
