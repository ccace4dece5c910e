// A million keys visited at random: the cost of a decision once the working set leaves the caches.
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { TokenBucket } from 'limiter';
import { FastRateLimit } from 'fast-ratelimit';
import { Limiter, fixedWindow } from '../../dist/index.js';
import { loadNative } from '../../dist/engine/load-native.js';
import { loadFloor } from '../floor.mjs';
import { MapFixedWindow } from '../peers/map-fixed-window.mjs';
import { createRequire } from 'node:module';
import { makeKeys, measure, progress, randomOrder, report } from '../common.mjs';
import { CONTENDER } from '../labels.mjs';

const KEYS = 1_000_000;
const BATCH = 1000;
const LIMIT = 1e9;
const keys = makeKeys(KEYS);
const order = randomOrder(1 << 22, KEYS);
const mask = order.length - 1;
let cursor = 0;
const next = () => keys[order[cursor++ & mask]];

const policy = fixedWindow({ limit: LIMIT, windowMs: 600_000 });
const native = new Limiter({ policy, engine: 'native', capacity: KEYS });
const js = new Limiter({ policy, engine: 'js', capacity: KEYS });
const withTopKeys = new Limiter({ policy, engine: 'native', capacity: KEYS, topKeys: true });
const map = new MapFixedWindow(LIMIT, 600_000);
const fast = new FastRateLimit({ threshold: LIMIT, ttl: 600 });
// The physical floor: the N-API call reading a key from the same array (the key's own miss),
// plus one random 64-byte read of a block the table's size (the one miss a lookup cannot avoid).
const { addon } = loadNative();
const floor = loadFloor();
let missFloor; // made once the table has grown to its full size
// The same raw table from this addon and, when TOLLGATE_BENCH_BASELINE_ADDON names another build
// (e.g. an earlier layout), from that one: the change measured side by side in one run.
const rawConfig = () => ({
  kind: 1,
  limit: LIMIT,
  windowMs: 600_000,
  rateTokens: 0,
  rateIntervalMs: 0,
  capacity: KEYS,
  shards: 0,
  evict: true,
  detail: new Float64Array(5),
});
// A raw table: the addon's tryConsume on its handle (an addon from before 0.2 returned functions
// per table instead, and still can be the baseline).
const rawTable = (from) => {
  const t = from.createTable(rawConfig());
  if (t.self === undefined) return t;
  const f = from.tableFunctions;
  const self = t.self;
  return {
    tryConsume: (key) => f.tryConsume(self, key),
    consumeMany: (keys, cost, limit, out) => f.consumeMany(self, keys, cost, limit, out),
    stats: () => f.stats(self),
  };
};
const raw = rawTable(addon);
const baselinePath = process.env.TOLLGATE_BENCH_BASELINE_ADDON;
const baseline = baselinePath ? rawTable(createRequire(import.meta.url)(baselinePath)) : undefined;
const rlf = new RateLimiterMemory({ points: LIMIT, duration: 600 });
const buckets = new Map();
const bucketFor = (key) => {
  let b = buckets.get(key);
  if (b === undefined) {
    b = new TokenBucket({ bucketSize: LIMIT, tokensPerInterval: LIMIT, interval: 'minute' });
    buckets.set(key, b);
  }
  return b;
};

progress(`loading ${KEYS.toLocaleString('en')} keys into each contender`);
for (const key of keys) {
  native.tryConsume(key);
  raw.tryConsume(key);
  baseline?.tryConsume(key);
  withTopKeys.tryConsume(key);
  js.tryConsume(key);
  map.consume(key);
  fast.consumeSync(key);
  await rlf.consume(key);
  bucketFor(key).tryRemoveTokens(1);
}

missFloor = floor.createMissFloor(native.stats().memoryBytes);
let sink = 0;
const batchKeys = new Array(BATCH);
const batchOut = new Uint8Array(BATCH);
const figures = await measure(
  {
    [CONTENDER.nativeConsume]: () => {
      for (let i = 0; i < BATCH; i++) sink += native.consume(next()).remaining;
    },
    [CONTENDER.nativeTryConsume]: () => {
      for (let i = 0; i < BATCH; i++) sink += native.tryConsume(next()) ? 1 : 0;
    },
    [CONTENDER.nativeTopKeys]: () => {
      for (let i = 0; i < BATCH; i++) sink += withTopKeys.tryConsume(next()) ? 1 : 0;
    },
    [CONTENDER.nativeConsumeMany]: () => {
      for (let i = 0; i < BATCH; i++) batchKeys[i] = next();
      sink += native.consumeMany(batchKeys, 1, batchOut)[0];
    },
    [CONTENDER.rawTryConsume]: () => {
      for (let i = 0; i < BATCH; i++) sink += raw.tryConsume(next()) ? 1 : 0;
    },
    ...(baseline && {
      [CONTENDER.rawTryConsumeBaseline]: () => {
        for (let i = 0; i < BATCH; i++) sink += baseline.tryConsume(next()) ? 1 : 0;
      },
      [CONTENDER.rawConsumeManyBaseline]: () => {
        for (let i = 0; i < BATCH; i++) batchKeys[i] = next();
        sink += baseline.consumeMany(batchKeys, 1, LIMIT, batchOut);
      },
    }),
    [CONTENDER.rawConsumeMany]: () => {
      for (let i = 0; i < BATCH; i++) batchKeys[i] = next();
      sink += raw.consumeMany(batchKeys, 1, LIMIT, batchOut);
    },
    [CONTENDER.tsTryConsume]: () => {
      for (let i = 0; i < BATCH; i++) sink += js.tryConsume(next()) ? 1 : 0;
    },
    [CONTENDER.tsConsume]: () => {
      for (let i = 0; i < BATCH; i++) sink += js.consume(next()).remaining;
    },
    [CONTENDER.floorRandom]: () => {
      for (let i = 0; i < BATCH; i++) sink += floor.readKeyOnly(next()) ? 1 : 0;
    },
    [CONTENDER.floorRandomMiss]: () => {
      for (let i = 0; i < BATCH; i++) sink += missFloor(next());
    },
    [CONTENDER.fastRatelimit]: () => {
      for (let i = 0; i < BATCH; i++) sink += fast.consumeSync(next()) ? 1 : 0;
    },
    [CONTENDER.map]: () => {
      for (let i = 0; i < BATCH; i++) sink += map.consume(next()) ? 1 : 0;
    },
    [CONTENDER.rlfMemory]: async () => {
      for (let i = 0; i < BATCH; i++) sink += (await rlf.consume(next())).remainingPoints;
    },
    [CONTENDER.limiterBucketPerKey]: () => {
      for (let i = 0; i < BATCH; i++) sink += bucketFor(next()).tryRemoveTokens(1) ? 1 : 0;
    },
    [CONTENDER.keySelection]: () => {
      for (let i = 0; i < BATCH; i++) sink += next().length;
    },
  },
  { opsPerCall: BATCH },
);
if (sink === 0.5) console.error(sink);
report('random-keys', figures);
// rate-limiter-flexible and fast-ratelimit keep expiry timers for their keys: exit rather than wait.
process.exit(0);
