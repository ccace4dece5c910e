// A job queue for calling rate-limited APIs: several limits at once (requests and tokens per
// minute), a concurrency cap, priorities, a bounded backlog, retries with backoff, dead letters.
import { setMaxListeners } from 'node:events';
import { closedError, invalidArgument, outOfRange } from '../common/errors.js';
import { checkInteger, checkObject, checkOptions } from '../common/validate.js';
import { isRateLimiter, type RateLimiter } from '../limiters/rate-limiter.js';
import { jitteredDelay, retryPolicy, type RetryOptions, type RetryPolicy } from './backoff.js';
import { checkKnownKeys } from '../common/option-keys.js';

export interface QueueLimit {
  readonly limiter: RateLimiter;
  /** The key spent from; default 'default' (one quota for the whole upstream). */
  readonly key?: string;
  /** What a job costs here; default 1 per job. Use (job) => job.cost for a tokens limit. */
  readonly cost?: (job: JobInfo) => number;
}

export interface QueueOptions {
  /** Jobs running (or waiting for capacity) at once; default unlimited. */
  readonly concurrency?: number;
  /** Jobs waiting to start; add() beyond it rejects with code TOLLGATE_QUEUE_FULL. Default 10,000. */
  readonly maxSize?: number;
  /** Every limit must grant a job before it runs. */
  readonly limits?: readonly QueueLimit[];
  /** Retries of failed jobs; false for none. */
  readonly retry?: RetryOptions | false;
  /** Called once per job that failed for good, with why. */
  readonly onDeadLetter?: (letter: DeadLetter) => void;
}

export interface JobOptions {
  /** Higher runs first; equal priorities run in the order added. Default 0. */
  readonly priority?: number;
  /** The job's cost for limits that ask (e.g. estimated tokens); default 1. */
  readonly cost?: number;
  /** false: the job runs once whatever the retry options (e.g. a request that must not be sent twice). Default true. */
  readonly retryable?: boolean;
}

export interface JobInfo {
  readonly id: number;
  readonly priority: number;
  readonly cost: number;
  /** 1 for the first attempt. */
  readonly attempt: number;
}

export interface DeadLetter {
  readonly job: JobInfo;
  readonly error: unknown;
  /** 'closed': the queue or a limiter it waits on was closed (never retried). */
  readonly reason: 'attempts' | 'deadline' | 'not retryable' | 'closed';
}

/**
 * Thrown (or rejected) by a task to steer retries: `retryAfterMs` is the least wait before the
 * next attempt (an upstream's Retry-After); `retryable: false` stops retrying.
 */
export interface RetryHint {
  readonly retryAfterMs?: number;
  readonly retryable?: boolean;
}

export class QueueFullError extends Error {
  readonly code = 'TOLLGATE_QUEUE_FULL' as const;
  constructor(size: number) {
    super(`The queue already holds ${size} waiting jobs (maxSize)`);
    this.name = 'QueueFullError';
  }
}

interface Job<T> extends JobInfo {
  attempt: number;
  readonly retryable: boolean;
  readonly seq: number;
  readonly firstAt: number;
  readonly task: (info: JobInfo) => Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The queue's own abort signal: every job waiting for a limit listens to it (close() aborts them
 * all), so its listener count is the jobs waiting, by design: no leak warning past ten.
 */
function queueAbort(): AbortController {
  const controller = new AbortController();
  try {
    setMaxListeners(0, controller.signal);
  } catch {
    // A runtime whose AbortSignal takes no such setting has no such warning either.
  }
  return controller;
}

export class Queue {
  readonly #concurrency: number;
  readonly #maxSize: number;
  readonly #limits: readonly QueueLimit[];
  readonly #retry: RetryPolicy | undefined;
  readonly #onDeadLetter: ((letter: DeadLetter) => void) | undefined;
  readonly #waiting: Job<unknown>[] = [];
  #running = 0;
  #delayed = 0;
  #seq = 0;
  #idle: (() => void)[] = [];
  #closed = false;
  readonly #abort = queueAbort();
  readonly #retries = new Map<ReturnType<typeof setTimeout>, Job<unknown>>();

  constructor(options: QueueOptions = {}) {
    const o = checkObject(options, 'options');
    checkKnownKeys(o, ['concurrency', 'maxSize', 'limits', 'retry', 'onDeadLetter'], 'createQueue');
    this.#concurrency = o.concurrency === undefined ? Infinity : checkInteger(o.concurrency, 'concurrency', 1, 1_000_000);
    this.#maxSize = o.maxSize === undefined ? 10_000 : checkInteger(o.maxSize, 'maxSize', 1, 100_000_000);
    const limits = (o.limits ?? []) as QueueLimit[];
    if (!Array.isArray(limits) || !limits.every((l) => isRateLimiter(l?.limiter))) {
      throw invalidArgument('limits', 'an array of { limiter, key?, cost? }', o.limits);
    }
    for (const [i, l] of limits.entries()) checkKnownKeys(l, ['limiter', 'key', 'cost'], `limits[${i}]`);
    this.#limits = limits;
    this.#retry = o.retry === false ? undefined : retryPolicy(o.retry as RetryOptions | undefined);
    if (o.onDeadLetter !== undefined && typeof o.onDeadLetter !== 'function') throw invalidArgument('onDeadLetter', 'a function', o.onDeadLetter);
    this.#onDeadLetter = o.onDeadLetter as ((letter: DeadLetter) => void) | undefined;
  }

  /** Jobs waiting to start (retries waiting out a delay not included). */
  get size(): number {
    return this.#waiting.length;
  }

  /** Jobs started and not yet finished. */
  get pending(): number {
    return this.#running;
  }

  /** Queues `task`; resolves with its result, or rejects with its last error once it has failed for good. */
  add<T>(task: (info: JobInfo) => Promise<T>, options?: JobOptions): Promise<T> {
    if (typeof task !== 'function') return Promise.reject(invalidArgument('task', 'a function returning a promise', task));
    let cost: number;
    let priority: number;
    let retryable: boolean;
    try {
      const o = checkOptions(options) ?? {};
      checkKnownKeys(o, ['priority', 'cost', 'retryable'], 'add options');
      if (o.retryable !== undefined && typeof o.retryable !== 'boolean') throw invalidArgument('retryable', 'a boolean', o.retryable);
      retryable = o.retryable !== false;
      priority = o.priority === undefined ? 0 : (o.priority as number);
      if (typeof priority !== 'number' || !Number.isFinite(priority)) throw outOfRange('priority', 'a finite number', priority);
      cost = o.cost === undefined ? 1 : checkInteger(o.cost, 'cost', 1, Number.MAX_SAFE_INTEGER);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#closed) return Promise.reject(closedError('queue'));
    if (this.#waiting.length >= this.#maxSize) return Promise.reject(new QueueFullError(this.#waiting.length));
    return new Promise<T>((resolve, reject) => {
      const seq = ++this.#seq;
      this.#enqueue({ id: seq, seq, priority, cost, retryable, attempt: 1, firstAt: Date.now(), task, resolve, reject } as Job<T> as Job<unknown>);
      this.#pump();
    });
  }

  /**
   * Stops the queue: jobs waiting to start, waiting for a limit or waiting to retry reject at
   * once with code TOLLGATE_CLOSED (dead letters with reason 'closed'); jobs already running
   * finish; add() rejects from now on.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort(closedError('queue'));
    const error = closedError('queue');
    for (const job of this.#waiting.splice(0)) this.#dead(job, error, 'closed');
    for (const [timer, job] of this.#retries) {
      clearTimeout(timer);
      this.#delayed--;
      this.#dead(job, error, 'closed');
    }
    this.#retries.clear();
    this.#pump();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Rejects the job and tells onDeadLetter; what the callback throws is reported as a warning and changes nothing. */
  #dead(job: Job<unknown>, error: unknown, reason: DeadLetter['reason']): void {
    const info: JobInfo = { id: job.id, priority: job.priority, cost: job.cost, attempt: job.attempt };
    job.reject(error);
    try {
      this.#onDeadLetter?.({ job: info, error, reason });
    } catch (thrown) {
      process.emitWarning(`tollgate queue: onDeadLetter threw: ${(thrown as Error)?.message ?? String(thrown)}`, { code: 'TOLLGATE_CALLBACK_ERROR' });
    }
  }

  /** Resolves when nothing waits, runs or waits to retry. */
  onIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #isIdle(): boolean {
    return this.#waiting.length === 0 && this.#running === 0 && this.#delayed === 0;
  }

  #enqueue(job: Job<unknown>): void {
    // Highest priority first, then oldest: insert after every job that outranks it.
    let at = this.#waiting.length;
    while (at > 0) {
      const other = this.#waiting[at - 1] as Job<unknown>;
      if (other.priority > job.priority || (other.priority === job.priority && other.seq < job.seq)) break;
      at--;
    }
    this.#waiting.splice(at, 0, job);
  }

  #pump(): void {
    while (this.#running < this.#concurrency && this.#waiting.length > 0) {
      const job = this.#waiting.shift() as Job<unknown>;
      this.#running++;
      void this.#run(job);
    }
    if (this.#isIdle()) for (const resolve of this.#idle.splice(0)) resolve();
  }

  async #run(job: Job<unknown>): Promise<void> {
    const info: JobInfo = { id: job.id, priority: job.priority, cost: job.cost, attempt: job.attempt };
    try {
      for (const limit of this.#limits) {
        await limit.limiter.acquire(limit.key ?? 'default', { cost: limit.cost?.(info) ?? 1, signal: this.#abort.signal });
      }
      job.resolve(await job.task(info));
    } catch (error) {
      this.#failed(job, error);
    } finally {
      this.#running--;
      this.#pump();
    }
  }

  #failed(job: Job<unknown>, error: unknown): void {
    const hint = (typeof error === 'object' && error !== null ? error : {}) as RetryHint & { code?: unknown };
    const policy = this.#retry;
    let reason: DeadLetter['reason'] | undefined;
    let delay = 0;
    if (this.#closed || hint.code === 'TOLLGATE_CLOSED') {
      this.#dead(job, this.#closed ? closedError('queue') : error, 'closed');
      return;
    }
    if (policy === undefined || !job.retryable || hint.retryable === false) reason = 'not retryable';
    else if (job.attempt >= policy.maxAttempts) reason = 'attempts';
    else {
      // The hint is the user's error's: a wait it names that is not a number of ms is no wait.
      const asked = typeof hint.retryAfterMs === 'number' && hint.retryAfterMs >= 0 ? hint.retryAfterMs : 0;
      delay = jitteredDelay(policy, job.attempt + 1, asked);
      if (Date.now() + delay - job.firstAt > policy.deadlineMs) reason = 'deadline';
    }
    if (reason !== undefined) {
      this.#dead(job, error, reason);
      return;
    }
    job.attempt++;
    this.#delayed++;
    const timer = setTimeout(() => {
      this.#retries.delete(timer);
      this.#delayed--;
      this.#enqueue(job);
      this.#pump();
    }, delay);
    this.#retries.set(timer, job);
  }
}

/** A Queue; see QueueOptions. */
export function createQueue(options?: QueueOptions): Queue {
  return new Queue(options);
}

/** Wraps an async function so each call first waits for `cost` from `limiter` under `key`. */
export function throttle<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
  options: { readonly limiter: RateLimiter; readonly key?: string; readonly cost?: (...args: A) => number },
): (...args: A) => Promise<R> {
  if (typeof fn !== 'function') throw invalidArgument('fn', 'a function', fn);
  const o = checkObject(options, 'options');
  checkKnownKeys(o, ['limiter', 'key', 'cost'], 'throttle');
  if (!isRateLimiter(o.limiter)) throw invalidArgument('limiter', 'a Limiter, allOf(...) or RedisLimiter', o.limiter);
  const key = options.key ?? 'default';
  return async (...args: A) => {
    await options.limiter.acquire(key, { cost: options.cost?.(...args) ?? 1 });
    return fn(...args);
  };
}
