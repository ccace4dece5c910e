// Starts throwaway redis-server processes on free loopback ports for tests and benchmarks:
// no persistence, no config files, stopped (and their files removed) by stop().
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Whether redis-server can be run here; `reason` says why not. */
export function redisAvailable() {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    return { available: false, reason: 'redis-server is not installed (apt-get install -y redis-server)' };
  }
  return { available: true, version: probe.stdout.trim() };
}

// Ports are drawn below the kernel's ephemeral range, where no outgoing connection (of this test
// run or any other program) is ever given one: a port found free stays free unless another listener
// takes it, and a server restarted on its port finds it again. Each draw is checked by binding it.
function listenerPortRange() {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && low > 12_000) return { from: 10_000, to: low - 1 };
  } catch {
    // not Linux: let the kernel choose
  }
  return undefined;
}

function canListen(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => {
      const chosen = server.address().port;
      server.close(() => resolve(chosen));
    });
  });
}

/** A loopback port nobody listens on now, outside the ephemeral range where the OS allows it. */
export async function freePort() {
  const range = listenerPortRange();
  if (range === undefined) return canListen(0);
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = range.from + Math.floor(Math.random() * (range.to - range.from + 1));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${range.from}-${range.to}`);
}

const PORT_TAKEN = 'Address already in use';

function runRedis(port, args) {
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${log}`)), 10_000);
    const onData = (chunk) => {
      log += chunk;
      if (log.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`redis-server exited with ${code}:\n${log}`), { portTaken: log.includes(PORT_TAKEN) }));
    });
  });
  return { proc, dir, ready };
}

/**
 * Starts redis-server on 127.0.0.1 (on `port`, or a free one) and resolves once it accepts
 * connections. Extra arguments (e.g. ['--cluster-enabled', 'yes']) are passed through; with
 * `{ clusterBus: true }` a free cluster bus port is added too. A port taken between its choice and
 * the server's bind (a parallel test's server) is chosen again; a given port is waited for briefly.
 */
export async function startRedis(extraArgs = [], port = undefined, { clusterBus = false } = {}) {
  const fixed = port !== undefined;
  for (let attempt = 1; ; attempt++) {
    const serverPort = fixed ? port : await freePort();
    const args = clusterBus ? [...extraArgs, '--cluster-port', String(await freePortOtherThan(serverPort))] : extraArgs;
    const { proc, dir, ready } = runRedis(serverPort, args);
    try {
      await ready;
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      if (!error.portTaken || attempt === 10) throw error;
      if (fixed) await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    proc.removeAllListeners('exit');
    return {
      port: serverPort,
      host: '127.0.0.1',
      process: proc,
      async stop() {
        if (proc.exitCode === null && proc.signalCode === null) {
          const exited = new Promise((resolve) => proc.once('exit', resolve));
          proc.kill('SIGKILL');
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

async function freePortOtherThan(taken) {
  for (;;) {
    const port = await freePort();
    if (port !== taken) return port;
  }
}

/**
 * A Redis Cluster on loopback joined with redis-cli --cluster create: three masters, each with
 * `replicas` replicas (default 0). Resolves when every node reports the cluster ok and every
 * replica is in sync. `servers` are the processes, for tests that kill one.
 */
export async function startCluster({ replicas = 0, nodeTimeoutMs = 2000 } = {}) {
  const nodes = [];
  const count = 3 * (1 + replicas);
  try {
    for (let i = 0; i < count; i++) {
      // The bus port defaults to port + 10000, which may not exist or be taken: each node gets a free one.
      nodes.push(
        await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs), '--cluster-announce-ip', '127.0.0.1'], undefined, {
          clusterBus: true,
        }),
      );
    }
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const info = (n, section) => spawnSync('redis-cli', ['-p', String(n.port), ...section], { encoding: 'utf8' }).stdout;
      const ok = nodes.every((n) => info(n, ['cluster', 'info']).includes('cluster_state:ok'));
      const synced = nodes.every((n) => {
        const replication = info(n, ['info', 'replication']);
        return replication.includes('role:master') || replication.includes('master_link_status:up');
      });
      if (ok && synced) break;
      if (Date.now() > deadline) throw new Error(`the cluster did not become ok:\n${nodes.map((n) => info(n, ['cluster', 'info'])).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw error;
  }
  return {
    nodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    servers: nodes,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}
