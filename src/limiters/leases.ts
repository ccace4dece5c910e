// Hot keys decided in process within a global limit: a process that consumes one key often takes
// a share of that key's remaining quota from the store in one call (the store counts it at once),
// then spends it here with no round trip until it runs out or the window ends. Every unit spent
// was counted globally first, so the global count never passes the limit; what a lease holds
// unspent when its window ends is never admitted (the under-admission the design accepts, bounded
// by the outstanding leases, which follow each key's rate and shrink as its quota runs out). A
// lease let go before its window ends (the process closes, the lease is too short for a request,
// replaced or pushed out) hands its unspent units back to that same window.
import type { Decision } from '../common/decision.js';

export interface LeaseOptions {
  /** Units one key consumes in this process within `periodMs` before it leases; default 4. */
  readonly hotAfter: number;
  /** The largest share of a key's remaining quota one lease takes; default 0.2. */
  readonly share: number;
  /** Keys this process holds leases (and rates) for at once; default 10,000. */
  readonly keys: number;
  /**
   * The longest a lease is spent from, in ms; default 1000. Then its unspent units go back and the
   * next consume asks the store again, which is how another process' block() or reset() of the
   * key reaches this one: within this bound.
   */
  readonly maxAgeMs: number;
}

/** How long a key's local rate is counted over, and so about how long a lease is sized to last. */
export const HEAT_PERIOD_MS = 100;

interface Lease {
  /** Units taken and not yet spent here. */
  units: number;
  readonly limit: number;
  /** What the store had left for everyone else when the lease was taken. */
  readonly othersLeft: number;
  /** When it stops being spent from: its window's end or its age limit, whichever comes first. */
  readonly endsAt: number;
  /**
   * When the window the units were counted in ends at the latest, on this process' clock: counted
   * from when the lease call was sent, so however late its reply came, never after Redis' window.
   */
  readonly windowEndsAt: number;
  /** Which window the units were counted in, as the store gave it (for handing units back to that window only). */
  readonly window: LeaseWindow;
}

/**
 * A store's window, as a lease names it: when it expires (PEXPIRETIME), and its count just after
 * the lease was taken. A window reset since and started again in the same millisecond has the
 * same expiry, but not yet that count (the count of one window only falls below it when units
 * are given back or refunded, and then a give-back is refused: the units stay counted).
 */
export interface LeaseWindow {
  readonly expiresAt: number;
  readonly countAfter: number;
}

/** Hands `units` of a lease let go unspent back to the store's window `window`. */
export type GiveBack = (key: string, units: number, window: LeaseWindow) => void;

interface Heat {
  units: number;
  since: number;
}

export class LeaseBook {
  readonly #options: LeaseOptions;
  readonly #now: () => number;
  readonly #leases = new Map<string, Lease>();
  readonly #heat = new Map<string, Heat>();
  /** Decisions made here from a lease. */
  spent = 0;

  readonly #giveBack: GiveBack;

  constructor(options: LeaseOptions, now: () => number, giveBack: GiveBack) {
    this.#options = options;
    this.#now = now;
    this.#giveBack = giveBack;
  }

  /** A lease let go before its window ends: its unspent units go back to that window. */
  #letGo(key: string, lease: Lease, now: number): void {
    if (lease.units > 0 && now < lease.windowEndsAt) this.#giveBack(key, lease.units, lease.window);
  }

  get share(): number {
    return this.#options.share;
  }

  /**
   * Spends `cost` from the key's lease and returns the allowing Decision, or undefined when the key
   * holds no lease that covers it (an expired or short one is let go: its units were counted, and
   * are not admitted). `remaining` is an estimate: this lease's units plus what the store had left
   * for others when it was taken.
   */
  spend(key: string, cost: number): Decision | undefined {
    const lease = this.#leases.get(key);
    if (lease === undefined) return undefined;
    const now = this.#now();
    if (now >= lease.endsAt || lease.units < cost) {
      this.#leases.delete(key);
      this.#letGo(key, lease, now);
      return undefined;
    }
    lease.units -= cost;
    this.spent++;
    return { allowed: true, limit: lease.limit, remaining: lease.units + lease.othersLeft, resetMs: lease.windowEndsAt - now, retryAfterMs: 0 };
  }

  /**
   * Counts a consume of `cost` that goes to the store; when the key has grown hot, the units to ask
   * a lease for (twice what it consumed this period, so a lease lasts about two periods), else 0.
   */
  want(key: string, cost: number): number {
    const now = this.#now();
    let heat = this.#heat.get(key);
    if (heat === undefined || now - heat.since >= HEAT_PERIOD_MS) {
      if (heat === undefined && this.#heat.size >= this.#options.keys) this.#heat.clear();
      heat = { units: 0, since: now };
      this.#heat.set(key, heat);
    }
    heat.units += cost;
    return heat.units >= this.#options.hotAfter ? Math.max(cost, 2 * heat.units) : 0;
  }

  /**
   * Keeps `units` granted for the key by a lease call sent at `sentAt` (this process' clock), whose
   * window the store said ends `resetMs` after it ran; `window` names that window to the store (see
   * GiveBack). The store ran the call after it was sent, so the window surely ends by `sentAt +
   * resetMs` here (less a millisecond for the store's rounding).
   */
  keep(key: string, units: number, limit: number, othersLeft: number, resetMs: number, window: LeaseWindow, sentAt: number): void {
    if (units <= 0) return;
    const now = this.#now();
    const windowEndsAt = sentAt + resetMs - 1;
    if (windowEndsAt <= now) return;
    const before = this.#leases.get(key);
    if (before !== undefined) this.#letGo(key, before, now);
    else if (this.#leases.size >= this.#options.keys) {
      const oldest = this.#leases.entries().next();
      if (!oldest.done) {
        this.#leases.delete(oldest.value[0]);
        this.#letGo(oldest.value[0], oldest.value[1], now);
      }
    }
    this.#leases.set(key, { units, limit, othersLeft, endsAt: Math.min(windowEndsAt, sentAt + this.#options.maxAgeMs), windowEndsAt, window });
  }

  /** Lets the key's lease go (reset, block): its units stay counted and are not admitted. */
  drop(key: string): void {
    this.#leases.delete(key);
  }

  /** Lets every lease go, handing their unspent units back (close). */
  clear(): void {
    const now = this.#now();
    for (const [key, lease] of this.#leases) this.#letGo(key, lease, now);
    this.#leases.clear();
    this.#heat.clear();
  }
}
