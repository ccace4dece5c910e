// One of several processes on one upstream account, for the client suite: sends REQUESTS requests
// through a contender configured for the account's terms (5 arriving in any 1,000 ms, 2 in
// flight), over a network of 0-40 ms each way; prints the statuses as JSON.
//   node account-worker.mjs <contender> <url> <redisPort> <requests> <seed> <account>
import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';
import { sharedMemory } from '../../dist/index.js';
import { limitedFetch } from '../../dist/client-entry.js';
import { jitteryFetch } from '../../scripts/mock-upstream.mjs';

const [contender, url, redisPort, requests, seed, account] = process.argv.slice(2);
const network = jitteryFetch(Number(seed));

let send;
let end = () => undefined;
if (contender.startsWith('tollgate')) {
  const redis = contender === 'tollgate-redis' ? new Redis({ host: '127.0.0.1', port: Number(redisPort) }) : undefined;
  const store = redis === undefined ? sharedMemory({ name: account }) : { redis, name: account };
  const f = limitedFetch({ fetch: network, retry: false, upstream: { limit: 5, windowMs: 1000, concurrency: 2, store } });
  send = () => f(url).then((r) => r.status);
  end = () => (f.close(), redis?.disconnect());
} else {
  // bottleneck's clustered mode: its state in Redis, shared by every process with the same id.
  const terms = contender === 'bottleneck-reservoir' ? { reservoir: 5, reservoirRefreshAmount: 5, reservoirRefreshInterval: 1000 } : { minTime: 200 };
  const b = new Bottleneck({ id: account, datastore: 'ioredis', clientOptions: { host: '127.0.0.1', port: Number(redisPort) }, clearDatastore: false, maxConcurrent: 2, ...terms });
  send = () => b.schedule(() => network(url)).then((r) => r.status);
  end = () => b.disconnect();
}
const statuses = await Promise.all(Array.from({ length: Number(requests) }, () => send().catch((e) => e.code ?? 'error')));
await end();
process.stdout.write(`${JSON.stringify(statuses)}\n`);
process.exit(0);
