// Structured logging of denials that a flood cannot turn into a flood of log lines.
import type { ManualClock } from '../common/clock.js';
import type { Decision } from '../common/decision.js';
import { invalidArgument } from '../common/errors.js';
import { Limiter } from '../limiters/limiter.js';
import { fixedWindow } from '../common/policies.js';
import { checkInteger, checkObject } from '../common/validate.js';
import { checkKnownKeys } from '../common/option-keys.js';

export interface DenialRecord {
  readonly key: string;
  readonly decision: Decision;
  /** Denials not logged since the previous record (over the rate). */
  readonly suppressed: number;
}

/**
 * A hook for `onDeny` (or anything with `{ key, decision }`) that passes at most `maxPerSecond`
 * records per second to `log`, each saying how many were suppressed before it. It is itself
 * a tollgate limiter.
 */
export function denialLogger(options: {
  readonly log: (record: DenialRecord) => void;
  readonly maxPerSecond?: number;
  /** For tests. */
  readonly clock?: ManualClock;
}): (event: { readonly key: string; readonly decision: Decision }) => void {
  checkKnownKeys(checkObject(options, 'options'), ['log', 'maxPerSecond', 'clock'], 'denialLogger options');
  if (typeof options.log !== 'function') throw invalidArgument('log', 'a function', options.log);
  const max = options.maxPerSecond === undefined ? 10 : checkInteger(options.maxPerSecond, 'maxPerSecond', 1, 1_000_000);
  const gate = new Limiter({ policy: fixedWindow({ limit: max, windowMs: 1000 }), capacity: 64, engine: 'js', ...(options.clock ? { clock: options.clock } : {}) });
  let suppressed = 0;
  return (event) => {
    if (!gate.tryConsume('log')) {
      suppressed++;
      return;
    }
    options.log({ key: event.key, decision: event.decision, suppressed });
    suppressed = 0;
  };
}
