// Calls a limiter has under way outside its own queues (a Redis call, an asynchronous fallback),
// kept so that close() can reject each of them at once rather than leave its caller waiting.

export class Unsettled {
  readonly #rejects = new Set<(error: unknown) => void>();

  /** `promise`, or a rejection with rejectAll()'s error as soon as that is called, whichever comes first. */
  track<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#rejects.add(reject);
      promise.then(
        (value) => {
          this.#rejects.delete(reject);
          resolve(value);
        },
        (error: unknown) => {
          this.#rejects.delete(reject);
          reject(error);
        },
      );
    });
  }

  /** Rejects every call tracked and not yet settled with `error`. */
  rejectAll(error: unknown): void {
    for (const reject of [...this.#rejects]) reject(error);
    this.#rejects.clear();
  }
}
