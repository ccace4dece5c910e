// Values shared with the C++ core (native/core/constants.h). The addon exports its own
// (`constants`) and test/package.test.ts compares them with these by value; the Lua scripts take
// theirs from here (src/redis/lua.ts interpolates them).

/** Longest key accepted, in UTF-16 code units (a string's length). */
export const MAX_KEY_LENGTH = 1024;

/** Longest block() in ms (about 35,000 years); longer durations are cut to it on every engine. */
export const MAX_BLOCK_MS = 2 ** 50;

/** Most lock shards a table may have. */
export const MAX_SHARDS = 4096;

/** Capacity past which a table is refused as a mistake (2^27 keys). */
export const MAX_CAPACITY = 2 ** 27;

/** Entries in a bucket of the native table (a key has two buckets); the TS engine samples twice as many eviction candidates. */
export const BUCKET_SLOTS = 4;

/** Slots planned per key asked for: an eighth of headroom. */
export const HEADROOM_NUM = 9;
export const HEADROOM_DEN = 8;

/** Shards chosen when none are asked for: doubling while each keeps this many keys, up to the max. */
export const KEYS_PER_AUTO_SHARD = 8192;
export const MAX_AUTO_SHARDS = 256;

/**
 * The latest time, in ms, a ManualClock may show: 2^52 ms (over 140,000 years). Beyond 2^53 - 2^51
 * the TypeScript engine's doubles stop holding a time plus a product exactly, and the engines
 * would disagree; real clocks are far below it.
 */
export const MAX_CLOCK_MS = 2 ** 52;

/**
 * Bound on limit * window and limit * refill interval: every intermediate product of the
 * algorithms stays below it, so both engines compute exactly (in int64 and in doubles).
 */
export const MAX_PRODUCT = 2 ** 50;

/** How often heavy-hitter counts halve when no period is given, in ms. */
export const DEFAULT_TOP_KEYS_PERIOD_MS = 60_000;

/** The version of the addon's interface to JavaScript; a binary of another is refused. */
export const ABI_VERSION = 6;

/** Index of each field of a decision in the Float64Array the engines write it into. */
export const Detail = { Allowed: 0, Limit: 1, Remaining: 2, ResetMs: 3, RetryAfterMs: 4, Size: 5 } as const;

/** What a call on a closed limiter says (the addon, which TypeScript checks before, too). */
export const CLOSED_MESSAGE = 'The limiter is closed; create a new one to make further decisions';
