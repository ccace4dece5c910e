// Who is asking: the client address (through trusted proxies only), grouped into an IPv6 subnet.
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { invalidArgument, outOfRange } from '../common/errors.js';

/** Addresses or CIDR ranges ('10.0.0.0/8', '::1', 'loopback') whose forwarding headers are believed. */
export type TrustProxy = false | readonly string[];

const NAMED: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
};

/** A BlockList of the given ranges, or undefined for none. Throws naming `name` on a bad entry. */
export function addressList(entries: readonly string[] | undefined | false, name: string): BlockList | undefined {
  if (entries === undefined || entries === false) return undefined;
  if (!Array.isArray(entries)) throw invalidArgument(name, 'an array of addresses or CIDR ranges', entries);
  const list = new BlockList();
  for (const entry of entries) {
    if (typeof entry !== 'string') throw invalidArgument(name, 'an array of addresses or CIDR ranges', entry);
    for (const range of NAMED[entry] ?? [entry]) {
      const [address, bits] = range.split('/');
      const family = isIPv4(address ?? '') ? 'ipv4' : isIPv6(address ?? '') ? 'ipv6' : undefined;
      if (family === undefined) throw outOfRange(name, 'IP addresses or CIDR ranges', entry);
      if (bits === undefined) list.addAddress(address as string, family);
      else {
        const prefix = Number(bits);
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) {
          throw outOfRange(name, 'IP addresses or CIDR ranges', entry);
        }
        list.addSubnet(address as string, prefix, family);
      }
    }
  }
  return list;
}

/** Which header carries the forwarding chain that trusted proxies append to. */
export type ForwardedHeader = 'x-forwarded-for' | 'forwarded';

/** Expands a valid IPv6 address (no zone) into its eight 16-bit groups. */
function ipv6Groups(address: string): number[] {
  let text = address;
  // A trailing dotted IPv4 fills the last two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  const extra: number[] = [];
  if (tail.includes('.')) {
    const parts = tail.split('.').map(Number);
    extra.push(((parts[0] as number) << 8) | (parts[1] as number), ((parts[2] as number) << 8) | (parts[3] as number));
    text = `${text.slice(0, lastColon + 1)}0`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  if (extra.length > 0) right.length > 0 ? right.splice(-1, 1, ...extra) : left.splice(-1, 1, ...extra);
  const zeros = new Array(8 - left.length - right.length).fill(0);
  return [...left, ...(rest === undefined ? [] : zeros), ...right];
}

/**
 * Whether IPv6 groups `g` carry an IPv4 address in their last 32 bits, as one IPv4 client: mapped
 * (::ffff:0:0/96), translated (::ffff:0:0:0/96, RFC 2765), NAT64's well-known prefix
 * (64:ff9b::/96, RFC 6052), or IPv4-compatible (::/96, deprecated) unless the IPv4 part is in
 * 0.0.0.0/8, which keeps '::' and '::1' themselves. Else every such client would share one /56.
 */
function embedsIPv4(g: readonly number[]): boolean {
  const [a, b, c, d, e, f, high] = g as [number, number, number, number, number, number, number];
  if (a === 0 && b === 0 && c === 0 && d === 0) {
    return (e === 0 && f === 0xffff) || (e === 0xffff && f === 0) || (e === 0 && f === 0 && high >> 8 !== 0);
  }
  return a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0;
}

/**
 * One spelling per client: IPv4 as is; IPv6 without its zone, in lower case, and an IPv6 address
 * that embeds an IPv4 one (in any spelling: '::FFFF:1.2.3.4', '0:0:0:0:0:ffff:102:304',
 * '::1.2.3.4', '64:ff9b::1.2.3.4') as its IPv4 address. Returns undefined for anything that is
 * not an address.
 */
export function canonicalAddress(text: string): string | undefined {
  if (isIPv4(text)) return text;
  const zone = text.indexOf('%');
  const address = (zone === -1 ? text : text.slice(0, zone)).toLowerCase();
  if (!isIPv6(address)) return undefined;
  const g = ipv6Groups(address);
  if (embedsIPv4(g)) {
    return `${(g[6] as number) >> 8}.${(g[6] as number) & 0xff}.${(g[7] as number) >> 8}.${(g[7] as number) & 0xff}`;
  }
  return address;
}

/** A port as forwarding headers write one: digits, or RFC 7239's obfuscated '_name'. */
const PORT = /^(?:\d{1,5}|_[\w.-]+)$/;

/**
 * A forwarded hop without its port or brackets: '[2001:db8::1]:443' and '[2001:db8::1]' to the
 * IPv6 address, '203.0.113.7:51234' (as Azure Application Gateway and IIS ARR write it) to the
 * IPv4 one. An unbracketed IPv6 address has no port. Anything else is kept whole, so that it
 * fails to parse.
 */
function withoutPort(value: string): string {
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    const rest = value.slice(close + 1);
    if (close === -1 || (rest !== '' && !(rest.startsWith(':') && PORT.test(rest.slice(1))))) return value;
    return value.slice(1, close);
  }
  const colon = value.indexOf(':');
  if (colon === -1 || colon !== value.lastIndexOf(':') || !PORT.test(value.slice(colon + 1))) return value;
  return value.slice(0, colon);
}

function contains(list: BlockList, address: string): boolean {
  return list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
}

/** Values of `for=` in a Forwarded header, nearest proxy last (as X-Forwarded-For), ports and brackets removed. */
function forwardedFor(header: string): string[] {
  const out: string[] = [];
  for (const element of header.split(',')) {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
      let value = pair.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      out.push(withoutPort(value));
    }
  }
  return out;
}

/**
 * The client's address: the socket peer, unless that peer is a trusted proxy, in which case the
 * chain in `header` (and only that header: a client can send the other one too) is walked from
 * the nearest hop while hops are trusted. Each hop was appended by the trusted proxy after it, so
 * the first untrusted hop is the client. A hop that is not an address ('unknown', an obfuscated
 * name, garbage) stops the walk: the request counts against the trusted proxy that reported it,
 * never against a shared or an unlimited key. Returns undefined only without a socket address.
 */
export function clientAddress(
  remote: string | undefined,
  headers: Record<string, string | string[] | undefined>,
  trusted: BlockList | undefined,
  header: ForwardedHeader = 'x-forwarded-for',
): string | undefined {
  if (remote === undefined) return undefined;
  let current = canonicalAddress(remote);
  if (current === undefined) return undefined;
  if (trusted === undefined || !contains(trusted, current)) return current;
  const value = headers[header];
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  const chain = header === 'forwarded' ? forwardedFor(text) : text.split(',').map((s) => withoutPort(s.trim()));
  for (let i = chain.length - 1; i >= 0; i--) {
    const raw = chain[i] as string;
    if (raw.length === 0) continue;
    const hop = canonicalAddress(raw);
    if (hop === undefined) return current;
    current = hop;
    if (!contains(trusted, current)) return current;
  }
  return current;
}

/**
 * The rate-limit key of an address: IPv4 as is; IPv6 reduced to its /`subnet` network, since
 * one IPv6 client usually holds a whole /64 or more and could otherwise rotate addresses.
 */
export function addressKey(address: string, subnet: number): string {
  if (isIPv4(address)) return address;
  const zone = address.indexOf('%');
  const groups = ipv6Groups((zone === -1 ? address : address.slice(0, zone)).toLowerCase());
  let bits = subnet;
  const masked = groups.map((g) => {
    const keep = Math.max(0, Math.min(16, bits));
    bits -= 16;
    return keep === 0 ? 0 : g & (0xffff << (16 - keep)) & 0xffff;
  });
  return `${masked.map((g) => g.toString(16)).join(':')}/${subnet}`;
}
