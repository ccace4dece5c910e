// Who is asking: the client address (through trusted proxies only), grouped into an IPv6 subnet.
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { invalidArgument, outOfRange } from '../errors.js';

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

/** '::ffff:1.2.3.4' is an IPv4 client. */
export function normalizeAddress(address: string): string {
  if (address.startsWith('::ffff:') && isIPv4(address.slice(7))) return address.slice(7);
  return address;
}

function contains(list: BlockList, address: string): boolean {
  return list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
}

/** Addresses from `for=` in a Forwarded header, nearest proxy last (as X-Forwarded-For). */
function forwardedFor(header: string): string[] {
  const out: string[] = [];
  for (const element of header.split(',')) {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
      let value = pair.slice(eq + 1).trim();
      if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      if (value.startsWith('[')) value = value.slice(1, value.indexOf(']'));
      else if (value.includes('.') && value.includes(':')) value = value.slice(0, value.lastIndexOf(':'));
      out.push(value);
    }
  }
  return out;
}

/**
 * The client's address: the socket peer, unless that peer is a trusted proxy, in which case the
 * forwarding chain is walked from the nearest hop while hops are trusted. A chain that runs out
 * or holds garbage yields the last trusted hop's claim only if it parses as an address.
 * Returns undefined when there is no usable address.
 */
export function clientAddress(
  remote: string | undefined,
  headers: Record<string, string | string[] | undefined>,
  trusted: BlockList | undefined,
): string | undefined {
  if (remote === undefined) return undefined;
  let current = normalizeAddress(remote);
  // The socket peer is an address by construction.
  if (trusted === undefined || !contains(trusted, current)) return current;
  const forwarded = headers.forwarded;
  const xff = headers['x-forwarded-for'];
  const chain =
    typeof forwarded === 'string'
      ? forwardedFor(forwarded)
      : (Array.isArray(xff) ? xff.join(',') : (xff ?? '')).split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = normalizeAddress(chain[i] as string);
    if (!isIPv4(hop) && !isIPv6(hop)) return undefined;
    current = hop;
    if (!contains(trusted, current)) return current;
  }
  return current;
}

/** Expands an IPv6 address into its eight 16-bit groups. */
function ipv6Groups(address: string): number[] {
  let text = address;
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  // A trailing dotted IPv4 fills the last two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  const extra: number[] = [];
  if (tail.includes('.')) {
    const parts = tail.split('.').map(Number);
    extra.push(((parts[0] as number) << 8) | (parts[1] as number), ((parts[2] as number) << 8) | (parts[3] as number));
    text = text.slice(0, lastColon + 1) + '0';
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
 * The rate-limit key of an address: IPv4 as is; IPv6 reduced to its /`subnet` network, since
 * one IPv6 client usually holds a whole /64 or more and could otherwise rotate addresses.
 */
export function addressKey(address: string, subnet: number): string {
  if (isIPv4(address)) return address;
  const groups = ipv6Groups(address);
  let bits = subnet;
  const masked = groups.map((g) => {
    const keep = Math.max(0, Math.min(16, bits));
    bits -= 16;
    return keep === 0 ? 0 : g & (0xffff << (16 - keep)) & 0xffff;
  });
  return `${masked.map((g) => g.toString(16)).join(':')}/${subnet}`;
}
