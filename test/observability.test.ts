// Counters, heavy hitters, Prometheus output and the CLI, against real tables and processes.
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import * as promClient from 'prom-client';
import { describe, expect, it } from 'vitest';
import { destroySharedMemory, fixedWindow, inspectSharedMemory, Limiter, ManualClock, sharedMemory, slidingWindow } from '../src/index.js';
import { rateLimit } from '../src/http-entry.js';
import { denialLogger, metricsHandler, registerPrometheus, toPrometheus } from '../src/metrics-entry.js';
import { engines, seededRandom } from './helpers/engines.js';
import { listen } from './helpers/listen.js';

describe.each(engines())('%s engine: counters', (engine) => {
  it('count exactly the decisions made: allowed, denied by limit and by block, near the limit', () => {
    const clock = new ManualClock(0);
    const limiter = new Limiter({ policy: slidingWindow({ limit: 10, windowMs: 1000 }), engine, clock, capacity: 10_000 });
    const random = seededRandom(3);
    const expected = { allowed: 0, denied: 0, deniedBlocked: 0, nearLimit: 0 };
    const blockedUntil = new Map<string, number>();
    for (let i = 0; i < 50_000; i++) {
      const key = `k${Math.floor(random() * 50)}`;
      const r = random();
      if (r < 0.01) {
        limiter.block(key, 500);
        blockedUntil.set(key, Math.max(blockedUntil.get(key) ?? 0, clock.now() + 500));
        continue;
      }
      if (r < 0.05) {
        limiter.peek(key);
        continue;
      }
      if (r < 0.2) clock.advance(Math.floor(random() * 50));
      const blocked = clock.now() < (blockedUntil.get(key) ?? 0);
      const d = limiter.consume(key, 1 + Math.floor(random() * 2));
      if (d.allowed) {
        expected.allowed++;
        if (d.remaining * 5 <= d.limit) expected.nearLimit++;
      } else if (blocked) expected.deniedBlocked++;
      else expected.denied++;
    }
    expect(limiter.stats()).toMatchObject(expected);
  });
});

describe.each(engines())('%s engine: heavy hitters', (engine) => {
  it('finds the planted heavy keys in a Zipf trace of 1,000,000 requests, within the error bound', () => {
    const limiter = new Limiter({ policy: fixedWindow({ limit: 1000, windowMs: 3_600_000 }), engine, topKeys: true, clock: new ManualClock(0), capacity: 200_000 });
    const random = seededRandom(11);
    // Zipf(1.0) over 100,000 background keys, by inverse transform on the harmonic numbers.
    const n = 100_000;
    const harmonic = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) harmonic[i] = sum += 1 / (i + 1);
    const zipf = () => {
      const u = random() * sum;
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((harmonic[mid] as number) < u) lo = mid + 1;
        else hi = mid;
      }
      return `user:${lo}`;
    };
    const planted = ['abuser:1', 'abuser:2', 'abuser:3', 'abuser:4', 'abuser:5'];
    const truth = new Map<string, number>();
    for (let i = 0; i < 1_000_000; i++) {
      const key = random() < 0.5 ? (planted[Math.floor(random() * planted.length)] as string) : zipf();
      truth.set(key, (truth.get(key) ?? 0) + 1);
      limiter.tryConsume(key);
    }
    const top = limiter.topKeys(5);
    expect(new Set(top.map((t) => t.key))).toEqual(new Set(planted));
    for (const t of limiter.topKeys(20)) {
      const real = truth.get(t.key) as number;
      expect(t.count).toBeGreaterThanOrEqual(real);
      expect(t.count - t.error).toBeLessThanOrEqual(real);
    }
    // Each abuser made ~100,000 requests against a limit of 1,000: they lead the denials too.
    expect(new Set(limiter.topKeys(5, 'denials').map((t) => t.key))).toEqual(new Set(planted));
    expect(() => new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 1 }), engine }).topKeys()).toThrow(/topKeys/);
  });

  it('halves counts every period, so they describe recent traffic', () => {
    const clock = new ManualClock(0);
    const limiter = new Limiter({ policy: fixedWindow({ limit: 1e6, windowMs: 3_600_000 }), engine, topKeys: { periodMs: 1000 }, clock });
    for (let i = 0; i < 400; i++) limiter.tryConsume('old');
    clock.set(2000);
    for (let i = 0; i < 150; i++) limiter.tryConsume('new');
    expect(limiter.topKeys(2).map((t) => [t.key, t.count])).toEqual([
      ['new', 150],
      ['old', 100],
    ]);
  });
});

describe('Prometheus', () => {
  const limiter = new Limiter({ name: 'api "v1"', policy: fixedWindow({ limit: 3, windowMs: 60_000 }), clock: new ManualClock(0) });
  for (let i = 0; i < 5; i++) limiter.tryConsume('k');
  limiter.block('b', 1000);
  limiter.tryConsume('b');

  it('writes the text exposition format with the counters as they are', () => {
    const text = toPrometheus(limiter);
    const lines = text.trimEnd().split('\n');
    const seen = new Set<string>();
    for (const line of lines) {
      if (line.startsWith('# HELP ')) continue;
      const type = /^# TYPE (\w+) (counter|gauge)$/.exec(line);
      if (type) {
        expect(seen.has(type[1] as string)).toBe(false);
        seen.add(type[1] as string);
        continue;
      }
      // name{label="value",...} number, with every label value escaped.
      expect(line).toMatch(/^[a-z_]+\{([a-z_]+="(?:[^"\\\n]|\\.)*",?)+\} -?\d+(\.\d+)?(e-?\d+)?$/);
      expect(seen.has(line.slice(0, line.indexOf('{')))).toBe(true);
    }
    expect(text).toContain('tollgate_decisions_total{limiter="api \\"v1\\"",store="memory",outcome="allowed"} 3');
    expect(text).toContain('outcome="denied_limit"} 2');
    expect(text).toContain('outcome="denied_block"} 1');
    expect(text).toContain('tollgate_table_entries{limiter="api \\"v1\\"",store="memory"} 2');
  });

  it('registers with a prom-client registry, read at each scrape', async () => {
    const registry = new promClient.Registry();
    registerPrometheus(promClient, registry, limiter);
    const first = await registry.getSingleMetricAsString('tollgate_decisions_total');
    expect(first).toContain('outcome="allowed"} 3');
    limiter.tryConsume('fresh');
    const json = await registry.getMetricsAsJSON();
    const decisions = json.find((m) => m.name === 'tollgate_decisions_total') as { values: { labels: Record<string, string>; value: number }[] };
    expect(decisions.values.find((v) => v.labels.outcome === 'allowed')?.value).toBe(4);
    expect((await registry.metrics()).length).toBeGreaterThan(0);
  });
});

describe.runIf(engines().includes('native'))('shared tables: host-wide counters and the CLI', () => {
  it('counts every process’s decisions exactly, and the CLI reports them', async () => {
    const name = `obs-${process.pid}`;
    destroySharedMemory(name);
    const child = fileURLToPath(new URL('./fixtures/shm-child.mjs', import.meta.url));
    destroySharedMemory(`${name}-barrier`);
    try {
      const results = await Promise.all(
        Array.from(
          { length: 4 },
          () =>
            new Promise<number[]>((resolve, reject) => {
              const proc = spawn(process.execPath, [child, 'hammer', name, 'perKey', '20', '2000', '4'], { stdio: ['ignore', 'pipe', 'inherit'] });
              let out = '';
              proc.stdout.on('data', (d) => (out += d));
              proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out).counts as number[]) : reject(new Error(`exit ${code}`))));
            }),
        ),
      );
      const allowed = results.flat().reduce((a, b) => a + b, 0);
      expect(allowed).toBe(20 * 50);
      const report = inspectSharedMemory(name);
      expect(report.stats).toMatchObject({ allowed, denied: 8000 - allowed, deniedBlocked: 0, entries: 20 });
      const limiter = new Limiter({ policy: fixedWindow({ limit: 50, windowMs: 3_600_000 }), store: sharedMemory({ name, capacity: 10_000 }) });
      expect(limiter.stats()).toMatchObject({ allowed, denied: 8000 - allowed });

      const cli = fileURLToPath(new URL('../bin/tollgate.mjs', import.meta.url));
      const json = JSON.parse(execFileSync(process.execPath, [cli, 'inspect', name, '--json'], { encoding: 'utf8' }));
      expect(json).toMatchObject({ name, capacity: 10_000, evict: true, policy: { kind: 'fixedWindow', limit: 50, windowMs: 3_600_000 }, stats: { allowed, entries: 20 } });
      expect(json.stats.slots).toBeGreaterThanOrEqual(10_000);
      expect(report.policy).toEqual(fixedWindow({ limit: 50, windowMs: 3_600_000 }));
      const text = execFileSync(process.execPath, [cli, 'inspect', name], { encoding: 'utf8' });
      expect(text).toContain(`tollgate table '${name}'`);
      expect(text).toContain('fixedWindow 50 per 3600000 ms');
      expect(text).toContain('decisions   8,000');
      limiter.close();
      expect(() => execFileSync(process.execPath, [cli, 'inspect', 'missing-table'], { stdio: 'pipe' })).toThrow(/no shared memory segment/);
      expect(() => execFileSync(process.execPath, [cli, 'bogus'], { stdio: 'pipe' })).toThrow(/unknown command 'bogus'/);
    } finally {
      destroySharedMemory(name);
      destroySharedMemory(`${name}-barrier`);
    }
  });
});

describe('denial logs and the metrics endpoint', () => {
  it('passes at most maxPerSecond denials per second, counting the rest', () => {
    const records: { key: string; suppressed: number }[] = [];
    const clock = new ManualClock(0);
    const log = denialLogger({ log: (r) => records.push({ key: r.key, suppressed: r.suppressed }), maxPerSecond: 3, clock });
    const decision = { allowed: false, limit: 1, remaining: 0, resetMs: 10, retryAfterMs: 10 };
    for (let i = 0; i < 1000; i++) log({ key: `k${i}`, decision });
    expect(records).toEqual([
      { key: 'k0', suppressed: 0 },
      { key: 'k1', suppressed: 0 },
      { key: 'k2', suppressed: 0 },
    ]);
    clock.set(999);
    log({ key: 'still', decision });
    expect(records).toHaveLength(3);
    clock.set(1000);
    log({ key: 'later', decision });
    expect(records.at(-1)).toEqual({ key: 'later', suppressed: 998 });
  });

  it('serves /metrics from an express app', async () => {
    const { default: express } = await import('express');
    const limiter = new Limiter({ name: 'web', policy: fixedWindow({ limit: 1, windowMs: 60_000 }) });
    const app = express();
    app.get('/metrics', metricsHandler(limiter));
    app.get('/', rateLimit({ limiter }), (_req: unknown, res: { send(b: string): void }) => res.send('ok'));
    const base = await listen(createServer(app));
    await fetch(base);
    await fetch(base);
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await metrics.text();
    expect(text).toContain('tollgate_decisions_total{limiter="web",store="memory",outcome="allowed"} 1');
    expect(text).toContain('tollgate_decisions_total{limiter="web",store="memory",outcome="denied_limit"} 1');
  });
});
