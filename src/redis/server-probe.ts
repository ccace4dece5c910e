// What a Redis node can do for tollgate, read once on first contact (see PROBE_LUA): its version,
// the commands its ACL user may not run, and whether its memory policy may evict tollgate's keys.
// A missing command is a coded error naming it, never a loop of fallback decisions.
import { redisError, type RedisErrorCode } from '../common/errors.js';

/** Every command tollgate runs (its scripts by SHA, and in them), but for the leases'. */
export const CORE_COMMANDS = ['EVALSHA', 'TIME', 'EXISTS', 'GET', 'SET', 'DEL', 'HGET', 'HSET', 'HDEL', 'HRANDFIELD', 'TYPE', 'PTTL', 'PEXPIRE', 'INCR', 'INCRBY', 'DECR', 'DECRBY'] as const;

/** What leases need beyond the core: the window's exact expiry, to give units back to it alone (Redis 7). */
export const LEASE_COMMANDS = ['PEXPIRETIME'] as const;

/** Everything the probe asks about, in its order. */
export const PROBED_COMMANDS: readonly string[] = [...CORE_COMMANDS, ...LEASE_COMMANDS];

/** Redis 7.0.0 as redis.REDIS_VERSION_NUM gives it (0x00MMmmpp). */
const REDIS_7 = 0x07_00_00;

export interface ServerProfile {
  /** The version as 0x00MMmmpp; 0 before Redis 7, which does not say it to scripts. */
  readonly version: number;
  /** Core commands the node will not run for this user (unknown, renamed, or denied by its ACL). */
  readonly missing: readonly string[];
  /** Whether leases can run there (PEXPIRETIME known and allowed). */
  readonly leases: boolean;
  /** The maxmemory-policy when it may evict tollgate's keys (every one has a TTL), else undefined. */
  readonly evicting: string | undefined;
  /** The server process' run_id ('' when INFO is refused): which server it is, whatever the client calls it. */
  readonly runId: string;
}

/** Reads PROBE_LUA's reply (after its {status, clock} head). */
export function readProbe(reply: readonly unknown[]): ServerProfile {
  const version = Number(reply[2]) || 0;
  const policy = String(reply[3] ?? '');
  const maxmemory = Number(reply[4]) || 0;
  const runId = String(reply[5] ?? '');
  const refused = new Set(reply.slice(6).map((name) => String(name).toUpperCase()));
  const missing = CORE_COMMANDS.filter((name) => refused.has(name));
  // Before Redis 7 no script can ask about ACLs, and no server has PEXPIRETIME.
  const leases = version >= REDIS_7 && LEASE_COMMANDS.every((name) => !refused.has(name));
  // With maxmemory 0 nothing is evicted; under noeviction a full server refuses writes (OOM) instead.
  const evicting = maxmemory > 0 && policy !== '' && policy !== 'noeviction' ? policy : undefined;
  return { version, missing, leases, evicting, runId };
}

/** The error every call to a node that lacks core commands rejects with. */
export function unsupportedError(node: string, missing: readonly string[]): Error & { code: RedisErrorCode } {
  const where = node === '' ? 'The Redis server' : `Redis node ${node}`;
  const grant = missing.map((name) => `+${name.toLowerCase()}`).join(' ');
  return redisError(
    `${where} will not run ${missing.join(', ')} for this user (unknown, renamed, or not allowed by its ACL); RedisLimiter needs ${missing.length === 1 ? 'it' : 'them'}. Grant with ACL SETUSER <user> ${grant}, or see "Operations" in docs/redis.md. Checked again every 10 s.`,
    'TOLLGATE_REDIS_UNSUPPORTED',
  );
}

/** The error when the script user may not run a script, or a command the probe could not name. */
export function noScriptsError(node: string, reply: string): Error & { code: RedisErrorCode } {
  const where = node === '' ? 'The Redis server' : `Redis node ${node}`;
  return redisError(
    `${where} refused what tollgate's scripts run (${reply}); RedisLimiter needs EVALSHA and EVAL, and the commands and keys listed under "Operations" in docs/redis.md. Checked again every 10 s.`,
    'TOLLGATE_REDIS_UNSUPPORTED',
    undefined,
    reply,
  );
}

/** Servers (by run_id, else the node's name) with their policy already warned about, once per process. */
const warnedEviction = new Set<string>();

/** One process warning per server and policy that may evict tollgate's keys. */
export function warnEviction(node: string, profile: ServerProfile & { evicting: string }): void {
  const policy = profile.evicting;
  const id = `${profile.runId || node}\n${policy}`;
  if (warnedEviction.has(id)) return;
  warnedEviction.add(id);
  process.emitWarning(
    `tollgate: Redis ${node || 'server'} has maxmemory-policy ${policy}, which may evict tollgate's keys (all have a TTL): an evicted counter re-admits what it had counted, and an evicted blocks hash lifts every block of its group. Use maxmemory-policy noeviction (a full Redis then refuses writes, and onError decides), or keep tollgate's keys on a server of their own (see "Operations" in docs/redis.md).`,
    { code: 'TOLLGATE_REDIS_EVICTION' },
  );
}

/** One process warning per limiter whose leases a node cannot serve. */
export function warnLeasesOff(limiter: string, node: string, version: number): void {
  const why = version === 0 ? 'is older than Redis 7' : 'will not run PEXPIRETIME for this user';
  process.emitWarning(`tollgate RedisLimiter '${limiter}': leases are off, as Redis ${node || 'server'} ${why}; every decision goes to Redis, exactly as without leases.`, {
    code: 'TOLLGATE_REDIS_LEASES_OFF',
  });
}
