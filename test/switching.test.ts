// Switching from another limiter without surprises (issue 24): the app's own proxy setting,
// fastify registration awaited or not.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { describe, expect, it, vi } from 'vitest';
import { fastifyRateLimit, fixedWindow, koaRateLimit, Limiter, rateLimit } from '../src/index.js';
import { closeAfter, listen } from './helpers/listen.js';

const limiterOf = (limit: number) => new Limiter({ policy: fixedWindow({ limit, windowMs: 60_000 }), capacity: 1000 });

/** Status codes of requests sent through a "proxy" on loopback for each client address, in order. */
async function through(url: string, clients: string[]): Promise<number[]> {
  const statuses: number[] = [];
  for (const client of clients) {
    const response = await fetch(url, { headers: { 'x-forwarded-for': client } });
    await response.arrayBuffer();
    statuses.push(response.status);
  }
  return statuses;
}

const threeClients = ['1.1.1.1', '1.1.1.1', '2.2.2.2', '2.2.2.2', '3.3.3.3', '3.3.3.3', '3.3.3.3'];

describe("the app's own proxy setting", () => {
  it("express with app.set('trust proxy', 'loopback'): each client behind the proxy has its own limit (regression: all shared one)", async () => {
    const app = express();
    app.set('trust proxy', 'loopback');
    app.use(rateLimit({ limiter: limiterOf(2) }));
    app.get('/', (_req, res) => void res.send('ok'));
    const url = await listen(createServer(app));
    expect(await through(url, threeClients)).toEqual([200, 200, 200, 200, 200, 200, 429]);
  });

  it('express without a proxy setting: the peer is the client, and the ignored header is warned about once', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const app = express();
      app.use(rateLimit({ limiter: limiterOf(2) }));
      app.get('/', (_req, res) => void res.send('ok'));
      const url = await listen(createServer(app));
      expect(await through(url, ['1.1.1.1', '2.2.2.2', '3.3.3.3'])).toEqual([200, 200, 429]);
      const warnings = warn.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === 'TOLLGATE_UNTRUSTED_FORWARDED_HEADER');
      expect(warnings).toHaveLength(1);
      expect(String(warnings[0]?.[0])).toContain("app.set('trust proxy'");
    } finally {
      warn.mockRestore();
    }
  });

  it("trustProxy, when given, wins over express's setting", async () => {
    const app = express();
    app.set('trust proxy', 'loopback');
    // Only 10.0.0.0/8 is a proxy to this middleware: the loopback peer is the client.
    app.use(rateLimit({ limiter: limiterOf(2), trustProxy: ['10.0.0.0/8'] }));
    app.get('/', (_req, res) => void res.send('ok'));
    const url = await listen(createServer(app));
    expect(await through(url, ['1.1.1.1', '2.2.2.2', '3.3.3.3'])).toEqual([200, 200, 429]);
  });

  it('Koa with app.proxy = true: each client behind the proxy has its own limit', async () => {
    const app = new Koa();
    app.proxy = true;
    app.use(koaRateLimit({ limiter: limiterOf(2) }));
    app.use((ctx) => {
      ctx.body = 'ok';
    });
    const url = await listen(createServer(app.callback()));
    expect(await through(url, threeClients)).toEqual([200, 200, 200, 200, 200, 200, 429]);
  });

  it("fastify with its trustProxy option: each client behind the proxy has its own limit", async () => {
    const app = Fastify({ trustProxy: '127.0.0.1' });
    await app.register(fastifyRateLimit, { limiter: limiterOf(2) });
    app.get('/', async () => 'ok');
    await app.listen({ port: 0, host: '127.0.0.1' });
    closeAfter(() => app.close());
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    expect(await through(url, threeClients)).toEqual([200, 200, 200, 200, 200, 200, 429]);
  });
});

describe('fastify registration', () => {
  it.each([
    ['not awaited, routes after it', false, 'after'],
    ['awaited, routes after it', true, 'after'],
    ['not awaited, routes before it', false, 'before'],
  ] as const)('%s: limits (regression: an unawaited registration limited nothing)', async (_label, awaited, order) => {
    const app = Fastify();
    const route = () => app.get('/', async () => 'ok');
    if (order === 'before') route();
    const registered = app.register(fastifyRateLimit, { limiter: limiterOf(3) });
    if (awaited) await registered;
    if (order === 'after') route();
    closeAfter(() => app.close());
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await app.inject('/')).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect((await app.inject('/')).headers['x-ratelimit-limit']).toBe('3');
  });
});
