// One table for every process on the host: exactness across real processes, crashes, start-up
// races, attach rules, lifecycle, and worker threads.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { destroySharedMemory, fixedWindow, Limiter, sharedMemory, slidingWindow, tokenBucket } from '../src/index.js';
import { FastifyRateLimitStore } from '../src/adapters-entry.js';
import { engines } from './helpers/engines.js';

const child = fileURLToPath(new URL('./fixtures/shm-child.mjs', import.meta.url));
const used: string[] = [];
let counter = 0;
const fresh = () => {
  const name = `test-${process.pid}-${++counter}`;
  used.push(name, `${name}-barrier`);
  destroySharedMemory(name);
  destroySharedMemory(`${name}-barrier`);
  return name;
};
afterEach(() => {
  for (const name of used.splice(0)) destroySharedMemory(name);
});

/** Starts a child; resolves each JSON line it prints through `lines`. */
function start(args: string[]): { proc: ChildProcess; lines: AsyncIterator<unknown> } {
  const proc = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: proc.stdout! });
  const iterator = rl[Symbol.asyncIterator]();
  return {
    proc,
    lines: {
      next: async () => {
        const r = await iterator.next();
        return r.done ? r : { done: false, value: JSON.parse(r.value as string) };
      },
    },
  };
}
const firstLine = async (args: string[]) => (await start(args).lines.next()).value as Record<string, unknown>;

describe.runIf(engines().includes('native'))('shared-memory tables', () => {
  it.each([
    ['fixed window of 1,000', 'fixed'],
    ['token bucket of 1,000', 'bucket'],
  ])('%s: 8 processes × 10,000 consumes on one key allow exactly 1,000', async (_label, policy) => {
    const name = fresh();
    // Each child attaches, then waits at a barrier until all 8 are attached and live: exactness
    // is asserted over 8 processes on one table, whichever of them the scheduler runs first.
    const results = await Promise.all(Array.from({ length: 8 }, () => firstLine(['hammer', name, policy, '1', '10000', '8'])));
    const total = results.reduce((sum, r) => sum + (r.counts as number[])[0]!, 0);
    expect(total).toBe(1000);
  });

  it('8 processes on 200 keys: every key allows exactly its limit of 50', async () => {
    const name = fresh();
    const results = await Promise.all(Array.from({ length: 8 }, () => firstLine(['hammer', name, 'perKey', '200', '5000', '8'])));
    const perKey = new Array(200).fill(0);
    for (const r of results) (r.counts as number[]).forEach((c, k) => (perKey[k] += c));
    expect(perKey).toEqual(new Array(200).fill(50));
  });

  it('8 processes racing to create a missing segment end with one table', async () => {
    const name = fresh();
    const startAt = String(Date.now() + 800);
    const results = await Promise.all(Array.from({ length: 8 }, () => firstLine(['race', name, startAt])));
    expect(results.filter((r) => r.created === true)).toHaveLength(1);
    expect(results.every((r) => r.allowed === true)).toBe(true);
    const limiter = new Limiter({ policy: fixedWindow({ limit: 8, windowMs: 3_600_000 }), store: sharedMemory({ name, capacity: 10_000 }) });
    expect(limiter.created).toBe(false);
    expect(limiter.peek('shared')).toMatchObject({ allowed: false, remaining: 0 });
    limiter.close();
  });

  it('a process killed while holding a shard lock does not stop the others', async () => {
    const name = fresh();
    const policy = fixedWindow({ limit: 1000, windowMs: 3_600_000 });
    const limiter = new Limiter({ policy, store: sharedMemory({ name, capacity: 10_000 }) });
    for (let k = 0; k < 100; k++) limiter.consume(`other:${k}`, 7);

    const holder = start(['hold', name, 'victim']);
    expect((await holder.lines.next()).value).toEqual({ holding: true });
    const waiter = start(['wait', name, 'victim']);
    expect((await waiter.lines.next()).value).toEqual({ attached: true });
    holder.proc.kill('SIGKILL');
    // The kernel hands the robust lock over as the holder dies: the waiter (which waits without
    // a bound here) proceeds, having recovered the lock, never having timed out.
    const done = (await waiter.lines.next()).value as { allowed: boolean; recoveries: number; lockTimeouts: number };
    expect(done).toEqual({ allowed: true, recoveries: 1, lockTimeouts: 0 });
    // Every other shard and key kept its state; the victim's shard works on.
    for (let k = 0; k < 100; k++) expect(limiter.peek(`other:${k}`).remaining).toBe(993);
    expect(limiter.consume('victim').remaining).toBe(998);
    limiter.close();
  });

  it('worker threads in one process share the table', async () => {
    const name = fresh();
    const { Worker } = await import('node:worker_threads');
    const source = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.dist).then(({ Limiter, fixedWindow, sharedMemory }) => {
        const l = new Limiter({ policy: fixedWindow({ limit: 100, windowMs: 3600000 }), store: sharedMemory({ name: workerData.name, capacity: 10000 }) });
        let allowed = 0;
        for (let i = 0; i < 1000; i++) allowed += l.tryConsume('k') ? 1 : 0;
        l.close();
        parentPort.postMessage(allowed);
      });`;
    const dist = new URL('../dist/index.js', import.meta.url).href;
    const counts = await Promise.all(
      [0, 1, 2, 3].map(
        () =>
          new Promise<number>((resolve, reject) => {
            const w = new Worker(source, { eval: true, workerData: { name, dist } });
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    expect(counts.reduce((a, b) => a + b, 0)).toBe(100);
  });

  it('refuses to attach with a different capacity, shards, policy kind or onFull, naming the mismatch', () => {
    const name = fresh();
    const policy = slidingWindow({ limit: 10, windowMs: 1000 });
    const first = new Limiter({ policy, store: sharedMemory({ name, capacity: 5000 }) });
    const attach =
      (over: Partial<ConstructorParameters<typeof Limiter>[0]>, capacity = 5000, shards?: number) =>
      () =>
        new Limiter({ policy, store: sharedMemory({ name, capacity, ...(shards ? { shards } : {}) }), ...over });
    expect(attach({}, 6000)).toThrow(/created with capacity 5000, not 6000/);
    expect(attach({}, 5000, 4)).toThrow(/created with shards 1, not 4\b/);
    expect(attach({ policy: tokenBucket({ capacity: 10, refillPerSecond: 1 }) })).toThrow(/created for a slidingWindow policy, not tokenBucket/);
    expect(attach({ onFull: 'refuse' })).toThrow(/created with onFull 'evict'/);
    expect(attach({}, 6000)).toThrow(expect.objectContaining({ code: 'TOLLGATE_STORE_MISMATCH' }));
    expect(attach({ engine: 'js' })).toThrow(TypeError);
    first.close();
  });

  it('the shard count a table was created with is accepted, given or left to the default (regression)', () => {
    const policy = fixedWindow({ limit: 10, windowMs: 60_000 });
    const open = (name: string, shards?: number) => new Limiter({ policy, store: sharedMemory({ name, capacity: 100_000, ...(shards === undefined ? {} : { shards }) }) });
    // 100,000 keys get 16 shards by default: an attacher that says so is the same table.
    const byDefault = fresh();
    const creator = open(byDefault);
    expect(creator.stats().shards).toBe(16);
    const explicit = open(byDefault, 16);
    expect(explicit.created).toBe(false);
    creator.consume('k', 3);
    expect(explicit.peek('k').remaining).toBe(7);
    expect(() => open(byDefault, 8)).toThrow(/created with shards 16, not 8\b/);
    // And the other way round: created with the count the default picks, attached by default.
    const given = fresh();
    const first = open(given, 16);
    const second = open(given);
    expect(second.created).toBe(false);
    // Another count than the default is refused to an attacher that leaves it to the default.
    const other = fresh();
    const eight = open(other, 8);
    expect(() => open(other)).toThrow(/created with shards 8, not 16 \(the default for capacity 100000\)/);
    for (const l of [creator, explicit, first, second, eight]) l.close();
  });

  it('adapters counting several windows in one segment (per-route fastify configs) do not warn (regression)', () => {
    const name = fresh();
    const emitted = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const Store = FastifyRateLimitStore.with({ store: sharedMemory({ name, capacity: 100 }) });
      const store = new Store({ timeWindow: 1000, max: 5 });
      const incr = (windowMs: number) => store.incr('k', () => undefined, windowMs);
      incr(1000);
      incr(60_000);
      expect(emitted.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === 'TOLLGATE_POLICY_MISMATCH')).toEqual([]);
      store.close();
    } finally {
      emitted.mockRestore();
    }
  });

  it('a different limit is used, with a warning, and never corrupts the shared state', async () => {
    const name = fresh();
    const a = new Limiter({ policy: fixedWindow({ limit: 3, windowMs: 60_000 }), store: sharedMemory({ name, capacity: 100 }) });
    // Captured, not printed: the warning is the behaviour under test.
    const emitted = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    let b: Limiter;
    let calls: unknown[][];
    try {
      b = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 60_000 }), store: sharedMemory({ name, capacity: 100 }) });
    } finally {
      calls = [...emitted.mock.calls];
      emitted.mockRestore();
    }
    expect(calls).toHaveLength(1);
    const [message, options] = calls[0] as [string, { code: string }];
    expect(options.code).toBe('TOLLGATE_POLICY_MISMATCH');
    // In a person's terms (regression: packed numbers), with the way out.
    expect(message).toContain('created for fixedWindow 3 per 60000 ms; this process uses fixedWindow 5 per 60000 ms');
    expect(message).toContain('another segment name');
    a.consume('k', 3);
    expect(a.tryConsume('k')).toBe(false);
    expect(b.consume('k')).toMatchObject({ allowed: true, limit: 5, remaining: 1 });
    a.close();
    b.close();
  });

  it('rejects bad names, bad modes and segments that are not tables', () => {
    for (const bad of ['', '../etc', 'a/b', '.hidden', 'x'.repeat(201), 'sp ace', 'new\nline']) {
      expect(() => sharedMemory({ name: bad, capacity: 10 })).toThrow(RangeError);
    }
    expect(() => sharedMemory({ name: 7 as unknown as string, capacity: 10 })).toThrow(TypeError);
    expect(() => sharedMemory({ name: 'ok', capacity: 0 })).toThrow(RangeError);
    expect(() => sharedMemory({ name: 'ok', capacity: 10, mode: 0o400 })).toThrow(/0o600/);
    expect(() => sharedMemory({ name: 'ok', capacity: 10, mode: 0o1777 })).toThrow(RangeError);
    expect(() => destroySharedMemory('../x')).toThrow(RangeError);
    const name = fresh();
    writeFileSync(`/dev/shm/tollgate.${name}`, Buffer.alloc(8192, 0x41), { mode: 0o600 });
    expect(() => new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 10 }), store: sharedMemory({ name, capacity: 10 }) })).toThrow(/is not a tollgate table/);
  });

  it('creates segments 0600 by default, or with the mode given', () => {
    const name = fresh();
    new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 10 }), store: sharedMemory({ name, capacity: 10 }) }).close();
    expect(statSync(`/dev/shm/tollgate.${name}`).mode & 0o777).toBe(0o600);
    const shared = fresh();
    new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 10 }), store: sharedMemory({ name: shared, capacity: 10, mode: 0o660 }) }).close();
    expect(statSync(`/dev/shm/tollgate.${shared}`).mode & 0o777).toBe(0o660);
  });

  it('close detaches and keeps the table; destroy removes the name while others carry on', () => {
    const name = fresh();
    const policy = fixedWindow({ limit: 5, windowMs: 3_600_000 });
    const store = sharedMemory({ name, capacity: 100 });
    const a = new Limiter({ policy, store });
    a.consume('k', 2);
    a.close();
    // A segment left behind (say, by a crashed deployment) is reused when compatible.
    const b = new Limiter({ policy, store });
    expect(b.created).toBe(false);
    expect(b.peek('k').remaining).toBe(3);
    const c = new Limiter({ policy, store });
    expect(c.destroy()).toBe(true);
    expect(c.closed).toBe(true);
    // b still decides on the old table; a newcomer starts a fresh one.
    expect(b.consume('k').remaining).toBe(2);
    const d = new Limiter({ policy, store });
    expect(d.created).toBe(true);
    expect(d.peek('k').remaining).toBe(5);
    b.close();
    d.close();
    expect(destroySharedMemory(name)).toBe(true);
    expect(destroySharedMemory(name)).toBe(false);
  });
});

// A container's /dev/shm (Docker's and Kubernetes' default: 64 MB) is smaller than many tables.
// The child runs in a mount namespace of its own, with a 16 MiB tmpfs over /dev/shm (needs root).
const smallShm = (args: string[]) =>
  spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o size=16m tmpfs /dev/shm && exec "$0" "$@"`, process.execPath, child, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
const canMountShm = process.platform === 'linux' && spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs /dev/shm'], { stdio: 'ignore' }).status === 0;
// CI runs as root on Linux, where a mount namespace is always possible: there it must run, never skip.
if (process.env.CI && process.platform === 'linux' && !canMountShm) throw new Error('CI needs unshare -m with a tmpfs mount on /dev/shm for the small-/dev/shm tests (run as root)');

describe.runIf(engines().includes('native') && canMountShm)('shared-memory tables in a small /dev/shm', () => {
  it('a table larger than the free space is a coded error at creation, with nothing left behind, never SIGBUS (regression)', () => {
    const run = smallShm(['oversize', 'big']);
    expect({ signal: run.signal, status: run.status, stderr: run.stderr }).toEqual({ signal: null, status: 0, stderr: '' });
    const out = JSON.parse(run.stdout) as Record<string, { code?: string; message?: string; created?: boolean }> & { allowed: number; files: string[] };
    // Committed at creation (the default) or not, the space is reserved up front: refused there.
    for (const refused of [out.committed!, out.lazy!]) {
      expect(refused.code).toBe('TOLLGATE_OUT_OF_MEMORY');
      expect(refused.message).toMatch(/Shared memory segment 'big-(committed|lazy)' needs \d+\.\d MiB in \/dev\/shm, which has \d+\.\d MiB free/);
      expect(refused.message).toContain('--shm-size');
    }
    // One table that fits is made and filled key by key; a second that does not fit beside it is
    // refused at creation rather than killing either process when its pages are first touched.
    expect(out.first).toEqual({ created: true });
    expect(out.second!.code).toBe('TOLLGATE_OUT_OF_MEMORY');
    expect(out.allowed).toBe(300_000);
    // No temporary file of the refused tables stays in /dev/shm.
    expect(out.files).toEqual(['tollgate.big-first']);
  });

  it('workers starting together on a table that fits once, not twice, all open the one table (regression: they ran out of room)', () => {
    const run = smallShm(['crowd', 'crowd', '4']);
    expect({ signal: run.signal, status: run.status, stderr: run.stderr }).toEqual({ signal: null, status: 0, stderr: '' });
    const out = JSON.parse(run.stdout) as { results: { created?: boolean; allowed?: number; code?: string }[]; remaining: number; files: string[] };
    expect(out.results.filter((r) => r.code !== undefined)).toEqual([]);
    expect(out.results.filter((r) => r.created === true)).toHaveLength(1);
    // One table, counted by all: 400 consumes of a limit of 1,000.
    expect(out.results.reduce((sum, r) => sum + (r.allowed ?? 0), 0)).toBe(400);
    expect(out.remaining).toBe(600);
    expect(out.files).toEqual(['tollgate.crowd']);
  });
});

describe.runIf(engines().includes('native'))('shared-memory tables: stuck holders, dead creators, damaged segments', () => {
  const damage = fileURLToPath(new URL('./fixtures/damage-child.mjs', import.meta.url));
  const runChild = (file: string, args: string[]) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) => {
      const proc = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout.on('data', (d) => (out += d));
      proc.stderr.on('data', (d) => (out += d));
      proc.on('exit', (code, signal) => resolve({ code, signal, out }));
    });

  it.each([
    ['allow', true],
    ['deny', false],
  ] as const)('a live process stuck holding a shard lock bounds the others’ wait (onLockTimeout %s)', async (onLockTimeout, allowed) => {
    const name = fresh();
    const holder = start(['hold', name, 'victim']);
    expect((await holder.lines.next()).value).toEqual({ holding: true });
    try {
      const waiter = start(['wait', name, 'victim', '150', onLockTimeout]);
      expect((await waiter.lines.next()).value).toEqual({ attached: true });
      // The holder is alive (as a SIGSTOPped one would be): no recovery, a timeout instead.
      expect((await waiter.lines.next()).value).toEqual({ allowed, recoveries: 0, lockTimeouts: 1 });
    } finally {
      holder.proc.kill('SIGKILL');
    }
  });

  it('consumeMany waits lockTimeoutMs once per batch, not once per key of a held shard (regression)', async () => {
    const name = fresh();
    const holder = start(['hold', name, 'victim']);
    expect((await holder.lines.next()).value).toEqual({ holding: true });
    try {
      const limiter = new Limiter({
        policy: fixedWindow({ limit: 1000, windowMs: 3_600_000 }),
        store: sharedMemory({ name, capacity: 10_000, lockTimeoutMs: 100, onLockTimeout: 'deny' }),
      });
      const keys = Array.from({ length: 200 }, (_, i) => `batch:${i}`);
      const started = performance.now();
      const out = limiter.consumeMany(keys);
      const elapsed = performance.now() - started;
      // The keys of the held shard are denied (onLockTimeout), the others allowed; a lock that
      // was waited for once per key would have cost about 100 ms times the held shard's keys.
      const denied = out.filter((v) => v === 0).length;
      expect(denied).toBeGreaterThan(20);
      expect(denied).toBeLessThan(200);
      expect(limiter.stats().lockTimeouts).toBe(denied);
      expect(elapsed).toBeLessThan(100 * 10);
      // The limiter's own timeout is back for single calls: a held shard still gets its full wait.
      expect(limiter.tryConsume('victim')).toBe(false);
      expect(limiter.stats().lockTimeouts).toBe(denied + 1);
      limiter.close();
    } finally {
      holder.proc.kill('SIGKILL');
    }
  });

  it('removes the temporary files of creators that died before publishing', async () => {
    const name = fresh();
    const ns = readlinkSync('/proc/self/ns/pid').replace(/\D/g, '');
    // A creator that has exited (its pid is free) and one that lives (this process).
    const dead = spawn(process.execPath, ['-e', '0']);
    const deadPid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid!)));
    const stale = `/dev/shm/tollgate.${name}.init-${ns}-${deadPid}-1`;
    const live = `/dev/shm/tollgate.${name}.init-${ns}-${process.pid}-2`;
    writeFileSync(stale, Buffer.alloc(4096));
    writeFileSync(live, Buffer.alloc(4096));
    const limiter = new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 1000 }), store: sharedMemory({ name, capacity: 100 }) });
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(live)).toBe(true);
    limiter.destroy();
    rmSync(live);

    // Real creators killed part way through a large table: whatever they left is gone after the
    // next create, and destroy() cleans up too.
    for (let i = 0; i < 3; i++) {
      const creator = start(['create', name, '4000000']);
      expect((await creator.lines.next()).value).toEqual({ creating: true });
      await new Promise((r) => setTimeout(r, 20 * i));
      creator.proc.kill('SIGKILL');
      await new Promise((r) => creator.proc.on('exit', r));
    }
    destroySharedMemory(name);
    expect(readdirSync('/dev/shm').filter((f) => f.startsWith(`tollgate.${name}.init-`))).toEqual([]);
  });

  it('refuses names that could pass for a temporary file', () => {
    expect(() => sharedMemory({ name: 'a.init-1-2-3', capacity: 10 })).toThrow(RangeError);
  });

  it('bounds every cursor read from the segment: a damaged reclaim cursor crashes nothing', async () => {
    const name = fresh();
    const result = await runChild(damage, ['cursors', name]);
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    const report = JSON.parse(result.out) as { allowed: number; lockTimeouts: number };
    expect(report).toMatchObject({ allowed: 2000, lockTimeouts: 0 });
  });

  it('random bytes over the shard locks: calls give up on them (no abort), and new attachers are refused', async () => {
    const name = fresh();
    const result = await runChild(damage, ['locks', name]);
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    const report = JSON.parse(result.out) as { allowed: number; lockTimeouts: number };
    // onLockTimeout 'allow': every call on a damaged lock was let through and counted.
    expect(report).toMatchObject({ allowed: 2000, lockTimeouts: 2000 });
    expect(() => new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 3_600_000 }), store: sharedMemory({ name, capacity: 1000 }) })).toThrow(
      expect.objectContaining({ code: 'TOLLGATE_STORE_MISMATCH', message: expect.stringMatching(/is corrupt/) }),
    );
  });

  it('a segment of another table layout is refused, never read, whichever version made it', () => {
    const name = fresh();
    const options = () => ({ policy: fixedWindow({ limit: 5, windowMs: 1000 }), store: sharedMemory({ name, capacity: 1000 }) });
    new Limiter(options()).close();
    const file = `/dev/shm/tollgate.${name}`;
    // Every layout keeps the magic at offset 0 and its version at offset 8, so any version reads
    // the other's number there and refuses: layout 3 (0.1) readers expect 3 and see 4.
    const header = readFileSync(file).subarray(0, 12);
    expect(header.subarray(0, 8).toString('latin1')).toBe('tllgate1');
    expect(header.readUInt32LE(8)).toBe(4);
    const fd = openSync(file, 'r+');
    const older = Buffer.alloc(4);
    older.writeUInt32LE(3);
    writeSync(fd, older, 0, 4, 8);
    closeSync(fd);
    expect(() => new Limiter(options())).toThrow(
      expect.objectContaining({ code: 'TOLLGATE_STORE_MISMATCH', message: expect.stringMatching(/incompatible version of tollgate \(table layout 3; this one reads layout 4\)/) }),
    );
  });

  it('an empty or truncated segment is refused with a clear message', () => {
    const name = fresh();
    writeFileSync(`/dev/shm/tollgate.${name}`, '');
    const open = () => new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 1000 }), store: sharedMemory({ name, capacity: 1000 }) });
    expect(open).toThrow(expect.objectContaining({ code: 'TOLLGATE_SHARED_MEMORY', message: expect.stringMatching(/is empty or truncated \(0 bytes\)/) }));
    writeFileSync(`/dev/shm/tollgate.${name}`, Buffer.alloc(8192));
    expect(open).toThrow(expect.objectContaining({ code: 'TOLLGATE_STORE_MISMATCH' }));
  });
});

describe.runIf(engines().includes('native'))('acquire() on a shared table sees room another process gave back', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a waiter asks again within 20 ms when another limiter on the segment refunds, counting no denial meanwhile', async () => {
    vi.useFakeTimers();
    const name = fresh();
    const policy = fixedWindow({ limit: 2, windowMs: 600_000 });
    // Two limiters on one segment: as far as waiting lines go, two processes.
    const here = new Limiter({ policy, store: sharedMemory({ name, capacity: 64 }) });
    const there = new Limiter({ policy, store: sharedMemory({ name, capacity: 64 }) });
    there.consume('k');
    there.consume('k');
    let granted = false;
    const waiting = here.acquire('k').then((d) => ((granted = true), d));
    await vi.advanceTimersByTimeAsync(0);
    const deniedBefore = here.stats().denied;
    await vi.advanceTimersByTimeAsync(100);
    expect(granted).toBe(false);
    // Rechecks peek: they add no denial however long the wait.
    expect(here.stats().denied).toBe(deniedBefore);
    there.refund('k');
    await vi.advanceTimersByTimeAsync(20);
    expect(granted).toBe(true);
    expect((await waiting).allowed).toBe(true);
    here.close();
    there.close();
  });

  it('in one process a refund wakes the key’s waiter at once, with no timer', async () => {
    vi.useFakeTimers();
    const limiter = new Limiter({ policy: fixedWindow({ limit: 1, windowMs: 600_000 }) });
    limiter.consume('k');
    let granted = false;
    const waiting = limiter.acquire('k').then(() => (granted = true));
    await vi.advanceTimersByTimeAsync(0);
    limiter.refund('k');
    await Promise.resolve();
    await Promise.resolve();
    expect(granted).toBe(true);
    await waiting;
    limiter.close();
  });
});
