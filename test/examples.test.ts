// The examples run as a user would run them, against real sockets on loopback.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../scripts/local-redis.mjs';
import { engines } from './helpers/engines.js';
import { hasRedis, startRedis } from './helpers/redis.js';

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
      execFile(process.execPath, [fileURLToPath(new URL('../examples/upstream-client.mjs', import.meta.url))], (error, stdout) => (error ? reject(error) : resolve(stdout))),
    );
    expect(output).toMatch(/^300 of 300 succeeded in .* upstream 429s: 0\n$/);
  });
});

/** Runs an example to its end; resolves with what it printed. */
async function run(example: string, env: Record<string, string> = {}): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise<string>((resolve, reject) =>
    execFile(process.execPath, [fileURLToPath(new URL(`../examples/${example}`, import.meta.url))], { env: { ...process.env, ...env } }, (error, stdout, stderr) =>
      error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

describe.runIf(engines().includes('native'))('examples/cluster-client.mjs', () => {
  it('four workers share one account of 5 per second and 2 in flight: every request succeeds, no 429', async () => {
    const output = await run('cluster-client.mjs', { WORKERS: '4', REQUESTS: '5' });
    expect(output).toMatch(/^20 of 20 succeeded in .* from 4 workers \(quota 5\/s\), upstream 429s: 0\n$/);
  });
});

describe.runIf(hasRedis)('examples/redis-hosts-client.mjs', () => {
  it('two hosts share one account through Redis: every request succeeds, no 429', async () => {
    const server = await startRedis();
    try {
      const output = await run('redis-hosts-client.mjs', { REDIS_URL: `redis://127.0.0.1:${server.port}`, REQUESTS: '6' });
      expect(output).toMatch(/^12 of 12 succeeded in .* from 2 hosts \(quota 5\/s\), upstream 429s: 0\n$/);
    } finally {
      await server.stop();
    }
  });
});
