// A hello-world server for the HTTP benchmark:
//   node bench/servers/hello.mjs <express|fastify> <none|empty|tollgate|tollgate-legacy|peer>
// Prints its port. Limits are high enough never to block: only the cost of checking is measured.
const [framework, variant] = process.argv.slice(2);
const LIMIT = 1e9;

async function tollgateLimiter() {
  const { Limiter, fixedWindow } = await import('../../dist/index.js');
  return new Limiter({ policy: fixedWindow({ limit: LIMIT, windowMs: 60_000 }), capacity: 100_000 });
}

// 'tollgate-legacy' sends the three X-RateLimit-* headers the peers send by default.
const headersOf = (v) => (v === 'tollgate-legacy' ? { headers: 'legacy' } : {});

let server;

// SIGUSR2 prints the CPU time this process has used (µs), so the benchmark can charge each
// variant the server CPU it spent per request, whatever the load generator manages.
function cpuOnSignal() {
  process.on('SIGUSR2', () => {
    const u = process.cpuUsage();
    process.stdout.write(`cpu ${u.user + u.system}\n`);
  });
}
if (framework === 'express') {
  const { default: express } = await import('express');
  const app = express();
  // The floor: what any middleware costs in express, before it does anything.
  if (variant === 'empty') app.use((_req, _res, next) => next());
  if (variant.startsWith('tollgate')) {
    const { rateLimit } = await import('../../dist/http-entry.js');
    app.use(rateLimit({ limiter: await tollgateLimiter(), ...headersOf(variant) }));
  } else if (variant === 'peer') {
    const { rateLimit } = await import('express-rate-limit');
    app.use(rateLimit({ windowMs: 60_000, limit: LIMIT }));
  }
  app.get('/', (_req, res) => res.send('hello'));
  server = app.listen(0, '127.0.0.1');
  cpuOnSignal();
  await new Promise((r) => server.once('listening', r));
} else {
  const { default: Fastify } = await import('fastify');
  const app = Fastify();
  if (variant === 'empty') app.addHook('onRequest', (_req, _reply, done) => done());
  if (variant.startsWith('tollgate')) {
    const { fastifyRateLimit } = await import('../../dist/http-entry.js');
    await app.register(fastifyRateLimit, { limiter: await tollgateLimiter(), ...headersOf(variant) });
  } else if (variant === 'peer') {
    const { default: rateLimit } = await import('@fastify/rate-limit');
    await app.register(rateLimit, { max: LIMIT, timeWindow: 60_000 });
  }
  app.get('/', async () => 'hello');
  await app.listen({ port: 0, host: '127.0.0.1' });
  server = app.server;
  cpuOnSignal();
}
process.stdout.write(`${server.address().port}\n`);
