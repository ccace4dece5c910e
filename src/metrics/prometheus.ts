// Prometheus metrics for limiters: the plain text exposition format, a handler that serves it, and a prom-client collector.
import { invalidArgument } from '../common/errors.js';
import { isRateLimiter, type LimiterStats, type RateLimiter, type RedisLimiterStats } from '../limiters/rate-limiter.js';

interface Sample {
  readonly labels: Record<string, string>;
  readonly value: number;
}
interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly samples: Sample[];
}

/** `limiters` as given, or a coded TypeError naming the first that is not one. */
function checkLimiters(limiters: readonly unknown[]): readonly RateLimiter[] {
  const wrong = limiters.findIndex((limiter) => !isRateLimiter(limiter));
  if (wrong >= 0) throw invalidArgument(`limiters[${wrong}]`, 'a limiter (Limiter, allOf(...), RedisLimiter)', limiters[wrong]);
  // Series are labelled by name: a second limiter of one name would vanish into the first's.
  const names = (limiters as readonly RateLimiter[]).map((l) => l.name);
  const again = names.findIndex((name, i) => names.indexOf(name) !== i);
  if (again >= 0)
    throw invalidArgument(`limiters[${again}]`, `a limiter whose name is not already limiters[${names.indexOf(names[again] as string)}]'s ('${names[again]}'; give each its own name)`, names[again]);
  return limiters as readonly RateLimiter[];
}

function families(limiters: readonly RateLimiter[]): Family[] {
  const f = (name: string, type: Family['type'], help: string): Family => ({ name, help, type, samples: [] });
  const decisions = f('tollgate_decisions_total', 'counter', 'Consuming decisions, by outcome.');
  const nearLimit = f('tollgate_near_limit_total', 'counter', 'Allowed decisions that left at most a fifth of the limit.');
  const entries = f('tollgate_table_entries', 'gauge', 'Occupied slots, expired ones not yet reclaimed included.');
  const capacity = f('tollgate_table_capacity', 'gauge', 'Live keys the table holds at most (its capacity option).');
  const slots = f('tollgate_table_slots', 'gauge', 'Entries the table has room for now (capacity plus headroom, once grown).');
  const load = f('tollgate_table_load_ratio', 'gauge', 'entries / slots.');
  const maxShard = f('tollgate_table_max_shard_load_ratio', 'gauge', 'The fullest shard: its entries / its slots.');
  const evictions = f('tollgate_evictions_total', 'counter', 'Live entries dropped to make room for new keys.');
  const swept = f('tollgate_swept_total', 'counter', 'Expired entries reclaimed.');
  const contended = f('tollgate_lock_contended_total', 'counter', 'Shard lock acquisitions that waited.');
  const recoveries = f('tollgate_lock_recoveries_total', 'counter', 'Shard locks taken over from a dead holder.');
  const redisCalls = f('tollgate_redis_calls_total', 'counter', 'Scripts sent to Redis.');
  const redisErrors = f('tollgate_redis_errors_total', 'counter', 'Redis calls that failed, by kind.');
  const fallback = f('tollgate_redis_fallback_decisions_total', 'counter', 'Decisions made by onError, by mode.');
  const denyCache = f('tollgate_deny_cache_hits_total', 'counter', 'Decisions the deny cache answered without Redis.');
  const breaker = f('tollgate_redis_breaker_transitions_total', 'counter', 'Breaker transitions of the Redis nodes, by the state entered.');
  const openNodes = f('tollgate_redis_open_nodes', 'gauge', 'Redis nodes whose breaker is open or half-open.');
  // A table reported twice (given alone and inside allOf(...)) would repeat its series, which a
  // scrape refuses: each limiter name and store is reported once.
  const seen = new Set<string>();
  const table = (s: LimiterStats) => {
    const id = `${s.name}\0${s.store}`;
    if (seen.has(id)) return;
    seen.add(id);
    const store = { limiter: s.name, store: s.store };
    decisions.samples.push(
      { labels: { ...store, outcome: 'allowed' }, value: s.allowed },
      { labels: { ...store, outcome: 'denied_limit' }, value: s.denied },
      { labels: { ...store, outcome: 'denied_block' }, value: s.deniedBlocked },
      { labels: { ...store, outcome: 'denied_full' }, value: s.refused },
    );
    nearLimit.samples.push({ labels: store, value: s.nearLimit });
    entries.samples.push({ labels: store, value: s.entries });
    capacity.samples.push({ labels: store, value: s.capacity });
    slots.samples.push({ labels: store, value: s.slots });
    load.samples.push({ labels: store, value: s.slots === 0 ? 0 : s.entries / s.slots });
    maxShard.samples.push({ labels: store, value: s.maxShardEntries / (s.slots / s.shards) });
    evictions.samples.push({ labels: store, value: s.evictions });
    swept.samples.push({ labels: store, value: s.swept });
    contended.samples.push({ labels: store, value: s.lockContended });
    recoveries.samples.push({ labels: store, value: s.lockRecoveries });
  };
  const redis = (s: RedisLimiterStats) => {
    const base = { limiter: s.name };
    const store = { ...base, store: 'redis' };
    decisions.samples.push({ labels: { ...store, outcome: 'allowed' }, value: s.allowed }, { labels: { ...store, outcome: 'denied_limit' }, value: s.denied });
    redisCalls.samples.push({ labels: base, value: s.redisCalls });
    redisErrors.samples.push(
      { labels: { ...base, kind: 'error' }, value: s.errors },
      { labels: { ...base, kind: 'timeout' }, value: s.timeouts },
      { labels: { ...base, kind: 'late' }, value: s.lateRefused },
      { labels: { ...base, kind: 'state_mismatch' }, value: s.stateMismatches },
      { labels: { ...base, kind: 'breaker_open' }, value: s.shortCircuited },
    );
    breaker.samples.push(
      { labels: { ...base, state: 'open' }, value: s.breakerOpened },
      { labels: { ...base, state: 'half_open' }, value: s.breakerHalfOpened },
      { labels: { ...base, state: 'closed' }, value: s.breakerClosed },
    );
    openNodes.samples.push({ labels: base, value: s.openNodes });
    fallback.samples.push(
      { labels: { ...base, mode: 'allow' }, value: s.failedOpen },
      { labels: { ...base, mode: 'deny' }, value: s.failedClosed },
      { labels: { ...base, mode: 'limiter' }, value: s.fallbackDecisions },
    );
    denyCache.samples.push({ labels: base, value: s.denyCacheHits });
  };
  for (const limiter of limiters) {
    // A closed table has nothing to report (its counters went with it).
    if (limiter.closed) continue;
    const s = limiter.stats();
    if (s.store === 'redis') redis(s);
    else if (s.store === 'combined') s.limiters.forEach(table);
    else table(s);
  }
  return [decisions, nearLimit, entries, capacity, slots, load, maxShard, evictions, swept, contended, recoveries, redisCalls, redisErrors, fallback, denyCache, breaker, openNodes].filter(
    (family) => family.samples.length > 0,
  );
}

const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** The limiters' metrics in the Prometheus text exposition format (version 0.0.4). */
export function toPrometheus(...limiters: RateLimiter[]): string {
  const lines: string[] = [];
  for (const family of families(checkLimiters(limiters))) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      lines.push(`${family.name}{${labels}} ${Number.isFinite(sample.value) ? sample.value : 0}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The part of a prom-client Registry this needs. */
export interface PromRegistryLike {
  registerMetric(metric: unknown): void;
}
interface GaugeLike {
  set(labels: Record<string, string>, value: number): void;
  reset(): void;
}
type GaugeConstructor = new (config: { name: string; help: string; labelNames: string[]; registers: PromRegistryLike[]; collect: () => void }) => GaugeLike;

/** The prom-client module (import * as client from 'prom-client'); its own types are not needed here. */
export interface PromClientLike {
  readonly Gauge: new (config: never) => GaugeLike;
}

/**
 * Registers the limiters' metrics with a prom-client registry, read at each scrape. prom-client
 * is an optional peer: pass its module. (Counters are exported as gauges holding the running
 * total, which rate() and increase() treat the same; prom-client counters cannot be set.)
 */
export function registerPrometheus(client: PromClientLike, registry: PromRegistryLike, ...limiters: RateLimiter[]): void {
  if (typeof (client as { Gauge?: unknown } | null)?.Gauge !== 'function') throw invalidArgument('client', "the prom-client module (import * as client from 'prom-client')", client);
  if (typeof (registry as { registerMetric?: unknown } | null)?.registerMetric !== 'function') throw invalidArgument('registry', 'a prom-client Registry', registry);
  if (limiters.length === 0) throw invalidArgument('limiters', 'at least one limiter', undefined);
  const { getSingleMetric } = registry as { getSingleMetric?: (name: string) => unknown };
  if (typeof getSingleMetric === 'function' && getSingleMetric.call(registry, 'tollgate_decisions_total') !== undefined) {
    throw invalidArgument('registry', "a Registry without tollgate's metrics (register every limiter in one call)", 'a Registry that has them');
  }
  for (const template of families(checkLimiters(limiters))) {
    const labelNames = [...new Set(template.samples.flatMap((s) => Object.keys(s.labels)))];
    const Gauge = client.Gauge as unknown as GaugeConstructor;
    const gauge: GaugeLike = new Gauge({
      name: template.name,
      help: template.help,
      labelNames,
      registers: [registry],
      collect: () => {
        gauge.reset();
        const current = families(limiters).find((f) => f.name === template.name);
        for (const sample of current?.samples ?? []) gauge.set(sample.labels, sample.value);
      },
    });
  }
}

/** A node:http / express handler serving the limiters' metrics for Prometheus to scrape. */
export function metricsHandler(...limiters: RateLimiter[]) {
  checkLimiters(limiters); // at once, not at the first scrape
  return (_req: unknown, res: { setHeader(name: string, value: string): unknown; end(body: string): unknown }): void => {
    res.setHeader('Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
    res.end(toPrometheus(...limiters));
  };
}
