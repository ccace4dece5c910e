// Public entry point of tollgate.
/// <reference types="node" preserve="true" />
export { Limiter, MAX_CAPACITY, type CallOptions, type LimiterOptions, type LimiterStats, type TopKey } from './limiters/limiter.js';
export {
  fixedWindow,
  slidingWindow,
  tokenBucket,
  leakyBucket,
  describePolicy,
  type Policy,
  type FixedWindowPolicy,
  type SlidingWindowPolicy,
  type TokenBucketPolicy,
  type LeakyBucketPolicy,
} from './common/policies.js';
export type { Decision, LimitOverride } from './common/decision.js';
export { ManualClock } from './common/clock.js';
export type { TollgateErrorCode, TollgateWarningCode, TollgateRangeError, TollgateTypeError } from './common/errors.js';
export { isNativeAvailable, nativeInfo, type EngineChoice, type EngineName, type NativeInfo } from './engine/select-engine.js';
export type { NativeSource } from './engine/load-native.js';
export { MAX_KEY_LENGTH } from './common/validate.js';
export {
  sharedMemory,
  destroySharedMemory,
  inspectSharedMemory,
  type SharedMemoryOptions,
  type SharedMemoryStore,
  type SharedTableReport,
} from './engine/shared-memory.js';
export { allOf, CombinedLimiter } from './limiters/combined-limiter.js';
export {
  isRateLimiter,
  type RateLimiter,
  type RateLimiterStats,
  type CombinedLimiterStats,
  type MaybePromise,
} from './limiters/rate-limiter.js';
export {
  RedisLimiter,
  type RedisLimiterOptions,
  type RedisLimiterStats,
  type RedisClientLike,
  type RedisClient,
  type IoRedisClient,
  type NodeRedisClient,
  type NodeRedisCluster,
  type RedisCommandSender,
  type RedisLimiterEvent,
  type BreakerOptions,
  type BreakerState,
} from './limiters/redis-limiter.js';
export { rateLimit, type NodeRateLimitOptions, type RateLimitMiddleware, type RateLimitedRequest } from './http/node.js';
export { fastifyRateLimit, type FastifyRateLimitOptions } from './http/fastify.js';
export type { RateLimitOptions, RateLimitEvent, RateLimitInfo } from './http/rule.js';
export type { HeaderFormat } from './http/headers.js';
export { AcquireError, type AcquireOptions, type AcquireErrorCode } from './limiters/waiting-lines.js';
export {
  createQueue,
  Queue,
  QueueFullError,
  throttle,
  type QueueOptions,
  type QueueLimit,
  type JobOptions,
  type JobInfo,
  type DeadLetter,
  type RetryHint,
} from './client/queue.js';
export { backoffDelay, retryPolicy, type RetryOptions } from './client/backoff.js';
export { parseUpstreamLimits, parseRetryAfter, parseDuration, type UpstreamLimits, type UpstreamQuota } from './client/upstream-headers.js';
export { adaptToUpstream, correctCost } from './client/adapt.js';
export { limitedFetch, UpstreamError, type LimitedFetch, type LimitedFetchOptions } from './client/fetch.js';
export type { LimitedFetchEvent } from './client/fetch-options.js';
export type { LimitedFetchStats } from './client/fetch-report.js';
export type { UpstreamOptions, UpstreamStore } from './client/upstream-options.js';
export { destroySharedPlaces } from './engine/shared-places.js';
export type { PlacesProblem } from './client/upstream-places.js';
export type { RedisPlacesOptions } from './redis/redis-places-options.js';
export { toPrometheus, registerPrometheus, metricsHandler, type PromClientLike, type PromRegistryLike } from './metrics/prometheus.js';
export { denialLogger, type DenialRecord } from './metrics/denial-log.js';
export { ExpressRateLimitStore, type ExpressRateLimitInfo, type ExpressRateLimitStoreOptions, type ExpressRateLimitRedisOptions, type ExpressRateLimitResult } from './adapters/express-rate-limit.js';
export { FastifyRateLimitStore, type FastifyRateLimitCallback, type FastifyRateLimitCount, type FastifyRateLimitStoreOptions, type FastifyRateLimitRedisOptions } from './adapters/fastify-rate-limit.js';
export { RateLimiterTollgate, RateLimiterRes, RateLimiterResult, type RateLimiterTollgateOptions, type RateLimiterFlexibleLike } from './adapters/rate-limiter-flexible.js';
export { koaRateLimit, type KoaContextLike, type KoaRateLimitOptions } from './http/koa.js';
export { honoRateLimit, type HonoContextLike, type HonoRateLimitOptions } from './http/hono.js';
export { NestThrottlerStorage, type NestThrottlerRecord, type NestThrottlerStorageOptions, type NestThrottlerRedisOptions } from './adapters/nest-throttler.js';
export type { AdapterTableOptions } from './adapters/adapter-limiter.js';
export type { PeerOnError, PeerRedisOptions } from './adapters/peer-formats/peer-redis-options.js';
