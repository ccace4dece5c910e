// Limits shared with the C++ core (native/core/constants.h); test/package.test.ts checks that both
// copies agree. The Lua scripts take theirs from here (src/stores/redis/lua.ts interpolates them).

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
