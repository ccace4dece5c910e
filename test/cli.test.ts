// The tollgate command as a user meets it: help and version, what a usage error says and its exit
// code (2), failures (1), policy names in --json, and no escape codes when stdout is not a terminal.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import { describe, expect, it } from 'vitest';
import { destroySharedMemory, fixedWindow, Limiter, sharedMemory, tokenBucket } from '../src/index.js';
import { ExpressRateLimitStore } from '../src/adapters-entry.js';
import { destroySharedPlaces, inspectSharedPlaces } from '../src/client-entry.js';
import { SharedPlaces } from '../src/engine/shared-places.js';
import { engines } from './helpers/engines.js';
import { listen } from './helpers/listen.js';

const cli = fileURLToPath(new URL('../bin/tollgate.mjs', import.meta.url));
const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function run(...args: string[]) {
  return runWith({}, ...args);
}
/** Runs the CLI with these environment variables over the test's own (undefined removes one). */
function runWith(env: Record<string, string | undefined>, ...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('tollgate (the CLI)', () => {
  it.each([['--help'], ['-h'], ['inspect', '--help']])('%s prints the help to stdout and exits 0', (...args) => {
    const r = run(...args);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^usage: tollgate <command> \[options\]$/m);
    for (const command of ['inspect <name>', 'native', 'build-native', '--version', 'exit codes']) expect(r.stdout).toContain(command);
  });

  it.each([['--version'], ['-v']])('%s prints the version and exits 0', (flag) => {
    expect(run(flag)).toEqual({ status: 0, stdout: `${version}\n`, stderr: '' });
  });

  it.each([
    [['frobnicate'], "unknown command 'frobnicate'"],
    [[], 'no command given'],
    [['inspect'], 'inspect needs the name of a shared table (as given to sharedMemory({ name }))'],
    [['inspect', 'api', '--bogus'], "unknown option '--bogus'"],
    [['inspect', 'api', '--top', 'abc'], "--top needs a whole number of keys (1 or more), got 'abc'"],
    [['inspect', 'api', '--top'], '--top needs a whole number of keys (1 or more), got nothing'],
    [['inspect', 'api', 'extra'], "unexpected argument 'extra'"],
    [['native', '--top', '3'], "'native' takes no --top"],
    [['build-native', '--json'], "'build-native' takes no --json"],
  ])('%j is a usage error: it says what was wrong and exits 2', (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`tollgate: ${message}\nRun 'tollgate --help' for usage.\n`);
  });

  it('a table that does not exist is a failure: exit 1, with the reason', () => {
    const r = run('inspect', `no-such-table-${process.pid}`);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^tollgate: /);
    expect(r.stderr).toMatch(engines().includes('native') ? /no shared memory segment/ : /native/i);
  });

  it('native --json describes the binary that loads', () => {
    const r = run('native', '--json');
    const info = JSON.parse(r.stdout) as { loaded: boolean };
    expect(r.status).toBe(info.loaded ? 0 : 1);
  });

  it.runIf(engines().includes('native'))('native says when TOLLGATE_ENGINE=js forces the TypeScript engine over the addon that loads (regression)', () => {
    const forced = runWith({ TOLLGATE_ENGINE: 'js' }, 'native');
    expect(forced.status).toBe(0);
    expect(forced.stdout).toMatch(/^native addon: \S.*, not used: TOLLGATE_ENGINE=js forces the TypeScript engine$/m);
    const json = JSON.parse(runWith({ TOLLGATE_ENGINE: 'js' }, 'native', '--json').stdout) as { loaded: boolean; engine: string };
    expect(json).toMatchObject({ loaded: true, engine: 'js' });
    // Unforced (or TOLLGATE_ENGINE=auto), the addon that loads is the engine, and nothing else is said.
    for (const env of [{ TOLLGATE_ENGINE: undefined }, { TOLLGATE_ENGINE: 'auto' }]) {
      const plain = runWith(env, 'native');
      expect(plain.stdout).not.toContain('TOLLGATE_ENGINE');
      expect(plain.stdout).toMatch(/^native addon: (prebuilt|built from source|TOLLGATE_NATIVE_PATH), /);
      expect(JSON.parse(runWith(env, 'native', '--json').stdout)).toMatchObject({ loaded: true, engine: 'native' });
    }
  });
});

describe.runIf(engines().includes('native'))('tollgate inspect on a live table', () => {
  it('--json names the policy as the factories do', () => {
    const name = `cli-json-${process.pid}`;
    const policy = tokenBucket({ capacity: 20, refillPerSecond: 5 / 3 });
    const limiter = new Limiter({ policy, store: sharedMemory({ name, capacity: 100 }) });
    try {
      limiter.consume('k');
      const r = run('inspect', name, '--json');
      expect(r.status).toBe(0);
      const report = JSON.parse(r.stdout) as { policy: unknown; capacity: number; hitCounter: boolean; stats: { slots: number; allowed: number } };
      expect(report.policy).toEqual({ kind: 'tokenBucket', capacity: 20, refillTokens: 1, refillIntervalMs: 600 });
      expect(report).toMatchObject({ capacity: 100, hitCounter: false, stats: { allowed: 1 } });
      expect(run('inspect', name).stdout).toContain('tokenBucket capacity 20, 1 per 600 ms');
    } finally {
      limiter.destroy();
    }
  });

  it('heavy-hitter keys are printed with their control characters escaped, never raw (regression)', () => {
    const name = `cli-hostile-${process.pid}`;
    destroySharedMemory(name);
    const limiter = new Limiter({ policy: fixedWindow({ limit: 100, windowMs: 60_000 }), topKeys: true, store: sharedMemory({ name, capacity: 100 }) });
    // Each key against what the report shows for it: C0 (ESC, CR, LF, TAB, NUL), DEL, C1 (CSI),
    // bidi overrides and isolates, a lone surrogate, and a backslash (so an escape is unambiguous).
    const keys: [string, string][] = [
      ['\x1b[2J\x1b[Hcleared', '\\x1b[2J\\x1b[Hcleared'],
      ["a\ntollgate table 'forged'\r", "a\\ntollgate table 'forged'\\r"],
      ['tab\there\x00\x7f', 'tab\\there\\x00\\x7f'],
      ['\u009b31mred', '\\x9b31mred'],
      ['user\u202etxt.exe\u2066', 'user\\u{202e}txt.exe\\u{2066}'],
      ['lone\ud800', 'lone\\u{d800}'],
      ['back\\slash', 'back\\\\slash'],
    ];
    try {
      for (const [key] of keys) limiter.consume(key);
      const r = run('inspect', name, '--top', '20');
      expect(r.status).toBe(0);
      expect(r.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|\r/);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines.filter((l) => l.startsWith('tollgate table'))).toHaveLength(1);
      const shown = lines.slice(lines.findIndex((l) => l.startsWith('  top keys')) + 1).map((l) => l.replace(/^ +1 ±0 +denied +0 {2}/, ''));
      expect(shown.sort()).toEqual(keys.map(([, escaped]) => escaped).sort());
      // --json keeps every key exact (JSON's own escapes), with nothing a terminal acts on raw.
      const json = run('inspect', name, '--json').stdout.trimEnd();
      expect(json).not.toMatch(/[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/);
      const report = JSON.parse(json) as { top: { key: string }[] };
      expect(report.top.map((t) => t.key).sort()).toEqual(keys.map(([key]) => key).sort());
    } finally {
      limiter.destroy();
    }
  });

  it('--watch into a pipe writes reports one after another, with no escape codes', async () => {
    const name = `cli-watch-${process.pid}`;
    const limiter = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 60_000 }), store: sharedMemory({ name, capacity: 100 }) });
    try {
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, [cli, 'inspect', name, '--watch', '0.05'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let text = '';
        child.stdout.on('data', (d: Buffer) => {
          text += d.toString();
          // Three reports seen: enough to know how they follow each other.
          if (text.split("tollgate table '").length > 3) child.kill();
        });
        child.on('error', reject);
        child.on('exit', () => resolve(text));
      });
      expect(out).not.toContain('\x1b');
      const reports = out.split('\n\n');
      expect(reports.length).toBeGreaterThanOrEqual(3);
      for (const report of reports.slice(0, 3)) expect(report).toMatch(/^tollgate table 'cli-watch-\d+'/);
    } finally {
      limiter.destroy();
      destroySharedMemory(name);
    }
  });
});

describe.runIf(engines().includes('native'))("tollgate inspect on a store adapter's table", () => {
  it('an ExpressRateLimitStore table is reported as the hit counter it is, not as a limit that allowed everything (regression)', async () => {
    const name = `cli-erl-${process.pid}`;
    destroySharedMemory(name);
    const store = new ExpressRateLimitStore({ store: sharedMemory({ name, capacity: 100 }) });
    try {
      const app = express();
      app.use(rateLimit({ windowMs: 60_000, limit: 5, store, standardHeaders: 'draft-6', legacyHeaders: false }));
      app.get('/', (_req, res) => {
        res.send('ok');
      });
      const url = `${await listen(createServer(app))}/`;
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) statuses.push((await fetch(url)).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);

      // The table counts every hit (express-rate-limit compares the count with its own limit):
      // its fixedWindow's limit is one no client reaches, and each hit is "allowed" by it.
      const r = run('inspect', name);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(
        /^ {2}policy {6}a hit counter in fixed windows of 60000 ms \(a store adapter's table: the library, such as express-rate-limit, compares the counts with its own limit\)$/m,
      );
      expect(r.stdout).toMatch(/^ {2}hits {8}7 counted, refused ones included; how many the library refused is not known here$/m);
      expect(r.stdout).not.toMatch(/18764998447|allowed 100\.0%|denied by limit|near limit/);
      expect(r.stdout).toMatch(/^ {2}top keys {4}off \(a store adapter's table keeps none\)$/m);
      const report = JSON.parse(run('inspect', name, '--json').stdout) as { hitCounter: boolean; stats: { allowed: number } };
      expect(report).toMatchObject({ hitCounter: true, stats: { allowed: 7 } });
      expect(run('list').stdout).toMatch(new RegExp(`^${name}  a hit counter in fixed windows of 60000 ms  capacity 100  entries 1$`, 'm'));
      expect(
        JSON.parse(
          run('list', '--json')
            .stdout.trim()
            .split('\n')
            .find((l) => l.includes(`"${name}"`))!,
        ),
      ).toMatchObject({ hitCounter: true });
    } finally {
      store.shutdown();
      destroySharedMemory(name);
    }
  });
});

describe.runIf(engines().includes('native'))('tollgate list and destroy, and the way out of a name clash', () => {
  it("a second app's policy on a used name is refused with the ways out, which work", () => {
    const name = `clash-${process.pid}`;
    destroySharedMemory(name);
    const first = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 1000 }), store: sharedMemory({ name, capacity: 100 }) });
    let error: (Error & { code?: string }) | undefined;
    try {
      new Limiter({ policy: tokenBucket({ capacity: 5, refillPerSecond: 1 }), store: sharedMemory({ name, capacity: 100 }) });
    } catch (e) {
      error = e as Error & { code?: string };
    }
    expect(error?.code).toBe('TOLLGATE_STORE_MISMATCH');
    for (const way of [`destroySharedMemory('${name}')`, `npx tollgate destroy ${name}`, 'npx tollgate list', `npx tollgate inspect ${name}`, 'another name']) {
      expect(error?.message).toContain(way);
    }
    // list shows it, with its policy; destroy removes it; then the second app starts.
    const listed = run('list');
    expect(listed.status).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${name}  fixedWindow 5 per 1000 ms  capacity 100  entries 0$`, 'm'));
    const json = run('list', '--json')
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { name: string; policy: { kind: string } });
    expect(json.find((t) => t.name === name)?.policy.kind).toBe('fixedWindow');
    first.close();
    expect(run('destroy', name)).toMatchObject({ status: 0, stdout: `removed shared table '${name}'\n` });
    expect(run('destroy', name)).toMatchObject({ status: 1, stderr: `tollgate: no shared table named '${name}'\n` });
    expect(run('list').stdout).not.toContain(`${name} `);
    const second = new Limiter({ policy: tokenBucket({ capacity: 5, refillPerSecond: 1 }), store: sharedMemory({ name, capacity: 100 }) });
    expect(second.created).toBe(true);
    second.destroy();
  });

  it.runIf(process.platform === 'linux')('list shows a hostile file name in /dev/shm escaped (regression)', () => {
    const file = `/dev/shm/tollgate.x${process.pid}\x1b[2J\ny`;
    writeFileSync(file, '');
    try {
      const r = run('list');
      expect(r.stdout).toContain(`x${process.pid}\\x1b[2J\\ny  (unreadable: `);
      expect(r.stdout).not.toContain('\x1b');
      expect(run('list', '--json').stdout).toContain(`"name":"x${process.pid}\\u001b[2J\\ny"`);
    } finally {
      rmSync(file);
    }
  });

  it('destroy needs a name', () => {
    expect(run('destroy')).toMatchObject({ status: 2, stderr: expect.stringContaining('destroy needs the name of a shared table') });
  });
});

describe.runIf(engines().includes('native'))("tollgate list and inspect on an upstream account's places", () => {
  const terms = { limit: 5, windowMs: 60_000, concurrency: 3, leaseMs: 600_000 };
  /** A live account: holder 1 with two places out and one answered (cooling), holder 2 with one. */
  async function liveAccount(name: string): Promise<SharedPlaces> {
    destroySharedPlaces(name);
    const store = new SharedPlaces({ name }, terms);
    const first = await store.acquire('0000000000000001', store.now());
    await store.acquire('0000000000000001', store.now());
    if (!first.granted) throw new Error('no place');
    await store.release('0000000000000001', first.place);
    await store.acquire('0000000000000002', store.now());
    return store;
  }

  it("list shows a live account's places as such, with terms and counts, never as a table to destroy (regression)", async () => {
    const name = `cli-places-${process.pid}`;
    const store = await liveAccount(name);
    try {
      const r = run('list');
      expect(r.status).toBe(0);
      const line = r.stdout.split('\n').find((l) => l.startsWith(`places.${name} `));
      expect(line).toBe(`places.${name}  upstream account's places: limit 5 per 60000 ms, concurrency 3, leaseMs 600000  in flight 2  cooling 1  waiting 0  holders 2`);
      expect(r.stdout).not.toMatch(new RegExp(`places\\.${name} .*(not a tollgate table|destroy)`));
      const json = run('list', '--json')
        .stdout.trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { name: string });
      expect(json.find((s) => s.name === `places.${name}`)).toEqual({
        name: `places.${name}`,
        kind: 'places',
        store: name,
        ...terms,
        inFlight: 2,
        cooling: 1,
        waiting: 0,
        holders: 2,
      });
    } finally {
      store.close();
      destroySharedPlaces(name);
    }
  });

  it("inspect places.<name> reports the account's terms and counts; inspect <name> points to it (regression: 'not a tollgate table')", async () => {
    const name = `cli-places-inspect-${process.pid}`;
    const store = await liveAccount(name);
    try {
      const r = run('inspect', `places.${name}`);
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(new RegExp(`^tollgate places 'places\\.${name}'`));
      expect(r.stdout).toContain(`limitedFetch({ upstream: { store: sharedMemory({ name: '${name}' }) } })`);
      expect(r.stdout).toMatch(/^ {2}terms {7}limit 5 per 60000 ms, concurrency 3, leaseMs 600000 {2}\(of the creating process\)$/m);
      expect(r.stdout).toMatch(/^ {2}in flight {3}2 places /m);
      expect(r.stdout).toMatch(/^ {2}cooling {5}1 /m);
      expect(r.stdout).toMatch(/^ {2}holders {5}2 /m);
      expect(r.stdout).not.toMatch(/not a tollgate table|destroy/);
      const json = JSON.parse(run('inspect', `places.${name}`, '--json').stdout) as Record<string, unknown>;
      expect(json).toEqual({ name: `places.${name}`, kind: 'places', store: name, ...terms, inFlight: 2, cooling: 1, waiting: 0, holders: 2 });
      // The store's own name is no segment: the message names the one to inspect.
      const bare = run('inspect', name);
      expect(bare.status).toBe(1);
      expect(bare.stderr).toContain(`npx tollgate inspect places.${name}`);
      // The same counts through the library's own call.
      expect(inspectSharedPlaces(name)).toEqual({ ...terms, inFlight: 2, cooling: 1, waiting: 0, holders: 2 });
    } finally {
      store.close();
      destroySharedPlaces(name);
    }
  });

  it.runIf(process.platform === 'linux')("a damaged places segment is named as an account's places, damaged, with destroySharedPlaces as the way out", async () => {
    const name = `cli-places-damaged-${process.pid}`;
    (await liveAccount(name)).close();
    // The holder count (byte 264 of the header) far out of range.
    const fd = openSync(`/dev/shm/tollgate.places.${name}`, 'r+');
    writeSync(fd, Buffer.from([1, 1, 1, 1]), 0, 4, 264);
    closeSync(fd);
    try {
      const listed = run('list');
      expect(listed.status).toBe(0);
      const line = listed.stdout.split('\n').find((l) => l.startsWith(`places.${name} `));
      expect(line).toContain("upstream account's places (unreadable: ");
      expect(line).toContain('is damaged (its holder count is out of range)');
      expect(line).toContain(`destroySharedPlaces('${name}')`);
      const r = run('inspect', `places.${name}`);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^tollgate: 'places\\.${name}' is an upstream account's places \\(limitedFetch's upstream\\.store '${name}'\\); it could not be read: `));
      expect(r.stderr).toContain(`destroySharedPlaces('${name}')`);
      expect(run('destroy', `places.${name}`)).toMatchObject({ status: 0, stdout: `removed shared segment 'places.${name}'\n` });
    } finally {
      destroySharedPlaces(name);
    }
  });

  it('a rate-limit table named places.<x> is still listed and inspected as the table it is', () => {
    const name = `places.cli-table-${process.pid}`;
    destroySharedMemory(name);
    const limiter = new Limiter({ policy: fixedWindow({ limit: 5, windowMs: 1000 }), store: sharedMemory({ name, capacity: 100 }) });
    try {
      expect(run('list').stdout).toMatch(new RegExp(`^${name.replace('.', '\\.')}  fixedWindow 5 per 1000 ms  capacity 100  entries 0$`, 'm'));
      const r = run('inspect', name);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^tollgate table '${name.replace('.', '\\.')}'`));
    } finally {
      limiter.destroy();
    }
  });
});
