// Types of scripts/delay-proxy.mjs for the TypeScript tests.
export interface DelayProxyDelays {
  /** ms each chunk a client sends (a request) is held before it goes to the target. */
  readonly toServer: number;
  /** ms each chunk the target sends (a reply) is held before it goes to the client. */
  readonly toClient: number;
}
export interface DelayProxy {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly delays: DelayProxyDelays;
  /** Connections accepted so far. */
  readonly accepted: number;
  setDelay(delays: Partial<DelayProxyDelays>): void;
  close(): Promise<void>;
}
export function startDelayProxy(options: { host?: string; port: number; toServer?: number; toClient?: number }): Promise<DelayProxy>;
