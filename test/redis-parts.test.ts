// The Redis tier's parts that need no server: the breaker's states, the server clock's bound, and
// key naming (hash tags no user key can break, shapes that keep policies apart), and the limiter's
// breaker handling over a scripted command sender.
import { describe, expect, it } from 'vitest';
import { WindowEnds } from '../src/limiters/window-ends.js';
import { makeRoom } from '../src/common/bounded-map.js';
import { Breaker, type BreakerTransitions } from '../src/redis/breaker.js';
import { ServerClock } from '../src/redis/server-clock.js';
import { blockMarker, escapeTagText, groupedKeyBase, keyBase, keyGroup, limiterNamespace, policySuffixes } from '../src/redis/redis-keys.js';
import { keySlot } from '../src/redis/key-slot.js';
import { fixedWindow, leakyBucket, RedisLimiter, slidingWindow, tokenBucket, type RedisCommandSender } from '../src/index.js';
import { policyParams } from '../src/common/policies.js';
import { edgeKeys } from './helpers/engines.js';

describe('Breaker', () => {
  const options = { afterFailures: 2, retryMs: 100, maxRetryMs: 350 };
  const fresh = () => {
    const transitions: BreakerTransitions = { opened: 0, halfOpened: 0, closed: 0 };
    // Jitter pinned to its middle (factor 1.0).
    return { breaker: new Breaker(options, transitions, () => 0.5), transitions };
  };

  it('opens after the configured consecutive failures; a success in between starts the count again', () => {
    const { breaker, transitions } = fresh();
    breaker.failure(0);
    breaker.success();
    breaker.failure(0);
    expect(breaker.state).toBe('closed');
    expect(breaker.admit(0)).toBe('send');
    breaker.failure(0);
    expect(breaker.state).toBe('open');
    expect(transitions).toEqual({ opened: 1, halfOpened: 0, closed: 0 });
  });

  it('skips while open, lets exactly one trial through after the wait, and closes on its success', () => {
    const { breaker, transitions } = fresh();
    breaker.failure(1000);
    breaker.failure(1000);
    expect(breaker.admit(1099)).toBe('skip');
    expect(breaker.admit(1100)).toBe('trial');
    expect(breaker.state).toBe('half-open');
    expect(breaker.admit(1100)).toBe('skip');
    expect(breaker.admit(5000)).toBe('skip');
    breaker.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.admit(5000)).toBe('send');
    expect(transitions).toEqual({ opened: 1, halfOpened: 1, closed: 1 });
  });

  it('doubles the wait after each failed trial, up to the maximum, and starts again after recovering', () => {
    const { breaker } = fresh();
    breaker.failure(0);
    breaker.failure(0);
    const waits: number[] = [];
    let now = 0;
    for (let i = 0; i < 4; i++) {
      let t = now;
      while (breaker.admit(t) === 'skip') t++;
      waits.push(t - now);
      now = t;
      breaker.failure(now);
    }
    expect(waits).toEqual([100, 200, 350, 350]);
    while (breaker.admit(now) === 'skip') now++;
    breaker.success();
    breaker.failure(now);
    breaker.failure(now);
    let t = now;
    while (breaker.admit(t) === 'skip') t++;
    expect(t - now).toBe(100);
  });

  it('failures while already open neither extend the wait nor count twice', () => {
    const { breaker, transitions } = fresh();
    breaker.failure(0);
    breaker.failure(0);
    breaker.failure(90);
    expect(breaker.admit(100)).toBe('trial');
    expect(transitions.opened).toBe(1);
  });
});

describe('ServerClock', () => {
  it('knows nothing before a reply, and gives no deadline then', () => {
    const clock = new ServerClock();
    expect(clock.known).toBe(false);
    expect(clock.deadline(1000, 0)).toBe(0);
  });

  it('never puts a deadline after the true one, whatever the round trips', () => {
    // The server's clock runs 5,000,000 ms ahead of ours; each reply is read a random time after
    // the server read its clock.
    const offset = 5_000_000;
    const clock = new ServerClock();
    let now = 0;
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 2000; i++) {
      const sent = now;
      const readAt = sent + random() * 5;
      const received = readAt + random() * 20;
      clock.observe(Math.floor(readAt + offset), sent, received);
      now = received + random() * 30;
      const d = clock.deadline(now + 250, now);
      expect(d).toBeLessThanOrEqual(now + 250 + offset);
    }
    // And tight: within the shortest way back seen recently, not the longest.
    expect(now + 250 + offset - clock.deadline(now + 250, now)).toBeLessThan(5);
    expect(clock.roundTripMs).toBeGreaterThan(0);
  });

  it('forgets a high sample within a second, so a server clock stepped back is followed', () => {
    const clock = new ServerClock();
    clock.observe(10_000, 0, 1);
    // The server's clock steps back by 500 ms.
    for (let t = 2; t < 1700; t += 50) clock.observe(t + 9_500, t - 1, t);
    expect(clock.deadline(2000, 1700)).toBeLessThanOrEqual(2000 + 9_500);
  });
});

describe('Redis key names', () => {
  it('a user key never opens or closes the hash tag: the slot is always that of the whole key', () => {
    const forms = ['}', '}evil', '{', '{}', '{a}', 'a{b}c', '}{', '{{}}', 'x}y{z', '%7D', '%', '%25', 'ü{}'];
    for (const key of [...forms, ...edgeKeys()]) {
      const base = keyBase('tollgate:api', key);
      // Exactly one '{' and one '}', so Redis hashes exactly the escaped key.
      expect(base.split('{').length - 1, key).toBe(1);
      expect(base.split('}').length - 1, key).toBe(1);
      expect(keySlot(base + ':b')).toBe(keySlot(base + ':fw1000'));
    }
    const escaped = new Set([...forms, ...edgeKeys()].map((k) => keyBase('p:', k)));
    expect(escaped.size).toBe(new Set([...forms, ...edgeKeys()]).size);
  });

  it("on a Cluster a limiter's keys fall in its slot groups, each key in one slot, every key distinct", () => {
    const forms = ['}', '}evil', '{', '{}', '{a}', 'a{b}c', '}{', '{{}}', 'x}y{z', '%7D', '%', '%25', 'ü{}', 'a:b', 'a}:b'];
    const keys = [...forms, ...edgeKeys(), ...Array.from({ length: 2000 }, (_, i) => `user:${i}`)];
    const slots = new Set<number>();
    const bases = new Set<string>();
    for (const key of keys) {
      const base = groupedKeyBase('tollgate:', 'api{x}', key, 16);
      // The tag is the escaped name and the group; the key's braces are escaped and its own pair closes it.
      expect(base, key).toMatch(/^tollgate:\{api%7Bx%7D~\d+\}\{[^{}]*\}$/);
      expect(keySlot(base + ':b')).toBe(keySlot(base + ':fw1000'));
      slots.add(keySlot(base));
      bases.add(base);
    }
    // 2,000 keys spread over the 16 groups, and no two keys share a base.
    expect(slots.size).toBe(16);
    expect(bases.size).toBe(new Set(keys).size);
    // Another limiter's groups are other slots (the name is in the tag).
    expect(keySlot(groupedKeyBase('tollgate:', 'login', 'user:1', 16))).not.toBe(keySlot(groupedKeyBase('tollgate:', 'api', 'user:1', 16)));
    expect(new Set(keys.map((k) => keyGroup(k, 1)))).toEqual(new Set([0]));
  });

  it('the blocks marker shares the slot of its batch and never names a user key', () => {
    const grouped = groupedKeyBase('tollgate:', 'api', 'user:1', 16);
    expect(blockMarker(grouped, true)).toMatch(/^tollgate:\{api~\d+\}:blocked$/);
    expect(keySlot(blockMarker(grouped, true))).toBe(keySlot(`${grouped}:fw1000`));
    const single = keyBase(limiterNamespace('tollgate:', 'a{b'), 'user:1');
    expect(blockMarker(single, false)).toBe('tollgate:a%7Bb:blocked');
    // A user key's names always hold a brace; the marker's never does.
    expect(blockMarker(single, false)).not.toContain('{');
  });

  it('names are escaped too, and distinct names make distinct namespaces', () => {
    expect(limiterNamespace('tollgate:', 'a{b}')).toBe('tollgate:a%7Bb%7D');
    expect(escapeTagText('100%')).toBe('100%25');
    expect(limiterNamespace('x:', 'login')).not.toBe(limiterNamespace('x:', 'api'));
  });

  it('shapes name the kind and time scale, never the limit; two policies of one shape stay apart', () => {
    const suffixes = policySuffixes(
      [
        fixedWindow({ limit: 5, windowMs: 60_000 }),
        fixedWindow({ limit: 500, windowMs: 60_000 }),
        slidingWindow({ limit: 9, windowMs: 1000 }),
        tokenBucket({ capacity: 20, refillPerSecond: 10 }),
        leakyBucket({ burst: 3, ratePerSecond: 5 }),
      ].map((p) => policyParams(p)),
    );
    expect(suffixes).toEqual([':fw60000', ':fw60000#2', ':sw1000', ':tb1/100', ':lb1/200']);
    expect(policySuffixes([policyParams(fixedWindow({ limit: 1, windowMs: 60_000 }))])).toEqual(policySuffixes([policyParams(fixedWindow({ limit: 99, windowMs: 60_000 }))]));
  });
});

describe('RedisLimiter over a scripted server (a RedisCommandSender that answers as told)', () => {
  it('a lone call goes to Redis at once (no event-loop turn waited for a batch); calls made together share one', async () => {
    const sent: string[][] = [];
    let release: (() => void) | undefined;
    const sender: RedisCommandSender = {
      sendCommand: async (command) => {
        if (command.includes('PEXPIRETIME')) return [1, Date.now(), 0x07_00_00, 'noeviction', 0, 'scripted'];
        sent.push(command);
        const requests = command.filter((c) => c.endsWith(':fw60000')).length;
        if (release === undefined) await new Promise<void>((resolve) => (release = resolve));
        const reply: unknown[] = [1, Date.now()];
        for (let i = 0; i < requests; i++) reply.push(1, 9, 60_000, 0);
        return reply;
      },
    };
    const limiter = new RedisLimiter({ redis: sender, name: 'lone', policy: fixedWindow({ limit: 10, windowMs: 60_000 }), denyCache: false });
    try {
      // Held in flight: the first call (after the probe) waits until released.
      const first = limiter.consume('a');
      for (let i = 0; i < 50 && sent.length === 0; i++) await null;
      // Sent within microtasks: no setImmediate, no timer, stood between the call and Redis.
      expect(sent).toHaveLength(1);
      // With a call in flight, the calls of this turn and the next wait for the loop's turn together.
      const more = [limiter.consume('b'), limiter.consume('c')];
      for (let i = 0; i < 50; i++) await null;
      expect(sent).toHaveLength(1);
      release?.();
      await Promise.all([first, ...more]);
      expect(sent).toHaveLength(2);
      expect(sent[1]?.filter((c) => c.endsWith(':fw60000'))).toHaveLength(2);
    } finally {
      limiter.close();
    }
  });

  it('a trial call that Redis refuses as late fails the trial: the breaker tries again later instead of staying half-open', async () => {
    let mode: 'answer' | 'fail' | 'late' = 'answer';
    let trials = 0;
    const sender: RedisCommandSender = {
      sendCommand: async (command) => {
        // The probe (it names the commands it checks): a Redis 7 that lacks nothing.
        if (command.includes('PEXPIRETIME')) return [1, Date.now(), 0x07_00_00, 'noeviction', 0, 'scripted'];
        if (mode === 'fail') throw new Error('ERR scripted failure');
        if (mode === 'late') {
          trials++;
          mode = 'answer';
          return [0, Date.now()];
        }
        // One plain fixed-window consume, allowed: status, remaining, resetMs, retryAfterMs.
        return [1, Date.now(), 1, 9, 60_000, 0];
      },
    };
    const limiter = new RedisLimiter({
      redis: sender,
      name: 'scripted',
      policy: fixedWindow({ limit: 10, windowMs: 60_000 }),
      breaker: { afterFailures: 1, retryMs: 10, maxRetryMs: 20 },
      onError: 'deny',
      denyCache: false,
    });
    try {
      expect((await limiter.consume('k')).allowed).toBe(true);
      mode = 'fail';
      expect((await limiter.consume('k')).allowed).toBe(false);
      expect(limiter.stats().breakerOpened).toBe(1);
      // The next trial is refused as late; every call until then is decided by onError (denied).
      mode = 'late';
      for (let i = 0; i < 2000 && trials === 0; i++) {
        await limiter.consume('k');
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      expect(trials).toBe(1);
      expect(limiter.stats().lateRefused).toBe(1);
      // A later trial is made, answers, and the breaker closes: Redis decides again.
      let decided = false;
      for (let i = 0; i < 2000 && !decided; i++) {
        decided = (await limiter.consume('k')).allowed;
        if (!decided) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      expect(decided).toBe(true);
      expect(limiter.stats().breakerClosed).toBe(1);
    } finally {
      limiter.close();
    }
  });
});

describe('the window ends a RedisLimiter remembers (WindowEnds)', () => {
  it("starts small, doubles as keys fill it up to its bound, and never answers one key with another's end", () => {
    const ends = new WindowEnds(12);
    expect(ends.slots).toBe(256);
    for (let i = 0; i < 10_000; i++) ends.set(`ip:${i}`, 1_000_000 + i);
    expect(ends.slots).toBe(4096);
    let known = 0;
    for (let i = 0; i < 10_000; i++) {
      const end = ends.get(`ip:${i}`);
      if (end !== 0) {
        expect(end).toBe(1_000_000 + i);
        known++;
      }
    }
    // Bounded: at most one key per slot; the latest keys mostly still known.
    expect(known).toBeLessThanOrEqual(4096);
    expect(known).toBeGreaterThan(2000);
    ends.forget('ip:9999');
    expect(ends.get('ip:9999')).toBe(0);
    // A small table keeps what it holds through its doublings.
    const small = new WindowEnds(16);
    for (let i = 0; i < 150; i++) small.set(`k${i}`, i + 1);
    expect(small.slots).toBe(256);
    for (let i = 150; i < 400; i++) small.set(`k${i}`, i + 1);
    expect(small.slots).toBeGreaterThan(256);
    let kept = 0;
    for (let i = 0; i < 400; i++) {
      const end = small.get(`k${i}`);
      if (end !== 0) expect(end).toBe(i + 1);
      if (end !== 0) kept++;
    }
    expect(kept).toBeGreaterThan(200);
  });
});

describe("maps kept to a bound (makeRoom: the deny cache, the adapters' remembered keys)", () => {
  it('never holds more than the bound, drops the oldest first, and keeps the newest', () => {
    const map = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      makeRoom(map, 1000);
      map.set(`k${i}`, i);
      expect(map.size).toBeLessThanOrEqual(1000);
    }
    expect(map.has('k9999')).toBe(true);
    expect(map.has('k0')).toBe(false);
    // What stays is a run of the newest keys.
    const kept = [...map.values()];
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 10_000 - kept.length + i));
  });
});
