// What Redis itself spends on the commands any fixed window needs, with no client and no script:
// the floor under "fixed window against the INCR ceiling" in the redis-scale suite. A window must
// give its counter a TTL, so beside the bare INCR (redis-benchmark's ceiling) it measures INCR with
// PEXPIRE sent only when the key is new (what a script's `if n == 1` does) and INCR with PEXPIRE NX
// on every call (what a scriptless client pipelines); beside the one-INCR EVALSHA ceiling, a GET then
// SET PX, the commands a token bucket's or GCRA's state needs. The commands are written as RESP and piped
// through `redis-cli --pipe` into a redis-server this starts, so the client costs Redis nothing
// beyond reading; Redis' main-thread CPU (INFO cpu) over the run, per decision. Rounds alternate.
//   node bench/experiments/redis-window-floor.mjs [decisions] [rounds]
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { redisAvailable, startRedis } from '../../scripts/local-redis.mjs';
import { keyNumbers } from '../common.mjs';

const DECISIONS = Number(process.argv[2] ?? 1_000_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const KEY_COUNTS = (process.env.KEYS ?? '100000,1000000').split(',').map(Number);
const TTL_MS = 600_000;

if (!redisAvailable().available) {
  console.log('SKIPPED: no redis-server');
  process.exit(0);
}

const command = (...args) => `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('');

/** Each shape's commands for one call on key number `n`; `fresh` says whether the key is new. */
const SHAPES = {
  'INCR alone (the ceiling)': (key) => command('INCR', key),
  'INCR, PEXPIRE when new': (key, fresh) => command('INCR', key) + (fresh ? command('PEXPIRE', key, TTL_MS) : ''),
  'INCR and PEXPIRE NX always': (key) => command('INCR', key) + command('PEXPIRE', key, TTL_MS, 'NX'),
  // The second ceiling (one script call per request) and the floor of a bucket's decision: its
  // state read, then written back with its TTL, no script.
  'EVALSHA of one INCR': (key) => command('EVALSHA', INCR_SHA, 1, key),
  'GET, then SET PX': (key) => command('GET', key) + command('SET', key, '12.5:1765000000000', 'PX', TTL_MS),
};
const INCR_SCRIPT = "return redis.call('INCR', KEYS[1])";
let INCR_SHA = '';

async function redisCpu(admin) {
  const info = await admin.info('cpu');
  const field = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user_main_thread') + field('used_cpu_sys_main_thread');
}

/** Pipes DECISIONS calls of one shape into the server; returns the fraction of new keys. */
async function pipe(server, shape, keys, seed) {
  const cli = spawn('redis-cli', ['-h', server.host, '-p', String(server.port), '--pipe'], { stdio: ['pipe', 'ignore', 'inherit'] });
  const done = new Promise((resolve, reject) => {
    cli.once('error', reject);
    cli.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`redis-cli --pipe exited ${code}`))));
  });
  const next = keyNumbers(keys, seed);
  const seen = new Uint8Array(keys);
  let fresh = 0;
  for (let written = 0; written < DECISIONS; ) {
    let chunk = '';
    for (const end = Math.min(DECISIONS, written + 10_000); written < end; written++) {
      const n = next();
      const isNew = seen[n] === 0;
      if (isNew) {
        seen[n] = 1;
        fresh++;
      }
      chunk += SHAPES[shape](`ip:${n}`, isNew);
    }
    if (!cli.stdin.write(chunk)) await new Promise((r) => cli.stdin.once('drain', r));
  }
  cli.stdin.end();
  await done;
  return fresh / DECISIONS;
}

const server = await startRedis(['--save', '', '--appendonly', 'no']);
const admin = new Redis({ host: server.host, port: server.port, lazyConnect: true });
await admin.connect();
INCR_SHA = String(await admin.script('LOAD', INCR_SCRIPT));
try {
  console.log(`${DECISIONS.toLocaleString('en-US')} decisions a run, ${ROUNDS} rounds, Node ${process.version}`);
  for (const keys of KEY_COUNTS) {
    const perShape = Object.fromEntries(Object.keys(SHAPES).map((s) => [s, []]));
    let freshShare = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const order = Object.keys(SHAPES);
      for (let turn = 0; turn < round % order.length; turn++) order.push(order.shift());
      for (const shape of order) {
        await admin.flushall();
        const before = await redisCpu(admin);
        freshShare = await pipe(server, shape, keys, 0x5eed + round);
        perShape[shape].push((((await redisCpu(admin)) - before) * 1e6) / DECISIONS);
      }
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
    const ceiling = median(perShape['INCR alone (the ceiling)']);
    console.log(`\n${keys.toLocaleString('en-US')} keys (${(freshShare * 100).toFixed(0)}% of calls make their key):`);
    for (const [shape, runs] of Object.entries(perShape)) {
      const m = median(runs);
      console.log(`  ${shape.padEnd(28)} ${m.toFixed(2)} µs Redis CPU/decision (runs ${runs.map((x) => x.toFixed(2)).join(', ')}); at most ${(ceiling / m).toFixed(2)}x the INCR ceiling`);
    }
  }
} finally {
  admin.disconnect();
  await server.stop();
}
