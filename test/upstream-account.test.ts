// Several processes on one upstream account (limitedFetch's `upstream` with a shared store),
// against a strict upstream on loopback: at most 5 requests arriving in any 1,000 ms and 2 in
// flight, 0-40 ms of network delay each way. Real worker processes, each running the built package.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Limiter, RedisLimiter, destroySharedMemory, fixedWindow, sharedMemory } from '../src/index.js';
import { destroySharedPlaces } from '../src/client-entry.js';
import { StrictUpstream } from '../scripts/mock-upstream.mjs';
import { engines } from './helpers/engines.js';
import { hasRedis, startRedis } from './helpers/redis.js';

const child = fileURLToPath(new URL('./fixtures/upstream-account-child.mjs', import.meta.url));
const LIMIT = 5;
const WINDOW_MS = 1000;
const CONCURRENCY = 2;

const strictUpstream = () => new StrictUpstream({ limit: LIMIT, windowMs: WINDOW_MS, concurrency: CONCURRENCY, answerMs: 20 });

interface WorkerReport {
  readonly statuses: (number | string)[];
  readonly closed: string[];
  /** [sent, answered] per request, ms since the epoch. */
  readonly holds: [number, number][];
}

/**
 * The share of the quota the workers used, with each request's own round trip counted as used:
 * every request holds a place from its send until WINDOW_MS after its answer, so a client that
 * never leaves a place idle while it has work scores near 1 however slow the machine makes the
 * round trips. (The plain share of the quota, which a loaded machine's round trips lower, is the
 * client suite's figure in bench/RESULTS.md: 93.7-93.8%.)
 */
function placeUse(reports: WorkerReport[]): number {
  const holds = reports.flatMap((r) => r.holds);
  const first = Math.min(...holds.map(([sent]) => sent));
  const last = Math.max(...holds.map(([, answered]) => answered)) + WINDOW_MS;
  const used = holds.reduce((sum, [sent, answered]) => sum + (answered - sent) + WINDOW_MS, 0);
  return used / (LIMIT * (last - first));
}

function worker(args: string[]): { proc: ChildProcess; report: Promise<WorkerReport>; line: Promise<string> } {
  const proc = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let firstLine: (line: string) => void = () => undefined;
  const line = new Promise<string>((r) => (firstLine = r));
  proc.stdout?.on('data', (d) => {
    out += d;
    if (out.includes('\n')) firstLine(out.split('\n')[0] as string);
  });
  proc.stderr?.on('data', (d) => (err += d));
  const report = new Promise<WorkerReport>((resolve, reject) => {
    proc.on('exit', (code, signal) => {
      if (code === 0) resolve(JSON.parse(out.trim()) as WorkerReport);
      else reject(new Error(`worker exited ${code ?? signal}: ${err}`));
    });
  });
  return { proc, report, line };
}

const exited = (proc: ChildProcess) => new Promise((r) => (proc.exitCode !== null || proc.signalCode !== null ? r(undefined) : proc.once('exit', r)));

/** Every request answered 200, the late ones either sent or refused as closed; returns how many of the first (with tokens) were sent. */
function checkReports(reports: WorkerReport[], requests: number): number {
  let sent = 0;
  for (const report of reports) {
    expect(report.statuses).toEqual(Array(requests).fill(200));
    for (const code of report.closed) expect(['sent', 'TOLLGATE_CLOSED']).toContain(code);
    sent += requests;
  }
  return sent;
}

describe.runIf(engines().includes('native'))('one account, four processes on shared memory', () => {
  const name = `acct-${process.pid}`;
  const cleanup = () => {
    destroySharedMemory(`${name}-tpm`);
    for (const n of [name, `${name}-k`]) destroySharedPlaces(n);
  };
  beforeAll(cleanup);
  afterAll(cleanup);

  it('zero 429s, at most 2 in flight, places in use at least 80% of the time; tokens estimated before and settled after, across processes', async () => {
    const upstream = strictUpstream();
    const url = await upstream.listen();
    try {
      const workers = [1, 2, 3, 4].map((seed) => worker([url, 'shm', name, '10', '0', '5000', 'run', String(seed)]));
      const reports = await Promise.all(workers.map((w) => w.report));
      const sent = checkReports(reports, 10);
      expect(upstream.tooMany).toBe(0);
      expect(upstream.mostInFlight).toBeLessThanOrEqual(CONCURRENCY);
      expect(placeUse(reports)).toBeGreaterThanOrEqual(0.8);
      // Every worker charged 15 before each request and settled it to the 8 used.
      const tokens = new Limiter({ policy: fixedWindow({ limit: 400, windowMs: 120_000 }), store: sharedMemory({ name: `${name}-tpm`, capacity: 16 }) });
      expect(tokens.peek('default').remaining).toBe(400 - 8 * sent);
      tokens.close();
    } finally {
      await upstream.close();
    }
  });

  it('a process killed while holding places: the others get them back at once (its pid is gone)', async () => {
    const upstream = strictUpstream();
    const url = await upstream.listen();
    try {
      // The killed worker's lease is long (60 s): only the pid check can give its places back in this test's time.
      const holder = worker([url, 'shm', `${name}-k`, '2', '0', '60000', 'hang', '9']);
      holder.report.catch(() => undefined); // it is killed: its exit is no failure
      await holder.line;
      while (upstream.hung < 2) await new Promise((r) => setTimeout(r, 10));
      holder.proc.kill('SIGKILL');
      await exited(holder.proc);
      // The upstream sees the dead worker's connections close (as a real one would) before anyone else sends.
      while (upstream.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
      const other = worker([url, 'shm', `${name}-k`, '4', '0', '60000', 'run', '10']);
      const report = await other.report;
      checkReports([report], 4);
      expect(upstream.tooMany).toBe(0);
    } finally {
      await upstream.close();
    }
  });
});

describe.runIf(hasRedis)('one account, two processes on Redis', () => {
  let server: Awaited<ReturnType<typeof startRedis>>;
  let redis: Redis;
  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis({ host: server.host, port: server.port });
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('zero 429s, at most 2 in flight, places in use at least 80% of the time; tokens settled across processes', async () => {
    const upstream = strictUpstream();
    const url = await upstream.listen();
    try {
      const workers = [1, 2].map((seed) => worker([url, 'redis', 'acct', '10', String(server.port), '5000', 'run', String(seed)]));
      const reports = await Promise.all(workers.map((w) => w.report));
      const sent = checkReports(reports, 10);
      expect(upstream.tooMany).toBe(0);
      expect(upstream.mostInFlight).toBeLessThanOrEqual(CONCURRENCY);
      expect(placeUse(reports)).toBeGreaterThanOrEqual(0.8);
      const tokens = new RedisLimiter({ redis, name: 'acct-tpm', policy: fixedWindow({ limit: 400, windowMs: 120_000 }), timeoutMs: 5000, onError: 'deny', denyCache: false });
      expect((await tokens.peek('default')).remaining).toBe(400 - 8 * sent);
      tokens.close();
    } finally {
      await upstream.close();
    }
  });

  it('a process killed while holding places: the other proceeds once its lease (1 s) lapses by Redis’ clock', async () => {
    const upstream = strictUpstream();
    const url = await upstream.listen();
    try {
      const holder = worker([url, 'redis', 'acct-k', '2', String(server.port), '1000', 'hang', '9']);
      holder.report.catch(() => undefined); // it is killed: its exit is no failure
      await holder.line;
      while (upstream.hung < 2) await new Promise((r) => setTimeout(r, 10));
      holder.proc.kill('SIGKILL');
      await exited(holder.proc);
      // The upstream sees the dead worker's connections close (as a real one would) before anyone else sends.
      while (upstream.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
      const other = worker([url, 'redis', 'acct-k', '4', String(server.port), '1000', 'run', '10']);
      checkReports([await other.report], 4);
      expect(upstream.tooMany).toBe(0);
    } finally {
      await upstream.close();
    }
  });
});
