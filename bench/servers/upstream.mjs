// A mock rate-limited API for the client benchmark, in its own process so it never competes with
// the contenders for one event loop: a token bucket of RATE per second with a burst of BURST
// (scripts/mock-upstream.mjs' BucketUpstream). Prints its port; GET /stats returns { ok, tooMany }
// and resets them.
import { Limiter, tokenBucket } from '../../dist/index.js';
import { BucketUpstream } from '../../scripts/mock-upstream.mjs';

const [rate, burst] = process.argv.slice(2).map(Number);
const upstream = new BucketUpstream(new Limiter({ policy: tokenBucket({ capacity: burst, refillPerSecond: rate }) }));
const url = await upstream.listen();
process.stdout.write(`${new URL(url).port}\n`);
