// The Redis scenarios of a managed deployment, written once for the tests that assert on them
// (test/redis-leases.test.ts, test/redis-migration.test.ts) and the benchmark that reports them
// (bench/suites/redis-operations.mjs). Each runs its traffic and resolves with the raw counts;
// what they must be is the tests' business, how they read the bench's.
//
// `tollgate` is the library under test, passed in: the tests give src/, the bench dist/, so each
// measures the build it means to.
import { migrateSlot, ownerOf } from './migrate-slot.mjs';
import { startWindowAudit } from './window-audit.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Open-loop load, as independent clients make it: `perSecond` calls for `ms`, fired on schedule
 * whether earlier ones settled or not (a slow limiter piles calls up, as it would in production).
 */
async function offer(perSecond, ms, fire, on = () => true) {
  const started = performance.now();
  let due = 0;
  for (let elapsed = 0; elapsed < ms; elapsed = performance.now() - started) {
    const target = Math.floor((perSecond * elapsed) / 1000);
    // A load that is off skips its calls rather than firing them late in a burst.
    if (on()) for (; due < target; due++) fire();
    else due = target;
    await sleep(2);
  }
}

/**
 * Item 5: processes on one key (1,000 per 1,000 ms), three behind replies 150 ms late (with leases
 * or, `leases` false, without) and one direct. The windows are Redis' (a key's life), so the audit
 * polls the key on a direct connection and places each admission by Redis' clock
 * (scripts/window-audit.mjs). `connect(port)` makes the ioredis clients; the caller disconnects them.
 */
export async function leasesBehindSlowReplies({ RedisLimiter, fixedWindow }, { proxy, serverPort, connect, prefix, leases = true }) {
  proxy.setDelay({ toClient: 150, toServer: 0 });
  const limit = 1000;
  const windowMs = 1000;
  // onError 'deny': a call Redis did not decide admits nothing, so every admission is Redis' or a
  // lease's. timeoutMs 1000: a first contact through this path (probe, scripts loaded) takes 4
  // round trips; a first call timing out would open the breaker and test nothing.
  const common = { name: 'w', prefix, policy: fixedWindow({ limit, windowMs }), onError: 'deny', denyCache: false, timeoutMs: 1000 };
  // hotAfter 1: every consume of a leasing process is a lease's (a grant, or spent from one).
  const leaseOptions = leases ? { hotAfter: 1, share: 1 } : false;
  const leasing = new RedisLimiter({ ...common, redis: connect(proxy.port), leases: leaseOptions });
  // Callers that make one call at a time, each its own process: none waits for another's lease
  // call, so every answer it gets is a lease's (its grant, or spent from it).
  const far = connect(proxy.port);
  const singles = [1, 2].map(() => new RedisLimiter({ ...common, redis: far, leases: leaseOptions }));
  const direct = new RedisLimiter({ ...common, redis: connect(serverPort) });
  const limiters = [leasing, direct, ...singles];
  await Promise.all(limiters.map((limiter) => limiter.peek('warm-up')));
  const audit = startWindowAudit(connect(serverPort), `${prefix}w{k}:fw${windowMs}`, { windowMs });
  const settled = [];
  let deniedByRedis = 0;
  const fire = (limiter, who) => () => {
    const calledAt = performance.now();
    settled.push(
      limiter.consume('k').then(
        (d) => {
          audit.record(calledAt, performance.now(), d, who);
          if (who === 'direct' && !d.allowed) deniedByRedis++;
        },
        // Rejected by close() below (a call still pending then): it admitted nothing.
        () => undefined,
      ),
    );
  };
  // The direct process comes every other window, from its start, at 3,000/s, and fills it.
  // The leasing ones are steady and fill no window alone; and shortly before each window the
  // direct one will fill ends, each single caller takes a large lease (a consume of 100 on a
  // key this hot leases 200). What it holds when that window ends is the case this scenario is for: a unit
  // spent from it after the end is one admission too many in a window already full.
  const windowIndex = () => {
    const { ends, redisNow } = audit.live();
    const last = ends.at(-1);
    const index = last === undefined ? 0 : redisNow < last ? ends.length - 1 : ends.length;
    return { index, leftMs: last === undefined || redisNow >= last ? Infinity : last - redisNow };
  };
  const ms = 5 * windowMs;
  const started = performance.now();
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
  // Bounded: calls still pending 3 s after the traffic (item 6's failure) are closed, not awaited.
  await Promise.race([Promise.all([...settled, ...lanes]), sleep(3000)]);
  const leased = [leasing, ...singles].reduce((sum, limiter) => sum + limiter.stats().leasedDecisions, 0);
  for (const limiter of limiters) limiter.close();
  await Promise.all([...settled, ...lanes]);
  await audit.stop();
  return { limit, report: audit.report({ resetOf: 'single' }), leased, deniedByRedis };
}

/**
 * Item 6: one hot key, `perSecond` calls for `ms` behind replies 10 ms late. Calls that arrive
 * while the key's lease call is out wait for it; that wait is part of the call. Resolves with the
 * wait of each call that resolved, the calls rejected, those still pending a second after the
 * traffic stopped (the limiter is closed then), and the limiter's stats.
 */
export async function hotKeyBehindSlowReplies({ RedisLimiter, fixedWindow }, { proxy, redis, prefix, leases, perSecond, ms, timeoutMs }) {
  proxy.setDelay({ toClient: 10, toServer: 0 });
  const limiter = new RedisLimiter({ name: 'hot', prefix, redis, policy: fixedWindow({ limit: 1e9, windowMs: 600_000 }), timeoutMs, leases });
  await limiter.peek('warm-up');
  const waits = [];
  let made = 0;
  let rejected = 0;
  await offer(perSecond, ms, () => {
    made++;
    const calledAt = performance.now();
    limiter.consume('hot').then(
      () => waits.push(performance.now() - calledAt),
      () => rejected++,
    );
  });
  // Traffic has stopped: a second later nothing may be pending (polled, so a pass takes no longer than needed).
  const stoppedAt = performance.now();
  while (waits.length + rejected < made && performance.now() - stoppedAt < 1000) await sleep(20);
  // Taken before close(), whose rejections of calls still pending are not the limiter's answers.
  const counts = { made, waits: [...waits], rejected, pending: made - waits.length - rejected, stats: limiter.stats() };
  limiter.close();
  return counts;
}

/** The limiter of the migration scenario: its keys, their slots. */
export const RESHARD = { name: 'reshard', prefix: 'tollgate:', groups: 16 };

/** Key helpers for RESHARD, from src/redis or dist/redis (`keySlot`, `groupedKeyBase`: index.js exports neither). */
export function reshardKeys({ keySlot, groupedKeyBase }) {
  const base = (key) => groupedKeyBase(RESHARD.prefix, RESHARD.name, key, RESHARD.groups);
  const slotOf = (key) => keySlot(base(key));
  /** The first `count` keys named `<stem><i>` that fall in `slot`. */
  const inSlot = (slot, stem, count) => {
    const keys = [];
    for (let i = 0; keys.length < count; i++) if (slotOf(`${stem}${i}`) === slot) keys.push(`${stem}${i}`);
    return keys;
  };
  return { base, slotOf, inSlot };
}

/**
 * Item 4: a live resharding. The slot of one group, populated with `populated` keys, moved to
 * another master with MIGRATE (10 keys a call, as redis-cli does) while `lanes` callers, one call
 * at a time each, run traffic over `keysPerGroup` keys in every group. Resolves with the counts,
 * the keys onError decided, the limiter's events, and the limiter itself, open (the caller closes it).
 */
export async function migrationUnderTraffic(tollgate, { cluster, client, populated, keysPerGroup, lanes = 16, timeoutMs }) {
  const { Limiter, RedisLimiter, fixedWindow } = tollgate;
  const keys = reshardKeys(tollgate);
  const policy = fixedWindow({ limit: 1_000_000_000, windowMs: 600_000 });
  // onError: a local limiter that notes the key of every call it decides.
  const fallback = new Limiter({ policy, engine: 'js' });
  const fellBack = [];
  const decideLocally = fallback.consume.bind(fallback);
  fallback.consume = (key, cost, options) => {
    fellBack.push(key);
    return decideLocally(key, cost, options);
  };
  const events = [];
  const limiter = new RedisLimiter({
    redis: client,
    name: RESHARD.name,
    prefix: RESHARD.prefix,
    policy,
    onError: fallback,
    onEvent: (e) => events.push(e),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });

  const trafficKeys = Array.from({ length: RESHARD.groups * keysPerGroup }, (_, i) => `user:${i}`);
  const slot = keys.slotOf(trafficKeys[0]);
  const inGroup = new Set(trafficKeys.filter((k) => keys.slotOf(k) === slot));
  // Keys in that slot, as a limiter with many users holds them: what MIGRATE has to move.
  const toMove = keys.inSlot(slot, 'pop:', populated);
  for (let i = 0; i < toMove.length; i += 2000) await Promise.all(toMove.slice(i, i + 2000).map((k) => limiter.consume(k)));
  const from = await ownerOf(client.nodes('master')[0], slot);
  const to = cluster.nodes.find((n) => n.port !== from).port;

  const before = limiter.stats();
  let stop = false;
  let decisions = 0;
  let groupDecisions = 0;
  let next = 0;
  const lane = async () => {
    while (!stop) {
      const key = trafficKeys[next++ % trafficKeys.length];
      await limiter.consume(key);
      decisions++;
      if (inGroup.has(key)) groupDecisions++;
    }
  };
  const running = Array.from({ length: lanes }, lane);
  let migration;
  try {
    await sleep(300);
    migration = await migrateSlot(cluster.nodes, slot, to);
    await sleep(500);
  } finally {
    stop = true;
    await Promise.all(running);
  }
  return { limiter, slot, inGroup, migration, decisions, groupDecisions, before, after: limiter.stats(), fellBack, events };
}
