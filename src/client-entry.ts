// tollgate/client: calling services that limit us. Queues and throttles over limiters,
// limitedFetch (quota, places and the upstream's own headers), retries and backoff.
/// <reference types="node" preserve="true" />
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
export type { PlacesProblem } from './client/upstream-places.js';
export type { RedisPlacesOptions } from './redis/redis-places-options.js';
export { destroySharedPlaces, inspectSharedPlaces, type SharedPlacesReport } from './engine/shared-places.js';
