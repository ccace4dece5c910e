// One random sequence of place operations applied to PlaceBook (the oracle) and to another
// PlaceStore on a ManualClock, comparing every reply: what the stores that decide "as PlaceBook
// does" are held to.
import { expect } from 'vitest';
import type { ManualClock } from '../../src/common/clock.js';
import type { PlaceStore, PlaceTerms } from '../../src/common/places.js';
import { PlaceBook } from '../../src/engine/js/place-book.js';
import { seededRandom } from './engines.js';

/** A place both engines granted at one step, under each one's id. */
interface Grant {
  readonly holder: string;
  readonly book: string;
  readonly store: string;
}

export interface SequenceTally {
  granted: number;
  queued: number;
  released: number;
  /** Calls after which PlaceBook's version had grown: those the store must announce. */
  changes: number;
  /** Renewals refused: the holder's lease had lapsed (or it held nothing). */
  lapsed: number;
  /** Refusals told of a time the book changes by itself (a place cools, a lease lapses). */
  wakes: number;
}

const hex16 = (random: () => number) => Array.from({ length: 16 }, () => Math.floor(random() * 16).toString(16)).join('');

/**
 * Runs `steps` random operations (acquire, release, renew, leave, counts, and clock steps that
 * let leases lapse and places cool) on `store` and on a PlaceBook of `terms`, both at `clock`'s
 * time, expecting the same reply from each. Place ids are compared through the step that granted
 * them: each engine names places its own way.
 */
export async function comparePlaceSequence(store: PlaceStore, terms: PlaceTerms, clock: ManualClock, seed: number, steps: number): Promise<SequenceTally> {
  const random = seededRandom(seed);
  const book = new PlaceBook(terms);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  // Two ids share their first 15 digits, so ties in waiting time are broken on the last byte.
  const holders = [hex16(random), hex16(random), hex16(random), hex16(random)];
  holders.push(`${(holders[0] as string).slice(0, 15)}${(holders[0] as string).endsWith('f') ? '0' : 'f'}`);
  // Holders that stopped renewing (a stalled process), for a while.
  const stalled = new Set<string>();
  /** When each holder's first waiter arrived, while it has one (the time it queues at). */
  const waitingSince = new Map<string, number>();
  const grants: Grant[] = [];
  const grantedAt = { book: new Map<string, number>(), store: new Map<string, number>() };
  const tally: SequenceTally = { granted: 0, queued: 0, released: 0, changes: 0, lapsed: 0, wakes: 0 };
  const span = Math.max(terms.leaseMs, terms.windowMs);
  /** The latest refusal's wakeAt. */
  let wakeAt = Infinity;

  for (let step = 0; step < steps; step++) {
    const at = `seed ${seed}, step ${step}, time ${clock.now()}`;
    const version = book.version;
    const holder = pick(holders);
    const r = random();
    if (r < 0.2) {
      // As a waiter does: to the very time the book said it changes (a place cools, a lease
      // lapses: the edges), else mostly small steps, now and then one past a lease or a window.
      const p = random();
      if (p < 0.3 && wakeAt > clock.now() && wakeAt !== Infinity) clock.set(wakeAt);
      else clock.advance(p < 0.9 ? Math.floor(random() * (terms.leaseMs / 3)) : Math.floor(random() * span * 1.5));
      if (random() < 0.3) stalled.add(pick(holders));
      if (random() < 0.3) stalled.delete(pick(holders));
      continue;
    }
    const now = clock.now();
    if (r < 0.5) {
      if (stalled.has(holder) && random() < 0.8) continue;
      // A waiter's time is kept while it waits; a new one arrives now, or earlier (it waited elsewhere first).
      const since = waitingSince.get(holder) ?? (random() < 0.7 ? now : now - Math.floor(random() * terms.leaseMs));
      const expected = book.acquire(now, holder, since);
      const got = await store.acquire(holder, since);
      if (expected.granted && got.granted) {
        expect(grantedAt.book.has(expected.place), `${at}: a fresh place id from the book`).toBe(false);
        expect(grantedAt.store.has(got.place), `${at}: a fresh place id from the store`).toBe(false);
        grantedAt.book.set(expected.place, step);
        grantedAt.store.set(got.place, step);
        grants.push({ holder, book: expected.place, store: got.place });
        tally.granted++;
        // The holder's next waiter, if any, arrives later.
        waitingSince.delete(holder);
      } else {
        expect(got, `${at}: acquire(${holder}, ${since})`).toEqual(expected);
        if (!expected.granted) {
          waitingSince.set(holder, since);
          tally.queued++;
          if (expected.wakeAt !== Infinity) tally.wakes++;
          wakeAt = expected.wakeAt;
        }
      }
    } else if (r < 0.72) {
      // A place the holder was granted (maybe long ago, maybe lapsed or released since), another's, or none ever given.
      const mine = grants.filter((g) => g.holder === holder);
      const grant = mine.length > 0 && random() < 0.85 ? pick(mine.slice(-6)) : grants.length > 0 && random() < 0.7 ? pick(grants) : undefined;
      const expected = book.release(now, holder, grant?.book ?? '999999');
      const got = await store.release(holder, grant?.store ?? '999999');
      expect(got, `${at}: release(${holder}, ${grant?.book})`).toBe(expected);
      if (expected) tally.released++;
    } else if (r < 0.85) {
      if (stalled.has(holder)) continue;
      const expected = book.renew(now, holder);
      expect(await store.renew(holder), `${at}: renew(${holder})`).toBe(expected);
      if (!expected) tally.lapsed++;
    } else if (r < 0.92) {
      book.leave(now, holder);
      await store.leave(holder);
      waitingSince.delete(holder);
    } else {
      expect(await store.counts(), `${at}: counts()`).toEqual(book.counts(now));
    }
    if (book.version !== version) tally.changes++;
  }
  const version = book.version;
  expect(await store.counts(), `seed ${seed}: counts() at the end`).toEqual(book.counts(clock.now()));
  if (book.version !== version) tally.changes++;
  return tally;
}
