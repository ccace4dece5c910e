// The minimal limiter a team writes by hand: a Map of fixed windows, no expiry sweeping.
export class MapFixedWindow {
  constructor(limit, windowMs) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.windows = new Map();
  }

  consume(key) {
    const now = Date.now();
    let w = this.windows.get(key);
    if (w === undefined || now >= w.resetAt) {
      w = { count: 0, resetAt: now + this.windowMs };
      this.windows.set(key, w);
    }
    if (w.count >= this.limit) return false;
    w.count++;
    return true;
  }
}
