// What time it is on one Redis node, as a safe lower bound, so that a call's deadline can be
// written in the node's own clock: the script refuses to act once that time has passed there.

/** How fast two clocks may drift apart (100 ppm, far beyond NTP-disciplined hosts). */
const DRIFT = 1e-4;
/** Samples older than this stop tightening the bound (so a server clock stepped back is soon followed). */
const SAMPLE_LIFETIME_MS = 1000;

/**
 * A reply read at local time `receivedAt` that carries the server's clock `serverMs` proves that
 * server time - local time >= serverMs - receivedAt (the server read its clock before we read the
 * reply). The largest such bound among recent samples, less the drift since it was taken, is
 * never above the true offset; a deadline `d` in local time is then `d + offset` at the latest
 * in server time, and a script that runs before that runs before `d` here.
 *
 * NOTE: Redis' TIME is its wall clock. A step of that clock backwards (a large NTP correction)
 * makes the bound too high for up to a second, and a call that was late by less than the step may
 * still run; a step forwards only makes late refusals early.
 */
export class ServerClock {
  #offset = Number.NaN;
  #takenAt = 0;
  #previousOffset = Number.NaN;
  #previousTakenAt = 0;

  /** Whether a sample exists (before one, no deadline can be given). */
  get known(): boolean {
    return !Number.isNaN(this.#offset);
  }

  /** A smoothed round trip to this node, in ms (0 before any sample). */
  roundTripMs = 0;

  /** Records one reply, sent at local time `sentAt`, carrying the server's clock `serverMs`, read by us at `receivedAt`. */
  observe(serverMs: number, sentAt: number, receivedAt: number): void {
    const trip = Math.max(0, receivedAt - sentAt);
    this.roundTripMs = this.roundTripMs === 0 ? trip : this.roundTripMs * 0.875 + trip * 0.125;
    const offset = serverMs - receivedAt;
    if (Number.isNaN(this.#offset) || receivedAt - this.#takenAt > SAMPLE_LIFETIME_MS / 2) {
      // Start a new half-second bucket; the old one stays as the previous.
      this.#previousOffset = this.#offset;
      this.#previousTakenAt = this.#takenAt;
      this.#offset = offset;
      this.#takenAt = receivedAt;
    } else if (offset > this.#offset) {
      this.#offset = offset;
      this.#takenAt = receivedAt;
    }
  }

  /** The latest server time at which a call that gives up at local time `localDeadline` may still act; 0 when unknown. */
  deadline(localDeadline: number, now: number): number {
    if (Number.isNaN(this.#offset)) return 0;
    let offset = this.#offset - (now - this.#takenAt) * DRIFT;
    if (!Number.isNaN(this.#previousOffset) && now - this.#previousTakenAt <= SAMPLE_LIFETIME_MS) {
      offset = Math.max(offset, this.#previousOffset - (now - this.#previousTakenAt) * DRIFT);
    }
    return Math.max(1, Math.floor(localDeadline + offset));
  }
}
