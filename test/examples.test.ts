// The examples run as a user would run them, against real sockets on loopback.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../scripts/local-redis.mjs';

const children: ReturnType<typeof spawn>[] = [];
afterAll(() => {
  for (const child of children) child.kill();
});

/** Starts an example; resolves with its URL once `listeners` processes say they listen. */
function start(example: string, env: Record<string, string> = {}, listeners = 1): Promise<string> {
  const child = spawn(process.execPath, [fileURLToPath(new URL(`../examples/${example}`, import.meta.url))], {
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let seen = 0;
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${example} exited with ${code}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      for (const match of chunk.toString().matchAll(/listening on (\S+)/g)) {
        if (++seen === listeners) resolve(match[1] as string);
      }
    });
  });
}

describe('examples/http-server.mjs', () => {
  it('allows a burst of 5 per client, then answers 429 with Retry-After', async () => {
    const url = await start('http-server.mjs');
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 7; i++) {
      last = await fetch(url);
      statuses.push(last.status);
      await last.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(last?.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(last?.headers.get('retry-after'))).toBeLessThanOrEqual(2);
  });
});

describe('examples/cluster-server.mjs', () => {
  it('every worker enforces one per-IP limit: 10 of 30 requests pass, served by several workers', async () => {
    const port = await freePort();
    const url = await start('cluster-server.mjs', { PORT: String(port), WORKERS: '3' }, 3);
    const statuses: number[] = [];
    const servedBy = new Set<string>();
    for (let i = 0; i < 30; i++) {
      // A new connection each time, so the primary spreads them over the workers.
      const response = await fetch(url, { headers: { connection: 'close' } });
      statuses.push(response.status);
      servedBy.add(response.headers.get('x-served-by') ?? '');
      await response.arrayBuffer();
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.slice(0, 10).every((s) => s === 200)).toBe(true);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20);
    expect(servedBy.size).toBeGreaterThan(1);
  });
});

describe('examples/upstream-client.mjs', () => {
  it('sends 300 requests at 98% of the upstream quota with no 429', async () => {
    const { execFile } = await import('node:child_process');
    const output = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [fileURLToPath(new URL('../examples/upstream-client.mjs', import.meta.url))], (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      ),
    );
    expect(output).toMatch(/^300 of 300 succeeded in .* upstream 429s: 0\n$/);
  });
});
