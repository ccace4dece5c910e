// Client addresses through proxies, and IPv6 subnet keys.
import { describe, expect, it } from 'vitest';
import { addressKey, addressList, clientAddress, normalizeAddress } from '../src/http/client-ip.js';

describe('client addresses', () => {
  const trusted = addressList(['loopback', '10.0.0.0/8'], 'trustProxy');

  it('walks X-Forwarded-For from the nearest hop while hops are trusted', () => {
    expect(clientAddress('127.0.0.1', { 'x-forwarded-for': '203.0.113.9, 10.1.2.3' }, trusted)).toBe('203.0.113.9');
    expect(clientAddress('127.0.0.1', { 'x-forwarded-for': 'spoofed, 198.51.100.1, 10.1.2.3' }, trusted)).toBe('198.51.100.1');
    expect(clientAddress('127.0.0.1', { 'x-forwarded-for': ['203.0.113.9', '10.0.0.1'] }, trusted)).toBe('203.0.113.9');
    expect(clientAddress('198.51.100.7', { 'x-forwarded-for': '203.0.113.9' }, trusted)).toBe('198.51.100.7');
    expect(clientAddress('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }, undefined)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', {}, trusted)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', { 'x-forwarded-for': 'garbage' }, trusted)).toBeUndefined();
    expect(clientAddress(undefined, {}, trusted)).toBeUndefined();
  });

  it('reads RFC 7239 Forwarded, quoted IPv6 with ports included', () => {
    expect(clientAddress('::1', { forwarded: 'for=192.0.2.60;proto=http;by=203.0.113.43' }, trusted)).toBe('192.0.2.60');
    expect(clientAddress('::1', { forwarded: 'for="[2001:db8:cafe::17]:4711"' }, trusted)).toBe('2001:db8:cafe::17');
    expect(clientAddress('::1', { forwarded: 'for=192.0.2.43, for=10.0.0.5' }, trusted)).toBe('192.0.2.43');
  });

  it('treats IPv4-mapped IPv6 as IPv4', () => {
    expect(normalizeAddress('::ffff:192.0.2.1')).toBe('192.0.2.1');
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
