// tollgate/adapters: tollgate's tables behind other libraries' interfaces: stores for
// express-rate-limit, @fastify/rate-limit and @nestjs/throttler, and rate-limiter-flexible's API.
/// <reference types="node" preserve="true" />
export {
  ExpressRateLimitStore,
  type ExpressRateLimitInfo,
  type ExpressRateLimitStoreOptions,
  type ExpressRateLimitRedisOptions,
  type ExpressRateLimitResult,
} from './adapters/express-rate-limit.js';
export {
  FastifyRateLimitStore,
  type FastifyRateLimitCallback,
  type FastifyRateLimitCount,
  type FastifyRateLimitStoreOptions,
  type FastifyRateLimitRedisOptions,
} from './adapters/fastify-rate-limit.js';
export { NestThrottlerStorage, type NestThrottlerRecord, type NestThrottlerStorageOptions, type NestThrottlerRedisOptions } from './adapters/nest-throttler.js';
export { RateLimiterTollgate, RateLimiterRes, type RateLimiterTollgateOptions, type RateLimiterFlexibleLike } from './adapters/rate-limiter-flexible.js';
export type { AdapterTableOptions } from './adapters/adapter-limiter.js';
export type { PeerOnError, PeerRedisOptions } from './adapters/peer-formats/peer-redis-options.js';
