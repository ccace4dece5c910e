// When a node:http response's outcome is known, for skipSuccessfulRequests / skipFailedRequests:
// shared by every framework that answers on node's ServerResponse (express, connect, node:http,
// Koa, fastify).
import type { ServerResponse } from 'node:http';

/**
 * Calls `done` once: with the status when the response was sent whole ('finish'), or with
 * undefined when it never was (the connection closed first, or the response failed).
 */
export function onResponseOutcome(res: ServerResponse, done: (status: number | undefined) => void): void {
  let settled = false;
  const settle = (status: number | undefined) => {
    if (settled) return;
    settled = true;
    res.off('finish', finished);
    res.off('close', closed);
    res.off('error', failed);
    done(status);
  };
  const finished = () => settle(res.statusCode);
  // 'close' also follows a 'finish' that came first; writableFinished tells the two apart.
  const closed = () => settle(res.writableFinished ? res.statusCode : undefined);
  const failed = () => settle(undefined);
  res.once('finish', finished);
  res.once('close', closed);
  res.once('error', failed);
}
