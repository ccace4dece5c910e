// An upstream account's places, in this process's memory: the book every place store keeps (see
// src/common/places.ts). The shared-memory store (native/core/places.cc) and the Redis store
// (src/redis/places-lua.ts) decide as this does, call for call; test/places.test.ts checks it.
import type { PlaceCounts, PlaceReply, PlaceTerms } from '../../common/places.js';

interface Holder {
  /** Its places lapse at this time unless renewed. */
  leaseUntil: number;
  /** When its first waiter arrived, while it has one queued. */
  waitingSince: number | undefined;
  readonly places: Set<string>;
}

export class PlaceBook {
  readonly #terms: PlaceTerms;
  readonly #holders = new Map<string, Holder>();
  /** When each cooling place frees, ascending. */
  readonly #cooling: number[] = [];
  #inFlight = 0;
  #nextPlace = 0;
  /** Counts changes that may let a waiter on: releases, leaves, lapses. */
  #version = 0;

  constructor(terms: PlaceTerms) {
    this.#terms = terms;
  }

  /** Grows whenever a place may have been freed or the queue moved. */
  get version(): number {
    return this.#version;
  }

  acquire(now: number, holder: string, waitingSince: number): PlaceReply {
    this.#sweep(now);
    const h = this.#holder(holder, now);
    const { limit, concurrency } = this.#terms;
    const free = Math.min(limit > 0 ? limit - this.#inFlight - this.#cooling.length : Infinity, concurrency > 0 ? concurrency - this.#inFlight : Infinity);
    let ahead = 0;
    for (const [id, other] of this.#holders) {
      if (id !== holder && other.waitingSince !== undefined && (other.waitingSince < waitingSince || (other.waitingSince === waitingSince && id < holder))) ahead++;
    }
    if (ahead < free) {
      const place = String(++this.#nextPlace);
      h.places.add(place);
      h.waitingSince = undefined;
      this.#inFlight++;
      return { granted: true, place };
    }
    h.waitingSince = waitingSince;
    // The book changes by itself when the first cooling place frees or a lease lapses.
    let wakeAt = this.#cooling[0] ?? Infinity;
    for (const [id, other] of this.#holders) if (id !== holder && other.leaseUntil < wakeAt) wakeAt = other.leaseUntil;
    return { granted: false, wakeAt };
  }

  release(now: number, holder: string, place: string): boolean {
    this.#sweep(now);
    const h = this.#holders.get(holder);
    if (h === undefined || !h.places.delete(place)) return false;
    this.#inFlight--;
    h.leaseUntil = now + this.#terms.leaseMs;
    if (this.#terms.limit > 0) this.#cool(now + this.#terms.windowMs);
    this.#forgetIfIdle(holder, h);
    this.#version++;
    return true;
  }

  renew(now: number, holder: string): boolean {
    this.#sweep(now);
    const h = this.#holders.get(holder);
    if (h === undefined) return false;
    h.leaseUntil = now + this.#terms.leaseMs;
    return true;
  }

  leave(now: number, holder: string): void {
    this.#sweep(now);
    const h = this.#holders.get(holder);
    if (h === undefined || h.waitingSince === undefined) return;
    h.waitingSince = undefined;
    this.#forgetIfIdle(holder, h);
    this.#version++;
  }

  counts(now: number): PlaceCounts {
    this.#sweep(now);
    let waiting = 0;
    for (const h of this.#holders.values()) if (h.waitingSince !== undefined) waiting++;
    return { inFlight: this.#inFlight, cooling: this.#cooling.length, waiting, holders: this.#holders.size };
  }

  #holder(id: string, now: number): Holder {
    let h = this.#holders.get(id);
    if (h === undefined) {
      h = { leaseUntil: 0, waitingSince: undefined, places: new Set() };
      this.#holders.set(id, h);
    }
    h.leaseUntil = now + this.#terms.leaseMs;
    return h;
  }

  #forgetIfIdle(id: string, h: Holder): void {
    if (h.places.size === 0 && h.waitingSince === undefined) this.#holders.delete(id);
  }

  /** A place answered at `until - windowMs` cools until `until`. */
  #cool(until: number): void {
    const cooling = this.#cooling;
    let i = cooling.length;
    while (i > 0 && (cooling[i - 1] as number) > until) i--;
    cooling.splice(i, 0, until);
  }

  /** Takes back lapsed holders' places (counted as answered at the lapse) and frees cooled places. */
  #sweep(now: number): void {
    for (const [id, h] of this.#holders) {
      if (h.leaseUntil > now) continue;
      this.#inFlight -= h.places.size;
      if (this.#terms.limit > 0) for (let i = 0; i < h.places.size; i++) this.#cool(h.leaseUntil + this.#terms.windowMs);
      this.#holders.delete(id);
      this.#version++;
    }
    let cooled = 0;
    while (cooled < this.#cooling.length && (this.#cooling[cooled] as number) <= now) cooled++;
    if (cooled > 0) {
      this.#cooling.splice(0, cooled);
      this.#version++;
    }
  }
}
