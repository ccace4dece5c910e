// Shared test fixtures: the engines under test and a seeded random generator.
import { isNativeAvailable, type EngineName } from '../../src/index.js';

/** Every engine this machine can run. Under CI the native engine must be present. */
export function engines(): EngineName[] {
  if (!isNativeAvailable()) {
    if (process.env.CI) throw new Error('The native addon did not build; CI requires it.');
    return ['js'];
  }
  return ['native', 'js'];
}

/** A small, fast, seeded generator (mulberry32) so failures replay exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Keys that UTF-8 would fold together or that sit at the length bound; all distinct strings. */
export function edgeKeys(): string[] {
  const lone = Array.from({ length: 64 }, (_, i) => String.fromCharCode(0xd800 + i * 32));
  return ['€'.repeat(1024), '€'.repeat(1023) + '¢', '😀'.repeat(512), '😀'.repeat(511) + '\ud83d', 'x'.repeat(1024), 'é'.repeat(1024), '\ufffd', ...lone, 'a\udc00', 'a\ud800', '\u0000u:0061', 'a'];
}
