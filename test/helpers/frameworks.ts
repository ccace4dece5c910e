// One server per framework (express, fastify, Koa, Hono) on loopback with tollgate's middleware in
// front of a catch-all 'ok' route, and each framework's own proxy setting when a test gives one.
// The route answers with the status `?status=` asks for (200 by default), throws for `?throw`,
// never answers for `?hang`, and echoes the rate-limit info the framework's request carries
// (req.rateLimit, request.rateLimit, ctx.state.rateLimit, c.get('rateLimit')) as JSON in
// `x-seen-rate-limit`.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { fastifyRateLimit, honoRateLimit, koaRateLimit, rateLimit, type RateLimitOptions } from '../../src/http-entry.js';
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

/** What the catch-all route does for this URL: the status to answer, or throw, or never answer. */
function routeOf(url: string): { status: number; fail: boolean; hang: boolean } {
  const query = new URL(url, 'http://localhost').searchParams;
  return { status: Number(query.get('status') ?? 200), fail: query.has('throw'), hang: query.has('hang') };
}

export const SEEN_HEADER = 'x-seen-rate-limit';
const seen = (info: unknown): Record<string, string> => (info === undefined || info === null ? {} : { [SEEN_HEADER]: JSON.stringify(info) });

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
  app.use((req, res) => {
    const route = routeOf(req.url);
    if (route.hang) return;
    if (route.fail) throw new Error('the route failed');
    res
      .set(seen((req as { rateLimit?: unknown }).rateLimit))
      .status(route.status)
      .send('ok');
  });
  return listen(createServer(app));
};

const startFastify: Start = async (options, proxy) => {
  const app = Fastify(proxy?.fastify === undefined ? {} : { trustProxy: proxy.fastify as boolean | string | string[] });
  await app.register(fastifyRateLimit, keyed<{ url: string }>(options, (req) => req.url) as never);
  app.all('/*', async (request, reply) => {
    const route = routeOf(request.url);
    if (route.hang) return new Promise(() => {});
    if (route.fail) throw new Error('the route failed');
    return reply
      .headers(seen((request as { rateLimit?: unknown }).rateLimit))
      .code(route.status)
      .send('ok');
  });
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
  app.use(async (ctx) => {
    const route = routeOf(ctx.url);
    if (route.hang) return new Promise(() => {});
    if (route.fail) throw new Error('the route failed');
    ctx.set(seen(ctx.state.rateLimit));
    ctx.status = route.status;
    ctx.body = 'ok';
  });
  return listen(createServer(app.callback()));
};

const startHono: Start = async (options) => {
  const { Hono } = await import('hono');
  const { serve } = await import('@hono/node-server');
  const app = new Hono();
  app.use(honoRateLimit(keyed<{ req: { url: string } }>(options, (c) => c.req.url) as never) as never);
  app.all('*', async (c) => {
    const route = routeOf(c.req.url);
    if (route.hang) return new Promise<Response>(() => {});
    if (route.fail) throw new Error('the route failed');
    return c.text('ok', route.status as 200, seen((c as unknown as { get(key: string): unknown }).get('rateLimit')));
  });
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
