// Types of scripts/window-audit.mjs for the TypeScript tests.
import type { Redis } from 'ioredis';

export interface AuditedWindow {
  /** Redis ms: the key's PEXPIRETIME - windowMs. */
  readonly start: number;
  /** Redis ms: the key's PEXPIRETIME. */
  readonly end: number;
  /** Units admitted surely inside [start, end). */
  readonly admitted: number;
  readonly byWho: Readonly<Record<string, number>>;
}
export interface WindowAuditReport {
  readonly windows: readonly AuditedWindow[];
  readonly maxAdmitted: number;
  readonly ambiguous: number;
  readonly outside: number;
  readonly resetChecked: number;
  readonly resetOver: number;
  readonly resetOverMaxMs: number;
  readonly polls: number;
  readonly widestPollMs: number;
}
export interface WindowAudit {
  live(): { readonly ends: readonly number[]; readonly redisNow: number };
  record(calledAt: number, settledAt: number, decision: { readonly allowed: boolean; readonly resetMs: number }, who?: string, cost?: number): void;
  stop(): Promise<void>;
  report(options?: { resetOf?: string }): WindowAuditReport;
}
/** `redis`: an ioredis client connected straight to the server (no delay proxy). */
export function startWindowAudit(redis: Redis, key: string, options: { windowMs: number; everyMs?: number }): WindowAudit;
