// Whose limit a request counts against: the client's address (from the framework's proxy setting,
// trusted proxies' forwarding header, or the socket), a header, or the app's function; with
// addresses' keys cached by their spelling, as most requests come from addresses seen moments ago.
import type { IncomingMessage } from 'node:http';
import { isPromise, type MaybePromise } from '../limiters/rate-limiter.js';
import { addressKey, canonicalAddress, clientAddress } from './client-ip.js';
import type { FrameworkAddress, RuleConfig } from './rule-options.js';

export interface RequestKeys<Req> {
  /** The client's address, canonical; undefined when there is none. */
  readonly address: (raw: IncomingMessage, req: Req) => string | undefined;
  /** The request's key (`ip:…`, `key:…` or the app's), undefined when it has none. */
  readonly key: (raw: IncomingMessage, req: Req) => MaybePromise<string | undefined>;
  /**
   * The request headers (lower-case) the key reads from `raw.headers`: the forwarding header when
   * proxies are trusted, the key's header. A framework without node's headers object copies these.
   */
  readonly requestHeaders: readonly string[];
}

/** Most address keys remembered; the cache starts over past it. */
const MAX_CACHED_ADDRESSES = 10_000;

export function requestKeys<Req>(config: RuleConfig<Req>, frameworkAddress?: FrameworkAddress<Req>): RequestKeys<Req> {
  const { trustProxy: trusted, forwardedHeader, ipv6Subnet: subnet } = config;
  // trustProxy, when given, decides; else the framework's own setting, when the app made one.
  const fromFramework = trusted === undefined ? frameworkAddress : undefined;
  const address = (raw: IncomingMessage, req: Req): string | undefined => {
    const framed = fromFramework?.(raw, req);
    if (framed !== undefined) return canonicalAddress(framed);
    return clientAddress(raw.socket?.remoteAddress, raw.headers, trusted, forwardedHeader);
  };
  const keys = new Map<string, string>();
  const keyOf = (canonical: string) => {
    let k = keys.get(canonical);
    if (k === undefined) {
      if (keys.size >= MAX_CACHED_ADDRESSES) keys.clear();
      k = `ip:${addressKey(canonical, subnet)}`;
      keys.set(canonical, k);
    }
    return k;
  };
  // The key of an address as given (the socket's or the framework's), cached by that spelling.
  const keyOfText = (text: string) => {
    const known = keys.get(text);
    if (known !== undefined) return known;
    const canonical = canonicalAddress(text);
    if (canonical === undefined) return undefined;
    const k = keyOf(canonical);
    keys.set(text, k);
    return k;
  };
  let warned = false;
  const ipKey =
    trusted === undefined
      ? (raw: IncomingMessage, req: Req) => {
          const framed = fromFramework?.(raw, req);
          if (framed !== undefined) return keyOfText(framed);
          if (!warned) warned = warnOnIgnoredForwarding(raw);
          const remote = raw.socket?.remoteAddress;
          return remote === undefined ? undefined : keyOfText(remote);
        }
      : (raw: IncomingMessage, req: Req) => {
          const canonical = address(raw, req);
          return canonical === undefined ? undefined : keyOf(canonical);
        };
  const spec = config.key;
  let key: RequestKeys<Req>['key'];
  if (spec === 'ip') key = ipKey;
  else if (typeof spec === 'function') key = (_raw, req) => spec(req);
  else {
    const header = spec.header.toLowerCase();
    key = (raw) => {
      const value = raw.headers[header];
      const text = Array.isArray(value) ? value[0] : value;
      return text === undefined || text.length === 0 ? undefined : `key:${text}`;
    };
  }
  if (config.onMissingKey === 'ip' && spec !== 'ip') {
    const primary = key;
    key = (raw, req) => {
      const k = primary(raw, req);
      return isPromise(k) ? k.then((v) => v ?? ipKey(raw, req)) : (k ?? ipKey(raw, req));
    };
  }
  const read = new Set<string>();
  if (trusted !== undefined) read.add(forwardedHeader);
  if (typeof spec === 'object') read.add(spec.header.toLowerCase());
  return { address, key, requestHeaders: Object.freeze([...read]) };
}

/**
 * A request whose forwarding header is ignored (its peer is trusted neither by trustProxy nor by
 * the app's own proxy setting) means, when that peer is a proxy, that every client behind it
 * shares one limit. Said once per rule, as a warning with the fix; true once said.
 */
function warnOnIgnoredForwarding(raw: IncomingMessage): boolean {
  const headers = raw.headers;
  const name = headers['x-forwarded-for'] !== undefined ? 'X-Forwarded-For' : headers.forwarded !== undefined ? 'Forwarded' : undefined;
  if (name === undefined) return false;
  process.emitWarning(
    `tollgate rateLimit: a request from ${raw.socket?.remoteAddress} carried ${name}, which was ignored, so the peer itself is the client. ` +
      `If that peer is your proxy, every client behind it now shares one limit: trust exactly your proxies in your app ` +
      `(express: app.set('trust proxy', 'loopback'), your proxies' addresses; Koa: app.proxy = true with app.maxIpsCount = 1, one per proxy; ` +
      `fastify: trustProxy: '127.0.0.1', your proxies' addresses) or give rateLimit trustProxy (e.g. ['loopback']). ` +
      `Never trust every hop (express or fastify trust proxy true, Koa app.proxy alone): the client writes the leftmost entry.`,
    { code: 'TOLLGATE_UNTRUSTED_FORWARDED_HEADER' },
  );
  return true;
}

/**
 * The app's framework believes every X-Forwarded-For hop, so the address it gives is the leftmost
 * entry, which the client writes: any client picks its own key and passes the limit. `what` says
 * which setting, `fix` what to set instead. Each adapter calls it once per middleware.
 */
export function warnTrustsEveryHop(what: string, fix: string): void {
  process.emitWarning(`tollgate rateLimit: ${what}, which the client writes: any client can choose its own key and pass the limit. Fix: ${fix}.`, {
    code: 'TOLLGATE_FRAMEWORK_TRUSTS_EVERY_HOP',
  });
}
