// Writing rate-limit headers on a node:http ServerResponse, fast: shared by every framework built
// on node's response (express, connect, node:http, koa).
import type { ServerResponse } from 'node:http';
import type { HeaderSink } from './headers.js';

// node keeps a response's headers as { [lower-case name]: [name, value] } under an internal
// symbol; setHeader() writes there after validating the name and the value with regular
// expressions, which measured most of this middleware's cost. Our names and values are known to be
// valid (tokens and digits we make), so they are written there directly: found on the first
// response, checked to have that shape, and setHeader() is used wherever it is not.
let outHeaders: symbol | null | undefined;

function findOutHeaders(res: ServerResponse): symbol | null {
  const symbol = Object.getOwnPropertySymbols(res).find((s) => s.description === 'kOutHeaders');
  if (symbol === undefined) return null;
  const store = (res as unknown as Record<symbol, unknown>)[symbol];
  if (store !== null && typeof store !== 'object') return null;
  return symbol;
}

export const writeHeader: HeaderSink<ServerResponse> = (res, name, lower, value) => {
  if (outHeaders === undefined) outHeaders = findOutHeaders(res);
  const symbol = outHeaders;
  if (symbol === null || res.headersSent) {
    res.setHeader(name, value);
    return;
  }
  const target = res as unknown as Record<symbol, Record<string, [string, string]> | null>;
  let store = target[symbol];
  if (store === null || store === undefined) {
    store = Object.create(null) as Record<string, [string, string]>;
    target[symbol] = store;
  }
  store[lower] = [name, value];
};
