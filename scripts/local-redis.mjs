// Starts throwaway redis-server processes on free loopback ports for tests and benchmarks:
// no persistence, no config files, stopped (and their files removed) by stop().
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts redis-server on 127.0.0.1 (on `port`, or a free one) and resolves once it accepts
 * connections. Extra arguments (e.g. ['--cluster-enabled', 'yes']) are passed through.
 */
export async function startRedis(extraArgs = [], port = undefined) {
  port ??= await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs];
  const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await new Promise((resolve, reject) => {
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
      reject(new Error(`redis-server exited with ${code}:\n${log}`));
    });
  });
  proc.removeAllListeners('exit');
  return {
    port,
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
      // The bus port defaults to port + 10000, which may not exist: give it a free one.
      const bus = await freePort();
      nodes.push(
        await startRedis([
          '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs),
          '--cluster-port', String(bus), '--cluster-announce-ip', '127.0.0.1',
        ]),
      );
    }
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
      { encoding: 'utf8', timeout: 60_000 },
    );
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
