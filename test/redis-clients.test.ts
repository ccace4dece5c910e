// Every Redis client tollgate accepts (ioredis 5 and 6, iovalkey, node-redis, a hand-written
// sendCommand), each against a real redis-server and a real 3-master/3-replica Redis Cluster:
// exact limits under concurrency, every key limited whatever braces it holds, NOSCRIPT recovery.
import { Cluster as Cluster5, Redis as Redis5 } from 'ioredis';
import { Cluster as Cluster6, Redis as Redis6 } from 'ioredis-6';
import { Cluster as ValkeyCluster, Redis as Valkey } from 'iovalkey';
import { createClient, createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedWindow, RedisLimiter, tokenBucket, type RedisClient, type RedisCommandSender } from '../src/index.js';
import { edgeKeys } from './helpers/engines.js';
import { hasRedis, startCluster, startRedis, type LocalCluster, type LocalRedis } from './helpers/redis.js';

/** A client, how to close it, and a plain ioredis connection to the same server for checks. */
interface Made {
  readonly client: RedisClient;
  close(): Promise<void> | void;
}

type Maker = (nodes: readonly { host: string; port: number }[]) => Promise<Made>;

const quiet = <T extends { on(event: 'error', listener: () => void): unknown }>(c: T): T => {
  c.on('error', () => undefined);
  return c;
};

const single: [string, Maker][] = [
  [
    'ioredis 5',
    async ([n]) => {
      const c = quiet(new Redis5({ ...n! }));
      return { client: c, close: () => c.disconnect() };
    },
  ],
  [
    'ioredis 6',
    async ([n]) => {
      const c = quiet(new Redis6({ ...n! }));
      return { client: c, close: () => c.disconnect() };
    },
  ],
  [
    'iovalkey',
    async ([n]) => {
      const c = quiet(new Valkey({ ...n! }));
      return { client: c, close: () => c.disconnect() };
    },
  ],
  [
    'node-redis',
    async ([n]) => {
      const c = quiet(createClient({ socket: { host: n!.host, port: n!.port } }));
      await c.connect();
      return { client: c, close: () => void c.destroy() };
    },
  ],
  [
    'a sendCommand object',
    async ([n]) => {
      const c = quiet(new Redis5({ ...n! }));
      const sender: RedisCommandSender = { sendCommand: (command) => c.call(command[0] as string, ...command.slice(1)) };
      return { client: sender, close: () => c.disconnect() };
    },
  ],
];

const clusters: [string, Maker][] = [
  [
    'ioredis 5 Cluster',
    async (nodes) => {
      const c = quiet(new Cluster5([...nodes]));
      return { client: c, close: () => c.disconnect() };
    },
  ],
  [
    'ioredis 6 Cluster',
    async (nodes) => {
      const c = quiet(new Cluster6([...nodes]));
      return { client: c, close: () => c.disconnect() };
    },
  ],
  [
    'iovalkey Cluster',
    async (nodes) => {
      const c = quiet(new ValkeyCluster([...nodes]));
      return { client: c, close: () => c.disconnect() };
    },
  ],
  [
    'node-redis cluster',
    async (nodes) => {
      const c = quiet(createCluster({ rootNodes: nodes.map((n) => ({ socket: { host: n.host, port: n.port } })) }));
      await c.connect();
      return { client: c, close: () => void c.destroy() };
    },
  ],
  [
    'a sendCommand object on a cluster',
    async (nodes) => {
      // ioredis' Cluster routes EVALSHA by its first key; cluster: true makes tollgate split batches by slot.
      const c = quiet(new Cluster5([...nodes]));
      const sender: RedisCommandSender = { cluster: true, sendCommand: (command) => c.call(command[0] as string, ...command.slice(1)) };
      return { client: sender, close: () => c.disconnect() };
    },
  ],
];

/** Keys whose braces would make or break a hash tag, and the other edge keys of the engines' tests. */
const braceKeys = ['}', '}evil', '{', '{}', '{a}', 'a{b}c', '}{', '{{}}', 'x}y{z', '%7D', ...edgeKeys().slice(0, 12)];

let names = 0;

async function exactUnderConcurrency(made: Made, admin: { flush(): Promise<unknown> }) {
  const limiter = new RedisLimiter({ redis: made.client, name: `exact${++names}`, policy: fixedWindow({ limit: 25, windowMs: 60_000 }), onError: 'deny', timeoutMs: 5000 });
  const decisions = await Promise.all(Array.from({ length: 100 }, () => limiter.consume('hot')));
  expect(decisions.filter((d) => d.allowed)).toHaveLength(25);
  expect(limiter.stats()).toMatchObject({ failedClosed: 0, errors: 0, timeouts: 0 });
  // NOSCRIPT after a flush: the script is sent once more and nothing fails.
  await admin.flush();
  expect(await limiter.consume('hot')).toMatchObject({ allowed: false });
  expect(await limiter.consume('other')).toMatchObject({ allowed: true, remaining: 24 });
  await limiter.block('blocked', 60_000);
  expect(await limiter.consume('blocked')).toMatchObject({ allowed: false });
  expect(await limiter.reset('blocked')).toBe(true);
  await limiter.refund('other');
  expect(await limiter.peek('other')).toMatchObject({ remaining: 25 });
  expect(limiter.stats()).toMatchObject({ failedClosed: 0, errors: 0, timeouts: 0 });
  limiter.close();
}

async function everyKeyLimited(made: Made) {
  const policies = [fixedWindow({ limit: 1, windowMs: 60_000 }), tokenBucket({ capacity: 5, refillPerSecond: 1 })];
  const limiter = new RedisLimiter({ redis: made.client, name: `braces${++names}`, policy: policies, onError: 'allow', timeoutMs: 5000, denyCache: false });
  const decisions = await Promise.all(braceKeys.flatMap((k) => [limiter.consume(k), limiter.consume(k), limiter.consume(k)]));
  // Exactly one per key passes, whatever the key: none escapes to onError (which would allow all three).
  for (let i = 0; i < braceKeys.length; i++) {
    expect(
      decisions.slice(3 * i, 3 * i + 3).filter((d) => d.allowed),
      `key ${JSON.stringify(braceKeys[i])}`,
    ).toHaveLength(1);
  }
  expect(limiter.stats()).toMatchObject({ failedOpen: 0, errors: 0, timeouts: 0 });
  limiter.close();
}

describe.runIf(hasRedis)('each client on a redis-server', () => {
  let server: LocalRedis;
  let admin: Redis5;
  beforeAll(async () => {
    server = await startRedis();
    admin = quiet(new Redis5({ host: server.host, port: server.port }));
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it.each(single)('%s: exact under concurrency, NOSCRIPT recovered, block/reset/refund', async (_label, make) => {
    const made = await make([{ host: server.host, port: server.port }]);
    try {
      await exactUnderConcurrency(made, { flush: () => admin.script('FLUSH') });
      await everyKeyLimited(made);
    } finally {
      await made.close();
    }
  });

  it('anything else is refused by name', () => {
    const policy = fixedWindow({ limit: 1, windowMs: 1000 });
    expect(() => new RedisLimiter({ redis: { get: () => 1 } as never, name: 'x', policy })).toThrow(/for redis/);
    expect(() => new RedisLimiter({ redis: null as never, name: 'x', policy })).toThrow(/for redis/);
  });
});

describe.runIf(hasRedis)('each client on a 3-master, 3-replica Redis Cluster', () => {
  let cluster: LocalCluster;
  let admin: Cluster5;
  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    admin = quiet(new Cluster5([...cluster.nodes]));
  });
  afterAll(async () => {
    admin?.disconnect();
    await cluster?.stop();
  });

  it.each(clusters)('%s: every brace form limited exactly, no CROSSSLOT; exact under concurrency; NOSCRIPT recovered', async (_label, make) => {
    const made = await make(cluster.nodes);
    try {
      await everyKeyLimited(made);
      const flush = () => Promise.all(admin.nodes('master').map((n) => n.script('FLUSH')));
      await exactUnderConcurrency(made, { flush });
    } finally {
      await made.close();
    }
  });
});
