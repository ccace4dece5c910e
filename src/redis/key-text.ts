// A limiter key as it appears inside a Redis key. Redis receives strings as UTF-8, which folds
// every lone surrogate into U+FFFD: such keys are spelt out instead, so that distinct JS strings
// stay distinct Redis keys (as they are distinct keys in both local engines).

/** Marks a spelt-out key; a well-formed key that starts with it is spelt out too, so no two keys meet. */
const SPELT = '\u0000u:';

/** Whether every surrogate in `key` is part of a pair (the string has a UTF-8 encoding). */
function isWellFormed(key: string): boolean {
  for (let i = 0; i < key.length; i++) {
    const unit = key.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (unit > 0xdbff) return false;
    const next = key.charCodeAt(i + 1);
    if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
    i++;
  }
  return true;
}

/** The key as is when it is well-formed, else its UTF-16 code units in hex behind a marker. */
export function redisKeyText(key: string): string {
  // Fast path: no surrogate and no NUL at the start means the key is its own text.
  if (!/[\uD800-\uDFFF]/.test(key) && !key.startsWith(SPELT)) return key;
  if (isWellFormed(key) && !key.startsWith(SPELT)) return key;
  let hex = SPELT;
  for (let i = 0; i < key.length; i++) hex += key.charCodeAt(i).toString(16).padStart(4, '0');
  return hex;
}
