// How a limiter's keys are named on Redis: `<prefix><name>{<key>}:<shape>` per policy, and blocks
// in one hash per limiter (per slot group on a Cluster), `<prefix><name>:blocked`. The name keeps limiters apart, the shape (the policy's
// kind and time scale, never its limit) keeps policies apart, and the braces are always the hash
// tag tollgate chose, whatever the user's key holds, so every key of one request shares a slot.
// On a Cluster the tag is the limiter's name and one of a few slot groups instead,
// `<prefix>{<name>~<group>}{<key>}:<shape>`: the keys of one limiter then fall in that many slots,
// so a batch of decisions needs a call per group, not a call per key.
import { fnv1a } from '../common/fnv.js';
import { PolicyCode, type PolicyParams } from '../common/policies.js';
import { redisKeyText } from './key-text.js';

/**
 * `text` with `%`, `{` and `}` written as `%25`, `%7B` and `%7D`: no brace of the user's can open
 * or close a hash tag (`}evil` would otherwise make the tag empty, and the key escape its slot),
 * and distinct texts stay distinct.
 */
export function escapeTagText(text: string): string {
  if (!/[%{}]/.test(text)) return text;
  return text.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D'));
}

/** The part of every Redis key of this limiter before the hash tag. */
export function limiterNamespace(prefix: string, name: string): string {
  return prefix + escapeTagText(name);
}

/**
 * The user's key as it stands between tollgate's braces: redisKeyText, then escapeTagText. One test
 * finds the keys that need neither (no brace, `%`, surrogate or leading NUL): most keys.
 */
export function keyTagText(key: string): string {
  if (!/[%{}\uD800-\uDFFF]/.test(key) && key.charCodeAt(0) !== 0) return key;
  return escapeTagText(redisKeyText(key));
}

/** `<namespace>{<key>}`: the user's key made into a hash tag that no byte of it can break. */
export function keyBase(namespace: string, key: string): string {
  return `${namespace}{${keyTagText(key)}}`;
}

/**
 * `<prefix>{<name>~<group>}`: what every key of slot group `group` starts with, its hash tag (so
 * the group's slot) included.
 */
export function groupHead(prefix: string, name: string, group: number): string {
  return `${prefix}{${escapeTagText(name)}~${group}}`;
}

/**
 * `<prefix>{<name>~<group>}{<key>}` (name and key escaped): the key's group, one of `groups`, from
 * a hash of its text, so every key of one limiter lands in one of `groups` slots. Redis hashes only
 * the first braces' content (escaped texts hold no brace), and the second pair keeps the key apart
 * from the suffix, so distinct names, groups and keys give distinct keys.
 */
export function groupedKeyBase(prefix: string, name: string, key: string, groups: number): string {
  const text = keyTagText(key);
  return `${groupHead(prefix, name, keyGroup(text, groups))}{${text}}`;
}

/** FNV-1a over the text's UTF-16 code units, reduced to [0, groups). */
export function keyGroup(text: string, groups: number): number {
  return (fnv1a(text) >>> 0) % groups;
}

/**
 * The blocks marker of a key's batch: a hash of the blocked keys of a slot group (on a Cluster:
 * `<prefix>{<name>~<group>}:blocked`, in the group's slot) or of the limiter (on a single server:
 * `<namespace>:blocked`), each key's base to its block's end by Redis' clock. It exists only while
 * a block may last, so a decision looks up blocks only then, and never with a key of its own: every
 * key a script touches is one it was given. `base` is the key's base (keyBase or groupedKeyBase),
 * `grouped` which of the two.
 */
export function blockMarker(base: string, grouped: boolean): string {
  return grouped ? `${base.slice(0, base.indexOf('}') + 1)}:blocked` : `${base.slice(0, base.indexOf('{'))}:blocked`;
}

const SHAPE_LETTERS: Record<PolicyCode, string> = {
  [PolicyCode.FixedWindow]: 'fw',
  [PolicyCode.SlidingWindow]: 'sw',
  [PolicyCode.TokenBucket]: 'tb',
  [PolicyCode.Gcra]: 'lb',
};

/**
 * One suffix per policy, from its kind and time scale: `:fw60000` (a fixed window of 60 s),
 * `:sw1000`, `:tb10/1000` (10 tokens per 1000 ms), `:lb1/200`. The limit is not part of it, so a
 * per-call tier or a changed limit keeps its counter; two policies of one shape in one limiter
 * get `#2`, `#3`... so they never count in one key.
 */
export function policySuffixes(params: readonly PolicyParams[]): string[] {
  const seen = new Map<string, number>();
  return params.map((p) => {
    const letters = SHAPE_LETTERS[p.code];
    const shape = p.code === PolicyCode.FixedWindow || p.code === PolicyCode.SlidingWindow ? `${letters}${p.windowMs}` : `${letters}${p.rateTokens}/${p.rateIntervalMs}`;
    const n = (seen.get(shape) ?? 0) + 1;
    seen.set(shape, n);
    return n === 1 ? `:${shape}` : `:${shape}#${n}`;
  });
}
