// One server per framework (express, fastify, Koa, Hono) on loopback with tollgate's middleware in
// front of a catch-all 'ok' route, and each framework's own proxy setting when a test gives one.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { fastifyRateLimit, honoRateLimit, koaRateLimit, rateLimit, type RateLimitOptions } from '../../src/index.js';
import { closeAfter, listen } from './listen.js';

/** The app's own proxy setting: express's 'trust proxy', fastify's trustProxy, Koa's proxy and maxIpsCount. */
export interface AppProxy {
  readonly express?: unknown;
  readonly fastify?: boolean | string | readonly string[];
  readonly koa?: { readonly proxy: boolean; readonly maxIpsCount?: number };
}

export type Options = Omit<RateLimitOptions<never>, 'key' | 'cost' | 'skip' | 'limit' | 'onAllow' | 'onDeny'> & {
  /** The key from the request's path and query (the same string in every framework). */
  readonly keyOfUrl?: (pathAndQuery: string) => string;
};

type Start = (options: Options, proxy?: AppProxy) => Promise<string>;

// What a key function sees: the path and query, whatever the framework's request object holds.
const pathAndQuery = (url: string) => (url.startsWith('/') ? url : url.slice(new URL(url).origin.length));
const keyed = <Req>(options: Options, urlOf: (req: Req) => string): Record<string, unknown> => {
  const { keyOfUrl, ...rest } = options;
  return keyOfUrl === undefined ? rest : { ...rest, key: (req: Req) => keyOfUrl(pathAndQuery(urlOf(req))) };
};

const startExpress: Start = async (options, proxy) => {
  const app = express();
  if (proxy?.express !== undefined) app.set('trust proxy', proxy.express);
  app.use(rateLimit(keyed<{ url: string }>(options, (req) => req.url) as never));
  app.use((_req, res) => void res.send('ok'));
  return listen(createServer(app));
};

const startFastify: Start = async (options, proxy) => {
  const app = Fastify(proxy?.fastify === undefined ? {} : { trustProxy: proxy.fastify as boolean | string | string[] });
  await app.register(fastifyRateLimit, keyed<{ url: string }>(options, (req) => req.url) as never);
  app.all('/*', async () => 'ok');
  await app.listen({ port: 0, host: '127.0.0.1' });
  closeAfter(() => app.close());
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
};

const startKoa: Start = async (options, proxy) => {
  const { default: Koa } = await import('koa');
  const app = new Koa();
  app.silent = true;
  if (proxy?.koa !== undefined) {
    app.proxy = proxy.koa.proxy;
    if (proxy.koa.maxIpsCount !== undefined) app.maxIpsCount = proxy.koa.maxIpsCount;
  }
  app.use(koaRateLimit(keyed<{ url: string }>(options, (ctx) => ctx.url) as never));
  app.use((ctx) => {
    ctx.body = 'ok';
  });
  return listen(createServer(app.callback()));
};

const startHono: Start = async (options) => {
  const { Hono } = await import('hono');
  const { serve } = await import('@hono/node-server');
  const app = new Hono();
  app.use(honoRateLimit(keyed<{ req: { url: string } }>(options, (c) => c.req.url) as never) as never);
  app.all('*', (c) => c.text('ok'));
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve(`http://127.0.0.1:${info.port}`));
    closeAfter(() => new Promise((done) => server.close(done)));
  });
};

export const frameworks = [
  ['express', startExpress],
  ['fastify', startFastify],
  ['koa', startKoa],
  ['hono', startHono],
] as const;

/** GET with these headers: the status, headers and body. */
export async function get(url: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { headers });
  return { status: response.status, headers: response.headers, body: await response.text() };
}
