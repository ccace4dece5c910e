// One hot key: how close a decision comes to the N-API floor (an empty call taking one string).
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { TokenBucket } from 'limiter';
import { FastRateLimit } from 'fast-ratelimit';
import { Limiter, fixedWindow } from '../../dist/index.js';
import { loadFloor } from '../floor.mjs';
import { MapFixedWindow } from '../peers/map-fixed-window.mjs';
import { measure, report } from '../common.mjs';
import { CONTENDER } from '../labels.mjs';

const BATCH = 1000;
const key = 'user:123456';
// Limits high enough never to deny: every contender runs its allow path.
const LIMIT = 1e9;
const policy = fixedWindow({ limit: LIMIT, windowMs: 1000 });
const addon = loadFloor();
const native = new Limiter({ policy, engine: 'native' });
const js = new Limiter({ policy, engine: 'js' });
const withTopKeys = new Limiter({ policy, engine: 'native', topKeys: true });
const map = new MapFixedWindow(LIMIT, 1000);
const fast = new FastRateLimit({ threshold: LIMIT, ttl: 1 });
const rlf = new RateLimiterMemory({ points: LIMIT, duration: 1 });
const bucket = new TokenBucket({ bucketSize: LIMIT, tokensPerInterval: LIMIT, interval: 'second' });

let sink = 0;
const figures = await measure(
  {
    [CONTENDER.floor]: () => {
      for (let i = 0; i < BATCH; i++) sink += addon.readKeyOnly(key) ? 1 : 0;
    },
    [CONTENDER.fastRatelimit]: () => {
      for (let i = 0; i < BATCH; i++) sink += fast.consumeSync(key) ? 1 : 0;
    },
    [CONTENDER.nativeTryConsume]: () => {
      for (let i = 0; i < BATCH; i++) sink += native.tryConsume(key) ? 1 : 0;
    },
    [CONTENDER.nativeTopKeys]: () => {
      for (let i = 0; i < BATCH; i++) sink += withTopKeys.tryConsume(key) ? 1 : 0;
    },
    [CONTENDER.nativeConsume]: () => {
      for (let i = 0; i < BATCH; i++) sink += native.consume(key).remaining;
    },
    [CONTENDER.tsTryConsume]: () => {
      for (let i = 0; i < BATCH; i++) sink += js.tryConsume(key) ? 1 : 0;
    },
    [CONTENDER.tsConsume]: () => {
      for (let i = 0; i < BATCH; i++) sink += js.consume(key).remaining;
    },
    [CONTENDER.map]: () => {
      for (let i = 0; i < BATCH; i++) sink += map.consume(key) ? 1 : 0;
    },
    [CONTENDER.rlfMemory]: async () => {
      for (let i = 0; i < BATCH; i++) sink += (await rlf.consume(key)).remainingPoints;
    },
    [CONTENDER.limiterBucket]: () => {
      for (let i = 0; i < BATCH; i++) sink += bucket.tryRemoveTokens(1) ? 1 : 0;
    },
  },
  { opsPerCall: BATCH },
);
if (sink === 0.5) console.error(sink);
report('hot-key', figures);
