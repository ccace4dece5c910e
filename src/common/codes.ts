// Every code tollgate's errors and warnings carry, once: its kind, what it means and what to do.
// docs/errors.md is the long form for users; test/error-codes.test.ts holds src/, native/binding/
// and that page to this list, so a code cannot be raised without being written down here.

/** How a code reaches the user: on an error thrown or rejected, or on a process warning. */
export type CodeKind = 'error' | 'warning';

/** The section of docs/errors.md that explains a code. */
export type CodeGroup = 'arguments' | 'lifecycle' | 'shared memory' | 'redis' | 'client' | 'warnings';

export interface CodeEntry {
  /** Both kinds only where one condition is an error to one caller and a warning to another. */
  readonly kinds: readonly CodeKind[];
  readonly group: CodeGroup;
  /** What happened, in one line. */
  readonly meaning: string;
  /** What the user should do about it, in one line. */
  readonly action: string;
}

const catalogue = {
  // Arguments and options: thrown before anything is counted or crosses into C++.
  TOLLGATE_INVALID_ARGUMENT: {
    kinds: ['error'],
    group: 'arguments',
    meaning: "A TypeError: an argument or option has the wrong type, or an option key is unknown (another library's name, a typo).",
    action: 'Fix the call as the message says ("Expected <what> for <name> but received <value>", or the option to write instead).',
  },
  TOLLGATE_OUT_OF_RANGE: {
    kinds: ['error'],
    group: 'arguments',
    meaning: 'A RangeError: the type is right but the value is not allowed (a cost above the limit, a key too long, a bad segment name).',
    action: 'Give a value inside the range the message names.',
  },

  // Lifecycle: loading the addon, using what was closed.
  TOLLGATE_CLOSED: {
    kinds: ['error'],
    group: 'lifecycle',
    meaning: 'A limiter, store, queue or fetch was used after close(), or was waiting when close() was called.',
    action: 'Stop using it after close(); when shutting down, treat this as the expected end of pending calls.',
  },
  TOLLGATE_NATIVE_UNAVAILABLE: {
    kinds: ['error', 'warning'],
    group: 'lifecycle',
    meaning: 'The native addon did not load: thrown where it is required (engine native, shared memory), warned once where the TypeScript engine takes over.',
    action: 'Run `npx tollgate native` to see why, then `npx tollgate build-native`; or accept the TypeScript engine (TOLLGATE_ENGINE=js).',
  },

  // Shared memory, and stores shared between processes.
  TOLLGATE_SHARED_MEMORY: {
    kinds: ['error'],
    group: 'shared memory',
    meaning: "A shared-memory segment could not be opened, mapped, removed or locked (permissions, another user's segment, a stopped lock holder), or the operation is not done on shared state.",
    action: 'Read the message: fix permissions or the name, check /dev/shm, destroy a stale segment once no process uses it.',
  },
  TOLLGATE_STORE_MISMATCH: {
    kinds: ['error'],
    group: 'shared memory',
    meaning: "A shared table or place store of this name already exists under other terms (capacity, shards, policy kind, limits) or is not tollgate's.",
    action: 'Give every process the same terms, or another name; remove the old one once unused (destroySharedMemory, `npx tollgate destroy`).',
  },
  TOLLGATE_OUT_OF_MEMORY: {
    kinds: ['error'],
    group: 'shared memory',
    meaning: 'Memory for a table could not be had: /dev/shm has no room for a shared table, or the process could not map an in-process one.',
    action: 'Give the container more /dev/shm or the table a smaller capacity; nothing was left behind.',
  },

  // Redis: the failures of RedisLimiter, the adapter stores on Redis and Redis place stores.
  TOLLGATE_REDIS_TIMEOUT: {
    kinds: ['error'],
    group: 'redis',
    meaning: 'Redis did not answer within timeoutMs.',
    action: "Nothing for the call (onError decided it, and Redis refuses it if it arrives late); if frequent, check the server's load and the network, or raise timeoutMs.",
  },
  TOLLGATE_REDIS_ERROR: {
    kinds: ['error'],
    group: 'redis',
    meaning: 'Redis or its client failed in a way no other code names; error.reply or error.cause holds the original.',
    action: 'Read error.reply / error.cause; onError decided the call.',
  },
  TOLLGATE_REDIS_UNAVAILABLE: {
    kinds: ['error'],
    group: 'redis',
    meaning: 'The node is down: its breaker is open (no call sent), or it answered LOADING, BUSY, MASTERDOWN or CLUSTERDOWN.',
    action: 'Nothing for the call (onError decided it; refund, block and reset reject); bring the node back, the breaker closes by itself.',
  },
  TOLLGATE_REDIS_LATE: {
    kinds: ['error'],
    group: 'redis',
    meaning: 'Redis received the call after its deadline by its own clock and did nothing.',
    action: 'Nothing (onError decided it; the call was not counted); if frequent, the path to Redis is slower than timeoutMs.',
  },
  TOLLGATE_REDIS_STATE_MISMATCH: {
    kinds: ['error'],
    group: 'redis',
    meaning: 'A key holds a value tollgate (or the format it writes) never writes there, or a counter would overflow; nothing was changed.',
    action: 'Delete the key, or give the limiter or store another name or prefix; it never fails open.',
  },
  TOLLGATE_REDIS_OUT_OF_MEMORY: {
    kinds: ['error'],
    group: 'redis',
    meaning: 'Redis refused a write with OOM (maxmemory reached under noeviction); nothing was half-written.',
    action: 'Free or add memory on Redis; onError decides until it has room.',
  },
  TOLLGATE_REDIS_READONLY: {
    kinds: ['error'],
    group: 'redis',
    meaning: 'The server answered READONLY: it became a replica (a failover).',
    action: 'Nothing for the call (onError decided it); point the client at the new primary, or let the Cluster client re-read its slots.',
  },
  TOLLGATE_REDIS_NO_PERMISSION: {
    kinds: ['error'],
    group: 'redis',
    meaning: 'Redis refused a command tollgate runs (NOPERM, unknown or renamed command): an ACL changed, or the adapter stores may not run EVAL.',
    action: 'Grant the commands listed under "Operations" in docs/redis.md (ACL SETUSER).',
  },
  TOLLGATE_REDIS_MOVING: {
    kinds: ['error'],
    group: 'redis',
    meaning: 'A Cluster slot is moving (TRYAGAIN, ASK, MOVED) while resharding.',
    action: "Nothing (onError decides that slot's calls until the move ends; the breaker stays closed).",
  },
  TOLLGATE_REDIS_UNSUPPORTED: {
    kinds: ['error'],
    group: 'redis',
    meaning: 'The server lacks or refuses a command tollgate needs (found by the first-contact probe), or the operation is not done on Redis (resetAll).',
    action: 'Grant or enable the commands the message names (checked again every 10 s), or delete the keys under the prefix yourself.',
  },

  // Waiting for capacity and queues: acquire(), createQueue(), limitedFetch().
  TOLLGATE_ACQUIRE_TIMEOUT: {
    kinds: ['error'],
    group: 'client',
    meaning: 'acquire() found no capacity within its timeoutMs; nothing was spent.',
    action: 'Retry later, raise timeoutMs, or give up on the work.',
  },
  TOLLGATE_ACQUIRE_ABORTED: {
    kinds: ['error'],
    group: 'client',
    meaning: "acquire()'s signal was aborted while it waited; nothing was spent; cause holds the signal's reason.",
    action: 'Nothing: this is the abort you asked for.',
  },
  TOLLGATE_ACQUIRE_NEVER: {
    kinds: ['error'],
    group: 'client',
    meaning: "acquire()'s limiter denied a cost within its limit with retryAfterMs Infinity (room never comes), so no wait could end; nothing was spent.",
    action: 'A RateLimiter of your own: give a finite retryAfterMs when room will come; else treat it as a permanent denial.',
  },
  TOLLGATE_QUEUE_FULL: {
    kinds: ['error'],
    group: 'client',
    meaning: 'queue.add() found maxSize jobs already waiting (QueueFullError).',
    action: 'Shed the job, retry later, or raise maxSize.',
  },

  // Process warnings: process.on('warning') receives them; each says what it found once.
  TOLLGATE_INVALID_ENV: {
    kinds: ['warning'],
    group: 'warnings',
    meaning: 'TOLLGATE_ENGINE holds a value other than js, native or auto, and is ignored.',
    action: 'Set it to js, native or auto, or unset it.',
  },
  TOLLGATE_POLICY_MISMATCH: {
    kinds: ['warning'],
    group: 'warnings',
    meaning: 'A shared table was created with other policy parameters than this process gives; each process decides with its own on the shared state.',
    action: 'Expected during a rolling deploy that changes a limit; otherwise give the limiter another segment name.',
  },
  TOLLGATE_UNTRUSTED_FORWARDED_HEADER: {
    kinds: ['warning'],
    group: 'warnings',
    meaning: 'A request carried X-Forwarded-For or Forwarded from a peer nobody trusts, so the peer is the client: behind a proxy every client shares one limit.',
    action: "Trust exactly your proxies (the framework's trust-proxy setting, or rateLimit's trustProxy).",
  },
  TOLLGATE_FRAMEWORK_TRUSTS_EVERY_HOP: {
    kinds: ['warning'],
    group: 'warnings',
    meaning: 'The framework believes every forwarding hop, so clients can choose their own key and pass the limit.',
    action: "Trust only your proxies' addresses or count in the framework, or give rateLimit trustProxy.",
  },
  TOLLGATE_MIDDLEWARE_ERROR: {
    kinds: ['warning'],
    group: 'warnings',
    meaning: 'The HTTP middleware failed where no error can reach your code: a refund after the response, or node:http with no next (answered 500).',
    action: 'Look at the cause in the message (often a store that is down).',
  },
  TOLLGATE_CALLBACK_ERROR: {
    kinds: ['warning'],
    group: 'warnings',
    meaning: 'A callback you gave (onEvent, onDeadLetter) threw; tollgate carried on.',
    action: 'Fix the callback; its exceptions are not handled anywhere else.',
  },
  TOLLGATE_UPSTREAM_STORE_FAILED: {
    kinds: ['warning'],
    group: 'warnings',
    meaning: "limitedFetch's upstream.store failed beside a request (a release, a renewal) or its lease lapsed; said once, later ones counted in stats().",
    action: 'Check the store (Redis, shared memory); give limitedFetch onEvent to see every one.',
  },
  TOLLGATE_UPSTREAM_ADAPT_FAILED: {
    kinds: ['warning'],
    group: 'warnings',
    meaning: "Adapting limitedFetch's limiters to an upstream's rate headers failed; the response was returned; said once, later ones counted.",
    action: 'Check the limiter that rejected (often a RedisLimiter that is down); give onEvent to see every one.',
  },
  TOLLGATE_REDIS_EVICTION: {
    kinds: ['warning'],
    group: 'warnings',
    meaning: "A Redis node has maxmemory with an evicting policy, which may evict tollgate's keys and re-admit what they counted.",
    action: "Use maxmemory-policy noeviction, or a server of tollgate's own.",
  },
  TOLLGATE_REDIS_LEASES_OFF: {
    kinds: ['warning'],
    group: 'warnings',
    meaning: 'A limiter asked for leases, but the Redis node cannot serve them (older than 7, or PEXPIRETIME not allowed); every decision goes to Redis.',
    action: 'Upgrade to Redis 7 or grant +pexpiretime, or drop the leases option.',
  },
} as const satisfies Readonly<Record<`TOLLGATE_${string}`, CodeEntry>>;

type Catalogue = typeof catalogue;

/** Every code tollgate raises or warns with. */
export type TollgateCode = keyof Catalogue;

type CodesOfKind<K extends CodeKind> = { [C in TollgateCode]: K extends Catalogue[C]['kinds'][number] ? C : never }[TollgateCode];

/** The codes of tollgate's errors (the `code` of what it throws or rejects with). */
export type TollgateErrorCode = CodesOfKind<'error'>;
/** The codes of tollgate's process warnings (`process.on('warning', (w) => w.code)`). */
export type TollgateWarningCode = CodesOfKind<'warning'>;
/** The codes of Redis failures: the error codes that start with TOLLGATE_REDIS_ (two warnings share the prefix). */
export type RedisErrorCode = Extract<TollgateErrorCode, `TOLLGATE_REDIS_${string}`>;
/** The codes of AcquireError. */
export type AcquireErrorCode = Extract<TollgateErrorCode, `TOLLGATE_ACQUIRE_${string}`>;

for (const entry of Object.values(catalogue)) {
  Object.freeze(entry.kinds);
  Object.freeze(entry);
}

/** The catalogue, frozen: code → { kinds, group, meaning, action }. */
export const CODES: { readonly [C in TollgateCode]: CodeEntry & Pick<Catalogue[C], 'kinds'> } = Object.freeze(catalogue);
