// How a key a caller or another library gives becomes a key tables hold, the same way in the
// middleware and every adapter: long keys hashed (never truncated into each other), absent and
// empty ones kept apart from every real key, as the libraries' own stores keep them.
import { createHash } from 'node:crypto';

/** Longer keys (UTF-16 units) are stored as `sha256:<digest>`. */
export const MAX_RAW_KEY = 256;

/** A lone surrogate: one UTF-8 cannot encode (it would become U+FFFD, merging distinct keys). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * `key` as tables hold it: itself, a digest past MAX_RAW_KEY, or a marker for ''. The digest is of
 * the key's UTF-8 (`sha256:`, unchanged for every well-formed key, so stored state keeps its key),
 * or, for a key with a lone surrogate, of its UTF-16 code units under its own prefix
 * (`sha256u:`): injective either way, and the two never meet.
 */
export function storedKey(key: string): string {
  if (key.length > MAX_RAW_KEY) {
    if (!LONE_SURROGATE.test(key)) return `sha256:${createHash('sha256').update(key).digest('base64url')}`;
    return `sha256u:${createHash('sha256').update(Buffer.from(key, 'utf16le')).digest('base64url')}`;
  }
  return key.length === 0 ? '\u0000empty' : key;
}

/**
 * What a library passes as a key, stored: strings as storedKey does; `undefined`, `null` or a
 * number (express's `req.ip` on a unix socket is undefined) as their own keys, apart from any
 * string, so that absent keys share one count as they do in the library's memory store.
 */
export function libraryKey(key: unknown): string {
  return storedKey(keyText(key));
}

/** A library's key as text before it is stored (a store may put its own prefix in front). */
export function keyText(key: unknown): string {
  return typeof key === 'string' ? key : `\u0000${String(key)}`;
}
