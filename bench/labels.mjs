// The names of the in-process contenders, as the suites report them and bench/run.mjs reads them:
// written once, so a renamed contender cannot leave the report reading a label that is gone.
export const CONTENDER = Object.freeze({
  floor: 'N-API floor (empty call, one string)',
  nativeTryConsume: 'tollgate native tryConsume',
  nativeConsume: 'tollgate native consume',
  nativeTopKeys: 'tollgate native tryConsume, topKeys on',
  tsConsume: 'tollgate TS engine consume',
  tsTryConsume: 'tollgate TS engine tryConsume',
  map: 'Map fixed window (hand-written)',
  fastRatelimit: 'fast-ratelimit consumeSync',
  rlfMemory: 'rate-limiter-flexible Memory (awaited)',
  limiterBucket: 'limiter TokenBucket tryRemoveTokens',
  limiterBucketPerKey: 'limiter TokenBucket per key (Map)',
  keySelection: 'key selection alone (subtracted from nothing)',
  nativeConsumeMany: 'tollgate native consumeMany (per key, 1000/batch)',
  floorRandom: 'N-API floor, random key',
  floorRandomMiss: 'N-API floor, random key + one random 64-byte read of a table-sized block',
  rawTryConsume: 'raw addon tryConsume',
  rawTryConsumeBaseline: 'raw addon tryConsume, baseline build',
  rawConsumeMany: 'raw addon consumeMany (per key)',
  rawConsumeManyBaseline: 'raw addon consumeMany, baseline build (per key)',
});
