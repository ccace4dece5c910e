// Requests per second of hello-world express and fastify apps with no limiter, with tollgate and
// with each framework's usual limiter (express-rate-limit, @fastify/rate-limit), under autocannon
// on loopback. Variants alternate over several rounds; the median of each is reported.
//   node bench/suites/http.mjs [secondsPerRun] [rounds]
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { progress, report } from '../common.mjs';

const seconds = Number(process.argv[2] ?? 4);
const rounds = Number(process.argv[3] ?? 4);
const server = fileURLToPath(new URL('../servers/hello.mjs', import.meta.url));

// The server gets core 0 and this process (autocannon) core 1, when taskset exists: the two
// otherwise fight over the same cores and the run-to-run spread drowns a few percent.
const pinned = spawnSync('taskset', ['-c', '1', 'true']).status === 0;
if (pinned) spawnSync('taskset', ['-cp', '1', String(process.pid)]);

function startServer(framework, variant) {
  return new Promise((resolve, reject) => {
    const command = pinned ? 'taskset' : process.execPath;
    const args = pinned ? ['-c', '0', process.execPath, server, framework, variant] : [server, framework, variant];
    const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.stdout.once('data', (d) => resolve({ port: Number(String(d).trim()), proc }));
    proc.once('exit', (code) => reject(new Error(`${framework}/${variant} server exited ${code}`)));
  });
}

/** The server process's CPU time so far, in µs (it answers SIGUSR2 on stdout). */
function serverCpu(proc) {
  return new Promise((resolve) => {
    proc.stdout.once('data', (d) => resolve(Number(/cpu (\d+)/.exec(String(d))?.[1])));
    proc.kill('SIGUSR2');
  });
}

async function measure(framework, variant) {
  const { port, proc } = await startServer(framework, variant);
  try {
    // A short warm-up so every variant is measured with optimised code.
    await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 20, duration: 1 });
    const cpuBefore = await serverCpu(proc);
    const result = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 20, duration: seconds });
    const cpuAfter = await serverCpu(proc);
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${framework}/${variant}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    return { rps: result.requests.average, cpuUsPerRequest: (cpuAfter - cpuBefore) / result.requests.total };
  } finally {
    proc.removeAllListeners('exit');
    proc.kill();
  }
}

progress(pinned ? 'server pinned to core 0, load generator to core 1' : 'taskset not found: server and load generator share the cores');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const figures = {};
for (const framework of ['express', 'fastify']) {
  const runs = { none: [], empty: [], tollgate: [], 'tollgate-legacy': [], peer: [] };
  const cpu = { none: [], empty: [], tollgate: [], 'tollgate-legacy': [], peer: [] };
  for (let round = 0; round < rounds; round++) {
    for (const variant of Object.keys(runs)) {
      const { rps, cpuUsPerRequest } = await measure(framework, variant);
      runs[variant].push(rps);
      cpu[variant].push(cpuUsPerRequest);
      progress(`${framework} ${variant.padEnd(15)} round ${round + 1}: ${Math.round(rps).toLocaleString('en')} req/s, ${cpuUsPerRequest.toFixed(2)} µs server CPU per request`);
    }
  }
  figures[framework] = Object.fromEntries(Object.entries(runs).map(([v, xs]) => [v, median(xs)]));
  figures[framework].runs = runs;
  figures[framework].cpu = Object.fromEntries(Object.entries(cpu).map(([v, xs]) => [v, median(xs)]));
}
report('http', figures);
