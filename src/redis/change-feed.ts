// Tells listeners that a Redis channel spoke: a subscription on a duplicate of the user's client
// (ioredis and iovalkey, node-redis 4+, either's Cluster), or, for a client that cannot subscribe
// (a RedisCommandSender) or whose subscription fails, a call every `pollMs`. Opened with the first
// listener, closed with the last or by close().
import type { RedisTransport } from './redis-client.js';

type Loose = Record<string, unknown>;

/** An open subscription (or poll): ends it. */
type Stop = () => void;

const fn = (o: unknown, name: string): boolean => typeof (o as Loose | null)?.[name] === 'function';
/** Runs `call` and drops what it throws or rejects with: a connection being let go has nothing left to say. */
const quietly = (call: () => unknown): void => {
  try {
    void Promise.resolve(call()).catch(() => undefined);
  } catch {
    // already closed
  }
};

export class ChangeFeed {
  readonly #client: unknown;
  readonly #kind: RedisTransport['kind'];
  readonly #channel: string;
  readonly #pollMs: number;
  readonly #listeners = new Set<() => void>();
  /** What ends the subscription or the poll, while a listener is on. */
  #stop: Stop | undefined;

  constructor(client: unknown, kind: RedisTransport['kind'], channel: string, pollMs: number) {
    this.#client = client;
    this.#kind = kind;
    this.#channel = channel;
    this.#pollMs = pollMs;
  }

  /**
   * Calls `listener` on every message of the channel; returns the function that stops it.
   * NOTE: a subscription misses what is published before it takes effect, so each listener is also
   * called once it does (and after each reconnection): the caller looks again then.
   */
  add(listener: () => void): () => void {
    // Each call gets its own entry, so that one function watched twice is stopped once per stop.
    const entry = () => listener();
    this.#listeners.add(entry);
    if (this.#stop === undefined) this.#stop = this.#open();
    return () => {
      if (!this.#listeners.delete(entry) || this.#listeners.size > 0) return;
      this.close();
    };
  }

  /** Ends the subscription or the poll; the listeners are forgotten. */
  close(): void {
    this.#listeners.clear();
    const stop = this.#stop;
    this.#stop = undefined;
    stop?.();
  }

  /**
   * Calls every listener; one that throws neither stops the others nor reaches the client's
   * connection (whose event handler this may run in): its error is thrown again on its own tick,
   * as a timer callback's would be.
   */
  #emit = (): void => {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (error) {
        process.nextTick(() => {
          throw error;
        });
      }
    }
  };

  #open(): Stop {
    const client = this.#client;
    if (fn(client, 'duplicate')) {
      try {
        if (this.#kind === 'ioredis') return this.#ioredis(client as Loose);
        if (this.#kind === 'node-redis') return this.#nodeRedis(client as Loose);
      } catch {
        // duplicate() itself failed: polling still tells the listeners
      }
    }
    return this.#poll();
  }

  #poll(): Stop {
    // Not unref'd: a waiter with nothing else pending lives on this timer until a place frees.
    const timer = setInterval(this.#emit, this.#pollMs);
    return () => clearInterval(timer);
  }

  /** Falls back to polling when a subscription cannot be made (an ACL without SUBSCRIBE, say), if still open. */
  #fallBack(stopped: () => boolean, end: () => void): void {
    end();
    if (!stopped() && this.#listeners.size > 0) this.#stop = this.#poll();
  }

  /** ioredis and iovalkey (a Cluster too): duplicate() connects by itself and resubscribes after a reconnection. */
  #ioredis(client: Loose): Stop {
    const sub = (client.duplicate as () => Loose)();
    const on = sub.on as (event: string, handler: (...args: unknown[]) => void) => void;
    let stopped = false;
    const end = () => quietly(() => (sub.disconnect as () => void).call(sub));
    // An error of this connection (refused, reset) is ioredis' to retry: never the process' to crash on.
    on.call(sub, 'error', () => undefined);
    on.call(sub, 'message', (channel) => {
      if (String(channel) === this.#channel) this.#emit();
    });
    let subscribed = false;
    // After a reconnection, messages sent while it was down are lost: listeners look again.
    on.call(sub, 'ready', () => {
      if (subscribed) this.#emit();
    });
    (sub.subscribe as (channel: string) => Promise<unknown>).call(sub, this.#channel).then(
      () => {
        subscribed = true;
        if (!stopped) this.#emit();
      },
      () => this.#fallBack(() => stopped, end),
    );
    return () => {
      stopped = true;
      end();
    };
  }

  /** node-redis 4+ (a cluster too): the duplicate must be connected before it subscribes; it resubscribes by itself. */
  #nodeRedis(client: Loose): Stop {
    const sub = (client.duplicate as () => Loose)();
    const on = sub.on as (event: string, handler: (...args: unknown[]) => void) => void;
    let stopped = false;
    // v5 has destroy(), v4 disconnect(); quit() ends a connection that has neither.
    const end = () =>
      quietly(() =>
        fn(sub, 'destroy') ? (sub.destroy as () => void).call(sub) : fn(sub, 'disconnect') ? (sub.disconnect as () => Promise<void>).call(sub) : (sub.quit as () => Promise<void>).call(sub),
      );
    on.call(sub, 'error', () => undefined);
    let connected = false;
    let subscribed = false;
    on.call(sub, 'ready', () => {
      if (subscribed) this.#emit();
    });
    const start = async () => {
      await (sub.connect as () => Promise<unknown>).call(sub);
      connected = true;
      if (stopped) return end();
      await (sub.subscribe as (channel: string, listener: () => void) => Promise<void>).call(sub, this.#channel, this.#emit);
      subscribed = true;
      if (!stopped) this.#emit();
    };
    start().catch(() => this.#fallBack(() => stopped, end));
    return () => {
      stopped = true;
      // Still connecting: start() ends it once connected (ending it now may throw, or be undone).
      if (connected) end();
    };
  }
}
