// Known answers, computed by hand from the algorithms' definitions (docs/api.md), one table per
// kind: what every engine (native, TypeScript, Redis) must answer, step by step, on a ManualClock.
// Each step says why its numbers are what they are; nothing here was produced by running an engine.
//
// Times are long in real terms: windows of a minute, a token or a leaky bucket's request every
// 66.7 s, so every state Redis keeps lives at least a minute of its own time (its TTL is the
// state's reset plus slack) and Redis' real-time expiry never meets a table that takes well under
// a second to run.
import { fixedWindow, leakyBucket, slidingWindow, tokenBucket, type Policy } from '../src/index.js';

/** The clock's time at a table's `at: 0`: a multiple of every window here, so a sliding window's aligned windows start at ORIGIN + k × windowMs. */
export const ORIGIN = 1_200_000_000;

export interface KnownStep {
  /** ms after ORIGIN; never decreasing within a table. */
  readonly at: number;
  readonly op: 'consume' | 'peek';
  readonly cost: number;
  readonly expect: { readonly allowed: boolean; readonly remaining: number; readonly resetMs: number; readonly retryAfterMs: number };
  /** Why these are the answers (shown when a step fails). */
  readonly why: string;
}

export interface KnownTable {
  readonly name: string;
  readonly policy: Policy;
  readonly steps: readonly KnownStep[];
}

const yes = (remaining: number, resetMs: number) => ({ allowed: true, remaining, resetMs, retryAfterMs: 0 });
const no = (remaining: number, resetMs: number, retryAfterMs: number) => ({ allowed: false, remaining, resetMs, retryAfterMs });

// Fixed window, 5 per 60 s: a window starts at a key's first allowed request and lasts 60 s; a
// denial spends nothing, and a denial on a fresh key starts no window.
const fixed: KnownTable = {
  name: 'fixedWindow 5 per 60 s',
  policy: fixedWindow({ limit: 5, windowMs: 60_000 }),
  steps: [
    { at: 0, op: 'consume', cost: 2, expect: yes(3, 60_000), why: 'fresh key: a window starts at 0 and ends at 60 000; 2 of 5 spent' },
    { at: 20_000, op: 'consume', cost: 3, expect: yes(0, 40_000), why: '2 + 3 = 5, exactly the limit; the window ends 40 s from now' },
    { at: 30_000, op: 'consume', cost: 1, expect: no(0, 30_000, 30_000), why: '5 + 1 > 5: wait for the window to end at 60 000' },
    { at: 45_000, op: 'consume', cost: 6, expect: no(0, 15_000, Infinity), why: 'cost 6 above the limit 5: never' },
    { at: 59_999, op: 'peek', cost: 1, expect: no(0, 1, 1), why: '1 ms before the window ends it is still full' },
    { at: 60_000, op: 'consume', cost: 1, expect: yes(4, 60_000), why: 'at 0 + 60 000 the window is over: a new one starts now, 1 spent' },
    { at: 90_000, op: 'peek', cost: 5, expect: no(4, 30_000, 30_000), why: '1 + 5 > 5 with 4 left: the whole cost must wait for the window end at 120 000' },
    { at: 90_000, op: 'consume', cost: 4, expect: yes(0, 30_000), why: '1 + 4 = 5: allowed, the last 4' },
    {
      at: 200_000,
      op: 'consume',
      cost: 6,
      expect: no(5, 60_000, Infinity),
      why: 'the window ended at 120 000: a fresh one would have 5 and end in 60 s, but 6 > 5 never passes (and starts nothing)',
    },
    { at: 230_000, op: 'peek', cost: 1, expect: yes(5, 60_000), why: 'no window running (the denial started none): a fresh key, all 5 left, a full window ahead' },
  ],
};

// Sliding window, 10 per 60 s: windows [60 000k, 60 000(k + 1)) after ORIGIN; used = current +
// ceil(previous × (60 000 − elapsed) / 60 000); resetMs until the current window ends (0 with
// nothing counted).
const sliding: KnownTable = {
  name: 'slidingWindow 10 per 60 s',
  policy: slidingWindow({ limit: 10, windowMs: 60_000 }),
  steps: [
    { at: 10_000, op: 'consume', cost: 4, expect: yes(6, 50_000), why: 'window [0, 60 000) holds 4 of 10; it ends in 50 s' },
    { at: 40_000, op: 'consume', cost: 6, expect: yes(0, 20_000), why: '4 + 6 = 10, exactly the limit' },
    {
      at: 50_000,
      op: 'consume',
      cost: 1,
      expect: no(0, 10_000, 16_000),
      why: 'current window alone is full: next window, the previous 10 weigh ceil(10 × (60 000 − x) / 60 000) ≤ 9 from x = 6 000, i.e. at 66 000 = 16 s from now',
    },
    { at: 66_000, op: 'consume', cost: 1, expect: yes(0, 54_000), why: '6 s into [60 000, 120 000): previous 10 weigh ceil(10 × 54/60) = 9; 9 + 1 = 10 allowed' },
    {
      at: 80_000,
      op: 'peek',
      cost: 3,
      expect: no(2, 40_000, 4_000),
      why: '20 s in: 1 + ceil(10 × 40/60 = 6.67) = 8 used, 8 + 3 > 10; at 24 s in the previous weighs ceil(10 × 36/60) = 6, 1 + 6 + 3 = 10: 4 s from now',
    },
    { at: 84_000, op: 'consume', cost: 3, expect: yes(0, 36_000), why: '24 s in: 1 + 6 used, + 3 = 10 allowed; current window now holds 4' },
    { at: 90_000, op: 'consume', cost: 11, expect: no(1, 30_000, Infinity), why: 'cost 11 above the limit 10: never; 4 + ceil(10 × 30/60) = 9 used, 1 left' },
    { at: 150_000, op: 'consume', cost: 8, expect: yes(0, 30_000), why: "30 s into [120 000, 180 000): the previous window's 4 weigh ceil(4 × 30/60) = 2; 2 + 8 = 10" },
    {
      at: 300_000,
      op: 'peek',
      cost: 1,
      expect: yes(10, 0),
      why: 'in [300 000, 360 000) the last counted window [120 000, 180 000) is two windows back: nothing counts, resetMs 0',
    },
    { at: 300_000, op: 'consume', cost: 10, expect: yes(0, 60_000), why: 'all 10 at the start of a window: it ends in a full 60 s' },
  ],
};

// Token bucket, capacity 10, 3 tokens every 200 000 ms (one every 66 666.67 ms, counted exactly in
// token-ms: a token is 200 000 of credit, each ms adds 3); starts full; resetMs until full.
const bucket: KnownTable = {
  name: 'tokenBucket capacity 10, 3 per 200 000 ms',
  policy: tokenBucket({ capacity: 10, tokens: 3, intervalMs: 200_000 }),
  steps: [
    { at: 0, op: 'consume', cost: 4, expect: yes(6, 266_667), why: 'full bucket, 4 taken: 4 × 200 000 / 3 = 266 666.67 ms to refill, rounded up' },
    { at: 0, op: 'consume', cost: 6, expect: yes(0, 666_667), why: 'the other 6: empty, 10 × 200 000 / 3 = 666 666.67 ms to refill' },
    {
      at: 50_000,
      op: 'consume',
      cost: 1,
      expect: no(0, 616_667, 16_667),
      why: '50 000 ms × 3 = 150 000 credit, no whole token; 1 needs 50 000 more: 16 666.67 ms; full in (2 000 000 − 150 000) / 3 = 616 666.67',
    },
    {
      at: 66_666,
      op: 'consume',
      cost: 1,
      expect: no(0, 600_001, 1),
      why: '66 666 × 3 = 199 998 credit: 2 short of a token, ceil(2 / 3) = 1 ms; full in (2 000 000 − 199 998) / 3 = 600 000.67',
    },
    { at: 66_667, op: 'consume', cost: 1, expect: yes(0, 666_667), why: '66 667 × 3 = 200 001: 1 token (spent) and 1 credit left; full in (2 000 000 − 1) / 3 = 666 666.33' },
    { at: 400_000, op: 'peek', cost: 5, expect: yes(5, 333_334), why: '333 333 ms × 3 + 1 = 1 000 000 credit = exactly 5 tokens; 5 more take 333 333.33 ms' },
    { at: 400_000, op: 'consume', cost: 11, expect: no(5, 333_334, Infinity), why: 'cost 11 above the capacity 10: never' },
    { at: 400_000, op: 'consume', cost: 6, expect: no(5, 333_334, 66_667), why: '5 tokens, 6 wanted: one more token in 200 000 / 3 = 66 666.67 ms' },
    { at: 400_000, op: 'consume', cost: 5, expect: yes(0, 666_667), why: 'all 5: empty, with no credit' },
    { at: 2_000_000, op: 'peek', cost: 1, expect: yes(10, 0), why: '1 600 000 ms since empty, more than the 666 667 to fill: full, capped at 10' },
    { at: 2_000_000, op: 'consume', cost: 10, expect: yes(0, 666_667), why: 'the whole capacity at once' },
  ],
};

// Leaky bucket (GCRA), burst 5, draining 3 requests every 200 000 ms: a request adds 200 000 to the
// backlog (in token-ms), which drains 3 per ms; a request of cost n passes while the backlog is at
// most (5 − n) × 200 000. resetMs: until the backlog is drained; remaining: whole requests that
// fit under the tolerance 1 000 000.
const leaky: KnownTable = {
  name: 'leakyBucket burst 5, 3 per 200 000 ms',
  policy: leakyBucket({ burst: 5, tokens: 3, intervalMs: 200_000 }),
  steps: [
    { at: 0, op: 'consume', cost: 2, expect: yes(3, 133_334), why: 'backlog 0 → 400 000: drains in 133 333.33 ms; 600 000 of tolerance left = 3 requests' },
    { at: 0, op: 'consume', cost: 3, expect: yes(0, 333_334), why: '400 000 ≤ 1 000 000 − 3 × 200 000: backlog 1 000 000, the whole burst, drains in 333 333.33 ms' },
    { at: 0, op: 'consume', cost: 1, expect: no(0, 333_334, 66_667), why: 'backlog 1 000 000 must drain to 800 000: 200 000 / 3 = 66 666.67 ms' },
    {
      at: 66_666,
      op: 'consume',
      cost: 1,
      expect: no(0, 266_668, 1),
      why: '66 666 × 3 = 199 998 drained: 800 002 left, 2 above 800 000, ceil(2 / 3) = 1 ms; drained in 266 667.33',
    },
    { at: 66_667, op: 'consume', cost: 1, expect: yes(0, 333_333), why: '200 001 drained: 799 999 ≤ 800 000, allowed; backlog 999 999 drains in exactly 333 333 ms' },
    {
      at: 200_000,
      op: 'peek',
      cost: 2,
      expect: yes(2, 200_000),
      why: '133 333 ms later the backlog is 999 999 − 399 999 = 600 000 ≤ 1 000 000 − 2 × 200 000: 2 fit, drained in 200 000 ms',
    },
    { at: 200_000, op: 'consume', cost: 6, expect: no(2, 200_000, Infinity), why: 'cost 6 above the burst 5: never' },
    { at: 200_000, op: 'consume', cost: 3, expect: no(2, 200_000, 66_667), why: 'backlog 600 000 must drain to 400 000 for 3: 200 000 / 3 = 66 666.67 ms' },
    { at: 1_000_000, op: 'peek', cost: 1, expect: yes(5, 0), why: 'the backlog drained at 400 000: empty, the whole burst of 5' },
    { at: 1_000_000, op: 'consume', cost: 5, expect: yes(0, 333_334), why: 'the whole burst at once: backlog 1 000 000, 333 333.33 ms to drain' },
  ],
};

export const knownAnswers: readonly KnownTable[] = [fixed, sliding, bucket, leaky];
