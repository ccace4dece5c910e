// Redis as operated (issue 31), measured in process: (1) a live resharding: one slot group of a
// limiter, populated, moved to another master with MIGRATE (10 keys a call, as redis-cli does)
// under traffic over every group: the share of decisions that went to onError against the
// migrating group's share of the traffic, breaker openings, how long the move took; (2) leases
// behind replies 150 ms late: the most any Redis window admitted (by Redis' clock, see
// scripts/window-audit.mjs), leases on and off; (3) one hot key at ~4,600 calls/s behind replies
// 10 ms late: each call's wait (p50, p99, max) and the calls settled past timeoutMs, leases on
// and off. Skipped, saying why, without redis-server.
//   node bench/suites/redis-operations.mjs [populatedKeys]
import { Cluster, Redis } from 'ioredis';
import { Limiter, RedisLimiter, fixedWindow } from '../../dist/index.js';
import { keySlot } from '../../dist/redis/key-slot.js';
import { groupedKeyBase } from '../../dist/redis/redis-keys.js';
import { startDelayProxy } from '../../scripts/delay-proxy.mjs';
import { redisAvailable, startCluster, startRedis } from '../../scripts/local-redis.mjs';
import { migrateSlot, ownerOf } from '../../scripts/migrate-slot.mjs';
import { startWindowAudit } from '../../scripts/window-audit.mjs';
import { progress, report } from '../common.mjs';

const POPULATED = Number(process.argv[2] ?? 60_000);
const TIMEOUT_MS = 250;

const probe = redisAvailable();
if (!probe.available) {
  progress(`SKIPPED: ${probe.reason}`);
  report('redis-operations', { skipped: probe.reason });
  process.exit(0);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

/** Calls fired on schedule (`perSecond` for `ms`), whether earlier ones settled or not, as independent clients make them. */
async function offer(perSecond, ms, fire, on = () => true) {
  const started = performance.now();
  let due = 0;
  for (let elapsed = 0; elapsed < ms; elapsed = performance.now() - started) {
    const target = Math.floor((perSecond * elapsed) / 1000);
    if (on()) for (; due < target; due++) fire();
    else due = target;
    await sleep(2);
  }
}

/** (1) A populated group slot moved to another master under traffic over all 16 groups. */
async function migration() {
  const NAME = 'reshard';
  const PREFIX = 'tollgate:';
  const slotOf = (key) => keySlot(groupedKeyBase(PREFIX, NAME, key, 16));
  const cluster = await startCluster();
  const client = new Cluster([...cluster.nodes]);
  client.on('error', () => undefined);
  if (client.status !== 'ready') await new Promise((r) => client.once('ready', r));
  const policy = fixedWindow({ limit: 1e9, windowMs: 600_000 });
  const events = { opened: 0, codes: {} };
  const limiter = new RedisLimiter({
    redis: client,
    name: NAME,
    prefix: PREFIX,
    policy,
    timeoutMs: TIMEOUT_MS,
    onError: new Limiter({ policy, engine: 'js' }),
    onEvent: (e) => {
      if (e.type === 'breaker' && e.state === 'open') events.opened++;
      if (e.type === 'error') events.codes[e.error.code] = (events.codes[e.error.code] ?? 0) + 1;
    },
  });
  const trafficKeys = Array.from({ length: 16 * 64 }, (_, i) => `user:${i}`);
  const slot = slotOf(trafficKeys[0]);
  const inGroup = new Set(trafficKeys.filter((k) => slotOf(k) === slot));
  const populated = [];
  for (let i = 0; populated.length < POPULATED; i++) if (slotOf(`pop:${i}`) === slot) populated.push(`pop:${i}`);
  for (let i = 0; i < populated.length; i += 2000) await Promise.all(populated.slice(i, i + 2000).map((k) => limiter.consume(k)));
  const from = await ownerOf(client.nodes('master')[0], slot);
  const to = cluster.nodes.find((n) => n.port !== from).port;

  const before = limiter.stats();
  let stop = false;
  let decisions = 0;
  let groupDecisions = 0;
  let next = 0;
  const lanes = Array.from({ length: 16 }, async () => {
    while (!stop) {
      const key = trafficKeys[next++ % trafficKeys.length];
      await limiter.consume(key);
      decisions++;
      if (inGroup.has(key)) groupDecisions++;
    }
  });
  await sleep(300);
  const moved = await migrateSlot(cluster.nodes, slot, to);
  await sleep(500);
  stop = true;
  await Promise.all(lanes);
  const s = limiter.stats();
  limiter.close();
  client.disconnect();
  await cluster.stop();
  const figures = {
    keysMoved: moved.moved,
    migrateCalls: moved.calls,
    migrationMs: moved.ms,
    decisions,
    groupShare: groupDecisions / decisions,
    fallbackShare: (s.fallbackDecisions - before.fallbackDecisions) / decisions,
    breakerOpened: s.breakerOpened - before.breakerOpened,
    timeouts: s.timeouts - before.timeouts,
    errorCodes: events.codes,
  };
  progress(
    `migration of ${figures.keysMoved.toLocaleString('en')} keys (${figures.migrateCalls} MIGRATE calls) in ${figures.migrationMs.toFixed(0)} ms: ` +
      `${(100 * figures.fallbackShare).toFixed(2)}% of ${decisions.toLocaleString('en')} decisions to onError, the group ${(100 * figures.groupShare).toFixed(2)}% of the traffic; breaker opened ${figures.breakerOpened} times`,
  );
  return figures;
}

/**
 * (2) The scenario of test/redis-leases.test.ts: processes behind replies 150 ms late (with leases
 * or without) and one direct, on one key (1,000 per 1,000 ms), the direct one filling every other
 * window; the units admitted per Redis window.
 */
async function leasesBehindSlowReplies(server, proxy, leasesOn) {
  proxy.setDelay({ toClient: 150, toServer: 0 });
  const LIMIT = 1000;
  const WINDOW_MS = 1000;
  const prefix = `ops-window-${leasesOn ? 'on' : 'off'}:`;
  const policy = fixedWindow({ limit: LIMIT, windowMs: WINDOW_MS });
  const common = { name: 'w', prefix, policy, onError: 'deny', denyCache: false, timeoutMs: 1000 };
  const leases = leasesOn ? { hotAfter: 1, share: 1 } : false;
  const clients = [new Redis({ port: proxy.port }), new Redis({ port: proxy.port }), new Redis({ port: server.port }), new Redis({ port: server.port })];
  const [farA, farB, near, auditClient] = clients;
  const leasing = new RedisLimiter({ ...common, redis: farA, leases });
  const singles = [1, 2].map(() => new RedisLimiter({ ...common, redis: farB, leases }));
  const direct = new RedisLimiter({ ...common, redis: near });
  await Promise.all([leasing, direct, ...singles].map((l) => l.peek('warm-up')));
  const audit = startWindowAudit(auditClient, `${prefix}w{k}:fw${WINDOW_MS}`, { windowMs: WINDOW_MS });
  const windowIndex = () => {
    const { ends, redisNow } = audit.live();
    const last = ends.at(-1);
    const index = last === undefined ? 0 : redisNow < last ? ends.length - 1 : ends.length;
    return { index, leftMs: last === undefined || redisNow >= last ? Infinity : last - redisNow };
  };
  const settled = [];
  const fire = (limiter, who) => () => {
    const calledAt = performance.now();
    settled.push(limiter.consume('k').then((d) => audit.record(calledAt, performance.now(), d, who), () => undefined));
  };
  const ms = 5 * WINDOW_MS;
  const started = performance.now();
  // One call at a time, a large one (cost 100) shortly before each window the direct process will fill.
  const oneAtATime = async (single) => {
    let bigFor = -1;
    while (performance.now() - started < ms) {
      const { index, leftMs } = windowIndex();
      const cost = index % 2 === 0 && leftMs < 200 && bigFor !== index ? 100 : 1;
      if (cost > 1) bigFor = index;
      const calledAt = performance.now();
      const d = await single.consume('k', cost).catch(() => undefined);
      if (d === undefined) return;
      audit.record(calledAt, performance.now(), d, 'single', cost);
      await sleep(2);
    }
  };
  const lanes = singles.map(oneAtATime);
  await Promise.all([offer(300, ms, fire(leasing, 'leasing')), offer(3000, ms, fire(direct, 'direct'), () => windowIndex().index % 2 === 1)]);
  await Promise.race([Promise.all([...settled, ...lanes]), sleep(3000)]);
  for (const l of [leasing, direct, ...singles]) l.close();
  await Promise.all([...settled, ...lanes]);
  await audit.stop();
  for (const c of clients) c.disconnect();
  const r = audit.report({ resetOf: 'single' });
  // Windows the direct process filled (odd ones), the first and last (partial) left out of the list.
  const perWindow = r.windows.map((w) => w.admitted);
  const figures = { limit: LIMIT, maxAdmitted: r.maxAdmitted, perWindow, ambiguous: r.ambiguous, outside: r.outside, resetOver: r.resetOver, resetChecked: r.resetChecked };
  progress(`replies 150 ms late, leases ${leasesOn ? 'on ' : 'off'}: admitted per window ${perWindow.join(', ')} (limit ${LIMIT}; ${r.ambiguous} too near an edge to place); resetMs past the window in ${r.resetOver} of ${r.resetChecked}`);
  return figures;
}

/** (3) One hot key at ~4,600 calls/s for 2.5 s behind replies 10 ms late: each call's wait. */
async function hotKeyBehindSlowReplies(proxy, leasesOn) {
  proxy.setDelay({ toClient: 10, toServer: 0 });
  const redis = new Redis({ port: proxy.port });
  const limiter = new RedisLimiter({ name: 'hot', prefix: `ops-hot-${leasesOn ? 'on' : 'off'}:`, redis, policy: fixedWindow({ limit: 1e9, windowMs: 600_000 }), timeoutMs: TIMEOUT_MS, leases: leasesOn });
  await limiter.peek('warm-up');
  const waits = [];
  let made = 0;
  await offer(4600, 2500, () => {
    made++;
    const calledAt = performance.now();
    limiter.consume('hot').then(
      () => waits.push(performance.now() - calledAt),
      () => waits.push(Infinity),
    );
  });
  const stoppedAt = performance.now();
  while (waits.length < made && performance.now() - stoppedAt < 1000) await sleep(20);
  const pendingAfter1s = made - waits.length;
  const s = limiter.stats();
  limiter.close();
  redis.disconnect();
  // A call still pending 1 s after the traffic counts as settled past timeoutMs, and as slow as it got.
  while (waits.length < made) waits.push(Infinity);
  waits.sort((a, b) => a - b);
  const figures = {
    calls: made,
    p50Ms: quantile(waits, 0.5),
    p99Ms: quantile(waits, 0.99),
    maxMs: waits.at(-1) ?? 0,
    beyondTimeout: waits.filter((w) => w > TIMEOUT_MS).length,
    pendingAfter1s,
    leasedShare: s.leasedDecisions / made,
  };
  const ms = (v) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : 'pending');
  progress(
    `hot key, replies 10 ms late, leases ${leasesOn ? 'on ' : 'off'}: ${made} calls, wait p50 ${ms(figures.p50Ms)}, p99 ${ms(figures.p99Ms)}, max ${ms(figures.maxMs)}; ` +
      `${figures.beyondTimeout} settled past ${TIMEOUT_MS} ms, ${pendingAfter1s} pending 1 s after; ${(100 * figures.leasedShare).toFixed(0)}% from leases`,
  );
  return figures;
}

const figures = { timeoutMs: TIMEOUT_MS, migration: await migration() };
const server = await startRedis();
const proxy = await startDelayProxy({ port: server.port });
try {
  figures.windowLeasesOn = await leasesBehindSlowReplies(server, proxy, true);
  figures.windowLeasesOff = await leasesBehindSlowReplies(server, proxy, false);
  figures.hotLeasesOn = await hotKeyBehindSlowReplies(proxy, true);
  figures.hotLeasesOff = await hotKeyBehindSlowReplies(proxy, false);
} finally {
  await proxy.close();
  await server.stop();
}
report('redis-operations', figures);
