// A TCP proxy on loopback that holds every chunk for a set number of ms in each direction: a
// distant Redis (a managed service a region away, a congested link) for tests and benchmarks,
// without root or tc/netem. Each chunk is due at its arrival + the delay in force then, and
// leaves no earlier than the chunk before it on that connection, so a stream keeps its order (and
// a lowered delay never reorders it). Delays can be changed while traffic runs.
import { createServer, connect } from 'node:net';

const LOOPBACK = '127.0.0.1';

function checkDelay(value, name) {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a number of ms >= 0, got ${String(value)}`);
  return value;
}

/**
 * One direction of one connection: chunks read from `from` written to `to` when due. One timer
 * at a time, for the head of the queue: a chunk due now is written at once, in order.
 */
function pipeDelayed(from, to, delayOf) {
  const queue = [];
  let timer;
  let ended = false;
  const pump = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0].dueAt <= now) {
      if (!to.destroyed) to.write(queue.shift().chunk);
      else queue.length = 0;
    }
    if (queue.length > 0) timer = setTimeout(pump, Math.max(0, queue[0].dueAt - now));
    else if (ended && !to.destroyed) to.end();
  };
  from.on('data', (chunk) => {
    const last = queue.at(-1);
    const dueAt = Math.max(performance.now() + delayOf(), last?.dueAt ?? 0);
    queue.push({ chunk, dueAt });
    if (timer === undefined) pump();
  });
  // A half-close travels after the data before it, as on a real link.
  from.on('end', () => {
    ended = true;
    if (timer === undefined) pump();
  });
  return () => {
    clearTimeout(timer);
    queue.length = 0;
  };
}

/**
 * Starts a proxy on 127.0.0.1 (a free port) to `host:port` (loopback only). `toServer` delays
 * what clients send (requests), `toClient` what the target sends back (replies), in ms.
 */
export async function startDelayProxy({ host = LOOPBACK, port, toServer = 0, toClient = 0 } = {}) {
  if (host !== LOOPBACK && host !== 'localhost') throw new Error(`delay-proxy connects to loopback only, not ${host}`);
  if (!Number.isInteger(port) || port <= 0 || port > 65_535) throw new RangeError(`port must be a TCP port, got ${String(port)}`);
  const delays = { toServer: checkDelay(toServer, 'toServer'), toClient: checkDelay(toClient, 'toClient') };
  const connections = new Set();
  let accepted = 0;
  const server = createServer({ noDelay: true }, (client) => {
    accepted++;
    const target = connect({ host: LOOPBACK, port, noDelay: true });
    const stops = [pipeDelayed(client, target, () => delays.toServer), pipeDelayed(target, client, () => delays.toClient)];
    const entry = { client, target, stops };
    connections.add(entry);
    // Either side failing or closing ends the pair: the client sees what a dropped link shows.
    const drop = () => {
      if (!connections.delete(entry)) return;
      for (const stop of stops) stop();
      client.destroy();
      target.destroy();
    };
    client.on('error', drop).on('close', drop);
    target.on('error', drop).on('close', drop);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    host: LOOPBACK,
    port: server.address().port,
    /** The delays in force (read only; change them with setDelay). */
    get delays() {
      return { ...delays };
    },
    /** Connections accepted so far. */
    get accepted() {
      return accepted;
    },
    /** Changes either delay for every chunk that arrives from now on (chunks already held keep their time). */
    setDelay({ toServer: s, toClient: c } = {}) {
      delays.toServer = checkDelay(s, 'toServer') ?? delays.toServer;
      delays.toClient = checkDelay(c, 'toClient') ?? delays.toClient;
    },
    /** Stops listening and drops every connection (held chunks are discarded). */
    close() {
      for (const { client, target, stops } of connections) {
        for (const stop of stops) stop();
        client.destroy();
        target.destroy();
      }
      connections.clear();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
