// RateLimiterTollgate's points in rate-limiter-flexible's own Redis keys and values (see
// rlf-redis-lua.ts), so RateLimiterRedis processes and RateLimiterTollgate processes count
// together; each call one script through a ScriptRunner (deadline, breaker, NOSCRIPT, bounded wait).
import { redisError } from '../../common/errors.js';
import type { ScriptRunner } from '../../redis/script-runner.js';
import { script, type Script } from '../../redis/script.js';
import type { Hit, HitStore } from '../rlf-hit-store.js';
import { RLF_DELETE_LUA, RLF_GET_LUA, RLF_SET_LUA, RLF_UPSERT_LUA } from './rlf-redis-lua.js';

const UPSERT = script(RLF_UPSERT_LUA);
const SET = script(RLF_SET_LUA);
const GET = script(RLF_GET_LUA);
const DELETE = script(RLF_DELETE_LUA);

/** Status 2 of a script: the key holds something no rate-limiter-flexible counter is. */
const FOREIGN = 2;

/** Whole seconds, as RateLimiterRedis sends them (its durations are seconds times 1000). */
const seconds = (ms: number) => Math.floor(ms / 1000);

export class RlfRedisStore implements HitStore {
  /** Runs the scripts; this store's to close. */
  readonly #runner: ScriptRunner;

  constructor(runner: ScriptRunner) {
    this.#runner = runner;
  }

  /** rate-limiter-flexible's getKey(): `keyPrefix:key` as it is, long keys unhashed, so both name the same key. */
  key(text: string): string {
    return text;
  }

  async #run(s: Script, key: string, args: readonly (string | number)[]): Promise<readonly unknown[]> {
    const reply = await this.#runner.run(s, key, args.map(String));
    if (Number(reply[2]) === FOREIGN) {
      throw redisError(
        `Redis key '${key}' holds a value that is not a rate-limiter-flexible counter (another type, or not an integer); nothing was changed. Delete the key, or give this limiter another keyPrefix.`,
        'TOLLGATE_REDIS_STATE_MISMATCH',
      );
    }
    return reply;
  }

  async incr(key: string, points: number, durationMs: number): Promise<Hit> {
    const reply = await this.#run(UPSERT, key, [points, seconds(durationMs)]);
    const consumed = Number(reply[3]);
    // rate-limiter-flexible's isFirstInDuration: the count is exactly what this call added.
    return { consumed, ms: Number(reply[4]), created: consumed === points };
  }

  async decr(key: string, points: number, durationMs: number): Promise<Hit> {
    return this.incr(key, -points, durationMs);
  }

  async get(key: string): Promise<Hit | null> {
    const reply = await this.#run(GET, key, []);
    if (Number(reply[2]) === 0) return null;
    const consumed = Number(reply[3]);
    return { consumed, ms: Number(reply[4]), created: consumed === 0 };
  }

  async set(key: string, points: number, durationMs: number): Promise<Hit> {
    const reply = await this.#run(SET, key, [points, seconds(durationMs)]);
    return { consumed: points, ms: Number(reply[4]), created: true };
  }

  async block(key: string, ms: number, points: number): Promise<Hit> {
    return this.set(key, points, ms);
  }

  async delete(key: string): Promise<boolean> {
    const reply = await this.#run(DELETE, key, []);
    return Number(reply[2]) > 0;
  }

  /** Calls still out, and later ones, reject with TOLLGATE_CLOSED; the client stays its owner's. */
  close(): void {
    this.#runner.close();
  }
}
