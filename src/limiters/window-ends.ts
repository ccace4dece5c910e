// When each fixed window ends by Redis' clock, as replies showed, for the keys seen lately: a table
// of fixed size, so that it holds at any key count in bounded memory (a key displaces the one whose
// slot it hashes to).

/** Window ends, by the limiter key, in `2^bits` slots. */
export class WindowEnds {
  /** Per slot: the limiter key whose end it holds (undefined: none). */
  readonly #keys: (string | undefined)[];
  /** Per slot: that key's window end by Redis' clock (ms). */
  readonly #ends: Float64Array;
  readonly #mask: number;

  constructor(bits: number) {
    this.#keys = new Array<string | undefined>(1 << bits).fill(undefined);
    this.#ends = new Float64Array(1 << bits);
    this.#mask = (1 << bits) - 1;
  }

  /** FNV-1a over the key's code units, to a slot. */
  #slot(key: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return (h ^ (h >>> 15)) & this.#mask;
  }

  /** The window end last seen for `key`; 0 when none is known. */
  get(key: string): number {
    const slot = this.#slot(key);
    return this.#keys[slot] === key ? (this.#ends[slot] as number) : 0;
  }

  set(key: string, end: number): void {
    const slot = this.#slot(key);
    this.#keys[slot] = key;
    this.#ends[slot] = end;
  }

  /** Forgets `key`'s end (a reset). */
  forget(key: string): void {
    const slot = this.#slot(key);
    if (this.#keys[slot] === key) this.#keys[slot] = undefined;
  }
}
