// tollgate: the core. Limiter and its policies, shared-memory tables, RedisLimiter, allOf, the
// clock for tests and the errors; what builds on a limiter has its own entry point:
// tollgate/http (middleware), tollgate/client (calling rate-limited services),
// tollgate/metrics (Prometheus, denial logs), tollgate/adapters (other libraries' stores).
/// <reference types="node" preserve="true" />
export { Limiter, type TopKey } from './limiters/limiter.js';
export type { LimiterOptions } from './limiters/limiter-options.js';
export { MAX_CAPACITY, MAX_KEY_LENGTH } from './common/constants.js';
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
export {
  sharedMemory,
  destroySharedMemory,
  inspectSharedMemory,
  type SharedMemoryOptions,
  type SharedMemoryStore,
  type SharedTableReport,
} from './engine/shared-memory.js';
export {
  isRateLimiter,
  type RateLimiter,
  type CallOptions,
  type AcquireOptions,
  type LimiterStats,
  type RedisLimiterStats,
  type CombinedLimiterStats,
  type RateLimiterStats,
  type MaybePromise,
} from './limiters/rate-limiter.js';
export { AcquireError, type AcquireErrorCode } from './limiters/waiting-lines.js';
export { allOf, CombinedLimiter } from './limiters/combined-limiter.js';
export { RedisLimiter } from './limiters/redis-limiter.js';
export type { RedisLimiterOptions, RedisLimiterEvent } from './limiters/redis-limiter-options.js';
export type { RedisClient, IoRedisClient, NodeRedisClient, NodeRedisCluster, RedisCommandSender } from './redis/redis-client.js';
export type { BreakerOptions, BreakerState } from './redis/breaker.js';
