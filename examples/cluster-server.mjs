// A node:cluster HTTP server where every worker enforces one per-IP limit: 10 requests per 10 s
// per client across all workers together, through one shared-memory table.
//   node examples/cluster-server.mjs            (PORT=3000 WORKERS=<cores> by default)
//   for i in $(seq 12); do curl -s -o /dev/null -w '%{http_code} ' localhost:3000; done
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import { availableParallelism } from 'node:os';
import { Limiter, destroySharedMemory, fixedWindow, sharedMemory } from 'tollgate';

const port = Number(process.env.PORT ?? 3000);
// One name per deployment; every worker that opens it shares the table.
const store = sharedMemory({ name: `example-cluster-${port}`, capacity: 100_000 });

if (cluster.isPrimary) {
  const workers = Number(process.env.WORKERS ?? availableParallelism());
  // A segment left by an earlier run would carry its counts over: start clean.
  destroySharedMemory(store.name);
  for (let i = 0; i < workers; i++) cluster.fork();
  const shutdown = () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
    destroySharedMemory(store.name);
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
} else {
  const limiter = new Limiter({ policy: fixedWindow({ limit: 10, windowMs: 10_000 }), store });
  createServer((req, res) => {
    const d = limiter.consume(`ip:${req.socket.remoteAddress}`);
    res.setHeader('X-Served-By', String(process.pid));
    res.setHeader('X-RateLimit-Limit', d.limit);
    res.setHeader('X-RateLimit-Remaining', d.remaining);
    res.setHeader('X-RateLimit-Reset', Math.ceil(d.resetMs / 1000));
    if (!d.allowed) {
      res.statusCode = 429;
      res.setHeader('Retry-After', Math.ceil(d.retryAfterMs / 1000));
      res.end('Too Many Requests\n');
      return;
    }
    res.end(`hello from worker ${process.pid}\n`);
  }).listen(port, '127.0.0.1', () => console.log(`worker ${process.pid} listening on http://127.0.0.1:${port}`));
}
