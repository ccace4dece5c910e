// Every Redis client tollgate accepts, reduced to the three things it needs: run a script by SHA,
// run it by text, and say which node serves a slot (for the breaker and the server clock).
import { invalidArgument } from '../common/errors.js';

/** ioredis 5/6 and iovalkey: `Redis` or `Cluster` (told apart by their `isCluster`). */
export interface IoRedisClient {
  evalsha(sha: string, numKeys: number, ...args: string[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: string[]): Promise<unknown>;
}

/** node-redis 4+ (`createClient()`): commands go through `sendCommand`. */
export interface NodeRedisClient {
  sendCommand(args: string[]): Promise<unknown>;
  evalSha: unknown;
}

/** node-redis 4+ (`createCluster()`): routed by a key of the command. */
export interface NodeRedisCluster {
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]): Promise<unknown>;
  evalSha: unknown;
  getSlotMaster: unknown;
}

/**
 * Any other client, in a few lines: send one command (`['EVALSHA', sha, '3', ...]`) and resolve
 * with Redis' reply (integers as numbers, arrays as arrays). On a Redis Cluster, send it to the
 * node that serves `key` (every key of one command shares its slot), set `cluster: true`, and
 * give `nodeOf` if you can, so that one dead node does not stop the others (see docs/redis.md).
 */
export interface RedisCommandSender {
  sendCommand(command: string[], key: string): Promise<unknown>;
  /** Whether the commands go to a Redis Cluster (batches are then split by slot). Default false. */
  readonly cluster?: boolean;
  /** Which node serves a slot now (any stable name, e.g. "host:port"). */
  nodeOf?(slot: number): string;
}

/** What RedisLimiter's `redis` option takes. */
export type RedisClient = IoRedisClient | NodeRedisClient | NodeRedisCluster | RedisCommandSender;

/** A client reduced to what tollgate uses. */
export interface RedisTransport {
  /** Which client this is, for errors and stats. */
  readonly kind: 'ioredis' | 'node-redis' | 'sender';
  readonly cluster: boolean;
  /** EVALSHA, rejecting with the client's error (NOSCRIPT included). */
  evalsha(sha: string, keys: readonly string[], args: readonly string[]): Promise<unknown>;
  /** EVAL of the script's text. */
  eval(script: string, keys: readonly string[], args: readonly string[]): Promise<unknown>;
  /** The node serving `slot` as the client knows it now ('' on a single server). */
  nodeOf(slot: number): string;
  /** Asks the client to read the cluster's slot map again (a node stopped answering: a replica may have taken over). */
  refresh(): void;
}

type Loose = Record<string, unknown> & { [key: string]: unknown };

/** `EVALSHA sha n key... arg...` (or EVAL) as one command, for the clients that take a command. */
const evalCommand = (name: 'EVAL' | 'EVALSHA', head: string, keys: readonly string[], args: readonly string[]) => [name, head, String(keys.length), ...keys, ...args];

const fn = (o: Loose, name: string) => typeof o[name] === 'function';

function ioredis(c: IoRedisClient & Loose, cluster: boolean): RedisTransport {
  // The *Buffer forms skip ioredis' walk over the reply converting bulk strings: tollgate's
  // scripts reply with integers only, so the two forms answer alike, the second without the walk.
  type Run = (head: string, n: number, ...args: string[]) => Promise<unknown>;
  const evalsha = (fn(c, 'evalshaBuffer') ? c.evalshaBuffer : c.evalsha) as Run;
  const evalText = (fn(c, 'evalBuffer') ? c.evalBuffer : c.eval) as Run;
  return {
    kind: 'ioredis',
    cluster,
    evalsha: (sha, keys, args) => evalsha.call(c, sha, keys.length, ...keys, ...args),
    eval: (script, keys, args) => evalText.call(c, script, keys.length, ...keys, ...args),
    // ioredis keeps, per slot, the nodes serving it ("host:port"), master first.
    nodeOf: cluster ? (slot) => String((c.slots as string[][] | undefined)?.[slot]?.[0] ?? '') : () => '',
    // ioredis refreshes on MOVED and every slotsRefreshInterval; a dead master answers neither.
    refresh: () => {
      if (cluster && fn(c, 'refreshSlotsCache')) (c.refreshSlotsCache as () => void)();
    },
  };
}

function nodeRedis(c: Loose, cluster: boolean): RedisTransport {
  const send = cluster
    ? (args: string[], key: string | undefined) => (c as unknown as NodeRedisCluster).sendCommand(key, false, args)
    : (args: string[]) => (c as unknown as NodeRedisClient).sendCommand(args);
  const nodeOf = (slot: number): string => {
    // node-redis 5+: `slots[slot].master.address`; 4: getSlotMaster(slot) with host and port.
    const shard = (c.slots as { master?: { address?: string } }[] | undefined)?.[slot];
    if (shard?.master?.address !== undefined) return shard.master.address;
    if (fn(c, 'getSlotMaster')) {
      const master = (c.getSlotMaster as (s: number) => { host?: string; port?: number } | undefined)(slot);
      if (master !== undefined) return `${master.host}:${master.port}`;
    }
    return '';
  };
  return {
    kind: 'node-redis',
    cluster,
    evalsha: (sha, keys, args) => send(evalCommand('EVALSHA', sha, keys, args), keys[0]),
    eval: (script, keys, args) => send(evalCommand('EVAL', script, keys, args), keys[0]),
    nodeOf: cluster ? nodeOf : () => '',
    refresh: () => undefined, // node-redis rediscovers on MOVED and on a node's connection failing
  };
}

function sender(c: RedisCommandSender, cluster: boolean): RedisTransport {
  return {
    kind: 'sender',
    cluster,
    evalsha: (sha, keys, args) => c.sendCommand(evalCommand('EVALSHA', sha, keys, args), keys[0] as string),
    eval: (script, keys, args) => c.sendCommand(evalCommand('EVAL', script, keys, args), keys[0] as string),
    // Without the client's word on nodes, each slot is its own: a dead node's slots stop alone.
    nodeOf: !cluster ? () => '' : typeof c.nodeOf === 'function' ? (slot) => String(c.nodeOf?.(slot) ?? '') : (slot) => `slot ${slot}`,
    refresh: () => undefined,
  };
}

/**
 * Tells the clients apart by what they have: ioredis and iovalkey have `evalsha`; node-redis has
 * `sendCommand` and `evalSha` (a cluster also `getSlotMaster`); anything else with `sendCommand`
 * is a RedisCommandSender. `cluster`, when given, overrides what is detected.
 */
export function redisTransport(client: unknown, cluster: boolean | undefined, name = 'redis'): RedisTransport {
  if (typeof client !== 'object' || client === null) throw invalidArgument(name, 'an ioredis, iovalkey or node-redis client, or a { sendCommand } object', client);
  const c = client as Loose;
  if (fn(c, 'evalsha') && fn(c, 'eval')) return ioredis(c as IoRedisClient & Loose, cluster ?? c.isCluster === true);
  if (fn(c, 'sendCommand') && (fn(c, 'evalSha') || fn(c, 'EVALSHA'))) return nodeRedis(c, cluster ?? (fn(c, 'getSlotMaster') || 'masters' in c));
  if (fn(c, 'sendCommand')) return sender(c as unknown as RedisCommandSender, cluster ?? c.cluster === true);
  throw invalidArgument(name, 'an ioredis, iovalkey or node-redis client, or a { sendCommand } object', client);
}
