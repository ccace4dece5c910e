// The Redis tier's transport: tollgate's Lua scripts run on the node that serves their keys, each
// call under a deadline Redis itself checks and a bound on the wait, a breaker per node, the node's
// clock learnt from every reply, EVALSHA with the script's text on NOSCRIPT, and every failure as a
// coded TOLLGATE_REDIS_* error. RedisLimiter sends its batches through one (reading what each node
// can do first, see server-probe.ts); the stores that keep another library's format on Redis (see
// src/adapters/peer-formats) and RedisPlaces run one-key scripts through run().
import { closedError, redisError, type RedisErrorCode } from '../common/errors.js';
import { Breaker, type BreakerOptions, type BreakerState, type BreakerTransitions } from './breaker.js';
import { keySlot } from './key-slot.js';
import { DEADLINE_LUA, PROBE_LUA } from './lua.js';
import { CallHead } from './protocol.js';
import { asRedisError, countsTowardBreaker } from './redis-errors.js';
import type { RedisTransport } from './redis-client.js';
import { script as makeScript, type Script } from './script.js';
import { ServerClock } from './server-clock.js';
import { noScriptsError, PROBED_COMMANDS, readProbe, unsupportedError, warnEviction, type ServerProfile } from './server-probe.js';

/** Local time for deadlines, timeouts and breakers: real and monotonic, whatever clock decides. */
export const realNow = (): number => performance.now();

/** Reads Redis' clock, for a node whose clock is not known yet (without a probe, see run). */
const CLOCK = makeScript(`${DEADLINE_LUA}return { ${CallHead.Ran}, clock }\n`);
/** Reads what a node is and can do, with its clock (see server-probe.ts). */
const PROBE = makeScript(PROBE_LUA);

/**
 * The bound on a node's first contact (connecting, reading its clock and, for RedisLimiter, what
 * it can do), when timeoutMs is shorter: setup takes round trips a decision does not.
 */
export const FIRST_CONTACT_MS = 2000;

/** How often a node that lacks a command is probed again (an operator may fix its ACL meanwhile). */
const PROBE_AGAIN_MS = 10_000;

/** A node not routed to for this long no longer counts in openNodes(), and is forgotten soon after. */
const NODE_IDLE_MS = 5000;

/** What a runner reports: a failed call, or a node's breaker changing state (RedisLimiter's onEvent). */
export type RedisNodeEvent =
  | { readonly type: 'error'; readonly error: Error & { readonly code: RedisErrorCode; readonly reply?: string }; readonly node: string }
  | { readonly type: 'breaker'; readonly state: BreakerState; readonly node: string };

export interface ScriptRunnerOptions {
  /** Bound on every call, in ms. */
  readonly timeoutMs: number;
  /** undefined: no breaker (every call is sent). */
  readonly breaker: BreakerOptions | undefined;
  /** Told of every failed call and breaker move; what it throws is the caller's to catch. */
  readonly onEvent?: ((event: RedisNodeEvent) => void) | undefined;
  /**
   * Given: each node is probed on first contact (PROBE_LUA: its version, the commands its ACL user
   * may not run, its eviction policy), and calls to a node that lacks a command reject with
   * TOLLGATE_REDIS_UNSUPPORTED until a probe finds it fixed; `leasesWanted` says whether a refusal
   * that a node without leases explains should only switch them off. Else only its clock is read.
   */
  readonly probe?: { readonly leasesWanted: () => boolean } | undefined;
}

/** One node (or the single server): its breaker, its clock and what it can do. */
export interface RedisNode {
  readonly name: string;
  readonly breaker: Breaker | undefined;
  readonly clock: ServerClock;
  /** The first-contact read under way (a probe, or the clock alone), shared by the calls that wait for it. */
  probing: Promise<void> | undefined;
  /** What the last probe found (undefined before one answered, and without probes). */
  profile: ServerProfile | undefined;
  /** While the node lacks what tollgate needs: the error every call rejects with. */
  unsupported: (Error & { code: RedisErrorCode }) | undefined;
  /** When to probe again (Infinity once nothing is missing). */
  probeAt: number;
  /** The server's words when a call was refused a command since the last probe. */
  refused: string | undefined;
  /** When a call was last routed here (a node that no longer serves a slot stops being asked). */
  lastUsed: number;
  /** The scripts this node has run (later calls send their SHA). */
  readonly scripts: Set<Script>;
  /** On a Cluster: the slots routed here lately, with when. */
  readonly slots: Map<number, number>;
  /** Slots whose last call here timed out, since a call of theirs last answered. */
  readonly failingSlots: Set<number>;
}

/** What the runner counted, for RedisLimiter's stats(). */
export interface RunnerCounts {
  /** Commands sent (a NOSCRIPT retry is a second). */
  redisCalls: number;
  errors: number;
  timeouts: number;
  /** Calls Redis refused as past their deadline. */
  lateRefused: number;
  /** Calls Redis ran whose reply came after the caller gave up. */
  lateExecuted: number;
}

/**
 * Thrown by send() for a script that needs leases (see `needsLeases`) on a node that cannot serve
 * them: nothing was sent, and the node, which answered its probe, counts as up.
 */
export const LEASES_OFF = Symbol('leases off');

export class ScriptRunner {
  readonly #redis: RedisTransport;
  readonly #timeoutMs: number;
  readonly #breaker: BreakerOptions | undefined;
  readonly #onEvent: ((event: RedisNodeEvent) => void) | undefined;
  readonly #probe: { readonly leasesWanted: () => boolean } | undefined;
  readonly #nodes = new Map<string, RedisNode>();
  /** Transitions of every node's breaker. */
  readonly transitions: BreakerTransitions = { opened: 0, halfOpened: 0, closed: 0 };
  readonly counts: RunnerCounts = { redisCalls: 0, errors: 0, timeouts: 0, lateRefused: 0, lateExecuted: 0 };
  /** Rejects each call still waiting for its reply (each clears its own timer), so close() can end them. */
  readonly #unsettled = new Set<(error: Error) => void>();
  #closed = false;
  #lastRefresh = -Infinity;

  constructor(redis: RedisTransport, options: ScriptRunnerOptions) {
    this.#redis = redis;
    this.#timeoutMs = options.timeoutMs;
    this.#breaker = options.breaker;
    this.#onEvent = options.onEvent;
    this.#probe = options.probe;
  }

  /** Whether the client talks to a Redis Cluster. */
  get cluster(): boolean {
    return this.#redis.cluster;
  }

  /** The node that serves `slot` (the single server: any), with its breaker and clock. */
  node(slot: number): RedisNode {
    const name = this.#redis.cluster ? this.#redis.nodeOf(slot) : '';
    const now = realNow();
    let node = this.#nodes.get(name);
    if (node === undefined) {
      // A new node (a promoted replica, a resharding): forget those long unused (a failed master).
      for (const [other, state] of this.#nodes) if (now - state.lastUsed > 12 * NODE_IDLE_MS) this.#nodes.delete(other);
      const breaker = this.#breaker === undefined ? undefined : new Breaker(this.#breaker, this.transitions);
      node = {
        name,
        breaker,
        clock: new ServerClock(),
        probing: undefined,
        profile: undefined,
        unsupported: undefined,
        probeAt: 0,
        refused: undefined,
        lastUsed: now,
        scripts: new Set(),
        slots: new Map(),
        failingSlots: new Set(),
      };
      this.#nodes.set(name, node);
    }
    node.lastUsed = now;
    if (this.#redis.cluster) node.slots.set(slot, now);
    return node;
  }

  /** Whether a call may go to `node` now: false while its breaker is open (the call is then not sent). */
  admit(node: RedisNode): boolean {
    return node.breaker?.admit(realNow()) !== 'skip';
  }

  /** Nodes routed to lately whose breaker is not closed. */
  openNodes(): number {
    let open = 0;
    const now = realNow();
    for (const node of this.#nodes.values()) {
      if (node.breaker !== undefined && node.breaker.state !== 'closed' && now - node.lastUsed <= NODE_IDLE_MS) open++;
    }
    return open;
  }

  /**
   * Runs `script` (its Lua starts with DEADLINE_LUA, src/redis/lua.ts: ARGV[1] is the deadline and
   * the reply starts {1, clock}, or {0, clock} when Redis refused it as late) on `key` with `args`
   * after the deadline; resolves with the whole reply (its {1, clock} head included) or rejects
   * with a TOLLGATE_REDIS_* error within timeoutMs. A node whose breaker is open is not asked
   * (TOLLGATE_REDIS_UNAVAILABLE at once). After close(), and for a call still out when close() is
   * called, rejects with TOLLGATE_CLOSED at once.
   *
   * A node whose clock is not known yet (no reply so far) is asked for it first, within
   * FIRST_CONTACT_MS (or timeoutMs, if longer), and the call's timeoutMs starts after it: a script
   * is never sent without a deadline, since Redis would act on it however late it arrived,
   * counting a call that onError has already answered here.
   */
  async run(script: Script, key: string, args: readonly string[]): Promise<readonly unknown[]> {
    if (this.#closed) throw closedError('store');
    const slot = this.#redis.cluster ? keySlot(key) : 0;
    const node = this.node(slot);
    if (!this.admit(node)) throw unavailable(node, '; decided by onError');
    return this.send(node, script, [key], args, slot);
  }

  /**
   * Runs `s` on `node` (which serves `slot`) with the call's deadline in front of `args`; resolves
   * with the whole reply, its {status, clock} head included. Settles within timeoutMs of
   * `startedAt` (a first call to a node reads its clock first, bounded by FIRST_CONTACT_MS, and its
   * timeoutMs starts after that). Redis
   * refuses to act once the deadline has passed by its own clock; a reply that comes after the
   * timeout is dropped (and counted). The caller has asked admit() first.
   */
  async send(node: RedisNode, s: Script, keys: readonly string[], args: readonly string[], slot: number, startedAt = realNow(), needsLeases = false): Promise<readonly unknown[]> {
    if (!node.clock.known || startedAt >= node.probeAt) {
      await this.#firstContact(node, keys[0] as string, slot, startedAt);
      // Connecting and reading the node's clock are the node's setup, bounded on their own: the
      // call's timeoutMs starts once they are done (a fresh connection on a busy host took more
      // than a 250 ms budget, and the breaker then refused every call waiting with it).
      startedAt = Math.max(startedAt, realNow());
    }
    const unsupported = node.unsupported;
    if (unsupported !== undefined || (needsLeases && node.profile?.leases === false)) {
      // Nothing is sent; the node answered its probe, so it is up.
      this.#trialEnded(node, true);
      // Found on the probe (which reported it): every call rejects with it until a probe finds it fixed.
      if (unsupported !== undefined) throw unsupported;
      throw LEASES_OFF;
    }
    try {
      const now = realNow();
      // The reply must be back before the timeout: Redis stops acting a round trip's worth early.
      const margin = Math.min(this.#timeoutMs / 4, 2 * node.clock.roundTripMs + 1);
      const deadline = node.clock.deadline(startedAt + this.#timeoutMs - margin, now);
      const giveUpAt = startedAt + this.#timeoutMs;
      const reply = await this.#bounded(this.#eval(s, keys, [String(deadline), ...args], node, giveUpAt, false), giveUpAt - now);
      if (Number(reply[0]) === CallHead.Late) {
        this.counts.lateRefused++;
        throw redisError(`Redis refused the call as late (past its deadline by Redis' clock)`, 'TOLLGATE_REDIS_LATE');
      }
      node.failingSlots.delete(slot);
      const before = node.breaker?.state;
      node.breaker?.success();
      this.#breakerMoved(node, before);
      return reply;
    } catch (error) {
      // Closed under it: no failure of the node's, and the breaker is no one's concern any more.
      if (this.#closed) throw closedError('store');
      const coded = asRedisError(error);
      // A late refusal is an answer: the node is up, but too slow for this call. It does not
      // count toward the breaker, except as a trial's outcome: that trial failed, the next comes later.
      if (coded.code === 'TOLLGATE_REDIS_LATE') {
        this.#emit({ type: 'error', error: coded, node: node.name });
        this.#trialEnded(node, false);
      } else this.#failed(node, coded, slot);
      throw coded;
    }
  }

  /**
   * What a node's first call needs: its clock, and with probes what it can do (see server-probe.ts),
   * read once on first contact and again while something is missing; shared by the calls that
   * arrive meanwhile, within the budget from `startedAt`. A failure to read is the node's failure,
   * as any call's.
   */
  #firstContact(node: RedisNode, key: string, slot: number, startedAt: number): Promise<void> {
    node.probing ??= (async () => {
      try {
        const giveUpAt = startedAt + Math.max(this.#timeoutMs, FIRST_CONTACT_MS);
        const s = this.#probe === undefined ? CLOCK : PROBE;
        const args = this.#probe === undefined ? ['0'] : ['0', ...PROBED_COMMANDS];
        const reply = await this.#bounded(this.#eval(s, [key], args, node, giveUpAt, true), giveUpAt - realNow());
        if (this.#probe === undefined) node.probeAt = Infinity;
        else this.#probed(node, readProbe(reply), this.#probe.leasesWanted());
      } catch (error) {
        if (this.#closed) throw closedError('store');
        const coded = asRedisError(error);
        if (this.#probe !== undefined && coded.code === 'TOLLGATE_REDIS_NO_PERMISSION') {
          // Not even the scripts may run: the same as a missing command.
          node.unsupported = noScriptsError(node.name, coded.reply ?? coded.message);
          node.probeAt = realNow() + PROBE_AGAIN_MS;
          this.#emit({ type: 'error', error: node.unsupported, node: node.name });
          return;
        }
        this.#failed(node, coded, slot);
        throw coded;
      } finally {
        node.probing = undefined;
      }
    })();
    return node.probing;
  }

  /** What a probe found, kept on the node: what it lacks (reported), and when to look again. */
  #probed(node: RedisNode, profile: ServerProfile, leasesWanted: boolean): void {
    node.profile = profile;
    // A refusal the probe cannot name (Redis 6 has no ACL check for scripts; a key outside the
    // user's patterns) is reported in the server's words; one that leases explain (their command
    // refused since) only switches them off, at the next lease call.
    const refused = node.refused;
    node.refused = undefined;
    const leasesExplain = !profile.leases && leasesWanted;
    if (profile.missing.length > 0) node.unsupported = unsupportedError(node.name, profile.missing);
    else node.unsupported = refused === undefined || leasesExplain ? undefined : noScriptsError(node.name, refused);
    node.probeAt = node.unsupported === undefined ? Infinity : realNow() + PROBE_AGAIN_MS;
    if (node.unsupported !== undefined) this.#emit({ type: 'error', error: node.unsupported, node: node.name });
    if (profile.evicting !== undefined) warnEviction(node.name, { ...profile, evicting: profile.evicting });
  }

  /**
   * EVALSHA, sending the script itself on NOSCRIPT (after a restart, a failover or SCRIPT FLUSH).
   * A reply seen (whenever it comes) feeds the node's clock; one that says Redis acted, or refused
   * as late, after the caller gave up is counted. A first-contact script always goes as its text.
   */
  #eval(s: Script, keys: readonly string[], args: readonly string[], node: RedisNode, giveUpAt: number, firstContact: boolean): Promise<readonly unknown[]> {
    this.counts.redisCalls++;
    const sentAt = realNow();
    // A script's first call to a node sends its text (which loads it there): one round trip, where
    // EVALSHA would first meet NOSCRIPT on a node that never ran it.
    const first = firstContact || !node.scripts.has(s);
    const attempt = first
      ? this.#redis.eval(s.lua, keys, args)
      : this.#redis.evalsha(s.sha, keys, args).catch((error: unknown) => {
          if (!String((error as Error)?.message).includes('NOSCRIPT')) throw error;
          if (this.#closed) throw closedError('store'); // nothing is sent after close(); #bounded already settled
          this.counts.redisCalls++;
          return this.#redis.eval(s.lua, keys, args);
        });
    return attempt.then((raw) => {
      if (!Array.isArray(raw)) throw new Error(`unexpected reply ${String(raw)}`);
      const reply = raw as readonly unknown[];
      const receivedAt = realNow();
      if (first) node.scripts.add(s);
      node.clock.observe(Number(reply[1]), sentAt, receivedAt);
      if (receivedAt > giveUpAt) {
        if (Number(reply[0]) === CallHead.Late) this.counts.lateRefused++;
        else if (!firstContact) this.counts.lateExecuted++;
      }
      return reply;
    });
  }

  /**
   * Settles within `ms`, or at once on close(), with a TOLLGATE_REDIS_* error on failure; the late
   * answer is dropped (the deadline, once the node's clock is known, keeps Redis from acting on it).
   */
  #bounded<T>(promise: Promise<T>, ms: number): Promise<T> {
    return new Promise((resolve, reject) => {
      // Whichever comes first (reply, timeout, close()) settles the call; the others find it gone.
      const settle = (error: Error | undefined, value?: T) => {
        if (!this.#unsettled.delete(fail)) return;
        clearTimeout(timer);
        if (error === undefined) resolve(value as T);
        else reject(error);
      };
      const fail = (error: Error) => settle(error);
      const timer = setTimeout(() => fail(redisError(`Redis did not answer within ${this.#timeoutMs} ms`, 'TOLLGATE_REDIS_TIMEOUT')), Math.max(0, ms));
      timer.unref?.();
      this.#unsettled.add(fail);
      promise.then(
        (value) => settle(undefined, value),
        (error: unknown) => fail(asRedisError(error)),
      );
    });
  }

  /** A call for `slot` failed: counted, reported, and the node's breaker told when the failure is the node's. */
  #failed(node: RedisNode, error: Error & { code: RedisErrorCode; reply?: string }, slot: number): void {
    if (error.code === 'TOLLGATE_REDIS_TIMEOUT') this.counts.timeouts++;
    else this.counts.errors++;
    this.#emit({ type: 'error', error, node: node.name });
    // A command refused during a call (an ACL changed since the probe): probe again at the next
    // call, which then rejects with the command's name rather than deciding around it for ever.
    if (error.code === 'TOLLGATE_REDIS_NO_PERMISSION' && this.#probe !== undefined) {
      node.probeAt = 0;
      node.refused = error.reply ?? error.message;
    }
    if (!countsTowardBreaker(error.code)) {
      // An answer that says nothing against the node (a refused command, a slot on the move).
      this.#trialEnded(node, true);
      return;
    }
    const before = node.breaker?.state;
    // A trial's failure always counts; another only when it speaks for the whole node.
    if (before === 'half-open' || this.#nodeFailing(node, error.code, slot)) node.breaker?.failure(realNow());
    this.#breakerMoved(node, before);
  }

  /**
   * A call that may have been the breaker's trial ended without a plain success or failure: it
   * reports whether the node was found up. A trial must have an outcome, else the breaker waits
   * half-open for ever and every call goes to onError; outside a trial this changes nothing.
   */
  #trialEnded(node: RedisNode, up: boolean): void {
    if (node.breaker?.state !== 'half-open') return;
    if (up) node.breaker.success();
    else node.breaker.failure(realNow());
    this.#breakerMoved(node, 'half-open');
  }

  /**
   * Whether a failure of `slot` speaks for its whole node. On a Cluster, a slot that times out
   * while the node's other slots answer is being migrated (its client retrying TRYAGAIN until the
   * move ends), not dead: a timeout counts once calls of two slots of the node are timing out, or
   * when the node served no other slot lately.
   */
  #nodeFailing(node: RedisNode, code: RedisErrorCode, slot: number): boolean {
    if (!this.#redis.cluster || code !== 'TOLLGATE_REDIS_TIMEOUT') return true;
    node.failingSlots.add(slot);
    if (node.failingSlots.size >= 2) return true;
    const now = realNow();
    for (const [other, usedAt] of node.slots) {
      if (other !== slot && now - usedAt <= NODE_IDLE_MS) return false;
    }
    return true;
  }

  #breakerMoved(node: RedisNode, before: BreakerState | undefined): void {
    const after = node.breaker?.state;
    if (after === undefined || after === before) return;
    this.#emit({ type: 'breaker', state: after, node: node.name });
    // A cluster node that stopped answering may have been replaced: have the client look again
    // (at most once a second), so calls move to the promoted replica without waiting for it.
    if (after === 'open' && this.#redis.cluster && realNow() - this.#lastRefresh >= 1000) {
      this.#lastRefresh = realNow();
      try {
        this.#redis.refresh();
      } catch {
        // The client's own refresh failing changes nothing here: its periodic refresh goes on.
      }
    }
  }

  #emit(event: RedisNodeEvent): void {
    this.#onEvent?.(event);
  }

  /**
   * Ends the runner: every call still out rejects at once with TOLLGATE_CLOSED, and so does every
   * later one. Replies that arrive afterwards are dropped. The Redis client is left to its owner.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = closedError('store');
    for (const fail of [...this.#unsettled]) fail(error);
    this.#nodes.clear();
  }
}

/** The error of a call not sent because its node's breaker is open. */
export function unavailable(node: { readonly name: string }, detail = ''): Error & { code: RedisErrorCode } {
  return redisError(`Redis ${node.name || 'server'} is down (its breaker is open)${detail}`, 'TOLLGATE_REDIS_UNAVAILABLE');
}
