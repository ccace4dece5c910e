// On a refusal the reset headers say when the quota is back: never before Retry-After, so a client
// that waits for the reset and sends again gets through, with every algorithm and framework.
// Regression: a sliding window's reset was the end of its current window (5 s) while the next
// request could pass only at retryAfterMs (5.6 s): clients that waited for the reset looped on 429s.
import { describe, expect, it } from 'vitest';
import { fixedWindow, leakyBucket, Limiter, ManualClock, slidingWindow, tokenBucket, type Policy } from '../src/index.js';
import type { HeaderFormat } from '../src/http-entry.js';
import { frameworks, get } from './helpers/frameworks.js';

const policies: [string, Policy][] = [
  ['fixedWindow', fixedWindow({ limit: 2, windowMs: 10_000 })],
  ['slidingWindow', slidingWindow({ limit: 2, windowMs: 10_000 })],
  ['tokenBucket', tokenBucket({ capacity: 2, tokens: 1, intervalMs: 3_000 })],
  ['leakyBucket', leakyBucket({ burst: 2, tokens: 1, intervalMs: 3_000 })],
];

/** The reset each format sends, in seconds from now (legacy's Unix time made relative to `sentAtS`). */
function resets(headers: Headers, sentAtS: number): number[] {
  const found: number[] = [];
  const legacy = headers.get('x-ratelimit-reset');
  if (legacy !== null) found.push(Number(legacy) - sentAtS);
  const draft6 = headers.get('ratelimit-reset');
  if (draft6 !== null) found.push(Number(draft6));
  const draft8 = /;t=(\d+)/.exec(headers.get('ratelimit') ?? '');
  if (draft8 !== null) found.push(Number(draft8[1]));
  return found;
}

describe.each(frameworks)('%s', (_name, start) => {
  it.each(policies)('%s: a 429 says a reset no earlier than Retry-After, and a client that waits for it gets through', async (_kind, policy) => {
    for (const formats of [
      ['legacy', 'draft-6'],
      ['legacy', 'draft-8'],
    ] as HeaderFormat[][]) {
      const clock = new ManualClock(0);
      const limiter = new Limiter({ policy, clock, capacity: 1000 });
      const url = await start({ limiter, headers: formats, keyOfUrl: (path) => path });
      // Each client spends its allowance at a different point of the window, then asks once more.
      for (const [client, at] of [
        ['/a', 0],
        ['/b', 3_700],
        ['/c', 9_950],
      ] as const) {
        clock.set(at + 20_000 * (client.charCodeAt(1) - 97));
        expect((await get(`${url}${client}`)).status).toBe(200);
        expect((await get(`${url}${client}`)).status).toBe(200);
        clock.advance(100);
        // Legacy's reset is Unix time from the real clock, whole seconds, rounded up: taken before
        // the request, its floor is no later than the server's now.
        const sentAtS = Math.floor(Date.now() / 1000);
        const refused = await get(`${url}${client}`);
        expect(refused.status).toBe(429);
        const retryAfterS = Number(refused.headers.get('retry-after'));
        expect(retryAfterS).toBeGreaterThan(0);
        const shown = resets(refused.headers, sentAtS);
        expect(shown).toHaveLength(2);
        for (const reset of shown) expect(reset).toBeGreaterThanOrEqual(retryAfterS);
        expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
        // The client waits for the draft header's reset, then sends: allowed.
        clock.advance((shown[1] as number) * 1000);
        expect((await get(`${url}${client}`)).status).toBe(200);
      }
    }
  });
});
