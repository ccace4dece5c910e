// A conformance subset run on every runtime we claim (scripts/test-matrix.mjs): every algorithm
// on both engines, bad input, shared memory across two processes, and the express middleware.
// Prints one JSON line: { runtime, engine, source, checks: { name: 'ok' | reason } }.
//   <runtime> test/conformance/check.mjs            (TOLLGATE_ENGINE=js forces the TS engine)
//   <runtime> test/conformance/check.mjs child <name> <n>   (internal: the second process)
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { Limiter, ManualClock, fixedWindow, slidingWindow, tokenBucket, leakyBucket, sharedMemory, destroySharedMemory, nativeInfo } from '../../dist/index.js';
import { rateLimit } from '../../dist/http-entry.js';

const [mode, name, count] = process.argv.slice(2);

if (mode === 'child') {
  const l = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 60_000 }), store: sharedMemory({ name, capacity: 100 }) });
  let allowed = 0;
  for (let i = 0; i < Number(count); i++) allowed += l.tryConsume('shared') ? 1 : 0;
  l.close();
  console.log(allowed);
  process.exit(0);
}

const runtime = globalThis.Deno ? `deno ${globalThis.Deno.version.deno}` : globalThis.Bun ? `bun ${globalThis.Bun.version}` : `node ${process.version}`;
const checks = {};
const check = async (label, fn) => {
  try {
    await fn();
    checks[label] = 'ok';
  } catch (error) {
    checks[label] = String(error?.message ?? error).slice(0, 300);
  }
};
const assert = (condition, message) => {
  if (!condition) throw new Error(message);
};
const same = (a, b, what) => assert(JSON.stringify(a) === JSON.stringify(b), `${what}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);

const engine = new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 1000 }) }).engine;
const native = nativeInfo();

const policies = {
  fixedWindow: fixedWindow({ limit: 5, windowMs: 1000 }),
  slidingWindow: slidingWindow({ limit: 5, windowMs: 1000 }),
  tokenBucket: tokenBucket({ capacity: 5, refillPerSecond: 3 }),
  leakyBucket: leakyBucket({ burst: 5, ratePerSecond: 3 }),
};
for (const [kind, policy] of Object.entries(policies)) {
  await check(`${kind}: a burst of 5, the 6th denied with an exact wait, then allowed`, () => {
    const clock = new ManualClock(10_000);
    const l = new Limiter({ policy, clock, capacity: 100 });
    const allowed = Array.from({ length: 6 }, () => l.consume('k').allowed);
    same(allowed, [true, true, true, true, true, false], 'burst');
    const wait = l.peek('k').retryAfterMs;
    assert(wait > 0 && Number.isFinite(wait), `retryAfterMs ${wait}`);
    clock.advance(wait - 1);
    assert(!l.consume('k').allowed, 'allowed 1 ms early');
    clock.advance(1);
    assert(l.consume('k').allowed, 'not allowed at the exact wait');
  });
  if (nativeInfo().loaded) {
    await check(`${kind}: both engines decide identically (5,000 random operations)`, () => {
      const clock = new ManualClock(10_000);
      const a = new Limiter({ policy, clock, engine: 'native', capacity: 1000 });
      const b = new Limiter({ policy, clock, engine: 'js', capacity: 1000 });
      let seed = 7;
      const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      for (let i = 0; i < 5000; i++) {
        const key = `k${Math.floor(random() * 20)}`;
        const cost = 1 + Math.floor(random() * 3);
        if (random() < 0.2) clock.advance(Math.floor(random() * 400));
        same(a.consume(key, cost), b.consume(key, cost), `op ${i}`);
      }
    });
  }
}

await check('bad input: coded TypeError/RangeError, nothing spent', () => {
  const l = new Limiter({ policy: policies.fixedWindow, capacity: 100 });
  for (const [call, code] of [
    [() => l.consume(''), 'TOLLGATE_OUT_OF_RANGE'],
    [() => l.consume(5), 'TOLLGATE_INVALID_ARGUMENT'],
    [() => l.consume('k', 0), 'TOLLGATE_OUT_OF_RANGE'],
    [() => l.consume('k', 1, null), 'TOLLGATE_INVALID_ARGUMENT'],
  ]) {
    let error;
    try {
      call();
    } catch (e) {
      error = e;
    }
    assert(error?.code === code, `expected ${code}, got ${error?.code} (${error?.message})`);
  }
  same(l.peek('k').remaining, 5, 'remaining');
});

if (native.loaded) {
  await check('shared memory: two processes share one limit', () => {
    const shm = `matrix-${process.pid}`;
    destroySharedMemory(shm);
    const prefix = JSON.parse(process.env.MATRIX_CHILD_ARGS ?? '[]');
    const script = new URL(import.meta.url).pathname;
    const first = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 60_000 }), store: sharedMemory({ name: shm, capacity: 100 }) });
    let here = 0;
    for (let i = 0; i < 3; i++) here += first.tryConsume('shared') ? 1 : 0;
    const [command, ...pre] = JSON.parse(process.env.MATRIX_CHILD_COMMAND ?? 'null') ?? [process.execPath, ...prefix];
    const r = spawnSync(command, [...pre, script, 'child', shm, '10'], { encoding: 'utf8' });
    first.destroy();
    assert(r.status === 0, `child exited ${r.status}: ${r.stderr}`);
    same([here, Number(r.stdout.trim())], [3, 2], 'allowed here and in the child');
  });
} else {
  await check('shared memory: refused with TOLLGATE_NATIVE_UNAVAILABLE without the addon', () => {
    let code;
    try {
      new Limiter({ policy: policies.fixedWindow, store: sharedMemory({ name: 'x', capacity: 10 }) });
    } catch (e) {
      code = e.code;
    }
    same(code, 'TOLLGATE_NATIVE_UNAVAILABLE', 'code');
  });
}

await check('express middleware: 2 of 3 pass, then 429 with the headers', async () => {
  const { default: express } = await import('express');
  const app = express();
  app.use(rateLimit({ limiter: new Limiter({ policy: fixedWindow({ limit: 2, windowMs: 60_000 }), capacity: 100 }) }));
  app.get('/', (_req, res) => res.send('ok'));
  const server = createServer(app);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${server.address().port}/`;
    const statuses = [];
    let last;
    for (let i = 0; i < 3; i++) {
      last = await fetch(url);
      await last.text();
      statuses.push(last.status);
    }
    same(statuses, [200, 200, 429], 'statuses');
    same([last.headers.get('x-ratelimit-limit'), last.headers.get('x-ratelimit-remaining'), last.headers.get('ratelimit-policy')], ['2', '0', '"default";q=2;w=60'], 'headers');
  } finally {
    server.close();
  }
});

console.log(JSON.stringify({ runtime, engine, source: native.source ?? 'none', checks }));
process.exit(0);
