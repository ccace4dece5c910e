// tollgate/http: middleware that answers a request with a limiter's decision, for node:http and
// express, fastify, Koa and Hono, over one rule (keys, costs, headers, refusals).
/// <reference types="node" preserve="true" />
export { rateLimit, type NodeRateLimitOptions, type RateLimitMiddleware, type RateLimitedRequest } from './http/node.js';
export { fastifyRateLimit, type FastifyRateLimitOptions } from './http/fastify.js';
export { koaRateLimit, type KoaContextLike, type KoaRateLimitOptions } from './http/koa.js';
export { honoRateLimit, type HonoContextLike, type HonoRateLimitOptions } from './http/hono.js';
export type { RateLimitOptions, RateLimitEvent, RateLimitInfo } from './http/rule.js';
export type { HeaderFormat } from './http/headers.js';
