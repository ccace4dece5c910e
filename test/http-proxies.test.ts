// Clients behind proxies, on real servers of every framework: what the docs advise cannot be
// bypassed by a spoofed X-Forwarded-For, setups that trust every hop are warned about, and the
// forms proxies really write (ports, IPv4 inside IPv6) key each client apart.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fixedWindow, Limiter } from '../src/index.js';
import { frameworks, get, type AppProxy } from './helpers/frameworks.js';

const limiterOf = (limit: number) => new Limiter({ policy: fixedWindow({ limit, windowMs: 60_000 }), capacity: 1000 });

/**
 * Ten requests from one client behind one proxy, each claiming another address in front of the
 * proxy's hop; then one from another client. How many of the ten passed, and the other's status.
 */
async function spoofing(url: string): Promise<[number, number]> {
  let passed = 0;
  for (let n = 1; n <= 10; n++) {
    if ((await get(url, { 'x-forwarded-for': `198.51.100.${n}, 203.0.113.9` })).status === 200) passed++;
  }
  return [passed, (await get(url, { 'x-forwarded-for': '198.51.100.1, 203.0.113.10' })).status];
}

const warned = (spy: { mock: { calls: unknown[][] } }, code: string) => spy.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === code).map((c) => String(c[0]));

let warn: ReturnType<typeof vi.spyOn>;
afterEach(() => warn?.mockRestore());
const spyWarnings = () => (warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {}));

describe('the proxy advice (regression: Koa app.proxy = true let 10 of 10 spoofed requests pass a limit of 2)', () => {
  // One proxy on loopback: each framework told to trust exactly that hop, as the docs say.
  const advised: Record<string, AppProxy> = {
    express: { express: 'loopback' },
    fastify: { fastify: '127.0.0.1' },
    koa: { koa: { proxy: true, maxIpsCount: 1 } },
  };

  it.each(frameworks.filter(([name]) => name !== 'hono'))('%s: the app’s own setting as advised holds a spoofed client to its limit', async (name, start) => {
    expect(await spoofing(await start({ limiter: limiterOf(2) }, advised[name]))).toEqual([2, 200]);
  });

  it.each(frameworks)('%s: tollgate’s trustProxy holds a spoofed client to its limit', async (_name, start) => {
    expect(await spoofing(await start({ limiter: limiterOf(2), trustProxy: ['loopback'] }))).toEqual([2, 200]);
  });

  it('the warning about an ignored header gives advice that is safe as written', async () => {
    spyWarnings();
    const [, start] = frameworks[2];
    await get(await start({ limiter: limiterOf(2) }), { 'x-forwarded-for': '198.51.100.1' });
    const [message] = warned(warn, 'TOLLGATE_UNTRUSTED_FORWARDED_HEADER');
    expect(message).toContain('app.maxIpsCount');
    expect(message).not.toMatch(/app\.proxy = true;/);
    expect(message).toContain("fastify: trustProxy: '127.0.0.1'");
  });

  it.each([
    ['koa', { koa: { proxy: true } }],
    ['koa', { koa: { proxy: true, maxIpsCount: 0 } }],
    ['fastify', { fastify: true }],
    ['fastify', { fastify: ['0.0.0.0/1', '128.0.0.0/1'] }],
    ['express', { express: true }],
  ] as const)('%s trusting every hop (%o) is warned about once, with the fix', async (name, proxy) => {
    spyWarnings();
    const start = frameworks.find(([n]) => n === name)![1];
    const url = await start({ limiter: limiterOf(2) }, proxy);
    for (let i = 0; i < 3; i++) await get(url, { 'x-forwarded-for': '198.51.100.1, 203.0.113.9' });
    const messages = warned(warn, 'TOLLGATE_FRAMEWORK_TRUSTS_EVERY_HOP');
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(name === 'koa' ? /maxIpsCount/ : name === 'fastify' ? /trustProxy/ : /'trust proxy'/);
  });

  it.each([
    ['koa', { koa: { proxy: true, maxIpsCount: 1 } }],
    ['koa', { koa: { proxy: false } }],
    ['fastify', { fastify: '127.0.0.1' }],
    ['express', { express: 'loopback' }],
    ['express', { express: 1 }],
  ] as const)('%s trusting a bounded set of hops (%o) is not warned about', async (name, proxy) => {
    spyWarnings();
    const start = frameworks.find(([n]) => n === name)![1];
    await get(await start({ limiter: limiterOf(2) }, proxy), { 'x-forwarded-for': '198.51.100.1' });
    expect(warned(warn, 'TOLLGATE_FRAMEWORK_TRUSTS_EVERY_HOP')).toEqual([]);
  });
});

describe.each(frameworks)('%s behind proxies that write ports or IPv4 inside IPv6 (regression: all clients keyed as the proxy or as ::/56)', (_name, start) => {
  it('clients with ports (Azure Application Gateway, IIS ARR) are limited apart', async () => {
    const url = await start({ limiter: limiterOf(1), trustProxy: ['loopback'] });
    const from = (hop: string) => get(url, { 'x-forwarded-for': hop }).then((r) => r.status);
    expect(await from('203.0.113.7:51234')).toBe(200);
    expect(await from('203.0.113.7:40000')).toBe(429);
    expect(await from('203.0.113.8:51234')).toBe(200);
    expect(await from('[2001:db8:1::1]:443')).toBe(200);
    expect(await from('[2001:db8:2::1]:443')).toBe(200);
    expect(await from('2001:db8:1::2')).toBe(429);
  });

  it('IPv4-embedded IPv6 addresses are keyed as their IPv4 address', async () => {
    const url = await start({ limiter: limiterOf(1), trustProxy: ['loopback'] });
    const from = (hop: string) => get(url, { 'x-forwarded-for': hop }).then((r) => r.status);
    expect(await from('::203.0.113.7')).toBe(200);
    expect(await from('::203.0.113.8')).toBe(200);
    expect(await from('::ffff:0:203.0.113.9')).toBe(200);
    expect(await from('64:ff9b::203.0.113.10')).toBe(200);
    // The same clients in their plain spelling: already counted.
    for (const plain of ['203.0.113.7', '203.0.113.8', '203.0.113.9', '203.0.113.10']) expect(await from(plain)).toBe(429);
  });
});
