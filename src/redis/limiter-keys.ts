// One limiter's names on Redis (see redis-keys.ts), made per request with no hashing but the slot
// group's: a key's state keys (one per policy), its base (its field in the blocks marker), its slot
// group, that group's blocks marker and slot.
import type { PolicyParams } from '../common/policies.js';
import { keySlot } from './key-slot.js';
import { blockMarker, groupHead, keyGroup, keyTagText, limiterNamespace, policySuffixes } from './redis-keys.js';

/** What Redis calls a limiter key, for the calls outside the batches. */
export interface KeyNames {
  /** `<namespace>{<key>}`, or on a Cluster the slot-grouped form: every other name starts with it. */
  readonly base: string;
  /** One state key per policy (base + the policy's suffix). */
  readonly keys: readonly string[];
  /** Its slot group (0 on a single server). */
  readonly group: number;
  /** Its slot on a Cluster (0 on a single server), which picks its node. */
  readonly slot: number;
  /** The blocks marker of its group (see blockMarker): a block on the key is its field `base` there. */
  readonly marker: string;
}

export class LimiterKeys {
  /** One suffix per policy (see policySuffixes). */
  readonly #suffixes: readonly string[];
  /** Slot groups on a Cluster; 0 on a single server (one group, the limiter's). */
  readonly #groups: number;
  /** Per slot group: what its keys' names start with, up to the key's text (`<namespace>{`, `<prefix>{<name>~<group>}{`). */
  readonly #opens: readonly string[];
  /** What a first state key ends with after the key's text: `}` and policy 1's suffix. */
  readonly #close: string;
  /** Per slot group: its blocks marker (see blockMarker). */
  readonly markers: readonly string[];
  /** Per slot group: its slot (0 on a single server). */
  readonly slots: readonly number[];
  /** The length of policy 1's suffix: what the scripts cut off a first state key to find its base. */
  readonly firstSuffixLength: number;

  constructor(prefix: string, name: string, params: readonly PolicyParams[], cluster: boolean, slotGroups: number) {
    this.#suffixes = policySuffixes(params);
    // A group's head is the part of its names before the key's own braces: the names a request
    // needs are made from it, the key's text and a suffix, with no hashing but the group's.
    this.#groups = cluster ? slotGroups : 0;
    const heads = cluster ? Array.from({ length: slotGroups }, (_, g) => groupHead(prefix, name, g)) : [limiterNamespace(prefix, name)];
    this.#opens = heads.map((head) => `${head}{`);
    this.firstSuffixLength = (this.#suffixes[0] as string).length;
    this.#close = `}${this.#suffixes[0] as string}`;
    this.markers = heads.map((head) => blockMarker(`${head}{}`, cluster));
    this.slots = heads.map((head) => (cluster ? keySlot(head) : 0));
  }

  /** The slot group of a key's text (see keyGroup): 0 on a single server. */
  groupOf(text: string): number {
    return this.#groups === 0 ? 0 : keyGroup(text, this.#groups);
  }

  /**
   * A key's first state key, `<base><policy 1's suffix>` (base: `<namespace>{<key>}`, or on a
   * Cluster `<prefix>{<name>~<group>}{<key>}`, as keyBase and groupedKeyBase make them), from its
   * text (keyTagText) and group: one concatenation per request, no cache to keep.
   */
  stateKey(text: string, group: number): string {
    return (this.#opens[group] as string) + text + this.#close;
  }

  /** Whether there is one policy, so one state key per request. */
  get single(): boolean {
    return this.#suffixes.length === 1;
  }

  /** Every state key of a request, from its first: one per policy. */
  stateKeys(stateKey: string): string[] {
    if (this.#suffixes.length === 1) return [stateKey];
    const base = this.baseOf(stateKey);
    return this.#suffixes.map((suffix, i) => (i === 0 ? stateKey : base + suffix));
  }

  /** The base of a first state key (policy 1's suffix cut off): a block's field in the marker. */
  baseOf(stateKey: string): string {
    return stateKey.slice(0, stateKey.length - this.firstSuffixLength);
  }

  /** A key's names. */
  names(key: string): KeyNames {
    const text = keyTagText(key);
    const group = this.groupOf(text);
    return this.namesOf(this.stateKey(text, group), group);
  }

  /** The names of a request known by its first state key and group. */
  namesOf(stateKey: string, group: number): KeyNames {
    return { base: this.baseOf(stateKey), keys: this.stateKeys(stateKey), group, slot: this.slots[group] as number, marker: this.markers[group] as string };
  }
}
