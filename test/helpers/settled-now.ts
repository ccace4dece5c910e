// How a promise stands once the pending microtasks have run: in-process limiters decide
// synchronously, so a promise of theirs still pending then is waiting for a timer or a wake.
export async function settledNow<T>(promise: Promise<T>): Promise<PromiseSettledResult<T> | 'pending'> {
  let result: PromiseSettledResult<T> | 'pending' = 'pending';
  promise.then(
    (value) => (result = { status: 'fulfilled', value }),
    (reason: unknown) => (result = { status: 'rejected', reason }),
  );
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return result;
}
