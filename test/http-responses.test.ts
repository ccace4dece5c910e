// What every framework's middleware answers, alike: long keys kept apart, the headers of a decision
// onError made, the problem body's instance.
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { storedKey } from '../src/common/keys.js';
import { instancePath } from '../src/http/headers.js';
import { fixedWindow, Limiter, RedisLimiter } from '../src/index.js';
import { closeAfter } from './helpers/listen.js';
import { frameworks, get } from './helpers/frameworks.js';

const limiterOf = (limit: number) => new Limiter({ policy: fixedWindow({ limit, windowMs: 60_000 }), capacity: 1000 });

describe('keys over 256 characters (regression: lone surrogates hashed as U+FFFD merged two clients)', () => {
  const long = 'k'.repeat(300);

  it('are hashed injectively: lone surrogates, U+FFFD and well-formed keys each their own', () => {
    const keys = [`${long}\ud800`, `${long}\udbff`, `${long}\udc00`, `${long}\ufffd`, `${long}\ud800\udc00`, `${long}\udc00\ud800`];
    expect(new Set(keys.map(storedKey)).size).toBe(keys.length);
    // A well-formed key keeps the digest it always had (keys already stored in Redis stay theirs).
    expect(storedKey(`${long}€`)).toBe('sha256:MTMfZhBWNT5QEmSHvhQjGoCFoZVwV5vrH_E6pVSkeFo');
  });

  it.each(frameworks)('%s: two long keys differing only in a lone surrogate are limited apart', async (_name, start) => {
    const url = await start({ limiter: limiterOf(1), keyOfUrl: (path) => `${long}${path.endsWith('a') ? '\ud800' : '\udbff'}` });
    expect((await get(`${url}/?a`)).status).toBe(200);
    expect((await get(`${url}/?b`)).status).toBe(200);
    expect((await get(`${url}/?a`)).status).toBe(429);
  });
});

describe.each(frameworks)('%s', (_name, start) => {
  it('a decision onError made (Redis down) sends no quota headers: nothing was counted (regression: a full quota advertised)', async () => {
    const client = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    closeAfter(async () => client.disconnect());
    const policy = fixedWindow({ limit: 5, windowMs: 1000 });
    for (const onError of ['allow', 'deny'] as const) {
      const limiter = new RedisLimiter({ name: 't', redis: client, policy, timeoutMs: 50, onError });
      closeAfter(async () => limiter.close());
      const response = await get(await start({ limiter }));
      expect(response.status).toBe(onError === 'allow' ? 200 : 429);
      expect([...response.headers.keys()].filter((name) => name.includes('ratelimit'))).toEqual([]);
      // A refusal still says when to come back: the fail-closed wait.
      expect(response.headers.get('retry-after')).toBe(onError === 'allow' ? null : '1');
    }
  });

  it('the problem body’s instance is the request’s path, without its query (regression: a full URL in Hono)', async () => {
    const url = await start({ limiter: limiterOf(1) });
    await get(`${url}/limited/x?token=secret`);
    const refused = await get(`${url}/limited/x?token=secret`);
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body)).toMatchObject({ status: 429, instance: '/limited/x' });
  });
});

it('instance is the path of every form a request line or a framework gives', () => {
  expect(instancePath('/a/b?token=secret#x')).toBe('/a/b');
  expect(instancePath('https://api.example/a/b?token=secret')).toBe('/a/b');
  expect(instancePath('http://api.example')).toBe('/');
  expect(instancePath('http://api.example?x=1')).toBe('/');
  expect(instancePath('*')).toBe('*');
});
