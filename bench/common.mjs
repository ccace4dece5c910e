// What every suite shares: the contenders' constructors, seeded keys, and a tinybench runner that
// reports nanoseconds per operation and prints progress as it goes.
import os from 'node:os';
import { Bench } from 'tinybench';

/** Keys shaped like production ones: `user:123456`. */
export function makeKeys(count) {
  const keys = new Array(count);
  for (let i = 0; i < count; i++) keys[i] = `user:${100_000 + i}`;
  return keys;
}

/** A fixed pseudo-random visiting order (xorshift), so every contender sees the same sequence. */
export function randomOrder(length, range, seed = 0x9e3779b9) {
  const order = new Uint32Array(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    order[i] = x % range;
  }
  return order;
}

export function progress(message) {
  process.stderr.write(`  ${message}\n`);
}

/**
 * Runs each task for `timeMs`; a task performs `opsPerCall` operations per call. Returns
 * { name: nsPerOp } using the median call time, the figure least moved by GC and neighbours.
 */
export async function measure(tasks, { timeMs = 1500, opsPerCall = 1 } = {}) {
  const results = {};
  for (const [name, fn] of Object.entries(tasks)) {
    const bench = new Bench({ time: timeMs, warmupTime: 300 });
    bench.add(name, fn);
    await bench.run();
    const task = bench.tasks[0];
    if (task.result.state !== 'completed') throw new Error(`${name}: ${task.result.error ?? task.result.state}`);
    const ns = (task.result.latency.p50 * 1e6) / opsPerCall;
    results[name] = ns;
    progress(`${name.padEnd(44)} ${ns.toFixed(1).padStart(9)} ns/op`);
  }
  return results;
}

export function machine() {
  const cpus = os.cpus();
  return { node: process.version, cpu: `${cpus[0]?.model ?? 'unknown'} (${cpus.length} cores)`, platform: `${os.platform()} ${os.arch()}` };
}

/** The one line a suite prints on stdout: its figures as JSON for bench/run.mjs. */
export function report(suite, figures) {
  process.stdout.write(`${JSON.stringify({ suite, figures })}\n`);
}

/** Random key numbers below `keys` (xorshift32): the key string is made by the caller, per call. */
export function keyNumbers(keys, seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % keys;
  };
}
