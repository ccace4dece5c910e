// What an upstream API says about its limits: Retry-After, the IETF RateLimit fields, the
// X-RateLimit-* family, and the x-ratelimit-*-requests / -tokens style of AI providers.
import { invalidArgument } from '../common/errors.js';
import { parseFieldItems, type FieldItem } from './ratelimit-field.js';

/** What is left of one upstream quota, as the last response said. */
export interface UpstreamQuota {
  readonly limit?: number;
  readonly remaining?: number;
  /** ms until the quota is full again (or its window resets). */
  readonly resetMs?: number;
}

export interface UpstreamLimits {
  /** ms to wait before retrying (Retry-After), when given. */
  readonly retryAfterMs?: number;
  readonly requests?: UpstreamQuota;
  readonly tokens?: UpstreamQuota;
}

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const value = record[name] ?? record[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * A header's text, or undefined when absent: null is what Headers.get() returns for a missing
 * header, so it means "no value" here too.
 */
function headerText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalidArgument('value', 'a string, null or undefined', value);
  return value.trim();
}

/** An HTTP-date in any of its three forms starts with the day's name (so '-5' is not a date). */
const HTTP_DATE = /^(mon|tue|wed|thu|fri|sat|sun)/i;

/**
 * Retry-After as ms: delta-seconds or an HTTP-date; undefined when absent (null too), garbled or
 * negative (a wait cannot be negative: such a value is refused, not read as "now").
 */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  const text = headerText(value);
  if (text === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return secondsToMs(Number(text));
  if (!HTTP_DATE.test(text)) return undefined;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/** Durations as AI APIs write them: '1s', '6m0s', '20ms', '1h2m3.5s', or bare seconds; undefined when absent. */
export function parseDuration(value: string | null | undefined): number | undefined {
  const text = headerText(value);
  if (text === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return secondsToMs(Number(text));
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
  let total = 0;
  let rest = text;
  while (rest.length > 0) {
    const match = /^(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/.exec(rest);
    if (match === null) return undefined;
    total += Number(match[1]) * (units[match[2] as string] as number);
    rest = rest.slice(match[0].length);
  }
  return Math.min(Math.ceil(total), Number.MAX_SAFE_INTEGER);
}

/**
 * Seconds as whole ms, at most Number.MAX_SAFE_INTEGER: an all-digit value too long for a number
 * (Infinity) is a very long wait, for the caller to cap, never Infinity or a RangeError later.
 */
function secondsToMs(seconds: number): number {
  return Math.min(Math.ceil(seconds * 1000), Number.MAX_SAFE_INTEGER);
}

/** From 1e12 a bare reset is Unix time in ms (since 2001); from 1e9, in seconds (as a delta, 31 years). */
const EPOCH_MS_FROM = 1e12;
const EPOCH_S_FROM = 1e9;

/**
 * A reset as ms from now. Upstreams write delta seconds, Unix seconds or Unix milliseconds under the
 * same names; no real wait is 31 years, so the magnitude tells them apart. Units ('6m0s') are durations.
 */
function resetToMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (!/^\d+(\.\d+)?$/.test(trimmed)) return parseDuration(trimmed);
  const n = Number(trimmed);
  if (n >= EPOCH_MS_FROM) return Math.max(0, Math.ceil(n - nowMs));
  if (n >= EPOCH_S_FROM) return Math.max(0, Math.ceil(n * 1000 - nowMs));
  return secondsToMs(n);
}

/** Parses every rate-limit header it knows. Missing or garbled fields are left out. */
export function parseUpstreamLimits(headers: HeaderSource, nowMs = Date.now()): UpstreamLimits {
  const out: { retryAfterMs?: number; requests?: UpstreamQuota; tokens?: UpstreamQuota } = {};
  const retryAfter = parseRetryAfter(header(headers, 'retry-after'), nowMs);
  if (retryAfter !== undefined) out.retryAfterMs = retryAfter;

  // AI providers: x-ratelimit-{limit,remaining,reset}-{requests,tokens}.
  for (const dimension of ['requests', 'tokens'] as const) {
    const limit = header(headers, `x-ratelimit-limit-${dimension}`);
    const remaining = header(headers, `x-ratelimit-remaining-${dimension}`);
    const reset = header(headers, `x-ratelimit-reset-${dimension}`);
    if (limit !== undefined || remaining !== undefined || reset !== undefined) {
      out[dimension] = clean({ limit: num(limit), remaining: num(remaining), resetMs: resetToMs(reset, nowMs) });
    }
  }
  if (out.requests !== undefined) return out;

  // IETF structured fields (drafts 08+): RateLimit: "name";r=42;t=17, one item per quota.
  const structured = header(headers, 'ratelimit');
  if (structured !== undefined && /;\s*r=/.test(structured)) {
    const item = mostRestrictive(parseFieldItems(structured), nowMs);
    if (item !== undefined) {
      const q = policyFor(item, parseFieldItems(header(headers, 'ratelimit-policy') ?? ''))?.params.get('q');
      out.requests = clean({ limit: num(q), remaining: num(item.params.get('r')), resetMs: resetToMs(item.params.get('t'), nowMs) });
      return out;
    }
  }
  // Draft 7: RateLimit: limit=100, remaining=42, reset=17.
  if (structured !== undefined && /remaining=/.test(structured)) {
    const field = (name: string) => new RegExp(`${name}=(\\d+)`).exec(structured)?.[1];
    out.requests = clean({ limit: num(field('limit')), remaining: num(field('remaining')), resetMs: resetToMs(field('reset'), nowMs) });
    return out;
  }
  // Draft 6 and the legacy family.
  for (const prefix of ['ratelimit', 'x-ratelimit']) {
    const remaining = header(headers, `${prefix}-remaining`);
    if (remaining === undefined) continue;
    out.requests = clean({
      limit: num(header(headers, `${prefix}-limit`)),
      remaining: num(remaining),
      resetMs: resetToMs(header(headers, `${prefix}-reset`), nowMs),
    });
    return out;
  }
  return out;
}

/**
 * The item that binds: the least remaining, and of those the longest wait. Every quota must
 * allow a request, so a spent daily quota rules whatever the minute's quota says.
 */
function mostRestrictive(items: readonly FieldItem[], nowMs: number): FieldItem | undefined {
  let best: FieldItem | undefined;
  let bestR = Infinity;
  let bestT = -1;
  for (const item of items) {
    const r = num(item.params.get('r'));
    if (r === undefined) continue;
    const t = resetToMs(item.params.get('t'), nowMs) ?? 0;
    if (r < bestR || (r === bestR && t > bestT)) {
      best = item;
      bestR = r;
      bestT = t;
    }
  }
  return best;
}

/** The policy item of the same name; a lone policy beside a lone item is that item's. */
function policyFor(item: FieldItem, policies: readonly FieldItem[]): FieldItem | undefined {
  return policies.find((p) => p.name === item.name) ?? (policies.length === 1 ? policies[0] : undefined);
}

/**
 * A count (a limit, what remains): a non-negative decimal, rounded down (41.5 left is 41: never
 * more than the upstream said), at most Number.MAX_SAFE_INTEGER; anything else (negative, hex,
 * empty) is ignored.
 */
function num(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+(\.\d+)?$/.test(value.trim())) return undefined;
  return Math.min(Math.floor(Number(value)), Number.MAX_SAFE_INTEGER);
}

function clean(q: { limit?: number | undefined; remaining?: number | undefined; resetMs?: number | undefined }): UpstreamQuota {
  const out: { limit?: number; remaining?: number; resetMs?: number } = {};
  if (q.limit !== undefined) out.limit = q.limit;
  if (q.remaining !== undefined) out.remaining = q.remaining;
  if (q.resetMs !== undefined) out.resetMs = q.resetMs;
  return out;
}
