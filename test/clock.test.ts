// The monotonic clock every process reads for shared tables and shared places: each fresh process
// must read CLOCK_MONOTONIC's millisecond exactly, or processes disagree on when a window ends or
// a place frees (a process started on a busy host read 1-10 ms behind, and let requests out early).
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const clockModule = new URL('../dist/common/clock.js', import.meta.url).href;
const probe = `
import { monotonicMs } from ${JSON.stringify(clockModule)};
const lags = [];
for (let i = 0; i < 200; i++) {
  const ms = monotonicMs();
  const after = Number(process.hrtime.bigint()) / 1e6;
  const before = Number(process.hrtime.bigint()) / 1e6;
  lags.push([Math.floor(before) >= ms || Math.floor(after) >= ms, after - ms]);
}
process.stdout.write(JSON.stringify(lags));
`;

const run = () =>
  new Promise<[boolean, number][]>((resolve, reject) =>
    execFile(process.execPath, ['--input-type=module', '-e', probe], (error, stdout) => (error ? reject(error) : resolve(JSON.parse(stdout) as [boolean, number][]))),
  );

describe('monotonicMs in a fresh process', () => {
  it('is CLOCK_MONOTONIC floored to the millisecond: never ahead, never a whole millisecond behind', async () => {
    // Several at once, so that each starts on a busy host.
    const results = await Promise.all(Array.from({ length: 6 }, run));
    for (const lags of results) {
      for (const [notAhead] of lags) expect(notAhead).toBe(true);
      // The offset is constant within a process; a sample descheduled between its two reads only
      // adds to it, so the smallest of 200 is the offset itself: under a millisecond.
      expect(Math.min(...lags.map(([, lag]) => lag))).toBeLessThan(1);
    }
  });
});
