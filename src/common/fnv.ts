// FNV-1a over a string's UTF-16 code units: a cheap, stable spread of a key, for choices that
// must be the same in every process (a Redis slot group) or only need to scatter keys (a table slot).

/** The 32-bit FNV-1a hash of `text`'s code units, as a signed 32-bit integer. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h;
}
