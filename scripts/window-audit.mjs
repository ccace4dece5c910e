// Counts admissions per fixed window by Redis' own clock, for the tests and benchmarks of leases.
//
// Why not count in the limiter, or by floor(time / windowMs): a fixed window on Redis starts with
// the first INCR after the last one expired (at its key's PEXPIRETIME - windowMs), and a lease
// spends units in process, where no Redis clock is read. So the audit polls the window key on a
// direct connection every few ms (Redis TIME and the key's PEXPIRETIME, in one script): that gives
// every window's exact [start, end) in Redis ms, and each poll's round trip bounds the offset
// between this process' performance.now() and Redis' clock (Redis read its clock between the
// poll's send and its reply).
//
// An admission happened at some instant between its call and its settling (a script ran, or a
// lease was spent, in between), so by Redis' clock it lies in [low(calledAt), high(settledAt)].
// It is counted in a window only when that whole interval lies inside the window; one that
// straddles an edge is "ambiguous" and counted nowhere. So the audit never blames a limiter for a
// clock it could not read (no false excess), and a unit spent from a lease after its window ended
// (a call answered at once from a stale lease) lands in the window it really fell in.
const PROBE = "local t = redis.call('TIME') return { t[1], t[2], redis.call('PEXPIRETIME', KEYS[1]) }";
/** Two clocks of one machine run at rates far closer than this (NTP slews by 500 ppm at most). */
const DRIFT = 1e-3;
/** Redis expires a key in the ms after its PEXPIRETIME, a script sees its start's time, limiters floor ms. */
const EDGE_MS = 2;
/**
 * A decision is made in the same turn of the event loop that settles it (a reply handled, or a
 * lease spent, then the promise resolved): the caller's continuation runs within this of it, even
 * on a loaded machine (a GC pause in between).
 */
const SETTLE_SLACK_MS = 25;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts polling `key` through `redis` (an ioredis client, direct: not through a delay proxy).
 * record() each call as it settles; stop(), then report().
 */
export function startWindowAudit(redis, key, { windowMs, everyMs = 5 }) {
  const samples = [];
  const calls = [];
  /** The window ends seen, oldest first. */
  const ends = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const sentAt = performance.now();
      const [seconds, micros, expiresAt] = await redis.eval(PROBE, 1, key);
      const receivedAt = performance.now();
      const redisMs = Number(seconds) * 1000 + Number(micros) / 1000;
      // Redis' clock read redisMs at some instant in [sentAt, receivedAt].
      samples.push({ at: (sentAt + receivedAt) / 2, low: redisMs - receivedAt, high: redisMs - sentAt });
      if (Number(expiresAt) > (ends.at(-1) ?? 0)) ends.push(Number(expiresAt));
      await sleep(everyMs);
    }
  })();

  /** Bounds of Redis' clock at local time t, from the tightest poll (one further away widened by drift). */
  const bounds = (t, from = samples) => {
    let low = -Infinity;
    let high = Infinity;
    for (const s of from) {
      const drift = Math.abs(t - s.at) * DRIFT;
      low = Math.max(low, t + s.low - drift);
      high = Math.min(high, t + s.high + drift);
    }
    return { low, high };
  };

  return {
    /** For a load that follows the windows: the ends (Redis ms) of the windows seen so far, and Redis' clock now. */
    live() {
      const { low, high } = bounds(performance.now(), samples.slice(-40));
      return { ends, redisNow: (low + high) / 2 };
    },
    /** One call: when it was made and when it settled (performance.now()), its decision, whose it was, its cost. */
    record(calledAt, settledAt, decision, who = '', cost = 1) {
      calls.push({ calledAt, settledAt, allowed: decision.allowed, resetMs: decision.resetMs, who, cost });
    },
    async stop() {
      stopped = true;
      await loop;
    },
    /**
     * Per window: the units admitted surely in it (in all and per `who`); `outside`: those surely
     * in no window; `ambiguous`: those too near an edge to place. For the allowed decisions of
     * `resetOf`: `resetOver`, those whose window, by their resetMs, ends surely after the real end
     * of the window nearest it, and by how much at most (`resetOverMaxMs`).
     */
    report({ resetOf } = {}) {
      const windows = ends.map((end) => ({ start: end - windowMs, end, admitted: 0, byWho: {} }));
      let ambiguous = 0;
      let outside = 0;
      let resetChecked = 0;
      let resetOver = 0;
      let resetOverMaxMs = 0;
      for (const c of calls) {
        if (!c.allowed) continue;
        if (c.who === resetOf && windows.length > 0) {
          // The end it states, by Redis' clock, at the earliest it can be; against the nearest real
          // end. A resetMs of 0 says "ended by now" (an answer that came back after its window ended
          // can say no less), never too much.
          const stated = bounds(c.settledAt - SETTLE_SLACK_MS).low + c.resetMs;
          const nearest = windows.reduce((best, w) => (Math.abs(w.end - stated) < Math.abs(best.end - stated) ? w : best));
          resetChecked++;
          if (c.resetMs > 0 && stated - nearest.end > EDGE_MS) {
            resetOver++;
            resetOverMaxMs = Math.max(resetOverMaxMs, stated - nearest.end);
          }
        }
        const from = bounds(c.calledAt).low;
        const until = bounds(c.settledAt).high;
        const w = windows.find((x) => from >= x.start + EDGE_MS && until <= x.end - EDGE_MS);
        if (w !== undefined) {
          w.admitted += c.cost;
          w.byWho[c.who] = (w.byWho[c.who] ?? 0) + c.cost;
        } else if (windows.every((x) => until < x.start - EDGE_MS || from > x.end + EDGE_MS)) outside += c.cost;
        else ambiguous += c.cost;
      }
      return {
        windows,
        maxAdmitted: Math.max(0, ...windows.map((w) => w.admitted)),
        ambiguous,
        outside,
        resetChecked,
        resetOver,
        resetOverMaxMs,
        polls: samples.length,
        widestPollMs: samples.reduce((m, s) => Math.max(m, s.high - s.low), 0),
      };
    },
  };
}
