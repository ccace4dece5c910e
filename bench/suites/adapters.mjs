// The adapters against the libraries' own stores, in process: rate-limiter-flexible's
// RateLimiterMemory vs RateLimiterTollgate, and @nestjs/throttler's ThrottlerStorageService vs
// NestThrottlerStorage, each awaited per call on 10,000 keys at random (ns per call).
import 'reflect-metadata';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { ThrottlerStorageService } from '@nestjs/throttler';
import { NestThrottlerStorage, RateLimiterTollgate } from '../../dist/adapters-entry.js';
import { makeKeys, measure, randomOrder, report } from '../common.mjs';

const KEYS = 10_000;
const BATCH = 1000;
const keys = makeKeys(KEYS);
const order = randomOrder(1 << 16, KEYS);
let cursor = 0;
const next = () => keys[order[cursor++ & (order.length - 1)]];
const POINTS = 1e8;

const rlf = new RateLimiterMemory({ points: POINTS, duration: 600 });
const ours = new RateLimiterTollgate({ points: POINTS, duration: 600 });
const nest = new ThrottlerStorageService();
const nestOurs = new NestThrottlerStorage();
let sink = 0;
const figures = await measure(
  {
    'rate-limiter-flexible RateLimiterMemory consume': async () => {
      for (let i = 0; i < BATCH; i++) sink += (await rlf.consume(next())).remainingPoints;
    },
    'RateLimiterTollgate consume': async () => {
      for (let i = 0; i < BATCH; i++) sink += (await ours.consume(next())).remainingPoints;
    },
    '@nestjs/throttler ThrottlerStorageService increment': async () => {
      for (let i = 0; i < BATCH; i++) sink += (await nest.increment(next(), 600_000, POINTS, 0, 'default')).totalHits;
    },
    'NestThrottlerStorage increment': async () => {
      for (let i = 0; i < BATCH; i++) sink += (await nestOurs.increment(next(), 600_000, POINTS, 0, 'default')).totalHits;
    },
  },
  { opsPerCall: BATCH },
);
if (sink === 0.5) console.error(sink);
report('adapters', figures);
// rate-limiter-flexible and Nest keep timers: exit rather than wait for them.
process.exit(0);
