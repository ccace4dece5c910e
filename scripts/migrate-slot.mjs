// Moves one hash slot of a Redis Cluster to another master, live, the way `redis-cli --cluster
// reshard` does: the target IMPORTING, the source MIGRATING, then keys moved a few at a time with
// MIGRATE (clients meanwhile get ASK or TRYAGAIN for that slot), then every master told the new
// owner. For tests and benchmarks of resharding under traffic.
import { Redis } from 'ioredis';

/**
 * `nodes`: the cluster's masters ({ host, port }). Moves `slot` from its owner to the master at
 * `to` (a port), `batch` keys per MIGRATE (redis-cli's default is 10). Resolves with the keys
 * moved, the MIGRATE calls made and how long it took.
 */
export async function migrateSlot(nodes, slot, to, { batch = 10 } = {}) {
  const clients = new Map(nodes.map((n) => [n.port, new Redis({ host: n.host, port: n.port, lazyConnect: false })]));
  try {
    const ids = new Map();
    for (const [port, client] of clients) ids.set(port, await client.cluster('MYID'));
    const from = await ownerOf(clients.values().next().value, slot);
    if (from === to) throw new Error(`slot ${slot} is on ${to} already`);
    const source = clients.get(from);
    const target = clients.get(to);
    if (source === undefined || target === undefined) throw new Error(`slot ${slot}: ${from} or ${to} is not among the masters given`);
    const started = performance.now();
    // The order redis-cli uses: a key the source no longer holds must already be accepted by the target.
    await target.cluster('SETSLOT', slot, 'IMPORTING', ids.get(from));
    await source.cluster('SETSLOT', slot, 'MIGRATING', ids.get(to));
    let moved = 0;
    let calls = 0;
    for (;;) {
      const keys = await source.cluster('GETKEYSINSLOT', slot, batch);
      if (keys.length === 0) break;
      await source.migrate('127.0.0.1', to, '', 0, 5000, 'KEYS', ...keys);
      moved += keys.length;
      calls++;
    }
    // The target first (it then serves the slot), the source next (it then answers MOVED), then the rest.
    await target.cluster('SETSLOT', slot, 'NODE', ids.get(to));
    await source.cluster('SETSLOT', slot, 'NODE', ids.get(to));
    for (const [port, client] of clients) if (port !== from && port !== to) await client.cluster('SETSLOT', slot, 'NODE', ids.get(to));
    return { moved, calls, ms: performance.now() - started, from, to };
  } finally {
    for (const client of clients.values()) client.disconnect();
  }
}

/** The port of the master that serves `slot`, as `client`'s node sees it. */
export async function ownerOf(client, slot) {
  const ranges = await client.cluster('SLOTS');
  const range = ranges.find(([first, last]) => slot >= first && slot <= last);
  if (range === undefined) throw new Error(`no node serves slot ${slot}`);
  return Number(range[2][1]);
}
