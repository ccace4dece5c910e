// An upstream account's places: the book every store keeps (known answers worked out by hand), and
// this process's side of it (UpstreamPlaces): first come first served, waits to the millisecond,
// leases, close().
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PlaceBook } from '../src/engine/js/place-book.js';
import { LocalPlaces } from '../src/engine/local-places.js';
import { UpstreamPlaces, type PlacesProblem } from '../src/client/upstream-places.js';
import { Limiter, ManualClock, fixedWindow } from '../src/index.js';
import { limitedFetch } from '../src/client-entry.js';

const A = '000000000000000a';
const B = '000000000000000b';
const C = '000000000000000c';

describe('PlaceBook: known answers', () => {
  it('a window of 2 per 1,000 ms: places held from the grant until 1,000 ms after the release', () => {
    const book = new PlaceBook({ limit: 2, windowMs: 1000, concurrency: 0, leaseMs: 10_000 });
    expect(book.acquire(0, A, 0)).toEqual({ granted: true, place: '1' });
    expect(book.acquire(5, B, 5)).toEqual({ granted: true, place: '2' });
    // Both in flight: nothing cools yet; the only change by itself is a lease lapsing (A's, at 10,000).
    expect(book.acquire(10, C, 10)).toEqual({ granted: false, wakeAt: 10_000 });
    expect(book.release(100, A, '1')).toBe(true);
    // A's place cools until 1,100: C is told so.
    expect(book.acquire(101, C, 10)).toEqual({ granted: false, wakeAt: 1100 });
    expect(book.counts(101)).toEqual({ inFlight: 1, cooling: 1, waiting: 1, holders: 2 });
    expect(book.acquire(1099, C, 10)).toMatchObject({ granted: false });
    expect(book.acquire(1100, C, 10)).toEqual({ granted: true, place: '3' });
    // A gave back its only place and waits for nothing: forgotten.
    expect(book.counts(1100)).toEqual({ inFlight: 2, cooling: 0, waiting: 0, holders: 2 });
  });

  it('concurrency alone: a place frees with its response', () => {
    const book = new PlaceBook({ limit: 0, windowMs: 0, concurrency: 1, leaseMs: 10_000 });
    expect(book.acquire(0, A, 0)).toMatchObject({ granted: true });
    expect(book.acquire(1, B, 1)).toEqual({ granted: false, wakeAt: 10_000 });
    expect(book.release(2, A, '1')).toBe(true);
    expect(book.acquire(2, B, 1)).toMatchObject({ granted: true });
  });

  it('waiting holders are served by their first waiter’s arrival, then by id', () => {
    const book = new PlaceBook({ limit: 0, windowMs: 0, concurrency: 1, leaseMs: 10_000 });
    expect(book.acquire(0, A, 0)).toMatchObject({ granted: true });
    expect(book.acquire(1, C, 5)).toMatchObject({ granted: false });
    expect(book.acquire(2, B, 5)).toMatchObject({ granted: false });
    book.release(3, A, '1');
    // C asks first but B is ahead: same arrival, smaller id.
    expect(book.acquire(4, C, 5)).toMatchObject({ granted: false });
    expect(book.acquire(4, B, 5)).toMatchObject({ granted: true });
    book.leave(5, B);
  });

  it('a lapsed lease: the holder’s places count as answered at the lapse, and its release is refused', () => {
    const book = new PlaceBook({ limit: 3, windowMs: 1000, concurrency: 2, leaseMs: 500 });
    expect(book.acquire(0, A, 0)).toMatchObject({ granted: true, place: '1' });
    expect(book.acquire(0, A, 0)).toMatchObject({ granted: true, place: '2' });
    // Concurrency 2 reached; B waits on A's lease (500).
    expect(book.acquire(100, B, 100)).toEqual({ granted: false, wakeAt: 500 });
    // At 500 A's lease lapsed: both places cool until 1,500; one place of 3 is free.
    expect(book.acquire(500, B, 100)).toMatchObject({ granted: true, place: '3' });
    expect(book.counts(500)).toEqual({ inFlight: 1, cooling: 2, waiting: 0, holders: 1 });
    expect(book.release(600, A, '1')).toBe(false);
    expect(book.renew(600, A)).toBe(false);
    // Nothing frees before 1,500, but B's lease (renewed at 500) could lapse at 1,000: C is told the earlier.
    expect(book.acquire(700, C, 700)).toEqual({ granted: false, wakeAt: 1000 });
    expect(book.acquire(1500, C, 700)).toMatchObject({ granted: true });
  });

  it('a release of a place not held, or by another holder, changes nothing', () => {
    const book = new PlaceBook({ limit: 1, windowMs: 100, concurrency: 0, leaseMs: 1000 });
    expect(book.acquire(0, A, 0)).toMatchObject({ granted: true, place: '1' });
    const version = book.version;
    expect(book.release(1, B, '1')).toBe(false);
    expect(book.release(1, A, '7')).toBe(false);
    expect(book.version).toBe(version);
    expect(book.release(1, A, '1')).toBe(true);
    expect(book.release(2, A, '1')).toBe(false);
    expect(book.version).toBe(version + 1);
  });
});

describe('UpstreamPlaces', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const noProblems = (problems: PlacesProblem[]) => (p: PlacesProblem) => problems.push(p);

  it('serves requests in arrival order across two holders sharing one store', async () => {
    const clock = new ManualClock(0);
    const store = new LocalPlaces({ limit: 0, windowMs: 0, concurrency: 1, leaseMs: 60_000 }, clock);
    const problems: PlacesProblem[] = [];
    const one = new UpstreamPlaces(store, 60_000, noProblems(problems));
    const two = new UpstreamPlaces(store, 60_000, noProblems(problems));
    const order: string[] = [];
    const first = await one.acquire();
    const waits = [];
    for (const [name, side] of [
      ['a', two],
      ['b', one],
      ['c', two],
      ['d', one],
    ] as const) {
      clock.advance(1);
      waits.push(side.acquire().then((release) => (order.push(name), release)));
    }
    first();
    for (const wait of waits) (await wait)();
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect(problems).toEqual([]);
    one.close();
    two.close();
  });

  it('wakes a waiter when a cooling place frees, by the store clock', async () => {
    vi.useFakeTimers();
    const clock = new ManualClock(0);
    const store = new LocalPlaces({ limit: 1, windowMs: 1000, concurrency: 0, leaseMs: 60_000 }, clock);
    const places = new UpstreamPlaces(store, 60_000, () => undefined);
    (await places.acquire())();
    let granted = false;
    const next = places.acquire().then((release) => ((granted = true), release));
    await vi.advanceTimersByTimeAsync(0);
    clock.set(999);
    await vi.advanceTimersByTimeAsync(999);
    expect(granted).toBe(false);
    clock.set(1000);
    await vi.advanceTimersByTimeAsync(1);
    expect(granted).toBe(true);
    (await next)();
    places.close();
  });

  it('close() rejects every waiter at once with TOLLGATE_CLOSED; a place in flight is still given back', async () => {
    const clock = new ManualClock(0);
    const store = new LocalPlaces({ limit: 0, windowMs: 0, concurrency: 1, leaseMs: 60_000 }, clock);
    const places = new UpstreamPlaces(store, 60_000, () => undefined);
    const release = await places.acquire();
    const waiting = [places.acquire(), places.acquire()];
    places.close();
    for (const w of waiting) await expect(w).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
    await expect(places.acquire()).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
    expect(await store.counts()).toMatchObject({ inFlight: 1, waiting: 0 });
    release();
    await vi.waitFor(async () => expect(await store.counts().catch((e: { code: string }) => e.code)).toBe('TOLLGATE_CLOSED'));
  });

  it('a holder whose lease lapsed loses its places to a waiter, and is told so', async () => {
    vi.useFakeTimers();
    const clock = new ManualClock(0);
    const terms = { limit: 0, windowMs: 0, concurrency: 1, leaseMs: 300 };
    const store = new LocalPlaces(terms, clock);
    const problems: PlacesProblem[] = [];
    const stalled = new UpstreamPlaces(store, 300, noProblems(problems));
    const other = new UpstreamPlaces(store, 300, () => undefined);
    await stalled.acquire();
    // The stalled holder's renewal never ran before its lease ended (its timers did not fire).
    clock.set(300);
    const release = await other.acquire();
    await vi.advanceTimersByTimeAsync(100);
    expect(problems).toEqual([{ type: 'lease-lost', places: 1 }]);
    release();
    stalled.close();
    other.close();
  });

  it('a store that fails an acquire rejects that request with its error, and the next asks again', async () => {
    const store = new LocalPlaces({ limit: 0, windowMs: 0, concurrency: 1, leaseMs: 60_000 });
    const failure = Object.assign(new Error('down'), { code: 'TOLLGATE_REDIS_UNAVAILABLE' });
    const real = store.acquire.bind(store);
    let fail = true;
    store.acquire = (holder, since) => (fail ? ((fail = false), Promise.reject(failure)) : real(holder, since));
    const problems: PlacesProblem[] = [];
    const places = new UpstreamPlaces(store, 60_000, noProblems(problems));
    const [first, second] = [places.acquire(), places.acquire()];
    await expect(first).rejects.toBe(failure);
    (await second)();
    expect(problems).toEqual([{ type: 'upstream-store-failed', operation: 'acquire', error: failure }]);
    places.close();
  });
});

describe('UpstreamPlaces when things go wrong (found by an outside attack)', () => {
  it('a store that fails its renewals fails the waiters with its error, instead of leaving them to a release nobody will announce', async () => {
    const store = new LocalPlaces({ limit: 0, windowMs: 0, concurrency: 1, leaseMs: 60_000 });
    const places = new UpstreamPlaces(store, 30, () => undefined);
    const release = await places.acquire();
    const waiting = [places.acquire(), places.acquire()];
    const settled = waiting.map((w) =>
      w.then(
        () => 'granted',
        (e: unknown) => e,
      ),
    );
    await vi.waitFor(async () => expect((await store.counts()).waiting).toBe(1));
    // Queued, told of no time to ask again: now the store fails every call (and announces nothing).
    const down = Object.assign(new Error('Redis is down'), { code: 'TOLLGATE_REDIS_UNAVAILABLE' });
    store.renew = () => Promise.reject(down);
    store.acquire = () => Promise.reject(down);
    expect(await Promise.all(settled)).toEqual([down, down]);
    release();
    places.close();
  });

  it('a release the store refuses (the lease had lapsed) is told as a lost lease', async () => {
    const store = new LocalPlaces({ limit: 0, windowMs: 0, concurrency: 1, leaseMs: 60_000 });
    const problems: PlacesProblem[] = [];
    const places = new UpstreamPlaces(store, 60_000, (p) => problems.push(p));
    const release = await places.acquire();
    store.release = () => Promise.resolve(false);
    release();
    await vi.waitFor(() => expect(problems).toEqual([{ type: 'lease-lost', places: 1 }]));
    places.close();
  });

  it('an aborted request leaves the line at once, is not retried, gives back its charges, and holds nobody up', async () => {
    const tokens = new Limiter({ policy: fixedWindow({ limit: 100, windowMs: 60_000 }), engine: 'js' });
    const sent: string[] = [];
    let answer: (r: Response) => void = () => undefined;
    const fetch = ((input: string) => {
      sent.push(input);
      return input.endsWith('/slow') ? new Promise<Response>((r) => (answer = r)) : Promise.resolve(new Response('ok'));
    }) as unknown as typeof globalThis.fetch;
    const call = limitedFetch({ upstream: { concurrency: 1 }, tokens: { limiter: tokens, estimate: () => 10 }, fetch, retry: { maxAttempts: 3, baseDelayMs: 1 } });
    const slow = call('http://upstream.test/slow');
    const controller = new AbortController();
    const aborted = call('http://upstream.test/aborted', { signal: controller.signal });
    const after = call('http://upstream.test/after');
    await vi.waitFor(() => expect(tokens.peek('default').remaining).toBe(70));
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    expect(tokens.peek('default').remaining).toBe(80);
    answer(new Response('ok'));
    expect((await slow).status).toBe(200);
    expect((await after).status).toBe(200);
    expect(sent).toEqual(['http://upstream.test/slow', 'http://upstream.test/after']);
    call.close();
    tokens.close();
  });
});

describe('limitedFetch upstream options', () => {
  it('refuses bad terms, naming them', () => {
    const bad: [unknown, RegExp][] = [
      [{ limit: 5 }, /upstream\.windowMs/],
      [{ windowMs: 5 }, /upstream\.limit/],
      [{}, /for upstream/],
      [{ concurrency: 0 }, /upstream\.concurrency/],
      [{ concurrency: 2, leaseMs: 100 }, /upstream\.leaseMs/],
      [{ concurrency: 2, store: { name: 'x' } }, /upstream\.store/],
      [{ concurrency: 2, window: 1 }, /Unknown option upstream\.window/],
    ];
    for (const [upstream, message] of bad) {
      expect(() => limitedFetch({ upstream: upstream as never })).toThrow(expect.objectContaining({ code: expect.stringMatching(/^TOLLGATE_/), message: expect.stringMatching(message) }));
    }
  });

  it('a request that never got a place (closed while waiting) gives back what the limits charged for it', async () => {
    const tokens = new Limiter({ policy: fixedWindow({ limit: 100, windowMs: 60_000 }), engine: 'js' });
    const requests = new Limiter({ policy: fixedWindow({ limit: 10, windowMs: 60_000 }), engine: 'js' });
    let answer: (r: Response) => void = () => undefined;
    const fetch = (() => new Promise<Response>((r) => (answer = r))) as unknown as typeof globalThis.fetch;
    const call = limitedFetch({ upstream: { concurrency: 1 }, requests, tokens: { limiter: tokens, estimate: () => 15 }, fetch, retry: false });
    const sent = call('http://upstream.test/');
    const waiting = [call('http://upstream.test/'), call('http://upstream.test/')];
    await vi.waitFor(() => expect(tokens.peek('default').remaining).toBe(55));
    call.close();
    for (const w of waiting) await expect(w).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
    expect(tokens.peek('default').remaining).toBe(85);
    expect(requests.peek('default').remaining).toBe(9);
    answer(new Response('ok'));
    expect((await sent).status).toBe(200);
    tokens.close();
    requests.close();
  });

  it('with places alone, an upstream that says nothing is left pauses the next send until its reset (found by an outside attack)', async () => {
    let sends = 0;
    const fetch = (async () => {
      sends++;
      return new Response('ok', { headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '60' } });
    }) as unknown as typeof globalThis.fetch;
    const call = limitedFetch({ upstream: { limit: 100, windowMs: 1000 }, fetch, retry: false });
    expect((await call('http://upstream.test/')).status).toBe(200);
    const next = call('http://upstream.test/');
    // Room in the places, but the upstream's own reset is a minute away: nothing is sent.
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(sends).toBe(1);
    call.close();
    await expect(next).rejects.toMatchObject({ code: 'TOLLGATE_CLOSED' });
    expect(sends).toBe(1);
  });

  it('concurrency: never more than 2 requests in flight in this process', async () => {
    let inFlight = 0;
    let most = 0;
    const fetch = (async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return new Response('ok');
    }) as unknown as typeof globalThis.fetch;
    const call = limitedFetch({ upstream: { concurrency: 2 }, fetch });
    await Promise.all(Array.from({ length: 20 }, () => call('http://upstream.test/')));
    expect(most).toBe(2);
    call.close();
  });
});
