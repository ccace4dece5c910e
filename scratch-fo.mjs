import { Cluster } from 'ioredis';
import { startCluster } from './scripts/local-redis.mjs';
import { RedisLimiter, Limiter, fixedWindow } from './dist/index.js';
const cluster = await startCluster({ replicas: 1, nodeTimeoutMs: 1000 });
const ready = async (c) => { c.on('error', () => {}); if (c.status !== 'ready') await new Promise((r) => c.once('ready', r)); return c; };
const client = await ready(new Cluster([...cluster.nodes]));
client.on('+node', (n) => console.log(Date.now() % 100000, '+node', n.options.port));
client.on('-node', (n) => console.log(Date.now() % 100000, '-node', n.options.port));
client.on('error', (e) => console.log(Date.now() % 100000, 'err', e.message));
const policy = fixedWindow({ limit: 1e9, windowMs: 600000 });
const fallback = new Limiter({ policy, engine: 'js' });
const limiter = new RedisLimiter({ redis: client, name: 'fo', policy, timeoutMs: 200, onError: fallback, breaker: { retryMs: 50, maxRetryMs: 500 }, onEvent: (e) => { if (e.type === 'breaker') console.log(Date.now() % 100000, 'breaker', e.node, e.state); else if (Math.random() < 0.02) console.log(Date.now() % 100000, 'error', e.node, e.error.message, e.error.cause?.message); } });
const victim = cluster.servers[0];
let stop = false; let n = 0;
const lanes = Array.from({ length: 16 }, async () => { while (!stop) await limiter.consume('user:' + (n++ % 60)); });
await new Promise((r) => setTimeout(r, 500));
console.log(Date.now() % 100000, 'kill', victim.port, 'slot0 ->', client.slots[0]);
victim.process.kill('SIGKILL');
for (let i = 0; i < 30; i++) {
  await new Promise((r) => setTimeout(r, 500));
  const s = limiter.stats();
  console.log(Date.now() % 100000, 'slot0', client.slots[0], 'calls', s.redisCalls, 'fb', s.fallbackDecisions, 'sc', s.shortCircuited, 'to', s.timeouts, 'err', s.errors, 'open', s.openNodes);
}
stop = true; await Promise.all(lanes); limiter.close(); client.disconnect(); await cluster.stop();
