// Limits shared with the C++ core (native/core/constants.h) and the Lua scripts; test/constants.test.ts
// checks that every copy agrees.

/** Longest key accepted, in UTF-16 code units (a string's length). */
export const MAX_KEY_LENGTH = 1024;

/** Longest block() in ms (about 35,000 years); longer durations are cut to it on every engine. */
export const MAX_BLOCK_MS = 2 ** 50;

/** Most lock shards a table may have. */
export const MAX_SHARDS = 4096;

/** Capacity past which a table is refused as a mistake (2^27 keys). */
export const MAX_CAPACITY = 2 ** 27;
