// The HTTP middleware on real express and fastify servers on loopback, exercised with real fetch.
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { Socket, type AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { closeAfter, listen } from './helpers/listen.js';
import { allOf, fixedWindow, Limiter, ManualClock, RedisLimiter, type Decision } from '../src/index.js';
import { fastifyRateLimit, rateLimit, type FastifyRateLimitOptions, type NodeRateLimitOptions, type RateLimitEvent } from '../src/http-entry.js';

type Options = NodeRateLimitOptions & FastifyRateLimitOptions;
interface Route {
  path: string;
  config?: Partial<Options> | false;
}

async function startExpress(options: Partial<Options>, routes: Route[] = [{ path: '/' }]): Promise<string> {
  const app = express();
  for (const route of routes) {
    const handlers = [];
    if (route.config !== false) {
      const merged = { ...options, ...(route.config ?? {}) };
      if (merged.limiter !== undefined) handlers.push(rateLimit(merged as NodeRateLimitOptions));
    }
    app.get(route.path, ...handlers, (_req: unknown, res: { send(body: string): void }) => {
      res.send('ok');
    });
  }
  return listen(createServer(app));
}

async function startFastify(options: Partial<Options>, routes: Route[] = [{ path: '/' }]): Promise<string> {
  const app = Fastify();
  await app.register(fastifyRateLimit, options);
  for (const route of routes) {
    app.get(route.path, { config: route.config === undefined ? {} : { rateLimit: route.config } }, async () => 'ok');
  }
  await app.listen({ port: 0, host: '127.0.0.1' });
  closeAfter(() => app.close());
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

const frameworks = [
  ['express', startExpress],
  ['fastify', startFastify],
] as const;

const limiterOf = (limit: number, windowMs = 60_000, clock = new ManualClock(0)) => new Limiter({ policy: fixedWindow({ limit, windowMs }), clock, capacity: 10_000 });

async function get(url: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { headers });
  const body = await response.text();
  return { status: response.status, headers: response.headers, body };
}

describe.each(frameworks)('%s', (_name, start) => {
  it('sends each header format exactly', async () => {
    const expected = {
      legacy: (h: Headers) => {
        expect(h.get('x-ratelimit-limit')).toBe('5');
        expect(h.get('x-ratelimit-remaining')).toBe('4');
        const reset = Number(h.get('x-ratelimit-reset'));
        expect(Math.abs(reset - Math.ceil((Date.now() + 60_000) / 1000))).toBeLessThanOrEqual(2);
        expect(h.get('ratelimit')).toBeNull();
      },
      'draft-6': (h: Headers) => {
        expect(h.get('ratelimit-policy')).toBe('5;w=60');
        expect(h.get('ratelimit-limit')).toBe('5');
        expect(h.get('ratelimit-remaining')).toBe('4');
        expect(h.get('ratelimit-reset')).toBe('60');
        expect(h.get('x-ratelimit-limit')).toBeNull();
      },
      'draft-7': (h: Headers) => {
        expect(h.get('ratelimit-policy')).toBe('5;w=60');
        expect(h.get('ratelimit')).toBe('limit=5, remaining=4, reset=60');
      },
      'draft-8': (h: Headers) => {
        expect(h.get('ratelimit-policy')).toBe('"api";q=5;w=60');
        expect(h.get('ratelimit')).toBe('"api";r=4;t=60');
      },
    } as const;
    for (const [format, check] of Object.entries(expected)) {
      const url = await start({ limiter: limiterOf(5), headers: format as 'legacy', name: 'api' });
      const response = await get(url);
      expect(response.status).toBe(200);
      check(response.headers);
    }
    const none = await get(await start({ limiter: limiterOf(5), headers: false }));
    expect([...none.headers.keys()].filter((k) => k.includes('ratelimit'))).toEqual([]);
  });

  it('answers 429 with a problem body and Retry-After in whole seconds, rounded up', async () => {
    const clock = new ManualClock(0);
    const url = await start({ limiter: limiterOf(1, 1500, clock) });
    expect((await get(url)).status).toBe(200);
    clock.set(100);
    const denied = await get(url);
    expect(denied.status).toBe(429);
    expect(denied.headers.get('content-type')).toContain('application/problem+json');
    expect(denied.headers.get('retry-after')).toBe('2');
    expect(denied.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(denied.headers.get('ratelimit')).toBe('"default";r=0;t=2');
    expect(JSON.parse(denied.body)).toMatchObject({
      type: 'https://iana.org/assignments/http-problem-types#quota-exceeded',
      title: 'Too Many Requests',
      status: 429,
    });
  });

  it('600 concurrent requests against a limit of 100: exactly 100 pass', async () => {
    const url = await start({ limiter: limiterOf(100) });
    const statuses = await Promise.all(Array.from({ length: 600 }, () => fetch(url).then(async (r) => (await r.arrayBuffer(), r.status))));
    expect(statuses.filter((s) => s === 200)).toHaveLength(100);
    expect(statuses.filter((s) => s === 429)).toHaveLength(500);
  });

  it('groups IPv6 clients by /56 behind a trusted proxy', async () => {
    const url = await start({ limiter: limiterOf(1), trustProxy: ['loopback'] });
    const from = (ip: string) => get(url, { 'x-forwarded-for': `${ip}, 127.0.0.1` });
    expect((await from('2001:db8:1:2300::1')).status).toBe(200);
    expect((await from('2001:db8:1:23ff:ffff::2')).status).toBe(429);
    expect((await from('2001:db8:1:2400::1')).status).toBe(200);
    expect((await from('203.0.113.7')).status).toBe(200);
    expect((await from('203.0.113.8')).status).toBe(200);
    // RFC 7239 Forwarded, when the proxies write that header instead.
    const rfc = await start({ limiter: limiterOf(1), trustProxy: ['loopback'], forwardedHeader: 'forwarded' });
    expect((await get(rfc, { forwarded: 'for="[2001:db8:9::1]:4711";proto=https' })).status).toBe(200);
    expect((await get(rfc, { forwarded: 'for="[2001:db8:9::2]"' })).status).toBe(429);
  });

  it('a client’s own Forwarded header is not believed behind a proxy that appends X-Forwarded-For (regression)', async () => {
    const url = await start({ limiter: limiterOf(2), trustProxy: ['loopback'] });
    const statuses = [];
    // This test's loopback peer is the trusted proxy; it appended no X-Forwarded-For hop, so each
    // request is the proxy's own, whatever Forwarded claims.
    for (let n = 1; n <= 10; n++) statuses.push((await get(url, { forwarded: `for=198.51.100.${n}` })).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(2);
    // Hops that are not addresses count against the proxy that reported them: limited, not unlimited.
    const lenient = await start({ limiter: limiterOf(2), trustProxy: ['loopback'], forwardedHeader: 'forwarded', onMissingKey: 'allow' });
    const unknown = [];
    for (let n = 0; n < 5; n++) unknown.push((await get(lenient, { forwarded: 'for=unknown' })).status);
    expect(unknown).toEqual([200, 200, 429, 429, 429]);
  });

  it('errors on the asynchronous path (key, cost, skip, handler) answer 500; nothing is left unhandled (regression)', async () => {
    const boom = () => {
      throw new Error('boom');
    };
    const cases: Partial<Options>[] = [
      { limiter: limiterOf(1), key: async () => 'anon', handler: boom },
      { limiter: limiterOf(1), key: async () => 'anon', handler: async () => boom() },
      { limiter: limiterOf(1), key: async () => boom() },
      { limiter: limiterOf(1), cost: async () => boom() },
      { limiter: limiterOf(1), skip: async () => boom() },
      { limiter: limiterOf(1), handler: boom },
    ];
    for (const options of cases) {
      const url = await start(options);
      const statuses = [(await get(url)).status, (await get(url)).status];
      // The first request passes unless an option function failed; the denied one runs the handler.
      expect(statuses[1]).toBe(500);
    }
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    const url = await start({ limiter: limiterOf(2), trustProxy: ['10.0.0.0/8'] });
    const statuses = [];
    for (const ip of ['1.1.1.1', '2.2.2.2', '3.3.3.3']) statuses.push((await get(url, { 'x-forwarded-for': ip })).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('several policies on one route are all-or-nothing', async () => {
    const clock = new ManualClock(0);
    const perSecond = limiterOf(3, 1000, clock);
    const perHour = limiterOf(5, 3_600_000, clock);
    const url = await start({ limiter: [perSecond, perHour] });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await get(url)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    // The denied request spent nothing from the hourly limit.
    expect(perHour.peek('ip:127.0.0.1').remaining).toBe(2);
    clock.set(1000);
    const next = await get(url);
    expect(next.status).toBe(200);
    // The binding limit now is the hourly one (1 left of 5; the second has 2 of 3).
    expect(next.headers.get('x-ratelimit-remaining')).toBe('1');
    expect(next.headers.get('x-ratelimit-limit')).toBe('5');
  });

  it('with several limits the headers describe the one that binds, and draft-8 lists every policy (regression)', async () => {
    const clock = new ManualClock(0);
    const burst = limiterOf(10, 1000, clock);
    const hourly = limiterOf(1000, 3_600_000, clock);
    const url = await start({ limiter: [burst, hourly], name: ['burst', 'hourly'] });
    let last = await get(url);
    // Allowed: the limit with the least left is the burst (9 of 10).
    expect(last.headers.get('x-ratelimit-limit')).toBe('10');
    expect(last.headers.get('x-ratelimit-remaining')).toBe('9');
    expect(last.headers.get('ratelimit-policy')).toBe('"burst";q=10;w=1, "hourly";q=1000;w=3600');
    expect(last.headers.get('ratelimit')).toBe('"burst";r=9;t=1');
    for (let i = 0; i < 10; i++) last = await get(url);
    // The 11th in the second: denied by the burst, and every header says so, reset included.
    expect(last.status).toBe(429);
    expect(last.headers.get('retry-after')).toBe('1');
    expect(last.headers.get('x-ratelimit-limit')).toBe('10');
    expect(last.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(last.headers.get('x-ratelimit-reset')) - Math.ceil(Date.now() / 1000)).toBeLessThanOrEqual(2);
    expect(last.headers.get('ratelimit')).toBe('"burst";r=0;t=1');
    burst.close();
    hourly.close();
  });

  it('tiers apply with several limits: a number replaces the first limit, an array gives each (regression)', async () => {
    const clock = new ManualClock(0);
    const perSecond = limiterOf(10, 1000, clock);
    const perHour = limiterOf(1000, 3_600_000, clock);
    const paid = (req: unknown) => (urlOf(req).includes('paid') ? 100 : undefined);
    const url = await start({ limiter: [perSecond, perHour], limit: paid });
    const statuses = [];
    for (let i = 0; i < 12; i++) statuses.push((await get(`${url}/?paid`)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const last = await get(`${url}/?paid`);
    expect(last.headers.get('x-ratelimit-limit')).toBe('100');
    expect(last.headers.get('ratelimit-policy')).toBe('"default-0";q=100;w=1, "default-1";q=1000;w=3600');
    const both = await start({ limiter: allOf(limiterOf(2, 1000, clock), limiterOf(3, 3_600_000, clock)), limit: () => [undefined, 50] });
    const s2 = [];
    for (let i = 0; i < 4; i++) s2.push((await get(both)).status);
    expect(s2).toEqual([200, 200, 429, 429]);
    const tierHour = await get(both);
    expect(tierHour.headers.get('ratelimit-policy')).toBe('"default-0";q=2;w=1, "default-1";q=50;w=3600');
  });

  it('dry run counts and reports but never blocks', async () => {
    const denials: RateLimitEvent<unknown>[] = [];
    const url = await start({ limiter: limiterOf(1), dryRun: true, onDeny: (e) => denials.push(e as RateLimitEvent<unknown>) });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await get(url)).status);
    expect(statuses).toEqual([200, 200, 200]);
    expect(denials.map((d) => [d.key, d.dryRun, d.decision.allowed])).toEqual([
      ['ip:127.0.0.1', true, false],
      ['ip:127.0.0.1', true, false],
    ]);
  });

  it('per-route limits, and routes left unlimited', async () => {
    const url = await start({ limiter: limiterOf(100) }, [{ path: '/' }, { path: '/expensive', config: { limiter: limiterOf(1) } }, { path: '/health', config: false }]);
    expect((await get(`${url}/expensive`)).status).toBe(200);
    expect((await get(`${url}/expensive`)).status).toBe(429);
    expect((await get(url)).headers.get('x-ratelimit-remaining')).toBe('99');
    const health = await get(`${url}/health`);
    expect(health.status).toBe(200);
    expect(health.headers.get('x-ratelimit-limit')).toBeNull();
  });

  it('keys by API key header with tiers and costs; a request without a key is rejected', async () => {
    const url = await start({
      limiter: limiterOf(10),
      key: { header: 'x-api-key' },
      limit: (req: unknown) => (String(headersOf(req)['x-api-key']).startsWith('paid-') ? 100 : undefined),
      cost: (req: unknown) => Number(headersOf(req)['x-cost'] ?? 1),
    });
    const free = await get(url, { 'x-api-key': 'free-1', 'x-cost': '4' });
    expect(free.headers.get('x-ratelimit-remaining')).toBe('6');
    const paid = await get(url, { 'x-api-key': 'paid-1', 'x-cost': '4' });
    expect(paid.headers.get('x-ratelimit-limit')).toBe('100');
    expect(paid.headers.get('x-ratelimit-remaining')).toBe('96');
    expect((await get(url, { 'x-api-key': 'free-1', 'x-cost': '7' })).status).toBe(429);
    const missing = await get(url);
    expect(missing.status).toBe(400);
    expect(JSON.parse(missing.body)).toMatchObject({ status: 400 });
    const lenient = await start({ limiter: limiterOf(1), key: { header: 'x-api-key' }, onMissingKey: 'allow' });
    expect((await get(lenient)).status).toBe(200);
    expect((await get(lenient)).status).toBe(200);
  });

  it('skip, allow-lists and a custom handler', async () => {
    const skipped = await start({ limiter: limiterOf(1), skip: (req) => String(urlOf(req)).includes('free') });
    for (let i = 0; i < 3; i++) expect((await get(`${skipped}/?free`)).status).toBe(200);
    expect((await get(skipped)).status).toBe(200);
    expect((await get(skipped)).status).toBe(429);
    const allowed = await start({ limiter: limiterOf(1), allowList: ['127.0.0.0/8'] });
    for (let i = 0; i < 3; i++) expect((await get(allowed)).status).toBe(200);
    const custom = await start({
      limiter: limiterOf(1),
      handler: (_req: unknown, res: unknown, d: Decision) => {
        const r = res as { statusCode?: number; code?: (s: number) => { send: (b: string) => void }; end?: (b: string) => void };
        if (typeof r.code === 'function') r.code(503).send(`busy ${d.limit}`);
        else {
          r.statusCode = 503;
          r.end?.(`busy ${d.limit}`);
        }
      },
    });
    await get(custom);
    const replaced = await get(custom);
    expect(replaced.status).toBe(503);
    expect(replaced.body).toBe('busy 1');
    expect(replaced.headers.get('retry-after')).toBe('60');
  });

  it('follows a Redis limiter’s onError when Redis is down, and never hangs', async () => {
    const client = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    const deny = new RedisLimiter({ name: 't', redis: client, policy: fixedWindow({ limit: 5, windowMs: 1000 }), timeoutMs: 50, onError: 'deny' });
    const allow = new RedisLimiter({ name: 't', redis: client, policy: fixedWindow({ limit: 5, windowMs: 1000 }), timeoutMs: 50, onError: 'allow' });
    expect((await get(await start({ limiter: deny }))).status).toBe(429);
    expect((await get(await start({ limiter: allow }))).status).toBe(200);
    deny.close();
    allow.close();
    client.disconnect();
  });
});

function headersOf(req: unknown): Record<string, string | undefined> {
  const r = req as { headers: Record<string, string | undefined>; raw?: { headers: Record<string, string | undefined> } };
  return r.raw?.headers ?? r.headers;
}
function urlOf(req: unknown): string {
  return (req as { url: string }).url;
}

describe('node:http', () => {
  it('check() answers for the handler and reports whether to go on', async () => {
    const { createServer } = await import('node:http');
    const limit = rateLimit({ limiter: limiterOf(1) });
    const server = createServer(async (req, res) => {
      if (!(await limit.check(req, res))) return;
      res.end('ok');
    });
    const url = await listen(server);
    expect((await get(url)).body).toBe('ok');
    expect((await get(url)).status).toBe(429);
  });

  it('rejects bad options with the argument named', () => {
    expect(() => rateLimit({} as never)).toThrow(/for limiter/);
    expect(() => rateLimit({ limiter: limiterOf(1), key: 'cookie' as never })).toThrow(/for key/);
    expect(() => rateLimit({ limiter: limiterOf(1), trustProxy: ['not-an-ip'] })).toThrow(/for trustProxy/);
    expect(() => rateLimit({ limiter: limiterOf(1), headers: 'draft-99' as never })).toThrow(/for headers/);
    expect(() => rateLimit({ limiter: limiterOf(1), ipv6Subnet: 0 })).toThrow(/for ipv6Subnet/);
    expect(() => rateLimit({ limiter: limiterOf(1), cost: 0 })).toThrow(/for cost/);
    expect(() => rateLimit({ limiter: [limiterOf(1), limiterOf(2)], name: ['only-one'] })).toThrow(/for name/);
  });

  it('refuses header formats that would overwrite each other; every other pair is sent whole (regression)', async () => {
    const formats = ['legacy', 'draft-6', 'draft-7', 'draft-8'] as const;
    for (const a of formats) {
      for (const b of formats) {
        if (a === b) continue;
        const make = () => rateLimit({ limiter: limiterOf(5), headers: [a, b] });
        if (a !== 'legacy' && b !== 'legacy') {
          expect(make, `${a} + ${b}`).toThrow(expect.objectContaining({ code: 'TOLLGATE_OUT_OF_RANGE', message: expect.stringMatching(/for headers/) }));
          continue;
        }
        const draft = a === 'legacy' ? b : a;
        const res = new ServerResponse(new IncomingMessage(new Socket()));
        const req = Object.assign(new IncomingMessage(new Socket()), { url: '/' });
        Object.defineProperty(req.socket, 'remoteAddress', { value: '192.0.2.1' });
        make()(req, res, () => {});
        const names = res.getHeaderNames().sort();
        const expected = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'ratelimit-policy'];
        if (draft === 'draft-6') expected.push('ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset');
        else expected.push('ratelimit');
        expect(names, `${a} + ${b}`).toEqual(expected.sort());
      }
    }
  });

  it('headers written without setHeader() read back exactly as setHeader() would leave them', () => {
    const res = new ServerResponse(new IncomingMessage(new Socket()));
    const req = Object.assign(new IncomingMessage(new Socket()), { url: '/' });
    Object.defineProperty(req.socket, 'remoteAddress', { value: '192.0.2.1' });
    res.setHeader('X-Before', 'kept');
    rateLimit({ limiter: limiterOf(5), name: 'api' })(req, res, () => {});
    expect(res.getHeaders()).toEqual({
      'x-before': 'kept',
      'x-ratelimit-limit': '5',
      'x-ratelimit-remaining': '4',
      'x-ratelimit-reset': expect.stringMatching(/^\d+$/),
      'ratelimit-policy': '"api";q=5;w=60',
      ratelimit: '"api";r=4;t=60',
    });
    expect(res.getHeader('X-RateLimit-Limit')).toBe('5');
    expect(res.hasHeader('ratelimit')).toBe(true);
    // And the raw header names keep their case on the wire.
    res.writeHead(200);
    expect((res as unknown as { _header: string })._header).toMatch(/\r\nX-RateLimit-Limit: 5\r\n/);
  });
});
