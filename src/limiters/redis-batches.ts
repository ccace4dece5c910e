// RedisLimiter's decisions on their way to Redis: requests wait per slot group, go together in one
// script call (a batch) through the limiter's ScriptRunner, and the reply settles each of them
// through the limiter's outcomes; a batch Redis cannot take is handed to onError.
import type { Decision } from '../common/decision.js';
import type { LimiterKeys } from '../redis/limiter-keys.js';
import { DECIDE_LUA, FIXED_WINDOW_LUA } from '../redis/lua.js';
import { keyTagText } from '../redis/redis-keys.js';
import { END_KNOWN, END_UNKNOWN, Op, type DecideProtocol, type DecideRequest, type DecisionSink } from '../redis/protocol.js';
import { realNow, type RedisNode, type ScriptRunner } from '../redis/script-runner.js';
import { script } from '../redis/script.js';
import type { CallOptions } from './rate-limiter.js';
import type { WindowEnds } from './window-ends.js';

const DECIDE = script(DECIDE_LUA);
/** Plain consumes under one fixed window: DECIDE is loaded on a node only when a batch needs it. */
const FIXED_WINDOW = script(FIXED_WINDOW_LUA);

/** One consume or peek waiting for Redis' answer. */
export interface Pending extends DecideRequest {
  readonly key: string;
  readonly op: typeof Op.Consume | typeof Op.Peek;
  readonly cost: number;
  /** What the caller gave, for the fallback limiter. */
  readonly options: CallOptions | undefined;
  /** Its first state key, `<base><policy 1's suffix>` (see LimiterKeys); every other name is made from it when needed. */
  readonly stateKey: string;
  /** Its slot group (0 on a single server): its blocks marker, its slot and its batch. */
  readonly group: number;
  /** When its timeoutMs began, by realNow(); 0 = when its batch is sent (a call that waited for a lease began earlier). */
  readonly startedAt: number;
  /** The limiter's forget count when it was made: a denial is cached only if unchanged. */
  readonly forgets: number;
  readonly resolve: (d: Decision) => void;
  readonly reject: (error: unknown) => void;
}

/** What the limiter does with each request once its batch is answered, or cannot be. */
export interface BatchOutcomes extends DecisionSink<Pending> {
  /** Redis could not decide it (a failure, its node known down): onError decides. */
  fallBack(p: Pending): void;
  /** A batch not sent, as its node's breaker is open (onError then decides each request). */
  shortCircuited(node: RedisNode, batch: readonly Pending[]): void;
  /** Whether the limiter is closed (its requests already rejected). */
  isClosed(): boolean;
}

export interface BatchConfig {
  readonly maxBatch: number;
  readonly timeoutMs: number;
  /** The overrides of a call without a tier (compared by identity). */
  readonly noOverrides: readonly number[];
  /** Under one fixed window: the window ends replies showed (see knownEnds). */
  readonly ends: WindowEnds | undefined;
}

export class Batches {
  readonly #runner: ScriptRunner;
  readonly #protocol: DecideProtocol;
  readonly #keys: LimiterKeys;
  readonly #config: BatchConfig;
  readonly #outcomes: BatchOutcomes;
  /** Requests waiting for their call, per slot group (one queue, under group 0, on a single server). */
  readonly #queues = new Map<number, Pending[]>();
  #scheduled = false;
  /** Batches sent and not yet answered: rejectAll() rejects their requests at once. */
  readonly #inFlight = new Set<Pending[]>();
  readonly #flushNow = () => this.flush();

  constructor(runner: ScriptRunner, protocol: DecideProtocol, keys: LimiterKeys, config: BatchConfig, outcomes: BatchOutcomes) {
    this.#runner = runner;
    this.#protocol = protocol;
    this.#keys = keys;
    this.#config = config;
    this.#outcomes = outcomes;
  }

  /** Whether requests wait for their call. */
  get waiting(): boolean {
    return this.#queues.size > 0;
  }

  /**
   * Redis' decision on `key`, asked in its slot group's next call. No closure of its own (the
   * executor is shared) and no registry entry per request: rejectAll() finds it in its queue or
   * its batch in flight.
   */
  request(key: string, op: Pending['op'], cost: number, overrides: readonly number[], options: CallOptions | undefined, startedAt: number, forgets: number): Promise<Decision> {
    const promise = new Promise<Decision>(this.#capture);
    const resolve = this.#captured.resolve;
    const reject = this.#captured.reject;
    try {
      const text = keyTagText(key);
      const group = this.#keys.groupOf(text);
      this.#add({ key, op, cost, overrides, options, stateKey: this.#keys.stateKey(text, group), group, knownEnd: 0, startedAt, forgets, resolve, reject });
    } catch (error) {
      // As a throw in an executor would: the call rejects (a client's nodeOf that throws).
      reject(error);
    }
    return promise;
  }

  /** The settling functions of the promise #capture last ran for (read at once after it). */
  readonly #captured: { resolve: (d: Decision) => void; reject: (error: unknown) => void } = { resolve: () => undefined, reject: () => undefined };

  /** One promise executor for every request: it hands the settling functions to #captured. */
  readonly #capture = (resolve: (d: Decision) => void, reject: (error: unknown) => void): void => {
    this.#captured.resolve = resolve;
    this.#captured.reject = reject;
  };

  /**
   * Queues a request for its slot group's next call. On a Cluster a call holds the keys of one
   * slot group (one slot, one blocks marker): requests wait per group, a full batch goes at once.
   */
  #add(pending: Pending): void {
    const group = pending.group;
    let queue = this.#queues.get(group);
    if (queue === undefined) {
      queue = [];
      this.#queues.set(group, queue);
    }
    queue.push(pending);
    if (queue.length >= this.#config.maxBatch) {
      this.#queues.delete(group);
      this.#dispatch(this.#runner.node(this.#keys.slots[group] as number), queue);
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      // Nothing in flight: a lone call goes at once, after this turn's synchronous calls (which
      // share it); it must not wait an event-loop turn for a batch to fill. With calls in
      // flight, wait for the loop's turn instead: what arrives meanwhile shares one call.
      if (this.#inFlight.size === 0) queueMicrotask(this.#flushNow);
      else setImmediate(this.#flushNow);
    }
  }

  /** Sends every waiting request: a call per slot group that has some. */
  flush(): void {
    this.#scheduled = false;
    for (const [group, queue] of this.#queues) this.#dispatch(this.#runner.node(this.#keys.slots[group] as number), queue);
    this.#queues.clear();
  }

  /** Rejects every request waiting or in flight with `error` (close()); answers that arrive later are dropped. */
  rejectAll(error: unknown): void {
    for (const queue of this.#queues.values()) for (const p of queue) p.reject(error);
    this.#queues.clear();
    for (const batch of this.#inFlight) for (const p of batch) p.reject(error);
    this.#inFlight.clear();
  }

  /**
   * Sends a batch to its node, unless the node's breaker says it is down: then onError decides at
   * once. A batch of plain consumes under one fixed window goes to FIXED_WINDOW, unless it is what
   * FIXED_WINDOW sent back (a blocked key): then `resentFrom` is when the first batch began, and
   * it goes to DECIDE.
   */
  #dispatch(node: RedisNode, batch: Pending[], resentFrom?: number): void {
    if (!this.#runner.admit(node)) {
      this.#outcomes.shortCircuited(node, batch);
      return;
    }
    // Every request of a batch shares its slot group (its limiter, on a single server): one marker.
    const group = (batch[0] as Pending).group;
    const keys: string[] = [this.#keys.markers[group] as string];
    const noOverrides = this.#config.noOverrides;
    let plain = true;
    const single = this.#keys.single;
    for (const p of batch) {
      if (single) keys.push(p.stateKey);
      else for (const name of this.#keys.stateKeys(p.stateKey)) keys.push(name);
      if (p.op !== Op.Consume || p.cost !== 1 || p.overrides !== noOverrides) plain = false;
    }
    // A batch of plain consumes (the common case) sends nothing per request but, under one fixed
    // window, which windows' ends it knows; any other batch sends all of it.
    const args = this.#protocol.batchArgs(plain);
    const fixed = plain && this.#protocol.oneFixedWindow && resentFrom === undefined;
    if (fixed) args.push(this.#knownEnds(node, batch));
    else if (!plain) for (const p of batch) this.#protocol.addRequest(args, p.op, p.cost, p.overrides);
    // The batch's timeoutMs began with its earliest request (one that waited for a lease), else now.
    let startedAt = resentFrom ?? realNow();
    for (const p of batch) if (p.startedAt !== 0 && p.startedAt < startedAt) startedAt = p.startedAt;
    this.#inFlight.add(batch);
    const slot = this.#keys.slots[group] as number;
    this.#runner.send(node, fixed ? FIXED_WINDOW : DECIDE, keys, args, slot, startedAt).then(
      (reply) => {
        this.#inFlight.delete(batch);
        // Closed: the batch was rejected already, and the deny cache is gone.
        if (this.#outcomes.isClosed()) return;
        const resend = this.#protocol.readBatch(reply, batch, this.#outcomes);
        // Within the batch's own timeoutMs: the resent requests keep when it began.
        if (resend !== undefined) this.#dispatch(this.#runner.node(slot), resend, startedAt);
      },
      (error: unknown) => {
        this.#inFlight.delete(batch);
        // Closed: the batch was rejected already, and nothing decides for it now (the failure
        // itself was counted and reported by the runner).
        if (this.#outcomes.isClosed()) return;
        // A node that lacks what tollgate needs is an error to fix, not a failure to decide around.
        if ((error as { code?: string }).code === 'TOLLGATE_REDIS_UNSUPPORTED') for (const p of batch) p.reject(error);
        else for (const p of batch) this.#outcomes.fallBack(p);
      },
    );
  }

  /**
   * One character per request of a plain batch under one fixed window: END_KNOWN where the key's
   * window surely outlasts the call (it ends after the latest time by Redis' clock at which the
   * script may run, the call's deadline), so the script need not read its TTL and answers
   * KNOWN_END; END_UNKNOWN elsewhere. A window restarted since (a reset() elsewhere, an eviction)
   * with a count above 1 would show the old end until then: the decision is Redis' own either way.
   */
  #knownEnds(node: RedisNode, batch: Pending[]): string {
    const now = realNow();
    // At or after the deadline the runner gives this call (the same clock, a later start, less a margin).
    const latest = node.clock.deadline(now + this.#config.timeoutMs, now);
    const ends = this.#config.ends;
    if (latest === 0 || ends === undefined) return '';
    // Up to the last known end only: the script reads a missing character as END_UNKNOWN. At many
    // keys most batches know none, and send ''.
    let known = '';
    let upTo = 0;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i] as Pending;
      const end = ends.get(p.key);
      if (end > latest) {
        p.knownEnd = end;
        known += i > upTo ? `${END_UNKNOWN.repeat(i - upTo)}${END_KNOWN}` : END_KNOWN;
        upTo = i + 1;
      }
    }
    return known;
  }
}
