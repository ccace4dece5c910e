// Per-key state of the TypeScript engine as numbers in typed arrays, one slot per key: no object per
// key for the garbage collector to trace, and memory that only grows, chunk by chunk, never copied.
import type { CounterState } from './counter-state.js';

// Numbers per slot: the state's three (see counter-state.ts) and the expiry.
const SLOT_FIELDS = 4;
const FIELD_EXPIRES = 3;

// 4,096 slots (128 KiB) per chunk: a new chunk costs one small allocation, never a copy of the rest.
const CHUNK_BITS = 12;
const CHUNK_SLOTS = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK_SLOTS - 1;
// The first chunk starts this small and doubles (a copy of at most 64 KiB) until full size, so a
// table that holds a few keys (a limiter made per tenant) costs 2 KiB, not 128.
const FIRST_CHUNK_SLOTS = 64;

/**
 * Slots numbered from 0, allocated in chunks as the table fills, up to `limit`. Freed slots are
 * reused first (most recently freed first, so their chunk is likely cached).
 */
export class SlotStore {
  readonly #chunks: Float64Array[] = [];
  readonly #keys: (string | undefined)[][] = [];
  readonly #free: number[] = [];
  readonly #limit: number;
  #allocated = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  // The chunk holding `slot`; its fields start at #offset(slot).
  #chunk(slot: number): Float64Array {
    return this.#chunks[slot >>> CHUNK_BITS] as Float64Array;
  }

  #offset(slot: number): number {
    return (slot & CHUNK_MASK) * SLOT_FIELDS;
  }

  /** When the state in `slot` expires. */
  expiry(slot: number): number {
    return this.#chunk(slot)[this.#offset(slot) + FIELD_EXPIRES] as number;
  }

  setExpiry(slot: number, expiresAt: number): void {
    this.#chunk(slot)[this.#offset(slot) + FIELD_EXPIRES] = expiresAt;
  }

  /** Copies the slot's state into `state`. */
  load(slot: number, state: CounterState): void {
    state.read(this.#chunk(slot), this.#offset(slot));
  }

  /** Writes `state` and its expiry into the slot. */
  store(slot: number, state: CounterState, expiresAt: number): void {
    const chunk = this.#chunk(slot);
    const at = this.#offset(slot);
    state.write(chunk, at);
    chunk[at + FIELD_EXPIRES] = expiresAt;
  }

  /** A free slot, or -1 when all `limit` are in use. */
  take(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    if (this.#allocated >= this.#limit) return -1;
    const slot = this.#allocated++;
    if ((slot & CHUNK_MASK) === 0) {
      const slots = slot === 0 ? FIRST_CHUNK_SLOTS : CHUNK_SLOTS;
      this.#chunks.push(new Float64Array(slots * SLOT_FIELDS));
      this.#keys.push(new Array<string | undefined>(slots).fill(undefined));
    } else if (slot < CHUNK_SLOTS && slot * SLOT_FIELDS === (this.#chunks[0] as Float64Array).length) {
      this.#growFirstChunk();
    }
    return slot;
  }

  #growFirstChunk(): void {
    const old = this.#chunks[0] as Float64Array;
    const grown = new Float64Array(old.length * 2);
    grown.set(old);
    this.#chunks[0] = grown;
    const keys = this.#keys[0] as (string | undefined)[];
    for (let i = keys.length, end = 2 * keys.length; i < end; i++) keys.push(undefined);
  }

  /** The key a slot in use belongs to (undefined when free). */
  keyOf(slot: number): string | undefined {
    return (this.#keys[slot >>> CHUNK_BITS] as (string | undefined)[])[slot & CHUNK_MASK];
  }

  setKey(slot: number, key: string | undefined): void {
    (this.#keys[slot >>> CHUNK_BITS] as (string | undefined)[])[slot & CHUNK_MASK] = key;
  }

  give(slot: number): void {
    this.setKey(slot, undefined);
    this.#free.push(slot);
  }

  /** Slots ever handed out (in use or free): the range a cursor walks. */
  get allocated(): number {
    return this.#allocated;
  }

  /** Slots in use. */
  get used(): number {
    return this.#allocated - this.#free.length;
  }

  /** Bytes of typed arrays and free list. */
  get bytes(): number {
    let slots = 0;
    for (const chunk of this.#chunks) slots += chunk.length / SLOT_FIELDS;
    return slots * (SLOT_FIELDS * 8 + 4) + this.#free.length * 8;
  }

  clear(): void {
    this.#chunks.length = 0;
    this.#keys.length = 0;
    this.#free.length = 0;
    this.#allocated = 0;
  }
}
