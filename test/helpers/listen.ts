// A server on a free loopback port for one test, closed after it: what the HTTP tests share.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** Listens on 127.0.0.1 at a free port; resolves with the base URL. The server closes after the test. */
export async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  closers.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Runs `close` after the test (a fastify app, a client). */
export function closeAfter(close: () => Promise<unknown>): void {
  closers.push(close);
}
