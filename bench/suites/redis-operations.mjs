// Redis as operated, measured in process: (1) a live resharding: one slot group of a
// limiter, populated, moved to another master with MIGRATE (10 keys a call, as redis-cli does)
// under traffic over every group: the share of decisions that went to onError against the
// migrating group's share of the traffic, breaker openings, how long the move took; (2) leases
// behind replies 150 ms late: the most any Redis window admitted (by Redis' clock, see
// scripts/window-audit.mjs), leases on and off; (3) one hot key at ~4,600 calls/s behind replies
// 10 ms late: each call's wait (p50, p99, max) and the calls settled past timeoutMs, leases on
// and off. The scenarios are the tests' (scripts/redis-scenarios.mjs), here on dist/. Skipped,
// saying why, without redis-server.
//   node bench/suites/redis-operations.mjs [populatedKeys]
import { Cluster, Redis } from 'ioredis';
import { Limiter, RedisLimiter, fixedWindow } from '../../dist/index.js';
import { keySlot } from '../../dist/redis/key-slot.js';
import { groupedKeyBase } from '../../dist/redis/redis-keys.js';
import { startDelayProxy } from '../../scripts/delay-proxy.mjs';
import { redisAvailable, startCluster, startRedis } from '../../scripts/local-redis.mjs';
import { hotKeyBehindSlowReplies, leasesBehindSlowReplies, migrationUnderTraffic } from '../../scripts/redis-scenarios.mjs';
import { progress, report } from '../common.mjs';

const POPULATED = Number(process.argv[2] ?? 60_000);
const TIMEOUT_MS = 250;

const probe = redisAvailable();
if (!probe.available) {
  progress(`SKIPPED: ${probe.reason}`);
  report('redis-operations', { skipped: probe.reason });
  process.exit(0);
}

/** The scenarios run on this build (dist/), as the tests run them on src/. */
const tollgate = { Limiter, RedisLimiter, fixedWindow, keySlot, groupedKeyBase };
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

/** (1) A populated group slot moved to another master under traffic over all 16 groups. */
async function migration() {
  const cluster = await startCluster();
  const client = new Cluster([...cluster.nodes]);
  client.on('error', () => undefined);
  if (client.status !== 'ready') await new Promise((r) => client.once('ready', r));
  const run = await migrationUnderTraffic(tollgate, { cluster, client, populated: POPULATED, keysPerGroup: 64, timeoutMs: TIMEOUT_MS });
  const { migration: moved, decisions, groupDecisions, before, after: s } = run;
  run.limiter.close();
  client.disconnect();
  await cluster.stop();
  const errorCodes = {};
  for (const e of run.events) if (e.type === 'error') errorCodes[e.error.code] = (errorCodes[e.error.code] ?? 0) + 1;
  const figures = {
    keysMoved: moved.moved,
    migrateCalls: moved.calls,
    migrationMs: moved.ms,
    decisions,
    groupShare: groupDecisions / decisions,
    fallbackShare: (s.fallbackDecisions - before.fallbackDecisions) / decisions,
    breakerOpened: s.breakerOpened - before.breakerOpened,
    timeouts: s.timeouts - before.timeouts,
    errorCodes,
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
async function leasesBehindSlowRepliesFigures(server, proxy, leasesOn) {
  const clients = [];
  const connect = (port) => {
    const redis = new Redis({ port });
    clients.push(redis);
    return redis;
  };
  const run = await leasesBehindSlowReplies(tollgate, { proxy, serverPort: server.port, connect, prefix: `ops-window-${leasesOn ? 'on' : 'off'}:`, leases: leasesOn });
  for (const c of clients) c.disconnect();
  const { limit, report: r } = run;
  // Windows the direct process filled (odd ones), the first and last (partial) left out of the list.
  const perWindow = r.windows.map((w) => w.admitted);
  const figures = { limit, maxAdmitted: r.maxAdmitted, perWindow, ambiguous: r.ambiguous, outside: r.outside, resetOver: r.resetOver, resetChecked: r.resetChecked };
  progress(
    `replies 150 ms late, leases ${leasesOn ? 'on ' : 'off'}: admitted per window ${perWindow.join(', ')} (limit ${limit}; ${r.ambiguous} too near an edge to place); resetMs past the window in ${r.resetOver} of ${r.resetChecked}`,
  );
  return figures;
}

/** (3) One hot key at ~4,600 calls/s for 2.5 s behind replies 10 ms late: each call's wait. */
async function hotKeyBehindSlowRepliesFigures(proxy, leasesOn) {
  const redis = new Redis({ port: proxy.port });
  const prefix = `ops-hot-${leasesOn ? 'on' : 'off'}:`;
  const run = await hotKeyBehindSlowReplies(tollgate, { proxy, redis, prefix, leases: leasesOn, perSecond: 4600, ms: 2500, timeoutMs: TIMEOUT_MS });
  redis.disconnect();
  const { made, pending } = run;
  // A call rejected, or still pending 1 s after the traffic, counts as settled past timeoutMs, and as slow as it got.
  const waits = [...run.waits, ...Array.from({ length: run.rejected + pending }, () => Infinity)].sort((a, b) => a - b);
  const figures = {
    calls: made,
    p50Ms: quantile(waits, 0.5),
    p99Ms: quantile(waits, 0.99),
    maxMs: waits.at(-1) ?? 0,
    beyondTimeout: waits.filter((w) => w > TIMEOUT_MS).length,
    pendingAfter1s: pending,
    leasedShare: run.stats.leasedDecisions / made,
  };
  const ms = (v) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : 'pending');
  progress(
    `hot key, replies 10 ms late, leases ${leasesOn ? 'on ' : 'off'}: ${made} calls, wait p50 ${ms(figures.p50Ms)}, p99 ${ms(figures.p99Ms)}, max ${ms(figures.maxMs)}; ` +
      `${figures.beyondTimeout} settled past ${TIMEOUT_MS} ms, ${pending} pending 1 s after; ${(100 * figures.leasedShare).toFixed(0)}% from leases`,
  );
  return figures;
}

const figures = { timeoutMs: TIMEOUT_MS, migration: await migration() };
const server = await startRedis();
const proxy = await startDelayProxy({ port: server.port });
try {
  figures.windowLeasesOn = await leasesBehindSlowRepliesFigures(server, proxy, true);
  figures.windowLeasesOff = await leasesBehindSlowRepliesFigures(server, proxy, false);
  figures.hotLeasesOn = await hotKeyBehindSlowRepliesFigures(proxy, true);
  figures.hotLeasesOff = await hotKeyBehindSlowRepliesFigures(proxy, false);
} finally {
  await proxy.close();
  await server.stop();
}
report('redis-operations', figures);
