// Client addresses through proxies, and IPv6 subnet keys.
import { describe, expect, it } from 'vitest';
import { addressKey, addressList, canonicalAddress, clientAddress } from '../src/http/client-ip.js';

describe('client addresses', () => {
  const trusted = addressList(['loopback', '10.0.0.0/8'], 'trustProxy');

  it('walks X-Forwarded-For from the nearest hop while hops are trusted', () => {
    expect(clientAddress('127.0.0.1', { 'x-forwarded-for': '203.0.113.9, 10.1.2.3' }, trusted)).toBe('203.0.113.9');
    expect(clientAddress('127.0.0.1', { 'x-forwarded-for': 'spoofed, 198.51.100.1, 10.1.2.3' }, trusted)).toBe('198.51.100.1');
    expect(clientAddress('127.0.0.1', { 'x-forwarded-for': ['203.0.113.9', '10.0.0.1'] }, trusted)).toBe('203.0.113.9');
    expect(clientAddress('198.51.100.7', { 'x-forwarded-for': '203.0.113.9' }, trusted)).toBe('198.51.100.7');
    expect(clientAddress('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }, undefined)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', {}, trusted)).toBe('127.0.0.1');
    // A hop that is not an address stops the walk at the trusted proxy that reported it.
    expect(clientAddress('127.0.0.1', { 'x-forwarded-for': 'garbage' }, trusted)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', { 'x-forwarded-for': 'garbage, 10.1.2.3' }, trusted)).toBe('10.1.2.3');
    expect(clientAddress(undefined, {}, trusted)).toBeUndefined();
  });

  it('reads RFC 7239 Forwarded when told to, quoted IPv6 with ports included', () => {
    expect(clientAddress('::1', { forwarded: 'for=192.0.2.60;proto=http;by=203.0.113.43' }, trusted, 'forwarded')).toBe('192.0.2.60');
    expect(clientAddress('::1', { forwarded: 'for="[2001:db8:cafe::17]:4711"' }, trusted, 'forwarded')).toBe('2001:db8:cafe::17');
    expect(clientAddress('::1', { forwarded: 'for=192.0.2.43, for=10.0.0.5' }, trusted, 'forwarded')).toBe('192.0.2.43');
    expect(clientAddress('::1', { forwarded: 'for=unknown' }, trusted, 'forwarded')).toBe('::1');
  });

  it('never lets the header a proxy does not write override the one it does (regression: spoofed Forwarded)', () => {
    // The proxy appends only X-Forwarded-For; the client adds its own Forwarded.
    const headers = { 'x-forwarded-for': '203.0.113.9', forwarded: 'for=198.51.100.77' };
    expect(clientAddress('127.0.0.1', headers, trusted)).toBe('203.0.113.9');
    // And the reverse: a proxy that writes Forwarded, a client that adds X-Forwarded-For.
    const reverse = { forwarded: 'for=203.0.113.9', 'x-forwarded-for': '198.51.100.77' };
    expect(clientAddress('127.0.0.1', reverse, trusted, 'forwarded')).toBe('203.0.113.9');
  });

  it('spells every IPv4-mapped or malformed address one way, never as a shared all-zero key (regression)', () => {
    for (const spelling of ['::FFFF:1.2.3.4', '0:0:0:0:0:ffff:1.2.3.4', '::ffff:102:304', '0:0:0:0:0:FFFF:0102:0304']) {
      expect(canonicalAddress(spelling)).toBe('1.2.3.4');
      expect(clientAddress('127.0.0.1', { 'x-forwarded-for': spelling }, trusted)).toBe('1.2.3.4');
    }
    expect(canonicalAddress('[::1')).toBeUndefined();
    expect(clientAddress('::1', { forwarded: 'for="[::1"' }, trusted, 'forwarded')).toBe('::1');
    expect(clientAddress('127.0.0.1', { 'x-forwarded-for': '2001:DB8::1' }, trusted)).toBe('2001:db8::1');
    expect(addressKey(canonicalAddress('2001:DB8::1%eth0')!, 56)).toBe(addressKey('2001:db8::1', 56));
  });

  it('strips the ports proxies write into X-Forwarded-For, as in Forwarded (regression: every client keyed as the proxy)', () => {
    const xff = (hop: string) => clientAddress('127.0.0.1', { 'x-forwarded-for': `${hop}, 10.1.2.3` }, trusted);
    expect(xff('203.0.113.7:51234')).toBe('203.0.113.7');
    expect(xff('[2001:db8::1]:443')).toBe('2001:db8::1');
    expect(xff('[2001:db8::1]')).toBe('2001:db8::1');
    expect(xff('2001:db8::1')).toBe('2001:db8::1');
    expect(clientAddress('::1', { forwarded: 'for="192.0.2.43:_hidden"' }, trusted, 'forwarded')).toBe('192.0.2.43');
    // Not a port, or not an address: the walk stops at the trusted proxy that reported it.
    for (const garbage of ['203.0.113.7:', '203.0.113.7:x y', '[2001:db8::1]x', '[2001:db8::1', 'host:80']) expect(xff(garbage)).toBe('10.1.2.3');
  });

  it('keys IPv4-embedded IPv6 as its IPv4 address; :: and ::1 stay themselves (regression: all one ::/56 key)', () => {
    for (const [spelling, ipv4] of [
      ['::203.0.113.7', '203.0.113.7'],
      ['::ffff:0:203.0.113.7', '203.0.113.7'],
      ['64:ff9b::203.0.113.7', '203.0.113.7'],
      ['::cb00:7107', '203.0.113.7'],
      ['::FFFF:203.0.113.7', '203.0.113.7'],
    ]) {
      expect(canonicalAddress(spelling as string), spelling).toBe(ipv4);
    }
    expect(canonicalAddress('::1')).toBe('::1');
    expect(canonicalAddress('::')).toBe('::');
    expect(canonicalAddress('::ff')).toBe('::ff');
    expect(canonicalAddress('64:ff9b:1::203.0.113.7')).toBe('64:ff9b:1::203.0.113.7');
  });

  it('treats IPv4-mapped IPv6 as IPv4', () => {
    expect(canonicalAddress('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(clientAddress('::ffff:127.0.0.1', { 'x-forwarded-for': '192.0.2.1' }, trusted)).toBe('192.0.2.1');
  });

  it('groups IPv6 addresses by their subnet', () => {
    expect(addressKey('2001:db8:abcd:12ff:1:2:3:4', 56)).toBe(addressKey('2001:db8:abcd:1200::9', 56));
    expect(addressKey('2001:db8:abcd:1300::1', 56)).not.toBe(addressKey('2001:db8:abcd:1200::1', 56));
    expect(addressKey('2001:db8::1', 64)).toBe('2001:db8:0:0:0:0:0:0/64');
    expect(addressKey('2001:db8::1', 128)).toBe('2001:db8:0:0:0:0:0:1/128');
    expect(addressKey('::ffff:1.2.3.4', 128)).toBe('0:0:0:0:0:ffff:102:304/128');
    expect(addressKey('fe80::1%eth0', 64)).toBe('fe80:0:0:0:0:0:0:0/64');
    expect(addressKey('192.0.2.1', 56)).toBe('192.0.2.1');
  });

  it('refuses bad ranges', () => {
    expect(() => addressList(['10.0.0.0/33'], 'trustProxy')).toThrow(RangeError);
    expect(() => addressList(['example.com'], 'allowList')).toThrow(/for allowList/);
    expect(() => addressList('loopback' as never, 'trustProxy')).toThrow(TypeError);
  });
});
