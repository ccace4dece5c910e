#!/usr/bin/env node
// The tollgate command: inspect a live shared table or an upstream account's shared places, say
// which native binary loads, build one.
// Exit codes: 0 done, 1 failed (no such table, no native addon, the build failed), 2 usage error.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const HELP = `tollgate: inspect tollgate's shared-memory tables and its native addon

usage: tollgate <command> [options]

commands:
  list               the shared segments on this host: each table's name, policy, capacity
                     and entries; each upstream account's places (places.<name>, the
                     upstream.store of limitedFetch) with their terms and counts
      --json             one object per line
  inspect <name>     a live shared table: its policy, capacity, counters and heavy hitters;
                     or, for places.<name>, an account's places: terms, in flight, cooling,
                     waiting processes and holders
      --json             the report as JSON, one object per line
      --watch [seconds]  report again every few seconds (default 2) until interrupted
      --top <n>          heavy hitters to show (default 10)
  destroy <name>     remove a shared table or places segment (processes attached keep theirs
                     until they close it)
  native             which native binary loads here, or why none does
      --json             the same, as JSON
  build-native       build the addon from source in this installed package
                     (needs cmake and a C++17 compiler); installs its build tools,
                     cmake-js and node-addon-api, into the package's build-tools/
                     folder first if they do not resolve, printing the npm command
      --no-install       do not install them: say what to install and exit 1

options:
  -h, --help         this help
  -v, --version      tollgate's version

exit codes: 0 done, 1 failed (no such table, no native addon, the build failed), 2 usage error
`;

class UsageError extends Error {}

/** Reads argv into { command, name?, json, watch, top }; throws UsageError saying what was wrong. */
function parse(argv) {
  const options = { command: undefined, name: undefined, json: false, watch: 0, top: 10, install: true, help: false, version: false };
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') options.help = true;
    else if (arg === '-v' || arg === '--version') options.version = true;
    else if (arg === '--json') options.json = true;
    else if (arg === '--no-install') options.install = false;
    else if (arg === '--watch') {
      const next = argv[i + 1];
      if (next !== undefined && /^\d+(\.\d+)?$/.test(next)) {
        options.watch = Number(next);
        i++;
        if (!(options.watch > 0)) throw new UsageError(`--watch needs a number of seconds above 0, got '${next}'`);
      } else options.watch = 2;
    } else if (arg === '--top') {
      const next = argv[++i];
      if (next === undefined || !/^\d+$/.test(next) || Number(next) < 1) throw new UsageError(`--top needs a whole number of keys (1 or more), got ${next === undefined ? 'nothing' : `'${next}'`}`);
      options.top = Number(next);
    } else if (arg.startsWith('-')) throw new UsageError(`unknown option '${arg}'`);
    else positional.push(arg);
  }
  if (options.help || options.version) return options;
  const [command, ...rest] = positional;
  if (command === undefined) throw new UsageError('no command given');
  options.command = command;
  const allowed = { inspect: ['--json', '--watch', '--top'], list: ['--json'], destroy: [], native: ['--json'], 'build-native': ['--no-install'] }[command];
  if (allowed === undefined) throw new UsageError(`unknown command '${command}'`);
  for (const [flag, used] of [
    ['--json', options.json],
    ['--watch', options.watch > 0],
    ['--top', argv.includes('--top')],
    ['--no-install', !options.install],
  ]) {
    if (used && !allowed.includes(flag)) throw new UsageError(`'${command}' takes no ${flag}`);
  }
  if (command === 'inspect' || command === 'destroy') {
    if (rest.length === 0) throw new UsageError(`${command} needs the name of a shared table (as given to sharedMemory({ name }))`);
    options.name = rest.shift();
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
  return options;
}

// What a terminal acts on instead of showing, or that makes a line read other than it is: C0
// controls and DEL (escape sequences, newlines), C1 controls (0x9b is CSI on some terminals), the
// bidirectional marks, overrides and isolates, lone surrogates; and the backslash that starts an
// escape, so that every escape reads one way.
const UNSAFE = /[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const NAMED = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Text from a table (a client's key) as a terminal shows it and does not act on it. */
function printable(text) {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`);
  });
}

/** One JSON line whose strings keep their exact values, with nothing a terminal acts on left raw (JSON escapes C0 and lone surrogates itself). */
function jsonLine(value) {
  return `${JSON.stringify(value).replace(/[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}

/**
 * A table's policy in a person's terms. A store adapter's hit counter (ExpressRateLimitStore and
 * the like) is a fixed window whose limit no client reaches: its library compares the counts with
 * a limit of its own, which the table never sees, so the window is all there is to say.
 */
function policyText(report) {
  return report.hitCounter ? `a hit counter in fixed windows of ${report.policy.windowMs} ms` : describePolicy(report.policy);
}

function render(name, report, top) {
  const s = report.stats;
  const decisions = s.allowed + s.denied + s.deniedBlocked + s.refused;
  const pct = (n) => (decisions === 0 ? '0.0%' : `${((100 * n) / decisions).toFixed(1)}%`);
  const lines = [
    `tollgate table '${name}'  (${new Date().toISOString()})`,
    report.hitCounter
      ? `  policy      ${policyText(report)} (a store adapter's table: the library, such as express-rate-limit, compares the counts with its own limit)`
      : `  policy      ${policyText(report)}  (of the creating process)`,
    `  capacity    ${report.capacity.toLocaleString('en')} keys, ${s.slots.toLocaleString('en')} slots in ${report.shards} shard${report.shards === 1 ? '' : 's'}, onFull ${report.evict ? 'evict' : 'refuse'}`,
    `  entries     ${s.entries.toLocaleString('en')} (load ${((100 * s.entries) / s.slots).toFixed(1)}%, fullest shard ${((100 * s.maxShardEntries) / (s.slots / report.shards)).toFixed(1)}%)`,
  ];
  if (report.hitCounter) {
    // Every hit is "allowed" by a limit no one reaches: the table knows hits, not the library's verdicts.
    const uncounted = s.refused + s.deniedBlocked > 0 ? `; ${(s.refused + s.deniedBlocked).toLocaleString('en')} not counted (table full or blocked)` : '';
    lines.push(`  hits        ${s.allowed.toLocaleString('en')} counted, refused ones included; how many the library refused is not known here${uncounted}`);
  } else {
    lines.push(
      `  decisions   ${decisions.toLocaleString('en')}: allowed ${pct(s.allowed)}, denied by limit ${pct(s.denied)}, by block ${pct(s.deniedBlocked)}, table full ${pct(s.refused)}`,
      `  near limit  ${s.nearLimit.toLocaleString('en')} allowed with a fifth or less left`,
    );
  }
  lines.push(`  table       evictions ${s.evictions}, swept ${s.swept}, lock waits ${s.lockContended}, lock recoveries ${s.lockRecoveries}, ${(s.memoryBytes / 2 ** 20).toFixed(1)} MiB`);
  if (!report.topKeys) {
    lines.push(`  top keys    off (${report.hitCounter ? "a store adapter's table keeps none" : 'create the table with the topKeys option'})`);
  } else {
    const byCount = [...report.top].sort((a, b) => b.count - a.count).slice(0, top);
    lines.push(`  top keys    (${report.hitCounter ? 'hits; ' : ''}counts halve every ${report.topKeysPeriodMs / 1000} s; "±" is the most a count may be over)`);
    for (const t of byCount) {
      const denied = report.hitCounter ? '' : ` denied ${String(t.denied).padStart(10)}`;
      lines.push(`    ${String(t.count).padStart(10)} ±${String(t.error).padEnd(8)}${denied}  ${printable(t.key)}${t.length > t.key.length ? '…' : ''}`);
    }
  }
  return lines.join('\n');
}

/** The segment names of an upstream account's places: places.<store>, as SharedPlaces names them. */
const PLACES_PREFIX = 'places.';

/** An account's terms in a person's terms: "limit 500 per 60000 ms, concurrency 20". */
function termsText(r) {
  const parts = [];
  if (r.limit > 0) parts.push(`limit ${r.limit} per ${r.windowMs} ms`);
  if (r.concurrency > 0) parts.push(`concurrency ${r.concurrency}`);
  return parts.join(', ');
}

function countsText(r) {
  return `in flight ${r.inFlight}  cooling ${r.cooling}  waiting ${r.waiting}  holders ${r.holders}`;
}

function renderPlaces(name, report) {
  const store = name.slice(PLACES_PREFIX.length);
  return [
    `tollgate places '${name}'  (${new Date().toISOString()})`,
    `  account     an upstream account's places: limitedFetch({ upstream: { store: sharedMemory({ name: '${store}' }) } })`,
    `  terms       ${termsText(report)}, leaseMs ${report.leaseMs}  (of the creating process)`,
    `  in flight   ${report.inFlight} place${report.inFlight === 1 ? '' : 's'} (requests sent, not yet answered)`,
    report.limit > 0
      ? `  cooling     ${report.cooling} (answered within the last ${report.windowMs} ms; in flight and cooling stay within ${report.limit})`
      : '  cooling     none (no window: a place frees with its answer)',
    `  waiting     ${report.waiting} holder${report.waiting === 1 ? '' : 's'} with requests queued for a place`,
    `  holders     ${report.holders} holding or waiting for places (one per process sharing the account), each under a lease of ${report.leaseMs} ms`,
  ].join('\n');
}

/**
 * A places segment's report, or undefined when the name holds a rate-limit table after all (a
 * table may be named places.x); throws what else went wrong.
 */
function inspectPlaces(name) {
  if (!name.startsWith(PLACES_PREFIX)) return undefined;
  try {
    return inspectSharedPlaces(name.slice(PLACES_PREFIX.length));
  } catch (error) {
    if (error.code === 'TOLLGATE_STORE_MISMATCH' && error.message.includes('is a rate-limit table')) return undefined;
    throw error;
  }
}

/**
 * What to say of a places segment that cannot be read: whose it is, and, unless it is missing or
 * its message already says what to do (damaged), the way out for a deployment that is gone.
 */
function placesFailure(name, error) {
  if (error.message.startsWith('There is no shared memory segment')) return error.message;
  const store = name.slice(PLACES_PREFIX.length);
  const said = `'${name}' is an upstream account's places (limitedFetch's upstream.store '${store}'); it could not be read: ${error.message.replace(/\.?$/, '.')}`;
  return error.message.includes('is damaged') ? said : `${said} If no process of that deployment runs any more, remove it: npx tollgate destroy ${name}`;
}

function fail(message) {
  process.stderr.write(`tollgate: ${message}\n`);
  process.exit(1);
}

let options;
try {
  options = parse(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`tollgate: ${error.message}\nRun 'tollgate --help' for usage.\n`);
  process.exit(2);
}

if (options.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (options.version) {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${manifest.version}\n`);
  process.exit(0);
}

// Loaded only now: --help, --version and usage errors answer even where dist/ cannot load.
const { describePolicy, destroySharedMemory, inspectSharedMemory, nativeInfo } = await import('../dist/index.js');
const { inspectSharedPlaces } = await import('../dist/client-entry.js');

if (options.command === 'list') {
  // Linux keeps POSIX shared memory in /dev/shm: tollgate's are tollgate.<name> (and, while a
  // creator is publishing one, tollgate.<name>.init-...).
  let files;
  try {
    files = readdirSync('/dev/shm');
  } catch {
    fail('listing needs /dev/shm (Linux); on this system inspect a table by its name');
  }
  const names = files
    .filter((f) => f.startsWith('tollgate.') && !f.includes('.init-'))
    .map((f) => f.slice('tollgate.'.length))
    .sort();
  if (names.length === 0 && !options.json) process.stdout.write('no shared tables or places on this host\n');
  for (const name of names) {
    // An account's places: named for what they are, never as an unreadable table.
    if (name.startsWith(PLACES_PREFIX)) {
      let places;
      try {
        places = inspectPlaces(name);
      } catch (error) {
        const store = name.slice(PLACES_PREFIX.length);
        if (options.json) process.stdout.write(jsonLine({ name, kind: 'places', store, error: error.message }));
        else process.stdout.write(`${printable(name)}  upstream account's places (unreadable: ${printable(error.message)})\n`);
        continue;
      }
      if (places !== undefined) {
        const store = name.slice(PLACES_PREFIX.length);
        if (options.json) process.stdout.write(jsonLine({ name, kind: 'places', store, ...places }));
        else process.stdout.write(`${printable(name)}  upstream account's places: ${termsText(places)}, leaseMs ${places.leaseMs}  ${countsText(places)}\n`);
        continue;
      }
    }
    let report;
    try {
      report = inspectSharedMemory(name);
    } catch (error) {
      // A file in /dev/shm may have any name: shown escaped, as keys are.
      if (options.json) process.stdout.write(jsonLine({ name, error: error.message }));
      else process.stdout.write(`${printable(name)}  (unreadable: ${printable(error.message)})\n`);
      continue;
    }
    if (options.json) process.stdout.write(jsonLine({ name, kind: 'table', policy: report.policy, hitCounter: report.hitCounter, capacity: report.capacity, entries: report.stats.entries }));
    else process.stdout.write(`${name}  ${policyText(report)}  capacity ${report.capacity.toLocaleString('en')}  entries ${report.stats.entries.toLocaleString('en')}\n`);
  }
  process.exit(0);
}

if (options.command === 'destroy') {
  try {
    const removed = destroySharedMemory(options.name);
    if (!removed) fail(`no shared table named '${options.name}'`);
    const what = options.name.startsWith(PLACES_PREFIX) ? 'shared segment' : 'shared table';
    process.stdout.write(`removed ${what} '${options.name}'\n`);
    process.exit(0);
  } catch (error) {
    fail(error.message);
  }
}

if (options.command === 'native') {
  const info = nativeInfo();
  if (options.json) process.stdout.write(`${JSON.stringify(info)}\n`);
  else if (info.loaded) {
    // Loading is not running: TOLLGATE_ENGINE=js puts every limiter left to 'auto' on TypeScript.
    const unused = info.engine === 'js' ? ', not used: TOLLGATE_ENGINE=js forces the TypeScript engine' : '';
    process.stdout.write(`native addon: ${info.source}, ${info.path}${unused}\n`);
  } else {
    const runs =
      info.engine === undefined
        ? 'TOLLGATE_ENGINE=native insists on it, so limiters throw TOLLGATE_NATIVE_UNAVAILABLE'
        : `the TypeScript engine runs${info.forced === 'js' ? ' (TOLLGATE_ENGINE=js forces it anyway)' : ''}`;
    process.stdout.write(`native addon: not loaded; ${runs}.\n${info.failures.map((f) => `  ${f}`).join('\n')}\n`);
  }
  process.exit(info.loaded ? 0 : 1);
}

if (options.command === 'build-native') {
  const { buildNative } = await import('./build-native.mjs');
  const result = buildNative(fileURLToPath(new URL('..', import.meta.url)), { install: options.install });
  if (!result.ok) fail(result.message);
  process.stdout.write(`tollgate: built ${result.binary}; it is used where no prebuilt binary fits, or always with TOLLGATE_BUILD_FROM_SOURCE=1\n`);
  process.exit(0);
}

// inspect. Escape codes (clear the screen) only for a terminal; piped, reports follow each other.
const terminal = process.stdout.isTTY === true;
let shown = 0;
const show = () => {
  let places;
  try {
    places = inspectPlaces(options.name);
  } catch (error) {
    throw new Error(placesFailure(options.name, error));
  }
  if (places !== undefined) {
    if (options.json) process.stdout.write(jsonLine({ name: options.name, kind: 'places', store: options.name.slice(PLACES_PREFIX.length), ...places }));
    else if (options.watch > 0 && terminal) process.stdout.write(`\x1b[2J\x1b[H${renderPlaces(options.name, places)}\n`);
    else process.stdout.write(`${shown++ > 0 ? '\n' : ''}${renderPlaces(options.name, places)}\n`);
    return;
  }
  let report;
  try {
    report = inspectSharedMemory(options.name);
  } catch (error) {
    // A store's name given for its places' segment: say which name to inspect.
    if (error.message.startsWith('There is no shared memory segment') && existsSync(`/dev/shm/tollgate.${PLACES_PREFIX}${options.name}`)) {
      throw new Error(`${error.message}; an upstream account's places of that name are '${PLACES_PREFIX}${options.name}': npx tollgate inspect ${PLACES_PREFIX}${options.name}`);
    }
    throw error;
  }
  if (options.json) process.stdout.write(jsonLine({ name: options.name, ...report }));
  else if (options.watch > 0 && terminal) process.stdout.write(`\x1b[2J\x1b[H${render(options.name, report, options.top)}\n`);
  else process.stdout.write(`${shown++ > 0 ? '\n' : ''}${render(options.name, report, options.top)}\n`);
};
try {
  show();
  if (options.watch > 0) {
    const timer = setInterval(() => {
      try {
        show();
      } catch (error) {
        clearInterval(timer);
        fail(error.message);
      }
    }, options.watch * 1000);
  }
} catch (error) {
  fail(error.message);
}
