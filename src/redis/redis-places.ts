// An upstream account's places on Redis (a PlaceStore, src/common/places.ts), shared by every
// process that names the account: each call is one run of PLACES_LUA (places-lua.ts), which decides
// as PlaceBook does, on Redis' clock, within timeoutMs, behind a breaker (ScriptRunner).
import type { ManualClock } from '../common/clock.js';
import { closedError, invalidArgument, redisError, storeMismatch } from '../common/errors.js';
import { termDifferences } from '../common/place-terms.js';
import type { PlaceCounts, PlaceReply, PlaceStore, PlaceTerms } from '../common/places.js';
import { ChangeFeed } from './change-feed.js';
import { PLACES_LUA, PlaceOp, PlaceStatus, changedChannel } from './places-lua.js';
import { parseRedisPlacesOptions, type RedisPlacesOptions } from './redis-places-options.js';
import { realNow, ScriptRunner } from './script-runner.js';
import { script } from './script.js';
import { ServerClock } from './server-clock.js';

export type { RedisPlacesOptions } from './redis-places-options.js';

const PLACES = script(PLACES_LUA);

/** A holder id as the book keeps them: its order among equals is the bytes' order on Redis too. */
const HOLDER = /^[0-9a-f]{16}$/;

function checkHolder(holder: unknown): string {
  if (typeof holder !== 'string' || !HOLDER.test(holder)) throw invalidArgument('holder', 'an id of 16 lower-case hex digits', holder);
  return holder;
}

export class RedisPlaces implements PlaceStore {
  readonly #runner: ScriptRunner;
  readonly #base: string;
  readonly #terms: PlaceTerms;
  /** ARGV[3..6] of every call: the terms, checked against the account's on Redis. */
  readonly #termArgs: readonly string[];
  readonly #manual: ManualClock | undefined;
  /** Redis' clock as seen in this store's replies (unused with a ManualClock). */
  readonly #redisClock = new ServerClock();
  /** Whether a call made only to learn Redis' clock is out. */
  #learning = false;
  readonly #feed: ChangeFeed;
  #closed = false;

  /**
   * `clock`: a test clock, whose time every call decides at (sent as the script's `now`); without
   * one, the store decides on Redis' own clock (TIME).
   */
  constructor(options: RedisPlacesOptions, terms: PlaceTerms, clock?: ManualClock, optionsPath?: string) {
    const config = parseRedisPlacesOptions(options, terms, clock, optionsPath);
    this.#runner = new ScriptRunner(config.redis, { timeoutMs: config.timeoutMs, breaker: config.breaker });
    this.#base = config.base;
    this.#terms = config.terms;
    const t = config.terms;
    this.#termArgs = [String(t.limit), String(t.windowMs), String(t.concurrency), String(t.leaseMs)];
    this.#manual = config.clock;
    this.#feed = new ChangeFeed(config.client, config.redis.kind, changedChannel(config.base), config.pollMs);
  }

  /**
   * The ManualClock's time, or Redis' clock as this process estimates it: the local monotonic
   * clock plus the offset the latest replies showed. The estimate is never ahead of Redis' clock,
   * and behind it by at most the round trip of the reply it rests on (plus 1 ms of rounding).
   * NOTE: before any reply, it is this host's wall clock (as close to Redis' as the two hosts'
   * clocks are), and the first call learns Redis' (a counts call, made here if none is out).
   */
  now(): number {
    if (this.#manual !== undefined) return this.#manual.now();
    const local = realNow();
    if (this.#redisClock.known) return this.#redisClock.deadline(local, local);
    this.#learnClock();
    return Date.now();
  }

  async acquire(holder: string, waitingSince: number): Promise<PlaceReply> {
    checkHolder(holder);
    if (typeof waitingSince !== 'number' || !Number.isFinite(waitingSince)) throw invalidArgument('waitingSince', "a time in ms (the store's now())", waitingSince);
    const reply = await this.#call(PlaceOp.Acquire, holder, String(waitingSince));
    if (Number(reply[3]) === 1) return { granted: true, place: String(reply[4]) };
    const wakeAt = Number(reply[4]);
    return { granted: false, wakeAt: wakeAt < 0 ? Infinity : wakeAt };
  }

  async release(holder: string, place: string): Promise<boolean> {
    checkHolder(holder);
    if (typeof place !== 'string' || place.length === 0) throw invalidArgument('place', 'a place acquire() gave', place);
    const reply = await this.#call(PlaceOp.Release, holder, place);
    return Number(reply[3]) === 1;
  }

  async renew(holder: string): Promise<boolean> {
    checkHolder(holder);
    const reply = await this.#call(PlaceOp.Renew, holder);
    return Number(reply[3]) === 1;
  }

  async leave(holder: string): Promise<void> {
    checkHolder(holder);
    await this.#call(PlaceOp.Leave, holder);
  }

  async counts(): Promise<PlaceCounts> {
    const reply = await this.#call(PlaceOp.Counts);
    return { inFlight: Number(reply[3]), cooling: Number(reply[4]), waiting: Number(reply[5]), holders: Number(reply[6]) };
  }

  /**
   * Calls `listener` whenever a call of any store of this account may have let a waiter on: by a
   * subscription to `<base>:changed` on a duplicate of the client, opened with the first listener
   * and closed with the last; every `pollMs` for a client that cannot subscribe. Also called once
   * the subscription takes effect (and after a reconnection), for what it may have missed.
   */
  watch(listener: () => void): () => void {
    if (this.#closed) throw closedError('store');
    if (typeof listener !== 'function') throw invalidArgument('listener', 'a function', listener);
    return this.#feed.add(listener);
  }

  /** Calls still out, and later ones, reject with TOLLGATE_CLOSED; the subscription ends. The client stays its owner's. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#runner.close();
    this.#feed.close();
  }

  #learnClock(): void {
    if (this.#learning || this.#closed) return;
    this.#learning = true;
    this.#call(PlaceOp.Counts)
      .catch(() => undefined) // the next call learns it, or reports why it cannot
      .finally(() => (this.#learning = false));
  }

  /** One run of the script; the reply from its status on, once the status says it was done. */
  async #call(op: PlaceOp, holder = '', arg = ''): Promise<readonly unknown[]> {
    const now = this.#manual === undefined ? '' : String(this.#manual.now());
    const sentAt = realNow();
    const reply = await this.#runner.run(PLACES, this.#base, [now, ...this.#termArgs, op, holder, arg]);
    this.#redisClock.observe(Number(reply[1]), sentAt, realNow());
    return this.#done(reply);
  }

  /** The reply of a call that was done, or the error its status stands for. */
  #done(reply: readonly unknown[]): readonly unknown[] {
    const status = Number(reply[2]);
    if (status === PlaceStatus.Done) return reply;
    if (status === PlaceStatus.OtherTerms) {
      const [limit, windowMs, concurrency, leaseMs] = reply.slice(3, 7).map(Number) as [number, number, number, number];
      const differ = termDifferences({ limit, windowMs, concurrency, leaseMs }, this.#terms);
      throw storeMismatch(
        `The places of '${this.#base}' on Redis were set up with other terms: ${differ.join(', ')}; nothing was changed. Give every store of one account the same terms, or another name.`,
      );
    }
    throw redisError(
      `Redis key '${this.#base}' holds a value no place store writes (another program's); nothing was changed. Delete the key, or give the store another prefix or name.`,
      'TOLLGATE_REDIS_STATE_MISMATCH',
    );
  }
}
