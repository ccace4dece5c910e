// What an upstream API says about its limits: Retry-After, the IETF RateLimit fields, the
// X-RateLimit-* family, and the x-ratelimit-*-requests / -tokens style of AI providers.
import { invalidArgument } from '../common/errors.js';

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

const finite = (n: number) => (Number.isFinite(n) ? n : undefined);

/**
 * A header's text, or undefined when absent: null is what Headers.get() returns for a missing
 * header, so it means "no value" here too.
 */
function headerText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalidArgument('value', 'a string, null or undefined', value);
  return value.trim();
}

/** Retry-After as ms: delta-seconds or an HTTP-date; undefined when absent (null too) or garbled. */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  const text = headerText(value);
  if (text === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/** Durations as AI APIs write them: '1s', '6m0s', '20ms', '1h2m3.5s', or bare seconds; undefined when absent. */
export function parseDuration(value: string | null | undefined): number | undefined {
  const text = headerText(value);
  if (text === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
  let total = 0;
  let rest = text;
  while (rest.length > 0) {
    const match = /^(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/.exec(rest);
    if (match === null) return undefined;
    total += Number(match[1]) * (units[match[2] as string] as number);
    rest = rest.slice(match[0].length);
  }
  return Math.ceil(total);
}

/** Reset values that are Unix times (seconds) rather than durations. */
function resetToMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (Number.isFinite(n) && n > 1_000_000_000) return Math.max(0, n * 1000 - nowMs);
  return parseDuration(value);
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
      out[dimension] = clean({ limit: num(limit), remaining: num(remaining), resetMs: parseDuration(reset) });
    }
  }
  if (out.requests !== undefined) return out;

  // IETF structured fields (drafts 08+): RateLimit: "name";r=42;t=17.
  const structured = header(headers, 'ratelimit');
  if (structured !== undefined && /;\s*r=/.test(structured)) {
    const r = /;\s*r=(\d+)/.exec(structured)?.[1];
    const t = /;\s*t=(\d+)/.exec(structured)?.[1];
    const q = /;\s*q=(\d+)/.exec(header(headers, 'ratelimit-policy') ?? '')?.[1];
    out.requests = clean({ limit: num(q), remaining: num(r), resetMs: t === undefined ? undefined : Number(t) * 1000 });
    return out;
  }
  // Draft 7: RateLimit: limit=100, remaining=42, reset=17.
  if (structured !== undefined && /remaining=/.test(structured)) {
    const field = (name: string) => new RegExp(`${name}=(\\d+)`).exec(structured)?.[1];
    const reset = field('reset');
    out.requests = clean({ limit: num(field('limit')), remaining: num(field('remaining')), resetMs: reset === undefined ? undefined : Number(reset) * 1000 });
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

function num(value: string | undefined): number | undefined {
  return value === undefined ? undefined : finite(Number(value));
}

function clean(q: { limit?: number | undefined; remaining?: number | undefined; resetMs?: number | undefined }): UpstreamQuota {
  const out: { limit?: number; remaining?: number; resetMs?: number } = {};
  if (q.limit !== undefined) out.limit = q.limit;
  if (q.remaining !== undefined) out.remaining = q.remaining;
  if (q.resetMs !== undefined) out.resetMs = q.resetMs;
  return out;
}
